//! Robustness of the streaming receiver against inputs that carry no frame, or a broken one:
//! long Gaussian noise, random bit patterns reinterpreted as `f32` (NaN, ±inf, huge and
//! subnormal values), truncated frames, NaN bursts, all-zero / DC / tone input and a period-16
//! signal that looks like an L-STF forever.
//!
//! Properties checked: no panic, no hang (every case is timed and bounded), and no frame with a
//! valid FCS unless the input carried that very frame (a frame reported `fcs_ok` must carry a
//! PSDU that was transmitted).
//!
//! Run: `cargo test -p semcom-phy --release --test robustness -- --nocapture` (the noise test
//! is slow in a debug build; it is meant for `--release`).

mod common;

use common::{drain, feed_chunked, random_psdu};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use semcom_phy::ofdm::{HEADER_LEN, N_CP, N_SYM};
use semcom_phy::rx::RxStats;
use semcom_phy::{Complex32, Rate, Receiver, RxConfig, RxEvent, Transmitter, TxParams};
use std::time::{Duration, Instant};

const ZERO: Complex32 = Complex32::new(0.0, 0.0);

fn assert_no_valid_frame(events: &[RxEvent], what: &str) {
    for e in events {
        if let RxEvent::Frame(f) = e {
            assert!(
                !f.fcs_ok,
                "{what}: false FCS-valid frame: {} octets at {} offset {} psdu {:02x?}",
                f.length, f.rate, f.offset, f.psdu
            );
        }
    }
}

/// Asserts that every FCS-valid frame carries one of the transmitted PSDUs.
fn assert_valid_frames_were_sent(events: &[RxEvent], sent: &[&[u8]], what: &str) {
    for e in events {
        if let RxEvent::Frame(f) = e {
            if f.fcs_ok {
                assert!(
                    sent.contains(&f.psdu.as_slice()),
                    "{what}: FCS-valid frame with a PSDU that was never sent: {} octets at {} offset {}",
                    f.length,
                    f.rate,
                    f.offset
                );
            }
        }
    }
}

fn psdu_with_fcs(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    assert!(len >= 4);
    random_psdu(rng, len)
}

fn transmit(tx: &mut Transmitter, psdu: &[u8], rate: Rate, seed: u8) -> Vec<Complex32> {
    let mut out = Vec::new();
    tx.transmit(
        psdu,
        &TxParams {
            rate,
            scrambler_seed: seed,
        },
        &mut out,
    )
    .unwrap();
    out
}

fn summary(s: &RxStats) -> String {
    format!(
        "samples {} non_finite {} detections {} sync_failures {} header_errors {} frames {} fcs_failures {} truncated {}",
        s.samples, s.non_finite, s.detections, s.sync_failures, s.header_errors, s.frames, s.fcs_failures, s.truncated
    )
}

/// Complex white Gaussian noise, unit power, in chunks of `chunk` samples from a seeded
/// ChaCha8 generator, produced on a second thread (the receiver runs on this one).
fn noise_chunks(seed: u64, total: usize, chunk: usize) -> std::sync::mpsc::Receiver<Vec<Complex32>> {
    let (send, recv) = std::sync::mpsc::sync_channel::<Vec<Complex32>>(2);
    std::thread::spawn(move || {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let sd = std::f32::consts::FRAC_1_SQRT_2;
        let mut left = total;
        while left > 0 {
            let n = chunk.min(left);
            let v: Vec<Complex32> = (0..n)
                .map(|_| {
                    let (a, b): (f32, f32) = (StandardNormal.sample(&mut rng), StandardNormal.sample(&mut rng));
                    Complex32::new(a * sd, b * sd)
                })
                .collect();
            left -= n;
            if send.send(v).is_err() {
                return;
            }
        }
    });
    recv
}

