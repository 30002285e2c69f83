//! Own transmitter → channel → own receiver, streamed.

mod common;

use common::{feed_chunked, random_psdu};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_phy::channel::{burst_power, Awgn, Cfo, Chain, Impairment, TimingOffset};
use semcom_phy::{Complex32, Rate, Receiver, RxConfig, RxEvent, RxFrame, Transmitter, TxParams};

fn frames(events: impl IntoIterator<Item = RxEvent>) -> Vec<RxFrame> {
    events
        .into_iter()
        .filter_map(|e| match e {
            RxEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

fn decode_chunked(samples: &[Complex32], rng: &mut ChaCha8Rng, sizes: std::ops::RangeInclusive<usize>) -> Vec<RxEvent> {
    feed_chunked(samples, rng, sizes).0
}

struct Sent {
    start: usize,
    rate: Rate,
    psdu: Vec<u8>,
    seed: u8,
}

/// A stream of frames with random gaps (and sometimes none), then a channel: random fractional
/// timing, CFO in ±200 kHz, AWGN at `snr_db`.
fn stream(rng: &mut ChaCha8Rng, plan: &[(Rate, usize)], snr_db: f64) -> (Vec<Complex32>, Vec<Sent>) {
    let mut tx = Transmitter::new();
    let mut sig = vec![Complex32::new(0.0, 0.0); rng.random_range(0..400)];
    let mut sent = Vec::new();
    let mut burst_samples = Vec::new();
    for &(rate, len) in plan {
        let psdu = random_psdu(rng, len);
        let seed = rng.random_range(1..=127);
        let start = sig.len();
        tx.transmit(
            &psdu,
            &TxParams {
                rate,
                scrambler_seed: seed,
            },
            &mut sig,
        )
        .unwrap();
        burst_samples.extend_from_slice(&sig[start..]);
        sent.push(Sent {
            start,
            rate,
            psdu,
            seed,
        });
        let gap = if rng.random_bool(0.2) {
            0
        } else {
            rng.random_range(1..600)
        };
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), gap));
    }
    sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 200));
    let mut ch = Chain::new();
    ch.push(TimingOffset::new(rng.random_range(0.0..1.0), 0.0).unwrap());
    ch.push(Cfo::new(rng.random_range(-200e3..=200e3), 20e6, rng.random_range(0.0..6.3)).unwrap());
    ch.push(Awgn::for_snr(snr_db, burst_power(&burst_samples), rng.random()).unwrap());
    let mut out = Vec::new();
    ch.process(&sig, &mut out);
    (out, sent)
}

fn check_all_delivered(sent: &[Sent], got: &[RxFrame], what: &str) {
    assert_eq!(got.len(), sent.len(), "{what}: frames found");
    for (s, g) in sent.iter().zip(got) {
        let ctx = format!("{what}: {} octets at {}", s.psdu.len(), s.rate);
        assert_eq!(g.rate, s.rate, "{ctx}");
        assert_eq!(g.psdu, s.psdu, "{ctx}");
        assert_eq!(g.fcs_ok, s.psdu.len() >= 4, "{ctx}");
        assert_eq!(g.scrambler_seed, s.seed, "{ctx}");
        // The reported offset is the L-STF start, to within the fractional delay (< 1 sample).
        assert!(
            g.offset.abs_diff(s.start as u64) <= 1,
            "{ctx}: offset {} vs {}",
            g.offset,
            s.start
        );
    }
}

/// Issue acceptance 2: every rate, lengths across 1 … 4095 (edges and random), CFO up to
/// ±200 kHz, random timing, random chunking: no frame lost at 30 dB.
#[test]
fn every_rate_and_length_at_30_db() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let mut lengths = vec![
        1, 2, 3, 4, 5, 6, 7, 8, 13, 24, 27, 100, 255, 256, 1000, 1500, 2304, 4094, 4095,
    ];
    lengths.extend((0..24).map(|_| rng.random_range(1..=4095)));
    for rate in Rate::ALL {
        for chunk in lengths.chunks(6) {
            let plan: Vec<(Rate, usize)> = chunk.iter().map(|&l| (rate, l)).collect();
            let (samples, sent) = stream(&mut rng, &plan, 30.0);
            let got = frames(decode_chunked(&samples, &mut rng, 1..=20_000));
            check_all_delivered(&sent, &got, &format!("{rate}"));
        }
    }
}

