//! Lossless mode: every f32 sample comes back bit for bit.
//!
//! **Sample representation.** Sensor data is almost always printed or logged with a few
//! significant digits (UCI HAR: 4, PLAID: 5), so each f32 sample `x` is written as the shortest
//! decimal `q · 10^−e` that converts back to exactly `x` (`(q / 10^e) as f32`, correctly rounded
//! through f64). Samples without such a form (−0.0, extreme exponents) are sent as their 32 raw
//! bits. Every finite f32 has a decimal form of at most 9 significant digits, so raw samples are
//! rare.
//!
//! **Fixed point per channel.** A channel picks a base exponent `e0` (searched per window for the
//! fewest estimated bits): its samples become integers `q0 = ⌊q · 10^(e0−e)⌋` and a sample that
//! needs `d = e − e0 > 0` more digits also sends the `d` low digits (uniform over `10^d`). Whether
//! refinement digits follow is coded with a context on the size of `q0`, so a channel whose small
//! values carry more decimals (4 significant digits of 0.0003 vs 0.3) pays almost nothing for it.
//!
//! **Prediction.** Per channel, the best of four fixed polynomial predictors of `q0` (none,
//! previous, linear, quadratic extrapolation) or the sample one period back (lag 2 … 65: mains
//! cycles, gait), chosen on the window, and the residual is
//! range-coded with an adaptive magnitude class (context: the size of the last two residuals) and
//! raw low bits.

use super::Window;
use crate::rangecoder::{RangeDecoder, RangeEncoder};
use crate::telemetry::models::{residual, residual_weights, Adaptive, Dec, Enc, Io};
use crate::CodecError;

const E_MIN: i32 = -6;
const E_MAX: i32 = 15;
const N_EXP: usize = (E_MAX - E_MIN + 1) as usize;
/// Most refinement digits; beyond that a sample is raw.
const D_MAX: usize = 12;
const RAW: usize = D_MAX + 1;
const MAG_CTX: usize = 8;
const RES_CTX: usize = 18;
const PREDICTORS: usize = 5;
/// The periodic predictor: `q0[n − lag]`.
const LAG: usize = 4;
const MIN_LAG: usize = 2;
const LAGS: usize = 64;
const LIMIT: i64 = 1 << 53;

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

fn pow10i(k: usize) -> i64 {
    10i64.pow(k as u32)
}

/// `q · 10^−e` as f32 (correctly rounded to f64, then to f32). `|q| ≤ 2^53`, `e` in range.
fn to_f32(q: i64, e: i32) -> f32 {
    if e >= 0 {
        (q as f64 / POW10[e as usize]) as f32
    } else {
        (q as f64 * POW10[(-e) as usize]) as f32
    }
}

/// The shortest decimal form `(q, e)` of `x`, or None (sent raw).
fn decimal(x: f32) -> Option<(i64, i32)> {
    if x.to_bits() == 0 {
        return Some((0, E_MIN));
    }
    if x == 0.0 {
        return None; // −0.0
    }
    let a = f64::from(x).abs();
    // Below this exponent |x|·10^e < 0.5 rounds to 0, which cannot be x.
    let start = (-(a.log10().floor() as i32) - 1).clamp(E_MIN, E_MAX);
    for e in start..=E_MAX {
        let scaled = if e >= 0 {
            f64::from(x) * POW10[e as usize]
        } else {
            f64::from(x) / POW10[(-e) as usize]
        };
        let q = scaled.round();
        if q.abs() > LIMIT as f64 {
            return None;
        }
        let q = q as i64;
        if to_f32(q, e).to_bits() == x.to_bits() {
            return Some((q, e));
        }
    }
    None
}

/// One sample at base exponent `e0`: integer part, refinement digits `d` (or [`RAW`]) and their
/// value.
#[derive(Clone, Copy, Debug)]
struct Split {
    q0: i64,
    d: usize,
    r: i64,
}

