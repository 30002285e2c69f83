//! The sensor model file: what `semcom train sensor` learns from a training split and both ends
//! of a link load.
//!
//! One safetensors file (f32 tensors, metadata `semcom.sensor` = the config JSON):
//!
//! - `feat.mean`, `feat.std`: standardisation of the [`super::features`] vector;
//! - `mlp.{0,1,2}.{w,b}`: the event classifier, features → 128 → 64 → classes (ReLU);
//! - `klt.mean` (channels × len), `klt.basis` (channels × len × len, rows strongest first),
//!   `klt.var` (channels × len, the eigenvalues): the per-channel Karhunen–Loève transforms of
//!   reconstruction mode;
//! - `ref.index`, `ref.gain` (channels): the earlier channel each channel is predicted from (−1:
//!   none) and the gain;
//! - `scale` (channels): each channel's standard deviation over the training split, the unit in
//!   which reconstruction error targets are set (NRMSE);
//! - `recon.tables`: initial symbol frequencies of the reconstruction coder.
//!
//! Inference runs in plain Rust on these weights (no candle on the coding path), so encoding is
//! deterministic and fast on one core.

use super::features::{self, Extractor};
use super::Window;
use crate::frame::ModelId;
use crate::CodecError;
use serde::{Deserialize, Serialize};

/// Metadata value of `semcom.kind` for sensor models.
pub const KIND: &str = "sensor";
/// The one metadata key (its value: the config JSON). One key, because safetensors writes the
/// metadata map in hash order: with two, the same model could be written as different bytes.
const META_CONFIG: &str = "semcom.sensor";
/// Longest window a model may be trained for (its KLT basis is len × len per channel).
pub const MAX_MODEL_LEN: usize = 4096;
/// Widest hidden layer a model file may declare.
pub const MAX_HIDDEN: usize = 4096;
/// Most classes the one-byte event token can name.
pub const MAX_CLASSES: usize = 8;

/// Shape and bookkeeping of a sensor model (stored as JSON metadata).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SensorConfig {
    /// Channels per window.
    pub channels: usize,
    /// Samples per channel.
    pub len: usize,
    /// Channel names.
    pub channel_names: Vec<String>,
    /// Class names (≤ [`MAX_CLASSES`]).
    pub classes: Vec<String>,
    /// Hidden widths of the classifier.
    pub hidden: [usize; 2],
    /// RMS of standardised features above which a window is flagged anomalous.
    pub anomaly_threshold: f32,
}

/// A dense layer, `out × in` row-major.
#[derive(Clone, Debug)]
pub struct Dense {
    /// Weights, `out × in`.
    pub w: Vec<f32>,
    /// Biases, `out`.
    pub b: Vec<f32>,
}

impl Dense {
    fn apply(&self, x: &[f32], relu: bool) -> Vec<f32> {
        let n_in = x.len();
        self.b
            .iter()
            .enumerate()
            .map(|(o, &b)| {
                let row = &self.w[o * n_in..(o + 1) * n_in];
                let s = row.iter().zip(x).fold(b, |s, (w, v)| s + w * v);
                if relu {
                    s.max(0.0)
                } else {
                    s
                }
            })
            .collect()
    }
}

/// A loaded (or freshly trained) sensor model.
#[derive(Clone, Debug)]
pub struct SensorModel {
    /// Shape and class names.
    pub config: SensorConfig,
    /// Feature standardisation: mean.
    pub feat_mean: Vec<f32>,
    /// Feature standardisation: standard deviation.
    pub feat_std: Vec<f32>,
    /// Classifier layers.
    pub mlp: [Dense; 3],
    /// Per-channel mean window, `channels × len`.
    pub klt_mean: Vec<f32>,
    /// Per-channel KLT bases, `channels × len × len`, rows strongest first.
    pub klt_basis: Vec<f32>,
    /// Per-channel KLT eigenvalues, `channels × len`.
    pub klt_var: Vec<f32>,
    /// Reference channel of each channel (−1: none).
    pub ref_index: Vec<f32>,
    /// Gain on the reference channel.
    pub ref_gain: Vec<f32>,
    /// Per-channel standard deviation over the training split.
    pub scale: Vec<f32>,
    /// Initial frequency tables of the reconstruction coder ([`super::recon::TABLES_LEN`]).
    pub tables: Vec<f32>,
    extractor: Extractor,
    id: ModelId,
}

