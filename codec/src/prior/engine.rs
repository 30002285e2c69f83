//! Deterministic inference of the prior, for coding.
//!
//! The range coder needs the encoder and the decoder to compute *bit-identical* probabilities,
//! whatever the thread count, the CPU's vector width or the order in which tokens are fed. So:
//!
//! - [`Engine::prefill`] (the encoder: many tokens at once, matrix rows split over threads) and
//!   [`Engine::step`] (the decoder: one token at a time with a KV cache) compute every output
//!   element with the same sequence of operations, so batch shape and thread count do not matter;
//! - every dot product uses eight accumulators (lane j sums elements j, j+8, …) and a fixed
//!   final reduction; the compiler keeps IEEE semantics (no re-association, no FMA contraction),
//!   so the scalar, SSE and AVX2 builds of the same loop give the same bits;
//! - exp and tanh are this module's own polynomial kernels, not the platform libm (whose last
//!   bits may differ between systems);
//! - probabilities become integer frequencies ([`Engine::frequencies`]) before coding.
//!
//! The weights are the safetensors file the candle model trains; a test checks that both compute
//! the same log-probabilities to within float rounding.

use super::model::Config;
use crate::CodecError;

/// Tensor names and shapes, as the candle model stores them (Linear: weight `[out, in]`).
struct BlockW {
    ln1: (Vec<f32>, Vec<f32>),
    qkv_w: Mat,
    qkv_b: Vec<f32>,
    proj_w: Mat,
    proj_b: Vec<f32>,
    ln2: (Vec<f32>, Vec<f32>),
    ff1_w: Mat,
    ff1_b: Vec<f32>,
    ff2_w: Mat,
    ff2_b: Vec<f32>,
}

/// A weight matrix (rows = outputs), as trained (f32) or quantised to 8 bits per weight with one
/// scale per row.
enum Mat {
    F32(Vec<f32>),
    I8 { q: Vec<i8>, scale: Vec<f32> },
}

impl Mat {
    /// Symmetric 8-bit quantisation, one scale per row of `cols` weights.
    fn quantised(w: &[f32], cols: usize) -> Self {
        let mut q = Vec::with_capacity(w.len());
        let mut scale = Vec::with_capacity(w.len() / cols);
        quantise_rows(w, cols, &mut q, &mut scale);
        Self::I8 { q, scale }
    }
}

/// Appends every row of `cols` values of `x`, quantised to ±127 with its own scale, to `q`, and
/// the scales to `scale` (weights once at load, activations at every step: the same rule).
#[inline(always)]
fn quantise_rows(x: &[f32], cols: usize, q: &mut Vec<i8>, scale: &mut Vec<f32>) {
    for row in x.chunks_exact(cols) {
        let (s, inv) = row_scale(row);
        scale.push(s);
        q.extend(row.iter().map(|&v| (v * inv).round() as i8));
    }
}

/// The scale of a row quantised to ±127, and its inverse (0 for a zero row).
#[inline(always)]
fn row_scale(row: &[f32]) -> (f32, f32) {
    let mx = row.iter().fold(0f32, |m, &v| if v.abs() > m { v.abs() } else { m });
    if mx > 0.0 {
        (mx / 127.0, 127.0 / mx)
    } else {
        (0.0, 0.0)
    }
}

/// Where [`Engine::from_tensors`] gets a named tensor of a given length.
pub type TensorSource<'a> = &'a dyn Fn(&str, usize) -> Result<Vec<f32>, CodecError>;

