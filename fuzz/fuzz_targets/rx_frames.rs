//! A valid frame from the transmitter (fuzz-chosen rate, length, scrambler seed and payload
//! bytes), corrupted by fuzz-chosen edits, into the receiver.
//!
//! Edits: overwrite samples with arbitrary f32 bit patterns, truncate, insert garbage (raw f32
//! bits or scaled pseudo-noise), scale a region (incl. ∞, f32::MAX, subnormal factors), NaN/∞
//! bursts, duplicate a region elsewhere (repeated preambles, overlapping frames), add a DC/tone
//! interferer, rotate a region's phase by a frequency offset.
//!
//! Checks: no panic / hang; every frame reported with a valid FCS carries exactly the PSDU that
//! was sent (and the sent PSDU had a valid FCS); feeding in random chunks gives the same events
//! as one push (documented chunking invariance).
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// `SEMCOM_FUZZ_SKIP_CHUNK_CHECK=1` turns the chunking-invariance check off (to hunt for
/// panics and hangs while a known invariance bug is open; see fuzz/README.md).
static CHECK_CHUNKING: LazyLock<bool> = LazyLock::new(|| std::env::var_os("SEMCOM_FUZZ_SKIP_CHUNK_CHECK").is_none());
use semcom_phy::crc::{append_fcs, fcs_ok};
use semcom_phy::{Complex32, Rate, Receiver, RxEvent, Transmitter, TxParams};
use std::cell::RefCell;

thread_local! {
    static TX: RefCell<Transmitter> = RefCell::new(Transmitter::new());
}

const FACTORS: [f32; 12] = [
    0.0,
    -1.0,
    1e-3,
    1e3,
    1e19,
    1e20,
    1e30,
    f32::MAX,
    f32::INFINITY,
    1e-30,
    1e-40,
    f32::NAN,
];

fn position(u: &mut Unstructured, len: usize) -> Result<usize> {
    Ok(if len == 0 { 0 } else { u.int_in_range(0..=len - 1)? })
}

fn raw_sample(u: &mut Unstructured) -> Result<Complex32> {
    Ok(Complex32::new(
        f32::from_bits(u.arbitrary()?),
        f32::from_bits(u.arbitrary()?),
    ))
}