/// 10^8 samples (5 s of air time at 20 MS/s) of complex white Gaussian noise into one receiver:
/// no FCS-valid frame. Detections and refused headers are expected and reported.
#[test]
fn hundred_million_noise_samples_give_no_valid_frame() {
    const TOTAL: usize = 100_000_000;
    let t0 = Instant::now();
    let mut rx = Receiver::new(RxConfig::default());
    let mut events = Vec::new();
    let mut rx_time = Duration::ZERO;
    let mut n_events = [0usize; 3];
    for chunk in noise_chunks(0x5e11_c0de, TOTAL, 1 << 20) {
        let t = Instant::now();
        rx.push(&chunk);
        rx_time += t.elapsed();
        drain(&mut rx, &mut events);
        assert_no_valid_frame(&events, "noise");
        for e in events.drain(..) {
            match e {
                RxEvent::Frame(_) => n_events[0] += 1,
                RxEvent::HeaderError { .. } => n_events[1] += 1,
                _ => n_events[2] += 1,
            }
        }
    }
    rx.flush();
    drain(&mut rx, &mut events);
    assert_no_valid_frame(&events, "noise");
    let s = rx.stats();
    assert_eq!(s.samples, TOTAL as u64);
    let el = t0.elapsed();
    eprintln!(
        "noise 1e8: {} | events: {} frames (FCS bad), {} header errors, {} other | wall {:.2} s, receiver {:.2} s ({:.1} MS/s)",
        summary(&s),
        n_events[0],
        n_events[1],
        n_events[2] + events.len(),
        el.as_secs_f64(),
        rx_time.as_secs_f64(),
        TOTAL as f64 / rx_time.as_secs_f64() / 1e6
    );
}

/// Noise into a hair-trigger receiver (threshold 0.2, run 2) so that the L-LTF search, channel
/// fit and their refusal run on noise ~70 000 times; no valid frame.
#[test]
fn noise_with_hair_trigger_detector() {
    const TOTAL: usize = 10_000_000;
    let t0 = Instant::now();
    let mut rx = Receiver::new(RxConfig {
        detect_threshold: 0.2,
        detect_run: 2,
        ..RxConfig::default()
    });
    let mut events = Vec::new();
    for chunk in noise_chunks(0xa11_7e57, TOTAL, 1 << 20) {
        rx.push(&chunk);
        drain(&mut rx, &mut events);
    }
    rx.flush();
    drain(&mut rx, &mut events);
    assert_no_valid_frame(&events, "noise, hair trigger");
    eprintln!(
        "noise 1e7, hair trigger: {} | {:.2} s",
        summary(&rx.stats()),
        t0.elapsed().as_secs_f64()
    );
}

/// Noise after a real L-STF + L-LTF (the SIGNAL is noise), and noise after a real L-STF +
/// L-LTF + SIGNAL (the DATA is noise): the receiver decodes random SIGNAL fields and random
/// DATA fields. None may pass the FCS.
#[test]
fn real_preamble_then_noise() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x9e_a3b1e);
    let mut tx = Transmitter::new();
    let t0 = Instant::now();
    let mut total = RxStats::default();
    let noise = |rng: &mut ChaCha8Rng, n: usize, sd: f32| -> Vec<Complex32> {
        (0..n)
            .map(|_| {
                let (a, b): (f32, f32) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
                Complex32::new(a * sd, b * sd)
            })
            .collect()
    };
    for it in 0..3000 {
        let rate = Rate::ALL[it % 8];
        let len = if it % 10 == 0 {
            rng.random_range(1..=4095)
        } else {
            rng.random_range(1..=300)
        };
        let psdu: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let pkt = transmit(&mut tx, &psdu, rate, rng.random_range(1..=127));
        // Same power as the packet (0.0254 … per sample for the standard's scale).
        let sd = (semcom_phy::channel::burst_power(&pkt) as f32 / 2.0).sqrt();
        let keep = if it % 2 == 0 { 2 * 160 } else { HEADER_LEN };
        let lead = rng.random_range(0..200);
        let mut sig = noise(&mut rng, lead, sd * 0.01);
        sig.extend_from_slice(&pkt[..keep]);
        let n = pkt.len() - keep + 200;
        sig.extend(noise(&mut rng, n, sd));
        let (events, s) = feed_chunked(&sig, &mut rng, 1..=8192);
        assert_no_valid_frame(&events, &format!("preamble + noise #{it}"));
        total.samples += s.samples;
        total.detections += s.detections;
        total.sync_failures += s.sync_failures;
        total.header_errors += s.header_errors;
        total.frames += s.frames;
        total.fcs_failures += s.fcs_failures;
        total.truncated += s.truncated;
    }
    eprintln!(
        "preamble + noise: 3000 streams, {} | {:.2} s",
        summary(&total),
        t0.elapsed().as_secs_f64()
    );
}

