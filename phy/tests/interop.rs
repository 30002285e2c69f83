//! Interoperability: frames written by an independent 802.11a implementation
//! (liquid-wlan's `wlanframegen`, see `testvectors/interop/liquid-wlan/README.md`) must decode
//! with our receiver at every rate, clean and through a CFO + AWGN channel. A third test
//! compares liquid-wlan's waveform with our transmitter's, sample by sample.

use semcom_phy::channel::{burst_power, Awgn, Cfo, Chain, Impairment};
use semcom_phy::{crc, Complex32, Rate, Receiver, RxConfig, RxEvent, RxFrame, Transmitter, TxParams};
use std::path::{Path, PathBuf};

/// liquid-wlan always scrambles with this initial state (x1..x7 = 1011101, as in Annex G).
const LIQUID_SCRAMBLER_SEED: u8 = 0x5d;

/// One expected frame of a capture, from its `.psdu.txt`.
#[derive(Debug)]
struct Expected {
    rate: Rate,
    fcs_valid: bool,
    start: usize,
    psdu: Vec<u8>,
}

/// A capture and its expected frames.
#[derive(Debug)]
struct Capture {
    name: String,
    samples: Vec<Complex32>,
    frames: Vec<Expected>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testvectors/interop/liquid-wlan")
}

fn read_cf32(path: &Path) -> Vec<Complex32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() % 8, 0, "{}: not whole cf32 samples", path.display());
    bytes
        .chunks_exact(8)
        .map(|c| {
            Complex32::new(
                f32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                f32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect()
}

fn parse_hex(s: &str) -> Vec<u8> {
    assert_eq!(s.len() % 2, 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every capture listed by a `.psdu.txt` in the folder, sorted by name; `None` when the
/// folder is missing.
fn captures() -> Option<Vec<Capture>> {
    let d = dir();
    let mut lists: Vec<PathBuf> = std::fs::read_dir(&d)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".psdu.txt"))
        .collect();
    lists.sort();
    let mut out = Vec::new();
    for list in lists {
        let fname = list.file_name().unwrap().to_string_lossy().into_owned();
        let name = fname.trim_end_matches(".psdu.txt").to_string();
        let text = std::fs::read_to_string(&list).unwrap();
        let frames: Vec<Expected> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f.len(), 5, "{fname}: bad line {l:?}");
                let rate = Rate::from_mbps(f[0].parse().unwrap()).unwrap();
                let fcs_valid = match f[1] {
                    "valid" => true,
                    "none" => false,
                    x => panic!("{fname}: bad fcs column {x:?}"),
                };
                let psdu = parse_hex(f[4]);
                assert_eq!(psdu.len(), f[3].parse::<usize>().unwrap(), "{fname}: length column");
                // The list's own claim must agree with the octets.
                assert_eq!(
                    crc::fcs_ok(&psdu),
                    fcs_valid,
                    "{fname}: fcs column disagrees with the PSDU"
                );
                Expected {
                    rate,
                    fcs_valid,
                    start: f[2].parse().unwrap(),
                    psdu,
                }
            })
            .collect();
        let samples = read_cf32(&d.join(format!("{name}.cf32")));
        out.push(Capture { name, samples, frames });
    }
    Some(out)
}

fn load_or_skip() -> Option<Vec<Capture>> {
    match captures() {
        Some(c) if !c.is_empty() => Some(c),
        _ => {
            println!("SKIPPED: no liquid-wlan captures in {}", dir().display());
            None
        }
    }
}

fn describe(e: &RxEvent) -> String {
    match e {
        RxEvent::Frame(f) => format!(
            "Frame{{offset {}, {} Mbit/s, {} octets, fcs_ok {}, snr {:.1} dB, cfo {:.0} Hz}}",
            f.offset,
            f.rate.mbps(),
            f.psdu.len(),
            f.fcs_ok,
            f.snr_db,
            f.cfo_hz
        ),
        other => format!("{other:?}"),
    }
}

