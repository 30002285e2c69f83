//! Soft-decision Viterbi decoder for the K = 7 (133, 171) code.
//!
//! The decoder state σ holds the last six input bits with the newest in bit 0, so the two
//! predecessors of state t are t >> 1 and (t >> 1) | 32 ("butterfly" j, j + 32 → 2j, 2j + 1).
//! Both predecessor branches of a butterfly carry complementary code bits, so one branch metric
//! per butterfly is enough. Branch metrics are correlations of i8 LLRs (positive = bit 0) with
//! the expected code bits; path metrics are i16, renormalised every [`RENORM_INTERVAL`] steps.
//!
//! Three kernels compute the forward pass: scalar, AVX2 and AVX-512BW, picked at run time. All
//! three use the same arithmetic (wrapping i16, ties go to the lower predecessor) and the same
//! decision layout, so they produce identical decisions, which the tests check.
//!
//! Decision layout: one `u64` per step; the decision for new state t = 2j + p sits in bit
//! `32 p + j`, and is 1 when the upper predecessor (j + 32) won.

use crate::convcode;

/// Steps between renormalisations of the path metrics.
///
/// With |LLR| ≤ 127 a branch metric is at most 254, the spread of the metrics of a K = 7 code is
/// at most 6 · 2 · 254, and 16 steps add at most 16 · 254: all stays well inside i16.
pub const RENORM_INTERVAL: usize = 16;

/// Path metric of the states that are impossible at the start (the encoder starts in state 0).
const UNREACHABLE: i16 = -10_000;

/// Where the traceback starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// The encoder is known to end in state 0 (tail bits, e.g. the SIGNAL field).
    ZeroState,
    /// Start from the state with the best metric (pad bits follow the tail in DATA).
    BestState,
}

/// Which forward-pass implementation runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// Portable Rust; always available.
    Scalar,
    /// x86-64 AVX2, 16 × i16 lanes.
    Avx2,
    /// x86-64 AVX-512BW, 32 × i16 lanes.
    Avx512,
    /// x86-64 AVX-512BW + VL on 256-bit registers (16 × i16): compares into mask registers and
    /// two-source word permutes replace AVX2's pack/unpack shuffles.
    Avx512Vl,
}

impl Kernel {
    /// The kernel used by default: AVX-512VL, else AVX2, else AVX-512 (512-bit), else scalar.
    /// On the Zen 4 we benchmark, 256-bit AVX-512VL decodes ~15 % faster than AVX2 and the 512-bit
    /// kernel (double-pumped there) ~10 % slower; every kernel stays selectable through
    /// [`ViterbiDecoder::with_kernel`].
    pub fn detect() -> Self {
        let a = Self::available();
        [Self::Avx512Vl, Self::Avx2, Self::Avx512]
            .into_iter()
            .find(|k| a.contains(k))
            .unwrap_or(Self::Scalar)
    }

    /// Every kernel this CPU can run, slowest first.
    pub fn available() -> Vec<Self> {
        let mut v = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                v.push(Self::Avx2);
            }
            if is_x86_feature_detected!("avx512bw") && is_x86_feature_detected!("avx512f") {
                v.push(Self::Avx512);
                if is_x86_feature_detected!("avx512vl") {
                    v.push(Self::Avx512Vl);
                }
            }
        }
        v
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
            Self::Avx512Vl => "avx512vl",
        }
    }
}

/// Expected-bit signs of the butterflies: `SIGN_A[j]` is −1 when the branch from state j with
/// input 0 emits code bit A = 1, else +1 (likewise `SIGN_B`).
static SIGNS: ([i16; 32], [i16; 32]) = {
    let mut a = [0i16; 32];
    let mut b = [0i16; 32];
    let mut j = 0;
    while j < 32 {
        // Encoder register: b_n in bit 6, b_n-1 in bit 5, …, b_n-6 in bit 0 = bit-reversed σ.
        let mut reg = 0u8;
        let mut k = 0;
        while k < 6 {
            reg |= (((j >> k) & 1) as u8) << (5 - k);
            k += 1;
        }
        let (ca, cb) = convcode::outputs(reg, 0);
        a[j] = if ca == 1 { -1 } else { 1 };
        b[j] = if cb == 1 { -1 } else { 1 };
        j += 1;
    }
    (a, b)
};

