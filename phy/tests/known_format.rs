//! Known-format reception (`RxConfig::expect`): short legacy frames of a known rate and length,
//! sent `repeats` times, decoded without SIGNAL and combined before the Viterbi decoder.

mod common;

use common::{drain, random_psdu};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_phy::channel::{burst_power, Awgn, Cfo, Chain, Impairment, TimingOffset};
use semcom_phy::rx::KnownFormat;
use semcom_phy::{Complex32, PhyError, Rate, Receiver, RxConfig, RxEvent, Transmitter, TxParams};

/// PSDU of the sensor event frames: 3 octets of frame header, 1 of payload, 4 of FCS.
const LEN: usize = 8;

fn known_rx(repeats: usize) -> Receiver {
    Receiver::new(RxConfig {
        expect: Some(KnownFormat::new(Rate::R6, LEN, repeats).unwrap()),
        ..RxConfig::default()
    })
}

/// Sends `n` bursts of `repeats` copies, each alone in a capture with silence around it and a
/// random fractional timing offset, through AWGN at `snr_db` (per sample, over one copy), and
/// counts the bursts `rx` returns intact.
fn delivered(rx: &mut Receiver, repeats: usize, snr_db: f64, cfo_hz: f64, n: usize, seed: u64) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tx = Transmitter::new();
    let gap = KnownFormat::new(Rate::R6, LEN, repeats).unwrap().gap;
    let mut ok = 0;
    for _ in 0..n {
        let psdu = random_psdu(&mut rng, LEN);
        let params = TxParams {
            rate: Rate::R6,
            scrambler_seed: rng.random_range(1..=127),
        };
        let lead = rng.random_range(200..600usize);
        let mut sig = vec![Complex32::new(0.0, 0.0); lead];
        tx.transmit_repeated(&psdu, &params, repeats, gap, &mut sig).unwrap();
        let power = burst_power(&sig[lead..lead + Transmitter::packet_len(Rate::R6, LEN)]);
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 400));
        let mut ch = Chain::new();
        ch.push(TimingOffset::new(rng.random_range(0.0..1.0), 0.0).unwrap());
        ch.push(Cfo::new(cfo_hz, 20e6, rng.random_range(0.0..std::f64::consts::TAU)).unwrap());
        ch.push(Awgn::for_snr(snr_db, power, rng.random()).unwrap());
        let mut out = Vec::new();
        ch.process(&sig, &mut out);
        rx.reset();
        let events = rx.decode_all(&out);
        let frames: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                RxEvent::Frame(f) => Some(f),
                _ => None,
            })
            .collect();
        // A frame whose FCS holds is the one sent; known-format mode reports no other kind.
        assert!(
            frames.iter().all(|f| !f.fcs_ok || f.psdu == psdu),
            "a false frame passed its FCS"
        );
        if rx.config().expect.is_some() {
            assert!(
                frames.iter().all(|f| f.fcs_ok),
                "known-format mode reported a bad frame"
            );
        }
        let intact = frames.iter().filter(|f| f.fcs_ok).count();
        assert!(intact <= 1, "one burst reported {intact} times");
        ok += intact;
    }
    ok
}

#[test]
fn known_format_decodes_where_the_legacy_receiver_fails() {
    // At −2 dB the legacy receiver loses ≈ 80 % of 8-octet frames (SIGNAL and detection); the
    // known-format receiver, one copy, loses ≈ 17 %. Measured 100 bursts each (seeded).
    let n = 100;
    let legacy = delivered(&mut Receiver::new(RxConfig::default()), 1, -2.0, 0.0, n, 11);
    let known = delivered(&mut known_rx(1), 1, -2.0, 0.0, n, 11);
    assert!(legacy <= 40, "legacy receiver delivered {legacy} of {n} at −2 dB");
    assert!(known >= 70, "known-format receiver delivered {known} of {n} at −2 dB");
}

#[test]
fn four_combined_copies_hold_at_minus_four_db() {
    // Four copies combined: no burst lost in 400 at −4 dB when this was written; a CFO of
    // 60 kHz (≈ 11 ppm at 5.5 GHz) on top changes nothing.
    let n = 100;
    let got = delivered(&mut known_rx(4), 4, -4.0, 0.0, n, 12);
    assert!(got >= 97, "delivered {got} of {n} at −4 dB");
    let got = delivered(&mut known_rx(4), 4, -4.0, 60e3, n, 13);
    assert!(got >= 97, "delivered {got} of {n} at −4 dB with a 60 kHz CFO");
    // Combining is what does it: one copy alone at −4 dB loses most.
    let single = delivered(&mut known_rx(1), 1, -4.0, 0.0, n, 12);
    assert!(single <= 40, "one copy delivered {single} of {n} at −4 dB");
}