/// Random 32-bit patterns reinterpreted as f32 (every exponent equally likely: NaN, ±inf,
/// ±huge, subnormals, ±0), random chunk sizes down to 1, thousands of streams.
#[test]
fn random_bit_patterns_as_samples() {
    let mut rng = ChaCha8Rng::seed_from_u64(0xbad_f00d);
    let t0 = Instant::now();
    let mut total = RxStats::default();
    let mut frames = 0usize;
    for it in 0..3000 {
        let n = match it % 3 {
            0 => rng.random_range(0..200),
            1 => rng.random_range(200..5_000),
            _ => rng.random_range(5_000..20_000),
        };
        let samples: Vec<Complex32> = (0..n)
            .map(|_| Complex32::new(f32::from_bits(rng.next_u32()), f32::from_bits(rng.next_u32())))
            .collect();
        let max_chunk = [1, 7, 64, 1000, 100_000][it % 5];
        let (events, s) = feed_chunked(&samples, &mut rng, 1..=max_chunk);
        assert_no_valid_frame(&events, &format!("bit patterns #{it}"));
        frames += events.iter().filter(|e| matches!(e, RxEvent::Frame(_))).count();
        total.samples += s.samples;
        total.non_finite += s.non_finite;
        total.detections += s.detections;
        total.header_errors += s.header_errors;
        total.frames += s.frames;
    }
    eprintln!(
        "bit patterns: 3000 streams, {} ({frames} frame events) in {:.2} s",
        summary(&total),
        t0.elapsed().as_secs_f64()
    );
}

/// Noise-like streams in which a random fraction of samples is replaced by extreme values, so
/// that the detector and header stages (not only the detector) meet them, and valid frames
/// scaled by extreme factors (products overflow f32).
#[test]
fn extreme_values_in_and_around_frames() {
    let mut rng = ChaCha8Rng::seed_from_u64(31337);
    let mut tx = Transmitter::new();
    let extremes = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        -f32::MAX,
        1e30,
        1e20,
        f32::MIN_POSITIVE,
        1e-40,
        -1e-45,
        0.0,
        -0.0,
    ];
    let t0 = Instant::now();
    for it in 0..400 {
        let rate = Rate::ALL[it % 8];
        let len = rng.random_range(4..300);
        let psdu = psdu_with_fcs(&mut rng, len);
        let mut sig = vec![ZERO; rng.random_range(0..300)];
        sig.extend(transmit(&mut tx, &psdu, rate, rng.random_range(1..=127)));
        sig.extend(std::iter::repeat_n(ZERO, 100));
        // Whole-stream scale (f32 products overflow above ~1e19).
        let scale = [1.0f32, 1e-42, 1e-20, 1e18, 1e19, 1e25, 1e37, f32::MAX][it % 8];
        for s in &mut sig {
            *s *= scale;
        }
        // Sprinkle extreme values.
        let p = [0.0, 1e-4, 1e-2, 0.2][(it / 8) % 4];
        for s in &mut sig {
            if rng.random_bool(p) {
                let v = extremes[rng.random_range(0..extremes.len())];
                if rng.random_bool(0.5) {
                    s.re = v;
                } else {
                    s.im = v;
                }
            }
        }
        let (events, _) = feed_chunked(&sig, &mut rng, 1..=4096);
        assert_valid_frames_were_sent(&events, &[&psdu], &format!("extreme #{it} scale {scale:e} p {p}"));
    }
    eprintln!("extreme values: 400 frames in {:.2} s", t0.elapsed().as_secs_f64());
}