/// A reusable decoder: holds the decision memory so decoding does not allocate once warm.
#[derive(Debug, Clone)]
pub struct ViterbiDecoder {
    kernel: Kernel,
    decisions: Vec<u64>,
    metrics: [i16; 64],
}

impl Default for ViterbiDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ViterbiDecoder {
    /// A decoder using the fastest kernel of this CPU.
    pub fn new() -> Self {
        Self::with_kernel(Kernel::detect()).unwrap_or_else(|| Self::with_kernel(Kernel::Scalar).unwrap())
    }

    /// A decoder using `kernel`, or `None` when this CPU cannot run it.
    pub fn with_kernel(kernel: Kernel) -> Option<Self> {
        Kernel::available().contains(&kernel).then(|| Self {
            kernel,
            decisions: Vec::new(),
            metrics: [0; 64],
        })
    }

    /// The kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Decodes `out.len()` bits from `2 * out.len()` LLRs (A0 B0 A1 B1 …; positive means 0,
    /// 0 is an erasure). Bits are written one per byte.
    ///
    /// # Panics
    /// If `llrs.len() != 2 * out.len()` (a caller bug, not an input error).
    pub fn decode(&mut self, llrs: &[i8], termination: Termination, out: &mut [u8]) {
        assert_eq!(llrs.len(), 2 * out.len(), "need two LLRs per decoded bit");
        let n = out.len();
        if n == 0 {
            return;
        }
        self.forward(llrs);
        let start = match termination {
            Termination::ZeroState => 0,
            Termination::BestState => best_state(&self.metrics),
        };
        traceback(&self.decisions[..n], start, out);
    }

