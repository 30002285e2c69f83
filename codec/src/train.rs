//! Training the text prior with candle: corpus loading and splitting, BPE, seeded
//! initialisation, AdamW with warm-up and cosine decay, held-out evaluation.
//!
//! Rows of a batch are of two kinds, matching how the prior is used: *isolated* rows pack
//! several messages, each attending only to itself with positions restarting at its `BOS` (a
//! message coded on its own), and *stream* rows hold consecutive messages of one file under a
//! plain causal mask (a [`crate::text::TextStream`]).

use crate::bpe::Bpe;
use crate::prior::{Config, Model, Prior};
use crate::vocab::{BOS, EOS, FIRST_MERGE, TAG_LOG, TAG_TEXT};
use crate::CodecError;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// The lines of a text file, without line ends (LF or CRLF) and without empty lines.
pub fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
        .collect()
}

/// Splits a file's lines into training (first 80 %) and held-out (last 20 %) parts.
pub fn split_lines<T: Clone>(lines: &[T]) -> (Vec<T>, Vec<T>) {
    let cut = lines.len() - lines.len() / 5;
    (lines[..cut].to_vec(), lines[cut..].to_vec())
}

/// One file of a corpus.
#[derive(Clone, Debug)]
pub struct TextFile {
    /// Short name (loghub system, corpus).
    pub name: String,
    /// Context tag of its lines.
    pub tag: u32,
    /// Training lines.
    pub train: Vec<Vec<u8>>,
    /// Held-out lines (empty for extra training text).
    pub heldout: Vec<Vec<u8>>,
    /// True for training-only extra text.
    pub extra: bool,
}

/// Text files found under `path` (a file, or a directory searched recursively): `*.log` are
/// log files; `*.txt`, `*.en` and files without extension are free text; `*.csv`, `*.md` and
/// others are skipped. Sorted by path.
pub fn find_text_files(path: &Path) -> Result<Vec<PathBuf>, CodecError> {
    let io = |e| CodecError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| CodecError::Io {
            path: d.display().to_string(),
            source: e,
        })? {
            let p = e
                .map_err(|e| CodecError::Io {
                    path: d.display().to_string(),
                    source: e,
                })?
                .path();
            if p.is_dir() {
                dirs.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("log" | "txt" | "en")) {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(CodecError::Input(format!(
            "{}: no .log, .txt or .en files",
            path.display()
        )));
    }
    Ok(out)
}

/// The tag of a file's lines: log files are `*.log`.
pub fn tag_of(path: &Path) -> u32 {
    if path.extension().and_then(|e| e.to_str()) == Some("log") {
        TAG_LOG
    } else {
        TAG_TEXT
    }
}

/// A short name: the file stem without a `_2k` suffix (loghub's naming).
pub fn name_of(path: &Path) -> String {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
    stem.strip_suffix("_2k").unwrap_or(stem).to_string()
}

/// Loads a corpus: `data` files are split 80/20 into training and held-out lines; `extra` files
/// are training text only.
pub fn load_corpus(data: &[PathBuf], extra: &[PathBuf]) -> Result<Vec<TextFile>, CodecError> {
    let mut files = Vec::new();
    for (paths, is_extra) in [(data, false), (extra, true)] {
        for root in paths {
            for p in find_text_files(root)? {
                let bytes = std::fs::read(&p).map_err(|e| CodecError::Io {
                    path: p.display().to_string(),
                    source: e,
                })?;
                let all: Vec<Vec<u8>> = lines(&bytes).into_iter().map(<[u8]>::to_vec).collect();
                let (train, heldout) = if is_extra { (all, Vec::new()) } else { split_lines(&all) };
                files.push(TextFile {
                    name: name_of(&p),
                    tag: tag_of(&p),
                    train,
                    heldout,
                    extra: is_extra,
                });
            }
        }
    }
    if files.iter().all(|f| f.train.is_empty()) {
        return Err(CodecError::Input("the corpus holds no text".into()));
    }
    Ok(files)
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// Model dimensions (`vocab_size` is set from `merges`).
    pub model: Config,
    /// BPE merges (the text vocabulary is 288 + merges).
    pub merges: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Rows per batch.
    pub batch: usize,
    /// Tokens per row.
    pub seq_len: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up steps.
    pub warmup: usize,
    /// AdamW weight decay (matrices only).
    pub weight_decay: f64,
    /// Seed of initialisation and batch sampling.
    pub seed: u64,
    /// Fraction of rows that are stream rows.
    pub stream_fraction: f64,
    /// Sampling weight of log files, held-out text files and extra text (normalised).
    pub mix: [f64; 3],
    /// Held-out evaluation every this many steps (0: only at the end).
    pub eval_every: usize,
    /// Held-out messages per file in intermediate evaluations (all at the end).
    pub eval_sample: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            model: Config::small(0),
            merges: 1760,
            steps: 6000,
            batch: 16,
            seq_len: 128,
            lr: 2e-3,
            warmup: 200,
            weight_decay: 0.1,
            seed: 1,
            stream_fraction: 0.2,
            mix: [0.55, 0.25, 0.2],
            eval_every: 500,
            eval_sample: 40,
        }
    }
}

