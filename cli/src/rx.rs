//! `semcom rx`: decode 802.11a/g frames from a radio (SoapySDR device, UDP virtual radio) or an
//! IQ file, optionally recording what arrives as SigMF with one annotation per frame.

use crate::radio::{self, RadioArgs, Way};
use crate::tx::parse_format;
use crate::units;
use anyhow::{Context, Result};
use clap::{ArgGroup, Args};
use semcom_phy::{RxConfig, RxEvent, RxFrame};
use semcom_transport::radio::file::FileRadio;
use semcom_transport::radio::{si, Radio, RadioLink, RxRead};
use semcom_transport::sigmf::Meta;
use semcom_transport::{IqFormat, IqWriter};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("source").required(true).args(["input", "device", "udp"])))]
pub struct RxArgs {
    /// Input file: raw IQ (.cf32, .cs16, .cu8, .cs8; cf32 when no extension), a SigMF recording
    /// (.sigmf-meta / .sigmf-data), or `-` for cf32 on stdin. Instead of a radio.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Sample format of a raw input, overriding its extension: cf32, ci16, cu8, ci8.
    #[arg(long, value_parser = parse_format)]
    format: Option<IqFormat>,
    #[command(flatten)]
    radio: RadioArgs,
    /// Stop after N decoded frames (good FCS or not). Without it a radio runs until Ctrl-C.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Stop after this long (e.g. 60s, 500ms, 2m).
    #[arg(long, value_parser = units::duration)]
    duration: Option<Duration>,
    /// Record every received sample: SigMF when the name ends in .sigmf-data (one annotation
    /// per decoded frame), else raw IQ in the extension's format. Ctrl-C completes it.
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Sample format of the recording: cf32, ci16, cu8, ci8 (default: cf32, or from the
    /// extension).
    #[arg(long, value_parser = parse_format)]
    record_format: Option<IqFormat>,
    /// One JSON object per decoded frame, then a summary object.
    #[arg(long)]
    json: bool,
    /// Report only frames whose FCS is good (the others are still counted in the summary).
    #[arg(long)]
    good_only: bool,
}

fn frame_json(f: &RxFrame, time_ns: Option<i64>) -> serde_json::Value {
    let hex: String = f.psdu.iter().map(|b| format!("{b:02x}")).collect();
    let mut v = json!({
        "offset": f.offset,
        "rate_mbps": f.rate.mbps(),
        "length": f.length,
        "fcs_ok": f.fcs_ok,
        "psdu_hex": hex,
        "snr_db": round2(f.snr_db),
        "evm_db": round2(f.evm_db),
        "cfo_hz": f.cfo_hz.round(),
        "sfo_ppm": round2(f.sfo_ppm),
        "rssi_db": round2(f.rssi_db),
        "scrambler_seed": f.scrambler_seed,
    });
    if let Some(t) = time_ns {
        v["time_ns"] = json!(t);
    }
    v
}

fn round2(v: f32) -> f64 {
    (f64::from(v) * 100.0).round() / 100.0
}

#[derive(Default)]
struct Summary {
    frames: u64,
    fcs_ok: u64,
    snr: Vec<f32>,
    evm: Vec<f32>,
    cfo: Vec<f32>,
}

/// Quantiles of `v`: min, 10 %, median, 90 %, max.
fn distribution(v: &mut [f32]) -> Option<[f32; 5]> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    Some([q(0.0), q(0.1), q(0.5), q(0.9), q(1.0)])
}

fn distribution_json(v: &mut [f32]) -> serde_json::Value {
    match distribution(v) {
        None => serde_json::Value::Null,
        Some([min, p10, med, p90, max]) => json!({"min": round2(min), "p10": round2(p10),
            "median": round2(med), "p90": round2(p90), "max": round2(max)}),
    }
}

fn distribution_text(name: &str, unit: &str, scale: f32, v: &mut [f32]) -> String {
    match distribution(v) {
        None => format!("{name}: -"),
        Some(q) => {
            let [min, p10, med, p90, max] = q.map(|x| x * scale);
            format!("{name} {unit}: min {min:.1}, p10 {p10:.1}, median {med:.1}, p90 {p90:.1}, max {max:.1}")
        }
    }
}

