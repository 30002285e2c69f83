//! `semcom sim …`: Monte-Carlo link simulations.

use crate::{plot, units};
use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use semcom_phy::channel::FadingSpec;
use semcom_phy::ldpc::{LdpcCode, MinSumConfig};
use semcom_phy::semcom::Mcs;
use semcom_phy::sim::{frame_seed, CodeDecoder, CodeSim, FrameSim, PerPoint, Propagation, SegmentSpec, SimParams};
use semcom_phy::theory::{
    ber_awgn_esn0, esn0_db_from_snr_db, normal_approx_fer, shannon_limit_biawgn_db, shannon_limit_gaussian_db,
};
use semcom_phy::{Complex32, Rate};
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// PER and BER against SNR over a simulated channel: the 802.11a PHY (--rate), or the
    /// semcom profile (--mcs, or --segments for unequal error protection).
    Phy(PhyArgs),
    /// BER and FER of an LDPC code alone on BPSK/AWGN against Eb/N0, with the Shannon and
    /// finite-length (normal approximation) bounds.
    Code(CodeArgs),
    /// The link-adaptation table: per semcom MCS, the lowest SNR at which the whole PHY meets a
    /// target PER (bisection over simulated frames).
    Rates(RatesArgs),
    /// Sensor windows over the PHY: event accuracy and reconstruction NRMSE against SNR, next to
    /// the raw window with zstd over the same PHY.
    Sensor(crate::sensor::SimArgs),
    /// Items through the whole stack (codec, link, PHY, channel): the semantic path against
    /// zstd over 802.11a at equal airtime per item, per modality, channel and SNR.
    Link(Box<crate::simlink::SimLinkArgs>),
    /// Images over the PHY at a channel-use budget (k/n): PSNR and MS-SSIM against SNR, the
    /// JPEG + 802.11a chain or an analog JSCC model on analog semcom frames, equal airtime.
    Image(crate::simimage::SimImageArgs),
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
    /// Data rate in Mbit/s: 6, 9, 12, 18, 24, 36, 48 or 54 (802.11a profile).
    #[arg(short, long, default_value_t = 12)]
    rate: u32,
    /// Semcom profile, one segment of --length octets at this MCS: <bpsk|qpsk|16qam|64qam|256qam|1024qam>-<1/2|2/3|3/4|5/6>.
    #[arg(long, conflicts_with = "segments")]
    mcs: Option<String>,
    /// Semcom profile with unequal error protection: up to four segments MCS:CLASS:OCTETS,
    /// comma-separated, e.g. qpsk-1/2:0:200,16qam-3/4:1:800.
    #[arg(long, value_delimiter = ',')]
    segments: Vec<String>,
    /// PSDU length in octets (4 … 4095; the last four are the FCS).
    #[arg(short, long, default_value_t = 1000)]
    length: usize,
    /// SNR points in dB, A:STEP:B or a comma-separated list (per-sample SNR over the burst / noise power).
    #[arg(long, default_value = "0:1:10", value_parser = units::points, allow_hyphen_values = true)]
    snr: units::Points,
    /// Channel model.
    #[arg(long, value_enum, default_value_t = ChannelKind::Awgn)]
    channel: ChannelKind,
    /// Frames per SNR point.
    #[arg(short = 'n', long, default_value_t = 500)]
    frames: u64,
    /// RMS delay spread of the fading profile, in samples (1 sample = 50 ns).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true, value_parser = units::delay_spread)]
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
    #[arg(long, value_parser = units::at_least_one)]
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
        SimCommand::Code(a) => code(a),
        SimCommand::Rates(a) => rates(a),
        SimCommand::Sensor(a) => crate::sensor::sim(a),
        SimCommand::Link(a) => crate::simlink::run(*a),
        SimCommand::Image(a) => crate::simimage::run(a),
    }
}

