//! Layered normalized min-sum decoding on 8-bit messages, the receiver's LDPC decoder.
//!
//! One layer is one block row of the base matrix (Z parity checks that touch each bit at most
//! once); the layers are processed in order and each writes its updated bit posteriors (APP)
//! back before the next reads them, which converges in about half the iterations of flooding.
//! Per check and bit: v = APP − R_old, R_new = ±0.75·(smallest |v| of the other bits), with the
//! sign of the product of the others' signs, APP = v + R_new. Everything is i8: channel LLRs
//! are clamped to ±63 (see [`INPUT_MAX`]), messages to ±63 (see `MESSAGE_MAX`), v and APP to
//! ±127; 0.75·m is m − (m >> 2).
//!
//! **Early termination** is exact: a layer counts when its checks hold for the APP signs it
//! read and its update changed no sign; after m_b such layers in a row (any starting point) the
//! current signs satisfy every check, so decoding stops with a codeword.
//!
//! Two kernels, chosen at run time: portable scalar code over a plain array of APP values, and
//! AVX2, which keeps each block column twice in a row (rotated by the shift of the last layer
//! that wrote it) so that the cyclic shift of a block is one unaligned load, and handles Z
//! checks in 32-lane vectors (27 → 32, 54 → 64, 81 → 96 lanes; lanes past Z are ignored). Both
//! do the same arithmetic in the same order, so they produce identical bits, iteration counts
//! and convergence flags, which the tests check.

use super::{DecodeStats, LdpcCode};

/// Which implementation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable Rust; always available.
    Scalar,
    /// x86-64 AVX2, 32 × i8 lanes.
    Avx2,
    /// The AVX2 kernel compiled for AVX-512VL/BW: same 256-bit instructions, 32 registers.
    Avx512Vl,
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Self {
        *Self::available().last().unwrap_or(&Self::Scalar)
    }

    /// Every kernel this CPU can run, slowest first.
    pub fn available() -> Vec<Self> {
        let mut v = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx2") {
            v.push(Self::Avx2);
            if is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
            {
                v.push(Self::Avx512Vl);
            }
        }
        v
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512Vl => "avx512vl",
        }
    }
}

/// Decoder settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinSumConfig {
    /// Iterations at most (one iteration = every layer once).
    pub max_iterations: u32,
    /// Stop as soon as the decisions form a codeword (see the module docs). Off, every
    /// iteration runs: the worst case, for benchmarks.
    pub early_termination: bool,
}

impl Default for MinSumConfig {
    fn default() -> Self {
        Self {
            max_iterations: 20,
            early_termination: true,
        }
    }
}

/// Lanes per SIMD vector.
const LANES: usize = 32;

/// Channel LLRs are clamped to ±this on input, leaving the 8-bit posteriors headroom to grow
/// by check messages (±63 is an LLR of 15.75, certainty for any decision).
const INPUT_MAX: i8 = 63;

/// Largest mean |LLR| of a codeword's input before it is scaled down (see `input_shift`):
/// an LLR of 6 in natural units, above the mean of any code's waterfall region (the
/// (648, 540) code at its FER 1e-2 point, 3.9 dB Eb/N0, averages about 8 and loses 0.1 dB when
/// halved there; 16 cost that, 24 does not).
const INPUT_MEAN_MAX: u64 = 24;

/// Check-to-bit messages are at most this large. A posterior saturated at 127 has lost the
/// memory of what built it, and its extrinsic value (posterior − old message) is then only
/// 127 − old message: with messages up to 0.75·127 = 95, one wrong new message could flip a
/// bit that many checks supported (seen as frames failing more often at 4 dB than at 3 dB, and
/// as heavily punctured codewords diverging after converging). With messages ≤ 63 a saturated
/// posterior stays positive after any single update: 127 − 63 − 63 > 0.
const MESSAGE_MAX: u8 = 63;

