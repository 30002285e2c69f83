//! `semcom bench …`: single-core throughput, medians of repeated runs, compared to targets.
//!
//! The machines are noisy: workloads are timed round-robin (one run of each, then the next
//! round), so a slow spell of the machine lands on all of them alike, and the median of the
//! rounds is reported.

use anyhow::Result;
use clap::{Args, Subcommand};
use semcom_phy::sim::frame_stream;
use semcom_phy::viterbi::{Kernel, Termination, ViterbiDecoder};
use semcom_phy::{Rate, Receiver, RxConfig, Transmitter, TxParams};
use serde_json::json;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// PHY throughput: receiver, transmitter, soft Viterbi (every kernel this CPU runs).
    Phy(PhyBenchArgs),
    /// Codec speed: 100-character messages, telemetry records per second.
    Codec(CodecBenchArgs),
}

#[derive(Args, Debug)]
pub struct CodecBenchArgs {
    /// Rounds (each times every workload once; the median is reported).
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// The prior.
    #[arg(long, default_value = "models/text-prior.safetensors")]
    model: std::path::PathBuf,
    /// Telemetry trace (CSV, NDJSON[.gz]); its first 2000 records are coded. Telemetry workloads
    /// are skipped when it is absent.
    #[arg(
        long,
        default_value = "../shared/datasets/telemetry/ems-tourperret-A81758FFFE04B1C1.ndjson.gz"
    )]
    telemetry: std::path::PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct PhyBenchArgs {
    /// Rounds (each times every workload once; the median is reported).
    #[arg(long, default_value_t = 11)]
    runs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(c: BenchCommand) -> Result<()> {
    match c {
        BenchCommand::Phy(a) => phy(a),
        BenchCommand::Codec(a) => codec(a),
    }
}

/// A 100-character log line and a 100-character sentence (neither is in the training data).
pub const LOG_100: &str =
    "081111 093158 19 INFO dfs.DataNode$PacketResponder: Received block blk_-4173859021237384 of size 67";
pub const TEXT_100: &str =
    "The committee will present its report on the safety of transport before the end of the next session.";

fn codec(a: CodecBenchArgs) -> Result<()> {
    use semcom_codec::telemetry::{TelemetryDecoder, TelemetryEncoder, TelemetryOptions};
    use semcom_codec::text::{TextCodec, TextKind};
    let prior = semcom_codec::Prior::load(&a.model)?;
    let prior = &prior;
    let mut loads: Vec<Workload> = Vec::new();
    for (name, msg, kind) in [("log", LOG_100, TextKind::Log), ("text", TEXT_100, TextKind::Text)] {
        let codec = TextCodec::new(prior);
        let payload = codec.encode_payload(msg.as_bytes(), kind, None)?;
        anyhow::ensure!(
            codec.decode_payload(&payload, None)? == msg.as_bytes(),
            "text codec round trip failed"
        );
        loads.push(Workload {
            name: format!("text_encode_{name}"),
            unit: "msg/s",
            scale: 1.0,
            target: Some(100.0),
            what: format!(
                "encode a {}-character {name} message, 1 thread ({} tokens, {} bytes)",
                msg.len(),
                prior.bpe().encode(msg.as_bytes()).len() + 2,
                payload.len()
            ),
            work: Box::new(move || {
                for _ in 0..20 {
                    std::hint::black_box(
                        codec
                            .encode_payload(msg.as_bytes(), kind, None)
                            .map(|p| p.len())
                            .unwrap_or(0),
                    );
                }
                20.0
            }),
            runs: Vec::new(),
        });
        let codec = TextCodec::new(prior);
        loads.push(Workload {
            name: format!("text_decode_{name}"),
            unit: "msg/s",
            scale: 1.0,
            target: Some(100.0),
            what: format!("decode the same {}-byte payload", payload.len()),
            work: Box::new(move || {
                for _ in 0..20 {
                    std::hint::black_box(codec.decode_payload(&payload, None).map(|m| m.len()).unwrap_or(0));
                }
                20.0
            }),
            runs: Vec::new(),
        });
    }
    if a.telemetry.exists() {
        let bytes = crate::eval::read_maybe_gz(&a.telemetry)?;
        let full: Vec<Vec<u8>> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .take(2000)
            .map(<[u8]>::to_vec)
            .collect();
        let readings: Vec<Vec<u8>> = full.iter().filter_map(|r| crate::eval::readings_of(r)).collect();
        let csv = a.telemetry.extension().is_some_and(|e| e == "csv");
        let mut sets = vec![("full", full)];
        if !csv && !readings.is_empty() {
            sets.insert(0, ("readings", readings));
        }
        for (name, records) in sets {
            let opts = TelemetryOptions::default();
            let mut enc = TelemetryEncoder::new(prior, opts.clone());
            let coded: Vec<(u64, Vec<u8>)> = records.iter().map(|r| enc.encode(r)).collect::<Result<_, _>>()?;
            let n = records.len() as f64;
            let o = opts.clone();
            loads.push(Workload {
                name: format!("telemetry_encode_{name}"),
                unit: "rec/s",
                scale: 1.0,
                target: Some(10_000.0),
                what: format!("encode {} {name} records of {}", records.len(), a.telemetry.display()),
                work: Box::new(move || {
                    let mut enc = TelemetryEncoder::new(prior, o.clone());
                    for r in &records {
                        std::hint::black_box(enc.encode(r).map(|p| p.1.len()).unwrap_or(0));
                    }
                    n
                }),
                runs: Vec::new(),
            });
            loads.push(Workload {
                name: format!("telemetry_decode_{name}"),
                unit: "rec/s",
                scale: 1.0,
                target: Some(10_000.0),
                what: format!("decode the same {name} records",),
                work: Box::new(move || {
                    let mut dec = TelemetryDecoder::new(prior, opts.clone());
                    for (seq, p) in &coded {
                        std::hint::black_box(dec.decode(*seq, p).map(|r| r.len()).unwrap_or(0));
                    }
                    n
                }),
                runs: Vec::new(),
            });
        }
    } else {
        eprintln!("{} not found: telemetry workloads skipped", a.telemetry.display());
    }
    report("codec", &mut loads, a.runs, a.json);
    Ok(())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// One timed workload: `work` does a fixed amount of work and returns how many units it did.
struct Workload<'a> {
    name: String,
    unit: &'static str,
    /// Units per `unit` (1e6 for MS/s and Mbit/s).
    scale: f64,
    target: Option<f64>,
    what: String,
    work: Box<dyn FnMut() -> f64 + 'a>,
    runs: Vec<f64>,
}

fn phy(a: PhyBenchArgs) -> Result<()> {
    let mut loads: Vec<Workload> = Vec::new();
    // Receiver: streams of 1500-octet frames with 400-sample gaps at 30 dB, in 64k chunks.
    for (rate, target) in [(Rate::R12, 40.0), (Rate::R54, 20.0)] {
        let (samples, sent) = frame_stream(rate, 1500, 40, 400, 30.0, 7)?;
        let frames = sent.len() as u64;
        loads.push(Workload {
            name: format!("rx_{}", rate.mbps()),
            unit: "MS/s",
            scale: 1e6,
            target: Some(target),
            what: format!("receiver, 1500-octet frames at {rate}, 30 dB"),
            work: Box::new(move || {
                let mut rx = Receiver::new(RxConfig::default());
                for c in samples.chunks(65_536) {
                    rx.push(c);
                }
                rx.flush();
                let st = rx.stats();
                // A benchmark that stopped decoding would measure nothing useful.
                assert_eq!(st.frames - st.fcs_failures, frames, "receiver benchmark lost frames");
                samples.len() as f64
            }),
            runs: Vec::new(),
        });
    }
    // Transmitter.
    for rate in [Rate::R6, Rate::R54] {
        let psdu: Vec<u8> = (0..1500u32).map(|i| (i * 37 + 11) as u8).collect();
        let mut tx = Transmitter::new();
        let mut out = Vec::new();
        loads.push(Workload {
            name: format!("tx_{}", rate.mbps()),
            unit: "MS/s",
            scale: 1e6,
            target: Some(150.0),
            what: format!("transmitter, 1500-octet frames at {rate}"),
            work: Box::new(move || {
                let mut n = 0;
                for _ in 0..100 {
                    out.clear();
                    n += tx
                        .transmit(
                            &psdu,
                            &TxParams {
                                rate,
                                scrambler_seed: 0x5d,
                            },
                            &mut out,
                        )
                        .unwrap_or(0);
                }
                n as f64
            }),
            runs: Vec::new(),
        });
    }
    // Soft Viterbi on a 1500-octet frame's worth of noisy LLRs.
    let n_bits = 12_006;
    let llr: Vec<i8> = (0..2 * n_bits)
        .map(|i: usize| (((i * 2_654_435_761) >> 7) % 61) as i8 - 30)
        .collect();
    let default = Kernel::detect();
    for k in Kernel::available() {
        let Some(mut dec) = ViterbiDecoder::with_kernel(k) else {
            continue;
        };
        let mut out = vec![0u8; n_bits];
        let llr = llr.clone();
        loads.push(Workload {
            name: format!("viterbi_{}", k.name()),
            unit: "Mbit/s",
            scale: 1e6,
            target: (k == default).then_some(150.0),
            what: format!(
                "soft Viterbi K=7, {} kernel{}",
                k.name(),
                if k == default { " (default)" } else { "" }
            ),
            work: Box::new(move || {
                for _ in 0..20 {
                    dec.decode(&llr, Termination::BestState, &mut out);
                }
                (20 * n_bits) as f64
            }),
            runs: Vec::new(),
        });
    }
    report("phy", &mut loads, a.runs, a.json);
    Ok(())
}

/// Warms up, times every workload round-robin `runs` times, prints medians against targets.
fn report(bench: &str, loads: &mut [Workload], runs: usize, json_out: bool) {
    for w in loads.iter_mut() {
        (w.work)();
    }
    for _ in 0..runs.max(1) {
        for w in loads.iter_mut() {
            let t = Instant::now();
            let units = (w.work)();
            w.runs.push(units / t.elapsed().as_secs_f64() / w.scale);
        }
    }
    let pass = loads.iter().all(|w| w.target.is_none_or(|t| median(&w.runs) >= t));
    if json_out {
        let items: serde_json::Map<String, serde_json::Value> = loads
            .iter()
            .map(|w| {
                (
                    w.name.clone(),
                    json!({"median": median(&w.runs), "unit": w.unit, "runs": w.runs, "target": w.target,
                        "meets_target": w.target.map(|t| median(&w.runs) >= t), "workload": w.what}),
                )
            })
            .collect();
        println!(
            "{}",
            json!({"bench": bench, "threads": 1, "rounds": runs, "results": items, "all_targets_met": pass})
        );
    } else {
        println!(
            "{:<18} {:>10} {:>8} {:>9}  workload",
            "benchmark", "median", "unit", "target"
        );
        for w in loads.iter() {
            let t = w.target.map_or("-".to_string(), |t| format!("≥ {t}"));
            println!(
                "{:<18} {:>10.1} {:>8} {:>9}  {}",
                w.name,
                median(&w.runs),
                w.unit,
                t,
                w.what
            );
        }
        println!("{}", if pass { "all targets met" } else { "SOME TARGETS MISSED" });
    }
}
