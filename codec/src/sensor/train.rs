//! Training a [`SensorModel`] from a labelled training split: feature standardisation, the MLP
//! classifier (candle, AdamW, seeded initialisation and batch order), the anomaly threshold and
//! the per-channel KLTs.

use super::data::Labelled;
use super::features::{self, Extractor};
use super::klt::symmetric_eigen;
use super::model::{Dense, ReconParts, SensorConfig, SensorModel, MAX_CLASSES};
use super::recon;
use crate::CodecError;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Training settings.
#[derive(Clone, Debug)]
pub struct SensorTrainOptions {
    /// Seed of the initialisation and the batch order.
    pub seed: u64,
    /// Passes over the training windows.
    pub epochs: usize,
    /// Windows per step.
    pub batch: usize,
    /// AdamW learning rate (cosine decay to 5 % over the run).
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Hidden widths.
    pub hidden: [usize; 2],
    /// Fraction of training windows below the anomaly threshold.
    pub anomaly_quantile: f64,
}

impl Default for SensorTrainOptions {
    fn default() -> Self {
        Self {
            seed: 1,
            epochs: 120,
            batch: 64,
            lr: 2e-3,
            weight_decay: 1e-3,
            hidden: [128, 64],
            anomaly_quantile: 0.995,
        }
    }
}

