//! `semcom tx`: PSDUs → 802.11a/g IQ samples, to a radio (SoapySDR device, UDP virtual radio)
//! or a file.

use crate::radio::{self, RadioArgs, Way};
use crate::units;
use anyhow::{bail, Context, Result};
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_phy::crc::append_fcs;
use semcom_phy::signal::MAX_PSDU_LEN;
use semcom_phy::{Rate, RxConfig, TxParams};
use semcom_transport::radio::file::FileRadio;
use semcom_transport::radio::{si, Radio, RadioLink};
use semcom_transport::sigmf::Meta;
use semcom_transport::IqFormat;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("sink").required(true).args(["output", "device", "udp"])))]
pub struct TxArgs {
    /// Data rate in Mbit/s: 6, 9, 12, 18, 24, 36, 48 or 54.
    #[arg(short, long, default_value_t = 12)]
    rate: u32,
    /// Send this file's bytes as the PSDU, unchanged (`-` for stdin); 1 … 4095 octets.
    #[arg(long, conflicts_with_all = ["random", "items"], required_unless_present_any = ["random", "items"])]
    psdu: Option<PathBuf>,
    /// Append the CRC-32 FCS to the --psdu bytes.
    #[arg(long, requires = "psdu")]
    append_fcs: bool,
    /// Send random PSDUs of N octets: N − 4 random octets and their FCS (N ≥ 4), or N random
    /// octets (N < 4).
    #[arg(long, value_name = "N", conflicts_with = "items")]
    random: Option<usize>,
    /// Send each line of this file (`-` for stdin) as one frame: the line's bytes and their
    /// FCS (at most 4091 octets per line; empty lines are skipped).
    #[arg(long, value_name = "FILE")]
    items: Option<PathBuf>,
    /// Number of frames of --psdu or --random (default 1).
    #[arg(short = 'n', long, conflicts_with = "items")]
    frames: Option<u64>,
    /// Send the whole sequence of frames this many times.
    #[arg(long, default_value_t = 1, value_name = "N")]
    repeat: u64,
    /// Scrambler initial state, 1 … 127 (x1 in the least significant bit; decimal, 0x… or
    /// 0b…). Default: pseudo-random per frame, from --seed.
    #[arg(long, value_parser = units::scrambler_seed)]
    scrambler_seed: Option<u8>,
    /// Zero samples between frames (none before the first or after the last).
    #[arg(long, default_value_t = 400)]
    gap: usize,
    /// Idle time between frames (e.g. 10ms), instead of --gap samples.
    #[arg(long, value_parser = units::duration, conflicts_with = "gap")]
    interval: Option<std::time::Duration>,
    /// Seed of the random payloads and scrambler states.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Multiply the samples by this factor (the default keeps the standard's amplitude).
    #[arg(long, default_value_t = 1.0)]
    scale: f32,
    /// Sample format of raw outputs and UDP datagrams: cf32, ci16, cu8 or ci8 (default: cf32,
    /// or from the extension).
    #[arg(long, value_parser = parse_format)]
    format: Option<IqFormat>,
    /// Output file: raw IQ, a SigMF recording when it ends in .sigmf-data, or `-` for stdout.
    /// Instead of a radio.
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[command(flatten)]
    radio: RadioArgs,
    /// Print a JSON summary instead of a text one.
    #[arg(long)]
    json: bool,
}

pub fn parse_format(s: &str) -> Result<IqFormat, String> {
    IqFormat::parse(s).ok_or_else(|| format!("unknown sample format `{s}` (cf32, ci16, cu8, ci8)"))
}

/// Where frames come from.
enum Source {
    Fixed(Vec<u8>),
    Random(usize),
    Items(Vec<Vec<u8>>),
}

fn read_input(p: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    if p.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut data).context("reading stdin")?;
    } else {
        data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    }
    Ok(data)
}

fn source(a: &TxArgs) -> Result<Source> {
    if let Some(p) = &a.psdu {
        let mut data = read_input(p)?;
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
        return Ok(Source::Fixed(data));
    }
    if let Some(p) = &a.items {
        let data = read_input(p)?;
        let mut items = Vec::new();
        for (i, line) in data.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line.len() + 4 > MAX_PSDU_LEN {
                bail!(
                    "{} line {}: {} octets; a frame carries at most {} octets and its FCS",
                    p.display(),
                    i + 1,
                    line.len(),
                    MAX_PSDU_LEN - 4
                );
            }
            let mut psdu = line.to_vec();
            append_fcs(&mut psdu);
            items.push(psdu);
        }
        if items.is_empty() {
            bail!("{}: no items (one frame per non-empty line)", p.display());
        }
        return Ok(Source::Items(items));
    }
    let n = a.random.unwrap_or(0);
    if n == 0 || n > MAX_PSDU_LEN {
        bail!("--random {n}: a PSDU holds 1 … {MAX_PSDU_LEN} octets");
    }
    Ok(Source::Random(n))
}

