//! Sensor codec speed on one core: `cargo bench -p semcom-benches --bench sensor`.
//!
//! Windows per second of each mode on UCI HAR test windows (9 channels × 128 samples) with the
//! shipped model `models/sensor-har.safetensors`; the acceptance target is ≥ 2000 windows/s to
//! encode. Without `../shared/datasets/uci-har` the windows are a seeded synthetic IMU-like
//! signal of the same shape (4 significant digits); without the shipped model, a small model is
//! trained on them first.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use semcom_codec::sensor::data::{load_har, Labelled};
use semcom_codec::sensor::train::{train, SensorTrainOptions};
use semcom_codec::sensor::{self, gorilla, SensorModel, Window};
use std::hint::black_box;
use std::path::Path;

fn windows() -> Labelled {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/uci-har"));
    if let Ok(mut l) = load_har(dir, "test") {
        l.windows.truncate(200);
        l.labels.truncate(200);
        return l;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut l = Labelled {
        classes: (0..6).map(|c| format!("c{c}")).collect(),
        ..Default::default()
    };
    for i in 0..200 {
        let f = 1.0 + (i % 6) as f32;
        let x: Vec<f32> = (0..9 * 128)
            .map(|k| {
                let v = (k % 128) as f32 * 0.05 * f + (k / 128) as f32 + rng.random_range(-0.01..0.01);
                format!("{:.3e}", v.sin()).parse().unwrap_or(0.0)
            })
            .collect();
        l.windows.push(Window::new(9, 128, x).expect("finite"));
        l.labels.push((i % 6) as u8);
    }
    l
}

fn model(data: &Labelled) -> SensorModel {
    let shipped = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/sensor-har.safetensors"));
    if let Ok(m) = SensorModel::load(shipped) {
        if m.check(&data.windows[0]).is_ok() {
            return m;
        }
    }
    let names = (0..9).map(|c| format!("ch{c}")).collect();
    let opts = SensorTrainOptions {
        epochs: 5,
        ..Default::default()
    };
    train(data, names, &opts, &mut |_, _| {}).expect("trains").0
}

fn sensor_windows(c: &mut Criterion) {
    let data = windows();
    let m = model(&data);
    let ws = &data.windows;
    let mut g = c.benchmark_group("sensor_window_9x128");
    g.sample_size(20);
    g.throughput(Throughput::Elements(ws.len() as u64));
    g.bench_function("encode_lossless", |b| {
        b.iter(|| {
            ws.iter()
                .map(|w| sensor::encode_lossless(black_box(w)).len())
                .sum::<usize>()
        })
    });
    g.bench_function("encode_gorilla", |b| {
        b.iter(|| ws.iter().map(|w| gorilla::encode(black_box(w)).len()).sum::<usize>())
    });
    g.bench_function("encode_event", |b| {
        b.iter(|| {
            ws.iter()
                .map(|w| sensor::encode_event(&m, black_box(w)).expect("shape").len())
                .sum::<usize>()
        })
    });
    g.bench_function("encode_reconstruct_5pct", |b| {
        b.iter(|| {
            ws.iter()
                .map(|w| {
                    sensor::encode_reconstruct(&m, black_box(w), &[0.05])
                        .expect("shape")
                        .len()
                })
                .sum::<usize>()
        })
    });
    let lossless: Vec<Vec<u8>> = ws.iter().map(sensor::encode_lossless).collect();
    let recon: Vec<Vec<u8>> = ws
        .iter()
        .map(|w| sensor::encode_reconstruct(&m, w, &[0.05]).expect("shape"))
        .collect();
    g.bench_function("decode_lossless", |b| {
        b.iter(|| {
            lossless
                .iter()
                .map(|p| sensor::decode(black_box(p), None, 1 << 20).is_ok() as usize)
                .sum::<usize>()
        })
    });
    g.bench_function("decode_reconstruct", |b| {
        b.iter(|| {
            recon
                .iter()
                .map(|p| sensor::decode(black_box(p), Some(&m), 1 << 20).is_ok() as usize)
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, sensor_windows);
criterion_main!(benches);