/// Held-out bits per character of one file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct HeldOut {
    /// File name.
    pub name: String,
    /// Messages evaluated.
    pub messages: usize,
    /// Bits per character (cross-entropy of tag, tokens and EOS over the message's bytes).
    pub bits_per_char: f64,
}

/// Where training is.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Steps done.
    pub step: usize,
    /// Of this many.
    pub steps: usize,
    /// Training loss of the last step (bits per token).
    pub loss_bits: f64,
    /// Tokens trained on per second so far.
    pub tokens_per_s: f64,
    /// Held-out figures, when this step evaluated.
    pub heldout: Option<Vec<HeldOut>>,
}

/// What training produced.
#[derive(Debug)]
pub struct Trained {
    /// The model file's bytes.
    pub file: Vec<u8>,
    /// Final held-out figures (every held-out message).
    pub heldout: Vec<HeldOut>,
    /// Training loss (bits per token) averaged over the last 100 steps.
    pub final_loss_bits: f64,
    /// Training loss (bits per token) averaged over the first 10 steps.
    pub initial_loss_bits: f64,
    /// Tokens trained on.
    pub tokens: u64,
    /// Device used.
    pub device: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

struct Tokenised {
    tag: u32,
    train: Vec<Vec<u32>>,
    heldout: Vec<(Vec<u32>, usize)>,
    weight: f64,
}

/// One batch, on the host.
struct Batch {
    tokens: Vec<u32>,
    targets: Vec<u32>,
    positions: Vec<u32>,
    weights: Vec<f32>,
    mask: Vec<f32>,
}

impl Batch {
    fn new(rows: usize, t: usize) -> Self {
        Self {
            tokens: vec![0; rows * t],
            targets: vec![0; rows * t],
            positions: vec![0; rows * t],
            weights: vec![0.0; rows * t],
            mask: vec![f32::NEG_INFINITY; rows * t * t],
        }
    }

    /// Writes row `r` from `seq` (≤ t + 1 tokens) cut into segments `(start, len)`: positions
    /// restart and attention stops at each segment start; isolated or one causal segment.
    fn row(&mut self, r: usize, t: usize, seq: &[u32], segments: &[(usize, usize)]) {
        for &(s0, len) in segments {
            for i in s0..s0 + len {
                if i + 1 >= seq.len() || i >= t {
                    break;
                }
                self.tokens[r * t + i] = seq[i];
                self.targets[r * t + i] = seq[i + 1];
                self.positions[r * t + i] = (i - s0) as u32;
                // No loss on predicting the next message's BOS: never coded.
                self.weights[r * t + i] = if seq[i + 1] == BOS { 0.0 } else { 1.0 };
                for j in s0..=i {
                    self.mask[(r * t + i) * t + j] = 0.0;
                }
            }
        }
        // Padding attends to itself only (keeps the softmax finite; weight 0).
        for i in 0..t {
            if self.weights[r * t + i] == 0.0 && self.mask[(r * t + i) * t..][..t].iter().all(|&m| m != 0.0) {
                self.mask[(r * t + i) * t + i] = 0.0;
            }
        }
    }

