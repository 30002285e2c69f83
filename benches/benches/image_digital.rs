//! Digital image codec speed on one core: `cargo bench -p semcom-benches --bench image_digital`.
//!
//! Encode (transform, quantise, range code) at a fixed step, encode with rate control to
//! 0.5 bpp (the bisection over the step), and decode, of a 768 × 512 RGB image: Kodak's
//! `kodim23.png` when `../shared/datasets/kodak` is present, else a seeded synthetic image of
//! the same size. The model is the shipped `models/image-digital.safetensors`, or the built-in
//! DCT model without it. The acceptance target is ≤ 200 ms each way.

use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use semcom_codec::image::digital::DigitalModel;
use semcom_codec::picture::Picture;
use std::hint::black_box;
use std::path::Path;

fn picture() -> Picture {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/datasets/kodak/kodim23.png"
    ));
    if let Ok(p) = Picture::load(path) {
        return p;
    }
    let (w, h) = (768, 512);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let data = (0..3 * w * h)
        .map(|i| {
            let (c, y, x) = (i / (w * h), (i / w) % h, i % w);
            (0.5 + 0.3 * ((x as f32 * 0.03 + c as f32).sin() * (y as f32 * 0.02).cos()) + 0.05 * rng.random::<f32>())
                .clamp(0.0, 1.0)
        })
        .collect();
    Picture::new(w, h, 3, data).expect("valid")
}

fn model() -> DigitalModel {
    let shipped = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/image-digital.safetensors"
    ));
    DigitalModel::load(shipped).unwrap_or_else(|_| DigitalModel::dct())
}

fn image_digital(c: &mut Criterion) {
    let pic = picture();
    let m = model();
    let budget = pic.width() * pic.height() / 16; // 0.5 bpp
    let code = m.encode_within(&pic, budget).expect("encodes");
    let mut g = c.benchmark_group("image_digital_768x512");
    g.sample_size(20);
    g.bench_function("encode_fixed_step", |b| {
        b.iter(|| m.encode(black_box(&pic), code.step_q).expect("encodes"))
    });
    g.bench_function("encode_0.5bpp_rate_control", |b| {
        b.iter(|| m.encode_within(black_box(&pic), budget).expect("encodes"))
    });
    g.bench_function("decode", |b| {
        b.iter(|| m.decode(black_box(&code), usize::MAX).expect("decodes"))
    });
    g.finish();
}

criterion_group!(benches, image_digital);
criterion_main!(benches);
