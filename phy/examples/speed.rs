//! Quick single-core throughput check (the real figures come from `semcom bench phy`).
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_phy::channel::{burst_power, Awgn, Impairment};
use semcom_phy::viterbi::{Kernel, Termination, ViterbiDecoder};
use semcom_phy::{Complex32, Rate, Receiver, RxConfig, Transmitter, TxParams};
use std::time::Instant;

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for rate in [Rate::R12, Rate::R54] {
        let mut tx = Transmitter::new();
        let mut sig = Vec::new();
        for _ in 0..100 {
            let mut psdu: Vec<u8> = (0..1496).map(|_| rng.random()).collect();
            semcom_phy::crc::append_fcs(&mut psdu);
            tx.transmit(
                &psdu,
                &TxParams {
                    rate,
                    scrambler_seed: 1,
                },
                &mut sig,
            )
            .unwrap();
            sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 400));
        }
        let mut noisy = Vec::new();
        Awgn::for_snr(30.0, burst_power(&sig), 1)
            .unwrap()
            .process(&sig, &mut noisy);
        let t = Instant::now();
        let mut rx = Receiver::new(RxConfig::default());
        for c in noisy.chunks(65536) {
            rx.push(c);
        }
        rx.flush();
        let dt = t.elapsed().as_secs_f64();
        println!(
            "RX {rate}: {:.1} MS/s ({} frames)",
            noisy.len() as f64 / dt / 1e6,
            rx.stats().frames
        );
        let psdu: Vec<u8> = (0..1500).map(|_| rng.random()).collect();
        let t = Instant::now();
        let mut out = Vec::new();
        let mut n = 0;
        for _ in 0..200 {
            out.clear();
            n += tx
                .transmit(
                    &psdu,
                    &TxParams {
                        rate,
                        scrambler_seed: 1,
                    },
                    &mut out,
                )
                .unwrap();
        }
        println!("TX {rate}: {:.1} MS/s", n as f64 / t.elapsed().as_secs_f64() / 1e6);
    }
    let llr: Vec<i8> = (0..2 * 100_000).map(|_| rng.random_range(-60..60)).collect();
    let mut out = vec![0u8; 100_000];
    for k in Kernel::available() {
        let mut v = ViterbiDecoder::with_kernel(k).unwrap();
        let t = Instant::now();
        for _ in 0..20 {
            v.decode(&llr, Termination::BestState, &mut out);
        }
        println!("Viterbi {k:?}: {:.1} Mbit/s", 2e6 / t.elapsed().as_secs_f64() / 1e6);
        let t = Instant::now();
        for _ in 0..20 {
            v.forward(&llr);
        }
        println!("  forward only: {:.1} Mbit/s", 2e6 / t.elapsed().as_secs_f64() / 1e6);
    }
}
