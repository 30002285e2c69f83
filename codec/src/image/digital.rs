//! Images, digital mode: a learned transform code with context-adaptive range coding.
//!
//! **Transform.** The RGB samples (in 8-bit units) go through an orthonormal 3 × 3 colour
//! transform (the Karhunen–Loève transform of training pixels: a luma-like component and two
//! opponent-colour components), then every 8 × 8 block of each component through an orthonormal
//! 64 × 64 block transform (the KLT of that component's training blocks, strongest first; the
//! built-in [`DigitalModel::dct`] uses the 2-D DCT instead). Grey images skip the colour step and
//! use the first component's transform. Both transforms are orthonormal, so the squared error of
//! the coefficients is the squared error of the pixels and one quantiser step for every
//! coefficient is the MSE-optimal allocation.
//!
//! **Quantisation.** Uniform with a dead zone: `q = sign(c) ⌊|c| / Δ + ρ⌋` (ρ < ½ widens the zero
//! bin), reconstructed at `sign(q) (|q| − δ) Δ` (δ moves the value toward the centroid of the
//! bin; with ρ < ½ the bins shift outward and the best δ is slightly negative). The step is `Δ = 2^(step_q / 32) / 4`: `step_q` (0–[`MAX_STEP_Q`]) is the one
//! rate parameter, searched by [`DigitalModel::encode_within`] to meet a byte budget.
//!
//! **Entropy coding.** The quantised tokens are range coded ([`crate::rangecoder`]) with
//! adaptive frequency tables ([`crate::telemetry::models`]), block by block in raster order,
//! component by component: the first (DC-like) coefficient as the residual of a median
//! prediction from the left, upper and upper-left blocks; then an end-of-block position (the
//! last non-zero coefficient; context: the neighbours' end positions); then each coefficient up
//! to it as a magnitude token (context: its frequency band, the magnitudes of the same
//! coefficient in the left and upper blocks and of the two coefficients before it) with an
//! escape to an Exp-Golomb class, and a raw sign bit.
//!
//! **Post-filter.** A light deblocking filter smooths block edges whose step is small against
//! the quantiser step (the edge is then a quantisation artefact, not image content).

use std::ops::Range;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::frame::{get_varint, put_varint, ModelId};
use crate::picture::Picture;
use crate::rangecoder::{RangeDecoder, RangeEncoder};
use crate::telemetry::models::{Adaptive, Dec, Enc, Io};
use crate::CodecError;

/// Block side in pixels.
pub const B: usize = 8;
/// Coefficients per block.
pub const N: usize = B * B;
/// Largest rate parameter (Δ = 2^15 / 4: every coefficient quantises to zero).
pub const MAX_STEP_Q: u16 = 480;
/// Largest quantised magnitude the decoder accepts.
const MAX_Q: i32 = 1 << 22;
/// The metadata key of a digital image model file (its value: the config JSON).
const META_CONFIG: &str = "semcom.image-digital";
/// Mode byte that starts the frame parameters of a digital image (one range-coded stream).
pub const MODE_DIGITAL: u8 = 1;
/// Mode byte of a sliced digital image: the payload is a slice table and independently
/// decodable slices (bands of block rows), so that a lost slice leaves the others decodable.
/// (The analog mode has no mode byte of its own: its symbols travel in analog PHY frames.)
pub const MODE_DIGITAL_SLICED: u8 = 2;
/// Largest band height of a sliced code, in block rows.
pub const MAX_SLICE_ROWS: u64 = 1 << 16;
/// Largest image the CLI decoder accepts by default (pixels).
pub const DEFAULT_MAX_PIXELS: usize = 1 << 26;

/// Settings of a digital image model (stored as JSON metadata in the model file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigitalConfig {
    /// `klt` (fitted) or `dct` (built in).
    pub transform: String,
    /// Quantiser rounding offset ρ (½ = plain rounding, smaller widens the dead zone).
    pub rounding: f32,
    /// Reconstruction offset δ toward zero, in steps.
    pub recon_bias: f32,
    /// Step multiplier of the two colour components.
    pub chroma_step: f32,
    /// Deblocking strength (0: off): edges whose step is below `deblock × Δ` are smoothed.
    pub deblock: f32,
}

impl DigitalConfig {
    /// Defaults chosen on photos-train (30 images, 0.25–1 bpp; see NOTES-issue5-digital.md):
    /// ρ = 0.38, δ = −0.05, deblocking at 1.5 Δ.
    pub fn default_for(transform: &str) -> Self {
        DigitalConfig {
            transform: transform.to_string(),
            rounding: 0.38,
            recon_bias: -0.05,
            chroma_step: 1.0,
            deblock: 1.5,
        }
    }

    fn validate(&self) -> Result<(), String> {
        let ok = |v: f32, lo: f32, hi: f32| v.is_finite() && v >= lo && v <= hi;
        if !matches!(self.transform.as_str(), "klt" | "dct") {
            return Err(format!("transform `{}`: expected klt or dct", self.transform));
        }
        if !ok(self.rounding, 0.0, 0.5) || !ok(self.recon_bias, -0.5, 0.5) {
            return Err("rounding must be in [0, 0.5] and recon_bias in [-0.5, 0.5]".into());
        }
        if !ok(self.chroma_step, 0.25, 8.0) || !ok(self.deblock, 0.0, 8.0) {
            return Err("chroma_step must be in [0.25, 8] and deblock in [0, 8]".into());
        }
        Ok(())
    }
}

/// A coded image: its shape, the rate parameter and the range-coded tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigitalCode {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Rate parameter: Δ = 2^(step_q / 32) / 4.
    pub step_q: u16,
    /// Sliced mode: block rows per slice (`None`: one range-coded stream for the whole image).
    pub slice_rows: Option<u32>,
    /// The range-coded tokens (sliced mode: the slice table, then the slices).
    pub payload: Vec<u8>,
}

impl DigitalCode {
    /// The frame parameters: mode, channels, width, height, step (varints), and in the sliced
    /// mode the band height in block rows (varint).
    pub fn params(&self) -> Vec<u8> {
        let mode = if self.slice_rows.is_some() {
            MODE_DIGITAL_SLICED
        } else {
            MODE_DIGITAL
        };
        let mut p = vec![mode, self.channels as u8];
        put_varint(&mut p, self.width as u64);
        put_varint(&mut p, self.height as u64);
        put_varint(&mut p, u64::from(self.step_q));
        if let Some(r) = self.slice_rows {
            put_varint(&mut p, u64::from(r));
        }
        p
    }

    /// Number of slices (1 when unsliced).
    pub fn slice_count(&self) -> usize {
        match self.slice_rows {
            Some(r) => self.height.div_ceil(B).div_ceil((r as usize).max(1)),
            None => 1,
        }
    }

    /// Bytes of the slice table at the start of the payload (0 when unsliced), or an error
    /// when the table does not parse.
    pub fn slice_table_len(&self) -> Result<usize, CodecError> {
        Ok(self.slices(&[])?.0)
    }

    /// The slice table: its length and the byte range of each slice in the payload (ranges
    /// may run past the payload's end when it was cut). A table that overlaps a `lost` range
    /// is [`CodecError::Lost`].
    fn slices(&self, lost: &[Range<usize>]) -> Result<(usize, Vec<Range<usize>>), CodecError> {
        if self.slice_rows.is_none() {
            #[allow(clippy::single_range_in_vec_init)] // one slice: the whole payload
            return Ok((0, vec![0..self.payload.len()]));
        }
        let n = self.slice_count();
        // Whether a lost range touches the first `end` bytes.
        let hit = |end: usize| lost.iter().any(|l| l.start < end && l.end > l.start);
        let mut at = 0;
        let mut lens = Vec::with_capacity(n);
        for i in 0..n {
            match get_varint(self.payload.get(at..).unwrap_or(&[])) {
                Some((v, k)) if v <= u64::from(u32::MAX) => {
                    at += k;
                    lens.push(v as usize);
                }
                _ if hit(at + 10) => {
                    return Err(CodecError::Lost(format!("the slice table (entry {i} of {n}) was lost")));
                }
                _ => return Err(CodecError::Payload(format!("slice table entry {i} of {n} is broken"))),
            }
        }
        if hit(at) {
            return Err(CodecError::Lost(format!("the slice table ({at} bytes) was lost")));
        }
        let mut ranges = Vec::with_capacity(n);
        let mut s = at;
        for len in lens {
            ranges.push(s..s + len);
            s += len;
        }
        Ok((at, ranges))
    }

