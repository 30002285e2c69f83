//! Training the analog image model: fit the Karhunen–Loève basis of 32 × 32 RGB blocks on the
//! training photos, choose the power allocation, then train the refinement network with candle
//! through a simulated noisy channel (AWGN and per-symbol Rayleigh SNRs, −3…23 dB), seeded.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp1, StandardNormal};

use super::net::Refiner;
use super::{picture_blocks, AnalogConfig, AnalogJscc, BLOCK, BLOCK_DIM};
use crate::frame::ModelId;
use crate::picture::{psnr, Picture};
use crate::CodecError;

/// Settings of one training run.
#[derive(Clone, Debug)]
pub struct ImageTrainOptions {
    /// Model shape.
    pub config: AnalogConfig,
    /// Optimiser steps of the refinement network.
    pub steps: usize,
    /// Crops per step.
    pub batch: usize,
    /// Crop side in pixels (a multiple of 16).
    pub crop: usize,
    /// Peak learning rate (AdamW, warm-up then cosine decay).
    pub lr: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Training SNR range in dB.
    pub snr_range: (f32, f32),
    /// Fraction of crops sent with per-symbol Rayleigh SNRs (the rest: AWGN).
    pub fading_fraction: f64,
    /// Start the network's output layer at zero, so training starts from the linear MMSE
    /// decoder (otherwise it starts from candle's random initialisation).
    pub warm_start: bool,
    /// Stop after the step during which this much time has passed (the model is kept; the
    /// learning-rate schedule is the one for `steps`).
    pub time_limit: Option<std::time::Duration>,
    /// Go on training this model's network (its transform, power allocation and network shape
    /// are kept; `config` and `warm_start` are then not used).
    pub init: Option<std::sync::Arc<AnalogJscc>>,
}

impl Default for ImageTrainOptions {
    fn default() -> Self {
        ImageTrainOptions {
            config: AnalogConfig::default_1_16(),
            steps: 2000,
            batch: 4,
            crop: 256,
            lr: 1e-3,
            seed: 1,
            snr_range: (-3.0, 23.0),
            fading_fraction: 0.5,
            warm_start: true,
            time_limit: None,
            init: None,
        }
    }
}

/// Progress of a training run.
#[derive(Clone, Debug)]
pub struct ImageProgress {
    /// Steps done.
    pub step: usize,
    /// Training loss of this step (MSE on [0, 1] pixels).
    pub loss: f32,
    /// Held-out figures when just measured: (SNR dB, PSNR linear only, PSNR with the network).
    pub heldout: Option<Vec<(f32, f64, f64)>>,
}

/// PNG and JPEG files under `dir` (not recursive), sorted.
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>, CodecError> {
    let io = |source| CodecError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
            out.push(p);
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(CodecError::Input(format!("{}: no .png or .jpg images", dir.display())));
    }
    Ok(out)
}

/// Loads every image under the directories.
pub fn load_images(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, Picture)>, CodecError> {
    let mut out = Vec::new();
    for d in dirs {
        for p in image_files(d)? {
            let pic = Picture::load(&p)?;
            out.push((p, pic));
        }
    }
    Ok(out)
}

