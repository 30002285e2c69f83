//! The baseline lossless coder: Gorilla-style XOR coding of float values (Pelkonen et al.,
//! "Gorilla: A Fast, Scalable, In-Memory Time Series Database", VLDB 2015, §4.1.2), applied to
//! the f32 bit patterns of each channel.
//!
//! Per channel the first value is stored in 32 bits; each next value is XORed with the previous
//! one: `0` if equal; `10` + the meaningful bits if they fit in the previous value's
//! leading/trailing-zero window; otherwise `11` + 5 bits of leading zeros + 5 bits of (length − 1)
//! + the meaningful bits. (The paper's field widths for f64 are 5 and 6 bits; f32 needs 5 and 5.)

use super::Window;
use crate::CodecError;

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, v: u32, bits: u32) {
        if bits == 0 {
            return;
        }
        self.acc = (self.acc << bits) | u64::from(v & (u32::MAX >> (32 - bits)));
        self.n += bits;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
        }
        self.out
    }
}

struct BitReader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn get(&mut self, bits: u32) -> Result<u32, CodecError> {
        let mut v = 0u32;
        for _ in 0..bits {
            let byte = *self
                .b
                .get(self.pos / 8)
                .ok_or_else(|| CodecError::Payload("Gorilla stream truncated".into()))?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

/// Codes `window`, channel after channel (channel count and length are not included: the
/// baseline is charged only for the samples).
pub fn encode(window: &Window) -> Vec<u8> {
    let mut w = BitWriter::default();
    for c in 0..window.channels() {
        let x = window.channel(c);
        let mut prev = x[0].to_bits();
        w.put(prev, 32);
        let (mut lead, mut trail) = (u32::MAX, 0u32);
        for v in &x[1..] {
            let v = v.to_bits();
            let xor = v ^ prev;
            prev = v;
            if xor == 0 {
                w.put(0, 1);
                continue;
            }
            let (l, t) = (xor.leading_zeros().min(31), xor.trailing_zeros());
            if lead != u32::MAX && l >= lead && t >= trail {
                w.put(0b10, 2);
                w.put(xor >> trail, 32 - lead - trail);
            } else {
                let len = 32 - l - t;
                w.put(0b11, 2);
                w.put(l, 5);
                w.put(len - 1, 5);
                w.put(xor >> t, len);
                (lead, trail) = (l, t);
            }
        }
    }
    w.finish()
}

/// Decodes [`encode`]'s bytes into a window of `channels` × `len`.
pub fn decode(bytes: &[u8], channels: usize, len: usize) -> Result<Window, CodecError> {
    let mut r = BitReader { b: bytes, pos: 0 };
    let mut samples = Vec::with_capacity(channels.saturating_mul(len).min(1 << 24));
    for _ in 0..channels {
        let mut prev = r.get(32)?;
        samples.push(f32::from_bits(prev));
        let (mut lead, mut trail) = (u32::MAX, 0u32);
        for _ in 1..len {
            if r.get(1)? == 1 {
                if r.get(1)? == 0 {
                    if lead == u32::MAX {
                        return Err(CodecError::Payload("Gorilla: reuse before a window".into()));
                    }
                    prev ^= r.get(32 - lead - trail)? << trail;
                } else {
                    let l = r.get(5)?;
                    let n = r.get(5)? + 1;
                    if l + n > 32 {
                        return Err(CodecError::Payload("Gorilla: window outside 32 bits".into()));
                    }
                    let t = 32 - l - n;
                    prev ^= r.get(n)? << t;
                    (lead, trail) = (l, t);
                }
            }
            samples.push(f32::from_bits(prev));
        }
    }
    Window::new(channels, len, samples).map_err(|e| CodecError::Payload(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_match_a_hand_coded_stream() {
        // 12.0 = 0x41400000, 24.0 = 0x41C00000: XOR 0x00800000 (8 leading, 23 trailing zeros).
        // 12.0 → 32 bits; 24.0 → `11` 01000 00000 `1`; 24.0 → `0`; 12.0 → `10` `1` (same window).
        let w = Window::new(1, 4, vec![12.0, 24.0, 24.0, 12.0]).unwrap();
        assert_eq!(
            encode(&w),
            [0x41, 0x40, 0x00, 0x00, 0b1101_0000, 0b0000_1010, 0b1000_0000]
        );
    }

    #[test]
    fn round_trips_and_matches_the_papers_cases() {
        // Equal values cost one bit each after the first 32.
        let w = Window::new(1, 9, vec![2.5; 9]).unwrap();
        assert_eq!(encode(&w).len(), (32 + 8usize).div_ceil(8));
        let x: Vec<f32> = (0..300).map(|i| ((i as f32) * 0.05).sin() * 12.0 + 0.1).collect();
        let w = Window::new(3, 100, x).unwrap();
        let b = encode(&w);
        let back = decode(&b, 3, 100).unwrap();
        assert_eq!(back, w);
        assert!(decode(&b[..b.len() - 5], 3, 100).is_err());
    }
}
