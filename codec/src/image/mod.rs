//! Images: the analog deep joint source–channel code (JSCC).
//!
//! **Analog mode.** The encoder cuts the image (RGB; grey is sent as three equal planes) into
//! 32 × 32 blocks and projects each block on a learned basis: the 192 strongest eigenvectors of the
//! covariance of training blocks (a Karhunen–Loève transform fitted by `semcom train image`). Each
//! coefficient is scaled by a power-allocation gain (`λ^-1/4`, the MSE-optimal allocation for a
//! linear receiver), the image is normalised to unit average power, pairs of coefficients become
//! complex channel symbols and a fixed interleaver spreads them over the frame, so a faded
//! subcarrier hits different coefficients of different blocks. 192 real values per 3072 gives
//! k/n = 1/16 (n = real pixel values / 2, k = complex symbols).
//!
//! The decoder takes the equalized noisy symbols and the per-symbol SNR (from the PHY's channel
//! and noise estimates, or the simulated channel), estimates this image's variance of every
//! coefficient from the received power ([`AnalogJscc::image_variances`]: a smooth picture's fine
//! detail is weaker than the training average), makes the linear MMSE estimate of every
//! coefficient with it, and then a learned convolutional network ([`net::Refiner`]), trained through
//! the noisy channel with SNRs from −3 to 23 dB and both flat and fading per-symbol SNRs, adds
//! the correction that the linear estimate cannot make (image structure across blocks, noise
//! removal, detail). One model serves every SNR; quality degrades smoothly as the SNR falls.
//!
//! The per-image power normalisation gain is quantised to 1/16 of an octave in 7 bits
//! (`gain_code`) and travels with the symbols (in the analog frame's header on the PHY).

pub mod digital;
pub mod net;
#[cfg(test)]
mod tests;
pub mod train;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use num_complex::Complex32;
use serde::{Deserialize, Serialize};

use crate::frame::ModelId;
use crate::picture::Picture;
use crate::CodecError;
use net::{NetConfig, Refiner};

/// Block side in pixels.
pub const BLOCK: usize = 32;
/// Real values per RGB block.
pub const BLOCK_DIM: usize = 3 * BLOCK * BLOCK;
/// The one metadata key of an image model file (its value: the config JSON).
const META_CONFIG: &str = "semcom.image";

/// Shape of an analog image model (stored as JSON metadata in the model file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalogConfig {
    /// Real coefficients sent per 32 × 32 RGB block (192 → k/n = 1/16).
    pub components: usize,
    /// The refinement network.
    pub net: NetConfig,
}

impl AnalogConfig {
    /// The configuration `semcom train image` uses by default.
    pub fn default_1_16() -> Self {
        AnalogConfig {
            components: 192,
            net: NetConfig {
                input: 192 + 96,
                coarse: 192,
                mid: 192,
                fine: 96,
                depth: [1, 1, 1],
            },
        }
    }

    /// Bandwidth ratio k/n as (numerator, denominator) in lowest terms.
    pub fn ratio(&self) -> (usize, usize) {
        let (a, b) = (self.components, BLOCK_DIM);
        let g = gcd(a, b);
        (a / g, b / g)
    }

