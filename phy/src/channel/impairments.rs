//! Stateless-per-sample and short-memory impairments: AWGN, CFO, timing, phase noise,
//! static multipath, IQ imbalance.

use super::Impairment;
use crate::PhyError;
use num_complex::{Complex32, Complex64};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::collections::VecDeque;

fn check_finite(name: &'static str, v: f64) -> Result<(), PhyError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(PhyError::ChannelParam {
            name,
            reason: format!("{v} is not a finite number"),
        })
    }
}

/// Additive white Gaussian noise of a fixed power per complex sample.
#[derive(Clone, Debug)]
pub struct Awgn {
    sigma: f32,
    rng: ChaCha8Rng,
}

/// Largest noise power per sample [`Awgn`] adds (σ ≈ 7·10¹⁴ per component).
pub const MAX_NOISE_POWER: f64 = 1e30;

impl Awgn {
    /// Noise of `noise_power` per complex sample (split equally between I and Q).
    pub fn new(noise_power: f64, seed: u64) -> Result<Self, PhyError> {
        check_finite("noise_power", noise_power)?;
        if noise_power < 0.0 {
            return Err(PhyError::ChannelParam {
                name: "noise_power",
                reason: "must not be negative".into(),
            });
        }
        // Samples are f32: far beyond this the noise (and the output) would be infinite.
        if noise_power > MAX_NOISE_POWER {
            return Err(PhyError::ChannelParam {
                name: "noise_power",
                reason: format!("{noise_power:e} is above {MAX_NOISE_POWER:e}, beyond what f32 samples hold"),
            });
        }
        Ok(Self {
            sigma: (noise_power / 2.0).sqrt() as f32,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    /// Noise for a burst of mean power `signal_power` per sample at `snr_db`.
    pub fn for_snr(snr_db: f64, signal_power: f64, seed: u64) -> Result<Self, PhyError> {
        check_finite("snr_db", snr_db)?;
        Self::new(signal_power / 10f64.powf(snr_db / 10.0), seed)
    }

    /// Noise power per complex sample.
    pub fn noise_power(&self) -> f64 {
        2.0 * f64::from(self.sigma) * f64::from(self.sigma)
    }
}

impl Impairment for Awgn {
    fn process(&mut self, input: &[Complex32], out: &mut Vec<Complex32>) {
        out.reserve(input.len());
        for &x in input {
            let (a, b): (f32, f32) = (
                StandardNormal.sample(&mut self.rng),
                StandardNormal.sample(&mut self.rng),
            );
            out.push(x + Complex32::new(a, b) * self.sigma);
        }
    }

    fn describe(&self) -> String {
        format!("awgn(noise {:.2} dB)", 10.0 * self.noise_power().log10())
    }
}

/// Carrier frequency offset: multiplies by exp(j2π f n / fs).
#[derive(Clone, Debug)]
pub struct Cfo {
    cfo_hz: f64,
    step: f64,
    phase: f64,
}

impl Cfo {
    /// An offset of `cfo_hz` at `sample_rate_hz`, starting at phase `phase_rad`.
    pub fn new(cfo_hz: f64, sample_rate_hz: f64, phase_rad: f64) -> Result<Self, PhyError> {
        check_finite("cfo_hz", cfo_hz)?;
        check_finite("phase_rad", phase_rad)?;
        if !(sample_rate_hz > 0.0) || !sample_rate_hz.is_finite() {
            return Err(PhyError::ChannelParam {
                name: "sample_rate_hz",
                reason: "must be positive".into(),
            });
        }
        // Beyond half the sample rate an offset aliases to a smaller one: a typo (200M for 200k).
        if cfo_hz.abs() > sample_rate_hz / 2.0 {
            return Err(PhyError::ChannelParam {
                name: "cfo_hz",
                reason: format!(
                    "{cfo_hz} Hz is beyond half the sample rate ({} Hz)",
                    sample_rate_hz / 2.0
                ),
            });
        }
        Ok(Self {
            cfo_hz,
            step: 2.0 * std::f64::consts::PI * cfo_hz / sample_rate_hz,
            phase: phase_rad,
        })
    }
}

impl Impairment for Cfo {
    fn process(&mut self, input: &[Complex32], out: &mut Vec<Complex32>) {
        out.reserve(input.len());
        for chunk in input.chunks(256) {
            // Exact phase at each chunk start; a recurrence inside keeps it cheap.
            let mut rot = Complex64::from_polar(1.0, self.phase);
            let step = Complex64::from_polar(1.0, self.step);
            for &x in chunk {
                out.push(x * Complex32::new(rot.re as f32, rot.im as f32));
                rot *= step;
            }
            self.phase = (self.phase + self.step * chunk.len() as f64).rem_euclid(2.0 * std::f64::consts::PI);
        }
    }

    fn describe(&self) -> String {
        format!("cfo({:.0} Hz)", self.cfo_hz)
    }
}

/// Timing: a delay of any real number of samples and an optional sampling-clock offset, by
/// windowed-sinc interpolation (32 taps, Blackman window, 1024 fractional phases; flat to
/// 0.01 dB over ±8 MHz at 20 MS/s).
///
/// `sfo_ppm` is the receiver's sample clock relative to the transmitter's, (f_rx / f_tx − 1)·1e6
/// (positive: the receiver samples faster). Output sample n is the input at time
/// n / (1 + ppm·1e-6) − delay. The first output samples, before the delayed input starts, are
/// zeros.
#[derive(Clone, Debug)]
pub struct TimingOffset {
    delay: f64,
    ratio: f64,
    /// Input samples seen so far.
    n_in: u64,
    /// Next output's position on the input time axis.
    t_next: f64,
    hist: VecDeque<Complex32>,
    /// Absolute index of `hist[0]`.
    hist_start: i64,
    table: std::sync::Arc<Vec<[f32; 2 * HALF_TAPS as usize]>>,
}

const HALF_TAPS: i64 = 16;
const PHASES: usize = 1024;
static SINC_TABLE: std::sync::OnceLock<std::sync::Arc<Vec<[f32; 2 * HALF_TAPS as usize]>>> = std::sync::OnceLock::new();

fn sinc_table() -> Vec<[f32; 2 * HALF_TAPS as usize]> {
    (0..=PHASES)
        .map(|p| {
            let frac = p as f64 / PHASES as f64;
            std::array::from_fn(|i| {
                // Tap i multiplies input base − HALF_TAPS + 1 + i; its distance from t is x.
                let x = (i as i64 - HALF_TAPS + 1) as f64 - frac;
                let w = x / HALF_TAPS as f64;
                if w.abs() >= 1.0 {
                    return 0.0;
                }
                let sinc = if x.abs() < 1e-12 {
                    1.0
                } else {
                    (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
                };
                let ph = std::f64::consts::PI * (w + 1.0);
                (sinc * (0.42 - 0.5 * ph.cos() + 0.08 * (2.0 * ph).cos())) as f32
            })
        })
        .collect()
}

impl TimingOffset {
    /// A delay of `delay_samples` (≥ 0) and clock offset `sfo_ppm`.
    pub fn new(delay_samples: f64, sfo_ppm: f64) -> Result<Self, PhyError> {
        check_finite("delay_samples", delay_samples)?;
        check_finite("sfo_ppm", sfo_ppm)?;
        if delay_samples < 0.0 {
            return Err(PhyError::ChannelParam {
                name: "delay_samples",
                reason: "must not be negative".into(),
            });
        }
        if sfo_ppm.abs() > 1000.0 {
            return Err(PhyError::ChannelParam {
                name: "sfo_ppm",
                reason: "must be within ±1000 ppm".into(),
            });
        }
        Ok(Self {
            delay: delay_samples,
            ratio: 1.0 / (1.0 + sfo_ppm * 1e-6),
            n_in: 0,
            t_next: -delay_samples,
            hist: VecDeque::new(),
            hist_start: 0,
            table: SINC_TABLE.get_or_init(|| std::sync::Arc::new(sinc_table())).clone(),
        })
    }
}

impl Impairment for TimingOffset {
    fn process(&mut self, input: &[Complex32], out: &mut Vec<Complex32>) {
        self.hist.extend(input.iter().copied());
        self.n_in += input.len() as u64;
        // An output at input time t needs inputs up to floor(t) + HALF_TAPS.
        while self.t_next + (HALF_TAPS as f64) < self.n_in as f64 {
            let t = self.t_next;
            let base = t.floor() as i64;
            let phase = (((t - base as f64) * PHASES as f64).round() as usize).min(PHASES);
            let w = &self.table[phase];
            let first = base - HALF_TAPS + 1;
            let mut acc = Complex32::new(0.0, 0.0);
            for (i, &wi) in w.iter().enumerate() {
                let k = first + i as i64;
                if k >= self.hist_start {
                    if let Some(&x) = self.hist.get((k - self.hist_start) as usize) {
                        acc += x * wi;
                    }
                }
            }
            out.push(acc);
            self.t_next += self.ratio;
            let keep_from = self.t_next.floor() as i64 - HALF_TAPS;
            while self.hist_start < keep_from && !self.hist.is_empty() {
                self.hist.pop_front();
                self.hist_start += 1;
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "timing(delay {:.2} samples, {:+.1} ppm)",
            self.delay,
            (1.0 / self.ratio - 1.0) * 1e6
        )
    }
}

/// Oscillator phase noise as a Wiener process: the phase steps by a zero-mean Gaussian of
/// variance 2π·Δf/fs per sample, Δf being the 3 dB linewidth of the Lorentzian spectrum.
#[derive(Clone, Debug)]
pub struct PhaseNoise {
    linewidth_hz: f64,
    sigma: f64,
    phase: f64,
    rng: ChaCha8Rng,
}

impl PhaseNoise {
    /// Phase noise of 3 dB linewidth `linewidth_hz` at `sample_rate_hz`.
    pub fn new(linewidth_hz: f64, sample_rate_hz: f64, seed: u64) -> Result<Self, PhyError> {
        check_finite("linewidth_hz", linewidth_hz)?;
        if linewidth_hz < 0.0 || !(sample_rate_hz > 0.0) {
            return Err(PhyError::ChannelParam {
                name: "linewidth_hz",
                reason: "linewidth must be ≥ 0 and the sample rate > 0".into(),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let phase = rng.random_range(0.0..2.0 * std::f64::consts::PI);
        Ok(Self {
            linewidth_hz,
            sigma: (2.0 * std::f64::consts::PI * linewidth_hz / sample_rate_hz).sqrt(),
            phase,
            rng,
        })
    }
}

impl Impairment for PhaseNoise {
    fn process(&mut self, input: &[Complex32], out: &mut Vec<Complex32>) {
        out.reserve(input.len());
        for &x in input {
            let step: f64 = StandardNormal.sample(&mut self.rng);
            self.phase += step * self.sigma;
            out.push(x * Complex32::from_polar(1.0, self.phase as f32));
        }
        self.phase = self.phase.rem_euclid(2.0 * std::f64::consts::PI);
    }

    fn describe(&self) -> String {
        format!("phase-noise({:.0} Hz linewidth)", self.linewidth_hz)
    }
}

/// A static channel: taps at integer sample delays (an FIR filter).
#[derive(Clone, Debug)]
pub struct Multipath {
    taps: Vec<Complex32>,
    hist: VecDeque<Complex32>,
}

impl Multipath {
    /// Taps `taps[d]` at delay d samples, used as given.
    pub fn new(taps: Vec<Complex32>) -> Result<Self, PhyError> {
        if taps.is_empty() || taps.iter().any(|t| !t.re.is_finite() || !t.im.is_finite()) {
            return Err(PhyError::ChannelParam {
                name: "taps",
                reason: "need at least one finite tap".into(),
            });
        }
        let hist = std::iter::repeat_n(Complex32::new(0.0, 0.0), taps.len() - 1).collect();
        Ok(Self { taps, hist })
    }

    /// Taps scaled to unit total power, so that the channel keeps the average SNR.
    pub fn normalized(taps: Vec<Complex32>) -> Result<Self, PhyError> {
        let p: f32 = taps.iter().map(|t| t.norm_sqr()).sum();
        if !(p > 0.0) {
            return Err(PhyError::ChannelParam {
                name: "taps",
                reason: "total power must be positive".into(),
            });
        }
        Self::new(taps.into_iter().map(|t| t / p.sqrt()).collect())
    }
}

impl Impairment for Multipath {
    fn process(&mut self, input: &[Complex32], out: &mut Vec<Complex32>) {
        out.reserve(input.len());
        let n = self.taps.len();
        for &x in input {
            self.hist.push_back(x);
            // hist holds the last n inputs, newest at the back.
            let y: Complex32 = self
                .taps
                .iter()
                .enumerate()
                .map(|(d, &t)| t * self.hist[n - 1 - d])
                .sum();
            out.push(y);
            self.hist.pop_front();
        }
    }

    fn describe(&self) -> String {
        format!("multipath({} taps)", self.taps.len())
    }
}

/// Receiver IQ imbalance: gain mismatch (dB) and phase mismatch (degrees) between I and Q.
#[derive(Clone, Debug)]
pub struct IqImbalance {
    gain_db: f64,
    phase_deg: f64,
    mu: Complex32,
    nu: Complex32,
}

impl IqImbalance {
    /// y = μ x + ν x* with the usual amplitude/phase model.
    pub fn new(gain_db: f64, phase_deg: f64) -> Result<Self, PhyError> {
        check_finite("gain_db", gain_db)?;
        check_finite("phase_deg", phase_deg)?;
        let g = 10f64.powf(gain_db / 20.0);
        let phi = phase_deg.to_radians();
        let mu = Complex64::new(1.0, 0.0) * 0.5 + Complex64::from_polar(g, -phi) * 0.5;
        let nu = Complex64::new(1.0, 0.0) * 0.5 - Complex64::from_polar(g, phi) * 0.5;
        Ok(Self {
            gain_db,
            phase_deg,
            mu: Complex32::new(mu.re as f32, mu.im as f32),
            nu: Complex32::new(nu.re as f32, nu.im as f32),
        })
    }
}

impl Impairment for IqImbalance {
    fn process(&mut self, input: &[Complex32], out: &mut Vec<Complex32>) {
        out.extend(input.iter().map(|&x| self.mu * x + self.nu * x.conj()));
    }

    fn describe(&self) -> String {
        format!("iq-imbalance({:.2} dB, {:.1}°)", self.gain_db, self.phase_deg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awgn_power_matches_request_and_is_seeded() {
        let zeros = vec![Complex32::new(0.0, 0.0); 200_000];
        let mut a = Awgn::new(0.25, 9).unwrap();
        let mut out = Vec::new();
        a.process(&zeros, &mut out);
        let p = super::super::burst_power(&out);
        assert!((p - 0.25).abs() < 0.005, "{p}");
        let mut b = Awgn::new(0.25, 9).unwrap();
        let mut out2 = Vec::new();
        for c in zeros.chunks(777) {
            b.process(c, &mut out2);
        }
        assert_eq!(out, out2);
        assert!(Awgn::new(-1.0, 0).is_err());
        assert!(Awgn::for_snr(f64::NAN, 1.0, 0).is_err());
        // Noise f32 samples cannot hold: refused, not turned into infinite samples.
        assert!(Awgn::for_snr(20.0, 1e308, 0).is_err());
        let mut loud = Awgn::new(MAX_NOISE_POWER, 1).unwrap();
        let mut out = Vec::new();
        loud.process(&zeros[..1000], &mut out);
        assert!(out.iter().all(|x| x.re.is_finite() && x.im.is_finite()));
    }

    /// An offset beyond half the sample rate aliases: refused (a unit typo, 200M for 200k).
    #[test]
    fn cfo_beyond_nyquist_is_refused() {
        assert!(Cfo::new(10e6, 20e6, 0.0).is_ok());
        assert!(Cfo::new(-10e6, 20e6, 0.0).is_ok());
        for bad in [10.000_001e6, -200e6, 1e308] {
            assert!(Cfo::new(bad, 20e6, 0.0).is_err(), "{bad}");
        }
    }

    #[test]
    fn timing_offset_delays_a_tone_exactly() {
        // A slow complex tone delayed by 3.4 samples equals the tone evaluated 3.4 samples earlier.
        let w = 0.05f64;
        let x: Vec<Complex32> = (0..2000)
            .map(|n| Complex32::from_polar(1.0, (w * n as f64) as f32))
            .collect();
        let mut t = TimingOffset::new(3.4, 0.0).unwrap();
        let mut y = Vec::new();
        for c in x.chunks(100) {
            t.process(c, &mut y);
        }
        for (n, got) in y.iter().enumerate().take(1500).skip(100) {
            let want = Complex32::from_polar(1.0, (w * (n as f64 - 3.4)) as f32);
            assert!((got - want).norm() < 1e-3, "n={n}: {got} vs {want}");
        }
    }

    #[test]
    fn multipath_is_an_fir() {
        let mut m = Multipath::new(vec![Complex32::new(1.0, 0.0), Complex32::new(0.0, 0.5)]).unwrap();
        let x = [
            Complex32::new(1.0, 0.0),
            Complex32::new(0.0, 0.0),
            Complex32::new(2.0, 0.0),
        ];
        let mut y = Vec::new();
        m.process(&x, &mut y);
        assert_eq!(
            y,
            vec![
                Complex32::new(1.0, 0.0),
                Complex32::new(0.0, 0.5),
                Complex32::new(2.0, 0.0)
            ]
        );
    }
}
