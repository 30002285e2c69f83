//! Gray-coded constellations (§17.3.5.7) and max-log soft demapping.
//!
//! Each axis carries half the bits of a subcarrier with a Gray-coded PAM; the first half of the
//! bits (b0 …) goes on I, the second on Q. Points are normalised to unit average energy
//! (K_MOD = 1, 1/√2, 1/√10, 1/√42; 1/√170 and 1/√682 for 802.11ac/ax 256- and 1024-QAM).
//!
//! Every axis is the binary-reflected Gray code over the levels −(2^h − 1) … 2^h − 1: the
//! label of the i-th level from the bottom is i ^ (i >> 1). This is the §17.3.5.7 mapping for
//! BPSK … 64-QAM and the 802.11ac (VHT) 256-QAM and 802.11ax (HE) 1024-QAM mappings.

use crate::rate::Modulation;
use num_complex::Complex32;

/// PAM levels for each axis label (label bits b0 b1 b2 read MSB first), in units of the grid.
const PAM2: [f32; 2] = [-1.0, 1.0];
const PAM4: [f32; 4] = [-3.0, -1.0, 3.0, 1.0]; // 00 01 10 11
const PAM8: [f32; 8] = [-7.0, -5.0, -1.0, -3.0, 7.0, 5.0, 1.0, 3.0]; // 000 001 010 011 100 101 110 111
const PAM16: [f32; 16] = gray_pam::<16>();
const PAM32: [f32; 32] = gray_pam::<32>();

/// The level of each label of an N-level binary-reflected Gray PAM (levels ±1, ±3, …).
const fn gray_pam<const N: usize>() -> [f32; N] {
    let mut out = [0f32; N];
    let mut i = 0;
    while i < N {
        // Level index i carries label i ^ (i >> 1).
        out[i ^ (i >> 1)] = (2 * i) as f32 - (N - 1) as f32;
        i += 1;
    }
    out
}

/// Most bits one subcarrier carries (1024-QAM).
pub const MAX_BITS_PER_SYMBOL: usize = 10;

/// Normalisation factor K_MOD.
pub fn k_mod(m: Modulation) -> f32 {
    match m {
        Modulation::Bpsk => 1.0,
        Modulation::Qpsk => std::f32::consts::FRAC_1_SQRT_2,
        Modulation::Qam16 => 1.0 / 10f32.sqrt(),
        Modulation::Qam64 => 1.0 / 42f32.sqrt(),
        Modulation::Qam256 => 1.0 / 170f32.sqrt(),
        Modulation::Qam1024 => 1.0 / 682f32.sqrt(),
    }
}

fn pam(bits_per_axis: usize) -> &'static [f32] {
    match bits_per_axis {
        1 => &PAM2,
        2 => &PAM4,
        3 => &PAM8,
        4 => &PAM16,
        _ => &PAM32,
    }
}

/// The constellation of `m`: point for each label 0..2^bits, where the label's most significant
/// bit is the subcarrier's first coded bit b0.
pub fn constellation(m: Modulation) -> Vec<Complex32> {
    let n = m.bits_per_symbol();
    let k = k_mod(m);
    (0..1usize << n)
        .map(|label| {
            if m == Modulation::Bpsk {
                return Complex32::new(PAM2[label], 0.0);
            }
            let h = n / 2;
            let i_lab = label >> h;
            let q_lab = label & ((1 << h) - 1);
            Complex32::new(pam(h)[i_lab] * k, pam(h)[q_lab] * k)
        })
        .collect()
}

/// Maps coded bits (one per byte, `m.bits_per_symbol()` per point) to constellation points.
#[derive(Clone, Debug)]
pub struct Mapper {
    modulation: Modulation,
    points: Vec<Complex32>,
}

impl Mapper {
    /// Builds the lookup table for `m`.
    pub fn new(m: Modulation) -> Self {
        Self {
            modulation: m,
            points: constellation(m),
        }
    }

    /// The point for `bits` (b0 first).
    #[inline]
    pub fn map(&self, bits: &[u8]) -> Complex32 {
        let label = bits.iter().fold(0usize, |acc, &b| (acc << 1) | (b & 1) as usize);
        self.points[label]
    }

    /// The point for a label whose MSB is b0.
    #[inline]
    pub fn point(&self, label: usize) -> Complex32 {
        self.points[label]
    }

    /// Modulation of this mapper.
    pub fn modulation(&self) -> Modulation {
        self.modulation
    }
}