/// A noiseless frame (a generated file) decodes at any sample scale from ×1e-12 to ×1e8 (beyond
/// that, fourth powers leave f32), with the same SNR estimate: the receiver measures no noise at all there, and an absolute floor on
/// the noise made the SNR depend on the scale and overflow f32 from about ×1e5 on (every frame
/// then failed its FCS).
#[test]
fn noiseless_frames_decode_at_any_scale() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5ca1e);
    let mut tx = Transmitter::new();
    let mcs = semcom_phy::semcom::Mcs::from_name("16qam-1/2").unwrap();
    for rate in [Rate::R6, Rate::R54] {
        let psdu = psdu_with_fcs(&mut rng, 200);
        let mut sig = vec![ZERO; 200];
        sig.extend(transmit(&mut tx, &psdu, rate, 33));
        sig.extend(std::iter::repeat_n(ZERO, 400));
        let payload = psdu_with_fcs(&mut rng, 300);
        let seg = semcom_phy::semcom::Segment {
            payload: &payload,
            mcs,
            class: 0,
        };
        tx.transmit_semcom(&[seg], 45, &mut sig).unwrap();
        sig.extend(std::iter::repeat_n(ZERO, 200));
        let mut snrs = Vec::new();
        for scale in [1e-12f32, 1e-6, 1.0, 1e4, 1e5, 1e8] {
            let scaled: Vec<Complex32> = sig.iter().map(|s| s * scale).collect();
            let (events, _) = feed_chunked(&scaled, &mut rng, 1..=4096);
            let legacy: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    RxEvent::Frame(f) if f.fcs_ok && f.psdu == psdu => Some(f.snr_db),
                    _ => None,
                })
                .collect();
            let semcom: Vec<_> = events
                .iter()
                .filter_map(|e| match e {
                    RxEvent::Semcom(f) if f.segments.iter().all(|g| g.fcs_ok && g.payload == payload) => Some(f.snr_db),
                    _ => None,
                })
                .collect();
            assert_eq!((legacy.len(), semcom.len()), (1, 1), "{rate} scale {scale:e}");
            snrs.push((scale, legacy[0], semcom[0]));
        }
        for &(scale, l, m) in &snrs {
            assert!(
                (l - snrs[2].1).abs() < 0.5 && (m - snrs[2].2).abs() < 0.5 && l > 60.0 && m > 60.0,
                "{rate}: SNR estimates depend on the scale: {snrs:?} (at {scale:e})"
            );
        }
    }
}

/// Every rate, cut at many points (inside the L-STF, L-LTF, SIGNAL and DATA) and flushed: no
/// panic, no FCS-valid frame while samples that carry PSDU bits are missing, and once SIGNAL is
/// complete either a `Truncated` event with the right rate and length or (cut only in the last
/// few samples, which the receiver does not read) the frame itself.
#[test]
fn truncated_frames_every_rate() {
    let mut rng = ChaCha8Rng::seed_from_u64(4242);
    let mut tx = Transmitter::new();
    let t0 = Instant::now();
    let mut cases = 0;
    let mut unreported = Vec::new();
    let (mut n_truncated, mut n_decoded) = (0, 0);
    for rate in Rate::ALL {
        for len in [4usize, 30, 200, 1500] {
            let psdu = psdu_with_fcs(&mut rng, len);
            let lead = 100;
            let mut sig = vec![ZERO; lead];
            sig.extend(transmit(&mut tx, &psdu, rate, 0x5d));
            let pkt_len = sig.len() - lead;
            // The DATA symbol that holds the last PSDU bit.
            let last_sym = (16 + 8 * len - 1) / rate.n_dbps();
            let carries_all = HEADER_LEN + N_SYM * last_sym + N_CP;
            let mut cuts: Vec<usize> = (0..pkt_len).step_by(97).collect();
            cuts.extend([
                1,
                15,
                16,
                160,
                161,
                320,
                321,
                399,
                400,
                401,
                480,
                pkt_len - 9,
                pkt_len - 4,
                pkt_len - 1,
            ]);
            for cut in cuts {
                cases += 1;
                let stream = &sig[..lead + cut];
                let (events, _) = feed_chunked(stream, &mut rng, 1..=3000);
                if cut < carries_all {
                    assert_no_valid_frame(&events, &format!("{rate} len {len} cut at {cut}/{pkt_len}"));
                }
                assert_valid_frames_were_sent(&events, &[&psdu], &format!("{rate} len {len} cut {cut}"));
                // SIGNAL complete (plus the receiver's FFT backoff margin) but not the frame.
                if cut >= HEADER_LEN + 8 {
                    let truncated = events
                        .iter()
                        .any(|e| matches!(e, RxEvent::Truncated { rate: r, length: l, .. } if *r == rate && *l == len));
                    let decoded = events.iter().any(|e| matches!(e, RxEvent::Frame(f) if f.fcs_ok));
                    n_truncated += usize::from(truncated);
                    n_decoded += usize::from(decoded);
                    if !truncated && !decoded {
                        unreported.push(format!("{rate} len {len} cut {cut}/{pkt_len}: {events:?}"));
                    }
                }
            }
        }
    }
    eprintln!(
        "truncated frames: {cases} cuts ({n_truncated} reported truncated, {n_decoded} decoded from a cut in the last samples) in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        unreported.is_empty(),
        "cut frames neither reported nor decoded: {unreported:#?}"
    );
}