#[test]
fn noise_alone_never_yields_a_frame() {
    // 4 M samples (0.2 s of air) of noise: the lowered threshold detects often, every detection
    // is decoded in every placement, and the FCS refuses them all.
    for repeats in [1, 4] {
        let mut rx = known_rx(repeats);
        let mut awgn = Awgn::new(1.0, 21 + repeats as u64).unwrap();
        let zeros = vec![Complex32::new(0.0, 0.0); 1 << 16];
        let mut noise = Vec::new();
        let mut events = Vec::new();
        for _ in 0..64 {
            noise.clear();
            awgn.process(&zeros, &mut noise);
            rx.push(&noise);
            drain(&mut rx, &mut events);
        }
        rx.flush();
        drain(&mut rx, &mut events);
        let stats = rx.stats();
        assert!(stats.detections > 100, "the test needs detections to mean something");
        assert_eq!(stats.frames, 0);
        assert!(events.iter().all(|e| !matches!(e, RxEvent::Frame(_))));
    }
}

#[test]
fn a_stream_of_bursts_is_decoded_once_each_however_it_is_chunked() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let mut tx = Transmitter::new();
    let kf = KnownFormat::new(Rate::R6, LEN, 3).unwrap();
    let mut sig = vec![Complex32::new(0.0, 0.0); 300];
    let mut sent = Vec::new();
    for _ in 0..6 {
        let psdu = random_psdu(&mut rng, LEN);
        let params = TxParams {
            rate: Rate::R6,
            scrambler_seed: rng.random_range(1..=127),
        };
        let n = tx.transmit_repeated(&psdu, &params, 3, kf.gap, &mut sig).unwrap();
        assert_eq!(n, kf.burst_len());
        sig.extend(std::iter::repeat_n(
            Complex32::new(0.0, 0.0),
            rng.random_range(100..2000),
        ));
        sent.push(psdu);
    }
    let power = burst_power(&sig[300..300 + Transmitter::packet_len(Rate::R6, LEN)]);
    let mut ch = Chain::new();
    ch.push(Awgn::for_snr(10.0, power, 5).unwrap());
    let mut noisy = Vec::new();
    ch.process(&sig, &mut noisy);
    let mut results = Vec::new();
    for chunk in [noisy.len(), 997, 64] {
        let mut rx = Receiver::new(RxConfig {
            expect: Some(kf),
            ..RxConfig::default()
        });
        let mut events = Vec::new();
        for c in noisy.chunks(chunk) {
            rx.push(c);
            drain(&mut rx, &mut events);
        }
        rx.flush();
        drain(&mut rx, &mut events);
        let got: Vec<(u64, Vec<u8>)> = events
            .iter()
            .filter_map(|e| match e {
                RxEvent::Frame(f) if f.fcs_ok => Some((f.offset, f.psdu.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            got.iter().map(|g| &g.1).collect::<Vec<_>>(),
            sent.iter().collect::<Vec<_>>()
        );
        results.push(got);
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "chunking changed the result");
}

#[test]
fn bad_known_formats_are_refused() {
    assert!(matches!(
        KnownFormat::new(Rate::R6, 3, 2),
        Err(PhyError::KnownFormat { .. })
    ));
    assert!(matches!(
        KnownFormat::new(Rate::R6, 8, 0),
        Err(PhyError::KnownFormat { .. })
    ));
    assert!(matches!(
        KnownFormat::new(Rate::R6, 8, 9),
        Err(PhyError::KnownFormat { .. })
    ));
    assert!(KnownFormat::new(Rate::R6, 4096, 1).is_err());
    let kf = KnownFormat::new(Rate::R6, 8, 4).unwrap();
    // 8 octets at 6 Mbit/s: preamble, SIGNAL and 4 DATA symbols, 36 µs plus the overlap sample.
    assert_eq!(Transmitter::packet_len(Rate::R6, 8), 721);
    assert_eq!(kf.burst_len(), 4 * 721 + 3 * 320);
    // Fields set by hand out of range never panic the receiver.
    let mut rx = Receiver::new(RxConfig {
        expect: Some(KnownFormat {
            repeats: 1000,
            length: 0,
            ..kf
        }),
        ..RxConfig::default()
    });
    let mut awgn = Awgn::new(1.0, 3).unwrap();
    let mut noise = Vec::new();
    awgn.process(&vec![Complex32::new(0.0, 0.0); 50_000], &mut noise);
    assert!(rx.decode_all(&noise).is_empty());
}
