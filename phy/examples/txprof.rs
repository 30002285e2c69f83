//! Transmitter-only loop for profiling: `txprof RATE`.
use semcom_phy::{Rate, Transmitter, TxParams};
fn main() {
    let rate = Rate::from_mbps(std::env::args().nth(1).map_or(54, |a| a.parse().unwrap())).unwrap();
    let psdu: Vec<u8> = (0..1500u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut tx = Transmitter::new();
    let mut out = Vec::new();
    let t = std::time::Instant::now();
    let mut n = 0;
    for _ in 0..3000 {
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