/// What training measured.
#[derive(Clone, Debug)]
pub struct TrainReport {
    /// Optimiser steps.
    pub steps: usize,
    /// Mean cross-entropy of the first and the last epoch (nats).
    pub loss_first_last: (f64, f64),
    /// Accuracy of the trained model on the training windows.
    pub train_accuracy: f64,
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

/// Trains a model on `data` (all windows of one shape). `progress(epoch, mean_loss)` is called
/// after each epoch.
pub fn train(
    data: &Labelled,
    channel_names: Vec<String>,
    opts: &SensorTrainOptions,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<(SensorModel, TrainReport), CodecError> {
    let first = data
        .windows
        .first()
        .ok_or_else(|| CodecError::Input("no training windows".into()))?;
    let (channels, len) = (first.channels(), first.len());
    if let Some(i) = data
        .windows
        .iter()
        .position(|w| w.channels() != channels || w.len() != len)
    {
        return Err(CodecError::Input(format!(
            "training window {i} is {} × {}, the first is {channels} × {len}: one shape per model",
            data.windows[i].channels(),
            data.windows[i].len()
        )));
    }
    if len < 2 {
        return Err(CodecError::Input("windows need at least 2 samples".into()));
    }
    let k = data.classes.len();
    if k == 0 || k > MAX_CLASSES {
        return Err(CodecError::Input(format!(
            "{k} classes: the event token names 1 … {MAX_CLASSES}"
        )));
    }
    let n = data.windows.len();
    let ex = Extractor::new(len);
    let nf = features::count(channels);
    let raw: Vec<Vec<f32>> = data.windows.iter().map(|w| ex.features(w)).collect();
    let mut mean = vec![0f64; nf];
    let mut var = vec![0f64; nf];
    for f in &raw {
        for (m, &v) in mean.iter_mut().zip(f) {
            *m += f64::from(v) / n as f64;
        }
    }
    for f in &raw {
        for ((s, m), &v) in var.iter_mut().zip(&mean).zip(f) {
            *s += (f64::from(v) - m).powi(2) / n as f64;
        }
    }
    let feat_mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
    let feat_std: Vec<f32> = var.iter().map(|&v| (v.sqrt() as f32).max(1e-6)).collect();
    // Reconstruction transforms, then the initial tables of their coder, measured on the
    // training windows coded at 5 % NRMSE.
    let mut recon = fit_transforms(data, channels, len);
    recon.tables = vec![1.0; recon::TABLES_LEN];
    let config = SensorConfig {
        channels,
        len,
        channel_names,
        classes: data.classes.clone(),
        hidden: opts.hidden,
        anomaly_threshold: f32::MAX,
    };
    let [h1, h2] = opts.hidden;
    let shapes = [(h1, nf), (h2, h1), (k, h2)];
    let placeholder = shapes.map(|(o, i)| Dense {
        w: vec![0.0; o * i],
        b: vec![0.0; o],
    });
    let draft = SensorModel::from_parts(
        config.clone(),
        feat_mean.clone(),
        feat_std.clone(),
        placeholder,
        recon.clone(),
    )?;
    let mut counts = vec![0f64; recon::TABLES_LEN];
    let mut reconstructed = Vec::with_capacity(n);
    for w in &data.windows {
        let (t, r) = recon::tokens(&draft, w, &[TABLE_TARGET])?;
        recon::count_symbols(&draft, &t, &mut counts);
        reconstructed.push(r);
    }
    recon.tables = tables_of(&counts);

    // Classifier: trained on the training windows and on their reconstructions, so that it
    // reads reconstructed windows as well as originals.
    let standardise = |f: &[f32]| -> Vec<f32> {
        f.iter()
            .zip(feat_mean.iter().zip(&feat_std))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
    };
    let mut z: Vec<f32> = raw.iter().flat_map(|f| standardise(f)).collect();
    for r in &reconstructed {
        z.extend(standardise(&ex.features(r)));
    }
    let rows = 2 * n;
    let dev = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut vars = Vec::new();
    for &(o, i) in &shapes {
        let bound = (6.0 / i as f32).sqrt() * 0.5;
        vars.push(Var::from_tensor(&Tensor::from_vec(
            uniform(&mut rng, o * i, bound),
            (o, i),
            &dev,
        )?)?);
        vars.push(Var::from_tensor(&Tensor::zeros(o, DType::F32, &dev)?)?);
    }
    let forward = |x: &Tensor| -> candle_core::Result<Tensor> {
        let a = x
            .matmul(&vars[0].as_tensor().t()?)?
            .broadcast_add(vars[1].as_tensor())?
            .relu()?;
        let a = a
            .matmul(&vars[2].as_tensor().t()?)?
            .broadcast_add(vars[3].as_tensor())?
            .relu()?;
        a.matmul(&vars[4].as_tensor().t()?)?.broadcast_add(vars[5].as_tensor())
    };
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: opts.weight_decay,
            ..Default::default()
        },
    )?;
    let x_all = Tensor::from_vec(z, (rows, nf), &dev)?;
    let y_all: Vec<u32> = data.labels.iter().chain(&data.labels).map(|&l| u32::from(l)).collect();
    let mut order: Vec<usize> = (0..rows).collect();
    let steps_per_epoch = rows.div_ceil(opts.batch.max(1));
    let total_steps = steps_per_epoch * opts.epochs;
    let (mut step, mut first_loss, mut last_loss) = (0usize, f64::NAN, f64::NAN);
    for epoch in 0..opts.epochs {
        order.shuffle(&mut rng);
        let mut sum = 0.0;
        for chunk in order.chunks(opts.batch.max(1)) {
            let idx = Tensor::from_vec(chunk.iter().map(|&i| i as u32).collect::<Vec<_>>(), chunk.len(), &dev)?;
            let xb = x_all.index_select(&idx, 0)?;
            let yb = Tensor::from_vec(chunk.iter().map(|&i| y_all[i]).collect::<Vec<_>>(), chunk.len(), &dev)?;
            let loss = candle_nn::loss::cross_entropy(&forward(&xb)?, &yb)?;
            let progress_frac = step as f64 / total_steps.max(1) as f64;
            opt.set_learning_rate(opts.lr * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress_frac).cos())));
            opt.backward_step(&loss)?;
            sum += f64::from(loss.to_scalar::<f32>()?) * chunk.len() as f64;
            step += 1;
        }
        let mean_loss = sum / rows as f64;
        if epoch == 0 {
            first_loss = mean_loss;
        }
        last_loss = mean_loss;
        progress(epoch, mean_loss);
    }
    let flat = |v: &Var| -> candle_core::Result<Vec<f32>> { v.as_tensor().flatten_all()?.to_vec1::<f32>() };
    let mlp = [
        Dense {
            w: flat(&vars[0])?,
            b: flat(&vars[1])?,
        },
        Dense {
            w: flat(&vars[2])?,
            b: flat(&vars[3])?,
        },
        Dense {
            w: flat(&vars[4])?,
            b: flat(&vars[5])?,
        },
    ];
    let mut model = SensorModel::from_parts(config, feat_mean, feat_std, mlp, recon)
        .map_err(|e| CodecError::Backend(format!("trained model is inconsistent: {e}")))?;
    let mut correct = 0usize;
    let mut dist = Vec::with_capacity(n);
    for (w, &l) in data.windows.iter().zip(&data.labels) {
        let a = model.assess(w)?;
        correct += usize::from(a.class == l);
        dist.push(a.distance);
    }
    dist.sort_by(f32::total_cmp);
    let q = ((opts.anomaly_quantile * n as f64).ceil() as usize).clamp(1, n) - 1;
    model.config.anomaly_threshold = dist[q];
    let model = SensorModel::from_parts(
        model.config.clone(),
        model.feat_mean.clone(),
        model.feat_std.clone(),
        model.mlp.clone(),
        model.recon_parts(),
    )?;
    Ok((
        model,
        TrainReport {
            steps: step,
            loss_first_last: (first_loss, last_loss),
            train_accuracy: correct as f64 / n as f64,
        },
    ))
}