fn split_at(dec: Option<(i64, i32)>, e0: i32, prev_q0: i64) -> Option<Split> {
    let raw = Split {
        q0: prev_q0,
        d: RAW,
        r: 0,
    };
    let Some((q, e)) = dec else { return Some(raw) };
    if e > e0 {
        let d = (e - e0) as usize;
        if d > D_MAX {
            return Some(raw);
        }
        let p = pow10i(d);
        Some(Split {
            q0: q.div_euclid(p),
            d,
            r: q.rem_euclid(p),
        })
    } else {
        let k = (e0 - e) as usize;
        if k > 18 {
            return None;
        }
        let q0 = q.checked_mul(pow10i(k))?;
        if q0.abs() > LIMIT {
            return None;
        }
        Some(Split { q0, d: 0, r: 0 })
    }
}

fn bitlen(v: u64) -> u32 {
    64 - v.leading_zeros()
}

/// Prediction of the next `q0` after `hist` (this channel's values so far).
fn predict(pred: usize, lag: usize, hist: &[i64]) -> i128 {
    let n = hist.len();
    let at = |k: usize| i128::from(hist[n - k]);
    if pred == LAG {
        return if n >= lag {
            at(lag)
        } else if n > 0 {
            at(1)
        } else {
            0
        };
    }
    match pred.min(n) {
        0 => 0,
        1 => at(1),
        2 => 2 * at(1) - at(2),
        _ => 3 * at(1) - 3 * at(2) + at(3),
    }
}

fn mag_ctx(q0: i64) -> usize {
    let mut a = q0.unsigned_abs();
    let mut k = 0;
    while a > 0 && k < MAG_CTX - 1 {
        a /= 10;
        k += 1;
    }
    k
}

fn res_ctx(a: u64, b: u64) -> usize {
    (bitlen(a + b) as usize).min(RES_CTX - 1)
}

struct Models {
    exp: Adaptive,
    pred: Adaptive,
    lag: Adaptive,
    res: Vec<Adaptive>,
    digits: Vec<Adaptive>,
}

impl Models {
    fn new() -> Self {
        let mut dw = vec![1u16; RAW + 1];
        dw[0] = 32;
        Self {
            exp: Adaptive::new(N_EXP, 24),
            pred: Adaptive::new(PREDICTORS, 24),
            lag: Adaptive::new(LAGS, 24),
            res: vec![Adaptive::with(&residual_weights(), 24); RES_CTX],
            digits: vec![Adaptive::with(&dw, 24); MAG_CTX],
        }
    }
}