/// The prior's weights, ready for deterministic inference.
pub struct Engine {
    cfg: Config,
    tok: Vec<f32>,
    pos: Vec<f32>,
    blocks: Vec<BlockW>,
    ln_f: (Vec<f32>, Vec<f32>),
    head: Mat,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// One sequence's cache: keys and values of every layer for the tokens seen so far.
#[derive(Clone, Debug)]
pub struct State {
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
}

impl State {
    /// Tokens seen so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The keys and values of positions `from..`, layer by layer (keys, then values): what
    /// [`State::push_rows`] appends to a state that holds positions `..from`.
    pub fn rows_from(&self, from: usize) -> Vec<f32> {
        let from = from.min(self.len);
        let d = self.keys.first().map_or(0, Vec::len).checked_div(self.len).unwrap_or(0);
        let mut out = Vec::with_capacity(2 * self.keys.len() * (self.len - from) * d);
        for (k, v) in self.keys.iter().zip(&self.values) {
            out.extend_from_slice(&k[from * d..]);
            out.extend_from_slice(&v[from * d..]);
        }
        out
    }

    /// Appends `n` positions given as [`State::rows_from`] gives them.
    pub fn push_rows(&mut self, rows: &[f32], n: usize) {
        let per = rows.len() / (2 * self.keys.len()).max(1);
        for (l, (k, v)) in self.keys.iter_mut().zip(&mut self.values).enumerate() {
            k.extend_from_slice(&rows[2 * l * per..][..per]);
            v.extend_from_slice(&rows[(2 * l + 1) * per..][..per]);
        }
        self.len += n;
    }
}

impl Engine {
    /// Takes the tensors (f32) from a safetensors file's contents.
    pub fn from_tensors(cfg: Config, get: TensorSource<'_>) -> Result<Self, CodecError> {
        cfg.validate().map_err(|r| CodecError::Model {
            path: String::new(),
            reason: r,
        })?;
        let (d, f, v) = (cfg.d_model, cfg.d_ff, cfg.vocab_size);
        let ln = |p: &str| -> Result<(Vec<f32>, Vec<f32>), CodecError> {
            Ok((get(&format!("{p}.weight"), d)?, get(&format!("{p}.bias"), d)?))
        };
        let blocks = (0..cfg.n_layers)
            .map(|i| {
                let p = format!("blocks.{i}");
                Ok(BlockW {
                    ln1: ln(&format!("{p}.ln1"))?,
                    qkv_w: Mat::F32(get(&format!("{p}.qkv.weight"), 3 * d * d)?),
                    qkv_b: get(&format!("{p}.qkv.bias"), 3 * d)?,
                    proj_w: Mat::F32(get(&format!("{p}.proj.weight"), d * d)?),
                    proj_b: get(&format!("{p}.proj.bias"), d)?,
                    ln2: ln(&format!("{p}.ln2"))?,
                    ff1_w: Mat::F32(get(&format!("{p}.ff1.weight"), f * d)?),
                    ff1_b: get(&format!("{p}.ff1.bias"), f)?,
                    ff2_w: Mat::F32(get(&format!("{p}.ff2.weight"), d * f)?),
                    ff2_b: get(&format!("{p}.ff2.bias"), d)?,
                })
            })
            .collect::<Result<Vec<_>, CodecError>>()?;
        Ok(Self {
            tok: get("tok.weight", v * d)?,
            pos: get("pos.weight", cfg.max_len * d)?,
            blocks,
            ln_f: ln("ln_f")?,
            head: Mat::F32(get("head.weight", v * d)?),
            cfg,
        })
    }

    /// Quantises every matrix to 8 bits per weight (one scale per output row); activations are
    /// then quantised per row at run time and every dot product is an exact integer sum, so the
    /// result still does not depend on threads, batch shape or vector width. About a quarter of
    /// the memory traffic per token; probabilities move slightly, so a model file says which
    /// arithmetic its frames were coded with.
    pub fn quantise(&mut self) {
        let (d, f) = (self.cfg.d_model, self.cfg.d_ff);
        let q = |m: &mut Mat, cols: usize| {
            if let Mat::F32(w) = m {
                *m = Mat::quantised(w, cols);
            }
        };
        for b in &mut self.blocks {
            q(&mut b.qkv_w, d);
            q(&mut b.proj_w, d);
            q(&mut b.ff1_w, d);
            q(&mut b.ff2_w, f);
        }
        q(&mut self.head, d);
    }