/// What the classifier says about a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assessment {
    /// Most likely class.
    pub class: u8,
    /// Its posterior probability.
    pub confidence: f32,
    /// RMS of the standardised features (distance from the training data).
    pub distance: f32,
    /// `distance` above the model's threshold.
    pub anomaly: bool,
}

fn bad(path: &str, reason: impl Into<String>) -> CodecError {
    CodecError::Model {
        path: path.to_string(),
        reason: reason.into(),
    }
}

/// The reconstruction-mode tensors of a model.
#[derive(Clone, Debug, Default)]
pub struct ReconParts {
    /// See [`SensorModel::klt_mean`].
    pub klt_mean: Vec<f32>,
    /// See [`SensorModel::klt_basis`].
    pub klt_basis: Vec<f32>,
    /// See [`SensorModel::klt_var`].
    pub klt_var: Vec<f32>,
    /// See [`SensorModel::ref_index`].
    pub ref_index: Vec<f32>,
    /// See [`SensorModel::ref_gain`].
    pub ref_gain: Vec<f32>,
    /// See [`SensorModel::scale`].
    pub scale: Vec<f32>,
    /// See [`SensorModel::tables`].
    pub tables: Vec<f32>,
}

impl SensorModel {
    /// Assembles a model and checks that every tensor has the shape the config implies.
    pub fn from_parts(
        config: SensorConfig,
        feat_mean: Vec<f32>,
        feat_std: Vec<f32>,
        mlp: [Dense; 3],
        recon: ReconParts,
    ) -> Result<Self, CodecError> {
        let ReconParts {
            klt_mean,
            klt_basis,
            klt_var,
            ref_index,
            ref_gain,
            scale,
            tables,
        } = recon;
        let c = &config;
        // Bounds first, so that the sizes below cannot overflow whatever a file declares.
        if c.channels > super::MAX_CHANNELS || c.len > MAX_MODEL_LEN || c.hidden.iter().any(|&h| h > MAX_HIDDEN) {
            return Err(bad(
                "<sensor model>",
                format!(
                    "shape {} channels × {} samples, hidden {:?} exceeds {} × {MAX_MODEL_LEN}, {MAX_HIDDEN}",
                    c.channels,
                    c.len,
                    c.hidden,
                    super::MAX_CHANNELS
                ),
            ));
        }
        let f = features::count(c.channels);
        let [h1, h2] = c.hidden;
        let k = c.classes.len();
        let checks = [
            ("feat.mean", feat_mean.len(), f),
            ("feat.std", feat_std.len(), f),
            ("mlp.0.w", mlp[0].w.len(), h1 * f),
            ("mlp.0.b", mlp[0].b.len(), h1),
            ("mlp.1.w", mlp[1].w.len(), h2 * h1),
            ("mlp.1.b", mlp[1].b.len(), h2),
            ("mlp.2.w", mlp[2].w.len(), k * h2),
            ("mlp.2.b", mlp[2].b.len(), k),
            ("klt.mean", klt_mean.len(), c.channels * c.len),
            ("klt.basis", klt_basis.len(), c.channels * c.len * c.len),
            ("klt.var", klt_var.len(), c.channels * c.len),
            ("ref.index", ref_index.len(), c.channels),
            ("ref.gain", ref_gain.len(), c.channels),
            ("scale", scale.len(), c.channels),
            ("recon.tables", tables.len(), super::recon::TABLES_LEN),
        ];
        for (name, got, want) in checks {
            if got != want {
                return Err(bad(
                    "<sensor model>",
                    format!("{name} has {got} values, expected {want}"),
                ));
            }
        }
        if c.channels == 0 || c.len < 2 || k == 0 || k > MAX_CLASSES || h1 == 0 || h2 == 0 {
            return Err(bad(
                "<sensor model>",
                format!(
                    "bad shape: {} channels × {} samples, {k} classes (1 … {MAX_CLASSES}), hidden {h1}/{h2}",
                    c.channels, c.len
                ),
            ));
        }
        let all = feat_mean
            .iter()
            .chain(&feat_std)
            .chain(mlp.iter().flat_map(|d| d.w.iter().chain(&d.b)))
            .chain(&klt_mean)
            .chain(&klt_basis)
            .chain(&klt_var)
            .chain(&ref_gain)
            .chain(&tables)
            .chain(&scale);
        if all.clone().any(|v| !v.is_finite()) || feat_std.iter().chain(&scale).any(|&s| !(s > 0.0)) {
            return Err(bad("<sensor model>", "non-finite weights or non-positive scales"));
        }
        if klt_var.iter().any(|&v| v < 0.0) {
            return Err(bad("<sensor model>", "negative KLT eigenvalues"));
        }
        if let Some(c) = (0..c.channels).find(|&i| {
            let r = ref_index[i];
            !(r == -1.0 || (r >= 0.0 && r < i as f32 && r.fract() == 0.0))
        }) {
            return Err(bad(
                "<sensor model>",
                format!("channel {c}: reference {} is not an earlier channel", ref_index[c]),
            ));
        }
        let extractor = Extractor::new(c.len);
        let mut m = Self {
            config,
            feat_mean,
            feat_std,
            mlp,
            klt_mean,
            klt_basis,
            klt_var,
            ref_index,
            ref_gain,
            scale,
            tables,
            extractor,
            id: ModelId(0),
        };
        m.id = ModelId::of_bytes(&m.to_bytes()?);
        Ok(m)
    }