pub fn run(a: TxArgs) -> Result<()> {
    let rate = Rate::from_mbps(a.rate)?;
    if a.frames == Some(0) {
        bail!("--frames must be at least 1");
    }
    if a.repeat == 0 {
        bail!("--repeat must be at least 1");
    }
    if !a.scale.is_finite() || a.scale <= 0.0 {
        bail!("--scale must be a positive number");
    }
    let src = source(&a)?;
    let per_round = match &src {
        Source::Items(v) => v.len() as u64,
        _ => a.frames.unwrap_or(1),
    };
    let total = per_round.saturating_mul(a.repeat);
    let sample_rate = a.radio.rate();
    let (radio, format): (Box<dyn Radio>, Option<IqFormat>) = match &a.output {
        Some(path) => {
            if a.radio.is_live() {
                bail!("-o writes a file; it cannot be combined with -a/--udp");
            }
            a.radio.check_device_only()?;
            let format = a
                .format
                .or_else(|| IqFormat::from_extension(path))
                .unwrap_or(IqFormat::Cf32);
            let mut meta = Meta::new(format.sigmf_name(), sample_rate);
            meta.frequency_hz = a.radio.frequency;
            meta.description = Some(format!("semcom tx: {total} frame(s) of IEEE 802.11a/g at {rate}"));
            (Box::new(FileRadio::create(path, format, meta)?), Some(format))
        }
        None => {
            if a.radio.device.is_some() && a.format.is_some() {
                bail!("--format applies to files and UDP; SoapySDR devices stream complex f32");
            }
            let format = a.format.unwrap_or(IqFormat::Cf32);
            (a.radio.open(Way::Tx, format)?, None)
        }
    };
    let info = radio.info().clone();
    let live = info.realtime;
    let gap = match a.interval {
        Some(d) => (d.as_secs_f64() * sample_rate).round() as u64,
        None => a.gap as u64,
    };
    let mut link = RadioLink::new(radio, RxConfig::default());
    link.set_tx_scale(a.scale);
    radio::install_stop_handler();
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let mut octets = 0u64;
    let mut sent = 0u64;
    let t0 = Instant::now();
    let progress = (live && !a.json && total > 1).then(|| {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} frames {per_sec} eta {eta}").expect("valid template"),
        );
        pb
    });
    let mut result = Ok(());
    'send: for _ in 0..a.repeat {
        for i in 0..per_round {
            if radio::stop_requested() {
                break 'send;
            }
            let psdu = match &src {
                Source::Fixed(p) => p.clone(),
                Source::Items(v) => v[i as usize].clone(),
                Source::Random(n) => {
                    if *n >= 4 {
                        let mut p: Vec<u8> = (0..n - 4).map(|_| rng.random()).collect();
                        append_fcs(&mut p);
                        p
                    } else {
                        (0..*n).map(|_| rng.random()).collect()
                    }
                }
            };
            let seed = a.scrambler_seed.unwrap_or_else(|| rng.random_range(1..=127));
            let r = (|| {
                if sent > 0 {
                    link.send_silence(gap)?;
                }
                link.send(
                    &psdu,
                    &TxParams {
                        rate,
                        scrambler_seed: seed,
                    },
                )
            })();
            if let Err(e) = r {
                result = Err(anyhow::Error::new(e).context(format!("transmitting frame {}", sent + 1)));
                break 'send;
            }
            sent += 1;
            octets += psdu.len() as u64;
            if let Some(pb) = &progress {
                pb.inc(1);
            }
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    // A live stream ends with a little silence, so the last frame clears the device's and the
    // receiver's pipelines before the carrier stops.
    if live && result.is_ok() && sent > 0 {
        if let Err(e) = link.send_silence(gap.max((sample_rate * 1e-3) as u64)) {
            result = Err(anyhow::Error::new(e).context("transmitting the closing silence"));
        }
    }
    let closing = link.end_tx().and_then(|()| link.radio_mut().finish());
    if let Err(e) = closing {
        // After a failed transmission, closing usually fails for the same reason: keep the
        // first error as the message.
        match result {
            Ok(()) => result = Err(anyhow::Error::new(e).context(format!("closing {}", info.name))),
            Err(_) => tracing::warn!("closing {}: {e}", info.name),
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let st = link.stats();
    let samples = st.tx_samples;
    let secs = samples as f64 / sample_rate;
    let r = st.radio;
    let to_stdout = a.output.as_ref().is_some_and(|p| p.as_os_str() == "-");
    let dest = match (&a.output, format) {
        (Some(p), Some(f)) => format!("{} ({f})", p.display()),
        _ => info.name.clone(),
    };
    if a.json && !to_stdout {
        println!(
            "{}",
            serde_json::json!({"frames": sent, "octets": octets, "rate_mbps": rate.mbps(), "samples": samples,
                "duration_s": secs, "format": format.map(|f| f.sigmf_name()), "output": a.output,
                "radio": info.name, "sample_rate": sample_rate, "wall_s": wall,
                "underflows": r.underflows, "late": r.late, "timeouts": r.timeouts, "stream_errors": r.errors,
                "interrupted": radio::stop_requested()})
        );
    } else {
        let line = format!(
            "{sent} frame(s), {octets} octets at {rate}: {samples} samples ({:.3} ms at {}) → {dest}",
            secs * 1e3,
            si(sample_rate, "S/s")
        );
        let radio_line = live.then(|| {
            format!(
                "{}: {} underflows, {} late, {} timeouts, {} stream errors; {wall:.2} s of wall time{}",
                info.name,
                r.underflows,
                r.late,
                r.timeouts,
                r.errors,
                if radio::stop_requested() { "; interrupted" } else { "" }
            )
        });
        // With samples on stdout, the summary goes to stderr.
        if to_stdout {
            eprintln!("{line}");
        } else {
            println!("{line}");
            if let Some(l) = radio_line {
                println!("{l}");
            }
        }
    }
    result
}