    /// True when the matrices are 8-bit ([`Engine::quantise`]).
    pub fn is_quantised(&self) -> bool {
        matches!(self.head, Mat::I8 { .. })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// An empty cache with room for `tokens` positions before it grows.
    pub fn state_with_capacity(&self, tokens: usize) -> State {
        let cap = tokens.min(self.cfg.max_len) * self.cfg.d_model;
        State {
            keys: (0..self.cfg.n_layers).map(|_| Vec::with_capacity(cap)).collect(),
            values: (0..self.cfg.n_layers).map(|_| Vec::with_capacity(cap)).collect(),
            len: 0,
        }
    }

    /// An empty cache.
    pub fn new_state(&self) -> State {
        let cap = self.cfg.max_len * self.cfg.d_model;
        State {
            keys: (0..self.cfg.n_layers).map(|_| Vec::with_capacity(cap)).collect(),
            values: (0..self.cfg.n_layers).map(|_| Vec::with_capacity(cap)).collect(),
            len: 0,
        }
    }

    /// Feeds `token` at the next position and writes the logits of the token after it into
    /// `logits` (length vocab_size). Returns false, doing nothing, once the context is full.
    pub fn step(&self, st: &mut State, token: u32, logits: &mut [f32]) -> bool {
        self.prefill(st, &[token], 1, logits)
    }

    /// Feeds `tokens` at the next positions, all at once, and writes the logits after each of
    /// them into `logits` (`tokens.len()` × vocab_size), using up to `threads` threads. Gives
    /// bit for bit what [`Engine::step`] gives token by token. Returns false, doing nothing,
    /// when they do not fit in the context or a token is out of the vocabulary.
    pub fn prefill(&self, st: &mut State, tokens: &[u32], threads: usize, logits: &mut [f32]) -> bool {
        let c = &self.cfg;
        if st.len + tokens.len() > c.max_len || tokens.iter().any(|&t| t as usize >= c.vocab_size) {
            return false;
        }
        assert_eq!(logits.len(), tokens.len() * c.vocab_size, "logits buffer size");
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU reports AVX2. Same source, same IEEE operations in the same
                // order (no FMA, no re-association), so the same bits; only wider registers and
                // inline rounding instructions instead of libm calls.
                unsafe { self.prefill_avx2(st, tokens, threads, logits) };
                return true;
            }
        }
        self.prefill_checked(st, tokens, threads, logits);
        true
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn prefill_avx2(&self, st: &mut State, tokens: &[u32], threads: usize, logits: &mut [f32]) {
        self.prefill_checked(st, tokens, threads, logits);
    }

