//! The sensor codec on the real datasets (`../shared/datasets`, skipped with a message when
//! absent) with the shipped model `models/sensor-har.safetensors`: the acceptance figures of
//! issue 6, measured on each dataset's test split.

use semcom_codec::sensor::data::{load_har, load_ts, Labelled};
use semcom_codec::sensor::{self, gorilla, nrmse, Decoded, SensorModel};
use std::path::{Path, PathBuf};

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/datasets")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipped: {} is absent", p.display());
        None
    }
}

fn model() -> SensorModel {
    SensorModel::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/sensor-har.safetensors")).unwrap()
}

/// Lossless bytes and Gorilla bytes over `set`, checking every window comes back bit-exactly.
fn lossless_vs_gorilla(set: &Labelled) -> (usize, usize) {
    let (mut ours, mut base) = (0, 0);
    for w in &set.windows {
        let p = sensor::encode_lossless(w);
        let Ok(Decoded::Window(back)) = sensor::decode(&p, None, 1 << 22) else {
            panic!("lossless decode")
        };
        assert!(back
            .samples()
            .iter()
            .zip(w.samples())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        ours += p.len();
        base += gorilla::encode(w).len();
    }
    (ours, base)
}

#[test]
fn lossless_beats_gorilla_by_half_again_on_har_and_plaid() {
    if let Some(dir) = shared("uci-har") {
        let mut t = load_har(&dir, "test").unwrap();
        t.windows.truncate(300);
        let (ours, base) = lossless_vs_gorilla(&t);
        assert!(base as f64 >= 1.5 * ours as f64, "UCI HAR: {ours} vs Gorilla {base}");
    }
    if let Some(f) = shared("ucr/PLAID/PLAID_TEST.ts") {
        let t = load_ts(&f).unwrap();
        assert_eq!(t.windows.len(), 537);
        let (ours, base) = lossless_vs_gorilla(&t);
        assert!(base as f64 >= 1.5 * ours as f64, "PLAID: {ours} vs Gorilla {base}");
    }
}

#[test]
fn events_and_reconstructions_meet_their_targets_on_har_test() {
    let Some(dir) = shared("uci-har") else { return };
    let t = load_har(&dir, "test").unwrap();
    assert_eq!(
        (t.windows.len(), t.windows[0].channels(), t.windows[0].len()),
        (950, 9, 128)
    );
    let m = model();
    let (mut ok, mut ok_rec, mut bytes) = (0usize, 0usize, 0usize);
    for (w, &l) in t.windows.iter().zip(&t.labels) {
        let p = sensor::encode_event(&m, w).unwrap();
        assert_eq!(p.len(), 1);
        let Ok(Decoded::Event(e)) = sensor::decode(&p, Some(&m), 1 << 20) else {
            panic!()
        };
        ok += usize::from(e.class == l);
        let p = sensor::encode_reconstruct(&m, w, &[0.05]).unwrap();
        bytes += p.len();
        let Ok(Decoded::Window(r)) = sensor::decode(&p, Some(&m), 1 << 20) else {
            panic!()
        };
        for e in nrmse(w, &r, &m.scale) {
            assert!(e <= 0.05, "window NRMSE {e}");
        }
        ok_rec += usize::from(m.assess(&r).unwrap().class == l);
    }
    let n = t.windows.len() as f64;
    assert!(ok as f64 / n >= 0.90, "event accuracy {}", ok as f64 / n);
    assert!(
        bytes as f64 / n <= 4608.0 / 20.0,
        "{} bytes per window",
        bytes as f64 / n
    );
    assert!(
        (ok as f64 - ok_rec as f64).abs() / n <= 0.02,
        "{ok} vs {ok_rec} on reconstructions"
    );
}

#[test]
fn wrong_shapes_are_refused_by_name() {
    let Some(f) = shared("ucr/BasicMotions/BasicMotions_TEST.ts") else {
        return;
    };
    let t = load_ts(&f).unwrap();
    let e = sensor::encode_event(&model(), &t.windows[0]).unwrap_err().to_string();
    assert!(
        e.contains("6 channel(s) × 100 samples but the sensor model expects 9 × 128"),
        "{e}"
    );
    // Lossless needs no model: any shape.
    assert!(!sensor::encode_lossless(&t.windows[0]).is_empty());
}