/// The plan of one channel: base exponent, predictor and its samples split at that exponent.
fn plan(x: &[f32]) -> (i32, usize, usize, Vec<Split>) {
    let decs: Vec<Option<(i64, i32)>> = x.iter().map(|&v| decimal(v)).collect();
    let mut exps: Vec<i32> = decs.iter().flatten().filter(|d| d.0 != 0).map(|d| d.1).collect();
    exps.sort_unstable();
    exps.dedup();
    if exps.is_empty() {
        exps.push(0);
    }
    // Estimated cost in hundredths of a bit: the size of the first difference, plus the
    // refinement digits (log2 10 ≈ 3.32 bits each) or a raw sample.
    let mut best: Option<(u64, i32, Vec<Split>)> = None;
    for &e0 in &exps {
        let mut splits = Vec::with_capacity(x.len());
        let mut prev = 0i64;
        let mut ok = true;
        let (mut diff_bits, mut extra) = (0u64, 0u64);
        for d in &decs {
            let Some(s) = split_at(*d, e0, prev) else {
                ok = false;
                break;
            };
            diff_bits += u64::from(bitlen(s.q0.wrapping_sub(prev).unsigned_abs()));
            extra += match s.d {
                0 => 0,
                RAW => 3600,
                d => 100 + 332 * d as u64,
            };
            prev = s.q0;
            splits.push(s);
        }
        let cost = 100 * diff_bits + extra;
        if ok && best.as_ref().is_none_or(|b| cost < b.0) {
            best = Some((cost, e0, splits));
        }
    }
    let (_, e0, splits) = best.unwrap_or_else(|| {
        // Every exponent overflowed (huge values mixed with tiny ones): all raw.
        (0, 0, vec![Split { q0: 0, d: RAW, r: 0 }; x.len()])
    });
    // Predictor: least total residual magnitude (bits) on this window.
    let q0: Vec<i64> = splits.iter().map(|s| s.q0).collect();
    // |q0| ≤ 2^53, so every polynomial prediction fits in i64.
    let cost_of = |pred: usize| -> u64 {
        (0..q0.len())
            .map(|n| {
                let p = match pred.min(n) {
                    0 => 0,
                    1 => q0[n - 1],
                    2 => 2 * q0[n - 1] - q0[n - 2],
                    _ => 3 * q0[n - 1] - 3 * q0[n - 2] + q0[n - 3],
                };
                u64::from(bitlen(q0[n].wrapping_sub(p).unsigned_abs()))
            })
            .sum()
    };
    let mut best = (u64::MAX, 1, MIN_LAG);
    for pred in 0..LAG {
        let c = cost_of(pred);
        if c < best.0 {
            best = (c, pred, MIN_LAG);
        }
    }
    // Periodic predictor: the first `lag` samples fall back to the previous one (prefix sums of
    // that cost), the rest are differences `lag` apart; a lag is dropped as soon as it costs more
    // than the best so far.
    let bits = |a: i64, b: i64| u64::from(bitlen(a.wrapping_sub(b).unsigned_abs()));
    let mut prefix = Vec::with_capacity(q0.len() + 1);
    prefix.push(0u64);
    for n in 0..q0.len() {
        let prev = if n > 0 { q0[n - 1] } else { 0 };
        prefix.push(prefix[n] + bits(q0[n], prev));
    }
    'lags: for lag in MIN_LAG..(MIN_LAG + LAGS).min(q0.len() / 2 + 1) {
        let mut c = prefix[lag];
        for (chunk_a, chunk_b) in q0[lag..].chunks(16).zip(q0.chunks(16)) {
            c += chunk_a.iter().zip(chunk_b).map(|(&a, &b)| bits(a, b)).sum::<u64>();
            if c >= best.0 {
                continue 'lags;
            }
        }
        best = (c, LAG, lag);
    }
    (e0, best.1, best.2, splits)
}

/// Codes `window` losslessly; the bytes hold channel count and length.
pub fn encode(window: &Window) -> Vec<u8> {
    let mut out = Vec::new();
    crate::frame::put_varint(&mut out, window.channels() as u64);
    crate::frame::put_varint(&mut out, window.len() as u64);
    let mut enc = RangeEncoder::new();
    let mut m = Models::new();
    for c in 0..window.channels() {
        let x = window.channel(c);
        let (e0, pred, lag, splits) = plan(x);
        let mut io = Enc(&mut enc);
        // Infallible on the encoder side: every symbol is inside its table.
        let _ = io.symbol(&mut m.exp, (e0 - E_MIN) as usize);
        let _ = io.symbol(&mut m.pred, pred);
        if pred == LAG {
            let _ = io.symbol(&mut m.lag, lag - MIN_LAG);
        }
        let mut hist: Vec<i64> = Vec::with_capacity(splits.len());
        let (mut r1, mut r2) = (0u64, 0u64);
        for (s, &v) in splits.iter().zip(x) {
            let res = i128::from(s.q0) - predict(pred, lag, &hist);
            let ctx = res_ctx(r1, r2);
            let _ = residual(&mut Enc(&mut enc), &mut m.res[ctx], res);
            r2 = r1;
            r1 = res.unsigned_abs().min(u128::from(u32::MAX)) as u64;
            let _ = Enc(&mut enc).symbol(&mut m.digits[mag_ctx(s.q0)], s.d);
            if s.d == RAW {
                let b = v.to_bits();
                enc.encode(b & 0xFFFF, 1, 1 << 16);
                enc.encode(b >> 16, 1, 1 << 16);
            } else {
                put_digits(&mut enc, s.r, s.d);
            }
            hist.push(s.q0);
        }
    }
    out.extend(enc.finish());
    out
}