    fn tensors(&self, rows: usize, t: usize, dev: &Device) -> candle_core::Result<[Tensor; 5]> {
        Ok([
            Tensor::from_slice(&self.tokens, (rows, t), dev)?,
            Tensor::from_slice(&self.positions, (rows, t), dev)?,
            Tensor::from_slice(&self.mask, (rows, 1, t, t), dev)?,
            Tensor::from_slice(&self.targets, (rows, t), dev)?,
            Tensor::from_slice(&self.weights, (rows, t), dev)?,
        ])
    }
}

/// The n-gram memory of a corpus's training lines, tokenised with `bpe`: each file's messages
/// one after another (`BOS tag … EOS`), the way the coders see them, so that both isolated
/// messages and streams find their contexts. Extra files are left out unless `with_extra`.
pub fn build_ngram(
    files: &[TextFile],
    bpe: &Bpe,
    with_extra: bool,
    order: usize,
    min_count: u32,
    beta16: u32,
    gamma16: u32,
) -> Result<crate::prior::ngram::NGram, CodecError> {
    let seqs: Vec<Vec<u32>> = files
        .iter()
        .filter(|f| with_extra || !f.extra)
        .map(|f| f.train.iter().flat_map(|l| message(f.tag, &bpe.encode(l))).collect())
        .collect();
    crate::prior::ngram::NGram::build(seqs.iter().map(Vec::as_slice), order, min_count, beta16, gamma16)
}

fn message(tag: u32, body: &[u32]) -> Vec<u32> {
    let mut m = Vec::with_capacity(body.len() + 3);
    m.push(BOS);
    m.push(tag);
    m.extend_from_slice(body);
    m.push(EOS);
    m
}

fn pick_file(files: &[Tokenised], rng: &mut ChaCha8Rng) -> usize {
    let total: f64 = files.iter().map(|f| f.weight).sum();
    let mut u = rng.random::<f64>() * total;
    for (i, f) in files.iter().enumerate() {
        if u < f.weight {
            return i;
        }
        u -= f.weight;
    }
    files.len() - 1
}

/// Initialises every variable from the seed: matrices and embeddings N(0, 0.02) (residual
/// projections scaled by 1/√(2·layers)), biases 0, LayerNorm gains 1.
fn init_vars(vm: &VarMap, cfg: &Config, seed: u64) -> Result<(), CodecError> {
    let data = vm
        .data()
        .lock()
        .map_err(|_| CodecError::Backend("variable map poisoned".into()))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005E_ED0F_1A17);
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with(".bias") {
            vec![0.0; n]
        } else if name.contains("ln") {
            vec![1.0; n]
        } else {
            let std = if name.ends_with("proj.weight") || name.ends_with("ff2.weight") {
                0.02 / (2.0 * cfg.n_layers as f64).sqrt()
            } else {
                0.02
            };
            (0..n)
                .map(|_| {
                    // Box–Muller from two uniforms: seeded and platform independent.
                    let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
                    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * std) as f32
                })
                .collect()
        };
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?)?;
    }
    Ok(())
}

/// A named training variable.
type Named = (String, Var);
/// Segments of a packed row: (start, length).
type Segments = Vec<(usize, usize)>;