/// Parses `MCS:CLASS:OCTETS`.
fn segment_spec(s: &str) -> Result<SegmentSpec> {
    let parts: Vec<&str> = s.split(':').collect();
    let [mcs, class, len] = parts.as_slice() else {
        bail!("--segments `{s}`: expected MCS:CLASS:OCTETS, e.g. qpsk-1/2:0:200");
    };
    let Some(mcs) = Mcs::from_name(mcs) else {
        bail!("--segments `{s}`: unknown MCS `{mcs}` (e.g. qpsk-1/2, 16qam-3/4, 256qam-5/6)");
    };
    let class: u8 = match class.trim().parse() {
        Ok(c) if c <= 3 => c,
        _ => bail!("--segments `{s}`: class must be 0 … 3"),
    };
    let len: usize = match len.trim().parse() {
        Ok(l) if (4..=semcom_phy::semcom::MAX_SEGMENT_LEN).contains(&l) => l,
        _ => bail!("--segments `{s}`: octets must be 4 … 4095 (the last four carry the FCS)"),
    };
    Ok(SegmentSpec { mcs, class, len })
}

fn phy(a: PhyArgs) -> Result<()> {
    let snr = a.snr.0.clone();
    let rate = Rate::from_mbps(a.rate)?;
    let semcom: Vec<SegmentSpec> = if let Some(m) = &a.mcs {
        vec![segment_spec(&format!("{m}:0:{}", a.length))?]
    } else {
        a.segments.iter().map(|s| segment_spec(s)).collect::<Result<_>>()?
    };
    if semcom.len() > semcom_phy::semcom::MAX_SEGMENTS {
        bail!("--segments: at most {} segments", semcom_phy::semcom::MAX_SEGMENTS);
    }
    if !(4..=semcom_phy::signal::MAX_PSDU_LEN).contains(&a.length) {
        bail!(
            "--length {}: must be 4 … 4095 octets (the last four carry the FCS)",
            a.length
        );
    }
    if a.frames == 0 {
        bail!("--frames must be at least 1");
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
        semcom: semcom.clone(),
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
    let m = semcom.first().map_or(rate.modulation(), |s| s.mcs.modulation);
    let profile = if semcom.is_empty() {
        format!("802.11a {rate}, {} octets", a.length)
    } else {
        let segs: Vec<String> = semcom
            .iter()
            .map(|s| format!("{} class {} {} octets", s.mcs, s.class, s.len))
            .collect();
        format!("semcom LDPC: {}", segs.join(" + "))
    };
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
                let seg_loss: Vec<f64> = (0..semcom.len()).map(|i| r.segment_loss(i)).collect();
                json!({"snr_db": snr, "frames": r.frames, "lost": r.lost, "per": r.per(), "ber": r.ber(),
                    "header_lost": r.header_lost, "snr_est_db": if r.snr_est_n > 0 { json!(r.snr_est_sum / r.snr_est_n as f64) } else { json!(null) },
                    "uncoded_ber_theory": theory(snr), "segment_loss": seg_loss})
            })
            .collect();
        println!(
            "{}",
            json!({"profile": profile, "rate_mbps": if semcom.is_empty() { json!(rate.mbps()) } else { json!(null) },
                "segments": semcom.iter().map(|s| json!({"mcs": s.mcs.name(), "class": s.class, "octets": s.len})).collect::<Vec<_>>(),
                "length": a.length, "channel": channel_desc, "frames_per_point": a.frames,
                "seed": a.seed, "cfo_hz_max": a.cfo.abs(), "sfo_ppm": a.sfo, "phase_noise_hz": a.phase_noise,
                "snr_definition": "per-sample signal power over the burst / noise power", "points": points})
        );
    } else {
        println!("{profile}, {channel_desc}, {} frames per point", a.frames);
        print!(
            "{:>8} {:>9} {:>11} {:>10} {:>12} {:>14}",
            "SNR dB", "PER", "BER", "hdr lost", "SNR est dB", "uncoded theory"
        );
        if semcom.len() > 1 {
            for i in 0..semcom.len() {
                print!(" {:>10}", format!("seg{i} loss"));
            }
        }
        println!();
        for (&snr, r) in snr.iter().zip(&results) {
            let est = if r.snr_est_n > 0 {
                format!("{:.2}", r.snr_est_sum / r.snr_est_n as f64)
            } else {
                "-".into()
            };
            print!(
                "{snr:>8.2} {:>9.4} {:>11.3e} {:>10} {:>12} {:>14.3e}",
                r.per(),
                r.ber(),
                r.header_lost,
                est,
                theory(snr)
            );
            if semcom.len() > 1 {
                for i in 0..semcom.len() {
                    print!(" {:>10.4}", r.segment_loss(i));
                }
            }
            println!();
        }
    }
    if let Some(path) = &a.plot {
        let title = format!("{profile}, {channel_desc}");
        let per: Vec<(f64, f64)> = snr.iter().zip(&results).map(|(&s, r)| (s, r.per())).collect();
        let seg_series: Vec<plot::Series> = if semcom.len() > 1 {
            semcom
                .iter()
                .enumerate()
                .map(|(i, s)| plot::Series {
                    name: format!("segment {i} loss ({}, class {})", s.mcs, s.class),
                    points: snr.iter().zip(&results).map(|(&x, r)| (x, r.segment_loss(i))).collect(),
                    dashed: false,
                })
                .collect()
        } else {
            Vec::new()
        };
        let ber: Vec<(f64, f64)> = snr.iter().zip(&results).map(|(&s, r)| (s, r.ber())).collect();
        let lo = snr[0];
        let hi = *snr.last().unwrap_or(&lo);
        let th: Vec<(f64, f64)> = (0..=200)
            .map(|i| lo + (hi - lo) * f64::from(i) / 200.0)
            .map(|s| (s, theory(s)))
            .collect();
        let mut series = vec![
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
        ];
        series.extend(seg_series);
        plot::log_curves(path, &title, "SNR (dB, per sample)", "error rate", &series)?;
        if !a.json {
            println!("plot → {}", path.display());
        }
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DecoderKind {
    /// The receiver's layered normalized min-sum on 8-bit LLRs.
    MinSum,
    /// Flooding sum-product (belief propagation) in f64: the reference.
    SumProduct,
}

#[derive(Args, Debug)]
pub struct CodeArgs {
    /// The code: ldpc-<648|1296|1944>-<1/2|2/3|3/4|5/6>.
    #[arg(long, default_value = "ldpc-1944-1/2")]
    code: String,
    /// Eb/N0 points in dB (per information bit), A:STEP:B or a comma-separated list.
    #[arg(long, default_value = "0:0.25:3", value_parser = units::points, allow_hyphen_values = true)]
    ebn0: units::Points,
    /// Decoders to run, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "min-sum")]
    decoders: Vec<DecoderKind>,
    /// Iterations at most, min-sum.
    #[arg(long, default_value_t = 20)]
    iterations: u32,
    /// Iterations at most, sum-product.
    #[arg(long, default_value_t = 50)]
    sp_iterations: u32,
    /// Codewords per point at most.
    #[arg(short = 'n', long, default_value_t = 20_000)]
    frames: u64,
    /// Stop a point once this many frame errors are counted (checked every 256 codewords, so
    /// the result does not depend on the thread count).
    #[arg(long, default_value_t = 100)]
    max_errors: u64,
    /// Frame error rate at which the crossing Eb/N0 is reported (log-linear interpolation).
    #[arg(long, default_value_t = 1e-2)]
    target_fer: f64,
    /// Base seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_parser = units::at_least_one)]
    threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write a plot (PNG, or SVG when the name ends in .svg).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Counts of one decoder at one Eb/N0.
#[derive(Clone, Copy, Debug, Default)]
struct CodePoint {
    frames: u64,
    frame_errors: u64,
    bit_errors: u64,
    iterations: u64,
}

impl CodePoint {
    fn fer(&self) -> f64 {
        self.frame_errors as f64 / self.frames.max(1) as f64
    }
}

/// Eb/N0 where a falling FER curve crosses `target`, interpolating log10(FER) linearly.
fn crossing(points: &[(f64, f64)], target: f64) -> Option<f64> {
    points.windows(2).find_map(|w| {
        let ((x0, f0), (x1, f1)) = (w[0], w[1]);
        (f0 >= target && f1 < target && f1 > 0.0).then(|| {
            let (l0, l1, lt) = (f0.log10(), f1.log10(), target.log10());
            x0 + (x1 - x0) * (l0 - lt) / (l0 - l1)
        })
    })
}

fn code(a: CodeArgs) -> Result<()> {
    let Some(code) = LdpcCode::from_name(&a.code) else {
        bail!(
            "--code {}: expected ldpc-<648|1296|1944>-<1/2|2/3|3/4|5/6>, e.g. ldpc-1944-1/2",
            a.code
        );
    };
    if a.frames == 0 || a.max_errors == 0 || a.iterations == 0 || a.sp_iterations == 0 {
        bail!("--frames, --max-errors and the iteration counts must be at least 1");
    }
    if !(a.target_fer > 0.0 && a.target_fer < 1.0) {
        bail!("--target-fer must be in (0, 1)");
    }
    let mut decoders = a.decoders.clone();
    decoders.dedup();
    let ebn0 = a.ebn0.0.clone();
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    const BATCH: u64 = 256;
    let bar = ProgressBar::new(a.frames * (ebn0.len() * decoders.len()) as u64).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} codewords (at most)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = vec![vec![CodePoint::default(); ebn0.len()]; decoders.len()];
    for (di, &dk) in decoders.iter().enumerate() {
        let decoder = match dk {
            DecoderKind::MinSum => CodeDecoder::MinSum(MinSumConfig {
                max_iterations: a.iterations,
                early_termination: true,
            }),
            DecoderKind::SumProduct => CodeDecoder::SumProduct(a.sp_iterations),
        };
        for (pi, &e) in ebn0.iter().enumerate() {
            let acc = &mut results[di][pi];
            while acc.frames < a.frames && acc.frame_errors < a.max_errors {
                let start = acc.frames;
                let end = (start + BATCH).min(a.frames);
                let next = AtomicU64::new(start);
                let batch = Mutex::new(CodePoint::default());
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            let mut sim = CodeSim::new(code, decoder);
                            let mut local = CodePoint::default();
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= end {
                                    break;
                                }
                                // The same codewords and noise for every decoder.
                                let o = sim.run(e, frame_seed(a.seed, pi as u64, i));
                                local.frames += 1;
                                local.frame_errors += u64::from(o.frame_error);
                                local.bit_errors += u64::from(o.bit_errors);
                                local.iterations += u64::from(o.iterations);
                                bar.inc(1);
                            }
                            let mut b = batch.lock().unwrap_or_else(|e| e.into_inner());
                            b.frames += local.frames;
                            b.frame_errors += local.frame_errors;
                            b.bit_errors += local.bit_errors;
                            b.iterations += local.iterations;
                        });
                    }
                });
                let b = batch.into_inner().unwrap_or_else(|e| e.into_inner());
                acc.frames += b.frames;
                acc.frame_errors += b.frame_errors;
                acc.bit_errors += b.bit_errors;
                acc.iterations += b.iterations;
            }
        }
    }
    bar.finish_and_clear();
    let (n, k) = (code.n(), code.k());
    let rate = code.rate().value();
    let shannon_bpsk = shannon_limit_biawgn_db(rate);
    let shannon_gauss = shannon_limit_gaussian_db(rate);
    let name = |d: DecoderKind| match d {
        DecoderKind::MinSum => format!("layered min-sum, {} it.", a.iterations),
        DecoderKind::SumProduct => format!("sum-product, {} it.", a.sp_iterations),
    };
    let curves: Vec<Vec<(f64, f64)>> = results
        .iter()
        .map(|r| ebn0.iter().zip(r).map(|(&e, p)| (e, p.fer())).collect())
        .collect();
    let crossings: Vec<Option<f64>> = curves.iter().map(|c| crossing(c, a.target_fer)).collect();
    let bound_curve: Vec<(f64, f64)> = ebn0.iter().map(|&e| (e, normal_approx_fer(n, k, e))).collect();
    let bound_crossing = {
        // The bound is smooth: bisect it rather than interpolate between the points.
        let (mut lo, mut hi) = (shannon_bpsk - 1.0, shannon_bpsk + 6.0);
        for _ in 0..50 {
            let mid = 0.5 * (lo + hi);
            if normal_approx_fer(n, k, mid) > a.target_fer {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    };
    if a.json {
        let decs: Vec<_> = decoders
            .iter()
            .zip(&results)
            .zip(&crossings)
            .map(|((&d, r), c)| {
                let points: Vec<_> = ebn0
                    .iter()
                    .zip(r)
                    .map(|(&e, p)| {
                        json!({"ebn0_db": e, "frames": p.frames, "frame_errors": p.frame_errors, "fer": p.fer(),
                            "ber": p.bit_errors as f64 / (p.frames.max(1) * k as u64) as f64,
                            "mean_iterations": p.iterations as f64 / p.frames.max(1) as f64})
                    })
                    .collect();
                json!({"decoder": name(d), "ebn0_db_at_target_fer": c, "points": points})
            })
            .collect();
        println!(
            "{}",
            json!({"code": code.name(), "n": n, "k": k, "channel": "BPSK over real AWGN, exact LLRs",
                "target_fer": a.target_fer, "seed": a.seed, "shannon_limit_bpsk_db": shannon_bpsk,
                "shannon_limit_gaussian_db": shannon_gauss, "normal_approximation_ebn0_db_at_target_fer": bound_crossing,
                "decoders": decs})
        );
    } else {
        println!("{} (n = {n}, k = {k}), BPSK/AWGN", code.name());
        print!("{:>9}", "Eb/N0 dB");
        for &d in &decoders {
            print!(" | {:^34}", name(d));
        }
        println!(" | {:>10}", "normal apx");
        print!("{:>9}", "");
        for _ in &decoders {
            print!(" | {:>8} {:>9} {:>9} {:>5}", "frames", "FER", "BER", "iter");
        }
        println!(" | {:>10}", "FER");
        for (pi, &e) in ebn0.iter().enumerate() {
            print!("{e:>9.2}");
            for r in &results {
                let p = r[pi];
                print!(
                    " | {:>8} {:>9.3e} {:>9.3e} {:>5.1}",
                    p.frames,
                    p.fer(),
                    p.bit_errors as f64 / (p.frames.max(1) * k as u64) as f64,
                    p.iterations as f64 / p.frames.max(1) as f64
                );
            }
            println!(" | {:>10.3e}", bound_curve[pi].1);
        }
        println!("Eb/N0 at FER {:.0e}:", a.target_fer);
        for (&d, c) in decoders.iter().zip(&crossings) {
            match c {
                Some(x) => println!("  {:<34} {x:.2} dB", name(d)),
                None => println!("  {:<34} not crossed in the range", name(d)),
            }
        }
        println!("  {:<34} {bound_crossing:.2} dB", "normal approximation (bound)");
        println!(
            "  {:<34} {shannon_bpsk:.2} dB (Gaussian inputs {shannon_gauss:.2} dB)",
            "Shannon limit, BPSK input"
        );
    }
    if let Some(path) = &a.plot {
        let mut series: Vec<plot::Series> = decoders
            .iter()
            .zip(&curves)
            .map(|(&d, c)| plot::Series {
                name: format!("FER, {}", name(d)),
                points: c.clone(),
                dashed: false,
            })
            .collect();
        let (lo, hi) = (ebn0[0], *ebn0.last().unwrap_or(&ebn0[0]));
        // The plot reaches a decade below the smallest FER measured; the bound stops there.
        let floor = curves
            .iter()
            .flatten()
            .map(|p| p.1)
            .filter(|&f| f > 0.0)
            .fold(1e-3f64, f64::min)
            / 10.0;
        series.push(plot::Series {
            name: "FER bound, normal approximation".into(),
            points: (0..=100)
                .map(|i| lo + (hi - lo) * f64::from(i) / 100.0)
                .map(|e| (e, normal_approx_fer(n, k, e)))
                .filter(|&(_, f)| f >= floor)
                .collect(),
            dashed: true,
        });
        // The Shannon limit as a vertical line from FER 1 down to the plot's floor.
        series.push(plot::Series {
            name: format!("Shannon limit, BPSK input ({shannon_bpsk:.2} dB)"),
            points: vec![(shannon_bpsk, 1.0), (shannon_bpsk, floor)],
            dashed: true,
        });
        plot::log_curves(
            path,
            &format!("{} (n = {n}, k = {k}), BPSK/AWGN", code.name()),
            "Eb/N0 (dB)",
            "frame error rate",
            &series,
        )?;
        if !a.json {
            println!("plot → {}", path.display());
        }
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct RatesArgs {
    /// Payload octets per PPDU (one segment; the last four are the FCS).
    #[arg(short, long, default_value_t = 1000)]
    length: usize,
    /// Target packet error rate.
    #[arg(long, default_value_t = 0.1)]
    target_per: f64,
    /// Frames per SNR evaluated.
    #[arg(short = 'n', long, default_value_t = 200)]
    frames: u64,
    /// MCSs to measure, comma-separated (default: all 24).
    #[arg(long, value_delimiter = ',')]
    mcs: Vec<String>,
    /// SNR resolution of the bisection, dB (at least 0.001).
    #[arg(long, default_value_t = 0.25)]
    resolution: f64,
    /// Base seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_parser = units::at_least_one)]
    threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// PER of `p` over `frames` frames on `threads` threads (seeded per frame index).
fn per_at(p: &SimParams, frames: u64, threads: usize, seed: u64, point: u64) -> Result<f64> {
    let next = AtomicU64::new(0);
    let lost = AtomicU64::new(0);
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut sim = FrameSim::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= frames {
                        break;
                    }
                    match sim.run(p, frame_seed(seed, point, i), false) {
                        Ok(o) => {
                            lost.fetch_add(u64::from(!o.delivered), Ordering::Relaxed);
                        }
                        Err(e) => {
                            *error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.into());
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(lost.into_inner() as f64 / frames as f64)
}

fn rates(a: RatesArgs) -> Result<()> {
    if !(4..=semcom_phy::semcom::MAX_SEGMENT_LEN).contains(&a.length) {
        bail!("--length {}: must be 4 … 4095 octets", a.length);
    }
    if !(a.target_per > 0.0 && a.target_per < 1.0) {
        bail!("--target-per must be in (0, 1)");
    }
    if a.frames == 0 {
        bail!("--frames must be positive");
    }
    // Points are seeded by their SNR in steps of 0.001 dB (below), and a finer bisection would
    // never end once the interval is below f64's precision.
    if !(a.resolution >= 0.001) {
        bail!("--resolution must be at least 0.001 dB (got {})", a.resolution);
    }
    let list: Vec<Mcs> = if a.mcs.is_empty() {
        Mcs::all()
    } else {
        a.mcs
            .iter()
            .map(|m| Mcs::from_name(m).ok_or_else(|| anyhow::anyhow!("--mcs {m}: unknown MCS (e.g. qpsk-1/2)")))
            .collect::<Result<_>>()?
    };
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = ProgressBar::new(list.len() as u64).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} MCS")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Bisection between an SNR that fails and one that meets the target.
    let (floor, ceil) = (-5.0f64, 45.0f64);
    let mut table = Vec::new();
    for (mi, &mcs) in list.iter().enumerate() {
        let params = |snr: f64| {
            SimParams::semcom_awgn(
                vec![SegmentSpec {
                    mcs,
                    class: 0,
                    len: a.length,
                }],
                snr,
            )
        };
        let point = |snr: f64| (mi as u64) << 32 | ((snr + 100.0) * 1000.0) as u64;
        let snr = if per_at(&params(ceil), a.frames, threads, a.seed, point(ceil))? > a.target_per {
            f64::NAN
        } else {
            let (mut lo, mut hi) = (floor, ceil);
            while hi - lo > a.resolution {
                let mid = 0.5 * (lo + hi);
                if per_at(&params(mid), a.frames, threads, a.seed, point(mid))? <= a.target_per {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            hi
        };
        table.push((mcs, snr));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if a.json {
        let rows: Vec<_> = table
            .iter()
            .map(|(m, s)| json!({"mcs": m.name(), "mbps": m.mbps(), "snr_db": if s.is_finite() { json!(s) } else { json!(null) }}))
            .collect();
        println!(
            "{}",
            json!({"target_per": a.target_per, "length": a.length, "frames_per_snr": a.frames, "channel": "awgn",
                "snr_definition": "per-sample signal power over the burst / noise power", "seed": a.seed, "table": rows})
        );
    } else {
        println!(
            "semcom MCS table: PER ≤ {} with {}-octet payloads, AWGN, {} frames per SNR",
            a.target_per, a.length, a.frames
        );
        println!("{:<14} {:>8} {:>12}", "MCS", "Mbit/s", "SNR dB");
        for (m, s) in &table {
            let snr = if s.is_finite() {
                format!("{s:.2}")
            } else {
                format!("> {ceil}")
            };
            println!("{:<14} {:>8.1} {:>12}", m.name(), m.mbps(), snr);
        }
    }
    Ok(())
}