    fn validate(&self) -> Result<(), String> {
        let c = self.components;
        if c == 0 || !c.is_multiple_of(2) || c > BLOCK_DIM {
            return Err(format!("components = {c}: must be even and in 2..={BLOCK_DIM}"));
        }
        if self.net.input != c + c / 2 {
            return Err(format!("net input {} does not match {c} components", self.net.input));
        }
        if [self.net.coarse, self.net.mid, self.net.fine].contains(&0) {
            return Err("zero network width".into());
        }
        if self.net.depth.iter().any(|&d| d > net::MAX_DEPTH) {
            return Err(format!(
                "network depth {:?}: at most {} layers per scale",
                self.net.depth,
                net::MAX_DEPTH
            ));
        }
        Ok(())
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// What the analog encoder emits for one image: its shape, the power-normalisation gain and
/// the complex channel symbols (unit average power).
#[derive(Clone, Debug, PartialEq)]
pub struct AnalogCode {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Power normalisation gain code, 7 bits: the gain is `2^((gain_code − 64) / 16)`, the
    /// largest on that grid that keeps the average symbol power at most 1 (so between 0.917
    /// and 1).
    pub gain_code: u8,
    /// The channel symbols in transmit order.
    pub symbols: Vec<Complex32>,
}

/// The learned analog JSCC model: KLT basis, power allocation, refinement network.
#[derive(Debug)]
pub struct AnalogJscc {
    config: AnalogConfig,
    /// Block mean, `(BLOCK_DIM,)`.
    mean_t: Tensor,
    /// Basis, `(components, BLOCK_DIM)`, row per component.
    basis_t: Tensor,
    /// Variance of each coefficient over the training blocks.
    var: Vec<f32>,
    /// Power-allocation gain of each coefficient.
    gain: Vec<f32>,
    net: Refiner,
    tensors: HashMap<String, Tensor>,
    id: ModelId,
}

/// Prior weight, in blocks, of the training variance in a decoder's estimate of an image's
/// coefficient variance.
const SHRINK: f64 = 8.0;

/// Number of 32-pixel blocks that cover `len` pixels.
fn blocks_for(len: usize) -> usize {
    len.div_ceil(BLOCK)
}

/// The blocks of a picture (grey replicated to RGB; edges replicated to whole blocks), row-major
/// over blocks, each block laid out channel, row, column.
pub fn picture_blocks(pic: &Picture) -> Vec<f32> {
    let (w, h) = (pic.width(), pic.height());
    let (bw, bh) = (blocks_for(w), blocks_for(h));
    let mut out = vec![0f32; bw * bh * BLOCK_DIM];
    for c in 0..3 {
        let plane = pic.plane(if pic.channels() == 1 { 0 } else { c });
        for by in 0..bh {
            for bx in 0..bw {
                let base = (by * bw + bx) * BLOCK_DIM + c * BLOCK * BLOCK;
                for y in 0..BLOCK {
                    let sy = (by * BLOCK + y).min(h - 1);
                    for x in 0..BLOCK {
                        let sx = (bx * BLOCK + x).min(w - 1);
                        out[base + y * BLOCK + x] = plane[sy * w + sx];
                    }
                }
            }
        }
    }
    out
}

/// A channels-last `(1, H, W, 3)` image tensor (H, W whole blocks) back to a picture of the
/// given size and channel count (grey: mean of the three planes), clamped to `[0, 1]`.
fn picture_from_hwc(t: &[f32], pw: usize, width: usize, height: usize, channels: usize) -> Result<Picture, CodecError> {
    let mut data = vec![0f32; width * height * channels];
    for y in 0..height {
        for x in 0..width {
            let px = &t[(y * pw + x) * 3..(y * pw + x) * 3 + 3];
            if channels == 1 {
                data[y * width + x] = ((px[0] + px[1] + px[2]) / 3.0).clamp(0.0, 1.0);
            } else {
                for c in 0..3 {
                    data[c * width * height + y * width + x] = px[c].clamp(0.0, 1.0);
                }
            }
        }
    }
    Picture::new(width, height, channels, data)
}

/// Blocks `(B, Hb, Wb, 768)` → channels-last pixels `(B, 16·Hb, 16·Wb, 3)`.
pub fn unblock(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, hb, wb, _) = x.dims4()?;
    x.reshape(vec![b, hb, wb, 3, BLOCK, BLOCK])?
        .permute(vec![0, 1, 4, 2, 5, 3])?
        .contiguous()?
        .reshape((b, hb * BLOCK, wb * BLOCK, 3))
}

/// The interleaver: symbol `i` of the block-ordered stream goes out at position `perm(i)`, a
/// multiplicative permutation with a stride near the golden section of the length.
pub fn interleave_stride(k: usize) -> usize {
    if k <= 2 {
        return 1;
    }
    let mut s = ((k as f64) * 0.618_034).round() as usize | 1;
    while gcd(s, k) != 1 {
        s += 2;
    }
    s
}

impl AnalogJscc {
    /// The configuration.
    pub fn config(&self) -> &AnalogConfig {
        &self.config
    }

    /// The model id (first 4 bytes of SHA-256 of the file).
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// Bandwidth ratio k/n.
    pub fn ratio(&self) -> (usize, usize) {
        self.config.ratio()
    }

