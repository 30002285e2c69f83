use super::train::{channel, train_analog, ImageTrainOptions};
use super::*;
use crate::picture::psnr;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn shipped() -> AnalogJscc {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/image-jscc.safetensors"));
    AnalogJscc::load(p).expect("the shipped analog image model")
}

/// A seeded smooth random RGB field with edges: sums of a few oriented sinusoids plus a step.
fn synthetic(w: usize, h: usize, seed: u64) -> Picture {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let waves: Vec<(f32, f32, f32, f32)> = (0..4)
        .map(|_| {
            (
                rng.random_range(-0.2..0.2),
                rng.random_range(-0.2..0.2),
                rng.random_range(0.0..6.3),
                rng.random_range(0.05..0.15),
            )
        })
        .collect();
    let step = rng.random_range(0..w);
    let mut data = vec![0f32; 3 * w * h];
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let mut v = 0.45 + 0.05 * c as f32 + if x > step { 0.15 } else { 0.0 };
                for &(fx, fy, ph, a) in &waves {
                    v += a * (fx * x as f32 + fy * y as f32 + ph + c as f32 * 0.3).sin();
                }
                data[c * w * h + y * w + x] = v.clamp(0.0, 1.0);
            }
        }
    }
    Picture::new(w, h, 3, data).expect("valid")
}

fn kodak(name: &str) -> Option<Picture> {
    let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/kodak")).join(name);
    match Picture::load(&p) {
        Ok(pic) => Some(pic),
        Err(_) => {
            eprintln!("skipping: {} not found", p.display());
            None
        }
    }
}

#[test]
fn interleaver_is_a_permutation() {
    for k in [1usize, 2, 3, 24, 36864, 1000, 4096, 777] {
        let s = interleave_stride(k);
        let mut seen = vec![false; k];
        for i in 0..k {
            seen[(i * s) % k] = true;
        }
        assert!(seen.iter().all(|&b| b), "k = {k}, stride {s}");
    }
}

#[test]
fn encoder_sends_k_over_n_symbols_at_unit_power() {
    let m = shipped();
    assert_eq!(m.ratio(), (1, 16));
    let pic = synthetic(768, 512, 3);
    let code = m.encode(&pic).unwrap();
    // n = 768 · 512 · 3 / 2 real pairs; k = n / 16.
    assert_eq!(code.symbols.len(), 768 * 512 * 3 / 2 / 16);
    let p: f64 = code.symbols.iter().map(|s| s.norm_sqr() as f64).sum::<f64>() / code.symbols.len() as f64;
    assert!(p <= 1.0 && p > 0.9, "average power {p}");
}

#[test]
fn quality_rises_with_snr_and_network_beats_nothing() {
    let Some(pic) = kodak("kodim23.png") else { return };
    let pic = pic.crop(256, 128, 256, 256).unwrap();
    let m = shipped();
    let code = m.encode(&pic).unwrap();
    let mut last = 0.0;
    for snr in [0.0f32, 10.0, 20.0] {
        let (rx, s) = channel(&code, snr, false, 7);
        let q = psnr(&pic, &m.decode(&rx, &s).unwrap()).unwrap();
        assert!(q > last + 0.5, "PSNR {q:.2} dB at {snr} dB is not above {last:.2}");
        last = q;
    }
    // kodim23 is smooth: well above 24 dB at 20 dB SNR.
    assert!(last > 24.0, "{last}");
}