/// The `k` leading eigenpairs of the symmetric `n × n` matrix `c` (f64, row-major) by subspace
/// iteration with a Rayleigh–Ritz step: eigenvalues descending, eigenvectors as rows.
pub fn leading_eigen(c: &[f64], n: usize, k: usize, iters: usize) -> Result<(Vec<f64>, Vec<f64>), CodecError> {
    let m = (k + 16).min(n);
    let dev = Device::Cpu;
    let ct = Tensor::from_slice(c, (n, n), &dev)?;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // q: m vectors of length n, row per vector.
    let mut q: Vec<f64> = (0..m * n).map(|_| rng.sample::<f64, _>(StandardNormal)).collect();
    let orth = |q: &mut Vec<f64>| {
        for i in 0..m {
            let (done, rest) = q.split_at_mut(i * n);
            let qi = &mut rest[..n];
            for j in 0..i {
                let qj = &done[j * n..(j + 1) * n];
                let d: f64 = qi.iter().zip(qj).map(|(a, b)| a * b).sum();
                for (a, b) in qi.iter_mut().zip(qj) {
                    *a -= d * b;
                }
            }
            let norm = qi.iter().map(|a| a * a).sum::<f64>().sqrt().max(1e-300);
            for a in qi.iter_mut() {
                *a /= norm;
            }
        }
    };
    // C is symmetric, so (C Qᵀ)ᵀ = Q C: one matrix product per iteration.
    let apply = |q: &[f64]| -> Result<Vec<f64>, CodecError> {
        Ok(Tensor::from_slice(q, (m, n), &dev)?
            .matmul(&ct)?
            .flatten_all()?
            .to_vec1::<f64>()?)
    };
    orth(&mut q);
    for _ in 0..iters {
        q = apply(&q)?;
        orth(&mut q);
    }
    // Rayleigh–Ritz: the small m × m problem Q C Qᵀ.
    let qt = Tensor::from_slice(&q, (m, n), &dev)?;
    let small = qt.matmul(&ct)?.matmul(&qt.t()?)?;
    let small = ((&small + small.t()?)? * 0.5)?.flatten_all()?.to_vec1::<f64>()?;
    let (vals, vecs) = crate::sensor::klt::symmetric_eigen(&small, m);
    let rows = Tensor::from_slice(&vecs[..k * m], (k, m), &dev)?
        .matmul(&qt)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    Ok((vals[..k].to_vec(), rows))
}

/// Mean and covariance (f64, row-major) of every whole block of the pictures.
pub(crate) fn block_covariance(pics: &[&Picture], min_blocks: usize) -> Result<(Tensor, Vec<f64>), CodecError> {
    let dev = Device::Cpu;
    let mut all = Vec::new();
    for p in pics {
        let (bw, bh) = (p.width() / BLOCK, p.height() / BLOCK);
        if bw > 0 && bh > 0 {
            all.extend(picture_blocks(&p.crop(0, 0, bw * BLOCK, bh * BLOCK)?));
        }
    }
    let count = all.len() / BLOCK_DIM;
    if count <= min_blocks {
        return Err(CodecError::Input(format!(
            "{count} whole {BLOCK}×{BLOCK} training blocks are too few to fit the transform (need more than {min_blocks})"
        )));
    }
    let x = Tensor::from_vec(all, (count, BLOCK_DIM), &dev)?;
    let mean = x.to_dtype(DType::F64)?.mean(0)?;
    let xc = x.broadcast_sub(&mean.to_dtype(DType::F32)?)?;
    // Covariance in f32 products over chunks of centred blocks, summed in f64.
    let mut cov = Tensor::zeros((BLOCK_DIM, BLOCK_DIM), DType::F64, &dev)?;
    let chunk = 4096;
    for start in (0..count).step_by(chunk) {
        let part = xc.narrow(0, start, chunk.min(count - start))?;
        cov = (cov + part.t()?.matmul(&part)?.to_dtype(DType::F64)?)?;
    }
    Ok((mean, (cov / count as f64)?.flatten_all()?.to_vec1::<f64>()?))
}

/// Block mean, basis rows and coefficient variances.
type Klt = (Vec<f32>, Vec<f32>, Vec<f32>);

/// Fits mean, basis and coefficient variances on every whole block of the pictures.
fn fit_klt(pics: &[&Picture], k: usize) -> Result<Klt, CodecError> {
    let (mean, cov) = block_covariance(pics, k)?;
    let (vals, rows) = leading_eigen(&cov, BLOCK_DIM, k, 30)?;
    Ok((
        mean.to_vec1::<f64>()?.iter().map(|&v| v as f32).collect(),
        rows.iter().map(|&v| v as f32).collect(),
        vals.iter().map(|&v| v.max(1e-12) as f32).collect(),
    ))
}

/// One batch of the channel simulation: what the refinement network sees and what it must
/// produce.
struct Batch {
    /// `(B, hb, wb, input)` features.
    feat: Tensor,
    /// `(B, H, W, 3)` linear MMSE reconstruction.
    base: Tensor,
    /// `(B, H, W, 3)` originals.
    target: Tensor,
}

/// One crop's trip: mean SNR in dB, whether per-symbol Rayleigh fading applies, and the
/// channel's noise seed.
type Trip = (f32, bool, u64);

