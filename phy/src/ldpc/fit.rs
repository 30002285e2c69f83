//! Fitting a payload of any length into whole OFDM symbols of LDPC codewords: the procedure of
//! IEEE 802.11-2012 clause 20.3.11.7.5 (one spatial stream, no STBC).
//!
//! ```text
//!  N_avbits = N_CBPS · ⌈N_pld / (N_CBPS · R)⌉                       (20-36)
//!  N_CW, L_LDPC from Table 20-16 (by N_avbits)
//!  N_shrt = max(0, N_CW·L_LDPC·R − N_pld)                          (20-37)
//!  N_punc = max(0, N_CW·L_LDPC − N_avbits − N_shrt)                (20-38)
//!  if (N_punc > 0.1·N_CW·L_LDPC·(1−R) and N_shrt < 1.2·N_punc·R/(1−R))
//!     or N_punc > 0.3·N_CW·L_LDPC·(1−R):  N_avbits += N_CBPS, N_punc again   (20-39, 20-40)
//!  N_SYM = N_avbits / N_CBPS                                        (20-41)
//!  N_rep = max(0, N_avbits − N_CW·L_LDPC·(1−R) − N_pld)             (20-42)
//! ```
//!
//! Shortening, puncturing and repetition are spread over the codewords as evenly as they go,
//! the first codewords taking one more: shortened bits are zeros at the end of a codeword's
//! information part, not sent; punctured bits are its last parity bits; repeated bits are
//! copied from the start of the codeword as sent (information, then parity), cyclically.
//! All arithmetic is on integers (the rate as a fraction), so the parameters are exact.

use super::{CodeLength, LayeredDecoder, LdpcCode, LdpcRate, MinSumConfig};
use crate::PhyError;

/// The 20.3.11.7.5 parameters of one payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LdpcFit {
    /// Code rate.
    pub rate: LdpcRate,
    /// Codeword length L_LDPC.
    pub length: CodeLength,
    /// Payload bits N_pld (SERVICE included, as the standard counts).
    pub n_pld: usize,
    /// Coded bits per OFDM symbol N_CBPS.
    pub n_cbps: usize,
    /// Codewords N_CW.
    pub n_cw: usize,
    /// Shortened bits N_shrt (all codewords).
    pub n_shrt: usize,
    /// Punctured bits N_punc.
    pub n_punc: usize,
    /// Repeated bits N_rep.
    pub n_rep: usize,
    /// Coded bits sent N_avbits = N_SYM · N_CBPS.
    pub n_avbits: usize,
    /// OFDM symbols N_SYM.
    pub n_sym: usize,
}

/// One codeword's share of the shortening, puncturing and repetition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Share {
    payload: usize,
    punctured: usize,
    repeated: usize,
}

/// Aggregate decoding outcome of a fitted payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FitStats {
    /// Codewords decoded.
    pub codewords: u32,
    /// Codewords whose decisions do not satisfy every check.
    pub failed: u32,
    /// Iterations summed over the codewords.
    pub iterations: u32,
}

/// Largest payload fitted, bits: far beyond any frame (65 535 octets), it only bounds the work a
/// corrupt length can cause.
pub const MAX_PAYLOAD_BITS: usize = 8 * 70_000;

/// ⌈a / b⌉ for b > 0.
fn ceil_div(a: usize, b: usize) -> usize {
    a.div_ceil(b)
}

/// An even split of `total` over `parts`, the first `total mod parts` getting one more.
fn split(total: usize, parts: usize, i: usize) -> usize {
    total / parts + usize::from(i < total % parts)
}