/// Mixed rates back to back, fed one sample at a time and as one chunk: same result.
#[test]
fn chunking_does_not_change_the_result() {
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let plan: Vec<(Rate, usize)> = Rate::ALL.iter().map(|&r| (r, rng.random_range(1..300))).collect();
    let (samples, sent) = stream(&mut rng, &plan, 25.0);
    let one = frames(decode_chunked(&samples, &mut rng, 1..=1));
    let whole = frames(Receiver::new(RxConfig::default()).decode_all(&samples));
    let random = frames(decode_chunked(&samples, &mut rng, 1..=5000));
    check_all_delivered(&sent, &one, "1-sample chunks");
    assert_eq!(one, whole);
    assert_eq!(one, random);
}

/// The reported statistics track the channel: SNR within 1 dB, CFO within 2 kHz.
#[test]
fn statistics_track_the_channel() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut tx = Transmitter::new();
    for (snr, cfo) in [(10.0, -150e3), (20.0, 12e3), (30.0, 199e3)] {
        let psdu = random_psdu(&mut rng, 500);
        let mut sig = vec![Complex32::new(0.0, 0.0); 300];
        tx.transmit(
            &psdu,
            &TxParams {
                rate: Rate::R24,
                scrambler_seed: 9,
            },
            &mut sig,
        )
        .unwrap();
        let p = burst_power(&sig[300..]);
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 300));
        let mut ch = Chain::new();
        ch.push(Cfo::new(cfo, 20e6, 0.3).unwrap());
        ch.push(Awgn::for_snr(snr, p, 1).unwrap());
        let mut out = Vec::new();
        ch.process(&sig, &mut out);
        let got = frames(Receiver::new(RxConfig::default()).decode_all(&out));
        assert_eq!(got.len(), 1);
        let f = &got[0];
        assert!((f64::from(f.snr_db) - snr).abs() < 1.0, "snr {} vs {snr}", f.snr_db);
        assert!((f64::from(f.cfo_hz) - cfo).abs() < 2e3, "cfo {} vs {cfo}", f.cfo_hz);
        // EVM ≈ −SNR for a flat channel.
        assert!((f64::from(f.evm_db) + snr).abs() < 1.5, "evm {} at {snr}", f.evm_db);
        assert_eq!(f.offset, 300);
    }
}

/// Sampling-clock offsets large enough to drift a long frame by several samples (4095 octets at
/// 6 Mbit/s last 110 000 samples: 11 samples at 100 ppm): the receiver moves its FFT window and
/// reports the offset.
#[test]
fn sampling_clock_offset_on_long_frames() {
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let mut tx = Transmitter::new();
    for sfo in [-100.0, -40.0, 20.0, 100.0] {
        let psdu = random_psdu(&mut rng, 4095);
        let mut sig = vec![Complex32::new(0.0, 0.0); 500];
        tx.transmit(
            &psdu,
            &TxParams {
                rate: Rate::R6,
                scrambler_seed: 33,
            },
            &mut sig,
        )
        .unwrap();
        let p = burst_power(&sig[500..]);
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 500));
        let mut ch = Chain::new();
        ch.push(TimingOffset::new(0.3, sfo).unwrap());
        ch.push(Awgn::for_snr(20.0, p, 2).unwrap());
        let mut out = Vec::new();
        ch.process(&sig, &mut out);
        let got = frames(Receiver::new(RxConfig::default()).decode_all(&out));
        assert_eq!(got.len(), 1, "{sfo} ppm");
        assert!(got[0].fcs_ok && got[0].psdu == psdu, "{sfo} ppm");
        assert!(
            (f64::from(got[0].sfo_ppm) - sfo).abs() < 5.0,
            "reported {} ppm for {sfo}",
            got[0].sfo_ppm
        );
    }
}
