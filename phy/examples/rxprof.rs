//! Receiver-only loop for profiling: `rxprof RATE`.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_phy::channel::{burst_power, Awgn, Impairment};
use semcom_phy::{Complex32, Rate, Receiver, RxConfig, Transmitter, TxParams};

fn main() {
    let rate = Rate::from_mbps(std::env::args().nth(1).map_or(54, |a| a.parse().unwrap())).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
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
    let t = std::time::Instant::now();
    let mut frames = 0;
    for _ in 0..10 {
        let mut rx = Receiver::new(RxConfig::default());
        for c in noisy.chunks(65536) {
            rx.push(c);
        }
        rx.flush();
        frames += rx.stats().frames;
    }
    println!(
        "RX {rate}: {:.1} MS/s ({frames} frames)",
        10.0 * noisy.len() as f64 / t.elapsed().as_secs_f64() / 1e6
    );
}
