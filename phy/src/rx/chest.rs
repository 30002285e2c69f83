//! Channel estimation from the L-LTF by a least-squares fit of a short impulse response.
//!
//! The raw estimate H_ls[k] = (Y1[k] + Y2[k]) / 2 · L[k] carries half the per-bin noise. A
//! channel that fits in the cyclic prefix has few taps, so H is fitted with taps at delays
//! [`MIN_DELAY`] … [`MAX_DELAY`] (the FFT window starts a few samples early). Taps whose power is
//! not clearly above the estimation noise are left out: the taps are chosen greedily
//! (orthogonal matching pursuit), each step adding the delay that best explains what the taps so
//! far leave unexplained, until the best candidate explains no more than noise would. In AWGN
//! two or three taps remain and the estimate's noise falls by about 12 dB. (A plain fit of all
//! delays is ill-conditioned: with 52 of 64 subcarriers in use, about a fifth of the tap space
//! is nearly invisible in the used band.)

use crate::ofdm::{bin, N_FFT, USED_SUBCARRIERS};
use num_complex::{Complex32, Complex64};
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Earliest tap delay modelled, samples (relative to the FFT window start).
pub const MIN_DELAY: i32 = -4;
/// Latest tap delay modelled, samples.
pub const MAX_DELAY: i32 = 19;
const N_TAPS: usize = (MAX_DELAY - MIN_DELAY + 1) as usize;
const N_USED: usize = USED_SUBCARRIERS.len();
/// A tap is added while it explains more than this many times the energy noise alone puts on
/// one delay (the largest of 24 exponentials exceeds 6 with probability ≈ 6 %).
const ADD_FACTOR: f64 = 6.0;
/// Noise floor of the fit relative to the mean channel power (−50 dB).
const NOISE_FLOOR: f64 = 1e-5;
/// At most this many taps.
const MAX_TAPS: usize = 16;

/// Precomputed fitting matrices.
#[derive(Clone)]
pub(crate) struct ChannelEstimator {
    /// `a[k][d]` = exp(−j2π k d / 64) for used subcarrier k, delay d.
    a: Vec<[Complex64; N_TAPS]>,
    /// Gram matrix AᴴA.
    gram: Vec<[Complex64; N_TAPS]>,
    /// Inverse FFT of [`PG_LEN`] points for the delay periodogram.
    pg_fft: Arc<dyn Fft<f64>>,
}

impl std::fmt::Debug for ChannelEstimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelEstimator").finish_non_exhaustive()
    }
}

/// Delay-periodogram length: 4× the FFT size, a quarter-sample grid.
const PG_LEN: usize = 4 * N_FFT;

/// `h[i]·exp(j·w·k_i)` over the used subcarriers k_i, by a recurrence (one sin/cos).
fn rotated(h: &[Complex64], w: f64) -> Vec<Complex64> {
    let step = Complex64::from_polar(1.0, w);
    let mut r = Complex64::from_polar(1.0, w * f64::from(USED_SUBCARRIERS[0]));
    let mut k = USED_SUBCARRIERS[0];
    h.iter()
        .zip(USED_SUBCARRIERS.iter())
        .map(|(v, &kk)| {
            while k < kk {
                r *= step;
                k += 1;
            }
            v * r
        })
        .collect()
}