/// Max-log LLRs of one axis value `y` (grid units) for a Gray PAM carrying `nb` bits, written to
/// `out[..nb]` as D0 − D1 (squared distance to the nearest 0-labelled level minus that to the
/// nearest 1-labelled level): positive favours 1. Branch-free closed forms of the exact max-log
/// values.
#[inline(always)]
pub fn pam_llr(y: f32, nb: usize, out: &mut [f32]) {
    match nb {
        1 => out[0] = 4.0 * y,
        2 => {
            // b0: sign; b1 = 1 on the inner levels ±1.
            out[0] = sign_bit_llr(y, 2);
            out[1] = 4.0 * (2.0 - y.abs());
        }
        3 => {
            out[0] = sign_bit_llr(y, 3);
            let u = y.abs();
            // b1 = 1 on levels ±1, ±3 (|y| < 4), b1 = 0 on ±5, ±7.
            out[1] = inner_half_llr(u);
            // b2 = 1 on levels ±3, ±5 (| |y| − 4 | < 2), 0 on ±1, ±7.
            out[2] = 4.0 * (2.0 - (u - 4.0).abs());
        }
        _ => pam_llr_search(y, nb, out),
    }
}

/// Exact max-log LLRs of a 2^nb-level Gray PAM (nb = 4, 5) by distance to every level: the
/// closed forms above grow a case per bit, and the LDPC decoder dwarfs this cost.
#[inline]
fn pam_llr_search(y: f32, nb: usize, out: &mut [f32]) {
    let levels = pam(nb);
    let mut d = [[f32::INFINITY; 2]; 5];
    for (label, &level) in levels.iter().enumerate() {
        let e = (y - level) * (y - level);
        for (b, db) in d.iter_mut().enumerate().take(nb) {
            let bit = (label >> (nb - 1 - b)) & 1;
            db[bit] = db[bit].min(e);
        }
    }
    for (o, db) in out.iter_mut().zip(&d[..nb]) {
        *o = db[0] - db[1];
    }
}

/// Exact max-log LLR of the sign bit of a 2^nb-level Gray PAM (levels ±1, ±3, …): with p the
/// level nearest to |y| on y's side, D(−1 side) − D(p) = 2|y|(1 + p) + 1 − p², signed.
#[inline]
fn sign_bit_llr(y: f32, nb: usize) -> f32 {
    let max_level = ((1 << nb) - 1) as f32;
    let u = y.abs();
    // u ≥ 0, so truncation is floor (and avoids a library call).
    let p = (2.0 * ((u * 0.5) as i32) as f32 + 1.0).min(max_level);
    let v = 2.0 * u * (1.0 + p) + 1.0 - p * p;
    v.copysign(y)
}

/// Exact max-log LLR of 64-QAM's b1 as a function of u = |y|: between the nearest of
/// {1, 3} (b1 = 1) and the nearest of {5, 7} (b1 = 0).
#[inline]
fn inner_half_llr(u: f32) -> f32 {
    let one = if u < 2.0 { 1.0 } else { 3.0 };
    let zero = if u > 6.0 { 7.0 } else { 5.0 };
    (u - zero) * (u - zero) - (u - one) * (u - one)
}

/// Soft demapper: writes `m.bits_per_symbol()` LLRs for the equalised point `z`, scaled by
/// `weight` (CSI: |H|² / σ², or any common scale). The sign convention is positive = bit 0, as
/// the Viterbi decoder expects.
#[inline]
pub fn demap(m: Modulation, z: Complex32, weight: f32, out: &mut [f32]) {
    let k = k_mod(m);
    // LLRs in grid units scale with K_MOD².
    let w = -weight * k * k;
    match m {
        Modulation::Bpsk => {
            out[0] = w * 4.0 * z.re;
        }
        _ => {
            let h = m.bits_per_symbol() / 2;
            let inv = 1.0 / k;
            pam_llr(z.re * inv, h, &mut out[..h]);
            pam_llr(z.im * inv, h, &mut out[h..2 * h]);
            for v in &mut out[..2 * h] {
                *v *= w;
            }
        }
    }
}

/// LLR to i8, rounding half away from zero and saturating at ±127 (NaN → 0). Written
/// without `round()`, which is a library call on baseline x86-64.
#[inline]
pub fn quantize_llr(v: f32) -> i8 {
    let c = v.clamp(-127.0, 127.0);
    (c + 0.5f32.copysign(c)) as i8
}