/// A reusable layered min-sum decoder for one code.
#[derive(Debug, Clone)]
pub struct LayeredDecoder {
    code: &'static LdpcCode,
    kernel: Kernel,
    /// Lanes per block, Z rounded up to whole vectors (scalar kernel: Z).
    zp: usize,
    /// Bytes per block column in `app` (SIMD: two copies and a vector of slack; scalar: Z).
    stride: usize,
    app: Vec<i8>,
    /// Rotation each block column is stored in (SIMD kernel).
    rot: Vec<usize>,
    /// Check-to-bit messages, `zp` per edge block, in layer order.
    r: Vec<i8>,
    /// One layer's v = APP − R and the APP it read, Z per block (scalar kernel).
    v: Vec<i8>,
    old: Vec<i8>,
}

impl LayeredDecoder {
    /// A decoder for `code` using the fastest kernel of this CPU.
    pub fn new(code: &'static LdpcCode) -> Self {
        Self::with_kernel(code, Kernel::detect()).unwrap_or_else(|| Self::build(code, Kernel::Scalar))
    }

    /// A decoder using `kernel`, or `None` when this CPU cannot run it.
    pub fn with_kernel(code: &'static LdpcCode, kernel: Kernel) -> Option<Self> {
        Kernel::available().contains(&kernel).then(|| Self::build(code, kernel))
    }

    fn build(code: &'static LdpcCode, kernel: Kernel) -> Self {
        let z = code.z();
        let (zp, stride) = match kernel {
            Kernel::Scalar => (z, z),
            Kernel::Avx2 | Kernel::Avx512Vl => {
                let zp = z.div_ceil(LANES) * LANES;
                // Reads reach offset Z − 1 + zp; writes go to [0, zp) and [Z, Z + zp).
                (zp, (z + zp).next_multiple_of(LANES))
            }
        };
        let blocks: usize = code.layers().iter().map(Vec::len).sum();
        let deg = code.max_row_weight();
        Self {
            code,
            kernel,
            zp,
            stride,
            app: vec![0; super::BASE_COLUMNS * stride],
            rot: vec![0; super::BASE_COLUMNS],
            r: vec![0; blocks * zp],
            v: vec![0; deg * zp],
            old: vec![0; deg * zp],
        }
    }

