//! The fixed feature vector the event classifier and the anomaly detector see, for a window of
//! any channel count and length ≥ 2.
//!
//! Per channel: mean, log standard deviation, min, max, mean absolute first difference, and the
//! log energy in ten log-spaced DFT bands (DC excluded). For every full triplet of channels
//! (x, y, z axes: channels 3k … 3k+2) the same statistics of the triplet's magnitude, and the
//! three pairwise correlations.

use super::Window;

/// DFT bands as fractions of the Nyquist bin (upper edges), log-spaced.
const BAND_EDGES: [f64; 10] = [0.02, 0.04, 0.06, 0.09, 0.13, 0.19, 0.28, 0.42, 0.63, 1.0];
const PER_SERIES: usize = 5 + BAND_EDGES.len();

/// Length of the feature vector of a window of `channels` channels.
pub fn count(channels: usize) -> usize {
    let triplets = channels / 3;
    (channels + triplets) * PER_SERIES + 3 * triplets
}

/// Precomputed DFT tables for one window length.
#[derive(Clone, Debug)]
pub struct Extractor {
    len: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
    band_of: Vec<usize>,
}

impl Extractor {
    /// Tables for windows of `len` samples (DFT bins 1 … len/2, at most 64 bins evaluated, spread
    /// over the band).
    pub fn new(len: usize) -> Self {
        let half = len / 2;
        let bins: Vec<usize> = (1..=half).collect();
        let mut cos = Vec::with_capacity(bins.len() * len);
        let mut sin = Vec::with_capacity(bins.len() * len);
        let mut band_of = Vec::with_capacity(bins.len());
        for &k in &bins {
            for n in 0..len {
                let a = std::f64::consts::TAU * (k * n % len) as f64 / len as f64;
                cos.push(a.cos() as f32);
                sin.push(a.sin() as f32);
            }
            let f = k as f64 / half.max(1) as f64;
            band_of.push(
                BAND_EDGES
                    .iter()
                    .position(|&e| f <= e + 1e-9)
                    .unwrap_or(BAND_EDGES.len() - 1),
            );
        }
        Self { len, cos, sin, band_of }
    }

    /// Window length the tables are for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false (kept for API symmetry).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn series(&self, x: &[f32], out: &mut Vec<f32>) {
        let n = x.len() as f32;
        let mean = x.iter().sum::<f32>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in x {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        let jerk = x.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f32>() / (n - 1.0).max(1.0);
        out.extend([mean, (var + 1e-10).ln(), lo, hi, (jerk + 1e-6).ln()]);
        let mut bands = [0f32; BAND_EDGES.len()];
        for (b, &band) in self.band_of.iter().enumerate() {
            let (c, s) = (
                &self.cos[b * self.len..][..self.len],
                &self.sin[b * self.len..][..self.len],
            );
            let (mut re, mut im) = (0f32, 0f32);
            for i in 0..self.len {
                let v = x[i] - mean;
                re += v * c[i];
                im += v * s[i];
            }
            bands[band] += (re * re + im * im) / n;
        }
        out.extend(bands.iter().map(|e| (e + 1e-8).ln()));
    }

    /// The features of `w` (its length must be [`Extractor::len`]).
    pub fn features(&self, w: &Window) -> Vec<f32> {
        debug_assert_eq!(w.len(), self.len);
        let mut out = Vec::with_capacity(count(w.channels()));
        for c in 0..w.channels() {
            self.series(w.channel(c), &mut out);
        }
        let mut mag = vec![0f32; w.len()];
        for t in 0..w.channels() / 3 {
            let (a, b, c) = (w.channel(3 * t), w.channel(3 * t + 1), w.channel(3 * t + 2));
            for i in 0..w.len() {
                mag[i] = (a[i] * a[i] + b[i] * b[i] + c[i] * c[i]).sqrt();
            }
            self.series(&mag, &mut out);
            out.extend([corr(a, b), corr(a, c), corr(b, c)]);
        }
        out
    }
}

fn corr(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len() as f32;
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut sab, mut saa, mut sbb) = (0f32, 0f32, 0f32);
    for (&x, &y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    sab / (saa * sbb).sqrt().max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sinusoid_puts_its_energy_in_its_band() {
        let len = 128;
        let ex = Extractor::new(len);
        // Bin 16 of 64 = 0.25 of Nyquist: band 6 (0.19, 0.28].
        let x: Vec<f32> = (0..len)
            .map(|i| (std::f32::consts::TAU * 16.0 * i as f32 / len as f32).sin())
            .collect();
        let w = Window::new(1, len, x).unwrap();
        let f = ex.features(&w);
        assert_eq!(f.len(), count(1));
        let bands = &f[5..];
        let top = (0..bands.len()).max_by(|&a, &b| bands[a].total_cmp(&bands[b])).unwrap();
        assert_eq!(top, 6);
        // Parseval: one-sided energy of a unit sine = len/4 per bin·len … = 0.5 variance · len / 2.
        assert!((bands[6].exp() - 32.0).abs() < 0.1, "{}", bands[6].exp());
        assert!((f[1].exp() - 0.5).abs() < 1e-3);
    }
}