    /// The model id frames carry (first 4 bytes of SHA-256 of the file).
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// Checks that `w` has this model's shape.
    pub fn check(&self, w: &Window) -> Result<(), CodecError> {
        if w.channels() != self.config.channels || w.len() != self.config.len {
            return Err(CodecError::Input(format!(
                "window has {} channel(s) × {} samples but the sensor model expects {} × {}",
                w.channels(),
                w.len(),
                self.config.channels,
                self.config.len
            )));
        }
        Ok(())
    }

    /// Standardised features of `w`.
    pub fn features(&self, w: &Window) -> Result<Vec<f32>, CodecError> {
        self.check(w)?;
        Ok(self
            .extractor
            .features(w)
            .iter()
            .zip(self.feat_mean.iter().zip(&self.feat_std))
            .map(|(x, (m, s))| (x - m) / s)
            .collect())
    }

    /// Class posterior of a standardised feature vector.
    pub fn posterior(&self, z: &[f32]) -> Vec<f32> {
        let h = self.mlp[0].apply(z, true);
        let h = self.mlp[1].apply(&h, true);
        let logits = self.mlp[2].apply(&h, false);
        let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = logits.iter().map(|l| (l - top).exp()).collect();
        let s: f32 = e.iter().sum();
        e.iter().map(|v| v / s).collect()
    }

    /// Classifies `w` and measures how far it lies from the training data.
    pub fn assess(&self, w: &Window) -> Result<Assessment, CodecError> {
        let z = self.features(w)?;
        let p = self.posterior(&z);
        let (class, &confidence) = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap_or((0, &0.0));
        // Clamp so that one wild feature cannot dominate the distance through overflow.
        let distance = (z.iter().map(|v| v.clamp(-1e6, 1e6).powi(2)).sum::<f32>() / z.len() as f32).sqrt();
        Ok(Assessment {
            class: class as u8,
            confidence,
            distance,
            anomaly: distance > self.config.anomaly_threshold,
        })
    }

    /// The KLT basis of channel `c` (`len × len`, rows strongest first).
    pub fn basis(&self, c: usize) -> &[f32] {
        let n = self.config.len;
        &self.klt_basis[c * n * n..(c + 1) * n * n]
    }