/// Trains a prior on `files`, calling `progress` after every step.
pub fn train(
    files: &[TextFile],
    opts: &TrainOptions,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Trained, CodecError> {
    let started = std::time::Instant::now();
    let bpe = Bpe::train(
        files.iter().flat_map(|f| f.train.iter().map(Vec::as_slice)),
        opts.merges,
    );
    let mut cfg = opts.model.clone();
    cfg.vocab_size = FIRST_MERGE as usize + bpe.merges().len() + cfg.image_tokens + cfg.sensor_tokens;
    cfg.max_len = cfg.max_len.max(opts.seq_len);
    cfg.validate()
        .map_err(|r| CodecError::Input(format!("model configuration: {r}")))?;

    // Tokenise; sampling weights per file from the mix (equal shares within a kind).
    let kind = |f: &TextFile| {
        if f.extra {
            2
        } else if f.tag == TAG_LOG {
            0
        } else {
            1
        }
    };
    let counts = [0, 1, 2].map(|k| files.iter().filter(|f| kind(f) == k && !f.train.is_empty()).count());
    let tok: Vec<Tokenised> = files
        .iter()
        .map(|f| {
            let k = kind(f);
            Tokenised {
                tag: f.tag,
                train: f.train.iter().map(|l| bpe.encode(l)).collect(),
                heldout: f.heldout.iter().map(|l| (bpe.encode(l), l.len())).collect(),
                weight: if f.train.is_empty() {
                    0.0
                } else {
                    opts.mix[k] / counts[k].max(1) as f64
                },
            }
        })
        .collect();

    let dev = Device::cuda_if_available(0)?;
    let vm = VarMap::new();
    let model = Model::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    init_vars(&vm, &cfg, opts.seed)?;
    let (decay, no_decay): (Vec<Named>, Vec<Named>) = {
        let data = vm
            .data()
            .lock()
            .map_err(|_| CodecError::Backend("variable map poisoned".into()))?;
        let mut all: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all.into_iter()
            .partition(|(k, _)| k.ends_with(".weight") && !k.contains("ln"))
    };
    let params = |wd| ParamsAdamW {
        lr: opts.lr,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: wd,
    };
    let mut opt_decay = AdamW::new(decay.iter().map(|v| v.1.clone()).collect(), params(opts.weight_decay))?;
    let mut opt_plain = AdamW::new(no_decay.iter().map(|v| v.1.clone()).collect(), params(0.0))?;
    let all_vars: Vec<Var> = decay.iter().chain(&no_decay).map(|v| v.1.clone()).collect();

    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let (rows, t) = (opts.batch, opts.seq_len);
    let mut tokens_seen = 0u64;
    let mut losses = Vec::with_capacity(opts.steps);
    tracing::info!(setup_s = started.elapsed().as_secs_f64(), "training starts");
    let loop_started = std::time::Instant::now();
    for step in 0..opts.steps {
        let lr = schedule(opts, step);
        opt_decay.set_learning_rate(lr);
        opt_plain.set_learning_rate(lr);
        let batch = sample_batch(&tok, rows, t, opts.stream_fraction, &mut rng);
        tokens_seen += batch.weights.iter().filter(|&&w| w > 0.0).count() as u64;
        let [x, pos, mask, y, w] = batch.tensors(rows, t, &dev)?;
        let loss = model.loss(&x, &pos, &mask, &y, &w)?;
        let mut grads = loss.backward()?;
        clip_gradients(&mut grads, &all_vars, 1.0)?;
        opt_decay.step(&grads)?;
        opt_plain.step(&grads)?;
        let loss_bits = f64::from(loss.to_scalar::<f32>()?) / std::f64::consts::LN_2;
        if !loss_bits.is_finite() {
            return Err(CodecError::Backend(format!(
                "training diverged at step {step} (loss {loss_bits})"
            )));
        }
        losses.push(loss_bits);
        let last = step + 1 == opts.steps;
        let heldout = if !last && opts.eval_every > 0 && (step + 1) % opts.eval_every == 0 {
            Some(evaluate(&model, files, &tok, Some(opts.eval_sample), t, &dev)?)
        } else {
            None
        };
        progress(&Progress {
            step: step + 1,
            steps: opts.steps,
            loss_bits,
            tokens_per_s: tokens_seen as f64 / loop_started.elapsed().as_secs_f64(),
            heldout,
        });
        tracing::debug!(
            step,
            loss_bits,
            elapsed_s = loop_started.elapsed().as_secs_f64(),
            "step"
        );
    }
    let heldout = evaluate(&model, files, &tok, None, t, &dev)?;
    let tensors = {
        let data = vm
            .data()
            .lock()
            .map_err(|_| CodecError::Backend("variable map poisoned".into()))?;
        data.iter()
            .map(|(k, v)| Ok((k.clone(), v.as_tensor().to_device(&Device::Cpu)?)))
            .collect::<candle_core::Result<_>>()?
    };
    let file = Prior::file_bytes(&tensors, &cfg, &bpe)?;
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    Ok(Trained {
        file,
        heldout,
        final_loss_bits: mean(&losses[losses.len().saturating_sub(100)..]),
        initial_loss_bits: mean(&losses[..losses.len().min(10)]),
        tokens: tokens_seen,
        device: format!("{dev:?}"),
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn schedule(opts: &TrainOptions, step: usize) -> f64 {
    if step < opts.warmup {
        return opts.lr * (step + 1) as f64 / opts.warmup as f64;
    }
    let p = (step - opts.warmup) as f64 / (opts.steps - opts.warmup).max(1) as f64;
    opts.lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()))
}

fn clip_gradients(grads: &mut candle_core::backprop::GradStore, vars: &[Var], max_norm: f64) -> Result<(), CodecError> {
    let mut sq = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            sq += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
        }
    }
    let norm = sq.sqrt();
    if norm > max_norm {
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), (g * (max_norm / norm))?);
            }
        }
    }
    Ok(())
}