/// Checks the decoded events against the expected frames; returns the failures as text.
fn check(label: &str, cap: &Capture, events: &[RxEvent]) -> Vec<String> {
    let mut fails = Vec::new();
    let frames: Vec<&RxFrame> = events
        .iter()
        .filter_map(|e| match e {
            RxEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect();
    let others: Vec<String> = events
        .iter()
        .filter(|e| !matches!(e, RxEvent::Frame(_)))
        .map(describe)
        .collect();
    if !others.is_empty() {
        fails.push(format!("{label} {}: unexpected non-frame events {others:?}", cap.name));
    }
    if frames.len() != cap.frames.len() {
        fails.push(format!(
            "{label} {}: {} frames decoded, {} expected; events: {:?}",
            cap.name,
            frames.len(),
            cap.frames.len(),
            events.iter().map(describe).collect::<Vec<_>>()
        ));
    }
    for (i, exp) in cap.frames.iter().enumerate() {
        let Some(got) = frames.get(i) else { continue };
        let what = format!(
            "{label} {} frame {} ({} Mbit/s, {} octets, starts at {})",
            cap.name,
            i + 1,
            exp.rate.mbps(),
            exp.psdu.len(),
            exp.start
        );
        if got.rate != exp.rate {
            fails.push(format!("{what}: rate {} Mbit/s decoded", got.rate.mbps()));
        }
        if got.psdu != exp.psdu {
            let diff = got.psdu.iter().zip(&exp.psdu).filter(|(a, b)| a != b).count();
            fails.push(format!(
                "{what}: PSDU differs ({} octets decoded, {diff} octets differ in the common part)",
                got.psdu.len()
            ));
        }
        if got.fcs_ok != exp.fcs_valid {
            fails.push(format!("{what}: fcs_ok {} but expected {}", got.fcs_ok, exp.fcs_valid));
        }
        if got.offset.abs_diff(exp.start as u64) > 16 {
            fails.push(format!("{what}: offset {} far from the frame start", got.offset));
        }
    }
    fails
}

#[test]
fn liquid_wlan_captures_decode_clean() {
    let Some(caps) = load_or_skip() else { return };
    let mut rates = Vec::new();
    let mut fails = Vec::new();
    for cap in &caps {
        let events = Receiver::new(RxConfig::default()).decode_all(&cap.samples);
        for e in &events {
            println!("clean {}: {}", cap.name, describe(e));
        }
        fails.extend(check("clean", cap, &events));
        rates.extend(cap.frames.iter().map(|f| f.rate.mbps()));
    }
    // FAILING ASSERTION (interop, clean captures): see the messages for capture/rate/frame.
    assert!(fails.is_empty(), "liquid-wlan interop failures:\n{}", fails.join("\n"));
    rates.sort_unstable();
    rates.dedup();
    assert_eq!(
        rates,
        [6, 9, 12, 18, 24, 36, 48, 54],
        "captures should cover all eight rates"
    );
}

/// CFO and AWGN (20 dB, per the crate's SNR definition over the frames' own samples).
fn impaired(cap: &Capture, cfo_hz: f64, snr_db: f64, seed: u64) -> Vec<Complex32> {
    let mut burst = Vec::new();
    for f in &cap.frames {
        let n = Transmitter::packet_len(f.rate, f.psdu.len());
        burst.extend_from_slice(&cap.samples[f.start..f.start + n]);
    }
    let mut chain = Chain::new();
    chain
        .push(Cfo::new(cfo_hz, 20e6, 0.3).unwrap())
        .push(Awgn::for_snr(snr_db, burst_power(&burst), seed).unwrap());
    let mut out = Vec::with_capacity(cap.samples.len());
    chain.process(&cap.samples, &mut out);
    out
}

#[test]
fn liquid_wlan_captures_decode_with_cfo_and_noise() {
    let Some(caps) = load_or_skip() else { return };
    let mut fails = Vec::new();
    for (k, cap) in caps.iter().enumerate() {
        for (cfo_hz, seed) in [(-80e3, 1000 + k as u64), (55e3, 2000 + k as u64)] {
            let input = impaired(cap, cfo_hz, 20.0, seed);
            let events = Receiver::new(RxConfig::default()).decode_all(&input);
            let label = format!("cfo {cfo_hz:+.0} Hz, 20 dB, seed {seed}:");
            for e in &events {
                println!("{label} {}: {}", cap.name, describe(e));
            }
            fails.extend(check(&label, cap, &events));
        }
    }
    // FAILING ASSERTION (interop through CFO + AWGN): see the messages for capture/rate/frame.
    assert!(
        fails.is_empty(),
        "liquid-wlan interop failures with impairments:\n{}",
        fails.join("\n")
    );
}

/// Least-squares complex gain g with a ≈ g·b, and the residual power relative to |a|², dB.
fn fit(a: &[Complex32], b: &[Complex32]) -> (Complex32, f64) {
    let num: num_complex::Complex<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| {
            num_complex::Complex::new(f64::from(x.re), f64::from(x.im))
                * num_complex::Complex::new(f64::from(y.re), f64::from(-y.im))
        })
        .sum();
    let den: f64 = b.iter().map(|y| f64::from(y.norm_sqr())).sum();
    let g = num / den;
    let g32 = Complex32::new(g.re as f32, g.im as f32);
    let res: f64 = a.iter().zip(b).map(|(x, y)| f64::from((x - g32 * y).norm_sqr())).sum();
    let pa: f64 = a.iter().map(|x| f64::from(x.norm_sqr())).sum();
    (g32, 10.0 * (res / pa).log10())
}

/// liquid-wlan's waveform against ours for the same PSDU and scrambler state: same timing,
/// SIGNAL and DATA equal to float precision after one real gain (liquid-wlan: IFFT/8, ours:
/// IFFT/64), preamble the same shape at a higher gain (liquid-wlan's tabulated L-STF/L-LTF
/// have unit power instead of 52/64). Prints the measurements.
#[test]
fn liquid_wlan_waveform_matches_our_transmitter() {
    let Some(caps) = load_or_skip() else { return };
    let mut tx = Transmitter::new();
    let mut fails = Vec::new();
    for cap in &caps {
        for (i, f) in cap.frames.iter().enumerate() {
            let mut ours = Vec::new();
            let n = tx
                .transmit(
                    &f.psdu,
                    &TxParams {
                        rate: f.rate,
                        scrambler_seed: LIQUID_SCRAMBLER_SEED,
                    },
                    &mut ours,
                )
                .unwrap();
            let n_sym = f.rate.n_data_symbols(f.psdu.len());
            assert_eq!(n, 400 + 80 * n_sym + 1);
            // liquid-wlan writes 5 + n_sym + 1 blocks of 80 (the last one a ramp-down block).
            let theirs = &cap.samples[f.start..f.start + 80 * (6 + n_sym)];
            // Preamble (L-STF + L-LTF) without the first sample of each and the SIGNAL
            // boundary, which mix segments.
            let (g_pre, r_pre) = fit(&theirs[1..320], &ours[1..320]);
            // SIGNAL + DATA, without the boundary sample shared with the L-LTF.
            let (g_dat, r_dat) = fit(&theirs[321..n - 1], &ours[321..n - 1]);
            // Everything liquid-wlan sends after our last sample must be zero.
            let tail_max = theirs[n..].iter().map(|x| x.norm()).fold(0.0f32, f32::max);
            let last = theirs[n - 1] / ours[n - 1];
            let first = theirs[0] / ours[0];
            let boundary = theirs[320] / ours[320];
            let p_pre = burst_power(&theirs[..320]);
            let p_dat = burst_power(&theirs[320..n]);
            println!(
                "{} frame {} ({} Mbit/s, {} octets): preamble gain {:.4}{:+.4}j resid {:.1} dB | \
                 SIGNAL+DATA gain {:.5}{:+.5}j resid {:.1} dB | first/last/boundary sample ratio {:.3}/{:.3}/{:.3} | \
                 power preamble {:.4} data {:.4} | {} extra samples, max |x| {:.1e}",
                cap.name,
                i + 1,
                f.rate.mbps(),
                f.psdu.len(),
                g_pre.re,
                g_pre.im,
                r_pre,
                g_dat.re,
                g_dat.im,
                r_dat,
                first.norm(),
                last.norm(),
                boundary.norm(),
                p_pre,
                p_dat,
                theirs.len() - n,
                tail_max
            );
            let what = format!("{} frame {} ({} Mbit/s)", cap.name, i + 1, f.rate.mbps());
            if (g_dat - Complex32::new(8.0, 0.0)).norm() > 1e-3 || r_dat > -80.0 {
                fails.push(format!("{what}: SIGNAL+DATA gain {g_dat} residual {r_dat:.1} dB"));
            }
            if g_pre.im.abs() > 1e-3 || !(8.5..9.2).contains(&g_pre.re) || r_pre > -60.0 {
                fails.push(format!("{what}: preamble gain {g_pre} residual {r_pre:.1} dB"));
            }
            if tail_max != 0.0 {
                fails.push(format!("{what}: non-zero samples after the last DATA sample"));
            }
        }
    }
    assert!(
        fails.is_empty(),
        "waveform differences beyond the documented ones:\n{}",
        fails.join("\n")
    );
}
