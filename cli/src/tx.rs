//! `semcom tx`: PSDUs → 802.11a/g IQ samples.

use crate::units;
use anyhow::{bail, Context, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_phy::crc::append_fcs;
use semcom_phy::signal::MAX_PSDU_LEN;
use semcom_phy::{Complex32, Rate, Transmitter, TxParams};
use semcom_transport::sigmf::{Annotation, Meta};
use semcom_transport::{IqFormat, IqWriter};
use std::io::Read;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct TxArgs {
    /// Data rate in Mbit/s: 6, 9, 12, 18, 24, 36, 48 or 54.
    #[arg(short, long, default_value_t = 12)]
    rate: u32,
    /// Send this file's bytes as the PSDU, unchanged (`-` for stdin); 1 … 4095 octets.
    #[arg(long, conflicts_with = "random", required_unless_present = "random")]
    psdu: Option<PathBuf>,
    /// Append the CRC-32 FCS to the --psdu bytes.
    #[arg(long, requires = "psdu")]
    append_fcs: bool,
    /// Send random PSDUs of N octets: N − 4 random octets and their FCS (N ≥ 4), or N random
    /// octets (N < 4).
    #[arg(long, value_name = "N")]
    random: Option<usize>,
    /// Number of frames.
    #[arg(short = 'n', long, default_value_t = 1)]
    frames: u64,
    /// Scrambler initial state, 1 … 127 (x1 in the least significant bit; decimal, 0x… or
    /// 0b…). Default: pseudo-random per frame, from --seed.
    #[arg(long, value_parser = units::scrambler_seed)]
    scrambler_seed: Option<u8>,
    /// Zero samples between frames (none before the first or after the last).
    #[arg(long, default_value_t = 400)]
    gap: usize,
    /// Seed of the random payloads and scrambler states.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Multiply the samples by this factor (the default keeps the standard's amplitude).
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    /// Sample format of raw outputs: cf32, ci16, cu8 or ci8 (default: cf32, or from the
    /// extension).
    #[arg(long, value_parser = parse_format)]
    format: Option<IqFormat>,
    /// Output file: raw IQ, a SigMF recording when it ends in .sigmf-data, or `-` for stdout.
    #[arg(short, long)]
    output: PathBuf,
    /// Print a JSON summary instead of a text one.
    #[arg(long)]
    json: bool,
}

pub fn parse_format(s: &str) -> Result<IqFormat, String> {
    IqFormat::parse(s).ok_or_else(|| format!("unknown sample format `{s}` (cf32, ci16, cu8, ci8)"))
}

pub fn run(a: TxArgs) -> Result<()> {
    let rate = Rate::from_mbps(a.rate)?;
    if a.frames == 0 {
        bail!("--frames must be at least 1");
    }
    if !a.scale.is_finite() || a.scale <= 0.0 {
        bail!("--scale must be a positive number");
    }
    let fixed_psdu = match &a.psdu {
        Some(p) => {
            let mut data = Vec::new();
            if p.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut data)
                    .context("reading the PSDU from stdin")?;
            } else {
                data = std::fs::read(p).with_context(|| format!("reading PSDU file {}", p.display()))?;
            }
            if a.append_fcs {
                append_fcs(&mut data);
            }
            if data.is_empty() || data.len() > MAX_PSDU_LEN {
                bail!(
                    "PSDU {} is {} octets; a PSDU holds 1 … {MAX_PSDU_LEN} octets{}",
                    p.display(),
                    data.len(),
                    if a.append_fcs { " (FCS included)" } else { "" }
                );
            }
            Some(data)
        }
        None => {
            let n = a.random.unwrap_or(0);
            if n == 0 || n > MAX_PSDU_LEN {
                bail!("--random {n}: a PSDU holds 1 … {MAX_PSDU_LEN} octets");
            }
            None
        }
    };
    let format = match a.format {
        Some(f) => f,
        None => IqFormat::from_extension(&a.output).unwrap_or(IqFormat::Cf32),
    };
    let mut meta = Meta::new(format.sigmf_name(), semcom_phy::ofdm::SAMPLE_RATE_HZ);
    meta.description = Some(format!("semcom tx: {} frame(s) of IEEE 802.11a/g at {rate}", a.frames));
    let mut out = IqWriter::create(&a.output, format, meta)?;
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let mut tx = Transmitter::new();
    let mut buf: Vec<Complex32> = Vec::new();
    let mut octets = 0u64;
    for i in 0..a.frames {
        let psdu = match &fixed_psdu {
            Some(p) => p.clone(),
            None => {
                let n = a.random.unwrap_or(0);
                if n >= 4 {
                    let mut p: Vec<u8> = (0..n - 4).map(|_| rng.random()).collect();
                    append_fcs(&mut p);
                    p
                } else {
                    (0..n).map(|_| rng.random()).collect()
                }
            }
        };
        let seed = a.scrambler_seed.unwrap_or_else(|| rng.random_range(1..=127));
        buf.clear();
        if i > 0 {
            buf.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), a.gap));
        }
        let start = out.written() + buf.len() as u64;
        let n = tx.transmit(
            &psdu,
            &TxParams {
                rate,
                scrambler_seed: seed,
            },
            &mut buf,
        )?;
        if a.scale != 1.0 {
            for s in &mut buf {
                *s *= a.scale;
            }
        }
        out.write(&buf)?;
        out.annotate(Annotation {
            sample_start: start,
            sample_count: n as u64,
            label: format!("802.11a {rate}, {} octets", psdu.len()),
            comment: Some(format!(
                "scrambler seed {seed}, FCS {}",
                if semcom_phy::crc::fcs_ok(&psdu) {
                    "valid"
                } else {
                    "absent or invalid"
                }
            )),
        });
        octets += psdu.len() as u64;
    }
    let samples = out.finish()?;
    let secs = samples as f64 / semcom_phy::ofdm::SAMPLE_RATE_HZ;
    if a.output.as_os_str() == "-" {
        // Samples went to stdout; keep the summary on stderr.
        eprintln!(
            "{} frame(s), {octets} octets at {rate}: {samples} samples ({:.3} ms at 20 MS/s, {format})",
            a.frames,
            secs * 1e3
        );
    } else if a.json {
        println!(
            "{}",
            serde_json::json!({"frames": a.frames, "octets": octets, "rate_mbps": rate.mbps(), "samples": samples,
                "duration_s": secs, "format": format.sigmf_name(), "output": a.output})
        );
    } else {
        println!(
            "{} frame(s), {octets} octets at {rate}: {samples} samples ({:.3} ms at 20 MS/s, {format}) → {}",
            a.frames,
            secs * 1e3,
            a.output.display()
        );
    }
    Ok(())
}