fn put_digits(enc: &mut RangeEncoder, mut r: i64, mut d: usize) {
    while d > 0 {
        let k = d.min(4);
        let p = pow10i(k);
        enc.encode((r % p) as u32, 1, p as u32);
        r /= p;
        d -= k;
    }
}

fn get_digits(dec: &mut RangeDecoder<'_>, mut d: usize) -> Result<i64, CodecError> {
    let (mut r, mut scale) = (0i64, 1i64);
    while d > 0 {
        let k = d.min(4);
        let p = pow10i(k) as u32;
        let v = dec.target(p).ok_or_else(corrupt)?;
        dec.consume(v, 1, p);
        r += i64::from(v) * scale;
        scale *= i64::from(p);
        d -= k;
    }
    Ok(r)
}

fn corrupt() -> CodecError {
    CodecError::Payload("lossless sensor payload: code value outside the distribution".into())
}

/// Decodes [`encode`]'s bytes; `max_samples` bounds what a hostile header may ask for.
pub fn decode(bytes: &[u8], max_samples: usize) -> Result<Window, CodecError> {
    let (channels, a) = crate::frame::get_varint(bytes)
        .ok_or_else(|| CodecError::Payload("lossless sensor payload: channels".into()))?;
    let (len, b) = crate::frame::get_varint(&bytes[a..])
        .ok_or_else(|| CodecError::Payload("lossless sensor payload: length".into()))?;
    let (channels, len) = (channels as usize, len as usize);
    if channels == 0 || len == 0 || channels > super::window::MAX_CHANNELS || len > super::window::MAX_LEN {
        return Err(CodecError::Payload(format!(
            "lossless sensor payload declares {channels} × {len} samples"
        )));
    }
    if channels * len > max_samples {
        return Err(CodecError::Payload(format!(
            "lossless sensor payload declares {} samples, more than the {max_samples} allowed",
            channels * len
        )));
    }
    let mut dec = RangeDecoder::new(&bytes[a + b..]);
    let mut m = Models::new();
    let mut samples = Vec::with_capacity(channels * len);
    for _ in 0..channels {
        let mut io = Dec(&mut dec);
        let e0 = io.symbol(&mut m.exp, 0)? as i32 + E_MIN;
        let pred = io.symbol(&mut m.pred, 0)?;
        let lag = if pred == LAG {
            io.symbol(&mut m.lag, 0)? + MIN_LAG
        } else {
            MIN_LAG
        };
        let mut hist: Vec<i64> = Vec::with_capacity(len);
        let (mut r1, mut r2) = (0u64, 0u64);
        for _ in 0..len {
            let ctx = res_ctx(r1, r2);
            let res = residual(&mut Dec(&mut dec), &mut m.res[ctx], 0)?;
            r2 = r1;
            r1 = res.unsigned_abs().min(u128::from(u32::MAX)) as u64;
            let q0 = predict(pred, lag, &hist) + res;
            if q0.abs() > i128::from(LIMIT) {
                return Err(corrupt());
            }
            let q0 = q0 as i64;
            let d = Dec(&mut dec).symbol(&mut m.digits[mag_ctx(q0)], 0)?;
            let x = if d == RAW {
                let lo = dec.target(1 << 16).ok_or_else(corrupt)?;
                dec.consume(lo, 1, 1 << 16);
                let hi = dec.target(1 << 16).ok_or_else(corrupt)?;
                dec.consume(hi, 1, 1 << 16);
                let x = f32::from_bits(lo | hi << 16);
                if !x.is_finite() {
                    return Err(CodecError::Payload(
                        "lossless sensor payload: non-finite raw sample".into(),
                    ));
                }
                x
            } else {
                let r = get_digits(&mut dec, d)?;
                let q = q0
                    .checked_mul(pow10i(d))
                    .and_then(|v| v.checked_add(r))
                    .filter(|v| v.abs() <= LIMIT)
                    .ok_or_else(corrupt)?;
                let e = e0 + d as i32;
                if e > E_MAX + D_MAX as i32 || e > 22 {
                    return Err(corrupt());
                }
                to_f32(q, e)
            };
            samples.push(x);
            hist.push(q0);
        }
    }
    if dec.overran() {
        return Err(CodecError::Payload("lossless sensor payload truncated".into()));
    }
    Window::new(channels, len, samples).map_err(|e| CodecError::Payload(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn round_trip(w: &Window) -> usize {
        let bytes = encode(w);
        let back = decode(&bytes, usize::MAX).unwrap();
        for (a, b) in w.samples().iter().zip(back.samples()) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} came back as {b}");
        }
        bytes.len()
    }

    #[test]
    fn decimal_forms_are_shortest_and_exact() {
        assert_eq!(decimal(0.9946), Some((9946, 4)));
        assert_eq!(decimal(4.48e-5), Some((448, 7)));
        assert_eq!(decimal(-1.0295e-4), Some((-10295, 8)));
        assert_eq!(decimal(12000.0), Some((12, -3)));
        assert_eq!(decimal(-0.0), None);
        assert_eq!(decimal(0.0), Some((0, E_MIN)));
    }

    #[test]
    fn decimal_forms_have_the_digits_of_the_shortest_round_trip_printing() {
        // Reference: the standard library's shortest round-trip formatting of f32.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
        let digits = |s: &str| -> String {
            let d: String = s.chars().filter(char::is_ascii_digit).collect();
            d.trim_start_matches('0').trim_end_matches('0').to_string()
        };
        for _ in 0..20_000 {
            let x = f32::from_bits(rng.random::<u32>()).abs();
            let x = if x.is_finite() && (1e-5..1e6).contains(&x) {
                x
            } else {
                rng.random_range(-1e3f32..1e3)
            };
            let (q, _) = decimal(x).unwrap();
            assert_eq!(digits(&q.unsigned_abs().to_string()), digits(&format!("{x}")), "{x}");
        }
    }

    #[test]
    fn any_finite_samples_round_trip_bit_exactly() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for trial in 0..40 {
            let (ch, len) = (rng.random_range(1..5), rng.random_range(1..200));
            let samples: Vec<f32> = (0..ch * len)
                .map(|i| match (trial + i) % 7 {
                    0 => f32::from_bits(rng.random::<u32>() & 0x7F7F_FFFF) * if rng.random() { 1.0 } else { -1.0 },
                    1 => -0.0,
                    2 => (rng.random_range(-5000..5000) as f32) * 1e-4,
                    3 => f32::MAX,
                    4 => f32::MIN_POSITIVE / 3.0,
                    _ => (i as f32 * 0.1).sin() * 3.0,
                })
                .collect();
            let w = Window::new(ch, len, samples).unwrap();
            round_trip(&w);
        }
    }

    #[test]
    fn four_digit_sensor_data_costs_far_less_than_raw() {
        // A 4-significant-digit accelerometer-like trace: sinusoid plus noise around gravity.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let x: Vec<f32> = (0..512)
            .map(|i| {
                let v = 1.0 + 0.2 * (i as f64 * 0.15).sin() + rng.random_range(-0.002..0.002);
                format!("{v:.4e}").parse::<f32>().unwrap()
            })
            .collect();
        let w = Window::new(1, 512, x).unwrap();
        let n = round_trip(&w);
        assert!(n < 512 * 4 / 3, "{n} bytes");
    }

    #[test]
    fn corrupt_payloads_error_without_panicking() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let w = Window::new(2, 64, (0..128).map(|i| (i as f32 * 0.37).cos()).collect()).unwrap();
        let bytes = encode(&w);
        assert!(decode(&bytes[..bytes.len() / 2], usize::MAX).is_err());
        assert!(decode(&bytes, 100).is_err());
        for _ in 0..500 {
            let n = rng.random_range(0..64);
            let junk: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let _ = decode(&junk, 1 << 16);
        }
    }
}
