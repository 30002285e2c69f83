//! Single-core PHY throughput: `cargo bench -p semcom-benches --bench phy`.
//!
//! Throughput is reported in samples per second (transmitter, receiver) and decoded bits per
//! second (Viterbi: decoded bits; LDPC: information bits). The same workloads run in
//! `semcom bench phy`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use semcom_phy::ldpc::{CodeLength, Kernel as LdpcKernel, LayeredDecoder, LdpcCode, LdpcRate, MinSumConfig};
use semcom_phy::sim::{frame_stream, ldpc_bench_llrs};
use semcom_phy::viterbi::{Kernel, Termination, ViterbiDecoder};
use semcom_phy::{Rate, Receiver, RxConfig, Transmitter, TxParams};
use std::hint::black_box;

fn transmitter(c: &mut Criterion) {
    let mut g = c.benchmark_group("tx");
    let psdu: Vec<u8> = (0..1500u32).map(|i| (i * 37 + 11) as u8).collect();
    for rate in [Rate::R6, Rate::R12, Rate::R54] {
        let mut tx = Transmitter::new();
        let mut out = Vec::new();
        g.throughput(Throughput::Elements(Transmitter::packet_len(rate, psdu.len()) as u64));
        g.bench_with_input(BenchmarkId::from_parameter(rate.mbps()), &rate, |b, &rate| {
            b.iter(|| {
                out.clear();
                tx.transmit(
                    black_box(&psdu),
                    &TxParams {
                        rate,
                        scrambler_seed: 0x5d,
                    },
                    &mut out,
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

fn receiver(c: &mut Criterion) {
    let mut g = c.benchmark_group("rx");
    g.sample_size(20);
    for rate in [Rate::R12, Rate::R54] {
        let (samples, sent) = frame_stream(rate, 1500, 20, 400, 30.0, 7).unwrap();
        g.throughput(Throughput::Elements(samples.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(rate.mbps()), &samples, |b, samples| {
            b.iter(|| {
                let mut rx = Receiver::new(RxConfig::default());
                for c in samples.chunks(65_536) {
                    rx.push(c);
                }
                rx.flush();
                assert_eq!(rx.stats().frames as usize, sent.len());
                rx.stats()
            })
        });
    }
    g.finish();
}

fn viterbi(c: &mut Criterion) {
    let mut g = c.benchmark_group("viterbi");
    let n_bits = 12_006;
    let llr: Vec<i8> = (0..2 * n_bits)
        .map(|i: usize| (((i * 2_654_435_761) >> 7) % 61) as i8 - 30)
        .collect();
    g.throughput(Throughput::Elements(n_bits as u64));
    for k in Kernel::available() {
        let mut dec = ViterbiDecoder::with_kernel(k).unwrap();
        let mut out = vec![0u8; n_bits];
        g.bench_function(BenchmarkId::from_parameter(k.name()), |b| {
            b.iter(|| dec.decode(black_box(&llr), Termination::BestState, &mut out))
        });
    }
    g.finish();
}

/// Layered min-sum on the (1944, 972) code, 10 iterations with early termination off (the
/// worst case), LLRs of BPSK at Eb/N0 = 1 dB (below the waterfall: nothing converges early).
fn ldpc(c: &mut Criterion) {
    let mut g = c.benchmark_group("ldpc_1944_1_2_10it");
    let code = LdpcCode::get(CodeLength::N1944, LdpcRate::R1_2);
    let llrs = ldpc_bench_llrs(code, 1.0, 16, 5);
    let cfg = MinSumConfig {
        max_iterations: 10,
        early_termination: false,
    };
    g.throughput(Throughput::Elements((code.k() * llrs.len()) as u64));
    for k in LdpcKernel::available() {
        let mut dec = LayeredDecoder::with_kernel(code, k).unwrap();
        let mut out = vec![0u8; code.n()];
        g.bench_function(BenchmarkId::from_parameter(k.name()), |b| {
            b.iter(|| {
                for l in &llrs {
                    black_box(dec.decode(black_box(l), &cfg, &mut out));
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, transmitter, receiver, viterbi, ldpc);
criterion_main!(benches);