/// Why reception stopped.
fn stop_reason(count_reached: bool, timed_out: bool, interrupted: bool) -> &'static str {
    if count_reached {
        "count reached"
    } else if timed_out {
        "duration reached"
    } else if interrupted {
        "interrupted"
    } else {
        "end of stream"
    }
}

pub fn run(a: RxArgs) -> Result<()> {
    let radio: Box<dyn Radio> = match &a.input {
        Some(path) => {
            if a.radio.is_live() {
                anyhow::bail!("--input plays a file; it cannot be combined with -a/--udp");
            }
            a.radio.check_device_only()?;
            let r = FileRadio::open(path, a.format, a.radio.sample_rate)?;
            let rate = r.info().sample_rate_hz;
            if (rate - semcom_phy::ofdm::SAMPLE_RATE_HZ).abs() > 1.0 {
                tracing::warn!(
                    "{} is at {}; the receiver assumes the 802.11a numerology at that rate (20 MS/s for 20 MHz channels, 10 MS/s for 802.11p)",
                    path.display(),
                    si(rate, "S/s")
                );
            }
            Box::new(r)
        }
        None => {
            if a.format.is_some() {
                anyhow::bail!("--format describes an --input file; a radio streams complex samples");
            }
            a.radio.open(Way::Rx, IqFormat::Cf32)?
        }
    };
    let info = radio.info().clone();
    let live = info.realtime;
    let mut link = RadioLink::new(radio, RxConfig::default());
    if let Some(path) = &a.record {
        if let Some(input) = &a.input {
            radio::refuse_overwriting(input, path)?;
        }
        let format = a
            .record_format
            .or_else(|| IqFormat::from_extension(path))
            .unwrap_or(IqFormat::Cf32);
        let mut meta = Meta::new(format.sigmf_name(), info.sample_rate_hz);
        meta.frequency_hz = info.frequency_hz;
        meta.hw = info.hardware.clone();
        meta.description = Some(format!(
            "semcom rx: received from {}; one annotation per decoded 802.11a/g frame",
            info.name
        ));
        let w = IqWriter::create(path, format, meta)
            .with_context(|| format!("creating the recording {}", path.display()))?;
        link.record(w);
    }
    radio::install_stop_handler();
    if live {
        eprintln!(
            "receiving from {} at {}{} (Ctrl-C stops)",
            info.name,
            si(info.sample_rate_hz, "S/s"),
            info.frequency_hz
                .map(|f| format!(", {}", si(f, "Hz")))
                .unwrap_or_default()
        );
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut sum = Summary::default();
    let t0 = Instant::now();
    let cpu0 = radio::thread_cpu_seconds();
    let mut count_reached = false;
    let mut timed_out = false;
    let mut failure: Option<anyhow::Error> = None;
    loop {
        if radio::stop_requested() {
            break;
        }
        if a.duration.is_some_and(|d| t0.elapsed() >= d) {
            timed_out = true;
            break;
        }
        match link.poll() {
            Ok(RxRead::End) => break,
            Ok(_) => {}
            Err(e) => {
                failure = Some(anyhow::Error::new(e).context("receiving"));
                break;
            }
        }
        if report_events(&mut link, &a, &mut out, &mut sum)? {
            count_reached = true;
            break;
        }
        if live {
            // Frames reach the terminal as they arrive.
            out.flush()?;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = radio::thread_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    // What the receiver still holds, and the recording's metadata, even after an error.
    if let Err(e) = link.finish_rx() {
        let e = anyhow::Error::new(e).context("completing the recording");
        failure = Some(match failure {
            Some(f) => f.context(format!("{e:#}")),
            None => e,
        });
    }
    if !count_reached && report_events(&mut link, &a, &mut out, &mut sum)? {
        count_reached = true;
    }
    if let Err(e) = link.radio_mut().finish() {
        tracing::warn!("closing {}: {e}", info.name);
    }
    let st = link.stats();
    let rate = info.sample_rate_hz;
    let samples = st.rx_samples;
    let stopped = stop_reason(count_reached, timed_out, radio::stop_requested());
    let sustained = samples as f64 / wall.max(1e-9);
    let r = st.radio;
    if a.json {
        writeln!(
            out,
            "{}",
            json!({"summary": {
                "radio": info.name, "sample_rate": rate, "stopped": stopped,
                "samples": samples, "duration_s": samples as f64 / rate,
                "frames": sum.frames, "fcs_ok": sum.fcs_ok, "fcs_failed": st.phy.fcs_failures,
                "detections": st.phy.detections, "header_errors": st.phy.header_errors, "truncated": st.phy.truncated,
                "snr_db": distribution_json(&mut sum.snr), "evm_db": distribution_json(&mut sum.evm),
                "cfo_hz": distribution_json(&mut sum.cfo),
                "overflows": r.overflows, "timeouts": r.timeouts, "stream_errors": r.errors,
                "lost_packets": r.lost_packets, "lost_samples": r.lost_samples,
                "late_packets": r.late_packets, "bad_packets": r.bad_packets,
                "recorded": st.recorded, "wall_s": wall, "cpu_s": cpu,
                "sustained_sps": sustained}})
        )?;
    } else {
        writeln!(
            out,
            "{} frame(s) decoded, {} with good FCS, {} FCS failures, {} SIGNAL errors, {} truncated; {samples} samples ({:.3} ms)",
            sum.frames,
            sum.fcs_ok,
            st.phy.fcs_failures,
            st.phy.header_errors,
            st.phy.truncated,
            1e3 * samples as f64 / rate
        )?;
        if sum.fcs_ok > 0 {
            writeln!(
                out,
                "{}; {}; {}",
                distribution_text("SNR", "dB", 1.0, &mut sum.snr),
                distribution_text("EVM", "dB", 1.0, &mut sum.evm),
                distribution_text("CFO", "kHz", 1e-3, &mut sum.cfo)
            )?;
        }
        if live {
            writeln!(
                out,
                "{}: {} overflows, {} timeouts, {} stream errors, {} lost packets ({} samples), {} late, {} foreign; stopped: {stopped}",
                info.name, r.overflows, r.timeouts, r.errors, r.lost_packets, r.lost_samples, r.late_packets, r.bad_packets
            )?;
            writeln!(
                out,
                "sustained {} over {wall:.1} s of wall time ({} asked){}",
                si(sustained, "S/s"),
                si(rate, "S/s"),
                cpu.map(|c| format!(", receive thread CPU {c:.1} s ({:.0} % of one core)", 100.0 * c / wall))
                    .unwrap_or_default()
            )?;
        }
        if let Some(p) = &a.record {
            writeln!(out, "recorded {} samples to {}", st.recorded, p.display())?;
        }
    }
    out.flush()?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Prints the link's pending events; true once `--count` frames have been decoded.
fn report_events<R: Radio>(
    link: &mut RadioLink<R>,
    a: &RxArgs,
    out: &mut dyn Write,
    sum: &mut Summary,
) -> Result<bool> {
    while let Some(ev) = link.next_event() {
        match ev {
            RxEvent::Frame(f) => {
                sum.frames += 1;
                if f.fcs_ok {
                    sum.fcs_ok += 1;
                    sum.snr.push(f.snr_db);
                    sum.evm.push(f.evm_db);
                    sum.cfo.push(f.cfo_hz);
                }
                if f.fcs_ok || !a.good_only {
                    if a.json {
                        writeln!(out, "{}", frame_json(&f, link.time_ns_at(f.offset)))?;
                    } else {
                        writeln!(
                            out,
                            "sample {:>10}  {:>2} Mbit/s  {:>4} octets  FCS {}  SNR {:5.1} dB  EVM {:6.1} dB  CFO {:+8.2} kHz",
                            f.offset,
                            f.rate.mbps(),
                            f.length,
                            if f.fcs_ok {
                                "ok     "
                            } else if f.length < 4 {
                                "no FCS "
                            } else {
                                "FAIL   "
                            },
                            f.snr_db,
                            f.evm_db,
                            f.cfo_hz / 1e3
                        )?;
                    }
                }
                if a.count.is_some_and(|n| sum.frames >= n) {
                    return Ok(true);
                }
            }
            RxEvent::HeaderError { offset, error } => tracing::debug!("sample {offset}: SIGNAL refused: {error}"),
            RxEvent::Truncated { offset, rate, length } => {
                tracing::info!("sample {offset}: {length}-octet frame at {rate} cut off by the end of the input")
            }
            other => tracing::debug!("{other:?}"),
        }
    }
    Ok(false)
}