/// Every rate: a clean frame with no samples after it (what `Transmitter::transmit` returns),
/// followed by `flush`. Returns, per rate, whether it was decoded and whether it was reported
/// truncated.
fn frames_at_stream_end() -> Vec<(Rate, bool, bool)> {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut tx = Transmitter::new();
    Rate::ALL
        .into_iter()
        .map(|rate| {
            let psdu = psdu_with_fcs(&mut rng, 100);
            let mut sig = vec![ZERO; 50];
            sig.extend(transmit(&mut tx, &psdu, rate, 0x3a));
            let events = Receiver::default().decode_all(&sig);
            assert_valid_frames_were_sent(&events, &[&psdu], "frame at stream end");
            let got = events
                .iter()
                .any(|e| matches!(e, RxEvent::Frame(f) if f.fcs_ok && f.psdu == psdu));
            let truncated = events.iter().any(|e| matches!(e, RxEvent::Truncated { .. }));
            eprintln!("{rate}: frame ending at stream end: decoded {got}, reported truncated {truncated}");
            (rate, got, truncated)
        })
        .collect()
}

/// A complete frame with nothing after it, then `flush`: decoded. (Until d98299f the receiver
/// waited for 8 samples past the frame and reported such a frame as `Truncated`; this test found
/// it independently and now guards the fix.)
#[test]
fn frame_ending_exactly_at_stream_end_is_decoded() {
    for (rate, got, truncated) in frames_at_stream_end() {
        assert!(got && !truncated, "{rate}: complete frame at stream end not decoded");
    }
}

/// Valid frames with bursts of NaN (or ±inf) over random spans: the receiver zeroes them and
/// counts them; any FCS-valid frame must be the one that was sent.
#[test]
fn frames_with_nan_bursts() {
    let mut rng = ChaCha8Rng::seed_from_u64(777);
    let mut tx = Transmitter::new();
    let t0 = Instant::now();
    let (mut decoded, mut total) = (0, 0);
    for it in 0..500 {
        let rate = Rate::ALL[it % 8];
        let len = rng.random_range(4..400);
        let psdu = psdu_with_fcs(&mut rng, len);
        let mut sig = vec![ZERO; rng.random_range(0..200)];
        let start = sig.len();
        sig.extend(transmit(&mut tx, &psdu, rate, rng.random_range(1..=127)));
        sig.extend(std::iter::repeat_n(ZERO, 100));
        let mut n_bad = 0u64;
        for _ in 0..rng.random_range(1..4) {
            let at = start + rng.random_range(0..sig.len() - start);
            let max = [1usize, 16, 100, 1000][rng.random_range(0..4)];
            let n = rng.random_range(1..=max);
            let v = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][rng.random_range(0..3)];
            for s in sig.iter_mut().skip(at).take(n) {
                if s.re.is_finite() && s.im.is_finite() {
                    n_bad += 1;
                }
                *s = if rng.random_bool(0.5) {
                    Complex32::new(v, s.im)
                } else {
                    Complex32::new(v, v)
                };
            }
        }
        let (events, stats) = feed_chunked(&sig, &mut rng, 1..=5000);
        assert_eq!(stats.non_finite, n_bad, "#{it}: non-finite samples counted");
        assert_valid_frames_were_sent(&events, &[&psdu], &format!("NaN burst #{it}"));
        total += 1;
        if events.iter().any(|e| matches!(e, RxEvent::Frame(f) if f.fcs_ok)) {
            decoded += 1;
        }
    }
    eprintln!(
        "NaN bursts: {total} frames, {decoded} still decoded, {:.2} s",
        t0.elapsed().as_secs_f64()
    );
}