    /// Complex symbols this model sends for an image of this size: k = n · k/n with
    /// n = width · height · channels / 2, or every coefficient pair of the covering blocks when
    /// that is fewer. Blocks are padded to whole 32 × 32 RGB blocks, so partly covered edge
    /// blocks and grey images (sent as three equal planes) have more pairs than k: the weakest
    /// (highest-index) pairs of some blocks are then not sent, and the decoder estimates them
    /// as zero.
    pub fn symbols_for(&self, width: usize, height: usize, channels: usize) -> usize {
        let c = self.config.components;
        let pairs = blocks_for(width) * blocks_for(height) * c / 2;
        let budget = (width * height * channels * c / (2 * BLOCK_DIM)).max(1);
        pairs.min(budget)
    }

    /// Coefficients of each block, `blocks × components`.
    fn coefficients(&self, blocks: &[f32]) -> Result<Vec<f32>, CodecError> {
        let n = blocks.len() / BLOCK_DIM;
        let x = Tensor::from_slice(blocks, (n, BLOCK_DIM), &Device::Cpu)?;
        let x = x.broadcast_sub(&self.mean_t)?;
        Ok(x.matmul(&self.basis_t.t()?)?.flatten_all()?.to_vec1::<f32>()?)
    }

    /// Encodes a picture into channel symbols.
    pub fn encode(&self, pic: &Picture) -> Result<AnalogCode, CodecError> {
        let k = self.config.components;
        let coef = self.coefficients(&picture_blocks(pic))?;
        let nb = coef.len() / k;
        let n = self.symbols_for(pic.width(), pic.height(), pic.channels());
        // Pairs in component-major order (pair 0 of every block, then pair 1 …), the first n.
        let mut reals = Vec::with_capacity(2 * n);
        for i in 0..n {
            let (m, b) = (i / nb, i % nb);
            for j in [2 * m, 2 * m + 1] {
                reals.push(coef[b * k + j] * self.gain[j]);
            }
        }
        let power = reals.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / reals.len() as f64;
        // The largest gain on the 1/16-octave grid that keeps the average power at most 1.
        let gain_code = if power > 0.0 {
            (64.0 - 8.0 * power.log2()).floor().clamp(0.0, 127.0) as u8
        } else {
            64
        };
        let scale = gain_of(gain_code);
        for v in &mut reals {
            *v *= scale;
        }
        let stride = interleave_stride(n);
        let mut symbols = vec![Complex32::new(0.0, 0.0); n];
        let r = std::f32::consts::FRAC_1_SQRT_2;
        for i in 0..n {
            symbols[(i * stride) % n] = Complex32::new(reals[2 * i] * r, reals[2 * i + 1] * r);
        }
        Ok(AnalogCode {
            width: pic.width(),
            height: pic.height(),
            channels: pic.channels(),
            gain_code,
            symbols,
        })
    }

    /// Decodes received symbols (equalized, in transmit order) with their SNR estimates in dB
    /// (one per symbol, or a single value for all).
    pub fn decode(&self, code: &AnalogCode, snr_db: &[f32]) -> Result<Picture, CodecError> {
        let (feat, base) = self.decoder_inputs(code, snr_db)?;
        let out = (base + self.net.forward(&feat)?)?;
        let v = out.flatten_all()?.to_vec1::<f32>()?;
        let bw = blocks_for(code.width);
        picture_from_hwc(&v, bw * BLOCK, code.width, code.height, code.channels)
    }

    /// What the refinement network works on, for a received code (checked as for
    /// [`AnalogJscc::decode`]): its input features `(1, Hb, Wb, input)` and the linear MMSE
    /// reconstruction `(1, 32·Hb, 32·Wb, 3)` that its output is added to. Training goes through
    /// this too, so the network learns on exactly what the decoder will give it.
    pub(crate) fn decoder_inputs(&self, code: &AnalogCode, snr_db: &[f32]) -> Result<(Tensor, Tensor), CodecError> {
        let (nb, scale) = self.check_received(code, snr_db)?;
        let (bw, bh) = (blocks_for(code.width), blocks_for(code.height));
        let k = self.config.components;
        let mut coef = vec![0f32; nb * k];
        let fi = self.config.net.input;
        let mut feat = vec![0f32; nb * fi];
        // Pairs not sent: estimate zero, reliability as for the lowest SNR.
        for b in 0..nb {
            feat[b * fi + k..(b + 1) * fi].fill(snr_feature(-100.0));
        }
        let var = self.variances(&code.symbols, snr_db, scale, nb);
        for (b, j, v, snr, nv) in received(&code.symbols, snr_db, nb) {
            let a = self.gain[j] * scale;
            let l = var[j];
            let c = a * l / (a * a * l + nv) * v;
            coef[b * k + j] = c;
            feat[b * fi + j] = c / self.var[j].sqrt();
            feat[b * fi + k + j / 2] = snr_feature(snr);
        }
        let lin = self.linear_blocks(&coef)?.reshape((1, bh, bw, BLOCK_DIM))?;
        let feat = Tensor::from_vec(feat, (1, bh, bw, fi), &Device::Cpu)?;
        Ok((feat, unblock(&lin)?))
    }

