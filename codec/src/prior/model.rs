//! The prior as a candle model: a small causal transformer (pre-LayerNorm, learned positions,
//! GELU MLP), `Config` + `Model::new(&cfg, vb)` + `forward`, in the style of candle-transformers.
//!
//! Training and held-out evaluation use this model. Coding uses [`super::engine::Engine`], which
//! runs the same weights with a fixed order of operations so that encoder and decoder compute
//! bit-identical probabilities.

use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{
    embedding, layer_norm, linear, linear_no_bias, Embedding, LayerNorm, LayerNormConfig, Linear, VarBuilder,
};
use serde::{Deserialize, Serialize};

/// Model dimensions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Token ids (bytes, specials, text merges, then other modalities' tokens).
    pub vocab_size: usize,
    /// Width of the residual stream (a multiple of 8).
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads (d_model / n_heads a multiple of 8).
    pub n_heads: usize,
    /// Width of the MLP (a multiple of 8).
    pub d_ff: usize,
    /// Longest context, tokens.
    pub max_len: usize,
    /// Image codebook tokens at the end of the vocabulary (0 until that modality lands).
    #[serde(default)]
    pub image_tokens: usize,
    /// Sensor tokens at the end of the vocabulary (0 until that modality lands).
    #[serde(default)]
    pub sensor_tokens: usize,
}

impl Config {
    /// The shipped text prior's size.
    pub fn small(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_model: 160,
            n_layers: 4,
            n_heads: 4,
            d_ff: 640,
            max_len: 256,
            image_tokens: 0,
            sensor_tokens: 0,
        }
    }

    /// A tiny model for tests.
    pub fn tiny(vocab_size: usize) -> Self {
        Self {
            vocab_size,
            d_model: 32,
            n_layers: 1,
            n_heads: 2,
            d_ff: 64,
            max_len: 64,
            image_tokens: 0,
            sensor_tokens: 0,
        }
    }

    /// Checks the dimensions the deterministic engine relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let ok8 = |n: usize| n > 0 && n.is_multiple_of(8);
        if !ok8(self.d_model)
            || !ok8(self.d_ff)
            || self.n_heads == 0
            || !self.d_model.is_multiple_of(self.n_heads)
            || !ok8(self.d_model / self.n_heads)
        {
            return Err(format!(
                "dimensions must be positive multiples of 8 (d_model {}, heads {}, d_ff {})",
                self.d_model, self.n_heads, self.d_ff
            ));
        }
        if self.vocab_size < crate::vocab::FIRST_MERGE as usize || self.max_len == 0 || self.n_layers == 0 {
            return Err(format!(
                "vocab {} (≥ {} needed), max_len {}, layers {}",
                self.vocab_size,
                crate::vocab::FIRST_MERGE,
                self.max_len,
                self.n_layers
            ));
        }
        Ok(())
    }
}

struct Block {
    ln1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln2: LayerNorm,
    ff1: Linear,
    ff2: Linear,
    n_heads: usize,
}

impl Block {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let lnc = LayerNormConfig {
            eps: 1e-5,
            ..Default::default()
        };
        Ok(Self {
            ln1: layer_norm(cfg.d_model, lnc, vb.pp("ln1"))?,
            qkv: linear(cfg.d_model, 3 * cfg.d_model, vb.pp("qkv"))?,
            proj: linear(cfg.d_model, cfg.d_model, vb.pp("proj"))?,
            ln2: layer_norm(cfg.d_model, lnc, vb.pp("ln2"))?,
            ff1: linear(cfg.d_model, cfg.d_ff, vb.pp("ff1"))?,
            ff2: linear(cfg.d_ff, cfg.d_model, vb.pp("ff2"))?,
            n_heads: cfg.n_heads,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let hd = d / self.n_heads;
        let h = self.ln1.forward(x)?;
        let qkv = self.qkv.forward(&h)?.reshape((b, t, 3, self.n_heads, hd))?;
        let q = qkv.narrow(2, 0, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous()?;
        let k = qkv.narrow(2, 1, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous()?;
        let v = qkv.narrow(2, 2, 1)?.squeeze(2)?.transpose(1, 2)?.contiguous()?;
        let att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?.broadcast_add(mask)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        let x = (x + self.proj.forward(&y)?)?;
        let h = self.ln2.forward(&x)?;
        let h = self.ff2.forward(&self.ff1.forward(&h)?.gelu()?)?;
        x + h
    }
}

/// The transformer.
pub struct Model {
    tok: Embedding,
    pos: Embedding,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
    head: Linear,
    cfg: Config,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Model {
    /// Builds (or loads, with a VarBuilder over safetensors) the model.
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::msg)?;
        let blocks = (0..cfg.n_layers)
            .map(|i| Block::new(cfg, vb.pp(format!("blocks.{i}"))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            tok: embedding(cfg.vocab_size, cfg.d_model, vb.pp("tok"))?,
            pos: embedding(cfg.max_len, cfg.d_model, vb.pp("pos"))?,
            blocks,
            ln_f: layer_norm(
                cfg.d_model,
                LayerNormConfig {
                    eps: 1e-5,
                    ..Default::default()
                },
                vb.pp("ln_f"),
            )?,
            head: linear_no_bias(cfg.d_model, cfg.vocab_size, vb.pp("head"))?,
            cfg: cfg.clone(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Logits for every position of `tokens` (batch × time, u32): batch × time × vocab, each
    /// position seeing the ones before it.
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let (_b, t) = tokens.dims2()?;
        let dev = tokens.device();
        let positions = Tensor::arange(0u32, t as u32, dev)?.unsqueeze(0)?;
        self.forward_with(tokens, &positions, &causal_mask(t, dev)?)
    }

    /// Logits with explicit position ids (batch × time, u32, or 1 × time) and an additive
    /// attention mask (time × time or batch × 1 × time × time; 0 = may attend, −∞ = may not):
    /// several messages packed in one row, each attending only to itself, use it.
    pub fn forward_with(&self, tokens: &Tensor, positions: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let mut x = self.tok.forward(tokens)?.broadcast_add(&self.pos.forward(positions)?)?;
        for b in &self.blocks {
            x = b.forward(&x, mask)?;
        }
        self.head.forward(&self.ln_f.forward(&x)?)
    }

    /// Log-probabilities (nats) of `targets` (batch × time) given the packed `tokens`:
    /// batch × time.
    pub fn target_log_probs(
        &self,
        tokens: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        targets: &Tensor,
    ) -> Result<Tensor> {
        let logits = self.forward_with(tokens, positions, mask)?;
        let (b, t, v) = logits.dims3()?;
        let logp = candle_nn::ops::log_softmax(&logits.reshape((b * t, v))?, D::Minus1)?;
        logp.gather(&targets.reshape((b * t, 1))?.contiguous()?, 1)?
            .reshape((b, t))
    }

    /// Weighted mean cross-entropy (nats per token) of predicting `targets`; weight 0 leaves a
    /// position out (padding, a packed message's start).
    pub fn loss(
        &self,
        tokens: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        targets: &Tensor,
        weights: &Tensor,
    ) -> Result<Tensor> {
        let picked = self.target_log_probs(tokens, positions, mask, targets)?;
        let total = (picked * weights)?.sum_all()?;
        (total.neg()? / weights.sum_all()?)?.to_dtype(DType::F32)
    }
}

fn causal_mask(t: usize, dev: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..t * t)
        .map(|i| if i % t > i / t { f32::NEG_INFINITY } else { 0.0 })
        .collect();
    Tensor::from_vec(m, (t, t), dev)
}
