//! `semcom bench …`: single-core throughput, medians of repeated runs, compared to targets.

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
    /// Timed repetitions per workload (the median is reported).
    #[arg(long, default_value_t = 7)]
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

/// Runs `f` `runs` times after one warm-up and returns the rates (units per second) of each run,
/// where `f` returns the units it processed.
fn measure(runs: usize, mut f: impl FnMut() -> f64) -> Vec<f64> {
    f();
    (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            let units = f();
            units / t.elapsed().as_secs_f64()
        })
        .collect()
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

struct Row {
    name: String,
    unit: &'static str,
    runs: Vec<f64>,
    target: Option<f64>,
    what: String,
}

fn phy(a: PhyBenchArgs) -> Result<()> {
    let mut rows = Vec::new();
    // Receiver: streams of 1500-octet frames with 400-sample gaps at 30 dB, in 64k chunks.
    for (rate, target) in [(Rate::R12, 40e6), (Rate::R54, 20e6)] {
        let (samples, sent) = frame_stream(rate, 1500, 40, 400, 30.0, 7)?;
        let mut good = 0;
        let runs = measure(a.runs, || {
            let mut rx = Receiver::new(RxConfig::default());
            for c in samples.chunks(65_536) {
                rx.push(c);
            }
            rx.flush();
            good = rx.stats().frames - rx.stats().fcs_failures;
            samples.len() as f64
        });
        anyhow::ensure!(
            good == sent.len() as u64,
            "receiver benchmark at {rate}: {good} of {} frames decoded",
            sent.len()
        );
        rows.push(Row {
            name: format!("rx_{}", rate.mbps()),
            unit: "MS/s",
            runs: runs.iter().map(|r| r / 1e6).collect(),
            target: Some(target / 1e6),
            what: format!("receiver, 1500-octet frames at {rate}, 30 dB"),
        });
    }
    // Transmitter.
    for rate in [Rate::R6, Rate::R54] {
        let psdu: Vec<u8> = (0..1500u32).map(|i| (i * 37 + 11) as u8).collect();
        let mut tx = Transmitter::new();
        let mut out = Vec::new();
        let runs = measure(a.runs, || {
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
        });
        rows.push(Row {
            name: format!("tx_{}", rate.mbps()),
            unit: "MS/s",
            runs: runs.iter().map(|r| r / 1e6).collect(),
            target: Some(150.0),
            what: format!("transmitter, 1500-octet frames at {rate}"),
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
        let runs = measure(a.runs, || {
            for _ in 0..20 {
                dec.decode(&llr, Termination::BestState, &mut out);
            }
            (20 * n_bits) as f64
        });
        rows.push(Row {
            name: format!("viterbi_{}", k.name()),
            unit: "Mbit/s",
            runs: runs.iter().map(|r| r / 1e6).collect(),
            target: (k == default).then_some(150.0),
            what: format!(
                "soft Viterbi K=7, {} kernel{}",
                k.name(),
                if k == default { " (default)" } else { "" }
            ),
        });
    }
    let pass = rows.iter().all(|r| r.target.is_none_or(|t| median(&r.runs) >= t));
    if a.json {
        let items: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    json!({"median": median(&r.runs), "unit": r.unit, "runs": r.runs, "target": r.target,
                        "meets_target": r.target.map(|t| median(&r.runs) >= t), "workload": r.what}),
                )
            })
            .collect();
        println!(
            "{}",
            json!({"bench": "phy", "threads": 1, "runs": a.runs, "results": items, "all_targets_met": pass})
        );
    } else {
        println!(
            "{:<16} {:>10} {:>8} {:>9}  workload",
            "benchmark", "median", "unit", "target"
        );
        for r in &rows {
            let t = r.target.map_or("-".to_string(), |t| format!("≥ {t}"));
            println!(
                "{:<16} {:>10.1} {:>8} {:>9}  {}",
                r.name,
                median(&r.runs),
                r.unit,
                t,
                r.what
            );
        }
        println!("{}", if pass { "all targets met" } else { "SOME TARGETS MISSED" });
    }
    Ok(())
}