/// The decoder's estimate of an image's coefficient variances (from received power less noise
/// power) is close to the image's own, on a clean channel and through per-symbol Rayleigh fading
/// whose deep fades carry huge noise, and it departs from the training variances where the
/// image does (a smooth picture's fine detail).
#[test]
fn decoder_estimates_the_image_coefficient_variances() {
    let m = shipped();
    let pic = synthetic(768, 512, 11);
    let k = m.config().components;
    let coef = m.coefficients(&picture_blocks(&pic)).unwrap();
    let nb = coef.len() / k;
    let truth: Vec<f32> = (0..k)
        .map(|j| (0..nb).map(|b| coef[b * k + j].powi(2)).sum::<f32>() / nb as f32)
        .collect();
    let code = m.encode(&pic).unwrap();
    // The leading coefficients where the picture is not far below the training variance (so the
    // prior barely pulls): within 8 % clean, 12 % through fading at 10 dB mean SNR (weighting
    // every symbol alike is 59 % off there).
    for (snr, fading, tol) in [(30.0, false, 0.08), (10.0, true, 0.12)] {
        let (rx, s) = channel(&code, snr, fading, 3);
        let est = m.image_variances(&rx, &s).unwrap();
        for j in (0..16).filter(|&j| truth[j] > 0.3 * m.var[j]) {
            let r = est[j] / truth[j];
            assert!(
                (1.0 - tol..1.0 + tol).contains(&r),
                "{snr} dB fading {fading}: component {j}: {r}"
            );
        }
    }
    // The synthetic picture is smooth: its high-order coefficients are far weaker than the
    // training variance, and the estimate says so.
    let (rx, s) = channel(&code, 20.0, false, 4);
    let est = m.image_variances(&rx, &s).unwrap();
    let weak = (k / 2..k).filter(|&j| est[j] < 0.3 * m.var[j]).count();
    assert!(weak > k / 4, "{weak} of {} high-order components estimated weak", k / 2);
}

#[test]
fn any_size_and_grey_images_come_back_in_shape() {
    let m = shipped();
    let rgb = synthetic(37, 21, 5);
    let grey = Picture::new(37, 21, 1, rgb.plane(1).to_vec()).unwrap();
    for pic in [rgb, grey] {
        let code = m.encode(&pic).unwrap();
        assert_eq!(code.symbols.len(), m.symbols_for(37, 21, pic.channels()));
        let (rx, s) = channel(&code, 25.0, false, 1);
        let out = m.decode(&rx, &s).unwrap();
        assert_eq!((out.width(), out.height(), out.channels()), (37, 21, pic.channels()));
        let q = psnr(&pic, &out).unwrap();
        eprintln!("{}-channel 37×21: {q:.2} dB", pic.channels());
        assert!(q > 18.0, "{q}");
    }
}

#[test]
fn bad_received_input_is_refused() {
    let m = shipped();
    let code = m.encode(&synthetic(32, 32, 1)).unwrap();
    let mut short = code.clone();
    short.symbols.pop();
    assert!(m.decode(&short, &[10.0]).unwrap_err().to_string().contains("needs"));
    assert!(m.image_variances(&short, &[10.0]).is_err());
    let mut nan = code.clone();
    nan.symbols[3].re = f32::NAN;
    assert!(m.decode(&nan, &[10.0]).is_err());
    assert!(m.decode(&code, &[10.0, 11.0]).is_err());
    assert!(m.decode(&code, &[f32::INFINITY]).is_err());
    let zero = AnalogCode {
        width: 0,
        ..code.clone()
    };
    assert!(m.decode(&zero, &[10.0]).is_err());
}

