//! `semcom bench …`: single-core throughput, medians of repeated runs, compared to targets.
//!
//! The machines are noisy: workloads are timed round-robin (one run of each, then the next
//! round), so a slow spell of the machine lands on all of them alike, and the median of the
//! rounds is reported.

use anyhow::Result;
use clap::{Args, Subcommand};
use semcom_phy::channel::{burst_power, Awgn, Impairment};
use semcom_phy::ldpc::{CodeLength, Kernel as LdpcKernel, LayeredDecoder, LdpcCode, LdpcRate, MinSumConfig};
use semcom_phy::semcom::{Mcs, Segment};
use semcom_phy::sim::{frame_stream, ldpc_bench_llrs};
use semcom_phy::viterbi::{Kernel, Termination, ViterbiDecoder};
use semcom_phy::Complex32;
use semcom_phy::{Rate, Receiver, RxConfig, Transmitter, TxParams};
use serde_json::json;
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// PHY throughput: receiver, transmitter, soft Viterbi and LDPC decoding (every kernel this
    /// CPU runs), semcom-profile receiver.
    Phy(PhyBenchArgs),
    /// Codec speed: 100-character messages, telemetry records per second.
    Codec(CodecBenchArgs),
}

#[derive(Args, Debug)]
pub struct CodecBenchArgs {
    /// Rounds (each times every workload once; the median is reported).
    #[arg(long, default_value_t = 11, value_parser = crate::units::at_least_one)]
    runs: usize,
    /// The prior.
    #[arg(long, default_value = "models/text-prior.safetensors")]
    model: std::path::PathBuf,
    /// Telemetry trace (CSV, NDJSON[.gz]); its first 2000 records are coded. Default:
    /// the first trace of ../shared/datasets/telemetry, whose workloads are skipped (with a
    /// warning) when it is absent.
    #[arg(long)]
    telemetry: Option<std::path::PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct PhyBenchArgs {
    /// Rounds (each times every workload once; the median is reported).
    #[arg(long, default_value_t = 11, value_parser = crate::units::at_least_one)]
    runs: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Run only the workloads whose name contains this (e.g. `ldpc`, `rx_`).
    #[arg(long)]
    filter: Option<String>,
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

/// `bench codec`'s telemetry trace when `--telemetry` is not given.
const DEFAULT_TRACE: &str = "../shared/datasets/telemetry/ems-tourperret-A81758FFFE04B1C1.ndjson.gz";

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
    // A trace the user names must be there; the default one may be absent (no ../shared).
    let trace = a
        .telemetry
        .clone()
        .or_else(|| Some(std::path::PathBuf::from(DEFAULT_TRACE)).filter(|p| p.exists()));
    if let Some(trace) = trace {
        let bytes = crate::eval::read_maybe_gz(&trace)?;
        let full: Vec<Vec<u8>> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .take(2000)
            .map(<[u8]>::to_vec)
            .collect();
        let readings: Vec<Vec<u8>> = full.iter().filter_map(|r| crate::eval::readings_of(r)).collect();
        let csv = trace.extension().is_some_and(|e| e == "csv");
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
                what: format!("encode {} {name} records of {}", records.len(), trace.display()),
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
        eprintln!("{DEFAULT_TRACE} not found: telemetry workloads skipped (give --telemetry)");
    }
    report("codec", &mut loads, a.runs, a.json);
    Ok(())
}

/// `frames` semcom PPDUs (one 1000-octet QPSK 1/2 segment each) with 400-sample gaps, AWGN.
fn semcom_stream(frames: u64, snr_db: f64) -> Result<(Vec<Complex32>, u64)> {
    let mut tx = Transmitter::new();
    let mut sig = vec![Complex32::new(0.0, 0.0); 400];
    let mcs = Mcs::from_name("qpsk-1/2").unwrap_or(Mcs::new(semcom_phy::Modulation::Qpsk, LdpcRate::R1_2));
    let (mut energy, mut n_burst) = (0.0f64, 0usize);
    for f in 0..frames {
        let mut payload: Vec<u8> = (0..996u32).map(|i| (i * 37 + f as u32) as u8).collect();
        semcom_phy::crc::append_fcs(&mut payload);
        let start = sig.len();
        let n = tx.transmit_semcom(
            &[Segment {
                payload: &payload,
                mcs,
                class: 0,
            }],
            0x5d,
            &mut sig,
        )?;
        energy += burst_power(&sig[start..]) * n as f64;
        n_burst += n;
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 400));
    }
    let mut out = Vec::with_capacity(sig.len());
    Awgn::for_snr(snr_db, energy / n_burst.max(1) as f64, 7)?.process(&sig, &mut out);
    Ok((out, frames))
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
    // LDPC: layered min-sum on the (1944, 972) code, 10 iterations, no early stop (the worst
    // case), LLRs of BPSK at Eb/N0 = 1 dB (below the waterfall).
    let code = LdpcCode::get(CodeLength::N1944, LdpcRate::R1_2);
    let ldpc_llrs = ldpc_bench_llrs(code, 1.0, 16, 5);
    let default_ldpc = LdpcKernel::detect();
    for k in LdpcKernel::available() {
        let Some(mut dec) = LayeredDecoder::with_kernel(code, k) else {
            continue;
        };
        let llrs = ldpc_llrs.clone();
        let mut out = vec![0u8; code.n()];
        let cfg = MinSumConfig {
            max_iterations: 10,
            early_termination: false,
        };
        loads.push(Workload {
            name: format!("ldpc_{}", k.name()),
            unit: "Mbit/s",
            scale: 1e6,
            target: (k == default_ldpc).then_some(100.0),
            what: format!(
                "LDPC (1944, 972) layered min-sum, 10 iterations, {} kernel{}; information bits",
                k.name(),
                if k == default_ldpc { " (default)" } else { "" }
            ),
            work: Box::new(move || {
                // The scalar kernel is ~70x slower: fewer rounds keep the bench short.
                let reps = if k == LdpcKernel::Scalar { 1 } else { 20 };
                for _ in 0..reps {
                    for l in &llrs {
                        dec.decode(l, &cfg, &mut out);
                    }
                }
                (reps * llrs.len() * code.k()) as f64
            }),
            runs: Vec::new(),
        });
    }
    // The semcom receiver: 1000-octet PPDUs, one QPSK 1/2 segment, 10 dB.
    {
        let (samples, frames) = semcom_stream(20, 10.0)?;
        loads.push(Workload {
            name: "rx_semcom_qpsk".into(),
            unit: "MS/s",
            scale: 1e6,
            target: None,
            what: "semcom receiver, 1000-octet QPSK 1/2 LDPC PPDUs, 10 dB".into(),
            work: Box::new(move || {
                let mut rx = Receiver::new(RxConfig::default());
                for c in samples.chunks(65_536) {
                    rx.push(c);
                }
                rx.flush();
                let st = rx.stats();
                assert_eq!(st.frames - st.fcs_failures, frames, "semcom benchmark lost frames");
                samples.len() as f64
            }),
            runs: Vec::new(),
        });
    }
    if let Some(f) = &a.filter {
        loads.retain(|w| w.name.contains(f.as_str()));
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
