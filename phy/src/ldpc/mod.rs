//! The LDPC codes of IEEE 802.11n/ac (clause 20.3.11.7 of 802.11-2012, matrices in Annex F):
//! codeword lengths 648, 1296 and 1944 bits, rates 1/2, 2/3, 3/4 and 5/6.
//!
//! ```text
//!  info bits (k) ─► LdpcCode::encode ─► codeword (n) ─► [shorten, puncture, repeat: fit.rs]
//!  LLRs (n, i8) ─► LayeredDecoder (normalized min-sum, layered, early stop) ─► bits
//!  LLRs (n, f64) ─► SumProductDecoder (flooding belief propagation: the reference)  ─► bits
//! ```
//!
//! Each parity-check matrix H is an m_b × 24 array of Z × Z blocks: the zero block, or the
//! identity cyclically shifted right by s (row r of the block has its one in column (r + s) mod
//! Z). Its last m_b block columns are the parity part: a first parity column with three
//! non-zero blocks (shift x at the top and bottom rows, 0 in one row between), then a dual
//! diagonal of identities. That structure lets the encoder solve for the parity blocks one after
//! another (no generator matrix), and a test checks every table has it.
//!
//! Bits are one per byte (0 or 1). LLRs are positive for a 0 bit, as everywhere in this crate.

mod bp;
mod fit;
mod layered;
mod tables;

pub use bp::SumProductDecoder;
pub use fit::{FitStats, LdpcFit};
pub use layered::{Kernel, LayeredDecoder, MinSumConfig};

use std::sync::OnceLock;

/// Quantisation steps per unit of LLR in the decoder's i8 input (two fractional bits): LLRs
/// up to ±31.75 are kept, which covers every bit an LDPC decoder is unsure of.
pub const LLR_SCALE: f32 = 4.0;

/// An LLR (natural units, positive = 0) as the min-sum decoder's i8 input: scaled by
/// [`LLR_SCALE`], rounded, saturated at ±127; NaN reads as 0 (an erasure).
#[inline]
pub fn quantize_llr(l: f32) -> i8 {
    crate::mapping::quantize_llr(l * LLR_SCALE)
}

/// Block columns of every 802.11n base matrix.
pub const BASE_COLUMNS: usize = 24;

/// Codeword length of an 802.11n LDPC code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CodeLength {
    /// 648 bits, Z = 27.
    N648,
    /// 1296 bits, Z = 54.
    N1296,
    /// 1944 bits, Z = 81.
    N1944,
}

impl CodeLength {
    /// All lengths, shortest first.
    pub const ALL: [CodeLength; 3] = [Self::N648, Self::N1296, Self::N1944];

    /// Codeword length in bits.
    pub const fn bits(self) -> usize {
        match self {
            Self::N648 => 648,
            Self::N1296 => 1296,
            Self::N1944 => 1944,
        }
    }

    /// Lifting (block) size Z.
    pub const fn z(self) -> usize {
        self.bits() / BASE_COLUMNS
    }

    /// The length of `bits` bits, if it is one of the three.
    pub fn from_bits(bits: usize) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.bits() == bits)
    }
}

/// Code rate of an 802.11n LDPC code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LdpcRate {
    /// 1/2.
    R1_2,
    /// 2/3.
    R2_3,
    /// 3/4.
    R3_4,
    /// 5/6.
    R5_6,
}

impl LdpcRate {
    /// All rates, most robust first.
    pub const ALL: [LdpcRate; 4] = [Self::R1_2, Self::R2_3, Self::R3_4, Self::R5_6];

    /// (numerator, denominator).
    pub const fn ratio(self) -> (usize, usize) {
        match self {
            Self::R1_2 => (1, 2),
            Self::R2_3 => (2, 3),
            Self::R3_4 => (3, 4),
            Self::R5_6 => (5, 6),
        }
    }

    /// The rate as a number.
    pub fn value(self) -> f64 {
        let (a, b) = self.ratio();
        a as f64 / b as f64
    }

