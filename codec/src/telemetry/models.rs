//! Adaptive models shared by encoder and decoder, and the one interface ([`Io`]) through which
//! the telemetry codec's single walk either writes or reads every symbol.

use crate::prior::CachedCoder;
use crate::rangecoder::{RangeDecoder, RangeEncoder};
use crate::CodecError;

/// Encoder or decoder: `symbol` codes `s` (encoder) or returns the decoded symbol (decoder).
pub trait Io {
    /// Codes a symbol of an adaptive table and updates it.
    fn symbol(&mut self, m: &mut Adaptive, s: usize) -> Result<usize, CodecError>;
    /// Codes `n` ≤ 16 raw bits.
    fn bits(&mut self, v: u32, n: u32) -> Result<u32, CodecError>;
    /// Codes one binary decision with an adaptive probability.
    fn bit(&mut self, m: &mut Bit, b: bool) -> Result<bool, CodecError>;
    /// Codes one token with the prior.
    fn token(&mut self, coder: &mut CachedCoder<'_, '_>, t: u32) -> Result<u32, CodecError>;
    /// Whether this is the decoder (values passed in are placeholders).
    fn decoding(&self) -> bool;
    /// Bits coded so far (the encoder's count; 0 when decoding).
    fn coded_bits(&self) -> f64 {
        0.0
    }
}

/// An adaptive frequency table over `n` symbols.
#[derive(Clone, Debug)]
pub struct Adaptive {
    f: Vec<u16>,
    total: u32,
    inc: u16,
}

const LIMIT: u32 = 1 << 13;

impl Adaptive {
    /// Uniform start.
    pub fn new(n: usize, inc: u16) -> Self {
        Self {
            f: vec![1; n],
            total: n as u32,
            inc,
        }
    }

    /// Start from given weights (each ≥ 1), halved as a growing table is while they total
    /// more than the coder takes (a model file's tables, say).
    pub fn with(weights: &[u16], inc: u16) -> Self {
        let f: Vec<u16> = weights.iter().map(|&w| w.max(1)).collect();
        let total = f.iter().map(|&x| u32::from(x)).sum();
        let mut t = Self { f, total, inc };
        while t.total > LIMIT && t.f.iter().any(|&x| x > 1) {
            t.halve();
        }
        t
    }

    fn update(&mut self, s: usize) {
        self.f[s] += self.inc;
        self.total += u32::from(self.inc);
        if self.total > LIMIT {
            self.halve();
        }
    }

    /// Halves every frequency (rounding up, so each stays ≥ 1).
    fn halve(&mut self) {
        self.total = 0;
        for x in &mut self.f {
            *x = (*x).div_ceil(2);
            self.total += u32::from(*x);
        }
    }

    /// The table's shape, for a warm start of a later resync period: per symbol, how far below
    /// the likeliest it is, in powers of two rounded to the nearest (0 = the likeliest, at most
    /// [`PROFILE_OCTAVES`]). Integer arithmetic only, so encoder and decoder agree on any machine;
    /// [`Adaptive::warm`] of a profile gives a table with the same profile.
    pub fn profile(&self, out: &mut Vec<u8>) {
        let top = u128::from(self.f.iter().copied().max().unwrap_or(1).max(1));
        out.extend(self.f.iter().map(|&x| {
            let x = u128::from(x.max(1));
            let k = (top / x).ilog2();
            // top/x ≥ 2^(k + 1/2): nearer to the next power.
            let k = if top * top >= (x * x) << (2 * k + 1) { k + 1 } else { k };
            k.min(PROFILE_OCTAVES) as u8
        }));
    }

    /// Starts the table from a profile made by [`Adaptive::profile`] of a table of this size.
    pub fn warm(&mut self, q: &[u8]) {
        if q.len() != self.f.len() {
            return;
        }
        for (x, &k) in self.f.iter_mut().zip(q) {
            *x = 1 << (PROFILE_OCTAVES - u32::from(k).min(PROFILE_OCTAVES));
        }
        self.total = self.f.iter().map(|&x| u32::from(x)).sum();
    }

    /// What coding symbol `s` would cost now, in bits (for an encoder's choice between ways
    /// of coding a value; the coding itself is integer-only).
    pub fn cost(&self, s: usize) -> f64 {
        let f = self.f.get(s).copied().unwrap_or(0).max(1);
        (f64::from(self.total) / f64::from(f)).log2()
    }