    /// [`Engine::prefill`] after its checks.
    #[inline(always)]
    fn prefill_checked(&self, st: &mut State, tokens: &[u32], threads: usize, logits: &mut [f32]) {
        let c = &self.cfg;
        let n = tokens.len();
        let (d, hd) = (c.d_model, c.d_model / c.n_heads);
        let mut xq = Vec::new();
        let mut mm = |w: &Mat, b: Option<&[f32]>, x: &[f32], out: &mut [f32]| match w {
            Mat::F32(w) => matmul(w, b, x, n, out, threads),
            Mat::I8 { q, scale } => matmul_i8(q, scale, b, x, n, out, threads, &mut xq),
        };
        let mut x = vec![0f32; n * d];
        for (i, (&t, xi)) in tokens.iter().zip(x.chunks_exact_mut(d)).enumerate() {
            let (e, p) = (&self.tok[t as usize * d..][..d], &self.pos[(st.len + i) * d..][..d]);
            for ((o, &a), &b) in xi.iter_mut().zip(e).zip(p) {
                *o = a + b;
            }
        }
        let mut h = vec![0f32; n * d];
        let mut qkv = vec![0f32; n * 3 * d];
        let mut att = vec![0f32; n * d];
        let mut ff = vec![0f32; n * c.d_ff];
        let mut tmp = vec![0f32; n * d];
        let scale = 1.0 / (hd as f32).sqrt();
        let mut scores = Vec::with_capacity(st.len + n);
        for (l, b) in self.blocks.iter().enumerate() {
            layer_norm_rows(&x, &b.ln1.0, &b.ln1.1, &mut h);
            mm(&b.qkv_w, Some(&b.qkv_b), &h, &mut qkv);
            for q in qkv.chunks_exact(3 * d) {
                st.keys[l].extend_from_slice(&q[d..2 * d]);
                st.values[l].extend_from_slice(&q[2 * d..]);
            }
            for i in 0..n {
                let seen = st.len + i + 1;
                for head in 0..c.n_heads {
                    let q = &qkv[i * 3 * d + head * hd..][..hd];
                    scores.clear();
                    scores.extend((0..seen).map(|j| dot(q, &st.keys[l][j * d + head * hd..][..hd]) * scale));
                    softmax_in_place(&mut scores);
                    let out = &mut att[i * d + head * hd..][..hd];
                    out.fill(0.0);
                    for (j, &p) in scores.iter().enumerate() {
                        for (o, &vv) in out.iter_mut().zip(&st.values[l][j * d + head * hd..][..hd]) {
                            *o += p * vv;
                        }
                    }
                }
            }
            mm(&b.proj_w, Some(&b.proj_b), &att, &mut tmp);
            add_in_place(&mut x, &tmp);
            layer_norm_rows(&x, &b.ln2.0, &b.ln2.1, &mut h);
            mm(&b.ff1_w, Some(&b.ff1_b), &h, &mut ff);
            for v in &mut ff {
                *v = gelu(*v);
            }
            mm(&b.ff2_w, Some(&b.ff2_b), &ff, &mut tmp);
            add_in_place(&mut x, &tmp);
        }
        st.len += n;
        layer_norm_rows(&x, &self.ln_f.0, &self.ln_f.1, &mut h);
        mm(&self.head, None, &h, logits);
    }

    /// Integer frequencies (total ≤ 2¹⁶) for the next token, over `allowed` (true = may be
    /// coded): every allowed token gets at least 1, others 0. A deterministic function of the
    /// logits.
    pub fn frequencies(logits: &[f32], allowed: &[bool], out: &mut [u32]) {
        let total = crate::rangecoder::MAX_TOTAL;
        let n_allowed = allowed.iter().filter(|&&a| a).count() as u32;
        let mx = logits
            .iter()
            .zip(allowed)
            .filter(|(_, &a)| a)
            .fold(f32::NEG_INFINITY, |m, (&l, _)| if l > m { l } else { m });
        let mut sum = 0f32;
        for ((o, &l), &a) in out.iter_mut().zip(logits).zip(allowed) {
            let e = if a { exp(l - mx) } else { 0.0 };
            *o = e.to_bits();
            sum += e;
        }
        let spare = (total - n_allowed) as f32;
        for (o, &a) in out.iter_mut().zip(allowed) {
            if a {
                let p = f32::from_bits(*o) / sum;
                let f = (p * spare) as u32;
                *o = 1 + f.min(total - n_allowed);
            } else {
                *o = 0;
            }
        }
    }
}

/// Dot product with eight accumulators and a fixed reduction (see the module docs). Lengths are
/// multiples of 8 (the configuration guarantees it).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    reduce(&acc)
}