    /// Checks a received code and its SNRs against this model: the number of blocks and the
    /// image's power gain, or why they cannot be decoded.
    fn check_received(&self, code: &AnalogCode, snr_db: &[f32]) -> Result<(usize, f32), CodecError> {
        let (w, h) = (code.width, code.height);
        if w == 0 || h == 0 || !(code.channels == 1 || code.channels == 3) {
            return Err(CodecError::Input(format!("bad image shape {w}×{h}×{}", code.channels)));
        }
        let n = self.symbols_for(w, h, code.channels);
        if code.symbols.len() != n {
            return Err(CodecError::Input(format!(
                "{w}×{h} image needs {n} symbols with this model, got {}",
                code.symbols.len()
            )));
        }
        if !(snr_db.len() == 1 || snr_db.len() == n) {
            return Err(CodecError::Input(format!(
                "{} SNR values for {n} symbols (give 1 or {n})",
                snr_db.len()
            )));
        }
        if snr_db.iter().any(|s| !s.is_finite()) || code.symbols.iter().any(|s| !s.re.is_finite() || !s.im.is_finite())
        {
            return Err(CodecError::Input("received symbols or SNRs are not finite".into()));
        }
        if code.gain_code > 127 {
            return Err(CodecError::Input(format!(
                "gain code {} is not a 7-bit value",
                code.gain_code
            )));
        }
        Ok((blocks_for(w) * blocks_for(h), gain_of(code.gain_code)))
    }

    /// This image's variance of each coefficient, estimated by the decoder from what arrived
    /// (received symbols and their SNRs in dB, one per symbol or one for all, as for
    /// [`AnalogJscc::decode`], which uses it): received power less noise power, each symbol
    /// weighted by the inverse of that difference's variance under the training variance (a
    /// faded symbol tells little), shrunk towards the training variance by a prior worth 8 clean
    /// blocks (what matters for small images). The linear MMSE estimate with it adapts to the
    /// image (a smooth picture's fine detail is weaker than the training average) at no cost in
    /// channel uses.
    pub fn image_variances(&self, code: &AnalogCode, snr_db: &[f32]) -> Result<Vec<f32>, CodecError> {
        let (nb, scale) = self.check_received(code, snr_db)?;
        Ok(self.variances(&code.symbols, snr_db, scale, nb))
    }

    /// [`AnalogJscc::image_variances`] of a checked code.
    fn variances(&self, symbols: &[Complex32], snr_db: &[f32], scale: f32, nb: usize) -> Vec<f32> {
        let mut acc = vec![(0f64, 0f64); self.config.components];
        for (_, j, v, _, nv) in received(symbols, snr_db, nb) {
            let (v, nv) = (f64::from(v), f64::from(nv));
            let a2 = f64::from(self.gain[j] * scale).powi(2);
            let s = a2 * f64::from(self.var[j]);
            // y² − nv estimates a²·var with a variance ∝ (a²·var + nv)²; in units of var.
            let w = (s / (s + nv)).powi(2);
            acc[j].0 += w * (v * v - nv) / a2;
            acc[j].1 += w;
        }
        acc.iter()
            .zip(&self.var)
            .map(|(&(sum, w), &lam)| {
                let lam = f64::from(lam);
                ((sum.max(0.0) + SHRINK * lam) / (w + SHRINK)).max(lam * 1e-3) as f32
            })
            .collect()
    }

    /// Linear reconstruction of blocks from coefficients: mean + coefficients × basis,
    /// `(blocks, BLOCK_DIM)`.
    fn linear_blocks(&self, coef: &[f32]) -> Result<Tensor, CodecError> {
        let k = self.config.components;
        let c = Tensor::from_slice(coef, (coef.len() / k, k), &Device::Cpu)?;
        Ok(c.matmul(&self.basis_t)?.broadcast_add(&self.mean_t)?)
    }

