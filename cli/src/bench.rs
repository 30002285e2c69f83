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
    }
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
    for w in &mut loads {
        (w.work)();
    }
    for _ in 0..a.runs.max(1) {
        for w in &mut loads {
            let t = Instant::now();
            let units = (w.work)();
            w.runs.push(units / t.elapsed().as_secs_f64() / w.scale);
        }
    }
    let pass = loads.iter().all(|w| w.target.is_none_or(|t| median(&w.runs) >= t));
    if a.json {
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
            json!({"bench": "phy", "threads": 1, "rounds": a.runs, "results": items, "all_targets_met": pass})
        );
    } else {
        println!(
            "{:<18} {:>10} {:>8} {:>9}  workload",
            "benchmark", "median", "unit", "target"
        );
        for w in &loads {
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
    Ok(())
}