/// Runs one long synthetic stream in chunks and reports events, stats and timing. Also returns
/// the throughput in MS/s.
fn run_stream(what: &str, samples: &[Complex32], chunk: usize) -> (Vec<RxEvent>, RxStats, f64) {
    let t = Instant::now();
    let mut rx = Receiver::default();
    let mut events = Vec::new();
    for c in samples.chunks(chunk) {
        rx.push(c);
        drain(&mut rx, &mut events);
    }
    rx.flush();
    drain(&mut rx, &mut events);
    let el = t.elapsed().as_secs_f64();
    let s = rx.stats();
    let msps = samples.len() as f64 / el / 1e6;
    eprintln!(
        "{what}: {} | {} events | {el:.3} s ({msps:.2} MS/s)",
        summary(&s),
        events.len()
    );
    (events, s, msps)
}

/// Length of the synthetic streams below: 10 ms of air time at 20 MS/s.
const LONG: usize = 200_000;

fn dc_streams() -> Vec<(String, Vec<Complex32>)> {
    [
        Complex32::new(1.0, 0.0),
        Complex32::new(-0.3, 0.7),
        Complex32::new(1e-30, 0.0),
        Complex32::new(3e18, 3e18),
    ]
    .into_iter()
    .map(|level| (format!("DC {level}"), vec![level; LONG]))
    .collect()
}

fn tone_streams() -> Vec<(String, Vec<Complex32>)> {
    // Frequencies in cycles per sample: on a subcarrier, periodic with period 16 (subcarrier 4),
    // at a data subcarrier, between subcarriers, at a pilot, near Nyquist.
    [1.0 / 64.0, 4.0 / 64.0, 7.0 / 64.0, 0.123_456, -21.0 / 64.0, 0.49]
        .into_iter()
        .map(|f: f64| {
            let sig = (0..LONG)
                .map(|n| {
                    let ph = 2.0 * std::f64::consts::PI * ((f * n as f64) % 1.0);
                    Complex32::new(ph.cos() as f32, ph.sin() as f32)
                })
                .collect();
            (format!("tone {f:.4} cycles/sample"), sig)
        })
        .collect()
}

/// Period 16 forever: the real L-STF repeated, a random 16-sample pattern, and the L-STF with a
/// frequency offset and a little noise, and with 5 dB SNR.
fn period16_streams() -> Vec<(String, Vec<Complex32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let mut tx = Transmitter::new();
    let frame = transmit(&mut tx, &psdu_with_fcs(&mut rng, 10), Rate::R6, 1);
    let stf: Vec<Complex32> = frame[16..32].to_vec(); // one L-STF period, away from the window
    let random: Vec<Complex32> = (0..16)
        .map(|_| Complex32::new(rng.random_range(-1.0..1.0), rng.random_range(-1.0..1.0)))
        .collect();
    let cases: [(&str, &[Complex32], f64, f32); 4] = [
        ("L-STF repeated", &stf, 0.0, 0.0),
        ("random period 16", &random, 0.0, 0.0),
        ("L-STF + 100 kHz CFO + noise 20 dB", &stf, 100e3 / 20e6, 0.1),
        ("L-STF + noise 5 dB", &stf, 0.0, 0.56),
    ];
    cases
        .into_iter()
        .map(|(what, period, cfo, noise)| {
            let p = period.iter().map(|s| s.norm_sqr()).sum::<f32>() / 16.0;
            let sd = noise * (p / 2.0).sqrt();
            let sig = (0..LONG)
                .map(|n| {
                    let ph = 2.0 * std::f64::consts::PI * ((cfo * n as f64) % 1.0);
                    let (a, b): (f32, f32) = (StandardNormal.sample(&mut rng), StandardNormal.sample(&mut rng));
                    period[n % 16] * Complex32::new(ph.cos() as f32, ph.sin() as f32) + Complex32::new(a * sd, b * sd)
                })
                .collect();
            (what.to_string(), sig)
        })
        .collect()
}