    /// Symbols in the table.
    pub fn symbols(&self) -> usize {
        self.f.len()
    }

    fn cum(&self, s: usize) -> u32 {
        self.f[..s].iter().map(|&x| u32::from(x)).sum()
    }
}

/// Range of a table's profile in powers of two: a warm table's likeliest symbol weighs
/// 2^`PROFILE_OCTAVES`, the rarest 1.
pub const PROFILE_OCTAVES: u32 = 8;

/// Midpoints (in log-odds) between neighbouring levels of [`BIT_LEVELS`].
const BIT_BOUNDS: [u16; 10] = [91, 182, 364, 734, 1499, 2597, 3362, 3732, 3914, 4005];
/// Observations a warm-started bit counts as having seen.
const BIT_WARM_N: u16 = 6;
/// Levels of a bit's profile: P(1) in 1/4096, evenly spaced in log-odds.
const BIT_LEVELS: [u16; 11] = [64, 128, 256, 512, 1024, 2048, 3072, 3584, 3840, 3968, 4032];

/// An adaptive binary probability (12 bits). It learns fast at first (the step after `n`
/// observations is 1/(n+2), a running frequency) and then slowly (1/32), so a decision that a
/// resync period of 16 records sees the same way every time costs little within the period.
#[derive(Clone, Copy, Debug)]
pub struct Bit {
    p: u16,
    n: u16,
}

impl Default for Bit {
    fn default() -> Self {
        Self::new(2048)
    }
}

impl Bit {
    /// Starts with P(1) = p/4096.
    pub fn new(p: u16) -> Self {
        Self {
            p: p.clamp(64, 4032),
            n: 0,
        }
    }

    /// Starts with P(1) = p/4096 as if learnt from many observations already (a template's
    /// knowledge of a byte), so the first outcomes move it slowly.
    pub fn settled(p: u16) -> Self {
        Self {
            p: p.clamp(32, 4064),
            n: 30,
        }
    }

    /// The probability's level, for a warm start (see [`Adaptive::profile`]).
    pub fn profile(&self) -> u8 {
        BIT_BOUNDS.iter().filter(|&&b| self.p >= b).count() as u8
    }

    /// Starts at a level made by [`Bit::profile`], as if learnt from a few observations.
    pub fn warm(&mut self, q: u8) {
        if let Some(&p) = BIT_LEVELS.get(usize::from(q)) {
            self.p = p;
            self.n = BIT_WARM_N;
        }
    }

    fn update(&mut self, b: bool) {
        let div = u32::from(self.n) + 2;
        let p = u32::from(self.p);
        let p = if b { p + (4096 - p) / div } else { p - p / div };
        self.p = (p as u16).clamp(32, 4064);
        self.n = (self.n + 1).min(30);
    }
}

/// Encoder side of [`Io`].
#[derive(Debug)]
pub struct Enc<'a>(pub &'a mut RangeEncoder);

impl Io for Enc<'_> {
    fn symbol(&mut self, m: &mut Adaptive, s: usize) -> Result<usize, CodecError> {
        if s >= m.f.len() {
            return Err(CodecError::Input(format!(
                "symbol {s} outside a table of {}",
                m.f.len()
            )));
        }
        self.0.encode(m.cum(s), u32::from(m.f[s]), m.total);
        m.update(s);
        Ok(s)
    }

    fn bits(&mut self, v: u32, n: u32) -> Result<u32, CodecError> {
        if n > 0 {
            self.0.encode(v & ((1 << n) - 1), 1, 1 << n);
        }
        Ok(v & ((1u32 << n) - 1))
    }

    fn bit(&mut self, m: &mut Bit, b: bool) -> Result<bool, CodecError> {
        let p1 = u32::from(m.p);
        if b {
            self.0.encode(0, p1, 4096);
        } else {
            self.0.encode(p1, 4096 - p1, 4096);
        }
        m.update(b);
        Ok(b)
    }

    fn token(&mut self, coder: &mut CachedCoder<'_, '_>, t: u32) -> Result<u32, CodecError> {
        coder.encode(self.0, t)?;
        Ok(t)
    }

    fn decoding(&self) -> bool {
        false
    }

    fn coded_bits(&self) -> f64 {
        self.0.bits()
    }
}