impl LdpcFit {
    /// The parameters for `n_pld` payload bits at `rate` on symbols of `n_cbps` coded bits.
    pub fn new(n_pld: usize, n_cbps: usize, rate: LdpcRate) -> Result<Self, PhyError> {
        let bad = |reason: &str| PhyError::LdpcFit {
            payload_bits: n_pld,
            coded_bits_per_symbol: n_cbps,
            reason: reason.to_string(),
        };
        if n_pld == 0 || n_pld > MAX_PAYLOAD_BITS {
            return Err(bad("payload must be 1 … 560 000 bits"));
        }
        let (num, den) = rate.ratio();
        if n_cbps == 0 || !(n_cbps * num).is_multiple_of(den) {
            return Err(bad("N_CBPS·R must be a whole number of bits"));
        }
        let n_dbps = n_cbps * num / den;
        let mut n_avbits = n_cbps * ceil_div(n_pld, n_dbps);
        // Table 20-16. `a ≥ n_pld + c·(1 − R)` is written `den·a ≥ den·n_pld + c·(den − num)`.
        let at_least = |a: usize, c: usize| den * a >= den * n_pld + c * (den - num);
        let (n_cw, length) = if n_avbits <= 648 {
            (
                1,
                if at_least(n_avbits, 912) {
                    CodeLength::N1296
                } else {
                    CodeLength::N648
                },
            )
        } else if n_avbits <= 1296 {
            (
                1,
                if at_least(n_avbits, 1464) {
                    CodeLength::N1944
                } else {
                    CodeLength::N1296
                },
            )
        } else if n_avbits <= 1944 {
            (1, CodeLength::N1944)
        } else if n_avbits <= 2592 {
            (
                2,
                if at_least(n_avbits, 2916) {
                    CodeLength::N1944
                } else {
                    CodeLength::N1296
                },
            )
        } else {
            (ceil_div(n_pld * den, 1944 * num), CodeLength::N1944)
        };
        let l = length.bits();
        let k_total = n_cw * l * num / den;
        let parity_total = n_cw * l - k_total;
        let n_shrt = k_total.saturating_sub(n_pld);
        let mut n_punc = (n_cw * l).saturating_sub(n_avbits + n_shrt);
        // 20-39: too much puncturing costs another symbol. With p = N_punc, P = N_CW·L·(1−R):
        // p > 0.1·P and N_shrt < 1.2·p·R/(1−R), or p > 0.3·P.
        let heavy = (10 * n_punc > parity_total && 10 * n_shrt * (den - num) < 12 * n_punc * num)
            || 10 * n_punc > 3 * parity_total;
        if heavy {
            n_avbits += n_cbps;
            n_punc = (n_cw * l).saturating_sub(n_avbits + n_shrt);
        }
        let n_rep = if n_punc > 0 {
            0
        } else {
            n_avbits.saturating_sub(parity_total + n_pld)
        };
        Ok(Self {
            rate,
            length,
            n_pld,
            n_cbps,
            n_cw,
            n_shrt,
            n_punc,
            n_rep,
            n_avbits,
            n_sym: n_avbits / n_cbps,
        })
    }