/// Demaps a run of equalised points `zs` with per-point weights `ws` straight into quantised
/// LLRs (`m.bits_per_symbol()` per point, positive = 0): the same values as [`demap`] followed
/// by [`quantize_llr`], with the modulation dispatched once per run instead of once per point.
pub fn demap_quantized(m: Modulation, zs: &[Complex32], ws: &[f32], out: &mut [i8]) {
    #[inline(always)]
    fn run<const H: usize>(zs: &[Complex32], ws: &[f32], k: f32, out: &mut [i8]) {
        let (inv, scale) = (1.0 / k, -k * k);
        for ((z, &w), o) in zs.iter().zip(ws).zip(out.chunks_exact_mut(2 * H)) {
            let mut l = [0f32; MAX_BITS_PER_SYMBOL];
            pam_llr(z.re * inv, H, &mut l[..H]);
            pam_llr(z.im * inv, H, &mut l[H..2 * H]);
            for (d, v) in o.iter_mut().zip(&l[..2 * H]) {
                *d = quantize_llr(v * w * scale);
            }
        }
    }
    match m {
        Modulation::Bpsk => {
            for ((z, &w), o) in zs.iter().zip(ws).zip(out.iter_mut()) {
                *o = quantize_llr(-w * 4.0 * z.re);
            }
        }
        Modulation::Qpsk => run::<1>(zs, ws, k_mod(m), out),
        Modulation::Qam16 => run::<2>(zs, ws, k_mod(m), out),
        Modulation::Qam64 => run::<3>(zs, ws, k_mod(m), out),
        Modulation::Qam256 => run::<4>(zs, ws, k_mod(m), out),
        Modulation::Qam1024 => run::<5>(zs, ws, k_mod(m), out),
    }
}

