//! Writes a seed corpus for `rx_stream` (random bytes almost never contain an L-STF, so the
//! fuzzer starts from real frames): `cargo run --release --example gen_seeds` from `fuzz/`.
//! Format: 2-byte seed, then little-endian f32 (I, Q) pairs.

use semcom_phy::{Complex32, Rate, Transmitter, TxParams};
use std::io::Write;

fn write(dir: &std::path::Path, name: &str, seed: u16, samples: &[Complex32]) {
    let mut f = std::fs::File::create(dir.join(name)).unwrap();
    f.write_all(&seed.to_le_bytes()).unwrap();
    for s in samples {
        f.write_all(&s.re.to_le_bytes()).unwrap();
        f.write_all(&s.im.to_le_bytes()).unwrap();
    }
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/rx_stream");
    std::fs::create_dir_all(&dir).unwrap();
    let mut tx = Transmitter::new();
    let z = Complex32::new(0.0, 0.0);
    for (i, rate) in Rate::ALL.into_iter().enumerate() {
        for len in [1usize, 8, 40] {
            let body = if len >= 4 { len - 4 } else { len };
            let mut psdu: Vec<u8> = (0..body).map(|b| b as u8 ^ 0x5a).collect();
            if len >= 4 {
                semcom_phy::crc::append_fcs(&mut psdu);
            }
            let mut sig = vec![z; 20];
            tx.transmit(
                &psdu,
                &TxParams {
                    rate,
                    scrambler_seed: 0x5d,
                },
                &mut sig,
            )
            .unwrap();
            sig.extend(std::iter::repeat_n(z, 20));
            write(
                &dir,
                &format!("frame_{}_{len}", rate.mbps()),
                (i * 7 + len) as u16 & 0x7fff,
                &sig,
            );
            // Two frames back to back, and one cut short.
            let mut two = sig.clone();
            two.extend_from_slice(&sig);
            write(&dir, &format!("two_{}_{len}", rate.mbps()), (i as u16) | 0x8000, &two);
            write(
                &dir,
                &format!("cut_{}_{len}", rate.mbps()),
                3,
                &sig[..sig.len() * 2 / 3],
            );
        }
    }
    // Preamble only, and a tone.
    let mut sig = Vec::new();
    tx.transmit(
        &[1, 2, 3],
        &TxParams {
            rate: Rate::R6,
            scrambler_seed: 1,
        },
        &mut sig,
    )
    .unwrap();
    write(&dir, "preamble", 5, &sig[..400]);
    let tone: Vec<Complex32> = (0..1000).map(|n| Complex32::from_polar(1.0, 0.3 * n as f32)).collect();
    write(&dir, "tone", 2, &tone);
    println!("seeds written to {}", dir.display());
}
