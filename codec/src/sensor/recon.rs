//! Reconstruction mode: a learned transform code with rate control to a target error.
//!
//! **Transform.** Channels are coded in order. A channel may have a *reference* (an earlier
//! channel and a gain, learned on the training split where it removes most of the channel's
//! within-window energy: `total_acc = body_acc + gravity`); it then codes `x − g·x̂_ref`, with
//! `x̂_ref` the decoded reference. The signal minus the model's mean window is projected on the
//! channel's KLT basis (learned on the training split), and the coefficients are the window's
//! tokens after uniform scalar quantisation with a per-channel step `Δ = scale · 2^((s − 44)/4)`,
//! `s` in 0 … 63.
//!
//! **Rate control.** Per channel, the coarsest step whose reconstruction error is within the
//! target NRMSE × the channel's training standard deviation (exact: the basis is orthonormal, so
//! the coefficient error is the sample error).
//!
//! **Entropy coding.** Per channel: the step index, the count of coefficients up to the last
//! non-zero one, then those coefficients as a magnitude class (adaptive, context: the expected
//! size `√λ_k / Δ` of coefficient `k` from the KLT eigenvalue, and the previous coefficient's size)
//! plus raw low bits. Every table starts from frequencies learned on the training split.

use super::model::SensorModel;
use super::Window;
use crate::rangecoder::{RangeDecoder, RangeEncoder};
use crate::telemetry::models::{residual, Adaptive, Dec, Enc, Io, RESIDUAL_SYMBOLS};
use crate::CodecError;

/// Step indices.
pub const STEPS: usize = 64;
const EXPECT: usize = 16;
const NEIGH: usize = 4;
/// Coefficient contexts.
pub const COEF_CTX: usize = EXPECT * NEIGH;
/// Length of the model's flattened initial frequency tables: step, count, coefficient contexts.
pub const TABLES_LEN: usize = STEPS + RESIDUAL_SYMBOLS + COEF_CTX * RESIDUAL_SYMBOLS;
/// Margin under the target kept for f32 rounding in the inverse transform.
const MARGIN: f64 = 0.98;
const INC: u16 = 24;

fn step_size(scale: f32, s: usize) -> f32 {
    scale * 2f32.powf((s as f32 - 44.0) / 4.0)
}

fn ctx(sd_over_step: f32, prev: i64) -> usize {
    let e = (2.0 * sd_over_step.max(1e-6).log2()).floor() as i32 + 6;
    let e = e.clamp(0, EXPECT as i32 - 1) as usize;
    let neigh = ((64 - prev.unsigned_abs().leading_zeros()) as usize).min(NEIGH - 1);
    e * NEIGH + neigh
}

/// Magnitude class of a residual (the symbol `telemetry::models::residual` codes).
fn class_of(r: i64) -> usize {
    if r == 0 {
        0
    } else {
        2 * (64 - r.unsigned_abs().leading_zeros()) as usize - 1 + usize::from(r < 0)
    }
}

/// One channel's tokens: step index and quantised coefficients (trailing zeros dropped).
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelTokens {
    /// Step index (0 … 63).
    pub step: usize,
    /// Quantised KLT coefficients up to the last non-zero one.
    pub coefs: Vec<i64>,
}

fn check_targets(targets: &[f32], channels: usize) -> Result<(), CodecError> {
    if targets.len() != 1 && targets.len() != channels {
        return Err(CodecError::Input(format!(
            "{} NRMSE targets for {channels} channels (give one, or one per channel)",
            targets.len()
        )));
    }
    if let Some(t) = targets.iter().find(|&&t| !(t > 0.0 && t <= 10.0)) {
        return Err(CodecError::Input(format!("NRMSE target {t} is outside (0, 10]")));
    }
    Ok(())
}

/// The prediction of channel `c` from its decoded reference (zero without one) plus the mean.
fn base(model: &SensorModel, c: usize, decoded: &[f32], len: usize) -> Vec<f32> {
    let mean = model.mean(c);
    match model.reference(c) {
        Some((r, g)) => decoded[r * len..(r + 1) * len]
            .iter()
            .zip(mean)
            .map(|(x, m)| g * x + m)
            .collect(),
        None => mean.to_vec(),
    }
}

fn synthesize(model: &SensorModel, c: usize, t: &ChannelTokens, base: &mut [f32]) {
    let len = base.len();
    let d = step_size(model.scale[c], t.step);
    let basis = model.basis(c);
    for (k, &qk) in t.coefs.iter().enumerate() {
        if qk != 0 {
            let a = qk as f32 * d;
            for (xi, b) in base.iter_mut().zip(&basis[k * len..(k + 1) * len]) {
                *xi += a * b;
            }
        }
    }
}

/// Quantises `w` to tokens meeting `targets` and returns them with the reconstruction the
/// decoder will make.
pub fn tokens(model: &SensorModel, w: &Window, targets: &[f32]) -> Result<(Vec<ChannelTokens>, Window), CodecError> {
    model.check(w)?;
    let (channels, len) = (w.channels(), w.len());
    check_targets(targets, channels)?;
    let mut decoded = vec![0f32; channels * len];
    let mut out = Vec::with_capacity(channels);
    let mut coefs = vec![0f32; len];
    for c in 0..channels {
        let mut b = base(model, c, &decoded, len);
        let x = w.channel(c);
        let basis = model.basis(c);
        for (k, out) in coefs.iter_mut().enumerate() {
            *out = basis[k * len..(k + 1) * len]
                .iter()
                .zip(x.iter().zip(&b))
                .fold(0f32, |s, (bk, (v, p))| s + bk * (v - p));
        }
        let scale = model.scale[c];
        let t = f64::from(targets[if targets.len() == 1 { 0 } else { c }]);
        let budget = (t * MARGIN * f64::from(scale)).powi(2) * len as f64;
        let mut step = 0;
        for s in (0..STEPS).rev() {
            let d = step_size(scale, s);
            let err: f64 = coefs.iter().map(|&v| f64::from(v - d * (v / d).round()).powi(2)).sum();
            if err <= budget {
                step = s;
                break;
            }
        }
        let d = step_size(scale, step);
        let mut q: Vec<i64> = coefs.iter().map(|&v| (v / d).round() as i64).collect();
        let n = q.iter().rposition(|&v| v != 0).map_or(0, |i| i + 1);
        q.truncate(n);
        let t = ChannelTokens { step, coefs: q };
        synthesize(model, c, &t, &mut b);
        decoded[c * len..(c + 1) * len].copy_from_slice(&b);
        out.push(t);
    }
    Ok((out, Window::new(channels, len, decoded)?))
}

