//! `semcom rx`: decode 802.11a/g frames from IQ files.

use crate::tx::parse_format;
use anyhow::{Context, Result};
use clap::Args;
use semcom_phy::{Receiver, RxConfig, RxEvent, RxFrame};
use semcom_transport::{IqFormat, IqReader};
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct RxArgs {
    /// Input: raw IQ (.cf32, .cs16, .cu8, .cs8; cf32 when no extension), a SigMF recording
    /// (.sigmf-meta / .sigmf-data), or `-` for cf32 on stdin.
    #[arg(short, long)]
    input: PathBuf,
    /// Sample format of a raw input, overriding its extension: cf32, ci16, cu8, ci8.
    #[arg(long, value_parser = parse_format)]
    format: Option<IqFormat>,
    /// One JSON object per decoded frame, then a summary object.
    #[arg(long)]
    json: bool,
    /// Report only frames whose FCS is good (the others are still counted in the summary).
    #[arg(long)]
    good_only: bool,
}

fn frame_json(f: &RxFrame) -> serde_json::Value {
    let hex: String = f.psdu.iter().map(|b| format!("{b:02x}")).collect();
    json!({
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
    })
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

fn stats(v: &mut [f32]) -> serde_json::Value {
    if v.is_empty() {
        return serde_json::Value::Null;
    }
    v.sort_by(f32::total_cmp);
    json!({"min": round2(v[0]), "median": round2(v[v.len() / 2]), "max": round2(v[v.len() - 1])})
}

pub fn run(a: RxArgs) -> Result<()> {
    let mut reader = IqReader::open(&a.input, a.format)?;
    let mut cfg = RxConfig::default();
    if let Some(rate) = reader.sample_rate_hz() {
        if (rate - semcom_phy::ofdm::SAMPLE_RATE_HZ).abs() > 1.0 {
            tracing::warn!(
                "{} is recorded at {rate} S/s; the receiver assumes the 802.11a numerology at that rate (20 MS/s for 20 MHz channels, 10 MS/s for 802.11p)",
                a.input.display()
            );
        }
        cfg.sample_rate_hz = rate;
    }
    let sample_rate = cfg.sample_rate_hz;
    let mut rx = Receiver::new(cfg);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut sum = Summary::default();
    let mut chunk = Vec::with_capacity(1 << 16);
    let report = |ev: RxEvent, out: &mut dyn Write, sum: &mut Summary| -> Result<()> {
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
                        writeln!(out, "{}", frame_json(&f))?;
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
            }
            RxEvent::HeaderError { offset, error } => tracing::debug!("sample {offset}: SIGNAL refused: {error}"),
            RxEvent::Truncated { offset, rate, length } => {
                tracing::info!("sample {offset}: {length}-octet frame at {rate} cut off by the end of the input")
            }
            other => tracing::debug!("{other:?}"),
        }
        Ok(())
    };
    loop {
        chunk.clear();
        let n = reader
            .read(&mut chunk, 1 << 16)
            .with_context(|| format!("reading {}", a.input.display()))?;
        if n == 0 {
            break;
        }
        rx.push(&chunk);
        while let Some(ev) = rx.poll_event() {
            report(ev, &mut out, &mut sum)?;
        }
    }
    rx.flush();
    while let Some(ev) = rx.poll_event() {
        report(ev, &mut out, &mut sum)?;
    }
    let st = rx.stats();
    let samples = reader.samples_read();
    if a.json {
        writeln!(
            out,
            "{}",
            json!({"summary": {
                "samples": samples, "duration_s": samples as f64 / sample_rate,
                "frames": sum.frames, "fcs_ok": sum.fcs_ok, "fcs_failed": st.fcs_failures,
                "detections": st.detections, "header_errors": st.header_errors, "truncated": st.truncated,
                "snr_db": stats(&mut sum.snr), "evm_db": stats(&mut sum.evm), "cfo_hz": stats(&mut sum.cfo)}})
        )?;
    } else {
        writeln!(
            out,
            "{} frame(s) decoded, {} with good FCS, {} FCS failures, {} SIGNAL errors, {} truncated; {samples} samples ({:.3} ms)",
            sum.frames,
            sum.fcs_ok,
            st.fcs_failures,
            st.header_errors,
            st.truncated,
            1e3 * samples as f64 / sample_rate
        )?;
    }
    out.flush()?;
    Ok(())
}