/// Whole preambles (L-STF, L-LTF, SIGNAL) back to back without DATA, each announcing 4095
/// octets at 6 Mbit/s.
fn preamble_stream() -> Vec<Complex32> {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tx = Transmitter::new();
    let one = transmit(&mut tx, &psdu_with_fcs(&mut rng, 4095), Rate::R6, 1);
    let mut sig = Vec::with_capacity(LONG + HEADER_LEN);
    while sig.len() < LONG {
        sig.extend_from_slice(&one[..HEADER_LEN]);
    }
    sig
}

/// Runs each stream: no panic, no FCS-valid frame; returns the slowest throughput.
fn check_streams(streams: &[(String, Vec<Complex32>)]) -> (String, f64) {
    let mut slowest = (String::new(), f64::INFINITY);
    for (what, sig) in streams {
        let (events, _, msps) = run_stream(what, sig, 65_536);
        assert_no_valid_frame(&events, what);
        if msps < slowest.1 {
            slowest = (what.clone(), msps);
        }
    }
    slowest
}

#[test]
fn all_zero_input() {
    let sig = vec![ZERO; 10 * LONG];
    let (events, s, _) = run_stream("all zero", &sig, 65_536);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(s.detections, 0);
    let sig = vec![Complex32::new(-0.0, -0.0); 10_000];
    assert!(Receiver::default().decode_all(&sig).is_empty());
}

#[test]
fn dc_input() {
    check_streams(&dc_streams());
}

#[test]
fn pure_tone() {
    check_streams(&tone_streams());
}

/// The detector fires on all of these; the receiver must refuse them and keep going.
#[test]
fn period_16_forever() {
    check_streams(&period16_streams());
}

/// Every header is accepted, its DATA is garbage, the search resumes: no valid frame.
#[test]
fn preambles_forever() {
    let sig = preamble_stream();
    let (events, s, _) = run_stream("preambles forever", &sig, 65_536);
    assert_no_valid_frame(&events, "preambles");
    assert!(s.detections > 0);
}

/// DC, pure tones and any period-16 signal have |ρ| = 1 at lag 16 forever. The detector fires
/// once, the L-LTF check refuses it, and the detector stays disarmed until ρ dips: one detection
/// per stream, not one every 16 samples (the work bound, machine-independent; the time is
/// printed). Before the hold-off: detections = samples / 16, ~1 MS/s.
#[test]
fn continuous_signals_cost_one_detection() {
    let mut all = dc_streams();
    all.extend(tone_streams());
    all.extend(period16_streams());
    for (what, sig) in &all {
        let (events, s, _) = run_stream(what, sig, 65_536);
        assert_no_valid_frame(&events, what);
        assert!(s.detections <= 2, "{what}: {} detections", s.detections);
    }
}

/// Preambles and SIGNAL fields (each announcing 4095 octets at 6 Mbit/s) with no DATA: the
/// first DATA symbols' pilots are checked before a frame is buffered, so each header costs four
/// symbols, not a 110 000-sample decode (before: ~275× the work per input sample).
#[test]
fn preambles_without_data_are_not_decoded() {
    let sig = preamble_stream();
    let (events, s, _) = run_stream("preambles without data", &sig, 65_536);
    assert_no_valid_frame(&events, "preambles");
    assert!(s.rejected > 0, "{}", summary(&s));
    assert_eq!(s.frames, 0, "full decodes: {}", summary(&s));
}

