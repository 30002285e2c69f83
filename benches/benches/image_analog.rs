//! Analog image codec speed on one core:
//! `RAYON_NUM_THREADS=1 taskset -c 0 cargo bench -p semcom-benches --bench image_analog`.
//!
//! Encode (KLT + power allocation + interleaver) and decode (linear MMSE + refinement network)
//! of one 768 × 512 RGB image (Kodak `kodim23.png`, or a seeded synthetic image of that size
//! when `../shared/datasets/kodak` is absent) with the shipped model
//! `models/image-jscc.safetensors`, decoding symbols received at 10 dB. The acceptance target
//! is ≤ 200 ms each on one core. candle reads `RAYON_NUM_THREADS` for its thread count.

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use semcom_codec::image::train::channel;
use semcom_codec::image::AnalogJscc;
use semcom_codec::picture::Picture;
use std::hint::black_box;
use std::path::Path;

fn picture() -> Picture {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/datasets/kodak/kodim23.png"
    ));
    if let Ok(pic) = Picture::load(p) {
        return pic;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let (w, h) = (768, 512);
    let data = (0..3 * w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, ((i / w) % h) as f32);
            (0.5 + 0.3 * (x * 0.02).sin() * (y * 0.03).cos() + rng.random_range(-0.05..0.05)).clamp(0.0, 1.0)
        })
        .collect();
    Picture::new(w, h, 3, data).expect("valid")
}

fn analog(c: &mut Criterion) {
    let model = AnalogJscc::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/image-jscc.safetensors"
    )))
    .expect("models/image-jscc.safetensors (train it with `semcom train image`)");
    let pic = picture();
    let code = model.encode(&pic).expect("encode");
    let (rx, snr) = channel(&code, 10.0, false, 1);
    let mut g = c.benchmark_group("image_analog_768x512");
    g.sample_size(10);
    g.bench_function("encode", |b| {
        b.iter(|| black_box(model.encode(black_box(&pic)).expect("encode")))
    });
    g.bench_function("decode", |b| {
        b.iter(|| black_box(model.decode(black_box(&rx), &snr).expect("decode")))
    });
    g.finish();
}

criterion_group!(benches, analog);
criterion_main!(benches);