#[inline(always)]
fn reduce(acc: &[f32; 8]) -> f32 {
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

fn add_in_place(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// `out[i][r] = dot(w[r], x[i]) (+ bias[r])` for the `n` rows of `x` and every row of `w`,
/// split by rows of `w` over up to `threads` threads. Each output is exactly [`dot`]'s
/// arithmetic, whatever the tiling, the thread count or the vector width.
fn matmul(w: &[f32], bias: Option<&[f32]>, x: &[f32], n: usize, out: &mut [f32], threads: usize) {
    let k = x.len() / n;
    let m = w.len() / k;
    split_rows(m, n, n * m * k, out, threads, |rows, part, width| {
        matmul_rows(w, bias, x, n, rows, part, width)
    });
}

/// `out[i][r] = scale[r] · sx[i] · Σ q[r]·xq[i] (+ bias[r])`: the 8-bit matrix `q` against the
/// rows of `x`, each quantised to ±127 with its own scale `sx[i]`. Integer sums are exact, so
/// the result is the same however the rows are split and vectorised.
#[allow(clippy::too_many_arguments)]
fn matmul_i8(
    q: &[i8],
    scale: &[f32],
    bias: Option<&[f32]>,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    threads: usize,
    xq: &mut Vec<i8>,
) {
    let k = x.len() / n;
    let m = scale.len();
    xq.clear();
    let mut sx = Vec::with_capacity(n);
    quantise_rows(x, k, xq, &mut sx);
    let xq: &[i8] = xq;
    split_rows(m, n, n * m * k / 4, out, threads, |rows, part, width| {
        matmul_i8_rows(q, scale, bias, xq, &sx, rows, part, width)
    });
}

/// Runs `work(rows, out_part, width)` over the `m` output rows, split over up to `threads`
/// threads when the job (`size` multiply-adds) is worth it, and gathers the parts into `out`
/// (`n` × `m`).
fn split_rows(
    m: usize,
    n: usize,
    size: usize,
    out: &mut [f32],
    threads: usize,
    work: impl Fn(std::ops::Range<usize>, &mut [f32], usize) + Sync,
) {
    let threads = threads.clamp(1, 16).min(m / 64).max(1);
    if threads == 1 || size < 1 << 18 {
        work(0..m, out, m);
        return;
    }
    let per = m.div_ceil(threads).next_multiple_of(4);
    let work = &work;
    let parts: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..m)
            .step_by(per)
            .map(|r0| {
                let rows = r0..(r0 + per).min(m);
                s.spawn(move || {
                    let width = rows.len();
                    let mut part = vec![0f32; n * width];
                    work(rows, &mut part, width);
                    part
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("matmul worker panicked"))
            .collect()
    });
    for (p, r0) in parts.iter().zip((0..m).step_by(per)) {
        let width = p.len() / n;
        for i in 0..n {
            out[i * m + r0..][..width].copy_from_slice(&p[i * width..][..width]);
        }
    }
}

/// Rows `rows` of the 8-bit matrix against every quantised row of `xq`.
#[allow(clippy::too_many_arguments)]
fn matmul_i8_rows(
    q: &[i8],
    scale: &[f32],
    bias: Option<&[f32]>,
    xq: &[i8],
    sx: &[f32],
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU reports AVX2; integer arithmetic gives the same sums on any path.
            unsafe { matmul_i8_rows_avx2(q, scale, bias, xq, sx, rows, out, stride) };
            return;
        }
    }
    matmul_i8_rows_generic(q, scale, bias, xq, sx, rows, out, stride);
}