    /// `1/2`, `2/3`, `3/4` or `5/6`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::R1_2 => "1/2",
            Self::R2_3 => "2/3",
            Self::R3_4 => "3/4",
            Self::R5_6 => "5/6",
        }
    }

    /// Parses [`LdpcRate::name`] (also `1_2`, `12` …, and `0.5`-style decimals are refused).
    pub fn from_name(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|r| r.name() == s || r.name().replace('/', "_") == s || r.name().replace('/', "") == s)
    }
}

/// One 802.11n LDPC code: its base matrix and the layer schedule the decoders walk.
#[derive(Debug)]
pub struct LdpcCode {
    length: CodeLength,
    rate: LdpcRate,
    base: &'static [[i8; BASE_COLUMNS]],
    /// Per block row: (block column, shift) of its non-zero blocks, columns ascending.
    layers: Vec<Vec<(u16, u16)>>,
    edges: usize,
}

impl LdpcCode {
    /// The code of `length` and `rate` (built once, shared).
    pub fn get(length: CodeLength, rate: LdpcRate) -> &'static LdpcCode {
        static CODES: OnceLock<Vec<LdpcCode>> = OnceLock::new();
        let codes = CODES.get_or_init(|| {
            CodeLength::ALL
                .into_iter()
                .flat_map(|l| LdpcRate::ALL.into_iter().map(move |r| Self::build(l, r)))
                .collect()
        });
        let li = CodeLength::ALL.iter().position(|&l| l == length).unwrap_or(0);
        let ri = LdpcRate::ALL.iter().position(|&r| r == rate).unwrap_or(0);
        &codes[li * LdpcRate::ALL.len() + ri]
    }

    /// All twelve codes.
    pub fn all() -> impl Iterator<Item = &'static LdpcCode> {
        CodeLength::ALL
            .into_iter()
            .flat_map(|l| LdpcRate::ALL.into_iter().map(move |r| Self::get(l, r)))
    }

    /// Parses a name such as `ldpc-1944-1/2` (see [`LdpcCode::name`]).
    pub fn from_name(s: &str) -> Option<&'static LdpcCode> {
        let rest = s.trim().to_ascii_lowercase();
        let rest = rest.strip_prefix("ldpc-")?;
        let (n, r) = rest.split_once('-')?;
        let length = CodeLength::from_bits(n.parse().ok()?)?;
        Some(Self::get(length, LdpcRate::from_name(r)?))
    }

    fn build(length: CodeLength, rate: LdpcRate) -> Self {
        use tables::*;
        let base: &'static [[i8; BASE_COLUMNS]] = match (length, rate) {
            (CodeLength::N648, LdpcRate::R1_2) => &H_648_1_2,
            (CodeLength::N648, LdpcRate::R2_3) => &H_648_2_3,
            (CodeLength::N648, LdpcRate::R3_4) => &H_648_3_4,
            (CodeLength::N648, LdpcRate::R5_6) => &H_648_5_6,
            (CodeLength::N1296, LdpcRate::R1_2) => &H_1296_1_2,
            (CodeLength::N1296, LdpcRate::R2_3) => &H_1296_2_3,
            (CodeLength::N1296, LdpcRate::R3_4) => &H_1296_3_4,
            (CodeLength::N1296, LdpcRate::R5_6) => &H_1296_5_6,
            (CodeLength::N1944, LdpcRate::R1_2) => &H_1944_1_2,
            (CodeLength::N1944, LdpcRate::R2_3) => &H_1944_2_3,
            (CodeLength::N1944, LdpcRate::R3_4) => &H_1944_3_4,
            (CodeLength::N1944, LdpcRate::R5_6) => &H_1944_5_6,
        };
        let layers: Vec<Vec<(u16, u16)>> = base
            .iter()
            .map(|row| {
                row.iter()
                    .enumerate()
                    .filter(|(_, &s)| s >= 0)
                    .map(|(j, &s)| (j as u16, s as u16))
                    .collect()
            })
            .collect();
        let edges = layers.iter().map(Vec::len).sum::<usize>() * length.z();
        Self {
            length,
            rate,
            base,
            layers,
            edges,
        }
    }

    /// Codeword length.
    pub fn length(&self) -> CodeLength {
        self.length
    }

    /// Code rate.
    pub fn rate(&self) -> LdpcRate {
        self.rate
    }

    /// `ldpc-<n>-<rate>`, e.g. `ldpc-1944-1/2`.
    pub fn name(&self) -> String {
        format!("ldpc-{}-{}", self.n(), self.rate.name())
    }

    /// Codeword bits n.
    pub fn n(&self) -> usize {
        self.length.bits()
    }

    /// Information bits k = n·R.
    pub fn k(&self) -> usize {
        let (a, b) = self.rate.ratio();
        self.n() * a / b
    }

    /// Block size Z.
    pub fn z(&self) -> usize {
        self.length.z()
    }

    /// Block rows m_b (= parity bits / Z).
    pub fn block_rows(&self) -> usize {
        self.base.len()
    }

    /// Information block columns k_b.
    pub fn info_block_columns(&self) -> usize {
        BASE_COLUMNS - self.base.len()
    }

    /// The base matrix as the standard prints it (−1: zero block).
    pub fn base_matrix(&self) -> &'static [[i8; BASE_COLUMNS]] {
        self.base
    }

    /// Per block row, the (block column, shift) of its non-zero blocks.
    pub fn layers(&self) -> &[Vec<(u16, u16)>] {
        &self.layers
    }

    /// Ones in H (Tanner graph edges).
    pub fn edges(&self) -> usize {
        self.edges
    }

    /// Largest number of non-zero blocks in a block row (check degree).
    pub fn max_row_weight(&self) -> usize {
        self.layers.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// Systematic encoding: `codeword[..k]` = `info`, then the n − k parity bits.
    ///
    /// # Panics
    /// If `info.len() != k` or `codeword.len() != n` (a caller bug).
    pub fn encode(&self, info: &[u8], codeword: &mut [u8]) {
        let (z, k, mb, kb) = (self.z(), self.k(), self.block_rows(), self.info_block_columns());
        assert_eq!(info.len(), k, "info length");
        assert_eq!(codeword.len(), self.n(), "codeword length");
        for (c, &b) in codeword[..k].iter_mut().zip(info) {
            *c = b & 1;
        }
        // λ_i = Σ_j P^{h_ij} s_j over the information columns, one block per row.
        let mut lambda = vec![0u8; mb * z];
        for (i, row) in self.layers.iter().enumerate() {
            let l = &mut lambda[i * z..(i + 1) * z];
            for &(j, s) in row.iter().filter(|&&(j, _)| usize::from(j) < kb) {
                let (j, s) = (usize::from(j), usize::from(s));
                xor_rotated(l, &codeword[j * z..(j + 1) * z], s);
            }
        }
        // Summing every block row cancels the dual diagonal and the two equal shifts of the first
        // parity column, leaving p_0 = Σ λ_i.
        let mut p0 = vec![0u8; z];
        for l in lambda.chunks_exact(z) {
            for (p, &x) in p0.iter_mut().zip(l) {
                *p ^= x;
            }
        }
        // Row i: λ_i + P^{c_i} p_0 + p_i (i ≥ 1) + p_{i+1} (i ≤ m_b − 2) = 0.
        let parity = &mut codeword[k..];
        parity[..z].copy_from_slice(&p0);
        for i in 0..mb - 1 {
            let mut next = lambda[i * z..(i + 1) * z].to_vec();
            let c = self.base[i][kb];
            if c >= 0 {
                xor_rotated(&mut next, &p0, c as usize);
            }
            if i >= 1 {
                for (x, &p) in next.iter_mut().zip(&parity[i * z..(i + 1) * z]) {
                    *x ^= p;
                }
            }
            parity[(i + 1) * z..(i + 2) * z].copy_from_slice(&next);
        }
    }

    /// Whether `bits` (n hard decisions, one per byte; only bit 0 counts) satisfy every parity
    /// check.
    pub fn syndrome_ok(&self, bits: &[u8]) -> bool {
        let z = self.z();
        if bits.len() != self.n() {
            return false;
        }
        let mut acc = vec![0u8; z];
        self.layers.iter().all(|row| {
            acc.fill(0);
            for &(j, s) in row {
                let (j, s) = (usize::from(j), usize::from(s));
                xor_rotated(&mut acc, &bits[j * z..(j + 1) * z], s);
            }
            acc.iter().all(|&x| x & 1 == 0)
        })
    }

    /// The variable (bit) indices of every parity check, row by row: `z()` checks per block row.
    pub fn check_rows(&self) -> impl Iterator<Item = Vec<usize>> + '_ {
        let z = self.z();
        self.layers.iter().flat_map(move |row| {
            (0..z).map(move |r| {
                row.iter()
                    .map(|&(j, s)| usize::from(j) * z + (r + usize::from(s)) % z)
                    .collect()
            })
        })
    }
}

