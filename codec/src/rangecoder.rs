//! A range coder over integer frequencies (total ≤ 2¹⁶).
//!
//! 32-bit range, carries propagated through a cached byte (the LZMA arrangement). Every symbol
//! costs −log2(freq/total) bits plus a fraction of a bit; the stream ends with the fewest bytes
//! that still determine it: the decoder reads zeros past the end, so the final value is chosen
//! with as many trailing zero bytes as the range allows, and those are not written.

/// Largest allowed total frequency.
pub const MAX_TOTAL: u32 = 1 << 16;
const TOP: u32 = 1 << 24;

/// Encodes symbols into bytes.
#[derive(Debug, Clone)]
pub struct RangeEncoder {
    low: u64,
    range: u32,
    cache: u8,
    cache_size: u64,
    /// Renormalisation shifts so far: the decoder reads this many bytes after its first four,
    /// so that many are always written (see [`RangeDecoder::overran`]).
    shifts: usize,
    out: Vec<u8>,
}

impl Default for RangeEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl RangeEncoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self {
            low: 0,
            range: u32::MAX,
            cache: 0,
            cache_size: 1,
            shifts: 0,
            out: Vec::new(),
        }
    }

    /// Codes a symbol occupying `[cum, cum + freq)` of `total`.
    ///
    /// # Panics
    /// If `freq == 0`, `cum + freq > total` or `total > MAX_TOTAL` (a caller bug: frequency
    /// tables are built by this crate).
    #[inline]
    pub fn encode(&mut self, cum: u32, freq: u32, total: u32) {
        assert!(
            freq > 0 && cum + freq <= total && total <= MAX_TOTAL,
            "bad frequencies {cum}+{freq}/{total}"
        );
        let r = self.range / total;
        self.low += u64::from(r) * u64::from(cum);
        self.range = r * freq;
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low();
            self.shifts += 1;
        }
    }

    fn shift_low(&mut self) {
        if (self.low as u32) < 0xFF00_0000 || (self.low >> 32) != 0 {
            let carry = (self.low >> 32) as u8;
            let mut c = self.cache;
            loop {
                self.out.push(c.wrapping_add(carry));
                c = 0xFF;
                self.cache_size -= 1;
                if self.cache_size == 0 {
                    break;
                }
            }
            self.cache = ((self.low >> 24) & 0xFF) as u8;
        }
        self.cache_size += 1;
        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    /// Ends the stream and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        // Any value in [low, low + range) decodes the same; take the one with the most trailing
        // zero bits, whose zero bytes need not be written.
        let hi = self.low + u64::from(self.range) - 1;
        for bits in (0..32).rev() {
            let mask = (1u64 << bits) - 1;
            let v = (self.low + mask) & !mask;
            if v <= hi {
                self.low = v;
                break;
            }
        }
        for _ in 0..5 {
            self.shift_low();
        }
        // The first byte written is the initial cache (always 0): the decoder knows it.
        let mut out = self.out.split_off(1);
        // Trailing zero bytes of the flush need not be written; those the decoder's shifts
        // read are kept, so a payload cut short is detected (`overran`).
        while out.len() > self.shifts && out.last() == Some(&0) {
            out.pop();
        }
        out
    }

    /// Information coded so far, in bits (fractional; for cost accounting).
    pub fn bits(&self) -> f64 {
        self.shifts as f64 * 8.0 + 32.0 - f64::from(self.range).log2()
    }

    /// Bytes written so far (not counting what is still held for carries).
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// True when nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }
}

/// Decodes symbols from bytes; reads zeros past the end of the input.
#[derive(Debug, Clone)]
pub struct RangeDecoder<'a> {
    code: u32,
    range: u32,
    input: &'a [u8],
    pos: usize,
}

impl<'a> RangeDecoder<'a> {
    /// Starts decoding `input`.
    pub fn new(input: &'a [u8]) -> Self {
        let mut d = Self {
            code: 0,
            range: u32::MAX,
            input,
            pos: 0,
        };
        for _ in 0..4 {
            d.code = (d.code << 8) | u32::from(d.next_byte());
        }
        d
    }

