//! `semcom channel`: a channel emulator process between a transmitter and a receiver, e.g.
//! `semcom tx --udp :5000` → `semcom channel --in udp:127.0.0.1:5000 --out udp:127.0.0.1:5001`
//! → `semcom rx --udp 127.0.0.1:5001`. The impairments are `semcom_phy::channel`'s models, run
//! on the stream as it passes.

use crate::radio;
use crate::tx::parse_format;
use crate::units;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use semcom_phy::channel::{Awgn, Cfo, Chain, Fading, FadingSpec, Impairment, PhaseNoise, TimingOffset};
use semcom_phy::{Complex32, Rate, Transmitter, TxParams};
use semcom_transport::radio::file::FileRadio;
use semcom_transport::radio::udp::{UdpConfig, UdpRadio};
use semcom_transport::radio::{si, Radio, ReaderThread, RxRead};
use semcom_transport::sigmf::Meta;
use semcom_transport::IqFormat;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FadingKind {
    /// No fading.
    None,
    /// Rayleigh, exponential power-delay profile (--delay-spread), --doppler.
    Rayleigh,
    /// Rician: Rayleigh plus a line-of-sight first tap (--k-factor).
    Rician,
    /// Rayleigh with a single tap (flat).
    FlatRayleigh,
}

#[derive(Args, Debug)]
pub struct ChannelArgs {
    /// Input stream: `udp:HOST:PORT` (listen there) or an IQ file / SigMF recording.
    #[arg(long = "in", value_name = "udp:HOST:PORT|FILE")]
    input: String,
    /// Output stream: `udp:HOST:PORT` (send there) or an IQ file / SigMF recording.
    #[arg(long = "out", value_name = "udp:HOST:PORT|FILE")]
    output: String,
    /// Sample rate of the stream, S/s (suffixes k, M, G). Files say their own.
    #[arg(short = 's', long = "sample-rate", value_parser = units::positive, default_value = "20M")]
    sample_rate: f64,
    /// SNR, dB: the mean power of an 802.11a burst at the standard's amplitude (semcom tx
    /// --scale 1), or --signal-power, over the noise power per sample. No noise when absent.
    #[arg(long, allow_hyphen_values = true)]
    snr: Option<f64>,
    /// Signal power the SNR refers to (mean power per sample of a burst).
    #[arg(long)]
    signal_power: Option<f64>,
    /// Carrier frequency offset, Hz (suffixes k, M).
    #[arg(long, default_value = "0", value_parser = units::si_number, allow_hyphen_values = true)]
    cfo: f64,
    /// Fading.
    #[arg(long, value_enum, default_value_t = FadingKind::None)]
    fading: FadingKind,
    /// Maximum Doppler frequency of the fading, Hz.
    #[arg(long, default_value = "20", value_parser = units::si_number)]
    doppler: f64,
    /// RMS delay spread of the fading profile, samples.
    #[arg(long, default_value_t = 1.0)]
    delay_spread: f64,
    /// Rician K-factor (linear) of the first tap.
    #[arg(long, default_value_t = 10.0)]
    k_factor: f64,
    /// Sampling-clock offset of the receiver against the transmitter, ppm.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    sfo: f64,
    /// Phase-noise linewidth, Hz.
    #[arg(long, default_value = "0", value_parser = units::si_number)]
    phase_noise: f64,
    /// Seed of the random impairments.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sample format of the output datagrams or raw file: cf32, ci16, cu8, ci8.
    #[arg(long, value_parser = parse_format)]
    format: Option<IqFormat>,
    /// Emulate network loss after the channel: drop every Nth output datagram (the receiver
    /// sees, counts and zero-fills the gaps).
    #[arg(long, value_name = "N")]
    drop_every: Option<u64>,
    /// Stop after this long (e.g. 30s). Otherwise the emulator runs until its input ends or
    /// Ctrl-C.
    #[arg(long, value_parser = units::duration)]
    duration: Option<Duration>,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

fn udp_addr(s: &str) -> Option<&str> {
    s.strip_prefix("udp:")
}

/// The power per sample of an 802.11a burst at the transmitter's standard amplitude: the
/// average over the eight rates of a 1000-octet frame (they agree within a few 0.01 dB).
fn reference_burst_power() -> Result<f64> {
    let mut tx = Transmitter::new();
    let mut buf: Vec<Complex32> = Vec::new();
    let psdu: Vec<u8> = (0..1000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut sum = 0.0;
    for rate in Rate::ALL {
        buf.clear();
        tx.transmit(
            &psdu,
            &TxParams {
                rate,
                scrambler_seed: 93,
            },
            &mut buf,
        )?;
        sum += semcom_phy::channel::burst_power(&buf);
    }
    Ok(sum / Rate::ALL.len() as f64)
}

fn build_chain(a: &ChannelArgs, rate: f64) -> Result<Chain> {
    let mut ch = Chain::new();
    let spec = match a.fading {
        FadingKind::None => None,
        FadingKind::Rayleigh => Some(FadingSpec::exponential(a.delay_spread, a.doppler, 0.0)),
        FadingKind::Rician => Some(FadingSpec::exponential(a.delay_spread, a.doppler, a.k_factor)),
        FadingKind::FlatRayleigh => Some(FadingSpec::flat(a.doppler, 0.0)),
    };
    if let Some(mut spec) = spec {
        if !(a.delay_spread > 0.0 && a.delay_spread <= 16.0) {
            bail!("--delay-spread must be in (0, 16] samples");
        }
        spec.sample_rate_hz = rate;
        // The tap gains (sums of sinusoids, the costly part) are recomputed as the taps turn
        // by 0.01 rad at the Doppler frequency (every 1592 samples at 20 Hz, 20 MS/s), at
        // least every 4096 samples: the staircase error is then 40 dB below the taps, and
        // the emulator keeps up with the stream in real time.
        let update = if a.doppler > 0.0 {
            (0.01 * rate / (2.0 * std::f64::consts::PI * a.doppler)).clamp(16.0, 4096.0) as u64
        } else {
            4096
        };
        ch.push(Fading::new(spec, a.seed)?.with_update_interval(update));
    }
    if a.sfo != 0.0 {
        ch.push(TimingOffset::new(0.0, a.sfo)?);
    }
    if a.phase_noise != 0.0 {
        ch.push(PhaseNoise::new(a.phase_noise, rate, a.seed.wrapping_add(1))?);
    }
    if a.cfo != 0.0 {
        ch.push(Cfo::new(a.cfo, rate, 0.0)?);
    }
    if let Some(snr) = a.snr {
        let p = match a.signal_power {
            Some(p) if p.is_finite() && p > 0.0 => p,
            Some(p) => bail!("--signal-power {p} must be positive"),
            None => reference_burst_power()?,
        };
        ch.push(Awgn::for_snr(snr, p, a.seed.wrapping_add(2))?);
    }
    Ok(ch)
}

pub fn run(a: ChannelArgs) -> Result<()> {
    let mut input: Box<dyn Radio> = match udp_addr(&a.input) {
        // The socket is drained on a thread of its own: a moment of slow processing here is
        // then not a burst of lost datagrams (up to 64 × 16384 samples wait, 52 ms at 20 MS/s).
        // Gaps are not filled with zeros here but passed on as gaps (Radio::skip below): a
        // relay that fell behind must not also spend its time on zeros.
        Some(addr) => Box::new(ReaderThread::spawn(
            UdpRadio::listen(
                addr,
                UdpConfig {
                    sample_rate_hz: a.sample_rate,
                    max_fill_samples: 0,
                    ..UdpConfig::default()
                },
            )?,
            1 << 14,
            64,
        )),
        None => Box::new(FileRadio::open(Path::new(&a.input), None, None)?),
    };
    if a.drop_every.is_some() && udp_addr(&a.output).is_none() {
        bail!("--drop-every drops UDP datagrams; the output is not udp:HOST:PORT");
    }
    let rate = input.info().sample_rate_hz;
    let mut chain = build_chain(&a, rate)?;
    let mut output: Box<dyn Radio> = match udp_addr(&a.output) {
        Some(addr) => Box::new(UdpRadio::send_to(
            addr,
            UdpConfig {
                sample_rate_hz: rate,
                format: a.format.unwrap_or(IqFormat::Cf32),
                // A live input is paced already; a file is played at its sample rate.
                pace: !input.info().realtime,
                drop_every: a.drop_every.unwrap_or(0),
                ..UdpConfig::default()
            },
        )?),
        None => {
            let path = Path::new(&a.output);
            if udp_addr(&a.input).is_none() {
                radio::refuse_overwriting(Path::new(&a.input), path)?;
            }
            let format = a
                .format
                .or_else(|| IqFormat::from_extension(path))
                .unwrap_or(IqFormat::Cf32);
            let mut meta = Meta::new(format.sigmf_name(), rate);
            meta.description = Some(format!("semcom channel: {} through {}", a.input, chain.describe()));
            Box::new(FileRadio::create(path, format, meta)?)
        }
    };
    radio::install_stop_handler();
    eprintln!(
        "channel {} → [{}] → {} at {}",
        input.info().name,
        chain.describe(),
        output.info().name,
        si(rate, "S/s")
    );
    let t0 = Instant::now();
    let mut buf = Vec::with_capacity(1 << 16);
    let mut impaired = Vec::with_capacity(1 << 16);
    let mut samples = 0u64;
    let mut skipped = 0u64;
    let mut next_index: Option<u64> = None;
    let mut failure = None;
    loop {
        if radio::stop_requested() || a.duration.is_some_and(|d| t0.elapsed() >= d) {
            break;
        }
        buf.clear();
        match input.read(&mut buf, 1 << 14) {
            Ok(RxRead::Samples { count, time_ns }) => {
                // A gap in the input (by its timestamps) is a gap in the output.
                if let Some(t) = time_ns {
                    let index = (t as f64 * rate * 1e-9).round() as u64;
                    if let Some(gap) = next_index.and_then(|n| index.checked_sub(n)).filter(|g| *g > 0) {
                        if let Err(e) = output.skip(gap) {
                            failure = Some(e);
                            break;
                        }
                        skipped += gap;
                    }
                    next_index = Some(index + count as u64);
                }
            }
            Ok(RxRead::Timeout) => {
                // Nothing coming: pass on what is buffered so the receiver is not kept waiting.
                if let Err(e) = output.end_burst() {
                    failure = Some(e);
                    break;
                }
                continue;
            }
            Ok(RxRead::End) => break,
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        impaired.clear();
        chain.process(&buf, &mut impaired);
        samples += buf.len() as u64;
        if let Err(e) = output.write(&impaired) {
            failure = Some(e);
            break;
        }
    }
    let closed = output.finish();
    let wall = t0.elapsed().as_secs_f64();
    let (i, o) = (input.stats(), output.stats());
    if a.json {
        println!(
            "{}",
            serde_json::json!({"samples": samples, "gap_samples": skipped, "wall_s": wall, "channel": chain.describe(),
                "lost_packets": i.lost_packets, "lost_samples": i.lost_samples, "late_packets": i.late_packets,
                "bad_packets": i.bad_packets, "timeouts": i.timeouts, "send_errors": o.errors,
                "dropped_packets": o.lost_packets})
        );
    } else {
        println!(
            "channel: {samples} samples ({skipped} more in gaps) in {wall:.1} s; input {}: {} lost packets ({} samples), {} late, {} foreign; output {}: {} send errors, {} dropped (--drop-every)",
            input.info().name,
            i.lost_packets,
            i.lost_samples,
            i.late_packets,
            i.bad_packets,
            output.info().name,
            o.errors,
            o.lost_packets
        );
    }
    if let Some(e) = failure {
        return Err(e).context("channel stream");
    }
    closed.context("closing the output")?;
    Ok(())
}