impl ChannelEstimator {
    pub fn new() -> Self {
        let a: Vec<[Complex64; N_TAPS]> = USED_SUBCARRIERS
            .iter()
            .map(|&k| {
                std::array::from_fn(|d| {
                    let delay = MIN_DELAY + d as i32;
                    Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * f64::from(k * delay) / N_FFT as f64)
                })
            })
            .collect();
        let mut gram = vec![[Complex64::new(0.0, 0.0); N_TAPS]; N_TAPS];
        for row in &a {
            for i in 0..N_TAPS {
                for j in 0..N_TAPS {
                    gram[i][j] += row[i].conj() * row[j];
                }
            }
        }
        let pg_fft = FftPlanner::new().plan_fft_inverse(PG_LEN);
        Self { a, gram, pg_fft }
    }

    /// Fits the channel. `h_ls` holds the raw estimate on the used subcarriers (ascending
    /// index order), `ls_noise_var` its noise variance per subcarrier. Writes H in FFT-bin order
    /// to `out` (zeros on unused bins). Falls back to the raw estimate if the fit is singular.
    pub fn fit(&self, h_ls: &[Complex32; N_USED], ls_noise_var: f64, out: &mut [Complex32; N_FFT]) {
        // Modelling error 50 dB below the channel does not matter; flooring the noise there keeps
        // a noiseless input (a generated file) from growing 16-tap models for nothing.
        let mean_power = h_ls.iter().map(|h| f64::from(h.norm_sqr())).sum::<f64>() / N_USED as f64;
        let ls_noise_var = ls_noise_var.max(mean_power * NOISE_FLOOR);
        let h64: Vec<Complex64> = h_ls
            .iter()
            .map(|h| Complex64::new(f64::from(h.re), f64::from(h.im)))
            .collect();
        // The strongest path's delay, from the peak of the delay periodogram
        // |Σ_k H_k exp(j2πkτ/64)|²: coherent over all subcarriers, hence accurate at low SNR.
        // On a grid of τ = m/4 it is a 4× zero-padded inverse DFT.
        let mut pg = vec![Complex64::new(0.0, 0.0); PG_LEN];
        for (h, &k) in h64.iter().zip(USED_SUBCARRIERS.iter()) {
            pg[k.rem_euclid(PG_LEN as i32) as usize] = *h;
        }
        self.pg_fft.process(&mut pg);
        let power = |m: i32| pg[m.rem_euclid(PG_LEN as i32) as usize].norm_sqr();
        let peak = (4 * MIN_DELAY..=4 * MAX_DELAY)
            .max_by(|&a, &b| power(a).total_cmp(&power(b)))
            .unwrap_or(0);
        let (fm, f0, fp) = (power(peak - 1), power(peak), power(peak + 1));
        let den = fm - 2.0 * f0 + fp;
        let offset = if den < 0.0 {
            (0.5 * (fm - fp) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        };
        let tau = (f64::from(peak) + offset) / 4.0;
        let phi = -2.0 * std::f64::consts::PI * tau / N_FFT as f64;
        // A fractional delay is a sinc with long tails in the tap domain; rotated out, the
        // response is compact. Multipath with integer delays is compact without rotation.
        // Try both (and only the fractional part) and keep the cheapest model.
        let step = 2.0 * std::f64::consts::PI / N_FFT as f64;
        let frac = phi - (phi / step).round() * step;
        let mut best: Option<(f64, f64, Vec<usize>, Vec<Complex64>)> = None;
        // The strongest path rotated out first: when that already leaves one or two taps at the
        // noise floor (cost ≈ 52 − n + 6n), no other model can do meaningfully better.
        for rot in [phi, frac, 0.0] {
            let y = rotated(&h64, -rot);
            let bound = best.as_ref().map_or(f64::INFINITY, |b| b.0);
            if let Some((keep, taps, residual)) = self.pursue(&y, ls_noise_var, bound) {
                let cost = residual / ls_noise_var.max(1e-300) + ADD_FACTOR * keep.len() as f64;
                if best.as_ref().is_none_or(|b| cost < b.0) {
                    best = Some((cost, rot, keep, taps));
                }
            }
            if best
                .as_ref()
                .is_some_and(|b| b.2.len() <= 2 && b.0 <= N_USED as f64 + 2.0 * ADD_FACTOR)
            {
                break;
            }
        }
        let Some((_, rot, keep, taps)) = best else {
            // Degenerate input: use the raw estimate.
            *out = [Complex32::new(0.0, 0.0); N_FFT];
            for (&k, &h) in USED_SUBCARRIERS.iter().zip(h_ls) {
                out[bin(k)] = h;
            }
            return;
        };
        let fitted: Vec<Complex64> = self
            .a
            .iter()
            .map(|row| keep.iter().zip(&taps).map(|(&d, t)| row[d] * t).sum())
            .collect();
        *out = [Complex32::new(0.0, 0.0); N_FFT];
        for (h, &k) in rotated(&fitted, rot).iter().zip(USED_SUBCARRIERS.iter()) {
            out[bin(k)] = Complex32::new(h.re as f32, h.im as f32);
        }
    }

    /// Orthogonal matching pursuit on `y`: returns the chosen delays, their taps and the residual
    /// energy, or `None` when not even one tap can be fitted.
    ///
    /// `bound` is the cost of the best model so far: a pursuit whose tap penalty alone exceeds
    /// it can only lose, and stops (its model is then not chosen).
    fn pursue(&self, y: &[Complex64], ls_noise_var: f64, bound: f64) -> Option<(Vec<usize>, Vec<Complex64>, f64)> {
        let b: Vec<Complex64> = (0..N_TAPS)
            .map(|d| self.a.iter().zip(y).map(|(row, v)| row[d].conj() * v).sum())
            .collect();
        let mut keep: Vec<usize> = Vec::new();
        let mut taps: Vec<Complex64> = Vec::new();
        let mut residual = y.to_vec();
        while keep.len() < MAX_TAPS {
            if ADD_FACTOR * (keep.len() + 1) as f64 > bound {
                return None;
            }
            let best = (0..N_TAPS)
                .filter(|d| !keep.contains(d))
                .map(|d| {
                    let c: Complex64 = self.a.iter().zip(&residual).map(|(row, r)| row[d].conj() * r).sum();
                    (d, c.norm_sqr() / N_USED as f64)
                })
                .max_by(|x, y| x.1.total_cmp(&y.1));
            let Some((d, explained)) = best else { break };
            if !keep.is_empty() && !(explained > ADD_FACTOR * ls_noise_var) {
                break;
            }
            keep.push(d);
            let sub_b: Vec<Complex64> = keep.iter().map(|&d| b[d]).collect();
            match solve_hermitian(&self.gram, &keep, &sub_b) {
                Some(t) => taps = t,
                None => {
                    keep.pop();
                    break;
                }
            }
            for ((r, row), yk) in residual.iter_mut().zip(&self.a).zip(y) {
                *r = yk - keep.iter().zip(&taps).map(|(&d, t)| row[d] * t).sum::<Complex64>();
            }
        }
        let energy = residual.iter().map(|r| r.norm_sqr()).sum();
        (!taps.is_empty()).then_some((keep, taps, energy))
    }
}