    #[inline]
    fn next_byte(&mut self) -> u8 {
        let b = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// The cumulative-frequency target of the next symbol in `[0, total)`; find the symbol
    /// whose interval holds it, then call [`RangeDecoder::consume`]. Returns `None` when the
    /// input is not a valid stream (the target falls outside the total).
    #[inline]
    pub fn target(&mut self, total: u32) -> Option<u32> {
        let r = self.range / total;
        let t = self.code / r;
        (t < total).then_some(t)
    }

    /// Removes the symbol `[cum, cum + freq)` of `total` found through [`RangeDecoder::target`].
    #[inline]
    pub fn consume(&mut self, cum: u32, freq: u32, total: u32) {
        let r = self.range / total;
        self.code -= r * cum;
        self.range = r * freq;
        while self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.next_byte());
        }
    }

    /// True once the decoder has consumed bytes past the end of its input by more than the
    /// 4-byte lookahead: a payload that claims more symbols than it holds.
    pub fn overran(&self) -> bool {
        self.pos > self.input.len() + 4
    }
}

/// A static frequency table: cumulative counts for lookups by symbol and by target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreqTable {
    cum: Vec<u32>,
}

impl FreqTable {
    /// From per-symbol frequencies (each ≥ 1, total ≤ [`MAX_TOTAL`]).
    pub fn new(freqs: &[u32]) -> Self {
        let mut cum = Vec::with_capacity(freqs.len() + 1);
        let mut c = 0u32;
        cum.push(0);
        for &f in freqs {
            c += f;
            cum.push(c);
        }
        Self { cum }
    }

    /// Total frequency.
    pub fn total(&self) -> u32 {
        *self.cum.last().unwrap_or(&0)
    }

    /// Codes symbol `s`.
    pub fn encode(&self, enc: &mut RangeEncoder, s: usize) {
        enc.encode(self.cum[s], self.cum[s + 1] - self.cum[s], self.total());
    }

    /// Decodes a symbol, or `None` for an invalid stream.
    pub fn decode(&self, dec: &mut RangeDecoder<'_>) -> Option<usize> {
        let total = self.total();
        let t = dec.target(total)?;
        // Largest s with cum[s] <= t.
        let s = self.cum.partition_point(|&c| c <= t) - 1;
        dec.consume(self.cum[s], self.cum[s + 1] - self.cum[s], total);
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn round_trip(freqs: &[u32], symbols: &[usize]) -> usize {
        let t = FreqTable::new(freqs);
        let mut e = RangeEncoder::new();
        for &s in symbols {
            t.encode(&mut e, s);
        }
        let bytes = e.finish();
        let mut d = RangeDecoder::new(&bytes);
        for (i, &s) in symbols.iter().enumerate() {
            assert_eq!(t.decode(&mut d), Some(s), "symbol {i} of {}", symbols.len());
        }
        bytes.len()
    }

    #[test]
    fn any_distribution_round_trips() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for trial in 0..300 {
            let n = rng.random_range(1..=300usize);
            let total_budget = MAX_TOTAL as usize;
            let mut freqs: Vec<u32> = (0..n).map(|_| rng.random_range(1..=200)).collect();
            // Near-deterministic distributions: one symbol takes almost everything.
            if trial % 3 == 0 {
                freqs.iter_mut().for_each(|f| *f = 1);
                freqs[0] = (total_budget - n + 1) as u32;
            }
            let len = rng.random_range(0..2000);
            let symbols: Vec<usize> = (0..len)
                .map(|_| {
                    if trial % 3 == 0 && rng.random_bool(0.99) {
                        0
                    } else {
                        rng.random_range(0..n)
                    }
                })
                .collect();
            round_trip(&freqs, &symbols);
        }
    }

    #[test]
    fn cost_is_close_to_information_content() {
        // 10 000 uniform symbols of 256: 80 000 bits + a few bytes.
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let symbols: Vec<usize> = (0..10_000).map(|_| rng.random_range(0..256)).collect();
        let n = round_trip(&[256; 256], &symbols);
        assert!(n <= 10_000 + 4, "{n} bytes");
        // A certain symbol (65 535 / 65 536) costs almost nothing: 10 000 of them in ≤ 2 bytes.
        let mut f = vec![1u32; 2];
        f[0] = MAX_TOTAL - 1;
        assert!(round_trip(&f, &vec![0; 10_000]) <= 2);
        // Empty message: no bytes at all.
        assert_eq!(round_trip(&f, &[]), 0);
    }

    #[test]
    fn garbage_input_never_panics() {
        let t = FreqTable::new(&[3, 5, 7, 65_000]);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..1000 {
            let bytes: Vec<u8> = (0..rng.random_range(0..20)).map(|_| rng.random()).collect();
            let mut d = RangeDecoder::new(&bytes);
            for _ in 0..50 {
                if t.decode(&mut d).is_none() {
                    break;
                }
            }
        }
    }
}