fn decode(samples: &[Complex32], chunk: Option<(u64, usize)>) -> Vec<RxEvent> {
    let mut rx = Receiver::default();
    let mut events = Vec::new();
    match chunk {
        None => rx.push(samples),
        Some((mut state, max)) => {
            let mut i = 0;
            while i < samples.len() {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let n = (1 + ((state >> 33) as usize % max)).min(samples.len() - i);
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
    events
}

fn run(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let rate = Rate::ALL[u.int_in_range(0..=7usize)?];
    let len: usize = if u.ratio(1u8, 16u8)? {
        u.int_in_range(1..=4095)?
    } else {
        u.int_in_range(1..=200)?
    };
    let with_fcs = len >= 4 && !u.ratio(1u8, 8u8)?;
    let seed: u8 = u.int_in_range(1..=127)?;
    let fill: Vec<u8> = u.bytes(len.min(64))?.to_vec();
    let mut psdu: Vec<u8> = (0..if with_fcs { len - 4 } else { len })
        .map(|i| fill.get(i % fill.len().max(1)).copied().unwrap_or(0) ^ (i as u8))
        .collect();
    if with_fcs {
        append_fcs(&mut psdu);
    }
    let lead: usize = u.int_in_range(0..=400)?;
    let tail: usize = u.int_in_range(0..=200)?;
    let mut sig = vec![Complex32::new(0.0, 0.0); lead];
    TX.with(|tx| {
        tx.borrow_mut()
            .transmit(
                &psdu,
                &TxParams {
                    rate,
                    scrambler_seed: seed,
                },
                &mut sig,
            )
            .unwrap()
    });
    sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), tail));

    let n_ops: usize = u.int_in_range(0..=8)?;
    for _ in 0..n_ops {
        let at = position(&mut u, sig.len())?;
        match u.int_in_range(0..=7u8)? {
            0 => {
                // Overwrite a run with arbitrary bit patterns.
                let n: usize = u.int_in_range(1..=32)?;
                for i in at..(at + n).min(sig.len()) {
                    sig[i] = raw_sample(&mut u)?;
                }
            }
            1 => sig.truncate(at),
            2 => {
                // Insert garbage: raw bit patterns or pseudo-noise with an arbitrary amplitude.
                let n: usize = u.int_in_range(1..=2048)?;
                let ins: Vec<Complex32> = if u.arbitrary()? {
                    (0..n.min(64)).map(|_| raw_sample(&mut u)).collect::<Result<_>>()?
                } else {
                    let amp = f32::from_bits(u.arbitrary()?);
                    let mut x: u32 = u.arbitrary::<u32>()? | 1;
                    (0..n)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 17;
                            x ^= x << 5;
                            let re = (x & 0xffff) as f32 / 32768.0 - 1.0;
                            let im = (x >> 16) as f32 / 32768.0 - 1.0;
                            Complex32::new(re, im) * amp
                        })
                        .collect()
                };
                sig.splice(at..at, ins);
            }
            3 => {
                // Scale a region.
                let n: usize = u.int_in_range(1..=4096)?;
                let f = if u.arbitrary()? {
                    FACTORS[u.int_in_range(0..=FACTORS.len() - 1)?]
                } else {
                    f32::from_bits(u.arbitrary()?)
                };
                for s in sig.iter_mut().skip(at).take(n) {
                    *s *= f;
                }
            }
            4 => {
                // NaN / ±inf burst.
                let n: usize = u.int_in_range(1..=512)?;
                let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][u.int_in_range(0..=2usize)?];
                for s in sig.iter_mut().skip(at).take(n) {
                    s.re = v;
                }
            }
            5 => {
                // Copy a region (e.g. the preamble) to another place, inserted.
                let from = position(&mut u, sig.len())?;
                let n: usize = u.int_in_range(1..=1024)?;
                let piece: Vec<Complex32> = sig[from..(from + n).min(sig.len())].to_vec();
                sig.splice(at..at, piece);
            }
            6 => {
                // DC or tone interferer on a region.
                let n: usize = u.int_in_range(1..=8192)?;
                let amp: f32 = f32::from(u.arbitrary::<u8>()?) / 64.0;
                let f = f32::from(u.arbitrary::<i8>()?) / 256.0;
                for (k, s) in sig.iter_mut().skip(at).take(n).enumerate() {
                    let ph = 2.0 * std::f32::consts::PI * ((f * k as f32) % 1.0);
                    *s += Complex32::from_polar(amp, ph);
                }
            }
            _ => {
                // Frequency offset on a region (phase discontinuity at its start).
                let f = f32::from(u.arbitrary::<i16>()?) / 65536.0;
                for (k, s) in sig.iter_mut().skip(at).enumerate() {
                    *s *= Complex32::from_polar(1.0, 2.0 * std::f32::consts::PI * ((f * k as f32) % 1.0));
                }
            }
        }
    }

    let max_chunk = [1usize, 7, 80, 1000, 100_000][u.int_in_range(0..=4usize)?];
    let chunk_seed: u64 = u.arbitrary()?;
    let events = decode(&sig, Some((chunk_seed, max_chunk)));
    for e in &events {
        if let RxEvent::Frame(f) = e {
            if f.fcs_ok {
                assert!(fcs_ok(&f.psdu));
                assert_eq!(f.psdu, psdu, "FCS-valid frame with a PSDU that was never sent");
            }
        }
    }
    if !*CHECK_CHUNKING {
        return Ok(());
    }
    let whole = decode(&sig, None);
    assert_eq!(
        format!("{events:?}"),
        format!("{whole:?}"),
        "chunking changed the events"
    );
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(data);
});