/// The AVX2 kernel: each row of `xq` widened to 16 bits once, then four rows of `q` at a time
/// against it with `vpmaddwd` (products of 8-bit values and sums of two of them are exact in 32
/// bits). Integer sums do not depend on their order, so this gives the generic kernel's bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn matmul_i8_rows_avx2(
    q: &[i8],
    scale: &[f32],
    bias: Option<&[f32]>,
    xq: &[i8],
    sx: &[f32],
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    use std::arch::x86_64::{__m256i, _mm256_add_epi32, _mm256_madd_epi16, _mm256_setzero_si256};
    let k = xq.len() / sx.len();
    if !k.is_multiple_of(16) || q.len() < rows.end * k {
        matmul_i8_rows_generic(q, scale, bias, xq, sx, rows, out, stride);
        return;
    }
    let chunks = k / 16;
    let r0 = rows.start;
    let mut xw: Vec<__m256i> = Vec::with_capacity(chunks);
    for (i, xi) in xq.chunks_exact(k).enumerate() {
        xw.clear();
        xw.extend(xi.chunks_exact(16).map(|c| widen16(c)));
        let mut sums = [0i32; 4];
        let mut r = rows.start;
        while r < rows.end {
            let tile = (rows.end - r).min(4);
            if tile == 4 {
                let w = &q[r * k..(r + 4) * k];
                let (mut a0, mut a1, mut a2, mut a3) = (
                    _mm256_setzero_si256(),
                    _mm256_setzero_si256(),
                    _mm256_setzero_si256(),
                    _mm256_setzero_si256(),
                );
                for (c, &x) in xw.iter().enumerate() {
                    let o = c * 16;
                    a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x, widen16(&w[o..o + 16])));
                    a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x, widen16(&w[k + o..k + o + 16])));
                    a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(x, widen16(&w[2 * k + o..2 * k + o + 16])));
                    a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(x, widen16(&w[3 * k + o..3 * k + o + 16])));
                }
                sums = [hsum8(a0), hsum8(a1), hsum8(a2), hsum8(a3)];
            } else {
                for (j, sum) in sums.iter_mut().enumerate().take(tile) {
                    let w = &q[(r + j) * k..(r + j + 1) * k];
                    let mut a = _mm256_setzero_si256();
                    for (c, &x) in xw.iter().enumerate() {
                        a = _mm256_add_epi32(a, _mm256_madd_epi16(x, widen16(&w[c * 16..c * 16 + 16])));
                    }
                    *sum = hsum8(a);
                }
            }
            for (j, &sum) in sums.iter().enumerate().take(tile) {
                let b = bias.map_or(0.0, |b| b[r + j]);
                out[i * stride + r + j - r0] = sum as f32 * (scale[r + j] * sx[i]) + b;
            }
            r += tile;
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn matmul_i8_rows_generic(
    q: &[i8],
    scale: &[f32],
    bias: Option<&[f32]>,
    xq: &[i8],
    sx: &[f32],
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    let k = xq.len() / sx.len();
    let r0 = rows.start;
    for r in rows {
        let wr = &q[r * k..][..k];
        let b = bias.map_or(0.0, |b| b[r]);
        for (i, xi) in xq.chunks_exact(k).enumerate() {
            let mut acc = [0i32; 16];
            for (a, w) in xi.chunks_exact(16).zip(wr.chunks_exact(16)) {
                for j in 0..16 {
                    acc[j] += i32::from(a[j]) * i32::from(w[j]);
                }
            }
            let mut sum: i32 = acc.iter().sum();
            let tail = k - k % 16;
            for j in tail..k {
                sum += i32::from(xi[j]) * i32::from(wr[j]);
            }
            out[i * stride + r - r0] = sum as f32 * (scale[r] * sx[i]) + b;
        }
    }
}

/// 16 signed bytes widened to 16 bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn widen16(p: &[i8]) -> std::arch::x86_64::__m256i {
    use std::arch::x86_64::{__m128i, _mm256_cvtepi8_epi16, _mm_loadu_si128};
    assert!(p.len() >= 16);
    // SAFETY: `p` holds at least 16 bytes (an unaligned load).
    _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(p.as_ptr().cast::<__m128i>()) })
}

/// The sum of the eight 32-bit lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
fn hsum8(v: std::arch::x86_64::__m256i) -> i32 {
    use std::arch::x86_64::{
        _mm256_castsi256_si128, _mm256_extracti128_si256, _mm_add_epi32, _mm_cvtsi128_si32, _mm_shuffle_epi32,
    };
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// Rows `rows` of `w` against every row of `x`, into `out[i * stride + (r − rows.start)]`.
fn matmul_rows(
    w: &[f32],
    bias: Option<&[f32]>,
    x: &[f32],
    n: usize,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU reports AVX2. The kernel is the same source compiled for wider
            // registers: same operations in the same order, no FMA.
            unsafe { matmul_rows_avx2(w, bias, x, n, rows, out, stride) };
            return;
        }
    }
    matmul_rows_generic(w, bias, x, n, rows, out, stride);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn matmul_rows_avx2(
    w: &[f32],
    bias: Option<&[f32]>,
    x: &[f32],
    n: usize,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    matmul_rows_generic(w, bias, x, n, rows, out, stride);
}