    /// Rebuilds a code from frame parameters and payload, checking the shape.
    pub fn from_parts(params: &[u8], payload: &[u8], max_pixels: usize) -> Result<Self, CodecError> {
        let bad = |m: &str| CodecError::Malformed(format!("digital image parameters: {m}"));
        let sliced = match params.first() {
            Some(&MODE_DIGITAL) => false,
            Some(&MODE_DIGITAL_SLICED) => true,
            Some(m) => {
                return Err(bad(&format!(
                    "mode {m} is not a digital mode ({MODE_DIGITAL}, or {MODE_DIGITAL_SLICED} sliced)"
                )))
            }
            None => return Err(bad("empty")),
        };
        let channels = usize::from(*params.get(1).ok_or_else(|| bad("no channel count"))?);
        let mut at = 2;
        let mut next = |what: &str| -> Result<u64, CodecError> {
            let (v, n) = get_varint(params.get(at..).unwrap_or(&[])).ok_or_else(|| bad(what))?;
            at += n;
            Ok(v)
        };
        let width = next("broken width")?;
        let height = next("broken height")?;
        let step_q = next("broken step")?;
        let slice_rows = if sliced {
            Some(next("broken slice height")?)
        } else {
            None
        };
        if at != params.len() {
            return Err(bad("trailing bytes"));
        }
        if channels != 1 && channels != 3 {
            return Err(bad(&format!("{channels} channels (1 or 3)")));
        }
        if width == 0 || height == 0 {
            return Err(bad(&format!("zero-size image ({width}×{height})")));
        }
        if width.saturating_mul(height) > max_pixels as u64 {
            return Err(bad(&format!(
                "{width}×{height} is larger than the {max_pixels}-pixel limit"
            )));
        }
        if step_q > u64::from(MAX_STEP_Q) {
            return Err(bad(&format!("step {step_q} above {MAX_STEP_Q}")));
        }
        if let Some(r) = slice_rows {
            if r == 0 || r > MAX_SLICE_ROWS {
                return Err(bad(&format!("slice height {r} block rows (1–{MAX_SLICE_ROWS})")));
            }
        }
        Ok(DigitalCode {
            width: width as usize,
            height: height as usize,
            channels,
            step_q: step_q as u16,
            slice_rows: slice_rows.map(|r| r as u32),
            payload: payload.to_vec(),
        })
    }
}

/// How [`DigitalModel::decode_concealed`] fills the tokens of missing slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conceal {
    /// Zero tokens (the component means: a flat band), the baseline.
    Blank,
    /// The most likely tokens given what arrived: the missing band is estimated from the
    /// received pixel rows above and below it (smooth part interpolated, edge texture fading
    /// in), then transformed and quantised like the encoder does, so the decoder shows tokens
    /// the codec could have sent.
    Prior,
}

/// What [`DigitalModel::decode_concealed`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConcealReport {
    /// Slices in the code (1 when unsliced).
    pub slices: usize,
    /// Slices that overlapped a lost byte range.
    pub lost_slices: usize,
    /// Slices that arrived but did not decode (also missing).
    pub undecodable_slices: usize,
    /// 8 × 8 blocks (counted per colour component) whose tokens were estimated; 0 with
    /// [`Conceal::Blank`].
    pub concealed_blocks: usize,
}

impl ConcealReport {
    /// Whether anything was missing (the item is then delivered as concealed).
    pub fn concealed(&self) -> bool {
        self.lost_slices + self.undecodable_slices > 0
    }
}

/// Block rows per slice that make slices of about `target_bytes` when an image `height`
/// pixels high is coded in `payload_bytes` (at least 1; the whole image at most).
pub fn slice_rows_for(height: usize, payload_bytes: usize, target_bytes: usize) -> u32 {
    let bh = height.div_ceil(B).max(1);
    let per_row = payload_bytes as f64 / bh as f64;
    let rows = (target_bytes as f64 / per_row.max(1.0)).round();
    rows.clamp(1.0, bh as f64) as u32
}

/// The quantiser step of a rate parameter.
pub fn step_size(step_q: u16) -> f32 {
    0.25 * 2f32.powf(f32::from(step_q) / 32.0)
}

/// The rate parameter of a user quality 1–100 (100: finest).
pub fn step_for_quality(quality: u8) -> u16 {
    (100 - quality.clamp(1, 100) as u16) * 4
}

/// The learned digital image model: colour transform and per-component block transforms.
#[derive(Debug, Clone)]
pub struct DigitalModel {
    config: DigitalConfig,
    /// Colour transform, 3 × 3, row per output component (orthonormal).
    colour: [f32; 9],
    /// Mean RGB in 8-bit units, subtracted before the colour transform.
    colour_mean: [f32; 3],
    /// Block transform per component, 64 × 64, row per coefficient (orthonormal).
    basis: [Vec<f32>; 3],
    id: ModelId,
}

/// Per-component adaptive models.
struct Contexts {
    dc: Vec<Adaptive>,
    eob: Vec<Adaptive>,
    ac: Vec<Adaptive>,
    esc: Adaptive,
}

const MAG_SYMBOLS: usize = 16;
const ESC_CLASSES: usize = 24;
const DC_CTX: usize = 7;
const EOB_CTX: usize = 8;
const AC_NCTX: usize = 9;
const BANDS: usize = 11;

fn band(i: usize) -> usize {
    match i {
        0..=3 => i.saturating_sub(1),
        4..=5 => 3,
        6..=9 => 4,
        10..=14 => 5,
        15..=20 => 6,
        21..=29 => 7,
        30..=41 => 8,
        42..=52 => 9,
        _ => 10,
    }
}

fn bucket(v: u32) -> usize {
    match v {
        0..=2 => v as usize,
        3..=4 => 3,
        5..=8 => 4,
        9..=16 => 5,
        _ => 6,
    }
}

fn eob_bucket(v: u32) -> usize {
    match v {
        0..=2 => v as usize,
        3..=4 => 3,
        5..=8 => 4,
        9..=15 => 5,
        16..=27 => 6,
        _ => 7,
    }
}

/// Weight of the primed start tables of a slice (measured on Kodak: 20 → 48 → 120 gain
/// 0.1–0.3 dB, 300 no more).
const PRIME_TOTAL: f32 = 120.0;

/// Concealment: rows averaged into a side's smooth row, the horizontal box radius of that
/// row, and the factor per pixel by which an edge row's detail fades into the missing band.
const SMOOTH_ROWS: usize = 4;
const SMOOTH_RADIUS: usize = 8;
const DETAIL_FADE: f32 = 0.75;

/// Geometric start weights (ratio `r`, about `total` in all) for a magnitude table.
fn geometric(n: usize, r: f32, total: f32) -> Vec<u16> {
    (0..n)
        .map(|k| ((total * (1.0 - r) * r.powi(k as i32)).round() as u16).max(1))
        .collect()
}

impl Contexts {
    /// The start of every slice of a sliced code: instead of uniform tables (which a slice of
    /// a few hundred bytes cannot afford to learn from), tables primed with the typical shape
    /// of each context — geometric magnitudes, flatter where the neighbours are large and in
    /// low bands, end-of-block positions around the neighbours' — still adapting as before.
    fn primed() -> Self {
        let centre = [0.0f32, 1.0, 2.0, 3.5, 6.5, 12.0, 21.0, 40.0];
        Contexts {
            dc: (0..DC_CTX)
                .map(|c| Adaptive::with(&geometric(MAG_SYMBOLS, 0.55 + 0.05 * c as f32, PRIME_TOTAL), 24))
                .collect(),
            eob: (0..EOB_CTX)
                .map(|c| {
                    let (m, sc) = (centre[c], 1.0 + centre[c] / 2.0);
                    let w: Vec<u16> = (0..N)
                        .map(|e| 1 + (24.0 * (-(e as f32 - m).abs() / sc).exp()).round() as u16)
                        .collect();
                    Adaptive::with(&w, 24)
                })
                .collect(),
            ac: (0..BANDS * AC_NCTX)
                .map(|i| {
                    let (b, c) = (i / AC_NCTX, i % AC_NCTX);
                    let r = (0.1 + 0.15 * (c / 3) as f32 + 0.1 * (c % 3) as f32) * (1.0 - 0.04 * b as f32);
                    Adaptive::with(&geometric(MAG_SYMBOLS, r, PRIME_TOTAL), 24)
                })
                .collect(),
            esc: Adaptive::new(ESC_CLASSES, 24),
        }
    }

    fn new() -> Self {
        Contexts {
            dc: (0..DC_CTX).map(|_| Adaptive::new(MAG_SYMBOLS, 24)).collect(),
            eob: (0..EOB_CTX).map(|_| Adaptive::new(N, 24)).collect(),
            ac: (0..BANDS * AC_NCTX).map(|_| Adaptive::new(MAG_SYMBOLS, 24)).collect(),
            esc: Adaptive::new(ESC_CLASSES, 24),
        }
    }
}