    /// The code used.
    pub fn code(&self) -> &'static LdpcCode {
        LdpcCode::get(self.length, self.rate)
    }

    fn share(&self, i: usize) -> Share {
        let k = self.code().k();
        Share {
            payload: k - split(self.n_shrt, self.n_cw, i),
            punctured: split(self.n_punc, self.n_cw, i),
            repeated: split(self.n_rep, self.n_cw, i),
        }
    }

    /// Encodes `payload` (N_pld bits, one per byte) into N_avbits coded bits appended to `out`.
    ///
    /// # Panics
    /// If `payload.len() != n_pld` (a caller bug).
    pub fn encode(&self, payload: &[u8], out: &mut Vec<u8>) {
        assert_eq!(payload.len(), self.n_pld, "payload length");
        let code = self.code();
        let (n, k) = (code.n(), code.k());
        let mut info = vec![0u8; k];
        let mut cw = vec![0u8; n];
        let mut at = 0;
        let start = out.len();
        for i in 0..self.n_cw {
            let sh = self.share(i);
            info[..sh.payload].copy_from_slice(&payload[at..at + sh.payload]);
            info[sh.payload..].fill(0);
            at += sh.payload;
            code.encode(&info, &mut cw);
            let first = out.len();
            out.extend_from_slice(&cw[..sh.payload]);
            out.extend_from_slice(&cw[k..n - sh.punctured]);
            let sent = out.len() - first;
            for r in 0..sh.repeated {
                let b = out[first + r % sent];
                out.push(b);
            }
        }
        debug_assert_eq!(out.len() - start, self.n_avbits);
    }

    /// Decodes N_avbits LLRs (positive = 0) with `decoder`, which must be for [`LdpcFit::code`],
    /// writing the N_pld payload decisions to `payload` (cleared first).
    ///
    /// # Panics
    /// If `llrs.len() != n_avbits` or the decoder is for another code (caller bugs).
    pub fn decode(
        &self,
        llrs: &[i8],
        decoder: &mut LayeredDecoder,
        cfg: &MinSumConfig,
        payload: &mut Vec<u8>,
    ) -> FitStats {
        assert_eq!(llrs.len(), self.n_avbits, "LLR count");
        let code = self.code();
        assert!(std::ptr::eq(decoder.code(), code), "decoder for another code");
        let (n, k) = (code.n(), code.k());
        let mut cw_llr = vec![0i8; n];
        let mut bits = vec![0u8; n];
        let mut stats = FitStats::default();
        payload.clear();
        let mut at = 0;
        for i in 0..self.n_cw {
            let sh = self.share(i);
            let parity_sent = n - k - sh.punctured;
            let sent = sh.payload + parity_sent;
            let rx = &llrs[at..at + sent + sh.repeated];
            at += sent + sh.repeated;
            // Codeword position of the j-th bit sent.
            let pos = |j: usize| if j < sh.payload { j } else { k + j - sh.payload };
            cw_llr[..sh.payload].copy_from_slice(&rx[..sh.payload]);
            cw_llr[sh.payload..k].fill(i8::MAX); // shortened: known zeros
            cw_llr[k..k + parity_sent].copy_from_slice(&rx[sh.payload..sent]);
            cw_llr[k + parity_sent..].fill(0); // punctured: erased
            for (r, &l) in rx[sent..].iter().enumerate() {
                let p = pos(r % sent);
                cw_llr[p] = cw_llr[p].saturating_add(l);
            }
            let st = decoder.decode(&cw_llr, cfg, &mut bits);
            stats.codewords += 1;
            stats.failed += u32::from(!st.converged);
            stats.iterations += st.iterations;
            payload.extend_from_slice(&bits[..sh.payload]);
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_parameters() {
        // 1000 octets + SERVICE at QPSK 1/2 on 48 data subcarriers (N_CBPS = 96): N_pld = 8016,
        // N_avbits = 96·⌈8016/48⌉ = 16032 > 2592 → N_CW = ⌈8016/972⌉ = 9 codewords of 1944,
        // N_shrt = 9·972 − 8016 = 732, N_punc = 17496 − 16032 − 732 = 732 > 0.1·8748 = 874.8? no;
        // N_shrt = 732 < 1.2·732 = 878.4 but the first test fails, so no extra symbol.
        let f = LdpcFit::new(8016, 96, LdpcRate::R1_2).unwrap();
        assert_eq!(
            (f.n_cw, f.length, f.n_shrt, f.n_punc, f.n_rep, f.n_avbits, f.n_sym),
            (9, CodeLength::N1944, 732, 732, 0, 16032, 167)
        );
        // A short payload: 100 bits at 16-QAM 3/4 (N_CBPS = 192, N_DBPS = 144): one symbol,
        // N_avbits = 192 ≤ 648; 4·192 ≥ 4·100 + 912 is false → L = 648, k = 486,
        // N_shrt = 386, N_punc = 648 − 192 − 386 = 70 > 0.1·162 and 386 < 1.2·70·3 = 252? no;
        // 70 > 0.3·162 = 48.6 → one more symbol: N_avbits = 384, N_punc = 0,
        // N_rep = 384 − 162 − 100 = 122.
        let f = LdpcFit::new(100, 192, LdpcRate::R3_4).unwrap();
        assert_eq!(
            (f.n_cw, f.length, f.n_shrt, f.n_punc, f.n_rep, f.n_avbits, f.n_sym),
            (1, CodeLength::N648, 386, 0, 122, 384, 2)
        );
        assert!(LdpcFit::new(0, 96, LdpcRate::R1_2).is_err());
        assert!(LdpcFit::new(100, 0, LdpcRate::R1_2).is_err());
        assert!(LdpcFit::new(100, 50, LdpcRate::R2_3).is_err());
    }

    #[test]
    fn parameters_are_consistent_for_every_length() {
        for rate in LdpcRate::ALL {
            for n_cbps in [48, 96, 192, 288, 384, 480] {
                for n_pld in (1..3000).chain((3000..70_000).step_by(997)) {
                    let f = LdpcFit::new(n_pld, n_cbps, rate).unwrap();
                    let code = f.code();
                    let (n, k) = (code.n(), code.k());
                    assert_eq!(f.n_avbits, f.n_sym * n_cbps);
                    assert!(f.n_cw * k >= n_pld, "{f:?}");
                    assert_eq!(f.n_shrt, f.n_cw * k - n_pld);
                    assert!(f.n_punc == 0 || f.n_rep == 0);
                    assert_eq!(f.n_cw * n - f.n_shrt - f.n_punc + f.n_rep, f.n_avbits, "{f:?}");
                }
            }
        }
    }

    #[test]
    fn encode_decode_round_trip_with_shortening_puncturing_and_repetition() {
        let mut dec_cache: Vec<LayeredDecoder> = Vec::new();
        let cfg = MinSumConfig::default();
        let mut kinds = (false, false, false);
        for (n_pld, n_cbps, rate) in [
            (8016, 96, LdpcRate::R1_2),
            (100, 192, LdpcRate::R3_4),
            (1, 48, LdpcRate::R1_2),
            (700, 288, LdpcRate::R2_3),
            (5000, 480, LdpcRate::R5_6),
            (2500, 384, LdpcRate::R5_6),
            // 220 of 324 parity bits punctured: decodable, but once diverged with saturated
            // input LLRs (see layered::INPUT_MAX).
            (40, 48, LdpcRate::R1_2),
        ] {
            let f = LdpcFit::new(n_pld, n_cbps, rate).unwrap();
            kinds.0 |= f.n_shrt > 0;
            kinds.1 |= f.n_punc > 0;
            kinds.2 |= f.n_rep > 0;
            let payload: Vec<u8> = (0..n_pld).map(|i| ((i * 2654435761) >> 13) as u8 & 1).collect();
            let mut coded = Vec::new();
            f.encode(&payload, &mut coded);
            assert_eq!(coded.len(), f.n_avbits);
            // Saturated LLRs, as a receiver at high SNR gives.
            let llrs: Vec<i8> = coded.iter().map(|&b| if b == 0 { 127 } else { -127 }).collect();
            let pos = dec_cache.iter().position(|d| std::ptr::eq(d.code(), f.code()));
            let dec = match pos {
                Some(p) => &mut dec_cache[p],
                None => {
                    dec_cache.push(LayeredDecoder::new(f.code()));
                    dec_cache.last_mut().unwrap()
                }
            };
            let mut out = Vec::new();
            let st = f.decode(&llrs, dec, &cfg, &mut out);
            assert_eq!(out, payload, "{f:?}");
            assert_eq!((st.codewords as usize, st.failed), (f.n_cw, 0));
        }
        assert_eq!(kinds, (true, true, true), "every mechanism exercised");
    }
}