#[test]
fn bad_model_files_are_refused() {
    for (bytes, want) in [
        (&b""[..], "not a safetensors"),
        (&b"garbage bytes here"[..], "not a safetensors"),
    ] {
        let e = AnalogJscc::from_bytes(bytes, "x").unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
    let prior = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models/text-prior.safetensors"));
    if let Ok(b) = std::fs::read(prior) {
        let e = AnalogJscc::from_bytes(&b, "text-prior").unwrap_err().to_string();
        assert!(e.contains("not a semcom image model"), "{e}");
    }
    // A shipped model with one tensor cut short.
    let m = shipped();
    let mut t = m.tensors.clone();
    t.insert("pca.var".into(), Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap());
    assert!(AnalogJscc::from_tensors(m.config.clone(), t, ModelId(0)).is_err());
}

#[test]
fn smoke_training_lowers_the_loss() {
    // A tiny network, randomly initialised (no warm start from the linear decoder), on seeded
    // synthetic crops at one SNR: the training loss of the last 20 steps must be well below
    // that of the first 20, and the result must load back.
    let pics: Vec<Picture> = (0..5).map(|i| synthetic(256, 256, 100 + i)).collect();
    let train: Vec<&Picture> = pics[..4].iter().collect();
    let held: Vec<&Picture> = pics[4..].iter().collect();
    let mut opts = ImageTrainOptions {
        steps: 120,
        batch: 4,
        crop: 64,
        lr: 3e-3,
        seed: 3,
        snr_range: (5.0, 5.001),
        fading_fraction: 0.0,
        warm_start: false,
        ..Default::default()
    };
    opts.config.net = net::NetConfig {
        input: 288,
        coarse: 32,
        mid: 16,
        fine: 8,
        depth: [1, 2, 1],
    };
    let mut losses = Vec::new();
    let bytes = train_analog(&train, &held, &opts, 1000, &mut |p| losses.push(p.loss))
        .unwrap()
        .bytes;
    let first: f32 = losses[..20].iter().sum::<f32>() / 20.0;
    let last: f32 = losses[losses.len() - 20..].iter().sum::<f32>() / 20.0;
    assert!(last < 0.7 * first, "loss {first:.6} → {last:.6}");
    assert!(AnalogJscc::from_bytes(&bytes, "trained").is_ok());
}

#[test]
fn subspace_iteration_finds_the_leading_eigenpairs() {
    // A covariance with a known spectrum: Q diag(λ) Qᵀ for a seeded orthonormal Q.
    let n = 40;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let a: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let (_, q) = crate::sensor::klt::symmetric_eigen(
        &(0..n * n).map(|i| a[i] + a[(i % n) * n + i / n]).collect::<Vec<_>>(),
        n,
    );
    let lam: Vec<f64> = (0..n).map(|i| 0.8f64.powi(i as i32)).collect();
    let mut c = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            c[i * n + j] = (0..n).map(|r| q[r * n + i] * lam[r] * q[r * n + j]).sum();
        }
    }
    let (vals, rows) = super::train::leading_eigen(&c, n, 6, 200).unwrap();
    for r in 0..6 {
        assert!((vals[r] - lam[r]).abs() < 1e-6, "λ{r} = {} vs {}", vals[r], lam[r]);
        let dot: f64 = (0..n).map(|t| rows[r * n + t] * q[r * n + t]).sum();
        assert!(dot.abs() > 0.999, "eigenvector {r}: |cos| = {dot}");
    }
}

#[test]
fn strided_gram_matrix_matches_naive() {
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let (rows, cols) = (300, 70);
    let v: Vec<f32> = (0..rows * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x = Tensor::from_vec(v.clone(), (rows, cols), &dev).unwrap();
    let part = x.narrow(0, 100, 150).unwrap();
    let g = part.t().unwrap().matmul(&part).unwrap().to_vec2::<f32>().unwrap();
    for i in [0, 5, 69] {
        for j in [0, 33, 69] {
            let want: f32 = (100..250).map(|r| v[r * cols + i] * v[r * cols + j]).sum();
            assert!((g[i][j] - want).abs() < 1e-3, "({i},{j}): {} vs {want}", g[i][j]);
        }
    }
}

#[test]
#[ignore = "diagnostic: fits the transform on real photos"]
fn klt_residuals_on_photos() {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/datasets/photos-train"
    ));
    let pics: Vec<Picture> = super::train::image_files(dir)
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 9)
        .map(|(_, p)| Picture::load(p).unwrap())
        .collect();
    let refs: Vec<&Picture> = pics.iter().collect();
    let (_, cov) = super::train::block_covariance(&refs, 192).unwrap();
    let n = BLOCK_DIM;
    let trace: f64 = (0..n).map(|i| cov[i * n + i]).sum();
    let (vals, rows) = super::train::leading_eigen(&cov, n, 192, 30).unwrap();
    eprintln!("trace {trace}, top {:?}, tail {:?}", &vals[..4], &vals[188..]);
    for r in [0, 50, 150, 191] {
        let v = &rows[r * n..(r + 1) * n];
        let res: f64 = (0..n)
            .map(|i| {
                let cv: f64 = (0..n).map(|j| cov[i * n + j] * v[j]).sum();
                (cv - vals[r] * v[i]).powi(2)
            })
            .sum::<f64>()
            .sqrt();
        eprintln!("row {r}: λ {} residual {res}", vals[r]);
    }
}