/// Hard decision: the label of the nearest point.
pub fn hard_label(m: Modulation, z: Complex32) -> usize {
    let mut llr = [0f32; MAX_BITS_PER_SYMBOL];
    let n = m.bits_per_symbol();
    demap(m, z, 1.0, &mut llr[..n]);
    llr[..n].iter().fold(0, |acc, &l| (acc << 1) | usize::from(l < 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force max-log LLR (positive = 0) over the whole constellation.
    fn brute(m: Modulation, z: Complex32) -> Vec<f32> {
        let pts = constellation(m);
        let n = m.bits_per_symbol();
        (0..n)
            .map(|b| {
                let bit = |l: usize| (l >> (n - 1 - b)) & 1;
                let d = |want| {
                    pts.iter()
                        .enumerate()
                        .filter(|(l, _)| bit(*l) == want)
                        .map(|(_, p)| (z - p).norm_sqr())
                        .fold(f32::INFINITY, f32::min)
                };
                d(1) - d(0)
            })
            .collect()
    }

    #[test]
    fn run_demapper_equals_pointwise_demapper() {
        for m in Modulation::ALL {
            let zs: Vec<Complex32> = (0..48)
                .map(|i| Complex32::new((i as f32 * 0.37).sin() * 1.3, (i as f32 * 0.91).cos() * 1.2))
                .collect();
            let ws: Vec<f32> = (0..48).map(|i| 3.0 + (i % 7) as f32).collect();
            let n = m.bits_per_symbol();
            let mut fast = vec![0i8; 48 * n];
            demap_quantized(m, &zs, &ws, &mut fast);
            for (i, (&z, &w)) in zs.iter().zip(&ws).enumerate() {
                let mut l = [0f32; MAX_BITS_PER_SYMBOL];
                demap(m, z, w, &mut l[..n]);
                let want: Vec<i8> = l[..n].iter().map(|&v| quantize_llr(v)).collect();
                assert_eq!(&fast[i * n..(i + 1) * n], &want[..], "{m:?} point {i}");
            }
        }
        assert_eq!(quantize_llr(f32::NAN), 0);
        assert_eq!(quantize_llr(1e9), 127);
        assert_eq!(quantize_llr(-2.5), -3);
    }

    #[test]
    fn standard_points() {
        // §17.3.5.7 tables: 16-QAM b0b1 = 00 → −3, 01 → −1, 11 → +1, 10 → +3.
        let m = Mapper::new(Modulation::Qam16);
        let k = 1.0 / 10f32.sqrt();
        assert!((m.map(&[1, 0, 0, 1]) - Complex32::new(3.0 * k, -k)).norm() < 1e-6);
        let m = Mapper::new(Modulation::Qam64);
        let k = 1.0 / 42f32.sqrt();
        // 64-QAM b0b1b2 = 011 → −3, 101 → +5.
        assert!((m.map(&[0, 1, 1, 1, 0, 1]) - Complex32::new(-3.0 * k, 5.0 * k)).norm() < 1e-6);
        for md in Modulation::ALL {
            let pts = constellation(md);
            let e: f32 = pts.iter().map(|p| p.norm_sqr()).sum::<f32>() / pts.len() as f32;
            assert!((e - 1.0).abs() < 1e-5, "{md:?} energy {e}");
        }
    }

    #[test]
    fn closed_forms_equal_brute_force_max_log() {
        for md in Modulation::ALL {
            for i in -90..=90 {
                for q in [-1.3f32, -0.2, 0.0, 0.55, 1.2] {
                    let z = Complex32::new(i as f32 * 0.0157, q);
                    let z = if md == Modulation::Bpsk {
                        Complex32::new(z.re, 0.0)
                    } else {
                        z
                    };
                    let mut got = [0f32; MAX_BITS_PER_SYMBOL];
                    let n = md.bits_per_symbol();
                    demap(md, z, 1.0, &mut got[..n]);
                    let want = brute(md, z);
                    for b in 0..n {
                        assert!(
                            (got[b] - want[b]).abs() < 1e-3 * (1.0 + want[b].abs()),
                            "{md:?} z={z} bit {b}: {} vs {}",
                            got[b],
                            want[b]
                        );
                    }
                }
            }
            // Hard decisions of the points themselves give their labels back.
            for (label, p) in constellation(md).into_iter().enumerate() {
                assert_eq!(hard_label(md, p), label);
            }
        }
    }

    #[test]
    fn qam256_and_1024_follow_the_vht_and_he_tables() {
        // 802.11ac 256-QAM, per axis: b0b1b2b3 = 0000 → −15, 0001 → −13, 0100 → −1, 1100 → +1,
        // 1110 → +7, 1000 → +15.
        let m = Mapper::new(Modulation::Qam256);
        let k = 1.0 / 170f32.sqrt();
        for (i_bits, q_bits, i, q) in [
            ([0, 0, 0, 0], [1, 0, 0, 0], -15.0, 15.0),
            ([0, 0, 0, 1], [0, 1, 0, 0], -13.0, -1.0),
            ([1, 1, 0, 0], [1, 1, 1, 0], 1.0, 7.0),
        ] {
            let bits: Vec<u8> = i_bits.iter().chain(&q_bits).copied().collect();
            assert!((m.map(&bits) - Complex32::new(i * k, q * k)).norm() < 1e-6, "{bits:?}");
        }
        // 1024-QAM: 00000 → −31, 10000 → +31, 11000 → +1.
        let m = Mapper::new(Modulation::Qam1024);
        let k = 1.0 / 682f32.sqrt();
        let p = m.map(&[0, 0, 0, 0, 0, 1, 1, 0, 0, 0]);
        assert!((p - Complex32::new(-31.0 * k, k)).norm() < 1e-6, "{p}");
        // Neighbouring levels differ in exactly one bit (Gray).
        for md in [Modulation::Qam256, Modulation::Qam1024] {
            let h = md.bits_per_symbol() / 2;
            let levels = pam(h);
            let mut order: Vec<usize> = (0..levels.len()).collect();
            order.sort_by(|&a, &b| levels[a].total_cmp(&levels[b]));
            assert!(order.windows(2).all(|w| (w[0] ^ w[1]).count_ones() == 1), "{md:?}");
        }
    }

    /// Hard decisions of 256- and 1024-QAM in complex AWGN against the exact Gray-QAM BER of
    /// Cho & Yoon ([`crate::theory::ber_awgn_esn0`]), seeded.
    #[test]
    fn dense_qam_hard_decision_ber_matches_theory() {
        use rand::{Rng, SeedableRng};
        use rand_distr::{Distribution, StandardNormal};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(256);
        for (md, esn0_db) in [(Modulation::Qam256, 24.0), (Modulation::Qam1024, 30.0)] {
            let n = md.bits_per_symbol();
            let mapper = Mapper::new(md);
            let esn0 = 10f64.powf(esn0_db / 10.0);
            let sigma = (0.5 / esn0).sqrt() as f32;
            let (mut errors, mut bits) = (0u64, 0u64);
            for _ in 0..60_000 {
                let label = rng.random_range(0..1usize << n);
                let nz = Complex32::new(StandardNormal.sample(&mut rng), StandardNormal.sample(&mut rng));
                let got = hard_label(md, mapper.point(label) + nz * sigma);
                errors += u64::from((got ^ label).count_ones());
                bits += n as u64;
            }
            let ber = errors as f64 / bits as f64;
            let want = crate::theory::ber_awgn_esn0(md, esn0);
            assert!(errors > 2000, "{md:?}: {errors} errors");
            assert!(
                (ber / want - 1.0).abs() < 0.06,
                "{md:?} at {esn0_db} dB: {ber:.4e} vs theory {want:.4e}"
            );
        }
    }
}
