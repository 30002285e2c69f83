//! The K = 7 convolutional code (g0 = 133, g1 = 171 octal) and its puncturing to 2/3 and 3/4.

use crate::rate::CodeRate;

/// Generator polynomial g0 (output A) over the register [b_n, b_n-1, …, b_n-6], b_n in bit 6.
pub const G0: u8 = 0o133;
/// Generator polynomial g1 (output B).
pub const G1: u8 = 0o171;
/// Constraint length.
pub const K: usize = 7;

/// The two output bits (A, B) for input bit `b` entering a register whose previous six bits
/// are `state` (b_n-1 in bit 5 … b_n-6 in bit 0).
#[inline]
pub const fn outputs(state: u8, b: u8) -> (u8, u8) {
    let reg = ((b & 1) << 6) | (state & 0x3f);
    (((reg & G0).count_ones() & 1) as u8, ((reg & G1).count_ones() & 1) as u8)
}

/// Encodes `bits` (one per byte) at rate 1/2 from the all-zero state, appending A0 B0 A1 B1 …
/// to `out`.
pub fn encode(bits: &[u8], out: &mut Vec<u8>) {
    out.reserve(2 * bits.len());
    let mut state = 0u8;
    for &b in bits {
        let (a, bb) = outputs(state, b);
        out.push(a);
        out.push(bb);
        state = ((b & 1) << 5) | (state >> 1);
    }
}

/// Which of the rate-1/2 coded bits of one puncturing period survive (A1 B1 A2 B2 …).
pub const fn keep_pattern(rate: CodeRate) -> &'static [bool] {
    match rate {
        CodeRate::R1_2 => &[true, true],
        CodeRate::R2_3 => &[true, true, true, false],
        CodeRate::R3_4 => &[true, true, true, false, false, true],
    }
}

/// Removes the punctured bits of a rate-1/2 stream.
pub fn puncture(coded: &[u8], rate: CodeRate, out: &mut Vec<u8>) {
    let pat = keep_pattern(rate);
    out.extend(
        coded
            .iter()
            .zip(pat.iter().cycle())
            .filter(|(_, &k)| k)
            .map(|(&b, _)| b),
    );
}

/// Encodes and punctures in one pass.
pub fn encode_punctured(bits: &[u8], rate: CodeRate, out: &mut Vec<u8>) {
    let mut half = Vec::with_capacity(2 * bits.len());
    encode(bits, &mut half);
    puncture(&half, rate, out);
}

/// Re-inserts erasures (LLR 0) where bits were punctured, so the Viterbi decoder always sees
/// rate-1/2 pairs. Returns the number of rate-1/2 pairs written.
pub fn depuncture(llrs: &[i8], rate: CodeRate, out: &mut Vec<i8>) -> usize {
    let pat = keep_pattern(rate);
    let kept_per_period = pat.iter().filter(|&&k| k).count();
    let periods = llrs.len() / kept_per_period;
    out.reserve(periods * pat.len());
    let mut it = llrs.iter();
    for _ in 0..periods {
        for &k in pat {
            out.push(if k { *it.next().unwrap_or(&0) } else { 0 });
        }
    }
    periods * pat.len() / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impulse_response_is_the_generators() {
        let mut out = Vec::new();
        encode(&[1, 0, 0, 0, 0, 0, 0], &mut out);
        let a: Vec<u8> = out.iter().step_by(2).copied().collect();
        let b: Vec<u8> = out.iter().skip(1).step_by(2).copied().collect();
        // 133 = 1011011, 171 = 1111001 (delay 0 first)
        assert_eq!(a, vec![1, 0, 1, 1, 0, 1, 1]);
        assert_eq!(b, vec![1, 1, 1, 1, 0, 0, 1]);
    }

    #[test]
    fn puncture_lengths() {
        let bits = vec![1u8; 216];
        for (rate, n) in [(CodeRate::R1_2, 432), (CodeRate::R2_3, 324), (CodeRate::R3_4, 288)] {
            let mut out = Vec::new();
            encode_punctured(&bits, rate, &mut out);
            assert_eq!(out.len(), n);
            let llr: Vec<i8> = out.iter().map(|&b| if b == 0 { 1 } else { -1 }).collect();
            let mut dep = Vec::new();
            assert_eq!(depuncture(&llr, rate, &mut dep), 216);
        }
    }
}