    /// Runs only the forward pass; the decisions are left in [`ViterbiDecoder::decisions`].
    pub fn forward(&mut self, llrs: &[i8]) {
        let n = llrs.len() / 2;
        self.decisions.clear();
        self.decisions.resize(n, 0);
        self.metrics = [UNREACHABLE; 64];
        self.metrics[0] = 0;
        match self.kernel {
            Kernel::Scalar => forward_scalar(llrs, &mut self.metrics, &mut self.decisions),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the kernel is only selectable when the CPU reports the feature.
            Kernel::Avx2 => unsafe { x86::forward_avx2(llrs, &mut self.metrics, &mut self.decisions) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx512 => unsafe { x86::forward_avx512(llrs, &mut self.metrics, &mut self.decisions) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kernel::Avx512Vl => unsafe { x86::forward_avx512vl(llrs, &mut self.metrics, &mut self.decisions) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => forward_scalar(llrs, &mut self.metrics, &mut self.decisions),
        }
    }

    /// Decisions of the last forward pass, one word per step (layout in the module docs).
    pub fn decisions(&self) -> &[u64] {
        &self.decisions
    }

    /// Path metrics after the last forward pass, natural state order.
    pub fn metrics(&self) -> &[i16; 64] {
        &self.metrics
    }
}

fn best_state(m: &[i16; 64]) -> usize {
    // First maximum: the same on every kernel since the metrics are identical.
    let mut best = 0;
    for (s, &v) in m.iter().enumerate() {
        if v > m[best] {
            best = s;
        }
    }
    best
}

/// Follows the survivors back from `state` after the last step.
///
/// It tracks r, the decision-bit position of the current state t (r = t rotated right by one
/// within six bits), rather than t: the predecessor's position is then
/// ((r & 1) << 5) | ((r & 31) >> 1) | (u << 4), with u the decision bit at r, which keeps the
/// serial dependency per bit to four simple operations. The decoded bit is t & 1 = bit 5 of r.
///
/// That chain is latency-bound, so long blocks are traced as [`CHAINS`] interleaved chains:
/// the last starts from `state` at the end, each other from an arbitrary state [`OVERLAP`] steps
/// beyond its segment. Survivor paths merge within a few constraint lengths, so after the
/// overlap every chain is on the decoded path. 192 steps (~27 constraint lengths) gave results
/// identical to the serial traceback in every test, pure noise included; 96 did not at 39 % BER.
fn traceback(decisions: &[u64], state: usize, out: &mut [u8]) {
    let n = out.len();
    if n < CHAINS * 4 * OVERLAP {
        traceback_serial(&decisions[..n], rot(state), out);
        return;
    }
    let seg = n / CHAINS;
    // Chain c decodes steps [c·seg, (c+1)·seg), the last one up to n.
    let mut r = [0u32; CHAINS];
    // Warm-up: chains 0 … CHAINS−2 walk back OVERLAP steps from state 0, outputs discarded.
    for k in 0..OVERLAP {
        for (c, rc) in r.iter_mut().enumerate().take(CHAINS - 1) {
            let i = (c + 1) * seg + OVERLAP - 1 - k;
            *rc = step_back(*rc, decisions[i]);
        }
    }
    // The last chain first covers its extra steps beyond CHAINS·seg, alone.
    let last_start = (CHAINS - 1) * seg;
    let tail = &mut out[last_start + seg..];
    r[CHAINS - 1] = traceback_serial(&decisions[last_start + seg..n], rot(state), tail);
    // Then all chains together, one step each per iteration (reversed slices: no bounds checks).
    let (o, d) = (&mut out[..CHAINS * seg], &decisions[..CHAINS * seg]);
    let (o01, o23) = o.split_at_mut(2 * seg);
    let (o0, o1) = o01.split_at_mut(seg);
    let (o2, o3) = o23.split_at_mut(seg);
    let (d0, d1, d2, d3) = (&d[..seg], &d[seg..2 * seg], &d[2 * seg..3 * seg], &d[3 * seg..]);
    let chains = o0
        .iter_mut()
        .rev()
        .zip(d0.iter().rev())
        .zip(o1.iter_mut().rev().zip(d1.iter().rev()));
    let chains = chains.zip(
        o2.iter_mut()
            .rev()
            .zip(d2.iter().rev())
            .zip(o3.iter_mut().rev().zip(d3.iter().rev())),
    );
    // Four scalar locals, not an array: as an array the compiler vectorises the four chains
    // into SSE registers, putting register-file moves on every chain's critical path.
    let [mut r0, mut r1, mut r2, mut r3] = r;
    for (((b0, &e0), (b1, &e1)), ((b2, &e2), (b3, &e3))) in chains {
        *b0 = (r0 >> 5) as u8 & 1;
        *b1 = (r1 >> 5) as u8 & 1;
        *b2 = (r2 >> 5) as u8 & 1;
        *b3 = (r3 >> 5) as u8 & 1;
        r0 = step_back(r0, e0);
        r1 = step_back(r1, e1);
        r2 = step_back(r2, e2);
        r3 = step_back(r3, e3);
    }
}

/// Chains of the traceback.
const CHAINS: usize = 4;
/// Steps each chain but the last walks before its segment.
const OVERLAP: usize = 192;

/// Decision-bit position of state t: t rotated right by one within six bits.
#[inline]
fn rot(state: usize) -> u32 {
    (((state & 1) << 5) | (state >> 1)) as u32
}

/// One step back from position `r` through the decisions `d` of that step.
#[inline(always)]
fn step_back(r: u32, d: u64) -> u32 {
    let u = ((d >> r) & 1) as u32;
    ((r & 1) << 5) | ((r & 31) >> 1) | (u << 4)
}

/// Plain traceback of `decisions` from position `r` after the last one, writing one bit per
/// step; returns the position before the first step.
fn traceback_serial(decisions: &[u64], mut r: u32, out: &mut [u8]) -> u32 {
    for (bit, &d) in out.iter_mut().zip(decisions).rev() {
        *bit = (r >> 5) as u8 & 1;
        r = step_back(r, d);
    }
    r
}

fn forward_scalar(llrs: &[i8], metrics: &mut [i16; 64], decisions: &mut [u64]) {
    let (sa, sb) = &SIGNS;
    for (step, (pair, dec)) in llrs.chunks_exact(2).zip(decisions.iter_mut()).enumerate() {
        let (l0, l1) = (i16::from(pair[0]), i16::from(pair[1]));
        let old = *metrics;
        let mut d = 0u64;
        for j in 0..32 {
            let bm = (sa[j] * l0).wrapping_add(sb[j] * l1);
            let (lo, hi) = (old[j], old[j + 32]);
            let (ea, eb) = (lo.wrapping_add(bm), hi.wrapping_sub(bm));
            let (oa, ob) = (lo.wrapping_sub(bm), hi.wrapping_add(bm));
            let (de, dodd) = (eb > ea, ob > oa);
            metrics[2 * j] = if de { eb } else { ea };
            metrics[2 * j + 1] = if dodd { ob } else { oa };
            d |= (u64::from(de) << j) | (u64::from(dodd) << (32 + j));
        }
        *dec = d;
        if step % RENORM_INTERVAL == RENORM_INTERVAL - 1 {
            let z = metrics[0];
            for m in metrics.iter_mut() {
                *m = m.wrapping_sub(z);
            }
        }
    }
}

/// The four branch metrics a step can have, ±(L0 + L1) and ±(L0 − L1), as i16 packed into a
/// u64 in the order [+c0, +c1, −c1, −c0] (index = 2·(sign A < 0) + (sign B < 0)).
#[inline(always)]
fn bm_values(l0: i8, l1: i8) -> i64 {
    let (c0, c1) = (i16::from(l0) + i16::from(l1), i16::from(l0) - i16::from(l1));
    let w = |v: i16| u64::from(v as u16);
    (w(c0) | (w(c1) << 16) | (w(c1.wrapping_neg()) << 32) | (w(c0.wrapping_neg()) << 48)) as i64
}

/// Byte-shuffle controls that pick, for butterfly j (0–15, then 16–31), the branch metric of
/// [`bm_values`] its code bits call for. Each 128-bit lane of the broadcast holds the four values
/// twice, so indices stay within the lane.
static BM_SELECT: [i8; 64] = {
    let mut t = [0i8; 64];
    let mut j = 0;
    while j < 32 {
        let idx = 2 * (SIGNS.0[j] < 0) as usize + (SIGNS.1[j] < 0) as usize;
        // Lane-local byte offset of i16 `idx` (the 64-bit pattern repeats every 8 bytes).
        t[2 * j] = (2 * idx) as i8;
        t[2 * j + 1] = (2 * idx + 1) as i8;
        j += 1;
    }
    t
};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{bm_values, BM_SELECT, RENORM_INTERVAL, SIGNS};
    use core::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn forward_avx2(llrs: &[i8], metrics: &mut [i16; 64], decisions: &mut [u64]) {
        // SAFETY (whole body): unaligned loads/stores of exactly 16 i16 from arrays of 32/64.
        let ld = |p: *const i16| unsafe { _mm256_loadu_si256(p.cast()) };
        let ldb = |p: *const i8| unsafe { _mm256_loadu_si256(p.cast()) };
        let (sel0, sel1) = (ldb(BM_SELECT.as_ptr()), ldb(BM_SELECT[32..].as_ptr()));
        let mut m0 = ld(metrics.as_ptr());
        let mut m1 = ld(metrics[16..].as_ptr());
        let mut m2 = ld(metrics[32..].as_ptr());
        let mut m3 = ld(metrics[48..].as_ptr());
        for (step, (pair, dec)) in llrs.chunks_exact(2).zip(decisions.iter_mut()).enumerate() {
            let four = _mm256_set1_epi64x(bm_values(pair[0], pair[1]));
            let (bm0, bm1) = (_mm256_shuffle_epi8(four, sel0), _mm256_shuffle_epi8(four, sel1));
            let (e0a, e0b) = (_mm256_add_epi16(m0, bm0), _mm256_sub_epi16(m2, bm0));
            let (o0a, o0b) = (_mm256_sub_epi16(m0, bm0), _mm256_add_epi16(m2, bm0));
            let (e1a, e1b) = (_mm256_add_epi16(m1, bm1), _mm256_sub_epi16(m3, bm1));
            let (o1a, o1b) = (_mm256_sub_epi16(m1, bm1), _mm256_add_epi16(m3, bm1));
            let (e0, o0) = (_mm256_max_epi16(e0a, e0b), _mm256_max_epi16(o0a, o0b));
            let (e1, o1) = (_mm256_max_epi16(e1a, e1b), _mm256_max_epi16(o1a, o1b));
            let de = _mm256_packs_epi16(_mm256_cmpgt_epi16(e0b, e0a), _mm256_cmpgt_epi16(e1b, e1a));
            let dodd = _mm256_packs_epi16(_mm256_cmpgt_epi16(o0b, o0a), _mm256_cmpgt_epi16(o1b, o1a));
            let de = _mm256_permute4x64_epi64::<0b11_01_10_00>(de);
            let dodd = _mm256_permute4x64_epi64::<0b11_01_10_00>(dodd);
            *dec = u64::from(_mm256_movemask_epi8(de) as u32) | (u64::from(_mm256_movemask_epi8(dodd) as u32) << 32);
            let (a, b) = (_mm256_unpacklo_epi16(e0, o0), _mm256_unpackhi_epi16(e0, o0));
            m0 = _mm256_permute2x128_si256::<0x20>(a, b);
            m1 = _mm256_permute2x128_si256::<0x31>(a, b);
            let (c, d) = (_mm256_unpacklo_epi16(e1, o1), _mm256_unpackhi_epi16(e1, o1));
            m2 = _mm256_permute2x128_si256::<0x20>(c, d);
            m3 = _mm256_permute2x128_si256::<0x31>(c, d);
            if step % RENORM_INTERVAL == RENORM_INTERVAL - 1 {
                let z = _mm256_set1_epi16(_mm256_extract_epi16::<0>(m0) as i16);
                m0 = _mm256_sub_epi16(m0, z);
                m1 = _mm256_sub_epi16(m1, z);
                m2 = _mm256_sub_epi16(m2, z);
                m3 = _mm256_sub_epi16(m3, z);
            }
        }
        let st = |p: *mut i16, v| unsafe { _mm256_storeu_si256(p.cast(), v) };
        st(metrics.as_mut_ptr(), m0);
        st(metrics[16..].as_mut_ptr(), m1);
        st(metrics[32..].as_mut_ptr(), m2);
        st(metrics[48..].as_mut_ptr(), m3);
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    pub(super) unsafe fn forward_avx512vl(llrs: &[i8], metrics: &mut [i16; 64], decisions: &mut [u64]) {
        let ldb = |p: *const i8| unsafe { _mm256_loadu_si256(p.cast()) };
        let (sel0, sel1) = (ldb(BM_SELECT.as_ptr()), ldb(BM_SELECT[32..].as_ptr()));
        // Interleave e (lanes 0–15 of the permute's sources) with o (16–31): new states 2j, 2j+1.
        let lo: [i16; 16] = std::array::from_fn(|p| ((p & 1) * 16 + p / 2) as i16);
        let hi: [i16; 16] = std::array::from_fn(|p| ((p & 1) * 16 + 8 + p / 2) as i16);
        // SAFETY: unaligned 32-byte loads/stores of 16 i16 within arrays of 16 or 64.
        let ld = |p: *const i16| unsafe { _mm256_loadu_si256(p.cast()) };
        let (ilo, ihi) = (ld(lo.as_ptr()), ld(hi.as_ptr()));
        let mut m0 = ld(metrics.as_ptr());
        let mut m1 = ld(metrics[16..].as_ptr());
        let mut m2 = ld(metrics[32..].as_ptr());
        let mut m3 = ld(metrics[48..].as_ptr());
        for (step, (pair, dec)) in llrs.chunks_exact(2).zip(decisions.iter_mut()).enumerate() {
            let four = _mm256_set1_epi64x(bm_values(pair[0], pair[1]));
            let (bm0, bm1) = (_mm256_shuffle_epi8(four, sel0), _mm256_shuffle_epi8(four, sel1));
            let (e0a, e0b) = (_mm256_add_epi16(m0, bm0), _mm256_sub_epi16(m2, bm0));
            let (o0a, o0b) = (_mm256_sub_epi16(m0, bm0), _mm256_add_epi16(m2, bm0));
            let (e1a, e1b) = (_mm256_add_epi16(m1, bm1), _mm256_sub_epi16(m3, bm1));
            let (o1a, o1b) = (_mm256_sub_epi16(m1, bm1), _mm256_add_epi16(m3, bm1));
            let (e0, o0) = (_mm256_max_epi16(e0a, e0b), _mm256_max_epi16(o0a, o0b));
            let (e1, o1) = (_mm256_max_epi16(e1a, e1b), _mm256_max_epi16(o1a, o1b));
            let de =
                u64::from(_mm256_cmpgt_epi16_mask(e0b, e0a)) | (u64::from(_mm256_cmpgt_epi16_mask(e1b, e1a)) << 16);
            let dodd =
                u64::from(_mm256_cmpgt_epi16_mask(o0b, o0a)) | (u64::from(_mm256_cmpgt_epi16_mask(o1b, o1a)) << 16);
            *dec = de | (dodd << 32);
            m0 = _mm256_permutex2var_epi16(e0, ilo, o0);
            m1 = _mm256_permutex2var_epi16(e0, ihi, o0);
            m2 = _mm256_permutex2var_epi16(e1, ilo, o1);
            m3 = _mm256_permutex2var_epi16(e1, ihi, o1);
            if step % RENORM_INTERVAL == RENORM_INTERVAL - 1 {
                let z = _mm256_set1_epi16(_mm256_extract_epi16::<0>(m0) as i16);
                m0 = _mm256_sub_epi16(m0, z);
                m1 = _mm256_sub_epi16(m1, z);
                m2 = _mm256_sub_epi16(m2, z);
                m3 = _mm256_sub_epi16(m3, z);
            }
        }
        let st = |p: *mut i16, v| unsafe { _mm256_storeu_si256(p.cast(), v) };
        st(metrics.as_mut_ptr(), m0);
        st(metrics[16..].as_mut_ptr(), m1);
        st(metrics[32..].as_mut_ptr(), m2);
        st(metrics[48..].as_mut_ptr(), m3);
    }

    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn forward_avx512(llrs: &[i8], metrics: &mut [i16; 64], decisions: &mut [u64]) {
        let (sa, sb) = &SIGNS;
        let neg_mask =
            |s: &[i16; 32]| -> u32 { s.iter().enumerate().fold(0, |m, (j, &v)| m | (u32::from(v < 0) << j)) };
        let (ka, kb) = (neg_mask(sa), neg_mask(sb));
        // SAFETY: unaligned 64-byte loads/stores of 32 i16 from arrays of at least 32.
        let ld = |p: *const i16| unsafe { _mm512_loadu_si512(p.cast()) };
        // unpacklo(e, o) holds new states 16L … 16L+7 in 128-bit lane L, unpackhi 16L+8 … 16L+15;
        // these 64-bit indices put them in natural order (states 0–31, then 32–63).
        let qlo = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
        let qhi = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
        let mut lo = ld(metrics.as_ptr());
        let mut hi = ld(metrics[32..].as_ptr());
        let zero = _mm512_setzero_si512();
        for (step, (pair, dec)) in llrs.chunks_exact(2).zip(decisions.iter_mut()).enumerate() {
            let l0 = _mm512_set1_epi16(i16::from(pair[0]));
            let l1 = _mm512_set1_epi16(i16::from(pair[1]));
            let bm = _mm512_add_epi16(
                _mm512_mask_sub_epi16(l0, ka, zero, l0),
                _mm512_mask_sub_epi16(l1, kb, zero, l1),
            );
            let (ea, eb) = (_mm512_add_epi16(lo, bm), _mm512_sub_epi16(hi, bm));
            let (oa, ob) = (_mm512_sub_epi16(lo, bm), _mm512_add_epi16(hi, bm));
            let (e, o) = (_mm512_max_epi16(ea, eb), _mm512_max_epi16(oa, ob));
            let de = _mm512_cmpgt_epi16_mask(eb, ea);
            let dodd = _mm512_cmpgt_epi16_mask(ob, oa);
            *dec = u64::from(de) | (u64::from(dodd) << 32);
            // Interleave e/o within 128-bit lanes, then put the lanes in order.
            let (ul, uh) = (_mm512_unpacklo_epi16(e, o), _mm512_unpackhi_epi16(e, o));
            lo = _mm512_permutex2var_epi64(ul, qlo, uh);
            hi = _mm512_permutex2var_epi64(ul, qhi, uh);
            if step % RENORM_INTERVAL == RENORM_INTERVAL - 1 {
                let z = _mm512_set1_epi16(_mm_extract_epi16::<0>(_mm512_castsi512_si128(lo)) as i16);
                lo = _mm512_sub_epi16(lo, z);
                hi = _mm512_sub_epi16(hi, z);
            }
        }
        // SAFETY: 64-byte stores into the 64-element metric array.
        unsafe {
            _mm512_storeu_si512(metrics.as_mut_ptr().cast(), lo);
            _mm512_storeu_si512(metrics[32..].as_mut_ptr().cast(), hi);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn encode_llrs(bits: &[u8], amp: i8) -> Vec<i8> {
        let mut coded = Vec::new();
        convcode::encode(bits, &mut coded);
        coded.iter().map(|&b| if b == 0 { amp } else { -amp }).collect()
    }

    #[test]
    fn decodes_noiseless_on_every_kernel() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for kernel in Kernel::available() {
            let mut dec = ViterbiDecoder::with_kernel(kernel).unwrap();
            for len in [1usize, 7, 24, 100, 1000] {
                let mut bits: Vec<u8> = (0..len).map(|_| rng.random_range(0..2)).collect();
                bits.extend([0; 6]);
                let llr = encode_llrs(&bits, 40);
                let mut out = vec![9u8; bits.len()];
                dec.decode(&llr, Termination::ZeroState, &mut out);
                assert_eq!(out, bits, "{kernel:?} len {len}");
                dec.decode(&llr, Termination::BestState, &mut out);
                assert_eq!(out, bits, "{kernel:?} len {len} best-state");
            }
        }
    }

    #[test]
    fn simd_kernels_match_scalar_decisions_on_noisy_input() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut scalar = ViterbiDecoder::with_kernel(Kernel::Scalar).unwrap();
        for kernel in Kernel::available() {
            let mut simd = ViterbiDecoder::with_kernel(kernel).unwrap();
            for trial in 0..40 {
                let n = rng.random_range(1..3000);
                // Noisy and saturated LLRs, ties and erasures included.
                let llr: Vec<i8> = (0..2 * n)
                    .map(|_| match rng.random_range(0..10) {
                        0 => 0,
                        1 => 127,
                        2 => -127,
                        _ => rng.random_range(-40..=40),
                    })
                    .collect();
                scalar.forward(&llr);
                simd.forward(&llr);
                assert_eq!(scalar.decisions(), simd.decisions(), "{kernel:?} trial {trial}");
                assert_eq!(scalar.metrics(), simd.metrics(), "{kernel:?} trial {trial}");
                let (mut a, mut b) = (vec![0u8; n], vec![0u8; n]);
                scalar.decode(&llr, Termination::BestState, &mut a);
                simd.decode(&llr, Termination::BestState, &mut b);
                assert_eq!(a, b);
            }
        }
    }

    #[test]
    fn chained_traceback_equals_serial_traceback() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut dec = ViterbiDecoder::new();
        for (n, amp) in [
            (1536usize, 40),
            (1537, 9),
            (5000, 7),
            (12_006, 12),
            (40_000, 5),
            (40_000, 3),
            (40_000, 1),
        ] {
            let mut bits: Vec<u8> = (0..n).map(|_| rng.random_range(0..2)).collect();
            bits[n - 6..].fill(0);
            // Noisy LLRs near the decoder's threshold, so the survivor paths are not trivial.
            let llr: Vec<i8> = encode_llrs(&bits, amp)
                .into_iter()
                .map(|l| (i32::from(l) + rng.random_range(-14..=14)).clamp(-127, 127) as i8)
                .collect();
            dec.forward(&llr);
            let start = best_state(dec.metrics());
            let mut chained = vec![0u8; n];
            traceback(dec.decisions(), start, &mut chained);
            let mut serial = vec![0u8; n];
            traceback_serial(dec.decisions(), rot(start), &mut serial);
            // Compared by count so a failure does not print 40 000 bits.
            let diff = chained.iter().zip(&serial).filter(|(a, b)| a != b).count();
            assert_eq!(diff, 0, "n = {n}, amplitude {amp}: chained and serial traceback differ");
        }
    }

    #[test]
    fn corrects_isolated_errors() {
        // d_free = 10: a few flipped hard decisions far apart are always corrected.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut bits: Vec<u8> = (0..500).map(|_| rng.random_range(0..2)).collect();
        bits.extend([0; 6]);
        let mut llr = encode_llrs(&bits, 10);
        for i in (5..llr.len()).step_by(97) {
            llr[i] = -llr[i];
        }
        let mut out = vec![0u8; bits.len()];
        ViterbiDecoder::new().decode(&llr, Termination::ZeroState, &mut out);
        assert_eq!(out, bits);
    }
}
