//! Sum-product (belief propagation) decoding with a flooding schedule, in f64: the reference
//! the fast decoder is measured against, not a decoder for the receiver.
//!
//! Check update in the "φ" form: with φ(x) = −ln tanh(x/2) (its own inverse), the message from
//! check c to bit v is sign · φ(Σ_{v'≠v} φ(|L_{v'→c}|)), the exact tanh rule written as a sum.

use super::{DecodeStats, LdpcCode};

/// Largest |LLR| the φ form works with; φ(MAX_LLR) ≈ 4e-22, and smaller arguments are clamped
/// to `MIN_LLR` (φ(MIN_LLR) ≈ 55).
const MAX_LLR: f64 = 50.0;
const MIN_LLR: f64 = 1e-24;

fn phi(x: f64) -> f64 {
    let x = x.clamp(MIN_LLR, MAX_LLR);
    // −ln tanh(x/2) = ln(1 + e^{−x}) − ln(1 − e^{−x}), the second term written without
    // cancellation at either end: ln_1p(−t) when t = e^{−x} is small, ln(−expm1(−x)) when
    // 1 − t is.
    let t = (-x).exp();
    let ln_one_minus_t = if t < 0.5 { (-t).ln_1p() } else { (-(-x).exp_m1()).ln() };
    t.ln_1p() - ln_one_minus_t
}

/// A flooding belief-propagation decoder for one code; holds its message memory.
#[derive(Debug, Clone)]
pub struct SumProductDecoder {
    code: &'static LdpcCode,
    /// Bit index of each edge, edges grouped by check.
    edge_var: Vec<u32>,
    /// First edge of each check, plus the end.
    check_start: Vec<u32>,
    v2c: Vec<f64>,
    c2v: Vec<f64>,
    total: Vec<f64>,
    hard: Vec<u8>,
}

impl SumProductDecoder {
    /// A decoder for `code`.
    pub fn new(code: &'static LdpcCode) -> Self {
        let mut edge_var = Vec::with_capacity(code.edges());
        let mut check_start = vec![0u32];
        for vars in code.check_rows() {
            edge_var.extend(vars.iter().map(|&v| v as u32));
            check_start.push(edge_var.len() as u32);
        }
        let e = edge_var.len();
        Self {
            code,
            edge_var,
            check_start,
            v2c: vec![0.0; e],
            c2v: vec![0.0; e],
            total: vec![0.0; code.n()],
            hard: vec![0; code.n()],
        }
    }

    /// The code this decoder decodes.
    pub fn code(&self) -> &'static LdpcCode {
        self.code
    }

    /// Decodes n channel LLRs (positive = 0) with at most `max_iterations` iterations, stopping
    /// as soon as the hard decisions satisfy every check. Writes n bits to `out`.
    ///
    /// # Panics
    /// If `llr` or `out` is not n long (a caller bug).
    pub fn decode(&mut self, llr: &[f64], max_iterations: u32, out: &mut [u8]) -> DecodeStats {
        let n = self.code.n();
        assert_eq!(llr.len(), n, "need n LLRs");
        assert_eq!(out.len(), n, "need room for n bits");
        for (m, &v) in self.v2c.iter_mut().zip(&self.edge_var) {
            *m = llr[v as usize];
        }
        for (h, &l) in self.hard.iter_mut().zip(llr) {
            *h = u8::from(l < 0.0);
        }
        let mut stats = DecodeStats {
            iterations: 0,
            converged: self.code.syndrome_ok(&self.hard),
        };
        while !stats.converged && stats.iterations < max_iterations {
            stats.iterations += 1;
            // Checks.
            for w in self.check_start.windows(2) {
                let (a, b) = (w[0] as usize, w[1] as usize);
                let mut sum = 0.0;
                let mut negative = false;
                for &m in &self.v2c[a..b] {
                    sum += phi(m.abs());
                    negative ^= m < 0.0;
                }
                for (out, &m) in self.c2v[a..b].iter_mut().zip(&self.v2c[a..b]) {
                    let mag = phi((sum - phi(m.abs())).max(0.0));
                    *out = if negative ^ (m < 0.0) { -mag } else { mag };
                }
            }
            // Bits.
            self.total.copy_from_slice(llr);
            for (&v, &m) in self.edge_var.iter().zip(&self.c2v) {
                self.total[v as usize] += m;
            }
            for ((m, &v), &c) in self.v2c.iter_mut().zip(&self.edge_var).zip(&self.c2v) {
                *m = self.total[v as usize] - c;
            }
            for (h, &t) in self.hard.iter_mut().zip(&self.total) {
                *h = u8::from(t < 0.0);
            }
            stats.converged = self.code.syndrome_ok(&self.hard);
        }
        out.copy_from_slice(&self.hard);
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CodeLength, LdpcRate};
    use super::*;

    #[test]
    fn phi_is_its_own_inverse_and_matches_the_tanh_rule() {
        for x in [1e-3, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 29.0] {
            assert!((phi(phi(x)) - x).abs() < 1e-9 * x.max(1.0), "{x}");
        }
        // Two inputs: the tanh rule gives 2·atanh(tanh(a/2)·tanh(b/2)).
        let (a, b) = (1.3f64, 0.7f64);
        let want = 2.0 * ((a / 2.0).tanh() * (b / 2.0).tanh()).atanh();
        assert!((phi(phi(a) + phi(b)) - want).abs() < 1e-12);
        assert!(phi(40.0) > 0.0 && phi(0.0).is_finite());
    }

    #[test]
    fn corrects_errors_and_reports_convergence() {
        let code = LdpcCode::get(CodeLength::N648, LdpcRate::R1_2);
        let info: Vec<u8> = (0..code.k()).map(|i| ((i * 7 + 3) % 5 == 0) as u8).collect();
        let mut cw = vec![0u8; code.n()];
        code.encode(&info, &mut cw);
        let mut llr: Vec<f64> = cw.iter().map(|&b| if b == 0 { 2.0 } else { -2.0 }).collect();
        for i in (0..code.n()).step_by(41) {
            llr[i] = -llr[i] * 0.5;
        }
        let mut dec = SumProductDecoder::new(code);
        let mut out = vec![0u8; code.n()];
        let st = dec.decode(&llr, 50, &mut out);
        assert!(st.converged && st.iterations >= 1);
        assert_eq!(out, cw);
        // Pure erasures cannot be decoded: 50 iterations, not converged.
        let st = dec.decode(&vec![0.0; code.n()], 5, &mut out);
        assert!(st.converged, "all-zero decisions are a codeword");
        let st = dec.decode(&vec![-0.01; code.n()], 5, &mut out);
        assert_eq!((st.iterations, st.converged), (5, false));
    }
}