/// Solves G[S,S] x = b for the Hermitian positive-definite submatrix of `g` on the indices `s`
/// by Cholesky factorisation. `None` when the matrix is not positive definite (or inputs are
/// not finite).
fn solve_hermitian(g: &[[Complex64; N_TAPS]], s: &[usize], b: &[Complex64]) -> Option<Vec<Complex64>> {
    let n = s.len();
    let mut l = vec![Complex64::new(0.0, 0.0); n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut sum = g[s[i]][s[j]];
            for k in 0..j {
                sum -= l[i * n + k] * l[j * n + k].conj();
            }
            if i == j {
                if !(sum.re > 1e-9) {
                    return None;
                }
                l[i * n + i] = Complex64::new(sum.re.sqrt(), 0.0);
            } else {
                l[i * n + j] = sum / l[j * n + j].re;
            }
        }
    }
    // L y = b, then Lᴴ x = y.
    let mut y = vec![Complex64::new(0.0, 0.0); n];
    for i in 0..n {
        let mut sum = b[i];
        for k in 0..i {
            sum -= l[i * n + k] * y[k];
        }
        y[i] = sum / l[i * n + i].re;
    }
    let mut x = vec![Complex64::new(0.0, 0.0); n];
    for i in (0..n).rev() {
        let mut sum = y[i];
        for k in i + 1..n {
            sum -= l[k * n + i].conj() * x[k];
        }
        x[i] = sum / l[i * n + i].re;
    }
    x.iter().all(|v| v.re.is_finite() && v.im.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn response(taps: &[(i32, Complex64)]) -> [Complex32; N_USED] {
        std::array::from_fn(|i| {
            let k = USED_SUBCARRIERS[i];
            let h: Complex64 = taps
                .iter()
                .map(|&(d, t)| t * Complex64::from_polar(1.0, -2.0 * std::f64::consts::PI * f64::from(k * d) / 64.0))
                .sum();
            Complex32::new(h.re as f32, h.im as f32)
        })
    }

    #[test]
    fn exact_on_noiseless_multipath_and_denoises_awgn() {
        let est = ChannelEstimator::new();
        let taps = [
            (2, Complex64::new(0.8, 0.1)),
            (5, Complex64::new(-0.3, 0.4)),
            (11, Complex64::new(0.1, -0.2)),
        ];
        let h = response(&taps);
        let mut out = [Complex32::new(0.0, 0.0); N_FFT];
        est.fit(&h, 1e-6, &mut out);
        for (i, &k) in USED_SUBCARRIERS.iter().enumerate() {
            assert!((out[bin(k)] - h[i]).norm() < 1e-4);
        }
        // Flat channel + noise of variance 0.1 per subcarrier: the fit's error must be far
        // smaller than the raw estimate's.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let flat = response(&[(3, Complex64::new(1.0, 0.0))]);
        let (mut raw_err, mut fit_err) = (0.0, 0.0);
        for _ in 0..200 {
            let noisy: [Complex32; N_USED] = std::array::from_fn(|i| {
                let (a, b): (f32, f32) = (StandardNormal.sample(&mut rng), StandardNormal.sample(&mut rng));
                flat[i] + Complex32::new(a, b) * (0.05f32).sqrt()
            });
            est.fit(&noisy, 0.1, &mut out);
            for (i, &k) in USED_SUBCARRIERS.iter().enumerate() {
                raw_err += (noisy[i] - flat[i]).norm_sqr();
                fit_err += (out[bin(k)] - flat[i]).norm_sqr();
            }
        }
        // One true tap: the bound is 52×; greedy selection adds a few noise taps.
        assert!(fit_err < raw_err / 20.0, "fit {fit_err} raw {raw_err}");
    }
}
