//! Packet detection on the L-STF: the normalised lag-16 autocorrelation
//! ρ(n) = |Σ r[i] r*[i+16]| / √(Σ|r[i]|² · Σ|r[i+16]|²) over a window of [`WINDOW`] samples,
//! which is ≈ SNR / (1 + SNR) on the L-STF and ≈ 1/√W on noise. A packet is declared when ρ
//! stays above the threshold for a run of consecutive positions.
//!
//! The sliding sums are recomputed exactly at absolute positions that are multiples of
//! [`RESYNC`] and slid in between, so the result depends only on the samples, never on how the
//! stream was chunked.

use num_complex::{Complex32, Complex64};

/// Autocorrelation window, samples.
pub const WINDOW: usize = 64;
/// L-STF period, samples.
pub const LAG: usize = 16;
/// Absolute positions between exact recomputations of the sliding sums (bounds rounding drift).
const RESYNC: u64 = 2048;

/// Sliding-window state of the detector.
#[derive(Clone, Debug)]
pub(crate) struct Detector {
    threshold: f32,
    min_run: usize,
    /// Number of consecutive positions above threshold so far.
    run: usize,
    /// False after a failed detection until ρ has dropped below the threshold once: a
    /// continuous periodic signal (a tone, DC, a jammer) then costs one detection, not one every
    /// few samples, and one refused preamble is reported once.
    armed: bool,
    /// Sum of the correlations over the current run (for the coarse CFO).
    run_corr: Complex64,
    /// Absolute position the sums below describe, if valid.
    at: Option<u64>,
    corr: Complex64,
    e1: f64,
    e2: f64,
}

/// A detected L-STF.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Detection {
    /// Absolute position of the first window of the run.
    pub start: u64,
    /// Coarse CFO, radians per sample.
    pub cfo_rad: f64,
}

fn c64(c: Complex32) -> Complex64 {
    Complex64::new(f64::from(c.re), f64::from(c.im))
}

impl Detector {
    pub fn new(threshold: f32, min_run: usize) -> Self {
        Self {
            threshold,
            min_run,
            run: 0,
            run_corr: Complex64::new(0.0, 0.0),
            armed: true,
            at: None,
            corr: Complex64::new(0.0, 0.0),
            e1: 0.0,
            e2: 0.0,
        }
    }

    /// Positions of the run in progress (their samples must stay buffered).
    pub fn run_len(&self) -> usize {
        self.run
    }

    /// Ignores the current plateau: detects again only after ρ has dipped below the threshold.
    pub fn disarm(&mut self) {
        self.armed = false;
    }

    /// Forgets the sliding state (scanning resumes somewhere else).
    pub fn reset(&mut self) {
        self.run = 0;
        self.run_corr = Complex64::new(0.0, 0.0);
        self.at = None;
    }

    fn recompute(&mut self, buf: &[Complex32], i: usize, abs: u64) {
        let (mut c, mut e1, mut e2) = (Complex64::new(0.0, 0.0), 0.0, 0.0);
        for j in i..i + WINDOW {
            let (a, b) = (buf[j], buf[j + LAG]);
            c += c64(a) * c64(b).conj();
            e1 += f64::from(a.norm_sqr());
            e2 += f64::from(b.norm_sqr());
        }
        self.corr = c;
        self.e1 = e1;
        self.e2 = e2;
        self.at = Some(abs);
    }

    /// Scans positions from absolute `*pos` while the buffer (whose first sample has absolute
    /// index `base`) holds their windows. Returns a detection, leaving `*pos` after the run's
    /// last window, or `None` with `*pos` at the first position not yet examined.
    pub fn scan(&mut self, buf: &[Complex32], base: u64, pos: &mut u64) -> Option<Detection> {
        let thr = f64::from(self.threshold) * f64::from(self.threshold);
        let mut n = *pos;
        while n + (WINDOW + LAG) as u64 <= base + buf.len() as u64 {
            let i = (n - base) as usize;
            match self.at {
                Some(a) if a + 1 == n && !n.is_multiple_of(RESYNC) && i >= 1 => {
                    // Slide from n − 1: drop window start n − 1, add the sample at n − 1 + W.
                    let (a0, b0) = (buf[i - 1], buf[i - 1 + LAG]);
                    let (a1, b1) = (buf[i - 1 + WINDOW], buf[i - 1 + WINDOW + LAG]);
                    self.corr += c64(a1) * c64(b1).conj() - c64(a0) * c64(b0).conj();
                    self.e1 += f64::from(a1.norm_sqr()) - f64::from(a0.norm_sqr());
                    self.e2 += f64::from(b1.norm_sqr()) - f64::from(b0.norm_sqr());
                    self.at = Some(n);
                }
                Some(a) if a == n => {}
                _ => self.recompute(buf, i, n),
            }
            let m_num = self.corr.norm_sqr();
            let m_den = self.e1 * self.e2;
            // ρ² > threshold², written without division; all-zero input never triggers.
            if m_den > 0.0 && m_num > thr * m_den {
                if self.armed {
                    self.run += 1;
                    self.run_corr += self.corr;
                }
            } else {
                self.armed = true;
                self.run = 0;
                self.run_corr = Complex64::new(0.0, 0.0);
            }
            n += 1;
            if self.run >= self.min_run {
                let det = Detection {
                    start: n - self.run as u64,
                    cfo_rad: -self.run_corr.arg() / LAG as f64,
                };
                self.run = 0;
                self.run_corr = Complex64::new(0.0, 0.0);
                *pos = n;
                return Some(det);
            }
        }
        *pos = n;
        None
    }
}