/// The portable kernel: tiles of four rows of `w` (four independent accumulator sets, so the
/// adds of one do not wait on another), one row of `x` at a time.
#[inline(always)]
fn matmul_rows_generic(
    w: &[f32],
    bias: Option<&[f32]>,
    x: &[f32],
    n: usize,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    let k = x.len() / n;
    let r0 = rows.start;
    let mut r = rows.start;
    while r < rows.end {
        let tile = (rows.end - r).min(4);
        if tile == 4 {
            let (w0, w1, w2, w3) = (
                &w[r * k..][..k],
                &w[(r + 1) * k..][..k],
                &w[(r + 2) * k..][..k],
                &w[(r + 3) * k..][..k],
            );
            for (i, xi) in x.chunks_exact(k).enumerate() {
                let mut acc = [[0f32; 8]; 4];
                for ((((a, b0), b1), b2), b3) in xi
                    .chunks_exact(8)
                    .zip(w0.chunks_exact(8))
                    .zip(w1.chunks_exact(8))
                    .zip(w2.chunks_exact(8))
                    .zip(w3.chunks_exact(8))
                {
                    for j in 0..8 {
                        acc[0][j] += b0[j] * a[j];
                        acc[1][j] += b1[j] * a[j];
                        acc[2][j] += b2[j] * a[j];
                        acc[3][j] += b3[j] * a[j];
                    }
                }
                for (t, a) in acc.iter().enumerate() {
                    let b = bias.map_or(0.0, |b| b[r + t]);
                    out[i * stride + r + t - r0] = reduce(a) + b;
                }
            }
        } else {
            for t in 0..tile {
                let wr = &w[(r + t) * k..][..k];
                for (i, xi) in x.chunks_exact(k).enumerate() {
                    let b = bias.map_or(0.0, |b| b[r + t]);
                    out[i * stride + r + t - r0] = dot(wr, xi) + b;
                }
            }
        }
        r += tile;
    }
}

#[inline(always)]
fn layer_norm_rows(x: &[f32], g: &[f32], b: &[f32], out: &mut [f32]) {
    let d = g.len();
    for (xi, oi) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        layer_norm(xi, g, b, oi);
    }
}

#[inline(always)]
fn layer_norm(x: &[f32], g: &[f32], b: &[f32], out: &mut [f32]) {
    let n = x.len() as f32;
    let ones = [1f32; 8];
    let sum = x.chunks_exact(8).fold(0f32, |s, c| s + dot(c, &ones));
    let mean = sum / n;
    for (o, &v) in out.iter_mut().zip(x) {
        *o = v - mean;
    }
    let var = dot(out, out) / n;
    let inv = 1.0 / (var + 1e-5).sqrt();
    for ((o, &gi), &bi) in out.iter_mut().zip(g).zip(b) {
        *o = *o * inv * gi + bi;
    }
}