/// `acc[r] ^= x[(r + s) mod Z]`: adds the block P^s·x.
fn xor_rotated(acc: &mut [u8], x: &[u8], s: usize) {
    let z = acc.len();
    let (head, tail) = acc.split_at_mut(z - s);
    for (a, &b) in head.iter_mut().zip(&x[s..]) {
        *a ^= b;
    }
    for (a, &b) in tail.iter_mut().zip(&x[..s]) {
        *a ^= b;
    }
}

/// What a decoder reports besides the bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Iterations run (a partial last iteration counts as one).
    pub iterations: u32,
    /// The output satisfies every parity check.
    pub converged: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Dense H as bit rows (u64 words), built straight from the base matrix.
    fn dense_h(code: &LdpcCode) -> Vec<Vec<u64>> {
        let (z, n) = (code.z(), code.n());
        let words = n.div_ceil(64);
        let mut rows = Vec::new();
        for brow in code.base_matrix() {
            for r in 0..z {
                let mut w = vec![0u64; words];
                for (j, &s) in brow.iter().enumerate() {
                    if s >= 0 {
                        let c = j * z + (r + s as usize) % z;
                        w[c / 64] |= 1 << (c % 64);
                    }
                }
                rows.push(w);
            }
        }
        rows
    }

    /// GF(2) rank of the columns `cols` of `rows`.
    fn rank(rows: &[Vec<u64>], cols: std::ops::Range<usize>) -> usize {
        let mut m: Vec<Vec<u64>> = rows.to_vec();
        let mut rank = 0;
        for c in cols {
            let (w, b) = (c / 64, 1u64 << (c % 64));
            let Some(p) = (rank..m.len()).find(|&i| m[i][w] & b != 0) else {
                continue;
            };
            m.swap(rank, p);
            let pivot = m[rank].clone();
            for (i, row) in m.iter_mut().enumerate() {
                if i != rank && row[w] & b != 0 {
                    for (x, y) in row.iter_mut().zip(&pivot) {
                        *x ^= y;
                    }
                }
            }
            rank += 1;
        }
        rank
    }

    #[test]
    fn dimensions_and_names() {
        let expect = [
            (648, 27, [324, 432, 486, 540]),
            (1296, 54, [648, 864, 972, 1080]),
            (1944, 81, [972, 1296, 1458, 1620]),
        ];
        for (len, (n, z, ks)) in CodeLength::ALL.into_iter().zip(expect) {
            for (rate, k) in LdpcRate::ALL.into_iter().zip(ks) {
                let c = LdpcCode::get(len, rate);
                assert_eq!((c.n(), c.z(), c.k()), (n, z, k));
                assert_eq!(c.block_rows() * z, n - k);
                assert_eq!(
                    LdpcCode::from_name(&c.name()).map(|x| (x.length, x.rate)),
                    Some((len, rate))
                );
            }
        }
        assert!(LdpcCode::from_name("ldpc-1000-1/2").is_none());
        assert!(LdpcCode::from_name("ldpc-648-7/8").is_none());
        assert_eq!(LdpcCode::all().count(), 12);
    }

    #[test]
    fn base_matrices_have_the_structure_the_standard_describes() {
        for code in LdpcCode::all() {
            let (mb, kb, z) = (code.block_rows(), code.info_block_columns(), code.z());
            let h = code.base_matrix();
            for row in h {
                for &s in row {
                    assert!(s == -1 || (0..z as i8).contains(&s), "{}: shift {s}", code.name());
                }
            }
            // First parity column: x at the top and bottom rows, 0 in exactly one row between.
            let col: Vec<i8> = h.iter().map(|r| r[kb]).collect();
            let nz: Vec<usize> = (0..mb).filter(|&i| col[i] >= 0).collect();
            assert_eq!(nz.len(), 3, "{}", code.name());
            assert_eq!((nz[0], nz[2]), (0, mb - 1), "{}", code.name());
            assert_eq!(col[0], col[mb - 1], "{}", code.name());
            assert_eq!(col[nz[1]], 0, "{}", code.name());
            // Then the dual diagonal: column kb + t holds the identity in rows t − 1 and t.
            for t in 1..mb {
                for (i, row) in h.iter().enumerate() {
                    let want = if i + 1 == t || i == t { 0 } else { -1 };
                    assert_eq!(row[kb + t], want, "{} row {i} col {}", code.name(), kb + t);
                }
            }
            // Every column takes part in at least two checks.
            for j in 0..BASE_COLUMNS {
                assert!(h.iter().filter(|r| r[j] >= 0).count() >= 2, "{} col {j}", code.name());
            }
        }
    }

    #[test]
    fn entry_counts_match_an_independent_transcription() {
        // Non-zero blocks in the information columns, per code, as listed by a third, CSR-form
        // transcription of Annex F (see tables.rs).
        let want = [63, 71, 75, 79, 61, 71, 75, 76, 61, 71, 72, 70];
        for (code, want) in LdpcCode::all().zip(want) {
            let kb = code.info_block_columns();
            let got: usize = code
                .base_matrix()
                .iter()
                .map(|r| r[..kb].iter().filter(|&&s| s >= 0).count())
                .sum();
            assert_eq!(got, want, "{}", code.name());
        }
    }

    #[test]
    fn parity_part_is_invertible_so_the_dimension_is_k() {
        for code in LdpcCode::all() {
            let h = dense_h(code);
            let (n, k) = (code.n(), code.k());
            assert_eq!(rank(&h, k..n), n - k, "{}: parity part singular", code.name());
            assert_eq!(rank(&h, 0..n), n - k, "{}", code.name());
        }
    }

    #[test]
    fn every_codeword_satisfies_h() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for code in LdpcCode::all() {
            let h = dense_h(code);
            let mut cw = vec![0u8; code.n()];
            for trial in 0..20 {
                let info: Vec<u8> = match trial {
                    0 => vec![0; code.k()],
                    1 => vec![1; code.k()],
                    _ => (0..code.k()).map(|_| rng.random_range(0..2)).collect(),
                };
                code.encode(&info, &mut cw);
                assert_eq!(&cw[..code.k()], &info[..]);
                // H·c = 0 by dense multiplication, independent of the encoder's structure.
                for row in &h {
                    let parity = (0..code.n())
                        .filter(|&c| row[c / 64] >> (c % 64) & 1 == 1)
                        .fold(0, |p, c| p ^ cw[c]);
                    assert_eq!(parity, 0, "{} trial {trial}", code.name());
                }
                assert!(code.syndrome_ok(&cw));
                let mut bad = cw.clone();
                let flip = rng.random_range(0..code.n());
                bad[flip] ^= 1;
                assert!(!code.syndrome_ok(&bad), "{}: single error undetected", code.name());
            }
        }
    }

    #[test]
    fn encoding_is_linear() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let code = LdpcCode::get(CodeLength::N1296, LdpcRate::R2_3);
        let a: Vec<u8> = (0..code.k()).map(|_| rng.random_range(0..2)).collect();
        let b: Vec<u8> = (0..code.k()).map(|_| rng.random_range(0..2)).collect();
        let ab: Vec<u8> = a.iter().zip(&b).map(|(x, y)| x ^ y).collect();
        let (mut ca, mut cb, mut cab) = (vec![0; code.n()], vec![0; code.n()], vec![0; code.n()]);
        code.encode(&a, &mut ca);
        code.encode(&b, &mut cb);
        code.encode(&ab, &mut cab);
        assert!(ca.iter().zip(&cb).zip(&cab).all(|((x, y), z)| x ^ y == *z));
    }
}
