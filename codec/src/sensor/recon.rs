//! Reconstruction mode: a learned transform code with rate control to a target error.
//!
//! Each channel of the window minus the model's mean window is projected on the channel's KLT
//! basis (learned on the training split); the coefficients are the window's tokens after uniform
//! scalar quantisation with a per-channel step `Δ = scale · 2^((s − 44)/4)`, `s` in 0 … 63. Rate
//! control picks, per channel, the coarsest step whose reconstruction error (exact: the basis is
//! orthonormal, so the error of the coefficients is the error of the samples) is within the
//! target NRMSE × the channel's training standard deviation. The payload holds per channel the
//! step index, the count of coefficients up to the last non-zero one, and those quantised
//! coefficients, range-coded with adaptive magnitude classes (context: coefficient index band and
//! the previous coefficient's size).

use super::model::SensorModel;
use super::Window;
use crate::rangecoder::{RangeDecoder, RangeEncoder};
use crate::telemetry::models::{residual, residual_weights, Adaptive, Dec, Enc, Io};
use crate::CodecError;

const STEPS: usize = 64;
const BANDS: usize = 8;
const NEIGH: usize = 4;
/// Margin under the target kept for f32 rounding in the inverse transform.
const MARGIN: f64 = 0.98;

fn step_size(scale: f32, s: usize) -> f32 {
    scale * 2f32.powf((s as f32 - 44.0) / 4.0)
}

fn ctx(k: usize, prev: i64) -> usize {
    let band = ((usize::BITS - k.leading_zeros()) as usize).min(BANDS - 1);
    let neigh = ((64 - prev.unsigned_abs().leading_zeros()) as usize).min(NEIGH - 1);
    band * NEIGH + neigh
}

struct Models {
    step: Adaptive,
    count: Adaptive,
    coef: Vec<Adaptive>,
}

impl Models {
    fn new() -> Self {
        Self {
            step: Adaptive::new(STEPS, 24),
            count: Adaptive::with(&residual_weights(), 24),
            coef: vec![Adaptive::with(&residual_weights(), 24); BANDS * NEIGH],
        }
    }
}

/// Codes `w` so that every channel's NRMSE (RMSE / the model's scale of that channel) is at most
/// `targets[c]` (one target for all channels, or one per channel; each in (0, 10]).
pub fn encode(model: &SensorModel, w: &Window, targets: &[f32]) -> Result<Vec<u8>, CodecError> {
    model.check(w)?;
    let (channels, len) = (w.channels(), w.len());
    if targets.len() != 1 && targets.len() != channels {
        return Err(CodecError::Input(format!(
            "{} NRMSE targets for {channels} channels (give one, or one per channel)",
            targets.len()
        )));
    }
    if let Some(t) = targets.iter().find(|&&t| !(t > 0.0 && t <= 10.0)) {
        return Err(CodecError::Input(format!("NRMSE target {t} is outside (0, 10]")));
    }
    let mut enc = RangeEncoder::new();
    let mut m = Models::new();
    let mut coefs = vec![0f32; len];
    let mut q = vec![0i64; len];
    for c in 0..channels {
        let x = w.channel(c);
        let mean = model.mean(c);
        let basis = model.basis(c);
        for (k, out) in coefs.iter_mut().enumerate() {
            let row = &basis[k * len..(k + 1) * len];
            *out = row
                .iter()
                .zip(x.iter().zip(mean))
                .fold(0f32, |s, (b, (v, mu))| s + b * (v - mu));
        }
        let scale = model.scale[c];
        let t = f64::from(targets[if targets.len() == 1 { 0 } else { c }]);
        let budget = (t * MARGIN * f64::from(scale)).powi(2) * len as f64;
        let mut chosen = 0;
        for s in (0..STEPS).rev() {
            let d = step_size(scale, s);
            let err: f64 = coefs
                .iter()
                .map(|&v| f64::from(v - d * (v / d).round()).powi(2))
                .sum();
            if err <= budget {
                chosen = s;
                break;
            }
        }
        let d = step_size(scale, chosen);
        for (qk, &v) in q.iter_mut().zip(&coefs) {
            *qk = (v / d).round() as i64;
        }
        let n = q.iter().rposition(|&v| v != 0).map_or(0, |i| i + 1);
        let mut io = Enc(&mut enc);
        // Infallible on the encoder side: every symbol is in its table, every value fits.
        let _ = io.symbol(&mut m.step, chosen);
        let _ = residual(&mut io, &mut m.count, n as i128);
        let mut prev = 0i64;
        for (k, &v) in q[..n].iter().enumerate() {
            let _ = residual(&mut io, &mut m.coef[ctx(k, prev)], i128::from(v));
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
    let mut m = Models::new();
    let mut samples = Vec::with_capacity(channels * len);
    let mut q = vec![0i64; len];
    for c in 0..channels {
        let mut io = Dec(&mut dec);
        let s = io.symbol(&mut m.step, 0)?;
        let n = residual(&mut io, &mut m.count, 0)?;
        if n < 0 || n as usize > len {
            return Err(CodecError::Payload(format!(
                "sensor reconstruction payload: {n} coefficients for a {len}-sample channel"
            )));
        }
        let n = n as usize;
        q.fill(0);
        let mut prev = 0i64;
        for (k, qk) in q[..n].iter_mut().enumerate() {
            let v = residual(&mut io, &mut m.coef[ctx(k, prev)], 0)?;
            *qk = i64::try_from(v).map_err(|_| CodecError::Payload("coefficient out of range".into()))?;
            prev = *qk;
        }
        let d = step_size(model.scale[c], s);
        let basis = model.basis(c);
        let mut x: Vec<f32> = model.mean(c).to_vec();
        for (k, &qk) in q[..n].iter().enumerate() {
            if qk == 0 {
                continue;
            }
            let a = qk as f32 * d;
            for (xi, b) in x.iter_mut().zip(&basis[k * len..(k + 1) * len]) {
                *xi += a * b;
            }
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(CodecError::Payload("sensor reconstruction payload decodes to non-finite samples".into()));
        }
        samples.extend(x);
    }
    if dec.overran() {
        return Err(CodecError::Payload("sensor reconstruction payload truncated".into()));
    }
    Window::new(channels, len, samples)
}