/// Decoder side of [`Io`].
#[derive(Debug)]
pub struct Dec<'a, 'b>(pub &'a mut RangeDecoder<'b>);

fn corrupt() -> CodecError {
    CodecError::Payload("code value outside the distribution".into())
}

impl Dec<'_, '_> {
    /// A decoder that has read past the payload's end can only fail: stop before it spends a
    /// transformer step per token spelling a 64 KB string out of the zeros beyond a short,
    /// hostile payload.
    fn live(&self) -> Result<(), CodecError> {
        if self.0.overran() {
            return Err(CodecError::Payload("payload ends before the record does".into()));
        }
        Ok(())
    }
}

impl Io for Dec<'_, '_> {
    fn symbol(&mut self, m: &mut Adaptive, _: usize) -> Result<usize, CodecError> {
        self.live()?;
        let t = self.0.target(m.total).ok_or_else(corrupt)?;
        let mut cum = 0u32;
        for (s, &f) in m.f.iter().enumerate() {
            let f = u32::from(f);
            if t < cum + f {
                self.0.consume(cum, f, m.total);
                m.update(s);
                return Ok(s);
            }
            cum += f;
        }
        Err(corrupt())
    }

    fn bits(&mut self, _: u32, n: u32) -> Result<u32, CodecError> {
        if n == 0 {
            return Ok(0);
        }
        let t = self.0.target(1 << n).ok_or_else(corrupt)?;
        self.0.consume(t, 1, 1 << n);
        Ok(t)
    }

    fn bit(&mut self, m: &mut Bit, _: bool) -> Result<bool, CodecError> {
        let p1 = u32::from(m.p);
        let t = self.0.target(4096).ok_or_else(corrupt)?;
        let b = t < p1;
        if b {
            self.0.consume(0, p1, 4096);
        } else {
            self.0.consume(p1, 4096 - p1, 4096);
        }
        m.update(b);
        Ok(b)
    }

    fn token(&mut self, coder: &mut CachedCoder<'_, '_>, _: u32) -> Result<u32, CodecError> {
        self.live()?;
        coder.decode(self.0)
    }

    fn decoding(&self) -> bool {
        true
    }
}

/// Codes `n` ≤ 64 raw bits.
pub fn wide_bits(io: &mut dyn Io, v: u64, n: u32) -> Result<u64, CodecError> {
    let mut out = 0u64;
    let mut done = 0;
    while done < n {
        let k = (n - done).min(16);
        let part = io.bits(((v >> done) & ((1u64 << k) - 1)) as u32, k)?;
        out |= u64::from(part) << done;
        done += k;
    }
    Ok(out)
}

/// Symbols of a signed residual: 0 for 0, then 2·b−1 (+1 if negative) for |r| with b bits.
pub const RESIDUAL_SYMBOLS: usize = 1 + 2 * 64;

/// A signed integer with an adaptive magnitude class and raw low bits.
pub fn residual(io: &mut dyn Io, m: &mut Adaptive, r: i128) -> Result<i128, CodecError> {
    let mag = r.unsigned_abs();
    if mag >= 1u128 << 64 {
        return Err(CodecError::Input("residual does not fit in 64 bits".into()));
    }
    let b = 128 - mag.leading_zeros();
    let s = if r == 0 {
        0
    } else {
        2 * b as usize - 1 + usize::from(r < 0)
    };
    let s = io.symbol(m, s)?;
    if s == 0 {
        return Ok(0);
    }
    let b = s.div_ceil(2) as u32;
    let neg = s % 2 == 0;
    let low = wide_bits(io, (mag as u64) & ((1u64 << (b - 1)).wrapping_sub(1)), b - 1)?;
    let mag = (1u128 << (b - 1)) | u128::from(low);
    Ok(if neg { -(mag as i128) } else { mag as i128 })
}

/// Initial weights of a residual table: small magnitudes likely.
pub fn residual_weights() -> Vec<u16> {
    (0..RESIDUAL_SYMBOLS)
        .map(|s| {
            if s == 0 {
                24
            } else {
                (24u16 >> (s.div_ceil(2) / 3).min(4)).max(1)
            }
        })
        .collect()
}