#[test]
fn bad_training_options_are_refused_before_training() {
    let pics: Vec<Picture> = (0..2).map(|i| synthetic(64, 64, 200 + i)).collect();
    let refs: Vec<&Picture> = pics.iter().collect();
    let base = ImageTrainOptions {
        steps: 1,
        batch: 1,
        crop: 64,
        ..Default::default()
    };
    let mut zero_width = base.clone();
    zero_width.config.net.coarse = 0;
    for (opts, want) in [
        (
            ImageTrainOptions {
                lr: f64::NAN,
                ..base.clone()
            },
            "learning rate",
        ),
        (
            ImageTrainOptions {
                lr: -1.0,
                ..base.clone()
            },
            "learning rate",
        ),
        (
            ImageTrainOptions {
                snr_range: (5.0, 5.0),
                ..base.clone()
            },
            "SNR range",
        ),
        (
            ImageTrainOptions {
                snr_range: (f32::NAN, 5.0),
                ..base.clone()
            },
            "SNR range",
        ),
        (
            ImageTrainOptions {
                fading_fraction: 1.5,
                ..base.clone()
            },
            "fading fraction",
        ),
        (
            ImageTrainOptions {
                fading_fraction: f64::NAN,
                ..base
            },
            "fading fraction",
        ),
        (zero_width, "zero network width"),
    ] {
        let e = train_analog(&refs, &refs, &opts, 1, &mut |_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn digital_configs_out_of_range_are_refused() {
    use super::digital::{DigitalConfig, DigitalModel, N};
    let eye = |n: usize| -> Vec<f32> { (0..n * n).map(|i| f32::from(u8::from(i / n == i % n))).collect() };
    let colour: [f32; 9] = eye(3).try_into().unwrap();
    let good = DigitalConfig::default_for("dct");
    let model = |c: DigitalConfig| DigitalModel::from_parts(c, colour, [0.0; 3], [eye(N), eye(N), eye(N)]);
    assert!(model(good.clone()).is_ok());
    let bad = [
        DigitalConfig {
            transform: "xyz".into(),
            ..good.clone()
        },
        DigitalConfig {
            rounding: -5.0,
            ..good.clone()
        },
        DigitalConfig {
            recon_bias: 1e30,
            ..good.clone()
        },
        DigitalConfig {
            chroma_step: 0.0,
            ..good.clone()
        },
        DigitalConfig {
            deblock: f32::NAN,
            ..good.clone()
        },
    ];
    for c in bad {
        assert!(model(c.clone()).is_err(), "{c:?}");
    }
}

#[test]
fn training_goes_on_from_a_given_model() {
    // Go on from the shipped model at a learning rate too small to move anything: the transform
    // and power allocation are the shipped ones exactly, and so (to rounding) is the network.
    let pics: Vec<Picture> = (0..3).map(|i| synthetic(64, 64, 300 + i)).collect();
    let refs: Vec<&Picture> = pics.iter().collect();
    let m = std::sync::Arc::new(shipped());
    let mut opts = ImageTrainOptions {
        steps: 1,
        batch: 1,
        crop: 64,
        lr: 1e-12,
        init: Some(m.clone()),
        ..Default::default()
    };
    // The given model's shape wins over `config`.
    opts.config.net.depth = [1, 1, 1];
    let out = train_analog(&refs, &refs, &opts, 1, &mut |_| {}).unwrap().model;
    assert_eq!(out.config, m.config);
    for (name, t) in &m.tensors {
        let a = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = out.tensors[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let d = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        if name.starts_with("pca.") {
            assert_eq!(a, b, "{name}");
        } else {
            assert!(d < 1e-6, "{name} moved by {d}");
        }
    }
}