/// All 2^24 SIGNAL bit patterns (the complement of the `signal_parse` fuzz target, which also
/// feeds bytes other than 0/1): `from_bits` agrees with a reference model of §17.3.4 and every
/// accepted field round-trips through `to_bits`.
#[test]
fn signal_field_every_bit_pattern() {
    use semcom_phy::signal::SignalField;
    use semcom_phy::SignalError;
    let t0 = Instant::now();
    let mut accepted = 0u32;
    for v in 0u32..1 << 24 {
        let bits: [u8; 24] = std::array::from_fn(|i| ((v >> i) & 1) as u8);
        let parity = bits[..18].iter().fold(0, |p, &b| p ^ b);
        let r = (0..4).fold(0u8, |acc, i| (acc << 1) | bits[i]);
        let length = (0..12).fold(0usize, |acc, i| acc | (usize::from(bits[5 + i]) << i));
        let expect = if parity != 0 {
            Err(SignalError::Parity)
        } else if bits[18..].iter().any(|&b| b != 0) {
            Err(SignalError::Tail)
        } else {
            match Rate::from_signal_bits(r) {
                None => Err(SignalError::Rate(r)),
                Some(_) if length == 0 => Err(SignalError::ZeroLength),
                Some(rate) => Ok((rate, length)),
            }
        };
        let got = SignalField::from_bits(&bits);
        assert_eq!(got.map(|s| (s.rate, s.length)), expect, "bits {v:#08x}");
        if let Ok(s) = got {
            accepted += 1;
            let mut want = bits;
            want[17] ^= want[4];
            want[4] = 0;
            assert_eq!(s.to_bits(), want, "bits {v:#08x}");
        }
    }
    // 8 rates × 4095 lengths × reserved bit 0/1.
    assert_eq!(accepted, 8 * 4095 * 2);
    eprintln!(
        "SIGNAL: 2^24 patterns, {accepted} accepted, {:.2} s",
        t0.elapsed().as_secs_f64()
    );
}

/// Feeds `samples` in two pushes split at `split` (or one push), flushes; events and counters.
fn two_pushes(cfg: &RxConfig, samples: &[Complex32], split: Option<usize>) -> (String, RxStats) {
    let mut rx = Receiver::new(cfg.clone());
    let mut events = Vec::new();
    match split {
        Some(k) => {
            rx.push(&samples[..k]);
            drain(&mut rx, &mut events);
            rx.push(&samples[k..]);
        }
        None => rx.push(samples),
    }
    rx.flush();
    drain(&mut rx, &mut events);
    (format!("{events:?}"), rx.stats())
}

/// Silence, then a tone (the detector fires and the L-LTF search refuses it every 16 samples),
/// then silence.
fn tone_after_silence() -> Vec<Complex32> {
    let mut sig = vec![ZERO; 300];
    sig.extend((0..3000).map(|n| Complex32::from_polar(1.0, 0.3 * n as f32)));
    sig.extend(std::iter::repeat_n(ZERO, 300));
    sig
}

/// The receiver's promise that chunking changes nothing, where the fuzz targets broke it: a
/// push boundary inside a detector run (the run's first samples must stay buffered until it
/// completes; fuzz/regressions/{rx_stream,rx_frames}/ hold the minimised inputs).
#[test]
fn chunk_boundary_inside_a_detector_run_changes_nothing() {
    let sig = tone_after_silence();
    for cfg in [
        RxConfig::default(),
        RxConfig {
            detect_run: 100,
            ..RxConfig::default()
        },
    ] {
        let whole = two_pushes(&cfg, &sig, None);
        let bad: Vec<String> = (300..700)
            .filter_map(|k| {
                let split = two_pushes(&cfg, &sig, Some(k));
                (split != whole).then(|| format!("split at {k}: {:?} vs whole {:?}", split.1, whole.1))
            })
            .collect();
        assert!(
            bad.is_empty(),
            "detect_run {}: {} split points differ, e.g. {:#?}",
            cfg.detect_run,
            bad.len(),
            &bad[..bad.len().min(3)]
        );
    }
}

/// A detector run longer than the L-LTF search offset, fed one sample at a time: once panicked
/// reading before the buffer (the run's start had been dropped).
#[test]
fn long_detect_run_with_small_chunks_does_not_panic() {
    let sig = tone_after_silence();
    for run in [24, 100, 150, 300, 1000] {
        let cfg = RxConfig {
            detect_run: run,
            ..RxConfig::default()
        };
        let mut rx = Receiver::new(cfg);
        for c in sig.chunks(1) {
            rx.push(c);
            while rx.poll_event().is_some() {}
        }
        rx.flush();
    }
}