    /// The kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The code this decoder decodes.
    pub fn code(&self) -> &'static LdpcCode {
        self.code
    }

    /// Decodes n LLRs (positive = 0; clamped to ±63, and scaled down when very confident: see
    /// the module docs) into n hard decisions in `out`.
    ///
    /// # Panics
    /// If `llr` or `out` is not n long (a caller bug).
    pub fn decode(&mut self, llr: &[i8], cfg: &MinSumConfig, out: &mut [u8]) -> DecodeStats {
        let n = self.code.n();
        assert_eq!(llr.len(), n, "need n LLRs");
        assert_eq!(out.len(), n, "need room for n bits");
        self.r.fill(0);
        match self.kernel {
            Kernel::Scalar => self.decode_scalar(llr, cfg, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: a kernel is only selectable when the CPU reports its features (AVX2, and
            // AVX-512F/BW/VL for Avx512Vl).
            Kernel::Avx2 | Kernel::Avx512Vl => unsafe { self.decode_avx2(llr, cfg, out) },
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx2 | Kernel::Avx512Vl => self.decode_scalar(llr, cfg, out),
        }
    }

    fn decode_scalar(&mut self, llr: &[i8], cfg: &MinSumConfig, out: &mut [u8]) -> DecodeStats {
        let code = self.code;
        let z = code.z();
        let mb = code.block_rows();
        let shift = input_shift(llr);
        for (a, &l) in self.app.iter_mut().zip(llr) {
            *a = scale_input(l, shift);
        }
        let mut stats = DecodeStats::default();
        let mut good_layers = 0;
        'outer: for it in 1..=cfg.max_iterations {
            stats.iterations = it;
            let mut edge0 = 0;
            for layer in code.layers() {
                let deg = layer.len();
                let mut satisfied = true;
                let mut changed = false;
                for lane in 0..z {
                    let (mut min1, mut min2, mut neg, mut parity) = (127u8, 127u8, false, false);
                    for (e, &(col, sh)) in layer.iter().enumerate() {
                        let a = self.app[bit_index(col, sh, lane, z)];
                        let v = (i16::from(a) - i16::from(self.r[(edge0 + e) * z + lane])).clamp(-127, 127) as i8;
                        self.v[e * z + lane] = v;
                        self.old[e * z + lane] = a;
                        let m = v.unsigned_abs();
                        min2 = min2.min(min1.max(m));
                        min1 = min1.min(m);
                        neg ^= v < 0;
                        parity ^= a < 0;
                    }
                    satisfied &= !parity;
                    let (s1, s2) = (
                        (min1 - (min1 >> 2)).min(MESSAGE_MAX),
                        (min2 - (min2 >> 2)).min(MESSAGE_MAX),
                    );
                    for (e, &(col, sh)) in layer.iter().enumerate() {
                        let v = self.v[e * z + lane];
                        let mag = if v.unsigned_abs() == min1 { s2 } else { s1 } as i8;
                        let rn = if neg ^ (v < 0) { -mag } else { mag };
                        self.r[(edge0 + e) * z + lane] = rn;
                        let an = (i16::from(v) + i16::from(rn)).clamp(-127, 127) as i8;
                        changed |= (an < 0) != (self.old[e * z + lane] < 0);
                        self.app[bit_index(col, sh, lane, z)] = an;
                    }
                }
                edge0 += deg;
                if satisfied && !changed {
                    good_layers += 1;
                    if cfg.early_termination && good_layers == mb {
                        stats.converged = true;
                        break 'outer;
                    }
                } else {
                    good_layers = 0;
                }
            }
        }
        for (o, &a) in out.iter_mut().zip(&self.app) {
            *o = u8::from(a < 0);
        }
        if !stats.converged {
            stats.converged = code.syndrome_ok(out);
        }
        stats
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn decode_avx2(&mut self, llr: &[i8], cfg: &MinSumConfig, out: &mut [u8]) -> DecodeStats {
        let z = self.code.z();
        let shift = input_shift(llr);
        // Both copies of every block column, rotation 0; the slack past them is never read as
        // data (it only feeds lanes ≥ Z).
        for (col, src) in self.app.chunks_exact_mut(self.stride).zip(llr.chunks_exact(z)) {
            let (first, rest) = col.split_at_mut(z);
            let (second, slack) = rest.split_at_mut(z);
            for (a, &l) in first.iter_mut().zip(src) {
                *a = scale_input(l, shift);
            }
            second.copy_from_slice(first);
            slack.fill(0);
        }
        self.rot.fill(0);
        // SAFETY: the kernel's features were checked when it was selected; the buffers have the
        // sizes `build` gave them, which is what the kernel's offsets assume.
        let (iterations, early) = unsafe {
            match (self.kernel, self.zp / LANES) {
                (Kernel::Avx512Vl, 1) => x86::run_avx512vl::<1>(self, cfg),
                (Kernel::Avx512Vl, 2) => x86::run_avx512vl::<2>(self, cfg),
                (Kernel::Avx512Vl, _) => x86::run_avx512vl::<3>(self, cfg),
                (_, 1) => x86::run_avx2::<1>(self, cfg),
                (_, 2) => x86::run_avx2::<2>(self, cfg),
                _ => x86::run_avx2::<3>(self, cfg),
            }
        };
        for ((o, col), &r) in out
            .chunks_exact_mut(z)
            .zip(self.app.chunks_exact(self.stride))
            .zip(&self.rot)
        {
            // col[t] holds APP[(t + r) mod Z] for t < 2Z, so APP[c] = col[Z − r + c].
            for (o, &a) in o.iter_mut().zip(&col[z - r..2 * z - r]) {
                *o = u8::from(a < 0);
            }
        }
        let converged = early || self.code.syndrome_ok(out);
        DecodeStats { iterations, converged }
    }
}

/// Halvings that bring the codeword's mean |LLR| to at most [`INPUT_MEAN_MAX`] (0 … 4).
///
/// Min-sum is blind to a common scale of its inputs, but 8-bit posteriors are not: when they
/// saturate, the extrinsic value of a strongly supported bit (posterior − old message) drains
/// towards 127 − 63, and a few wrong messages from confidently wrong bits then flip it. With a
/// receiver's LLRs that is an error floor that rises with SNR (the (1944, 972) code at 6 dB
/// Eb/N0 with LLRs 1.5× too confident: 67 of 300 codewords lost; 8 dB with exact LLRs: 3).
/// Scaling each codeword down so its mean |LLR| stays in the range where the waterfall is
/// measured keeps the posteriors' headroom; below that range nothing changes.
fn input_shift(llr: &[i8]) -> u32 {
    let sum: u64 = llr.iter().map(|&l| u64::from(l.unsigned_abs())).sum();
    let limit = INPUT_MEAN_MAX * llr.len() as u64;
    (0..4).find(|&s| sum >> s <= limit).unwrap_or(4)
}

/// An input LLR divided by 2^shift (rounding half away from zero) and clamped to
/// ±[`INPUT_MAX`].
#[inline]
fn scale_input(l: i8, shift: u32) -> i8 {
    let l = i16::from(l).max(-127);
    let half = (1i16 << shift) >> 1;
    let m = (l.abs() + half) >> shift;
    (if l < 0 { -m } else { m }).clamp(-i16::from(INPUT_MAX), i16::from(INPUT_MAX)) as i8
}

/// The bit that check `lane` of a block row meets in block column `col` of shift `sh`.
#[inline(always)]
fn bit_index(col: u16, sh: u16, lane: usize, z: usize) -> usize {
    let c = lane + usize::from(sh);
    usize::from(col) * z + if c >= z { c - z } else { c }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{LayeredDecoder, MinSumConfig, LANES};
    use std::arch::x86_64::*;

    /// Sign bits of the lanes below Z in vector q.
    fn lane_mask(z: usize, q: usize) -> u32 {
        let valid = z.saturating_sub(q * LANES).min(LANES);
        if valid == 32 {
            u32::MAX
        } else {
            (1u32 << valid) - 1
        }
    }

    /// The AVX2 kernel.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn run_avx2<const V: usize>(d: &mut LayeredDecoder, cfg: &MinSumConfig) -> (u32, bool) {
        // SAFETY: the caller checked AVX2; `run` needs nothing more.
        unsafe { run::<V>(d, cfg) }
    }

    /// The same code compiled with AVX-512VL/BW enabled: the instructions stay 256 bits wide
    /// (same results), but the compiler gets 32 vector registers instead of 16, which holds the
    /// per-layer state of 96-lane blocks without spilling.
    #[target_feature(enable = "avx2,avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn run_avx512vl<const V: usize>(d: &mut LayeredDecoder, cfg: &MinSumConfig) -> (u32, bool) {
        // SAFETY: the caller checked AVX2 and AVX-512F/BW/VL.
        unsafe { run::<V>(d, cfg) }
    }

    /// The decoding loop for V vectors per block. Returns (iterations, stopped early).
    ///
    /// Pass 1 over a layer's blocks finds, per check, the two smallest |v| and the sign
    /// product; pass 2 reloads the APP and old message (recomputing v rather than storing it)
    /// and writes the new message and APP.
    #[inline(always)]
    unsafe fn run<const V: usize>(d: &mut LayeredDecoder, cfg: &MinSumConfig) -> (u32, bool) {
        let code = d.code;
        let (z, zp, stride) = (code.z(), d.zp, d.stride);
        let mb = code.block_rows();
        let masks: [u32; V] = std::array::from_fn(|q| lane_mask(z, q));
        let mut rot = [0usize; super::super::BASE_COLUMNS];
        rot.copy_from_slice(&d.rot);
        let app = d.app.as_mut_ptr();
        let rp = d.r.as_mut_ptr();
        let mut good_layers = 0;
        let mut iterations = 0;
        let mut early = false;
        // SAFETY (whole body): the intrinsics need AVX2, which both callers enable. Every pointer
        // offset stays inside its buffer: `app` column j spans [j·stride, (j+1)·stride) with
        // reads at off + [0, zp) for off < Z and writes at [0, zp) and [Z, Z + zp), all below
        // Z + zp ≤ stride; `r` holds zp per edge block.
        unsafe {
            let neg127 = _mm256_set1_epi8(-127);
            let max127 = _mm256_set1_epi8(127);
            let one = _mm256_set1_epi8(1);
            let low6 = _mm256_set1_epi8(0x3f);
            let msg_max = _mm256_set1_epi8(super::MESSAGE_MAX as i8);
            let zero = _mm256_setzero_si256();
            'outer: for it in 1..=cfg.max_iterations {
                iterations = it;
                let mut edge0 = 0;
                for layer in code.layers() {
                    let mut min1 = [max127; V];
                    let mut min2 = [max127; V];
                    let mut tot = [zero; V];
                    let mut par = [zero; V];
                    for (e, &(col, sh)) in layer.iter().enumerate() {
                        let (col, sh) = (usize::from(col), usize::from(sh));
                        let off = if sh >= rot[col] {
                            sh - rot[col]
                        } else {
                            sh + z - rot[col]
                        };
                        let src = app.add(col * stride + off);
                        let rm = rp.add((edge0 + e) * zp);
                        for q in 0..V {
                            let a = _mm256_loadu_si256(src.add(q * LANES) as *const __m256i);
                            let rr = _mm256_loadu_si256(rm.add(q * LANES) as *const __m256i);
                            let v = _mm256_max_epi8(_mm256_subs_epi8(a, rr), neg127);
                            let m = _mm256_abs_epi8(v);
                            min2[q] = _mm256_min_epu8(min2[q], _mm256_max_epu8(min1[q], m));
                            min1[q] = _mm256_min_epu8(min1[q], m);
                            tot[q] = _mm256_xor_si256(tot[q], v);
                            par[q] = _mm256_xor_si256(par[q], a);
                        }
                    }
                    let mut satisfied = true;
                    let mut s1 = [zero; V];
                    let mut s2 = [zero; V];
                    for q in 0..V {
                        satisfied &= (_mm256_movemask_epi8(par[q]) as u32) & masks[q] == 0;
                        // m − (m >> 2) on bytes: a 16-bit shift, masked to the byte's own bits.
                        s1[q] = _mm256_min_epu8(
                            _mm256_sub_epi8(min1[q], _mm256_and_si256(_mm256_srli_epi16(min1[q], 2), low6)),
                            msg_max,
                        );
                        s2[q] = _mm256_min_epu8(
                            _mm256_sub_epi8(min2[q], _mm256_and_si256(_mm256_srli_epi16(min2[q], 2), low6)),
                            msg_max,
                        );
                    }
                    let mut changed = 0u32;
                    for (e, &(col, sh)) in layer.iter().enumerate() {
                        let (col, sh) = (usize::from(col), usize::from(sh));
                        let off = if sh >= rot[col] {
                            sh - rot[col]
                        } else {
                            sh + z - rot[col]
                        };
                        let src = app.add(col * stride + off);
                        let rm = rp.add((edge0 + e) * zp);
                        let mut anew = [zero; V];
                        for q in 0..V {
                            let a = _mm256_loadu_si256(src.add(q * LANES) as *const __m256i);
                            let rr = _mm256_loadu_si256(rm.add(q * LANES) as *const __m256i);
                            let v = _mm256_max_epi8(_mm256_subs_epi8(a, rr), neg127);
                            let is_min = _mm256_cmpeq_epi8(_mm256_abs_epi8(v), min1[q]);
                            let mag = _mm256_blendv_epi8(s1[q], s2[q], is_min);
                            // Sign source never 0, so `sign` never zeroes the magnitude.
                            let t = _mm256_or_si256(_mm256_xor_si256(v, tot[q]), one);
                            let rn = _mm256_sign_epi8(mag, t);
                            _mm256_storeu_si256(rm.add(q * LANES) as *mut __m256i, rn);
                            let an = _mm256_max_epi8(_mm256_adds_epi8(v, rn), neg127);
                            changed |= (_mm256_movemask_epi8(_mm256_xor_si256(an, a)) as u32) & masks[q];
                            anew[q] = an;
                        }
                        // Both copies, in the rotation of this block; the second overwrites the
                        // first's lanes past Z.
                        let dst = app.add(col * stride);
                        for (q, a) in anew.iter().enumerate() {
                            _mm256_storeu_si256(dst.add(q * LANES) as *mut __m256i, *a);
                        }
                        for (q, a) in anew.iter().enumerate() {
                            _mm256_storeu_si256(dst.add(z + q * LANES) as *mut __m256i, *a);
                        }
                        rot[col] = sh;
                    }
                    edge0 += layer.len();
                    if satisfied && changed == 0 {
                        good_layers += 1;
                        if cfg.early_termination && good_layers == mb {
                            early = true;
                            break 'outer;
                        }
                    } else {
                        good_layers = 0;
                    }
                }
            }
        }
        d.rot.copy_from_slice(&rot);
        (iterations, early)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CodeLength, LdpcRate};
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// BPSK over AWGN at `ebn0_db`, LLRs scaled by 4 and quantised.
    fn noisy_llrs(code: &LdpcCode, ebn0_db: f64, rng: &mut ChaCha8Rng) -> (Vec<u8>, Vec<i8>) {
        let info: Vec<u8> = (0..code.k()).map(|_| rng.random_range(0..2)).collect();
        let mut cw = vec![0u8; code.n()];
        code.encode(&info, &mut cw);
        let sigma2 = 1.0 / (2.0 * code.rate().value() * 10f64.powf(ebn0_db / 10.0));
        let llr = cw
            .iter()
            .map(|&b| {
                let x = if b == 0 { 1.0 } else { -1.0 };
                let n: f64 = StandardNormal.sample(rng);
                let y = x + sigma2.sqrt() * n;
                (4.0 * 2.0 * y / sigma2).round().clamp(-127.0, 127.0) as i8
            })
            .collect();
        (cw, llr)
    }

    #[test]
    fn every_kernel_decodes_clean_codewords_in_one_iteration() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for code in LdpcCode::all() {
            for k in Kernel::available() {
                let mut dec = LayeredDecoder::with_kernel(code, k).unwrap();
                let (cw, llr) = noisy_llrs(code, 30.0, &mut rng);
                let mut out = vec![0u8; code.n()];
                let st = dec.decode(&llr, &MinSumConfig::default(), &mut out);
                assert_eq!(out, cw, "{} {}", code.name(), k.name());
                assert_eq!(
                    st,
                    DecodeStats {
                        iterations: 1,
                        converged: true
                    }
                );
            }
        }
    }

    #[test]
    fn simd_kernels_give_identical_output_to_scalar() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for code in LdpcCode::all() {
            let mut scalar = LayeredDecoder::with_kernel(code, Kernel::Scalar).unwrap();
            let mut others: Vec<LayeredDecoder> = Kernel::available()
                .into_iter()
                .filter(|&k| k != Kernel::Scalar)
                .map(|k| LayeredDecoder::with_kernel(code, k).unwrap())
                .collect();
            // From hopeless to easy, with and without early termination, plus saturated input.
            // Shift the points by the code's threshold, which grows with the rate.
            let offset = (code.rate().value() - 0.5) * 6.0;
            for (i, ebn0) in [-1.0, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0].into_iter().enumerate() {
                for early in [true, false] {
                    let (_, mut llr) = noisy_llrs(code, ebn0 + offset, &mut rng);
                    if i == 0 {
                        llr.iter_mut()
                            .step_by(3)
                            .for_each(|l| *l = if *l < 0 { -128 } else { 127 });
                    }
                    let cfg = MinSumConfig {
                        max_iterations: 12,
                        early_termination: early,
                    };
                    let mut want = vec![0u8; code.n()];
                    let ws = scalar.decode(&llr, &cfg, &mut want);
                    for d in &mut others {
                        let mut got = vec![0u8; code.n()];
                        let gs = d.decode(&llr, &cfg, &mut got);
                        assert_eq!(
                            (gs, &got),
                            (ws, &want),
                            "{} {} Eb/N0 {ebn0}",
                            code.name(),
                            d.kernel().name()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn early_termination_stops_on_a_codeword_and_changes_nothing_else() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let code = LdpcCode::get(CodeLength::N1944, LdpcRate::R1_2);
        let mut dec = LayeredDecoder::new(code);
        let (mut iters_early, mut iters_full) = (0, 0);
        for _ in 0..20 {
            let (cw, llr) = noisy_llrs(code, 2.0, &mut rng);
            let mut a = vec![0u8; code.n()];
            let mut b = vec![0u8; code.n()];
            let sa = dec.decode(&llr, &MinSumConfig::default(), &mut a);
            let sb = dec.decode(
                &llr,
                &MinSumConfig {
                    early_termination: false,
                    ..Default::default()
                },
                &mut b,
            );
            assert!(sa.converged && code.syndrome_ok(&a));
            assert_eq!(a, cw, "decoded at 2 dB");
            // Once converged, min-sum stays on the codeword.
            assert_eq!(b, cw);
            assert_eq!(sb.iterations, 20);
            iters_early += sa.iterations;
            iters_full += sb.iterations;
        }
        assert!(
            iters_early * 2 < iters_full,
            "early termination saved little: {iters_early}"
        );
    }

    #[test]
    fn hopeless_input_is_not_reported_converged() {
        let code = LdpcCode::get(CodeLength::N648, LdpcRate::R5_6);
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for k in Kernel::available() {
            let mut dec = LayeredDecoder::with_kernel(code, k).unwrap();
            let llr: Vec<i8> = (0..code.n()).map(|_| rng.random_range(-20..=20)).collect();
            let mut out = vec![0u8; code.n()];
            let st = dec.decode(&llr, &MinSumConfig::default(), &mut out);
            assert_eq!(st.converged, code.syndrome_ok(&out));
            assert!(!st.converged, "{}: random LLRs converged", k.name());
            assert_eq!(st.iterations, 20);
        }
    }

    #[test]
    fn over_confident_llrs_do_not_raise_an_error_floor() {
        // Min-sum ignores a common LLR scale; the 8-bit decoder must too, from the waterfall
        // to high SNR (a receiver's noise estimate can be off by a few dB either way).
        let code = LdpcCode::get(CodeLength::N1944, LdpcRate::R1_2);
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for k in Kernel::available() {
            let mut dec = LayeredDecoder::with_kernel(code, k).unwrap();
            for ebn0 in [3.0, 6.0, 9.0] {
                let sigma2 = 1.0 / (2.0 * 0.5 * 10f64.powf(ebn0 / 10.0));
                for mult in [1.0, 2.0, 4.0] {
                    for _ in 0..30 {
                        let info: Vec<u8> = (0..code.k()).map(|_| rng.random_range(0..2)).collect();
                        let mut cw = vec![0u8; code.n()];
                        code.encode(&info, &mut cw);
                        let llr: Vec<i8> = cw
                            .iter()
                            .map(|&b| {
                                let x = if b == 0 { 1.0 } else { -1.0 };
                                let n: f64 = StandardNormal.sample(&mut rng);
                                let l = mult * 4.0 * 2.0 * (x + sigma2.sqrt() * n) / sigma2;
                                l.round().clamp(-127.0, 127.0) as i8
                            })
                            .collect();
                        let mut out = vec![0u8; code.n()];
                        dec.decode(&llr, &MinSumConfig::default(), &mut out);
                        assert_eq!(out, cw, "{} at {ebn0} dB, LLRs x{mult}", k.name());
                    }
                }
            }
        }
    }

    #[test]
    fn input_scaling_rounds_and_clamps() {
        assert_eq!(input_shift(&[24; 10]), 0);
        assert_eq!(input_shift(&[25; 10]), 1);
        assert_eq!(input_shift(&[127; 10]), 3);
        assert_eq!(input_shift(&[-128; 10]), 3);
        assert_eq!(scale_input(-128, 0), -INPUT_MAX);
        assert_eq!(scale_input(5, 1), 3);
        assert_eq!(scale_input(-5, 1), -3);
        assert_eq!(scale_input(-1, 2), 0);
        assert_eq!(scale_input(100, 0), INPUT_MAX);
    }
}
