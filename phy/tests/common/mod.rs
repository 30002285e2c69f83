//! Helpers shared by the integration tests.
#![allow(dead_code)]

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use semcom_phy::rx::RxStats;
use semcom_phy::{Complex32, Receiver, RxConfig, RxEvent};
use std::path::PathBuf;

/// A PSDU of `len` octets: random, with a valid FCS in the last four when `len >= 4`.
pub fn random_psdu(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    if len >= 4 {
        let mut p: Vec<u8> = (0..len - 4).map(|_| rng.random()).collect();
        semcom_phy::crc::append_fcs(&mut p);
        p
    } else {
        (0..len).map(|_| rng.random()).collect()
    }
}

/// Every pending event of `rx`.
pub fn drain(rx: &mut Receiver, out: &mut Vec<RxEvent>) {
    while let Some(e) = rx.poll_event() {
        out.push(e);
    }
}

/// Feeds `samples` to a default receiver in chunks whose sizes are drawn from `sizes`, flushes,
/// and returns the events and the counters.
pub fn feed_chunked(
    samples: &[Complex32],
    rng: &mut ChaCha8Rng,
    sizes: std::ops::RangeInclusive<usize>,
) -> (Vec<RxEvent>, RxStats) {
    let mut rx = Receiver::new(RxConfig::default());
    let mut events = Vec::new();
    let mut i = 0;
    while i < samples.len() {
        let n = rng.random_range(sizes.clone()).min(samples.len() - i);
        rx.push(&samples[i..i + n]);
        i += n;
        drain(&mut rx, &mut events);
    }
    rx.flush();
    drain(&mut rx, &mut events);
    (events, rx.stats())
}

/// The Annex G tables in `../shared/testvectors`, or `None` (the test then says it skipped).
pub fn annex_g_dir() -> Option<PathBuf> {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/testvectors/ieee80211a-annex-g");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("SKIPPED: {} not found", d.display());
        None
    }
}

fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A `.hex.txt` table as bits, first bit = MSB of the first octet.
pub fn read_hex_bits(name: &str) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(annex_g_dir()?.join(name)).ok()?;
    let bytes: Vec<u8> = data_lines(&text)
        .flat_map(|l| l.split_whitespace())
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    Some(
        bytes
            .iter()
            .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
            .collect(),
    )
}

/// A `.hex.txt` table as octets.
pub fn read_hex_bytes(name: &str) -> Option<Vec<u8>> {
    let text = std::fs::read_to_string(annex_g_dir()?.join(name)).ok()?;
    Some(
        data_lines(&text)
            .flat_map(|l| l.split_whitespace())
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect(),
    )
}

/// An `.iq.txt` table.
pub fn read_iq(name: &str) -> Option<Vec<Complex32>> {
    let text = std::fs::read_to_string(annex_g_dir()?.join(name)).ok()?;
    Some(
        data_lines(&text)
            .map(|l| {
                let mut it = l.split_whitespace().map(|v| v.parse::<f32>().unwrap());
                Complex32::new(it.next().unwrap(), it.next().unwrap())
            })
            .collect(),
    )
}

/// Asserts two sample sequences agree to the tables' precision: they print 3 decimals, so a
/// correct value is within half a unit of the last place.
pub fn assert_iq_close(got: &[Complex32], want: &[Complex32], table: &str) {
    assert_eq!(got.len(), want.len(), "{table}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.re - w.re).abs() <= 5.01e-4 && (g.im - w.im).abs() <= 5.01e-4,
            "{table}: sample {i}: got {g:.4}, table {w:.4}"
        );
    }
}
