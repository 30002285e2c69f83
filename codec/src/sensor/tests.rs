//! Tests of the sensor codec with a small model trained on synthetic data (seeded).

use super::data::Labelled;
use super::train::{train, SensorTrainOptions};
use super::*;
use rand::{Rng, SeedableRng};

/// Three classes of 3-channel windows: still (noise), slow sine, fast sine.
fn synthetic(n: usize, seed: u64) -> Labelled {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let len = 64;
    let mut out = Labelled {
        classes: vec!["still".into(), "slow".into(), "fast".into()],
        ..Default::default()
    };
    for i in 0..n {
        let class = (i % 3) as u8;
        let f = [0.0, 2.0, 9.0][class as usize];
        let ph: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        let samples: Vec<f32> = (0..3 * len)
            .map(|k| {
                let t = (k % len) as f32 / len as f32;
                let amp = if class == 0 { 0.0 } else { 1.0 + (k / len) as f32 * 0.3 };
                amp * (std::f32::consts::TAU * f * t + ph).sin() + rng.random_range(-0.05..0.05)
            })
            .collect();
        out.windows.push(Window::new(3, len, samples).unwrap());
        out.labels.push(class);
    }
    out
}

fn small_model() -> SensorModel {
    let opts = SensorTrainOptions {
        epochs: 80,
        hidden: [16, 8],
        ..Default::default()
    };
    let names = vec!["x".into(), "y".into(), "z".into()];
    train(&synthetic(120, 1), names, &opts, &mut |_, _| {}).unwrap().0
}

#[test]
fn every_mode_round_trips_and_meets_its_promise() {
    let model = small_model();
    let test = synthetic(30, 2);
    let mut correct = 0;
    for (w, &l) in test.windows.iter().zip(&test.labels) {
        // Event: one byte, decodes to the same class the encoder saw.
        let p = encode_event(&model, w).unwrap();
        assert_eq!(p.len(), 1);
        let Decoded::Event(e) = decode(&p, Some(&model), 1 << 20).unwrap() else {
            panic!()
        };
        assert_eq!(e.class, model.assess(w).unwrap().class);
        correct += usize::from(e.class == l);
        // Reconstruction: each channel within its target.
        let p = encode_reconstruct(&model, w, &[0.05]).unwrap();
        let Decoded::Window(r) = decode(&p, Some(&model), 1 << 20).unwrap() else {
            panic!()
        };
        for e in nrmse(w, &r, &model.scale) {
            assert!(e <= 0.05, "NRMSE {e}");
        }
        // Lossless: bit-exact.
        let p = encode_lossless(w);
        assert_eq!(decode(&p, None, 1 << 20).unwrap(), Decoded::Window(w.clone()));
    }
    assert!(correct >= 27, "{correct}/30 on an easy synthetic task");
}

#[test]
fn model_files_round_trip_and_bad_ones_are_refused() {
    let model = small_model();
    let bytes = model.to_bytes().unwrap();
    let back = SensorModel::from_bytes(&bytes, "m").unwrap();
    assert_eq!(back.id(), model.id());
    assert_eq!(back.config, model.config);
    let e = SensorModel::from_bytes(&bytes[..bytes.len() - 10], "m")
        .unwrap_err()
        .to_string();
    assert!(e.contains("model file m"), "{e}");
    assert!(SensorModel::from_bytes(b"not a model", "m").is_err());
    // A config declaring an absurd shape is refused before any size is computed from it.
    let mut cfg = model.config.clone();
    cfg.len = usize::MAX / 2;
    let e = SensorModel::from_parts(cfg, vec![], vec![], model.mlp.clone(), model.recon_parts())
        .unwrap_err()
        .to_string();
    assert!(e.contains("exceeds"), "{e}");
}

#[test]
fn bad_input_gives_clear_errors() {
    let model = small_model();
    let w = Window::new(2, 64, vec![0.0; 128]).unwrap();
    let e = encode_event(&model, &w).unwrap_err().to_string();
    assert!(
        e.contains("2 channel(s) × 64 samples but the sensor model expects 3 × 64"),
        "{e}"
    );
    assert!(encode_reconstruct(&model, &w, &[0.05]).is_err());
    let w = Window::new(3, 64, vec![0.0; 192]).unwrap();
    assert!(encode_reconstruct(&model, &w, &[0.0]).is_err());
    assert!(encode_reconstruct(&model, &w, &[0.1, 0.1]).is_err());
    assert!(matches!(decode(&[], Some(&model), 10), Err(CodecError::Payload(_))));
    assert!(matches!(
        decode(&[0x09, 1, 2], Some(&model), 10),
        Err(CodecError::Payload(_))
    ));
    assert!(matches!(decode(&[0x02, 1, 2], None, 10), Err(CodecError::Input(_))));
}

#[test]
fn on_change_attaches_the_window_only_when_the_meaning_changes() {
    let model = small_model();
    let test = synthetic(30, 3);
    let mut policy = OnChange::new(0.0, vec![0.1]);
    // Two windows of each class in a row: the second of each pair is sent as its event only
    // (the classifier is confident on this easy task).
    let mut order: Vec<usize> = Vec::new();
    for c in 0..3 {
        order.extend(
            test.labels
                .iter()
                .enumerate()
                .filter(|(_, &l)| l == c)
                .map(|(i, _)| i)
                .take(2),
        );
    }
    let sent: Vec<bool> = order
        .iter()
        .map(|&i| policy.next(&model, &test.windows[i]).unwrap().1)
        .collect();
    assert_eq!(sent, [true, false, true, false, true, false]);
}

#[test]
fn random_payloads_never_panic() {
    let model = small_model();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    for _ in 0..2000 {
        let n = rng.random_range(0..40);
        let mut p: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        if let Some(b) = p.first_mut() {
            *b = rng.random_range(0..5);
        }
        let _ = decode(&p, Some(&model), 1 << 16);
    }
}
