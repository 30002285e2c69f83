//! PER/BER of one operating point or a sweep, on all cores.
//!
//! `cargo run --release -p semcom-phy --example per -- RATE LEN SNR_FROM SNR_TO STEP FRAMES [uncoded]`

use semcom_phy::sim::{frame_seed, FrameSim, PerPoint, SimParams};
use semcom_phy::Rate;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let rate = Rate::from_mbps(arg(1, "12").parse().unwrap()).unwrap();
    let len: usize = arg(2, "1000").parse().unwrap();
    let (from, to, step): (f64, f64, f64) = (
        arg(3, "4").parse().unwrap(),
        arg(4, "7").parse().unwrap(),
        arg(5, "0.5").parse().unwrap(),
    );
    let frames: u64 = arg(6, "500").parse().unwrap();
    let uncoded = arg(7, "") == "uncoded";
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let mut snr = from;
    let mut point = 0;
    while snr <= to + 1e-9 {
        let p = SimParams::awgn(rate, len, snr);
        let t0 = std::time::Instant::now();
        let total = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    let p = p.clone();
                    s.spawn(move || {
                        let mut sim = FrameSim::new();
                        let mut agg = PerPoint::default();
                        for i in (t..frames).step_by(threads as usize) {
                            agg.add(&sim.run(&p, frame_seed(1, point, i), uncoded).unwrap());
                        }
                        agg
                    })
                })
                .collect();
            let mut total = PerPoint::default();
            for h in hs {
                total.merge(&h.join().unwrap());
            }
            total
        });
        println!(
            "{rate} len {len} snr {snr:5.2} dB: PER {:.4} ({}/{}; header lost {}) BER {:.2e} rawBER {:.3e} snr_est {:.2} [{:.1}s]",
            total.per(), total.lost, total.frames, total.header_lost, total.ber(), total.raw_ber(),
            total.snr_est_sum / total.snr_est_n.max(1) as f64, t0.elapsed().as_secs_f64()
        );
        snr += step;
        point += 1;
    }
}
