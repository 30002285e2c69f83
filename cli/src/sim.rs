//! `semcom sim …`: Monte-Carlo link simulations.

use crate::{plot, units};
use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use semcom_phy::channel::FadingSpec;
use semcom_phy::sim::{frame_seed, FrameSim, PerPoint, Propagation, SimParams};
use semcom_phy::theory::{ber_awgn_esn0, esn0_db_from_snr_db};
use semcom_phy::{Complex32, Rate};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// PER and BER of the 802.11a PHY against SNR, over a simulated channel.
    Phy(PhyArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ChannelKind {
    /// White Gaussian noise only.
    Awgn,
    /// Rayleigh fading, exponential power-delay profile (--delay-spread), --doppler.
    Rayleigh,
    /// Rician fading: Rayleigh plus a line-of-sight first tap (--k-factor).
    Rician,
    /// Rayleigh fading with a single tap (flat).
    FlatRayleigh,
    /// Static taps (--taps).
    Multipath,
}

#[derive(Args, Debug)]
pub struct PhyArgs {
    /// Data rate in Mbit/s: 6, 9, 12, 18, 24, 36, 48 or 54.
    #[arg(short, long, default_value_t = 12)]
    rate: u32,
    /// PSDU length in octets (4 … 4095; the last four are the FCS).
    #[arg(short, long, default_value_t = 1000)]
    length: usize,
    /// SNR points in dB, A:STEP:B (per-sample SNR over the burst / noise power).
    #[arg(long, default_value = "0:1:10", value_parser = units::points, allow_hyphen_values = true)]
    snr: units::Points,
    /// Channel model.
    #[arg(long, value_enum, default_value_t = ChannelKind::Awgn)]
    channel: ChannelKind,
    /// Frames per SNR point.
    #[arg(short = 'n', long, default_value_t = 500)]
    frames: u64,
    /// RMS delay spread of the fading profile, in samples (1 sample = 50 ns).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    delay_spread: f64,
    /// Maximum Doppler frequency of fading, Hz (0: block fading, one realisation per frame).
    #[arg(long, default_value_t = 0.0, value_parser = units::si_number)]
    doppler: f64,
    /// Rician K-factor (linear) of the first tap.
    #[arg(long, default_value_t = 10.0, allow_hyphen_values = true)]
    k_factor: f64,
    /// Static channel taps at 0, 1, 2 … samples, comma-separated complex numbers.
    #[arg(long, value_delimiter = ',', value_parser = units::complex, allow_hyphen_values = true, default_value = "0.8,0.45-0.3j,0.2+0.15j,0.1j")]
    taps: Vec<Complex32>,
    /// Carrier frequency offset drawn per frame uniformly in ±this, Hz (suffixes k, M).
    #[arg(long, default_value_t = 0.0, value_parser = units::si_number, allow_hyphen_values = true)]
    cfo: f64,
    /// Sampling-clock offset, ppm: the receiver's clock relative to the transmitter's.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    sfo: f64,
    /// Phase-noise linewidth, Hz.
    #[arg(long, default_value_t = 0.0, value_parser = units::si_number)]
    phase_noise: f64,
    /// Base seed; every frame's channel and payload derive from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write a plot (PNG, or SVG when the name ends in .svg).
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn run(c: SimCommand) -> Result<()> {
    match c {
        SimCommand::Phy(a) => phy(a),
    }
}

fn phy(a: PhyArgs) -> Result<()> {
    let snr = a.snr.0.clone();
    let rate = Rate::from_mbps(a.rate)?;
    if !(4..=semcom_phy::signal::MAX_PSDU_LEN).contains(&a.length) {
        bail!(
            "--length {}: must be 4 … 4095 octets (the last four carry the FCS)",
            a.length
        );
    }
    if a.frames == 0 {
        bail!("--frames must be at least 1");
    }
    if !(a.delay_spread > 0.0 && a.delay_spread <= 16.0) {
        bail!("--delay-spread must be in (0, 16] samples");
    }
    if a.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    let propagation = match a.channel {
        ChannelKind::Awgn => Propagation::Awgn,
        ChannelKind::Rayleigh => Propagation::Fading(FadingSpec::exponential(a.delay_spread, a.doppler, 0.0)),
        ChannelKind::Rician => Propagation::Fading(FadingSpec::exponential(a.delay_spread, a.doppler, a.k_factor)),
        ChannelKind::FlatRayleigh => Propagation::Fading(FadingSpec::flat(a.doppler, 0.0)),
        ChannelKind::Multipath => Propagation::Static(a.taps.clone()),
    };
    let base = SimParams {
        rate,
        psdu_len: a.length,
        snr_db: 0.0,
        propagation,
        max_cfo_hz: a.cfo.abs(),
        sfo_ppm: a.sfo,
        phase_noise_hz: a.phase_noise,
        rx: Default::default(),
    };
    // Validate the channel parameters once, before spawning work.
    FrameSim::new().run(
        &SimParams {
            snr_db: snr[0],
            ..base.clone()
        },
        0,
        false,
    )?;

    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let total = a.frames * snr.len() as u64;
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} frames ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let next = AtomicU64::new(0);
    let results = Mutex::new(vec![PerPoint::default(); snr.len()]);
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut sim = FrameSim::new();
                let mut local = vec![PerPoint::default(); snr.len()];
                loop {
                    let job = next.fetch_add(1, Ordering::Relaxed);
                    if job >= total {
                        break;
                    }
                    let (point, frame) = ((job / a.frames) as usize, job % a.frames);
                    let p = SimParams {
                        snr_db: snr[point],
                        ..base.clone()
                    };
                    match sim.run(&p, frame_seed(a.seed, point as u64, frame), false) {
                        Ok(o) => local[point].add(&o),
                        Err(e) => {
                            *error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.into());
                            break;
                        }
                    }
                    bar.inc(1);
                }
                let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
                for (acc, l) in r.iter_mut().zip(&local) {
                    acc.merge(l);
                }
            });
        }
    });
    bar.finish_and_clear();
    if let Some(e) = error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let m = rate.modulation();
    let theory = |snr: f64| ber_awgn_esn0(m, 10f64.powf(esn0_db_from_snr_db(snr) / 10.0));
    let channel_desc = match a.channel {
        ChannelKind::Awgn => "awgn".to_string(),
        ChannelKind::Rayleigh => format!(
            "rayleigh (rms delay {} samples, Doppler {} Hz)",
            a.delay_spread, a.doppler
        ),
        ChannelKind::Rician => format!(
            "rician (K {}, rms delay {} samples, Doppler {} Hz)",
            a.k_factor, a.delay_spread, a.doppler
        ),
        ChannelKind::FlatRayleigh => format!("flat rayleigh (Doppler {} Hz)", a.doppler),
        ChannelKind::Multipath => format!("static taps {:?}", a.taps),
    };
    if a.json {
        let points: Vec<_> = snr
            .iter()
            .zip(&results)
            .map(|(&snr, r)| {
                json!({"snr_db": snr, "frames": r.frames, "lost": r.lost, "per": r.per(), "ber": r.ber(),
                    "header_lost": r.header_lost, "snr_est_db": if r.snr_est_n > 0 { json!(r.snr_est_sum / r.snr_est_n as f64) } else { json!(null) },
                    "uncoded_ber_theory": theory(snr)})
            })
            .collect();
        println!(
            "{}",
            json!({"rate_mbps": rate.mbps(), "length": a.length, "channel": channel_desc, "frames_per_point": a.frames,
                "seed": a.seed, "cfo_hz_max": a.cfo.abs(), "sfo_ppm": a.sfo, "phase_noise_hz": a.phase_noise,
                "snr_definition": "per-sample signal power over the burst / noise power", "points": points})
        );
    } else {
        println!(
            "802.11a {rate}, {} octets, {channel_desc}, {} frames per point",
            a.length, a.frames
        );
        println!(
            "{:>8} {:>9} {:>11} {:>10} {:>12} {:>14}",
            "SNR dB", "PER", "BER", "hdr lost", "SNR est dB", "uncoded theory"
        );
        for (&snr, r) in snr.iter().zip(&results) {
            let est = if r.snr_est_n > 0 {
                format!("{:.2}", r.snr_est_sum / r.snr_est_n as f64)
            } else {
                "-".into()
            };
            println!(
                "{snr:>8.2} {:>9.4} {:>11.3e} {:>10} {:>12} {:>14.3e}",
                r.per(),
                r.ber(),
                r.header_lost,
                est,
                theory(snr)
            );
        }
    }
    if let Some(path) = &a.plot {
        let title = format!("802.11a {rate}, {} octets, {}", a.length, channel_desc);
        let per: Vec<(f64, f64)> = snr.iter().zip(&results).map(|(&s, r)| (s, r.per())).collect();
        let ber: Vec<(f64, f64)> = snr.iter().zip(&results).map(|(&s, r)| (s, r.ber())).collect();
        let lo = snr[0];
        let hi = *snr.last().unwrap_or(&lo);
        let th: Vec<(f64, f64)> = (0..=200)
            .map(|i| lo + (hi - lo) * f64::from(i) / 200.0)
            .map(|s| (s, theory(s)))
            .collect();
        plot::log_curves(
            path,
            &title,
            "SNR (dB, per sample)",
            "error rate",
            &[
                plot::Series {
                    name: "PER".into(),
                    points: per,
                    dashed: false,
                },
                plot::Series {
                    name: "BER after decoding (frames with SIGNAL)".into(),
                    points: ber,
                    dashed: false,
                },
                plot::Series {
                    name: format!("uncoded {} BER, theory", m.name()),
                    points: th,
                    dashed: true,
                },
            ],
        )?;
        if !a.json {
            println!("plot → {}", path.display());
        }
    }
    Ok(())
}