/// Codes a magnitude: a token 0–14, or 15 and an Exp-Golomb class with raw low bits.
fn code_mag<I: Io>(io: &mut I, t: &mut Adaptive, esc: &mut Adaptive, m: u32) -> Result<u32, CodecError> {
    let s = io.symbol(t, (m as usize).min(MAG_SYMBOLS - 1))? as u32;
    if s < MAG_SYMBOLS as u32 - 1 {
        return Ok(s);
    }
    let e = m.wrapping_sub(s).wrapping_add(1); // ≥ 1 when encoding
    let k = io.symbol(esc, (32 - e.leading_zeros()) as usize)? as u32;
    if k == 0 {
        return Err(CodecError::Payload("escape class 0".into()));
    }
    let low_n = k - 1;
    let hi_n = low_n.saturating_sub(16);
    let hi = io.bits(e >> 16 & ((1 << hi_n) - 1), hi_n)?;
    let lo = io.bits(e & ((1u32 << low_n.min(16)) - 1), low_n.min(16))?;
    let e = (1u32 << low_n) | (hi << 16) | lo;
    Ok(s + e - 1)
}

/// Codes a signed value as a magnitude and a raw sign bit.
fn code_signed<I: Io>(io: &mut I, t: &mut Adaptive, esc: &mut Adaptive, v: i32) -> Result<i32, CodecError> {
    let m = code_mag(io, t, esc, v.unsigned_abs())?;
    if m == 0 {
        return Ok(0);
    }
    let neg = io.bits(u32::from(v < 0), 1)? == 1;
    if m > MAX_Q as u32 {
        return Err(CodecError::Payload(format!("coefficient magnitude {m} out of range")));
    }
    Ok(if neg { -(m as i32) } else { m as i32 })
}

fn med(a: i32, b: i32, c: i32) -> i32 {
    // Median predictor (LOCO-I): a = left, b = up, c = up-left.
    if c >= a.max(b) {
        a.min(b)
    } else if c <= a.min(b) {
        a.max(b)
    } else {
        a + b - c
    }
}

/// The single walk over one component's quantised blocks (`bw × bh` blocks, 64 each): the
/// encoder reads `q`, the decoder fills it in.
fn walk_plane<I: Io>(io: &mut I, ctx: &mut Contexts, q: &mut [i32], bw: usize, bh: usize) -> Result<(), CodecError> {
    let mut eobs = vec![0u32; bw * bh];
    for by in 0..bh {
        for bx in 0..bw {
            let b = by * bw + bx;
            let left = (bx > 0).then(|| b - 1);
            let up = (by > 0).then(|| b - bw);
            // DC.
            let l0 = left.map(|l| q[l * N]);
            let u0 = up.map(|u| q[u * N]);
            let pred = match (l0, u0) {
                (Some(a), Some(bb)) => med(a, bb, q[(b - bw - 1) * N]),
                (Some(a), None) => a,
                (None, Some(bb)) => bb,
                (None, None) => 0,
            };
            let dctx = bucket(l0.zip(u0).map_or(0, |(a, bb)| (a - bb).unsigned_abs()));
            let r = code_signed(io, &mut ctx.dc[dctx], &mut ctx.esc, q[b * N].wrapping_sub(pred))?;
            let dc = pred
                .checked_add(r)
                .filter(|v| v.abs() <= MAX_Q)
                .ok_or_else(|| CodecError::Payload("DC coefficient out of range".into()))?;
            q[b * N] = dc;
            // End of block.
            let blk = &q[b * N..(b + 1) * N];
            let eob = if io.decoding() {
                0
            } else {
                (1..N).rev().find(|&i| blk[i] != 0).unwrap_or(0)
            };
            let near = match (left, up) {
                (Some(l), Some(u)) => (eobs[l] + eobs[u]).div_ceil(2),
                (Some(n), None) | (None, Some(n)) => eobs[n],
                (None, None) => 0,
            };
            let ectx = eob_bucket(near);
            let eob = io.symbol(&mut ctx.eob[ectx], eob)?;
            eobs[b] = eob as u32;
            // Coefficients 1..=eob.
            let mut p1 = 0u32;
            let mut p2 = 0u32;
            for i in 1..=eob {
                let a = left.map_or(0, |l| q[l * N + i].unsigned_abs()) + up.map_or(0, |u| q[u * N + i].unsigned_abs());
                let c = (a.min(2) * 3 + (p1 + p2).min(2)) as usize;
                let t = &mut ctx.ac[band(i) * AC_NCTX + c];
                let v = code_signed(io, t, &mut ctx.esc, q[b * N + i])?;
                q[b * N + i] = v;
                p2 = p1;
                p1 = v.unsigned_abs();
            }
            if io.decoding() {
                q[b * N + eob + 1..(b + 1) * N].fill(0);
            }
        }
    }
    Ok(())
}

/// Component planes padded to whole blocks.
struct Planes {
    /// Padded width and height.
    pw: usize,
    ph: usize,
    data: Vec<Vec<f32>>,
}

impl DigitalModel {
    /// The configuration.
    pub fn config(&self) -> &DigitalConfig {
        &self.config
    }

    /// The model id (first 4 bytes of SHA-256 of the model file).
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// A model from its parts; the id is that of its serialised form.
    pub fn from_parts(
        config: DigitalConfig,
        colour: [f32; 9],
        colour_mean: [f32; 3],
        basis: [Vec<f32>; 3],
    ) -> Result<Self, CodecError> {
        config.validate().map_err(CodecError::Input)?;
        if basis.iter().any(|b| b.len() != N * N) {
            return Err(CodecError::Input(format!("block transforms must be {N} × {N}")));
        }
        let all = colour.iter().chain(&colour_mean).chain(basis.iter().flatten());
        if all.clone().any(|v| !v.is_finite()) {
            return Err(CodecError::Input("non-finite transform values".into()));
        }
        check_orthonormal(&colour, 3, "colour transform")?;
        for (c, b) in basis.iter().enumerate() {
            check_orthonormal(b, N, &format!("block transform {c}"))?;
        }
        let mut m = DigitalModel {
            config,
            colour,
            colour_mean,
            basis,
            id: ModelId(0),
        };
        m.id = ModelId::of_bytes(&m.to_bytes()?);
        Ok(m)
    }

    /// The built-in model: BT.601 luma with orthonormalised colour differences and the 2-D DCT
    /// (no training; the reference the fitted KLT is measured against).
    pub fn dct() -> Self {
        let s3 = 1f32 / 3f32.sqrt();
        let s2 = std::f32::consts::FRAC_1_SQRT_2;
        let s6 = 1f32 / 6f32.sqrt();
        let colour = [s3, s3, s3, s2, 0.0, -s2, -s6, 2.0 * s6, -s6];
        let mut d = vec![0f32; B * B];
        for k in 0..B {
            for n in 0..B {
                let a = if k == 0 {
                    (1.0 / B as f64).sqrt()
                } else {
                    (2.0 / B as f64).sqrt()
                };
                d[k * B + n] = (a * (std::f64::consts::PI * (n as f64 + 0.5) * k as f64 / B as f64).cos()) as f32;
            }
        }
        let mut order: Vec<(usize, usize)> = (0..B).flat_map(|u| (0..B).map(move |v| (u, v))).collect();
        order.sort_by_key(|&(u, v)| (u + v, u.min(v), u));
        let mut basis = vec![0f32; N * N];
        for (r, &(u, v)) in order.iter().enumerate() {
            for y in 0..B {
                for x in 0..B {
                    basis[r * N + y * B + x] = d[u * B + y] * d[v * B + x];
                }
            }
        }
        Self::from_parts(
            DigitalConfig::default_for("dct"),
            colour,
            [127.5; 3],
            [basis.clone(), basis.clone(), basis],
        )
        .expect("the DCT model is valid")
    }

    /// A copy with another configuration (for tuning; the id changes with it).
    pub fn with_config(&self, config: DigitalConfig) -> Result<Self, CodecError> {
        Self::from_parts(config, self.colour, self.colour_mean, self.basis.clone())
    }

    fn components(channels: usize) -> usize {
        if channels == 1 {
            1
        } else {
            3
        }
    }

    /// Colour-transformed component planes (8-bit units, mean removed), padded to whole
    /// blocks by edge replication.
    fn forward_colour(&self, pic: &Picture) -> Planes {
        let (w, h) = (pic.width(), pic.height());
        let (pw, ph) = (w.div_ceil(B) * B, h.div_ceil(B) * B);
        let nc = Self::components(pic.channels());
        let mut data = vec![vec![0f32; pw * ph]; nc];
        for y in 0..ph {
            let sy = y.min(h - 1);
            for x in 0..pw {
                let s = sy * w + x.min(w - 1);
                if nc == 1 {
                    data[0][y * pw + x] = pic.plane(0)[s] * 255.0 - 127.5;
                } else {
                    let rgb = [0, 1, 2].map(|c| pic.plane(c)[s] * 255.0 - self.colour_mean[c]);
                    for (c, plane) in data.iter_mut().enumerate() {
                        let m = &self.colour[c * 3..c * 3 + 3];
                        plane[y * pw + x] = m[0] * rgb[0] + m[1] * rgb[1] + m[2] * rgb[2];
                    }
                }
            }
        }
        Planes { pw, ph, data }
    }