/// NRMSE target at which the coder's initial tables are measured.
const TABLE_TARGET: f32 = 0.05;
/// Smallest share of a channel's within-window energy a reference must explain.
const MIN_REFERENCE_GAIN: f64 = 0.5;

/// Frequencies from counts: each table scaled to a total of about 2000, every symbol ≥ 1.
fn tables_of(counts: &[f64]) -> Vec<f32> {
    let mut out = vec![1f32; counts.len()];
    let mut fill = |range: std::ops::Range<usize>| {
        let total: f64 = counts[range.clone()].iter().sum();
        if total > 0.0 {
            for i in range {
                out[i] = (1.0 + 2000.0 * counts[i] / total).round() as f32;
            }
        }
    };
    fill(0..recon::STEPS);
    let sym = crate::telemetry::models::RESIDUAL_SYMBOLS;
    fill(recon::STEPS..recon::STEPS + sym);
    for c in 0..recon::COEF_CTX {
        let a = recon::STEPS + sym + c * sym;
        fill(a..a + sym);
    }
    out
}

/// References, KLTs and scales of every channel.
fn fit_transforms(data: &Labelled, channels: usize, len: usize) -> ReconParts {
    let n = data.windows.len();
    let mut p = ReconParts {
        klt_mean: vec![0.0; channels * len],
        klt_basis: vec![0.0; channels * len * len],
        klt_var: vec![0.0; channels * len],
        ref_index: vec![-1.0; channels],
        ref_gain: vec![0.0; channels],
        scale: vec![0.0; channels],
        tables: Vec::new(),
    };
    let ac = |x: &[f32]| -> Vec<f64> {
        let m = x.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        x.iter().map(|&v| f64::from(v) - m).collect()
    };
    for c in 0..channels {
        // The earlier channel explaining most of this one's within-window energy.
        let mut best: Option<(usize, f64, f64)> = None;
        for r in 0..c {
            let (mut sxy, mut sxx, mut syy) = (0f64, 0f64, 0f64);
            for w in &data.windows {
                let (y, x) = (ac(w.channel(c)), ac(w.channel(r)));
                for (a, b) in y.iter().zip(&x) {
                    sxy += a * b;
                    sxx += b * b;
                    syy += a * a;
                }
            }
            if sxx > 0.0 && syy > 0.0 {
                let rho2 = sxy * sxy / (sxx * syy);
                if rho2 > MIN_REFERENCE_GAIN && best.is_none_or(|b| rho2 > b.1) {
                    best = Some((r, rho2, sxy / sxx));
                }
            }
        }
        let residual_of = |w: &super::Window| -> Vec<f64> {
            let x = w.channel(c);
            match best {
                Some((r, _, g)) => x
                    .iter()
                    .zip(w.channel(r))
                    .map(|(&a, &b)| f64::from(a) - g * f64::from(b))
                    .collect(),
                None => x.iter().map(|&a| f64::from(a)).collect(),
            }
        };
        if let Some((r, _, g)) = best {
            p.ref_index[c] = r as f32;
            p.ref_gain[c] = g as f32;
        }
        let mut m = vec![0f64; len];
        let (mut s1, mut s2) = (0f64, 0f64);
        for w in &data.windows {
            for (a, v) in m.iter_mut().zip(residual_of(w)) {
                *a += v / n as f64;
            }
            for &v in w.channel(c) {
                s1 += f64::from(v);
                s2 += f64::from(v) * f64::from(v);
            }
        }
        let mut cov = vec![0f64; len * len];
        for w in &data.windows {
            let d: Vec<f64> = residual_of(w).iter().zip(&m).map(|(v, mi)| v - mi).collect();
            for i in 0..len {
                for j in i..len {
                    cov[i * len + j] += d[i] * d[j];
                }
            }
        }
        for i in 0..len {
            for j in i..len {
                let v = cov[i * len + j] / n as f64;
                cov[i * len + j] = v;
                cov[j * len + i] = v;
            }
        }
        let (values, rows) = symmetric_eigen(&cov, len);
        for (dst, &v) in p.klt_basis[c * len * len..(c + 1) * len * len].iter_mut().zip(&rows) {
            *dst = v as f32;
        }
        for (dst, &v) in p.klt_var[c * len..(c + 1) * len].iter_mut().zip(&values) {
            *dst = v.max(0.0) as f32;
        }
        // The reference is added back at decode time, so the mean is the residual's mean.
        for (dst, &v) in p.klt_mean[c * len..(c + 1) * len].iter_mut().zip(&m) {
            *dst = v as f32;
        }
        let count = (n * len) as f64;
        p.scale[c] = ((s2 / count - (s1 / count).powi(2)).max(0.0).sqrt() as f32).max(1e-9);
    }
    p
}