/// Symbol counts of `tokens` in the layout of [`TABLES_LEN`] (training the initial tables).
pub fn count_symbols(model: &SensorModel, tokens: &[ChannelTokens], counts: &mut [f64]) {
    let (steps, rest) = counts.split_at_mut(STEPS);
    let (count, coef) = rest.split_at_mut(RESIDUAL_SYMBOLS);
    for (c, t) in tokens.iter().enumerate() {
        steps[t.step] += 1.0;
        count[class_of(t.coefs.len() as i64)] += 1.0;
        let d = step_size(model.scale[c], t.step);
        let var = model.variances(c);
        let mut prev = 0;
        for (k, &q) in t.coefs.iter().enumerate() {
            coef[ctx(var[k].sqrt() / d, prev) * RESIDUAL_SYMBOLS + class_of(q)] += 1.0;
            prev = q;
        }
    }
}

struct Models {
    step: Adaptive,
    count: Adaptive,
    coef: Vec<Adaptive>,
}

impl Models {
    fn new(model: &SensorModel) -> Self {
        let t = &model.tables;
        let w = |v: &[f32]| -> Vec<u16> { v.iter().map(|&x| x.clamp(1.0, 4000.0) as u16).collect() };
        let (steps, rest) = t.split_at(STEPS);
        let (count, coef) = rest.split_at(RESIDUAL_SYMBOLS);
        Self {
            step: Adaptive::with(&w(steps), INC),
            count: Adaptive::with(&w(count), INC),
            coef: coef
                .chunks(RESIDUAL_SYMBOLS)
                .map(|c| Adaptive::with(&w(c), INC))
                .collect(),
        }
    }
}

/// Codes `w` so that every channel's NRMSE (RMSE / the model's scale of that channel) is at most
/// `targets[c]` (one target for all channels, or one per channel; each in (0, 10]).
pub fn encode(model: &SensorModel, w: &Window, targets: &[f32]) -> Result<Vec<u8>, CodecError> {
    let (toks, _) = tokens(model, w, targets)?;
    let mut enc = RangeEncoder::new();
    let mut m = Models::new(model);
    for (c, t) in toks.iter().enumerate() {
        let mut io = Enc(&mut enc);
        io.symbol(&mut m.step, t.step)?;
        residual(&mut io, &mut m.count, t.coefs.len() as i128)?;
        let d = step_size(model.scale[c], t.step);
        let var = model.variances(c);
        let mut prev = 0i64;
        for (k, &v) in t.coefs.iter().enumerate() {
            residual(&mut io, &mut m.coef[ctx(var[k].sqrt() / d, prev)], i128::from(v))?;
            prev = v;
        }
    }
    let mut out = enc.finish();
    if out.is_empty() {
        // A payload is never a single byte shorter than this (one byte means "event only").
        out.push(0);
    }
    Ok(out)
}

/// Decodes [`encode`]'s bytes with the same model.
pub fn decode(model: &SensorModel, bytes: &[u8]) -> Result<Window, CodecError> {
    let (channels, len) = (model.config.channels, model.config.len);
    let mut dec = RangeDecoder::new(bytes);
    let mut m = Models::new(model);
    let mut decoded = vec![0f32; channels * len];
    for c in 0..channels {
        let mut io = Dec(&mut dec);
        let step = io.symbol(&mut m.step, 0)?;
        let n = residual(&mut io, &mut m.count, 0)?;
        if n < 0 || n as usize > len {
            return Err(CodecError::Payload(format!(
                "sensor reconstruction payload: {n} coefficients for a {len}-sample channel"
            )));
        }
        let d = step_size(model.scale[c], step);
        let var = model.variances(c);
        let mut coefs = Vec::with_capacity(n as usize);
        let mut prev = 0i64;
        for &lambda in &var[..n as usize] {
            let v = residual(&mut io, &mut m.coef[ctx(lambda.sqrt() / d, prev)], 0)?;
            let v = i64::try_from(v)
                .ok()
                .filter(|v| v.unsigned_abs() < 1 << 40)
                .ok_or_else(|| CodecError::Payload("coefficient out of range".into()))?;
            coefs.push(v);
            prev = v;
        }
        let mut b = base(model, c, &decoded, len);
        synthesize(model, c, &ChannelTokens { step, coefs }, &mut b);
        if b.iter().any(|v| !v.is_finite()) {
            return Err(CodecError::Payload(
                "sensor reconstruction payload decodes to non-finite samples".into(),
            ));
        }
        decoded[c * len..(c + 1) * len].copy_from_slice(&b);
    }
    if dec.overran() {
        return Err(CodecError::Payload("sensor reconstruction payload truncated".into()));
    }
    Window::new(channels, len, decoded)
}