    /// Block coefficients of each component plane, block-major.
    fn analyse(&self, planes: &Planes) -> Vec<Vec<f32>> {
        let (bw, bh) = (planes.pw / B, planes.ph / B);
        let mut out = Vec::with_capacity(planes.data.len());
        for (c, plane) in planes.data.iter().enumerate() {
            let basis = &self.basis[c];
            let mut coef = vec![0f32; bw * bh * N];
            let mut blk = [0f32; N];
            for by in 0..bh {
                for bx in 0..bw {
                    for y in 0..B {
                        let row = (by * B + y) * planes.pw + bx * B;
                        blk[y * B..y * B + B].copy_from_slice(&plane[row..row + B]);
                    }
                    let o = &mut coef[(by * bw + bx) * N..(by * bw + bx + 1) * N];
                    for (k, v) in o.iter_mut().enumerate() {
                        *v = dot(&basis[k * N..(k + 1) * N], &blk);
                    }
                }
            }
            out.push(coef);
        }
        out
    }

    fn steps(&self, step_q: u16, nc: usize) -> Vec<f32> {
        let d = step_size(step_q);
        (0..nc)
            .map(|c| if c == 0 { d } else { d * self.config.chroma_step })
            .collect()
    }

    fn quantise(&self, coef: &[Vec<f32>], step_q: u16) -> Vec<Vec<i32>> {
        let steps = self.steps(step_q, coef.len());
        let rho = self.config.rounding;
        coef.iter()
            .zip(&steps)
            .map(|(cs, &d)| {
                let inv = 1.0 / d;
                cs.iter()
                    .map(|&c| {
                        let m = ((c.abs() * inv + rho).floor() as i32).min(MAX_Q);
                        if c < 0.0 {
                            -m
                        } else {
                            m
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn entropy_code(q: &mut [Vec<i32>], bw: usize, bh: usize) -> Result<Vec<u8>, CodecError> {
        let mut enc = RangeEncoder::new();
        {
            let mut io = Enc(&mut enc);
            for plane in q.iter_mut() {
                let mut ctx = Contexts::new();
                walk_plane(&mut io, &mut ctx, plane, bw, bh)?;
            }
        }
        Ok(enc.finish())
    }

    /// The sliced payload: a table of slice lengths (varints), then per band of `rows` block
    /// rows one range-coded stream of every component's blocks, each with fresh contexts.
    fn entropy_code_sliced(q: &mut [Vec<i32>], bw: usize, bh: usize, rows: usize) -> Result<Vec<u8>, CodecError> {
        let mut table = Vec::new();
        let mut body = Vec::new();
        for r0 in (0..bh).step_by(rows.max(1)) {
            let r1 = (r0 + rows).min(bh);
            let mut enc = RangeEncoder::new();
            {
                let mut io = Enc(&mut enc);
                let mut luma = Contexts::primed();
                let mut chroma = Contexts::primed();
                for (c, plane) in q.iter_mut().enumerate() {
                    let ctx = if c == 0 { &mut luma } else { &mut chroma };
                    walk_plane(&mut io, ctx, &mut plane[r0 * bw * N..r1 * bw * N], bw, r1 - r0)?;
                }
            }
            let bytes = enc.finish();
            put_varint(&mut table, bytes.len() as u64);
            body.extend_from_slice(&bytes);
        }
        table.extend_from_slice(&body);
        Ok(table)
    }

    /// Decodes one slice (block rows `r0..r1` of every component) into `q`: in the sliced
    /// mode with primed contexts shared by the two colour components, else (the whole image
    /// as one slice) with fresh contexts per component.
    fn decode_slice(
        bytes: &[u8],
        q: &mut [Vec<i32>],
        bw: usize,
        (r0, r1): (usize, usize),
        sliced: bool,
    ) -> Result<(), CodecError> {
        let mut dec = RangeDecoder::new(bytes);
        let mut io = Dec(&mut dec);
        let start = || if sliced { Contexts::primed() } else { Contexts::new() };
        let mut luma = start();
        let mut chroma = start();
        for (c, plane) in q.iter_mut().enumerate() {
            if c == 2 && !sliced {
                chroma = start();
            }
            let ctx = if c == 0 { &mut luma } else { &mut chroma };
            walk_plane(&mut io, ctx, &mut plane[r0 * bw * N..r1 * bw * N], bw, r1 - r0)?;
            if io.0.overran() {
                return Err(CodecError::Payload(
                    if sliced {
                        "slice ends before its blocks do"
                    } else {
                        "payload ends before the image does"
                    }
                    .into(),
                ));
            }
        }
        Ok(())
    }

    /// Transform coefficients of a picture, computed once for a rate search.
    fn coefficients(&self, pic: &Picture) -> (Vec<Vec<f32>>, usize, usize) {
        let planes = self.forward_colour(pic);
        let (bw, bh) = (planes.pw / B, planes.ph / B);
        (self.analyse(&planes), bw, bh)
    }

    /// Encodes a picture at rate parameter `step_q` (0–[`MAX_STEP_Q`]).
    pub fn encode(&self, pic: &Picture, step_q: u16) -> Result<DigitalCode, CodecError> {
        let (coef, bw, bh) = self.coefficients(pic);
        self.encode_coef(pic, &coef, bw, bh, step_q, None)
    }

    /// Encodes a picture in the sliced mode: bands of `slice_rows` block rows (8 pixel rows
    /// each), each independently decodable. The tokens, and so the reconstruction, are those
    /// of [`DigitalModel::encode`] at the same step.
    pub fn encode_sliced(&self, pic: &Picture, step_q: u16, slice_rows: u32) -> Result<DigitalCode, CodecError> {
        let (coef, bw, bh) = self.coefficients(pic);
        self.encode_coef(pic, &coef, bw, bh, step_q, Some(slice_rows))
    }

    fn encode_coef(
        &self,
        pic: &Picture,
        coef: &[Vec<f32>],
        bw: usize,
        bh: usize,
        step_q: u16,
        slice_rows: Option<u32>,
    ) -> Result<DigitalCode, CodecError> {
        if step_q > MAX_STEP_Q {
            return Err(CodecError::Input(format!("step {step_q} above {MAX_STEP_Q}")));
        }
        let mut q = self.quantise(coef, step_q);
        let payload = match slice_rows {
            None => Self::entropy_code(&mut q, bw, bh)?,
            Some(r) if r >= 1 && u64::from(r) <= MAX_SLICE_ROWS => {
                Self::entropy_code_sliced(&mut q, bw, bh, r as usize)?
            }
            Some(r) => {
                return Err(CodecError::Input(format!(
                    "slice height {r} block rows (1–{MAX_SLICE_ROWS})"
                )))
            }
        };
        Ok(DigitalCode {
            width: pic.width(),
            height: pic.height(),
            channels: pic.channels(),
            step_q,
            slice_rows,
            payload,
        })
    }

    /// Encodes at the finest step whose payload fits `max_bytes` (the coarsest step when none
    /// does): a bisection on the rate parameter over one transform of the picture.
    pub fn encode_within(&self, pic: &Picture, max_bytes: usize) -> Result<DigitalCode, CodecError> {
        self.search(pic, max_bytes, None)
    }

    /// [`DigitalModel::encode_within`] in the sliced mode with `slice_rows` block rows per
    /// slice (see [`slice_rows_for`] to aim at a slice size in bytes).
    pub fn encode_within_sliced(
        &self,
        pic: &Picture,
        max_bytes: usize,
        slice_rows: u32,
    ) -> Result<DigitalCode, CodecError> {
        self.search(pic, max_bytes, Some(slice_rows))
    }

    fn search(&self, pic: &Picture, max_bytes: usize, slice_rows: Option<u32>) -> Result<DigitalCode, CodecError> {
        let (coef, bw, bh) = self.coefficients(pic);
        let (mut lo, mut hi) = (0u16, MAX_STEP_Q);
        let mut best = self.encode_coef(pic, &coef, bw, bh, MAX_STEP_Q, slice_rows)?;
        // Invariant: hi fits (or is the coarsest); find the smallest step that fits.
        while lo < hi {
            let mid = (lo + hi) / 2;
            let c = self.encode_coef(pic, &coef, bw, bh, mid, slice_rows)?;
            if c.payload.len() <= max_bytes {
                hi = mid;
                best = c;
            } else {
                lo = mid + 1;
            }
        }
        if best.step_q != hi {
            best = self.encode_coef(pic, &coef, bw, bh, hi, slice_rows)?;
        }
        Ok(best)
    }

    /// Checks a code's shape and returns its blocks across, down and its component count.
    fn check_code(code: &DigitalCode, max_pixels: usize) -> Result<(usize, usize, usize), CodecError> {
        let (w, h) = (code.width, code.height);
        if w == 0 || h == 0 || !(code.channels == 1 || code.channels == 3) {
            return Err(CodecError::Input(format!("bad image shape {w}×{h}×{}", code.channels)));
        }
        if w.saturating_mul(h) > max_pixels {
            return Err(CodecError::Input(format!(
                "{w}×{h} is larger than the {max_pixels}-pixel limit"
            )));
        }
        if code.step_q > MAX_STEP_Q {
            return Err(CodecError::Input(format!("step {} above {MAX_STEP_Q}", code.step_q)));
        }
        if let Some(r) = code.slice_rows {
            if r == 0 || u64::from(r) > MAX_SLICE_ROWS {
                return Err(CodecError::Input(format!(
                    "slice height {r} block rows (1–{MAX_SLICE_ROWS})"
                )));
            }
        }
        Ok((w.div_ceil(B), h.div_ceil(B), Self::components(code.channels)))
    }

    /// Decodes a code (images above `max_pixels` are refused before anything is allocated).
    pub fn decode(&self, code: &DigitalCode, max_pixels: usize) -> Result<Picture, CodecError> {
        let (bw, bh, nc) = Self::check_code(code, max_pixels)?;
        let (w, h) = (code.width, code.height);
        let mut q = Vec::with_capacity(nc);
        if let Some(rows) = code.slice_rows {
            let (_, ranges) = code.slices(&[])?;
            let end = ranges.last().map_or(0, |r| r.end);
            if end != code.payload.len() {
                return Err(CodecError::Payload(format!(
                    "the slices end at byte {end} of a {}-byte payload",
                    code.payload.len()
                )));
            }
            q.resize(nc, vec![0i32; bw * bh * N]);
            for (i, r) in ranges.into_iter().enumerate() {
                let r0 = i * rows as usize;
                Self::decode_slice(&code.payload[r], &mut q, bw, (r0, (r0 + rows as usize).min(bh)), true)?;
            }
            return Ok(self.reconstruct(&q, code.step_q, w, h, code.channels));
        }
        q.resize(nc, vec![0i32; bw * bh * N]);
        Self::decode_slice(&code.payload, &mut q, bw, (0, bh), false)?;
        Ok(self.reconstruct(&q, code.step_q, w, h, code.channels))
    }

    /// Decodes a code of which the payload byte ranges `lost` did not arrive (their bytes in
    /// `code.payload` are ignored; bytes past the payload's end count as lost too, so a cut
    /// payload may be given). A slice that overlaps a lost range, or that does not decode, is
    /// missing: [`Conceal::Blank`] leaves its tokens zero, [`Conceal::Prior`] fills them with
    /// the most likely tokens given the received neighbours (see [`Conceal::Prior`]). An
    /// unsliced code is one slice. A lost slice table is [`CodecError::Lost`]: the table
    /// must travel at a more robust importance class than the slices.
    pub fn decode_concealed(
        &self,
        code: &DigitalCode,
        lost: &[Range<usize>],
        conceal: Conceal,
        max_pixels: usize,
    ) -> Result<(Picture, ConcealReport), CodecError> {
        let (bw, bh, nc) = Self::check_code(code, max_pixels)?;
        let mut lost: Vec<Range<usize>> = lost.iter().filter(|l| l.start < l.end).cloned().collect();
        lost.push(code.payload.len()..usize::MAX);
        let (_, ranges) = code.slices(&lost)?;
        let rows = code.slice_rows.map_or(bh, |r| r as usize);
        let mut q = vec![vec![0i32; bw * bh * N]; nc];
        let mut missing = vec![false; bh];
        let mut report = ConcealReport {
            slices: ranges.len(),
            ..ConcealReport::default()
        };
        for (i, r) in ranges.into_iter().enumerate() {
            let (r0, r1) = (i * rows, ((i + 1) * rows).min(bh));
            let gone = lost.iter().any(|l| l.start < r.end && l.end > r.start);
            if gone {
                report.lost_slices += 1;
            } else if Self::decode_slice(&code.payload[r], &mut q, bw, (r0, r1), code.slice_rows.is_some()).is_err() {
                report.undecodable_slices += 1;
                for plane in q.iter_mut() {
                    plane[r0 * bw * N..r1 * bw * N].fill(0);
                }
            } else {
                continue;
            }
            missing[r0..r1].fill(true);
            report.concealed_blocks += (r1 - r0) * bw * nc;
        }
        if conceal == Conceal::Prior && missing.contains(&true) && !missing.iter().all(|&m| m) {
            self.conceal_prior(&mut q, code.step_q, bw, bh, &missing);
        }
        if conceal == Conceal::Blank {
            report.concealed_blocks = 0;
        }
        Ok((
            self.reconstruct(&q, code.step_q, code.width, code.height, code.channels),
            report,
        ))
    }

    /// Fills the blocks of the `missing` block rows with the tokens of the most likely content
    /// given the received rows: per component, the smooth part of the received rows on each
    /// side (mean of the last rows, box-filtered along the row) is interpolated linearly across
    /// the missing band, and the texture of each side's edge row fades in from that side
    /// (texture far from the edge is uncorrelated with it, so its best estimate is the smooth
    /// part); a band at the image edge is continued from its one side. The estimate is then
    /// forward-transformed and quantised to the nearest reconstruction value.
    fn conceal_prior(&self, q: &mut [Vec<i32>], step_q: u16, bw: usize, bh: usize, missing: &[bool]) {
        let pw = bw * B;
        let ph = bh * B;
        let mut planes = self.synthesise(q, step_q, bw, bh);
        let steps = self.steps(step_q, q.len());
        let bias = self.config.recon_bias;
        let mut r = 0;
        while r < bh {
            if !missing[r] {
                r += 1;
                continue;
            }
            let r0 = r;
            while r < bh && missing[r] {
                r += 1;
            }
            let (y0, y1) = (r0 * B, r * B);
            for (c, plane) in planes.iter_mut().enumerate() {
                // Each side: its edge row and a smooth version (the mean of its last
                // `SMOOTH_ROWS` rows, box-filtered along the row). The smooth rows are
                // interpolated across the band; the edge row's detail fades with the distance.
                let side = |rows: Range<usize>, edge: usize| {
                    let raw = plane[edge * pw..(edge + 1) * pw].to_vec();
                    let n = rows.len() as f32;
                    let mean: Vec<f32> = (0..pw)
                        .map(|x| rows.clone().map(|y| plane[y * pw + x]).sum::<f32>() / n)
                        .collect();
                    let smooth: Vec<f32> = (0..pw)
                        .map(|x| {
                            let (a, b) = (x.saturating_sub(SMOOTH_RADIUS), (x + SMOOTH_RADIUS + 1).min(pw));
                            mean[a..b].iter().sum::<f32>() / (b - a) as f32
                        })
                        .collect();
                    let detail: Vec<f32> = raw.iter().zip(&smooth).map(|(r, s)| r - s).collect();
                    (smooth, detail)
                };
                let above = (y0 > 0).then(|| side(y0.saturating_sub(SMOOTH_ROWS)..y0, y0 - 1));
                let below = (y1 < ph).then(|| side(y1..(y1 + SMOOTH_ROWS).min(ph), y1));
                let span = (y1 - y0 + 1) as f32;
                for y in y0..y1 {
                    let t = (y - y0 + 1) as f32 / span;
                    let (fa, fb) = (DETAIL_FADE.powi((y - y0 + 1) as i32), DETAIL_FADE.powi((y1 - y) as i32));
                    for x in 0..pw {
                        plane[y * pw + x] = match (&above, &below) {
                            (Some(a), Some(b)) => a.0[x] * (1.0 - t) + b.0[x] * t + a.1[x] * fa + b.1[x] * fb,
                            (Some(a), None) => a.0[x] + a.1[x] * fa,
                            (None, Some(b)) => b.0[x] + b.1[x] * fb,
                            (None, None) => 0.0,
                        };
                    }
                }
                let basis = &self.basis[c];
                let inv = 1.0 / steps[c];
                let mut blk = [0f32; N];
                for by in r0..r {
                    for bx in 0..bw {
                        for y in 0..B {
                            let row = (by * B + y) * pw + bx * B;
                            blk[y * B..y * B + B].copy_from_slice(&plane[row..row + B]);
                        }
                        let o = &mut q[c][(by * bw + bx) * N..(by * bw + bx + 1) * N];
                        for (k, v) in o.iter_mut().enumerate() {
                            let cv = dot(&basis[k * N..(k + 1) * N], &blk);
                            let m = ((cv.abs() * inv + 0.5 + bias).floor().max(0.0) as i32).min(MAX_Q);
                            *v = if cv < 0.0 { -m } else { m };
                        }
                    }
                }
            }
        }
    }

    /// Component planes (padded to whole blocks) from quantised coefficients: dequantise and
    /// inverse block transform, no deblocking.
    fn synthesise(&self, q: &[Vec<i32>], step_q: u16, bw: usize, bh: usize) -> Vec<Vec<f32>> {
        let (pw, ph) = (bw * B, bh * B);
        let steps = self.steps(step_q, q.len());
        let delta = self.config.recon_bias;
        let mut planes = Vec::with_capacity(q.len());
        for (c, qs) in q.iter().enumerate() {
            let basis = &self.basis[c];
            let d = steps[c];
            let mut plane = vec![0f32; pw * ph];
            let mut blk = [0f32; N];
            for by in 0..bh {
                for bx in 0..bw {
                    blk.fill(0.0);
                    let qb = &qs[(by * bw + bx) * N..(by * bw + bx + 1) * N];
                    for (k, &v) in qb.iter().enumerate() {
                        if v != 0 {
                            let m = (v.unsigned_abs() as f32 - delta) * d;
                            let cv = if v < 0 { -m } else { m };
                            for (o, &r) in blk.iter_mut().zip(&basis[k * N..(k + 1) * N]) {
                                *o += cv * r;
                            }
                        }
                    }
                    for y in 0..B {
                        let row = (by * B + y) * pw + bx * B;
                        plane[row..row + B].copy_from_slice(&blk[y * B..y * B + B]);
                    }
                }
            }
            planes.push(plane);
        }
        planes
    }

    /// Pixels from quantised coefficients: dequantise, inverse transforms, deblock, clamp.
    fn reconstruct(&self, q: &[Vec<i32>], step_q: u16, w: usize, h: usize, channels: usize) -> Picture {
        let (bw, bh) = (w.div_ceil(B), h.div_ceil(B));
        let pw = bw * B;
        let ph = bh * B;
        let steps = self.steps(step_q, q.len());
        let mut planes = self.synthesise(q, step_q, bw, bh);
        if self.config.deblock > 0.0 {
            for (plane, d) in planes.iter_mut().zip(&steps) {
                deblock(plane, pw, ph, self.config.deblock * d);
            }
        }
        let mut data = vec![0f32; w * h * channels];
        for y in 0..h {
            for x in 0..w {
                let s = y * pw + x;
                if channels == 1 {
                    data[y * w + x] = ((planes[0][s] + 127.5) / 255.0).clamp(0.0, 1.0);
                } else {
                    let v = [planes[0][s], planes[1][s], planes[2][s]];
                    for k in 0..3 {
                        let r = self.colour[k] * v[0] + self.colour[3 + k] * v[1] + self.colour[6 + k] * v[2];
                        data[k * w * h + y * w + x] = ((r + self.colour_mean[k]) / 255.0).clamp(0.0, 1.0);
                    }
                }
            }
        }
        Picture::new(w, h, channels, data).expect("finite samples of a valid shape")
    }

    /// The picture the decoder will show for `code`, from the encoder's side (the same
    /// function as [`DigitalModel::decode`]).
    pub fn reconstruction(&self, code: &DigitalCode) -> Result<Picture, CodecError> {
        self.decode(code, usize::MAX)
    }

    /// Serialises the model (safetensors, f32, config JSON in metadata).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut data: Vec<(String, Vec<usize>, &[f32])> = vec![
            ("colour.matrix".into(), vec![3, 3], &self.colour),
            ("colour.mean".into(), vec![3], &self.colour_mean),
        ];
        for (c, b) in self.basis.iter().enumerate() {
            data.push((format!("block.basis.{c}"), vec![N, N], b));
        }
        crate::modelfile::to_bytes(META_CONFIG, &self.config, &data)
    }

    /// Loads a model from a file's bytes (`path` names it in errors).
    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, CodecError> {
        let bad = |reason: String| crate::modelfile::bad(path, reason);
        let (config, t): (DigitalConfig, _) = crate::modelfile::from_bytes(bytes, path, META_CONFIG, "digital image")?;
        let get = |name: &str, len: usize| t.get_len(name, len);
        let colour: [f32; 9] = get("colour.matrix", 9)?.try_into().expect("length checked");
        let colour_mean: [f32; 3] = get("colour.mean", 3)?.try_into().expect("length checked");
        let basis = [
            get("block.basis.0", N * N)?,
            get("block.basis.1", N * N)?,
            get("block.basis.2", N * N)?,
        ];
        let mut m = Self::from_parts(config, colour, colour_mean, basis).map_err(|e| match e {
            CodecError::Input(r) | CodecError::Backend(r) => bad(r),
            e => e,
        })?;
        m.id = ModelId::of_bytes(bytes);
        Ok(m)
    }

    /// Loads a model file.
    pub fn load(path: &Path) -> Result<Self, CodecError> {
        let bytes = std::fs::read(path).map_err(|source| CodecError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Fits the transforms on training pictures: the colour KLT of their pixels, then for
    /// each component the KLT of its 8 × 8 blocks (second moments about the colour mean), or
    /// the DCT when `config.transform` is `dct`.
    pub fn fit(pics: &[&Picture], config: DigitalConfig) -> Result<Self, CodecError> {
        if pics.is_empty() {
            return Err(CodecError::Input("no training pictures".into()));
        }
        // Colour: mean and covariance of RGB pixels (8-bit units).
        let mut sum = [0f64; 3];
        let mut cnt = 0f64;
        let mut m2 = [0f64; 9];
        for p in pics.iter().filter(|p| p.channels() == 3) {
            let n = p.width() * p.height();
            for i in 0..n {
                let v = [0, 1, 2].map(|c| f64::from(p.plane(c)[i]) * 255.0);
                for a in 0..3 {
                    sum[a] += v[a];
                    for b in 0..3 {
                        m2[a * 3 + b] += v[a] * v[b];
                    }
                }
            }
            cnt += n as f64;
        }
        if cnt == 0.0 {
            return Err(CodecError::Input("no colour training pictures".into()));
        }
        let mean = sum.map(|s| s / cnt);
        let mut cov = [0f64; 9];
        for a in 0..3 {
            for b in 0..3 {
                cov[a * 3 + b] = m2[a * 3 + b] / cnt - mean[a] * mean[b];
            }
        }
        let (_, vecs) = crate::sensor::klt::symmetric_eigen(&cov, 3);
        let mut colour = [0f32; 9];
        for r in 0..3 {
            // Sign: the luma-like row positive, the others with a positive first entry.
            let s = if vecs[r * 3..r * 3 + 3].iter().sum::<f64>() < 0.0 && r == 0 || r > 0 && vecs[r * 3] < 0.0 {
                -1.0
            } else {
                1.0
            };
            for k in 0..3 {
                colour[r * 3 + k] = (s * vecs[r * 3 + k]) as f32;
            }
        }
        let colour_mean = mean.map(|m| m as f32);
        if !matches!(config.transform.as_str(), "klt" | "dct") {
            return Err(CodecError::Input(format!(
                "transform `{}`: klt or dct",
                config.transform
            )));
        }
        // Blocks: per component second moments of whole 8 × 8 blocks.
        let staging = Self::from_parts(config.clone(), colour, colour_mean, DigitalModel::dct().basis.clone())?;
        let mut acc = vec![vec![0f64; N * N]; 3];
        for p in pics.iter().filter(|p| p.channels() == 3) {
            let planes = staging.forward_colour(p);
            let (bw, bh) = (p.width() / B, p.height() / B);
            for (c, plane) in planes.data.iter().enumerate() {
                let a = &mut acc[c];
                let mut blk = [0f64; N];
                for by in 0..bh {
                    for bx in 0..bw {
                        for y in 0..B {
                            for x in 0..B {
                                blk[y * B + x] = f64::from(plane[(by * B + y) * planes.pw + bx * B + x]);
                            }
                        }
                        for i in 0..N {
                            let bi = blk[i];
                            for j in i..N {
                                a[i * N + j] += bi * blk[j];
                            }
                        }
                    }
                }
            }
        }
        if config.transform == "dct" {
            return Self::from_parts(config, colour, colour_mean, DigitalModel::dct().basis);
        }
        let mut basis: [Vec<f32>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for (c, a) in acc.iter_mut().enumerate() {
            for i in 0..N {
                for j in 0..i {
                    a[i * N + j] = a[j * N + i];
                }
            }
            let (_, vecs) = crate::sensor::klt::symmetric_eigen(a, N);
            let mut rows: Vec<f64> = vecs;
            // Re-orthonormalise in f64 (Gram–Schmidt) and fix signs: positive sum, or positive
            // first non-negligible entry.
            for r in 0..N {
                for s in 0..r {
                    let d: f64 = (0..N).map(|t| rows[r * N + t] * rows[s * N + t]).sum();
                    for t in 0..N {
                        rows[r * N + t] -= d * rows[s * N + t];
                    }
                }
                let norm = (0..N).map(|t| rows[r * N + t].powi(2)).sum::<f64>().sqrt();
                let sum: f64 = rows[r * N..(r + 1) * N].iter().sum();
                let first = rows[r * N..(r + 1) * N]
                    .iter()
                    .copied()
                    .find(|v| v.abs() > 1e-6)
                    .unwrap_or(1.0);
                let sign = if sum.abs() > 1e-3 { sum.signum() } else { first.signum() };
                for t in 0..N {
                    rows[r * N + t] *= sign / norm;
                }
            }
            basis[c] = rows.iter().map(|&v| v as f32).collect();
        }
        Self::from_parts(config, colour, colour_mean, basis)
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            s[k] += ca[k] * cb[k];
        }
    }
    s.iter().sum()
}

fn check_orthonormal(m: &[f32], n: usize, what: &str) -> Result<(), CodecError> {
    for i in 0..n {
        for j in 0..=i {
            let d: f64 = (0..n).map(|t| f64::from(m[i * n + t]) * f64::from(m[j * n + t])).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            if (d - want).abs() > 1e-3 {
                return Err(CodecError::Input(format!(
                    "{what} is not orthonormal (rows {i}, {j}: {d:.4})"
                )));
            }
        }
    }
    Ok(())
}

/// Smooths block edges whose step is below `limit` (a quantisation artefact): the two pixels
/// either side move toward each other, by less for pixels further from the edge.
fn deblock(p: &mut [f32], w: usize, h: usize, limit: f32) {
    let mut edge = |a: usize, s: usize| {
        // a: the first pixel after the edge; s: the stride across it.
        let (p1, p0, q0, q1) = (p[a - 2 * s], p[a - s], p[a], p[a + s]);
        let d = q0 - p0;
        if d.abs() < limit && (p1 - p0).abs() < limit * 0.5 && (q1 - q0).abs() < limit * 0.5 {
            let t = d / 4.0;
            p[a - s] = p0 + t;
            p[a] = q0 - t;
            p[a - 2 * s] = p1 + t / 2.0;
            p[a + s] = q1 - t / 2.0;
        }
    };
    for y in 0..h {
        for x in (B..w).step_by(B) {
            edge(y * w + x, 1);
        }
    }
    for y in (B..h).step_by(B) {
        for x in 0..w {
            edge(y * w + x, w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::path::Path;

    /// A smooth colour pattern with texture and noise (seeded).
    fn test_picture(w: usize, h: usize, channels: usize, seed: u64) -> Picture {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = vec![0f32; w * h * channels];
        for c in 0..channels {
            for y in 0..h {
                for x in 0..w {
                    let v = 0.5
                        + 0.3 * ((x as f32 * 0.07 + c as f32).sin() * (y as f32 * 0.05).cos())
                        + 0.1 * ((x + y) as f32 * 0.6).sin()
                        + 0.03 * (rng.random::<f32>() - 0.5);
                    data[c * w * h + y * w + x] = v.clamp(0.0, 1.0);
                }
            }
        }
        Picture::new(w, h, channels, data).unwrap()
    }

    #[test]
    fn decode_matches_the_encoders_reconstruction_exactly() {
        let m = DigitalModel::dct();
        for (w, h, c) in [(37, 21, 3), (16, 16, 1), (1, 1, 3), (9, 70, 1)] {
            let pic = test_picture(w, h, c, 3);
            for step_q in [0, 40, 120, 250, MAX_STEP_Q] {
                let code = m.encode(&pic, step_q).unwrap();
                let parsed = DigitalCode::from_parts(&code.params(), &code.payload, 1 << 20).unwrap();
                assert_eq!(parsed, code);
                let a = m.decode(&parsed, 1 << 20).unwrap();
                let (qc, bw, bh) = m.coefficients(&pic);
                let q = m.quantise(&qc, step_q);
                let b = m.reconstruct(&q, step_q, w, h, c);
                assert_eq!(a, b, "{w}×{h}×{c} step {step_q}");
                assert_eq!((bw, bh), (w.div_ceil(B), h.div_ceil(B)));
            }
        }
    }

    #[test]
    fn finer_steps_cost_more_and_give_higher_psnr() {
        let m = DigitalModel::dct();
        let pic = test_picture(64, 48, 3, 5);
        let mut last: Option<(usize, f64)> = None;
        for step_q in [200, 140, 80, 20] {
            let code = m.encode(&pic, step_q).unwrap();
            let p = crate::picture::psnr(&pic, &m.decode(&code, 1 << 20).unwrap()).unwrap();
            if let Some((bytes, psnr)) = last {
                assert!(
                    code.payload.len() > bytes && p > psnr,
                    "step {step_q}: {} B {p:.2} dB",
                    code.payload.len()
                );
            }
            last = Some((code.payload.len(), p));
        }
        assert!(last.unwrap().1 > 45.0, "finest step: {:.2} dB", last.unwrap().1);
    }

    #[test]
    fn rate_control_meets_the_budget_closely() {
        let m = DigitalModel::dct();
        let pic = test_picture(96, 64, 3, 9);
        for bpp in [0.25, 0.5, 1.0, 2.0] {
            let budget = (bpp * (96.0 * 64.0) / 8.0) as usize;
            let code = m.encode_within(&pic, budget).unwrap();
            let len = code.payload.len();
            assert!(len <= budget, "{bpp} bpp: {len} > {budget}");
            assert!(len as f64 >= 0.93 * budget as f64, "{bpp} bpp: {len} of {budget}");
        }
    }

    #[test]
    fn corrupt_and_truncated_payloads_are_errors_or_pictures_never_panics() {
        let m = DigitalModel::dct();
        let pic = test_picture(40, 24, 3, 11);
        let code = m.encode(&pic, 60).unwrap();
        let cut = DigitalCode {
            payload: code.payload[..code.payload.len() / 2].to_vec(),
            ..code.clone()
        };
        assert!(matches!(m.decode(&cut, 1 << 20), Err(CodecError::Payload(_))));
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..200 {
            let mut c = code.clone();
            let i = rng.random_range(0..c.payload.len());
            c.payload[i] ^= 1 << rng.random_range(0..8);
            let _ = m.decode(&c, 1 << 20);
        }
    }

    #[test]
    fn bad_parameters_are_refused() {
        let code = DigitalCode {
            width: 0,
            height: 4,
            channels: 3,
            step_q: 10,
            slice_rows: None,
            payload: vec![],
        };
        assert!(DigitalCode::from_parts(&code.params(), &[], 1 << 20).is_err());
        let big = DigitalCode {
            width: 1 << 20,
            height: 1 << 20,
            ..code.clone()
        };
        assert!(DigitalCode::from_parts(&big.params(), &[], 1 << 20).is_err());
        let mut p = DigitalCode { width: 4, ..code }.params();
        assert!(DigitalCode::from_parts(&p, &[], 1 << 20).is_ok());
        p[0] = 2;
        assert!(DigitalCode::from_parts(&p, &[], 1 << 20).is_err());
        assert!(DigitalCode::from_parts(&[], &[], 1 << 20).is_err());
    }

    #[test]
    fn model_file_round_trips_and_other_files_are_refused() {
        let m = DigitalModel::dct();
        let bytes = m.to_bytes().unwrap();
        let back = DigitalModel::from_bytes(&bytes, "x").unwrap();
        assert_eq!(back.id(), m.id());
        assert!(matches!(
            DigitalModel::from_bytes(b"not a model", "x"),
            Err(CodecError::Model { .. })
        ));
    }

    #[test]
    fn fitted_transforms_are_orthonormal_and_decode() {
        let pics: Vec<Picture> = (0..3).map(|s| test_picture(64, 64, 3, s)).collect();
        let refs: Vec<&Picture> = pics.iter().collect();
        let m = DigitalModel::fit(&refs, DigitalConfig::default_for("klt")).unwrap();
        let code = m.encode(&pics[0], 60).unwrap();
        let back = m.decode(&code, 1 << 20).unwrap();
        assert!(crate::picture::psnr(&pics[0], &back).unwrap() > 30.0);
    }

    #[test]
    fn sliced_codes_decode_to_the_unsliced_reconstruction_exactly() {
        let m = DigitalModel::dct();
        for (w, h, c) in [(37, 21, 3), (16, 16, 1), (1, 1, 3), (40, 70, 3)] {
            let pic = test_picture(w, h, c, 4);
            for step_q in [0, 60, 200, MAX_STEP_Q] {
                let plain = m.encode(&pic, step_q).unwrap();
                let whole = m.decode(&plain, 1 << 20).unwrap();
                let (p, rep) = m.decode_concealed(&plain, &[], Conceal::Prior, 1 << 20).unwrap();
                assert_eq!((p, rep.slices, rep.concealed()), (whole.clone(), 1, false));
                for rows in [1, 2, 3, 100] {
                    let code = m.encode_sliced(&pic, step_q, rows).unwrap();
                    assert_eq!(code.slice_count(), h.div_ceil(B).div_ceil(rows as usize));
                    let parsed = DigitalCode::from_parts(&code.params(), &code.payload, 1 << 20).unwrap();
                    assert_eq!(parsed, code);
                    assert_eq!(
                        m.decode(&parsed, 1 << 20).unwrap(),
                        whole,
                        "{w}×{h}×{c} step {step_q} rows {rows}"
                    );
                    let (p, rep) = m.decode_concealed(&parsed, &[], Conceal::Prior, 1 << 20).unwrap();
                    assert_eq!(p, whole);
                    assert!(!rep.concealed());
                }
            }
        }
    }

    #[test]
    fn sliced_payloads_that_are_cut_or_padded_are_errors() {
        let m = DigitalModel::dct();
        let code = m.encode_sliced(&test_picture(40, 40, 3, 1), 40, 1).unwrap();
        for payload in [
            code.payload[..code.payload.len() - 1].to_vec(),
            [&code.payload[..], &[0]].concat(),
        ] {
            let c = DigitalCode {
                payload,
                ..code.clone()
            };
            assert!(matches!(m.decode(&c, 1 << 20), Err(CodecError::Payload(_))));
        }
        let c = DigitalCode {
            payload: vec![],
            ..code.clone()
        };
        assert!(matches!(m.decode(&c, 1 << 20), Err(CodecError::Payload(_))));
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn a_lost_slice_table_is_a_typed_error_and_lost_slices_are_counted() {
        let m = DigitalModel::dct();
        let pic = test_picture(64, 64, 3, 2);
        let code = m.encode_sliced(&pic, 60, 2).unwrap();
        let table = code.slice_table_len().unwrap();
        assert!((4..=8).contains(&table), "four one- or two-byte lengths: {table}");
        for lost in [0..1, table - 1..table + 5, 0..code.payload.len()] {
            let e = m.decode_concealed(&code, std::slice::from_ref(&lost), Conceal::Prior, 1 << 20);
            assert!(matches!(e, Err(CodecError::Lost(_))), "{lost:?}: {e:?}");
        }
        // A cut payload (the last fragment lost) conceals its tail, the table intact.
        let cut = DigitalCode {
            payload: code.payload[..code.payload.len() - 3].to_vec(),
            ..code.clone()
        };
        let (_, rep) = m.decode_concealed(&cut, &[], Conceal::Prior, 1 << 20).unwrap();
        assert_eq!((rep.slices, rep.lost_slices, rep.concealed_blocks), (4, 1, 2 * 8 * 3));
        // One byte in the middle of slice 1 (bytes past the table: slice 0, then slice 1).
        let (_, ranges) = code.slices(&[]).unwrap();
        let mid = (ranges[1].start + ranges[1].end) / 2;
        let (blank, rep) = m
            .decode_concealed(&code, &[mid..mid + 1], Conceal::Blank, 1 << 20)
            .unwrap();
        assert_eq!((rep.lost_slices, rep.concealed_blocks), (1, 0));
        // Blank: the lost band shows the component means, the rest is the exact reconstruction.
        let whole = m.decode(&code, 1 << 20).unwrap();
        let w = 64;
        for y in (0..64).filter(|y| !(12..36).contains(y)) {
            for x in 0..w {
                assert_eq!(blank.plane(0)[y * w + x], whole.plane(0)[y * w + x], "({x}, {y})");
            }
        }
    }

    #[test]
    fn prior_concealment_beats_blank_on_a_smooth_image() {
        let m = DigitalModel::dct();
        let pic = test_picture(96, 96, 3, 8);
        let code = m.encode_sliced(&pic, 80, 1).unwrap();
        let (_, ranges) = code.slices(&[]).unwrap();
        // Slices 3 and 7 lost (rows 24–31 and 56–63).
        let lost = [ranges[3].clone(), ranges[7].clone()];
        let (blank, rb) = m.decode_concealed(&code, &lost, Conceal::Blank, 1 << 20).unwrap();
        let (prior, rp) = m.decode_concealed(&code, &lost, Conceal::Prior, 1 << 20).unwrap();
        assert_eq!(
            (rb.lost_slices, rp.lost_slices, rp.concealed_blocks),
            (2, 2, 2 * 12 * 3)
        );
        let pb = crate::picture::psnr(&pic, &blank).unwrap();
        let pp = crate::picture::psnr(&pic, &prior).unwrap();
        assert!(pp > pb + 3.0, "prior {pp:.2} dB vs blank {pb:.2} dB");
    }

    #[test]
    fn bad_sliced_parameters_are_refused() {
        let code = DigitalCode {
            width: 16,
            height: 16,
            channels: 3,
            step_q: 10,
            slice_rows: Some(1),
            payload: vec![],
        };
        let p = code.params();
        assert_eq!(p[0], MODE_DIGITAL_SLICED);
        assert!(DigitalCode::from_parts(&p, &[], 1 << 20).is_ok());
        for bad in [
            p[..p.len() - 1].to_vec(),
            [&p[..], &[0]].concat(),
            DigitalCode {
                slice_rows: Some(0),
                ..code.clone()
            }
            .params(),
            [&p[..p.len() - 1], &[0x80, 0x80, 0x08]].concat(),
        ] {
            let e = DigitalCode::from_parts(&bad, &[], 1 << 20);
            assert!(matches!(e, Err(CodecError::Malformed(_))), "{bad:?}: {e:?}");
        }
        let m = DigitalModel::dct();
        let zero = DigitalCode {
            slice_rows: Some(0),
            ..code
        };
        assert!(matches!(m.decode(&zero, 1 << 20), Err(CodecError::Input(_))));
        assert!(m.encode_sliced(&test_picture(8, 8, 1, 0), 10, 0).is_err());
    }

    #[test]
    fn slice_rows_aim_at_the_target_size() {
        assert_eq!(slice_rows_for(512, 12_288, 512), 3);
        assert_eq!(slice_rows_for(512, 49_152, 512), 1);
        assert_eq!(slice_rows_for(16, 10, 512), 2);
    }

    #[test]
    fn prior_concealment_beats_blank_on_a_kodak_photo() {
        let p = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/datasets/kodak/kodim23.png"
        ));
        let Ok(full) = Picture::load(p) else {
            eprintln!("skipping: {} not found", p.display());
            return;
        };
        let pic = full.crop(256, 128, 256, 256).unwrap();
        let m = DigitalModel::dct();
        let code = m.encode_within_sliced(&pic, 256 * 256 / 16, 1).unwrap();
        let (_, ranges) = code.slices(&[]).unwrap();
        // A tenth of the slices, spread out (rows 3, 13, 23: 24-pixel bands).
        let lost: Vec<Range<usize>> = [3, 13, 23].iter().map(|&i| ranges[i].clone()).collect();
        let (blank, _) = m.decode_concealed(&code, &lost, Conceal::Blank, 1 << 20).unwrap();
        let (prior, rep) = m.decode_concealed(&code, &lost, Conceal::Prior, 1 << 20).unwrap();
        assert_eq!(rep.lost_slices, 3);
        let pb = crate::picture::psnr(&pic, &blank).unwrap();
        let pp = crate::picture::psnr(&pic, &prior).unwrap();
        assert!(pp > pb + 3.0, "prior {pp:.2} dB vs blank {pb:.2} dB");
    }

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn frames_with_gaps_give_payload_ranges_for_the_concealing_decoder() {
        use crate::frame::{Modality, SemanticFrame};
        let m = DigitalModel::dct();
        let code = m.encode_sliced(&test_picture(64, 64, 3, 6), 50, 1).unwrap();
        let f = SemanticFrame {
            modality: Modality::Image,
            model: None,
            params: code.params(),
            segments: Vec::new(),
            payload: code.payload.clone(),
            with_crc: false,
        };
        let bytes = f.to_bytes();
        let head = f.header_len();
        assert_eq!(bytes.len(), head + code.payload.len());
        let (_, ranges) = code.slices(&[]).unwrap();
        let lost = ranges[4].start + head..ranges[4].start + head + 1;
        let (g, rel) = SemanticFrame::from_bytes_with_gaps(&bytes[..bytes.len() - 5], &[lost]).unwrap();
        assert_eq!(rel, vec![ranges[4].start..ranges[4].start + 1]);
        let got = DigitalCode::from_parts(&g.params, &g.payload, 1 << 20).unwrap();
        let (_, rep) = m.decode_concealed(&got, &rel, Conceal::Prior, 1 << 20).unwrap();
        assert_eq!((rep.slices, rep.lost_slices), (8, 2), "slice 4 and the cut last slice");
        assert!(matches!(
            SemanticFrame::from_bytes_with_gaps(&bytes, &[1..3]),
            Err(CodecError::Lost(_))
        ));
    }
}