#[inline(always)]
fn softmax_in_place(s: &mut [f32]) {
    let mx = s.iter().fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    let mut sum = 0f32;
    for v in s.iter_mut() {
        *v = exp(*v - mx);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in s.iter_mut() {
        *v *= inv;
    }
}

/// e^x: range reduction by ln 2 and a degree-6 polynomial, IEEE operations only (relative error
/// below 2·10⁻⁷ on the range that matters; 0 below −87, +inf above 88).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    if !(x > -87.0) {
        return 0.0;
    }
    if x > 88.0 {
        return f32::INFINITY;
    }
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let n = floor_small(x * std::f32::consts::LOG2_E + 0.5);
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0 + r * (0.5 + r * (0.166_666_67 + r * (0.041_666_668 + r * (0.008_333_334 + r * 0.001_388_889)))));
    let bits = ((n as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

/// `y.floor()` without a libm call (baseline x86-64 has no rounding instruction): exact for
/// |y| < 2³¹.
#[inline(always)]
fn floor_small(y: f32) -> f32 {
    let t = y as i32 as f32;
    if t > y {
        t - 1.0
    } else {
        t
    }
}

/// GELU, tanh form (what candle's `gelu` computes).
#[inline(always)]
fn gelu(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // √(2/π)
    let u = C * (x + 0.044_715 * x * x * x);
    0.5 * x * (1.0 + tanh(u))
}

#[inline(always)]
fn tanh(u: f32) -> f32 {
    if u > 9.0 {
        return 1.0;
    }
    if u < -9.0 {
        return -1.0;
    }
    let e = exp(2.0 * u);
    (e - 1.0) / (e + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 8-bit kernel gives the portable kernel's bits: whole and partial tiles of four
    /// rows, several input rows, sub-ranges of rows, lengths that are and are not multiples of 16,
    /// and the extreme values ±127 / −128.
    #[test]
    fn int8_kernels_agree() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut seed = 0x2545_f491_4f6c_dd1du64;
            let mut next = || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            for (k, m, n, rows) in [
                (160, 480, 1, 0..480),
                (640, 160, 3, 0..160),
                (48, 11, 2, 3..11),
                (40, 7, 2, 1..6),
            ] {
                let q: Vec<i8> = (0..m * k)
                    .map(|i| if i % 97 == 0 { -128 } else { next() as i8 })
                    .collect();
                let xq: Vec<i8> = (0..n * k)
                    .map(|i| if i % 89 == 0 { 127 } else { next() as i8 })
                    .collect();
                let scale: Vec<f32> = (0..m).map(|r| 1e-3 * (1 + r % 7) as f32).collect();
                let sx: Vec<f32> = (0..n).map(|i| 0.01 * (i + 1) as f32).collect();
                let bias: Vec<f32> = (0..m).map(|r| r as f32 * 0.125 - 3.0).collect();
                let width = rows.len();
                let (mut a, mut b) = (vec![0f32; n * width], vec![0f32; n * width]);
                matmul_i8_rows_generic(&q, &scale, Some(&bias), &xq, &sx, rows.clone(), &mut a, width);
                // SAFETY: the CPU reports AVX2.
                unsafe { matmul_i8_rows_avx2(&q, &scale, Some(&bias), &xq, &sx, rows.clone(), &mut b, width) };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
                assert_eq!(bits(&a), bits(&b), "k {k}, rows {rows:?}, n {n}");
            }
        }
    }

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0f64;
        for i in -8000..=8000 {
            let x = i as f32 * 0.01;
            let got = f64::from(exp(x));
            let want = f64::from(x).exp();
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NAN), 0.0);
        // Its floor is f32::floor over the range exp uses (and integers, halves, values next to
        // integers); only the sign of a zero may differ, which exp's arithmetic does not see.
        for i in -2_000_000..=2_000_000 {
            for y in [i as f32 * 7.3e-5, i as f32 * 6.4e-5 + 0.5, (i / 16_000) as f32] {
                let (up, down) = (
                    f32::from_bits(y.to_bits() + 1),
                    f32::from_bits(y.to_bits().wrapping_sub(1)),
                );
                for z in [y, up, down].into_iter().filter(|z| z.is_finite()) {
                    assert_eq!(floor_small(z), z.floor(), "{z}");
                }
            }
        }
    }

    #[test]
    fn frequencies_sum_within_total_and_respect_mask() {
        let logits: Vec<f32> = (0..300).map(|i| ((i * 37) % 23) as f32 - 5.0).collect();
        let mut allowed = vec![true; 300];
        allowed[5] = false;
        let mut f = vec![0u32; 300];
        Engine::frequencies(&logits, &allowed, &mut f);
        let total: u32 = f.iter().sum();
        assert!(total <= crate::rangecoder::MAX_TOTAL && total > 60_000, "{total}");
        assert_eq!(f[5], 0);
        assert!(f.iter().enumerate().all(|(i, &v)| i == 5 || v >= 1));
        // Near-certainty still leaves 1 to every other allowed token.
        let mut l = vec![-50f32; 300];
        l[7] = 50.0;
        Engine::frequencies(&l, &vec![true; 300], &mut f);
        assert_eq!(f[0], 1);
        assert_eq!(f.iter().sum::<u32>(), crate::rangecoder::MAX_TOTAL);
    }
}