/// Runs crops through the encoder, the channel ([`channel`]) and the decoder's linear part
/// ([`AnalogJscc::decoder_inputs`], what the decoder itself gives its network), one CPU thread
/// per share of the crops; the batch goes to `dev`.
fn simulate(m: &AnalogJscc, crops: &[Picture], trips: &[Trip], dev: &Device) -> Result<Batch, CodecError> {
    let one = |crop: &Picture, &(snr, fading, seed): &Trip| -> Result<(Tensor, Tensor, Tensor), CodecError> {
        let code = m.encode(crop)?;
        let (rx, snrs) = channel(&code, snr, fading, seed);
        let (feat, base) = m.decoder_inputs(&rx, &snrs)?;
        let (w, h) = (crop.width(), crop.height());
        let mut target = Vec::with_capacity(w * h * 3);
        for i in 0..w * h {
            for c in 0..3 {
                target.push(crop.plane(if crop.channels() == 1 { 0 } else { c })[i]);
            }
        }
        Ok((feat, base, Tensor::from_vec(target, (1, h, w, 3), &Device::Cpu)?))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = crops.len().div_ceil(threads).max(1);
    let parts: Vec<(Tensor, Tensor, Tensor)> = std::thread::scope(|scope| {
        let jobs: Vec<_> = crops
            .chunks(share)
            .zip(trips.chunks(share))
            .map(|(cs, ts)| scope.spawn(move || cs.iter().zip(ts).map(|(c, t)| one(c, t)).collect::<Vec<_>>()))
            .collect();
        let mut out = Vec::with_capacity(crops.len());
        for job in jobs {
            let done = job
                .join()
                .map_err(|_| CodecError::Backend("channel simulation thread panicked".into()))?;
            for r in done {
                out.push(r?);
            }
        }
        Ok::<_, CodecError>(out)
    })?;
    let cat = |pick: fn(&(Tensor, Tensor, Tensor)) -> &Tensor| -> Result<Tensor, CodecError> {
        let all: Vec<&Tensor> = parts.iter().map(pick).collect();
        Ok(Tensor::cat(&all, 0)?.to_device(dev)?)
    };
    Ok(Batch {
        feat: cat(|p| &p.0)?,
        base: cat(|p| &p.1)?,
        target: cat(|p| &p.2)?,
    })
}

fn random_crop(pics: &[&Picture], side: usize, rng: &mut ChaCha8Rng) -> Picture {
    loop {
        let p = pics[rng.random_range(0..pics.len())];
        if p.width() < side || p.height() < side {
            continue;
        }
        let x = rng.random_range(0..=p.width() - side);
        let y = rng.random_range(0..=p.height() - side);
        let mut c = p.crop(x, y, side, side).expect("crop fits");
        if rng.random_bool(0.5) {
            let ch = c.channels();
            let d = c.data_mut();
            for plane in 0..ch {
                for r in 0..side {
                    d[plane * side * side + r * side..plane * side * side + (r + 1) * side].reverse();
                }
            }
        }
        return c;
    }
}

/// A trained analog model.
#[derive(Debug)]
pub struct TrainedImage {
    /// The model.
    pub model: AnalogJscc,
    /// Its file's bytes.
    pub bytes: Vec<u8>,
    /// Where the network was trained.
    pub device: String,
    /// Steps done (fewer than asked when the time limit ended the run).
    pub steps: usize,
}

/// Trains an analog model on `train` pictures; `heldout` pictures (crops of them) are scored
/// every `eval_every` steps. The network trains on a CUDA GPU when semcom is built with the
/// `cuda` feature and one is present, else on the CPU; the channel simulation runs on the CPU
/// threads either way.
pub fn train_analog(
    train: &[&Picture],
    heldout: &[&Picture],
    opts: &ImageTrainOptions,
    eval_every: usize,
    progress: &mut dyn FnMut(&ImageProgress),
) -> Result<TrainedImage, CodecError> {
    if !opts.crop.is_multiple_of(BLOCK) || opts.crop == 0 || opts.batch == 0 {
        return Err(CodecError::Input(format!(
            "crop {} must be a positive multiple of {BLOCK}",
            opts.crop
        )));
    }
    let cfg = opts.init.as_ref().map_or(&opts.config, |m| &m.config).clone();
    cfg.validate().map_err(CodecError::Input)?;
    if !(opts.lr.is_finite() && opts.lr > 0.0) {
        return Err(CodecError::Input(format!("learning rate {}: must be above 0", opts.lr)));
    }
    // The per-crop draws would panic on these (an empty SNR range, a probability outside 0…1).
    let (lo, hi) = opts.snr_range;
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Err(CodecError::Input(format!(
            "SNR range {lo}…{hi} dB: must be finite and not empty"
        )));
    }
    if !(0.0..=1.0).contains(&opts.fading_fraction) {
        return Err(CodecError::Input(format!(
            "fading fraction {}: must be between 0 and 1",
            opts.fading_fraction
        )));
    }
    if !train.iter().any(|p| p.width() >= opts.crop && p.height() >= opts.crop) {
        return Err(CodecError::Input(format!(
            "no training image is at least {0}×{0}",
            opts.crop
        )));
    }
    let k = cfg.components;
    let base_tensors: Vec<(String, Tensor)> = match &opts.init {
        Some(m) => m
            .tensors
            .iter()
            .filter(|(name, _)| name.starts_with("pca."))
            .map(|(name, t)| (name.clone(), t.clone()))
            .collect(),
        None => {
            let (mean, basis, var) = fit_klt(train, k)?;
            // Power allocation λ^-1/4, scaled so the average power over the training blocks is 1.
            let mut gain: Vec<f32> = var.iter().map(|&l| l.powf(-0.25)).collect();
            let p: f32 = gain.iter().zip(&var).map(|(g, l)| g * g * l).sum::<f32>() / k as f32;
            for g in &mut gain {
                *g /= p.sqrt();
            }
            let fixed = |name: &str, v: &[f32], shape: &[usize]| -> Result<(String, Tensor), CodecError> {
                Ok((name.to_string(), Tensor::from_vec(v.to_vec(), shape, &Device::Cpu)?))
            };
            vec![
                fixed("pca.mean", &mean, &[BLOCK_DIM])?,
                fixed("pca.basis", &basis, &[k, BLOCK_DIM])?,
                fixed("pca.var", &var, &[k])?,
                fixed("pca.gain", &gain, &[k])?,
            ]
        }
    };
    let dev = Device::cuda_if_available(0)?;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let net = Refiner::new(&cfg.net, vb.pp("net"))?;
    for (name, var) in varmap.data().lock().expect("varmap lock").iter() {
        match &opts.init {
            // The network goes on from the given model's weights.
            Some(m) => {
                let t = m
                    .tensors
                    .get(name)
                    .ok_or_else(|| CodecError::Input(format!("the model to go on from has no tensor {name}")))?;
                var.set(&t.to_device(&dev)?)?;
            }
            // The output layer starts at zero, so training starts from the linear MMSE decoder.
            None if opts.warm_start && name.starts_with("net.out.") => var.set(&var.zeros_like()?)?,
            None => {}
        }
    }
    let snapshot = |varmap: &VarMap| -> Result<AnalogJscc, CodecError> {
        let mut t: HashMap<String, Tensor> = base_tensors.iter().cloned().collect();
        for (name, v) in varmap.data().lock().expect("varmap lock").iter() {
            t.insert(name.clone(), v.as_tensor().to_device(&Device::Cpu)?.copy()?);
        }
        AnalogJscc::from_tensors(cfg.clone(), t, ModelId(0))
    };
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    // Fixed held-out crops (centre crops) for the periodic score.
    let hold: Vec<Picture> = heldout
        .iter()
        .filter(|p| p.width() >= opts.crop && p.height() >= opts.crop)
        .map(|p| {
            p.crop(
                (p.width() - opts.crop) / 2,
                (p.height() - opts.crop) / 2,
                opts.crop,
                opts.crop,
            )
        })
        .collect::<Result<_, _>>()?;
    let mut model = snapshot(&varmap)?;
    let warmup = (opts.steps / 20).max(1);
    let started = std::time::Instant::now();
    let mut done = 0;
    for step in 0..opts.steps {
        let last = step + 1 == opts.steps || opts.time_limit.is_some_and(|t| started.elapsed() >= t);
        let lr = if step < warmup {
            opts.lr * (step + 1) as f64 / warmup as f64
        } else {
            let t = (step - warmup) as f64 / (opts.steps - warmup).max(1) as f64;
            opts.lr * (0.02 + 0.98 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
        };
        opt.set_learning_rate(lr);
        let crops: Vec<Picture> = (0..opts.batch)
            .map(|_| random_crop(train, opts.crop, &mut rng))
            .collect();
        let trips: Vec<Trip> = (0..opts.batch)
            .map(|_| {
                (
                    rng.random_range(opts.snr_range.0..opts.snr_range.1),
                    rng.random_bool(opts.fading_fraction),
                    rng.random(),
                )
            })
            .collect();
        // The linear part reads the fixed tensors only; the network is `net` (live variables).
        let batch = simulate(&model, &crops, &trips, &dev)?;
        let pred = (&batch.base + net.forward(&batch.feat)?)?;
        let loss = super::net::mean_all(&(pred - &batch.target)?.sqr()?)?;
        opt.backward_step(&loss)?;
        let mut heldout_scores = None;
        if !hold.is_empty() && ((step + 1) % eval_every == 0 || last) {
            model = snapshot(&varmap)?;
            heldout_scores = Some(score(&model, &hold, &[1.0, 10.0, 20.0])?);
        }
        progress(&ImageProgress {
            step: step + 1,
            loss: loss.to_scalar::<f32>()?,
            heldout: heldout_scores,
        });
        done = step + 1;
        if last {
            break;
        }
    }
    let model = snapshot(&varmap)?;
    let bytes = model.to_bytes()?;
    let model = AnalogJscc::from_bytes(&bytes, "<trained>")?;
    Ok(TrainedImage {
        model,
        bytes,
        device: if dev.is_cuda() { "CUDA GPU".into() } else { "CPU".into() },
        steps: done,
    })
}

/// Mean PSNR over pictures at each SNR (AWGN on the symbols, seeded): linear MMSE decoder only,
/// and the full decoder.
fn score(m: &AnalogJscc, pics: &[Picture], snrs: &[f32]) -> Result<Vec<(f32, f64, f64)>, CodecError> {
    let mut out = Vec::new();
    for &snr in snrs {
        let trips: Vec<Trip> = (0..pics.len()).map(|i| (snr, false, 99 + i as u64)).collect();
        let b = simulate(m, pics, &trips, &Device::Cpu)?;
        let full = (&b.base + m.net.forward(&b.feat)?)?;
        let mse = |t: &Tensor| -> Result<f64, CodecError> {
            let d = (t.clamp(0f32, 1f32)? - &b.target)?.sqr()?;
            Ok(super::net::mean_all(&d)?.to_scalar::<f32>()? as f64)
        };
        let db = |mse: f64| 10.0 * (1.0 / mse.max(1e-12)).log10();
        out.push((snr, db(mse(&b.base)?), db(mse(&full)?)));
    }
    Ok(out)
}

/// AWGN (or per-symbol Rayleigh) applied to an analog code's symbols, seeded: the received code
/// and the per-symbol SNR in dB that an ideal receiver reports.
pub fn channel(code: &super::AnalogCode, snr_db: f32, fading: bool, seed: u64) -> (super::AnalogCode, Vec<f32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = code.clone();
    let mut snrs = Vec::with_capacity(code.symbols.len());
    for s in &mut out.symbols {
        let snr = if fading {
            let e: f32 = Exp1.sample(&mut rng);
            snr_db + 10.0 * e.max(1e-6).log10()
        } else {
            snr_db
        };
        let sd = (10f32.powf(-snr / 10.0) / 2.0).sqrt();
        let (a, b): (f32, f32) = (StandardNormal.sample(&mut rng), StandardNormal.sample(&mut rng));
        s.re += sd * a;
        s.im += sd * b;
        snrs.push(snr);
    }
    (out, snrs)
}

/// PSNR of every picture through [`channel`] at each SNR (seeded per picture and SNR).
pub fn eval_analog(
    m: &AnalogJscc,
    pics: &[&Picture],
    snrs: &[f32],
    fading: bool,
    seed: u64,
) -> Result<Vec<Vec<f64>>, CodecError> {
    let mut table = Vec::new();
    for &snr in snrs {
        let mut row = Vec::new();
        for (pi, p) in pics.iter().enumerate() {
            let code = m.encode(p)?;
            let (rx, s) = channel(&code, snr, fading, seed ^ ((snr.to_bits() as u64) << 32) ^ pi as u64);
            let out = m.decode(&rx, &s)?;
            row.push(psnr(p, &out)?);
        }
        table.push(row);
    }
    Ok(table)
}