    /// The KLT eigenvalues of channel `c`.
    pub fn variances(&self, c: usize) -> &[f32] {
        let n = self.config.len;
        &self.klt_var[c * n..(c + 1) * n]
    }

    /// The reference channel of channel `c` and its gain.
    pub fn reference(&self, c: usize) -> Option<(usize, f32)> {
        let r = self.ref_index[c];
        (r >= 0.0).then(|| (r as usize, self.ref_gain[c]))
    }

    /// The reconstruction tensors (a copy).
    pub fn recon_parts(&self) -> ReconParts {
        ReconParts {
            klt_mean: self.klt_mean.clone(),
            klt_basis: self.klt_basis.clone(),
            klt_var: self.klt_var.clone(),
            ref_index: self.ref_index.clone(),
            ref_gain: self.ref_gain.clone(),
            scale: self.scale.clone(),
            tables: self.tables.clone(),
        }
    }

    /// The mean window of channel `c`.
    pub fn mean(&self, c: usize) -> &[f32] {
        let n = self.config.len;
        &self.klt_mean[c * n..(c + 1) * n]
    }

    /// The model file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let c = &self.config;
        let f = features::count(c.channels);
        let (h1, h2, k) = (c.hidden[0], c.hidden[1], c.classes.len());
        let mut tensors: Vec<(String, Vec<usize>, &[f32])> = vec![
            ("feat.mean".into(), vec![f], &self.feat_mean),
            ("feat.std".into(), vec![f], &self.feat_std),
            ("mlp.0.w".into(), vec![h1, f], &self.mlp[0].w),
            ("mlp.0.b".into(), vec![h1], &self.mlp[0].b),
            ("mlp.1.w".into(), vec![h2, h1], &self.mlp[1].w),
            ("mlp.1.b".into(), vec![h2], &self.mlp[1].b),
            ("mlp.2.w".into(), vec![k, h2], &self.mlp[2].w),
            ("mlp.2.b".into(), vec![k], &self.mlp[2].b),
            ("klt.mean".into(), vec![c.channels, c.len], &self.klt_mean),
            ("klt.basis".into(), vec![c.channels, c.len, c.len], &self.klt_basis),
            ("klt.var".into(), vec![c.channels, c.len], &self.klt_var),
            ("ref.index".into(), vec![c.channels], &self.ref_index),
            ("ref.gain".into(), vec![c.channels], &self.ref_gain),
            ("scale".into(), vec![c.channels], &self.scale),
            ("recon.tables".into(), vec![super::recon::TABLES_LEN], &self.tables),
        ];
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        crate::modelfile::to_bytes(META_CONFIG, &self.config, &tensors)
    }

    /// Loads a model from a file's bytes (`path` names it in errors).
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, CodecError> {
        let (config, t): (SensorConfig, _) = crate::modelfile::from_bytes(bytes, path, META_CONFIG, KIND)?;
        let get = |name: &str| t.get(name);
        let dense = |i: usize| -> Result<Dense, CodecError> {
            Ok(Dense {
                w: get(&format!("mlp.{i}.w"))?,
                b: get(&format!("mlp.{i}.b"))?,
            })
        };
        let m = Self::from_parts(
            config,
            get("feat.mean")?,
            get("feat.std")?,
            [dense(0)?, dense(1)?, dense(2)?],
            ReconParts {
                klt_mean: get("klt.mean")?,
                klt_basis: get("klt.basis")?,
                klt_var: get("klt.var")?,
                ref_index: get("ref.index")?,
                ref_gain: get("ref.gain")?,
                scale: get("scale")?,
                tables: get("recon.tables")?,
            },
        )
        .map_err(|e| match e {
            CodecError::Model { reason, .. } => bad(path, reason),
            e => e,
        })?;
        Ok(Self {
            id: ModelId::of_bytes(bytes),
            ..m
        })
    }

    /// Loads a model file.
    pub fn load(path: &std::path::Path) -> Result<Self, CodecError> {
        let bytes = std::fs::read(path).map_err(|source| CodecError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }
}
