//! Packet detection on the L-STF: the normalised lag-16 autocorrelation
//! m(n) = |Σ r[i] r*[i+16]|² / (Σ|r[i]|² · Σ|r[i+16]|²) over a window of [`WINDOW`] samples,
//! which is ≈ (SNR / (1 + SNR))² on the L-STF and ≈ 1/W on noise. A packet is declared when
//! m stays above the threshold for a run of consecutive positions.

use num_complex::{Complex32, Complex64};

/// Autocorrelation window, samples.
pub const WINDOW: usize = 64;
/// L-STF period, samples.
pub const LAG: usize = 16;
/// Positions between exact recomputations of the sliding sums (bounds rounding drift).
const RESYNC: usize = 2048;

/// Sliding-window state of the detector.
#[derive(Clone, Debug)]
pub(crate) struct Detector {
    threshold: f32,
    min_run: usize,
    /// Number of consecutive positions above threshold so far.
    run: usize,
    /// Sum of the correlations over the current run (for the coarse CFO).
    run_corr: Complex64,
    /// Position (buffer index) the sums below describe, if valid.
    at: Option<usize>,
    corr: Complex64,
    e1: f64,
    e2: f64,
    since_resync: usize,
}

/// A detected L-STF.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Detection {
    /// Buffer index of the first window of the run.
    pub start: usize,
    /// Coarse CFO, radians per sample.
    pub cfo_rad: f64,
}

impl Detector {
    pub fn new(threshold: f32, min_run: usize) -> Self {
        Self {
            threshold,
            min_run,
            run: 0,
            run_corr: Complex64::new(0.0, 0.0),
            at: None,
            corr: Complex64::new(0.0, 0.0),
            e1: 0.0,
            e2: 0.0,
            since_resync: 0,
        }
    }

    /// Forgets the sliding state (after the buffer moved or a frame was consumed).
    pub fn reset(&mut self) {
        self.run = 0;
        self.run_corr = Complex64::new(0.0, 0.0);
        self.at = None;
    }

    /// Buffer indices shifted left by `by` (the receiver dropped consumed samples).
    pub fn rebase(&mut self, by: usize) {
        if let Some(a) = self.at {
            self.at = a.checked_sub(by);
        }
    }

    fn recompute(&mut self, buf: &[Complex32], n: usize) {
        let (mut c, mut e1, mut e2) = (Complex64::new(0.0, 0.0), 0.0, 0.0);
        for i in n..n + WINDOW {
            let (a, b) = (buf[i], buf[i + LAG]);
            c += Complex64::new(f64::from(a.re), f64::from(a.im)) * Complex64::new(f64::from(b.re), -f64::from(b.im));
            e1 += f64::from(a.norm_sqr());
            e2 += f64::from(b.norm_sqr());
        }
        self.corr = c;
        self.e1 = e1;
        self.e2 = e2;
        self.at = Some(n);
        self.since_resync = 0;
    }

    /// Scans window positions from `*pos` while the buffer holds them. Returns a detection (and
    /// leaves `*pos` at the position after the run's last window) or `None` with `*pos` at the
    /// first position not yet examined.
    pub fn scan(&mut self, buf: &[Complex32], pos: &mut usize) -> Option<Detection> {
        let thr = f64::from(self.threshold) * f64::from(self.threshold);
        let mut n = *pos;
        while n + WINDOW + LAG <= buf.len() {
            if self.at != Some(n) || self.since_resync >= RESYNC {
                self.recompute(buf, n);
            }
            let m_num = self.corr.norm_sqr();
            let m_den = self.e1 * self.e2;
            // m > threshold²… written without division; all-zero input never triggers.
            if m_den > 0.0 && m_num > thr * m_den {
                self.run += 1;
                self.run_corr += self.corr;
            } else {
                self.run = 0;
                self.run_corr = Complex64::new(0.0, 0.0);
            }
            // Slide to n + 1.
            if n + WINDOW + LAG < buf.len() {
                let (a0, b0) = (buf[n], buf[n + LAG]);
                let (a1, b1) = (buf[n + WINDOW], buf[n + WINDOW + LAG]);
                let prod = |a: Complex32, b: Complex32| {
                    let p = a * b.conj();
                    Complex64::new(f64::from(p.re), f64::from(p.im))
                };
                self.corr += prod(a1, b1) - prod(a0, b0);
                self.e1 += f64::from(a1.norm_sqr()) - f64::from(a0.norm_sqr());
                self.e2 += f64::from(b1.norm_sqr()) - f64::from(b0.norm_sqr());
                self.at = Some(n + 1);
                self.since_resync += 1;
            } else {
                self.at = None;
            }
            n += 1;
            if self.run >= self.min_run {
                let det = Detection {
                    start: n - self.run,
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
