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
///
/// Each output is an XOR of inputs at fixed delays (A: 0, 2, 3, 5, 6; B: 0, 1, 2, 3, 6), so there
/// is no state chain and the loop vectorises.
pub fn encode(bits: &[u8], out: &mut Vec<u8>) {
    let mut padded = vec![0u8; bits.len() + 6];
    for (p, &b) in padded[6..].iter_mut().zip(bits) {
        *p = b & 1;
    }
    let base = out.len();
    out.resize(base + 2 * bits.len(), 0);
    for (x, o) in padded.windows(7).zip(out[base..].chunks_exact_mut(2)) {
        // x[6] = b_n, x[6 − d] = b_{n−d}.
        o[0] = x[6] ^ x[4] ^ x[3] ^ x[1] ^ x[0];
        o[1] = x[6] ^ x[5] ^ x[4] ^ x[3] ^ x[0];
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
    match rate {
        CodeRate::R1_2 => out.extend_from_slice(coded),
        CodeRate::R2_3 => {
            for c in coded.chunks(4) {
                out.extend_from_slice(&c[..c.len().min(3)]);
            }
        }
        CodeRate::R3_4 => {
            for c in coded.chunks(6) {
                out.extend_from_slice(&c[..c.len().min(3)]);
                if c.len() == 6 {
                    out.push(c[5]);
                }
            }
        }
    }
}

/// Encodes and punctures in one pass.
pub fn encode_punctured(bits: &[u8], rate: CodeRate, out: &mut Vec<u8>) {
    if rate == CodeRate::R1_2 {
        return encode(bits, out);
    }
    let mut half = Vec::with_capacity(2 * bits.len());
    encode(bits, &mut half);
    puncture(&half, rate, out);
}

/// Re-inserts erasures (LLR 0) where bits were punctured, so the Viterbi decoder always sees
/// rate-1/2 pairs. Returns the number of rate-1/2 pairs written.
pub fn depuncture(llrs: &[i8], rate: CodeRate, out: &mut Vec<i8>) -> usize {
    let pat = keep_pattern(rate);
    let kept = pat.iter().filter(|&&k| k).count();
    let periods = llrs.len() / kept;
    let base = out.len();
    out.resize(base + periods * pat.len(), 0);
    let dst = &mut out[base..];
    match rate {
        CodeRate::R1_2 => dst.copy_from_slice(&llrs[..periods * 2]),
        CodeRate::R2_3 => {
            for (o, i) in dst.chunks_exact_mut(4).zip(llrs.chunks_exact(3)) {
                o[..3].copy_from_slice(i);
            }
        }
        CodeRate::R3_4 => {
            for (o, i) in dst.chunks_exact_mut(6).zip(llrs.chunks_exact(4)) {
                o[..3].copy_from_slice(&i[..3]);
                o[5] = i[3];
            }
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
    fn table_encoder_matches_the_generators() {
        // Direct evaluation of the generator polynomials on a shift register.
        let bits: Vec<u8> = (0..300u32).map(|i| ((i * 2_654_435_761) >> 13 & 1) as u8).collect();
        let mut reg = [0u8; 7];
        let mut want = Vec::new();
        for &b in &bits {
            reg.rotate_right(1);
            reg[0] = b;
            let tap = |g: u8| (0..7).fold(0, |acc, d| acc ^ (reg[d] & ((g >> (6 - d)) & 1)));
            want.push(tap(G0));
            want.push(tap(G1));
        }
        let mut got = Vec::new();
        encode(&bits, &mut got);
        assert_eq!(got, want);
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
