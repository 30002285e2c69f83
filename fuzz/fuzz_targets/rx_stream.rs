//! Arbitrary sample streams into the streaming receiver.
//!
//! Input: bytes 0–1 = seed (little-endian u16), the rest = little-endian f32 pairs (I, Q).
//! * seed bits 0–2 pick the largest chunk size (1 … 4096), the whole seed drives the sizes;
//! * seed bit 15 set: every sample is multiplied by `SCALES[(seed >> 11) & 15]` (1e20, 1e30,
//!   f32::MAX, ∞, subnormal, …), so overflowing products, ∞·0 = NaN and underflow occur;
//! * seed bit 3 set: the receiver is in known-format mode (8-octet PSDUs at 6 Mbit/s, 1 … 4
//!   copies from seed bits 4–5), which detects at a lower threshold and combines copies.
//!
//! Checks: no panic / hang, and the documented chunking invariance: feeding the stream in
//! random chunks gives the same events and counters as feeding it in one push.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// `SEMCOM_FUZZ_SKIP_CHUNK_CHECK=1` turns the chunking-invariance check off (to hunt for
/// panics and hangs while a known invariance bug is open; see fuzz/README.md).
static CHECK_CHUNKING: LazyLock<bool> = LazyLock::new(|| std::env::var_os("SEMCOM_FUZZ_SKIP_CHUNK_CHECK").is_none());
use semcom_phy::rx::KnownFormat;
use semcom_phy::{Complex32, Rate, Receiver, RxConfig, RxEvent};

const SCALES: [f32; 16] = [
    1e10,
    1e18,
    1e19,
    1e20,
    1e25,
    1e30,
    1e38,
    f32::MAX,
    f32::INFINITY,
    -1e37,
    1e-10,
    1e-20,
    1e-30,
    1e-38,
    1e-40, // subnormal
    1e-45, // smallest subnormal
];

/// SplitMix64: chunk sizes from the seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn decode(
    samples: &[Complex32],
    chunks: Option<(u16, usize)>,
    expect: Option<KnownFormat>,
) -> (Vec<RxEvent>, semcom_phy::rx::RxStats) {
    let mut rx = Receiver::new(RxConfig {
        expect,
        ..RxConfig::default()
    });
    let mut events = Vec::new();
    match chunks {
        None => rx.push(samples),
        Some((seed, max)) => {
            let mut rng = SplitMix(u64::from(seed));
            let mut i = 0;
            while i < samples.len() {
                let n = (1 + (rng.next() % max as u64) as usize).min(samples.len() - i);
                rx.push(&samples[i..i + n]);
                i += n;
                while let Some(e) = rx.poll_event() {
                    events.push(e);
                }
            }
        }
    }
    rx.flush();
    while let Some(e) = rx.poll_event() {
        events.push(e);
    }
    (events, rx.stats())
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let seed = u16::from_le_bytes([data[0], data[1]]);
    let mut samples: Vec<Complex32> = data[2..]
        .chunks_exact(8)
        .map(|c| {
            Complex32::new(
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                f32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    if seed & 0x8000 != 0 {
        let f = SCALES[usize::from((seed >> 11) & 15)];
        for s in &mut samples {
            *s *= f;
        }
    }
    let max_chunk = [1usize, 2, 3, 16, 63, 80, 333, 4096][usize::from(seed & 7)];
    let expect = (seed & 8 != 0).then(|| KnownFormat::new(Rate::R6, 8, 1 + usize::from((seed >> 4) & 3)).unwrap());
    let (chunked, stats_chunked) = decode(&samples, Some((seed, max_chunk)), expect);
    if expect.is_some() {
        // Known-format mode reports only frames whose FCS holds.
        assert!(chunked.iter().all(|e| !matches!(e, RxEvent::Frame(f) if !f.fcs_ok)));
    }
    if !*CHECK_CHUNKING {
        return;
    }
    let (whole, stats_whole) = decode(&samples, None, expect);
    assert_eq!(stats_chunked, stats_whole, "chunking changed the counters");
    // Debug strings: NaN fields compare equal to themselves this way.
    assert_eq!(
        format!("{chunked:?}"),
        format!("{whole:?}"),
        "chunking changed the events"
    );
});