fn sample_batch(files: &[Tokenised], rows: usize, t: usize, stream_fraction: f64, rng: &mut ChaCha8Rng) -> Batch {
    let mut b = Batch::new(rows, t);
    for r in 0..rows {
        let mut seq = Vec::with_capacity(t + 1);
        let mut segs = Vec::new();
        if rng.random::<f64>() < stream_fraction {
            let f = &files[pick_file(files, rng)];
            let mut i = rng.random_range(0..f.train.len());
            while seq.len() < t + 1 {
                seq.extend(message(f.tag, &f.train[i]));
                i = (i + 1) % f.train.len();
            }
            seq.truncate(t + 1);
            segs.push((0, t));
        } else {
            for attempt in 0..4 {
                let f = &files[pick_file(files, rng)];
                let m = message(f.tag, &f.train[rng.random_range(0..f.train.len())]);
                if seq.len() + m.len() <= t + 1 || (seq.is_empty() && attempt == 0) {
                    segs.push((seq.len(), m.len().min(t + 1 - seq.len())));
                    seq.extend_from_slice(&m[..m.len().min(t + 1 - seq.len())]);
                }
                if seq.len() >= t {
                    break;
                }
            }
        }
        b.row(r, t, &seq, &segs);
    }
    b
}

/// Held-out bits per character of each data file (a sample of `sample` messages per file, or
/// all), isolated messages packed into rows.
fn evaluate(
    model: &Model,
    files: &[TextFile],
    tok: &[Tokenised],
    sample: Option<usize>,
    t: usize,
    dev: &Device,
) -> Result<Vec<HeldOut>, CodecError> {
    let mut out = Vec::new();
    for (f, tf) in files.iter().zip(tok) {
        if tf.heldout.is_empty() {
            continue;
        }
        let n = sample.map_or(tf.heldout.len(), |s| s.min(tf.heldout.len()));
        let stride = tf.heldout.len() / n;
        let msgs: Vec<&(Vec<u32>, usize)> = (0..n).map(|i| &tf.heldout[i * stride]).collect();
        let (mut bits, mut chars) = (0f64, 0usize);
        // Messages longer than a row are scored over their first t tokens, per character
        // covered; the coder itself handles any length.
        let rows_per_batch = 16;
        let mut packed: Vec<(Vec<u32>, Segments)> = Vec::new();
        for (body, len) in &msgs {
            let m = message(tf.tag, body);
            let covered = if m.len() <= t + 1 { *len } else { (*len * t) / m.len() };
            chars += covered;
            let m = &m[..m.len().min(t + 1)];
            match packed.last_mut() {
                Some((seq, segs)) if seq.len() + m.len() <= t + 1 => {
                    segs.push((seq.len(), m.len()));
                    seq.extend_from_slice(m);
                }
                _ => packed.push((m.to_vec(), vec![(0, m.len())])),
            }
        }
        for chunk in packed.chunks(rows_per_batch) {
            let mut b = Batch::new(chunk.len(), t);
            for (r, (seq, segs)) in chunk.iter().enumerate() {
                b.row(r, t, seq, segs);
            }
            let [x, pos, mask, y, w] = b.tensors(chunk.len(), t, dev)?;
            let lp = model.target_log_probs(&x, &pos, &mask, &y)?;
            let s = (lp * w)?.sum_all()?.to_scalar::<f32>()?;
            bits -= f64::from(s) / std::f64::consts::LN_2;
        }
        out.push(HeldOut {
            name: f.name.clone(),
            messages: n,
            bits_per_char: bits / chars.max(1) as f64,
        });
    }
    Ok(out)
}

/// The file bytes of an untrained prior with seeded weights (tests and benchmarks that need a
/// model but must not train one).
pub fn untrained_prior(cfg: &Config, bpe: &Bpe, seed: u64) -> Result<Vec<u8>, CodecError> {
    cfg.validate()
        .map_err(|r| CodecError::Input(format!("model configuration: {r}")))?;
    let dev = Device::Cpu;
    let vm = VarMap::new();
    let _model = Model::new(cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    init_vars(&vm, cfg, seed)?;
    let tensors = {
        let data = vm
            .data()
            .lock()
            .map_err(|_| CodecError::Backend("variable map poisoned".into()))?;
        data.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect()
    };
    Prior::file_bytes(&tensors, cfg, bpe)
}