/// A non-negative length with an adaptive class (reuses the residual classes).
pub fn length(io: &mut dyn Io, m: &mut Adaptive, n: usize, max: usize) -> Result<usize, CodecError> {
    let v = residual(io, m, n as i128)?;
    if v < 0 || v as usize > max {
        return Err(CodecError::Payload(format!("length {v} outside 0..={max}")));
    }
    Ok(v as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Starting weights past what the coder takes (a model file's tables) are scaled down, keeping
    /// their shape, instead of reaching the range coder's assertion.
    #[test]
    fn oversized_starting_weights_are_halved_to_the_coder_limit() {
        let mut w = vec![4000u16; 64];
        w[0] = 1;
        let mut a = Adaptive::with(&w, 16);
        assert!(a.total <= LIMIT && a.total == a.f.iter().map(|&x| u32::from(x)).sum::<u32>());
        assert!(a.f[0] == 1 && a.f[1] > 8 && a.f[1..].iter().all(|&x| x == a.f[1]));
        let mut enc = crate::rangecoder::RangeEncoder::new();
        for s in [0, 5, 63, 0] {
            Enc(&mut enc).symbol(&mut a, s).unwrap();
        }
        let bytes = enc.finish();
        let mut a = Adaptive::with(&w, 16);
        let mut dec = crate::rangecoder::RangeDecoder::new(&bytes);
        let got: Vec<usize> = (0..4).map(|_| Dec(&mut dec).symbol(&mut a, 0).unwrap()).collect();
        assert_eq!(got, [0, 5, 63, 0]);
        // Weights the coder takes as they are stay as they are.
        assert_eq!(Adaptive::with(&[24, 2, 1, 1], 24).f, [24, 2, 1, 1]);
    }

    /// A table or bit warm-started from a profile has that profile again, so a steady stream
    /// gives the same profile period after period; a learnt table keeps its likeliest symbol.
    #[test]
    fn profiles_are_fixed_points_of_warm_starts() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for _ in 0..200 {
            let n = rng.random_range(1..40);
            let mut m = Adaptive::with(&residual_weights()[..n], rng.random_range(1..48));
            let mut enc = RangeEncoder::new();
            for _ in 0..rng.random_range(0..400) {
                let s = rng.random_range(0..n).min(rng.random_range(0..n));
                Enc(&mut enc).symbol(&mut m, s).unwrap();
            }
            let mut q = Vec::new();
            m.profile(&mut q);
            let mut w = Adaptive::new(n, 24);
            w.warm(&q);
            let mut again = Vec::new();
            w.profile(&mut again);
            assert_eq!(q, again);
            let top = (0..n).max_by_key(|&s| m.f[s]).unwrap();
            assert_eq!(q[top], 0);
            let mut b = Bit::new(rng.random_range(0..4096));
            for _ in 0..rng.random_range(0..40) {
                b.update(rng.random());
            }
            let mut c = Bit::default();
            c.warm(b.profile());
            assert_eq!(c.profile(), b.profile());
        }
    }

    #[test]
    fn residuals_and_bits_round_trip() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let values: Vec<i128> = (0..2000)
            .map(|i| match i % 4 {
                0 => 0,
                1 => rng.random_range(-300..300),
                2 => i128::from(rng.random::<i64>()),
                _ => i128::from(rng.random::<u64>() >> rng.random_range(0..64)),
            })
            .chain([i128::from(u64::MAX), -i128::from(u64::MAX), i128::from(i64::MIN)])
            .collect();
        let mut enc = RangeEncoder::new();
        let (mut m, mut b) = (Adaptive::with(&residual_weights(), 24), Bit::default());
        for &v in &values {
            residual(&mut Enc(&mut enc), &mut m, v).unwrap();
            Enc(&mut enc).bit(&mut b, v > 0).unwrap();
        }
        let bytes = enc.finish();
        let mut dec = RangeDecoder::new(&bytes);
        let (mut m, mut b) = (Adaptive::with(&residual_weights(), 24), Bit::default());
        for &v in &values {
            assert_eq!(residual(&mut Dec(&mut dec), &mut m, 0).unwrap(), v);
            assert_eq!(Dec(&mut dec).bit(&mut b, false).unwrap(), v > 0);
        }
        assert!(residual(&mut Enc(&mut RangeEncoder::new()), &mut m, 1i128 << 64).is_err());
    }
}