    /// Builds a model from its parts (used by training and loading).
    pub(crate) fn from_tensors(
        config: AnalogConfig,
        tensors: HashMap<String, Tensor>,
        id: ModelId,
    ) -> Result<Self, CodecError> {
        config.validate().map_err(CodecError::Input)?;
        let k = config.components;
        let get = |name: &str, len: usize| -> Result<Vec<f32>, CodecError> {
            let t = tensors
                .get(name)
                .ok_or_else(|| CodecError::Input(format!("tensor {name} missing")))?;
            let v = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            if v.len() != len {
                return Err(CodecError::Input(format!(
                    "tensor {name} has {} values, expected {len}",
                    v.len()
                )));
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(CodecError::Input(format!("tensor {name} holds non-finite values")));
            }
            Ok(v)
        };
        let mean = get("pca.mean", BLOCK_DIM)?;
        let basis = get("pca.basis", k * BLOCK_DIM)?;
        let var = get("pca.var", k)?;
        let gain = get("pca.gain", k)?;
        if var.iter().chain(&gain).any(|&v| v <= 0.0) {
            return Err(CodecError::Input(
                "coefficient variances and gains must be positive".into(),
            ));
        }
        let mean_t = Tensor::from_vec(mean, BLOCK_DIM, &Device::Cpu)?;
        let basis_t = Tensor::from_vec(basis, (k, BLOCK_DIM), &Device::Cpu)?;
        let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
        let net = Refiner::new(&config.net, vb.pp("net"))
            .map_err(|e| CodecError::Input(format!("refinement network: {e}")))?;
        Ok(AnalogJscc {
            config,
            mean_t,
            basis_t,
            var,
            gain,
            net,
            tensors,
            id,
        })
    }

    /// Serialises the model (safetensors, f32, config JSON in metadata).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort();
        let mut data = Vec::new();
        for n in names {
            let t = &self.tensors[n];
            data.push((
                n.clone(),
                t.dims().to_vec(),
                t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            ));
        }
        let views: Vec<(String, Vec<usize>, &[f32])> =
            data.iter().map(|(n, s, v)| (n.clone(), s.clone(), &v[..])).collect();
        crate::modelfile::to_bytes(META_CONFIG, &self.config, &views)
    }

    /// Loads a model from a file's bytes (`path` names it in errors).
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, CodecError> {
        let bad = |reason: String| crate::modelfile::bad(path, reason);
        let (config, t): (AnalogConfig, _) = crate::modelfile::from_bytes(bytes, path, META_CONFIG, "image")?;
        let mut tensors = HashMap::new();
        for (name, (shape, v)) in t.into_map() {
            let t = Tensor::from_vec(v, shape, &Device::Cpu).map_err(|e| bad(e.to_string()))?;
            tensors.insert(name, t);
        }
        Self::from_tensors(config, tensors, ModelId::of_bytes(bytes)).map_err(|e| match e {
            CodecError::Input(r) | CodecError::Backend(r) => bad(r),
            e => e,
        })
    }

    /// Loads a model file.
    pub fn load(path: &Path) -> Result<Self, CodecError> {
        let bytes = std::fs::read(path).map_err(|source| CodecError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }
}

/// Every received real value of a checked code, in block-ordered stream order (the
/// interleaver undone): its block, its component, the value (unit-power scale undone), the
/// SNR (dB) of its symbol and that symbol's noise variance.
fn received<'a>(
    symbols: &'a [Complex32],
    snr_db: &'a [f32],
    nb: usize,
) -> impl Iterator<Item = (usize, usize, f32, f32, f32)> + 'a {
    let n = symbols.len();
    let stride = interleave_stride(n);
    (0..n).flat_map(move |i| {
        let at = (i * stride) % n;
        let y = symbols[at] * std::f32::consts::SQRT_2;
        let snr = if snr_db.len() == 1 { snr_db[0] } else { snr_db[at] };
        let nv = 10f32.powf(-snr.clamp(-30.0, 60.0) / 10.0);
        let (b, m) = (i % nb, 2 * (i / nb));
        [(b, m, y.re, snr, nv), (b, m + 1, y.im, snr, nv)]
    })
}

/// The gain a 7-bit gain code stands for.
pub fn gain_of(code: u8) -> f32 {
    2f32.powf((code as f32 - 64.0) / 16.0)
}

/// The network's view of a symbol's SNR (dB, centred and scaled, clamped).
pub fn snr_feature(snr_db: f32) -> f32 {
    ((snr_db - 10.0) / 10.0).clamp(-3.0, 3.0)
}
