//! Textbook error rates in AWGN, for plots and for testing the receiver against theory.

use crate::rate::Modulation;

/// Complementary error function (musl's implementation, via the `libm` crate).
pub fn erfc(x: f64) -> f64 {
    libm::erfc(x)
}

/// Gaussian tail probability Q(x).
pub fn q_func(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// Exact bit error probability of Gray-coded `m` in AWGN at `ebn0` (linear Eb/N0), uncoded.
/// Square QAM uses the closed form of Cho & Yoon (IEEE Trans. Commun., 2002).
pub fn ber_awgn(m: Modulation, ebn0: f64) -> f64 {
    match m {
        Modulation::Bpsk | Modulation::Qpsk => q_func((2.0 * ebn0).sqrt()),
        Modulation::Qam16 | Modulation::Qam64 | Modulation::Qam256 | Modulation::Qam1024 => {
            let bits = m.bits_per_symbol() as f64;
            let mm = 2f64.powf(bits);
            let sqrt_m = mm.sqrt();
            let half = bits / 2.0;
            let arg = (3.0 * bits * ebn0 / (2.0 * (mm - 1.0))).sqrt();
            let mut total = 0.0;
            for k in 1..=half as u32 {
                let p2k = 2f64.powi(k as i32 - 1);
                let upper = ((1.0 - 2f64.powi(-(k as i32))) * sqrt_m) as u32;
                let mut pk = 0.0;
                for i in 0..upper {
                    let fi = f64::from(i);
                    let w = (fi * p2k / sqrt_m).floor();
                    let sign = if (w as i64) % 2 == 0 { 1.0 } else { -1.0 };
                    pk += sign * (p2k - (fi * p2k / sqrt_m + 0.5).floor()) * erfc((2.0 * fi + 1.0) * arg);
                }
                total += pk / sqrt_m;
            }
            total / half
        }
    }
}

/// Uncoded BER at an Es/N0 (per subcarrier, linear).
pub fn ber_awgn_esn0(m: Modulation, esn0: f64) -> f64 {
    ber_awgn(m, esn0 / m.bits_per_symbol() as f64)
}

/// Per-subcarrier Es/N0 (dB) of the data subcarriers at a per-sample SNR (dB), as this crate
/// defines SNR: the 64-bin FFT puts all signal power into 52 bins and the noise into all 64.
pub fn esn0_db_from_snr_db(snr_db: f64) -> f64 {
    snr_db + 10.0 * (64.0f64 / 52.0).log10()
}

/// The Es/N0 (dB) at which `m` reaches `ber`, by bisection.
pub fn esn0_db_for_ber(m: Modulation, ber: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0f64, 40.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if ber_awgn_esn0(m, 10f64.powf(mid / 10.0)) > ber {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Standard-normal quadrature nodes on [−10, 10] (trapezoid, step 0.005): E[f(Z)] for the
/// smooth integrands of the binary-input AWGN channel to better than 1e-10.
fn normal_expectation(f: impl Fn(f64) -> f64) -> f64 {
    let (h, n) = (0.005, 4000);
    let norm = 1.0 / (2.0 * std::f64::consts::PI).sqrt();
    (0..=n)
        .map(|i| {
            let z = -10.0 + h * f64::from(i);
            let w = if i == 0 || i == n { 0.5 } else { 1.0 };
            w * h * norm * (-0.5 * z * z).exp() * f(z)
        })
        .sum()
}

/// Information density of BPSK (x = +1 sent) at channel output y = 1 + σz over real AWGN of
/// variance σ², bits: 1 − log2(1 + e^{−2y/σ²}).
fn biawgn_density(sigma: f64, z: f64) -> f64 {
    let y = 1.0 + sigma * z;
    let a = -2.0 * y / (sigma * sigma);
    // log(1 + e^a) without overflow.
    let softplus = if a > 30.0 { a } else { a.exp().ln_1p() };
    1.0 - softplus / std::f64::consts::LN_2
}

/// Capacity of the binary-input AWGN channel (BPSK, real noise), bits per channel use, at
/// Es/N0 `esn0` (linear; σ² = 1/(2·Es/N0)).
pub fn biawgn_capacity(esn0: f64) -> f64 {
    let sigma = (1.0 / (2.0 * esn0)).sqrt();
    normal_expectation(|z| biawgn_density(sigma, z))
}

/// Channel dispersion of the binary-input AWGN channel, bits² per channel use: the variance
/// of the information density (Polyanskiy, Poor & Verdú, IEEE Trans. IT 2010).
pub fn biawgn_dispersion(esn0: f64) -> f64 {
    let sigma = (1.0 / (2.0 * esn0)).sqrt();
    let c = biawgn_capacity(esn0);
    normal_expectation(|z| (biawgn_density(sigma, z) - c).powi(2))
}

/// Smallest Eb/N0 (dB) at which a rate-`rate` code can be reliable over BPSK/AWGN: where the
/// binary-input capacity equals the rate (0.187 dB at rate 1/2).
pub fn shannon_limit_biawgn_db(rate: f64) -> f64 {
    let (mut lo, mut hi) = (-10.0f64, 20.0f64);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        let esn0 = rate * 10f64.powf(mid / 10.0);
        if biawgn_capacity(esn0) < rate {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The same limit for Gaussian (unconstrained) inputs: Eb/N0 = (2^{2R} − 1)/(2R), real channel.
pub fn shannon_limit_gaussian_db(rate: f64) -> f64 {
    10.0 * ((4f64.powf(rate) - 1.0) / (2.0 * rate)).log10()
}

/// Normal approximation of the best frame error rate of an (n, k) binary code over
/// BPSK/AWGN at Eb/N0 `ebn0_db`: Q((n·C − k + ½·log2 n) / √(n·V)) (Polyanskiy, Poor & Verdú).
pub fn normal_approx_fer(n: usize, k: usize, ebn0_db: f64) -> f64 {
    let esn0 = k as f64 / n as f64 * 10f64.powf(ebn0_db / 10.0);
    let (c, v) = (biawgn_capacity(esn0), biawgn_dispersion(esn0));
    let n = n as f64;
    q_func((n * c - k as f64 + 0.5 * n.log2()) / (n * v).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_known_values() {
        // Abramowitz & Stegun table values.
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_186_953_5),
            (1.0, 0.157_299_207_050_285_13),
            (2.0, 0.004_677_734_981_047_266),
            (3.0, 2.209_049_699_858_544e-5),
            (5.0, 1.537_459_794_428_035e-12),
            (-1.0, 1.842_700_792_949_715),
        ] {
            let got = erfc(x);
            assert!(
                (got - want).abs() <= 1e-13 * want.max(1e-300) + 1e-16,
                "erfc({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn textbook_operating_points() {
        // BPSK reaches 1e-5 at Eb/N0 = 9.59 dB; 16-QAM at 13.4 dB; 64-QAM 1e-5 near 17.8 dB (Proakis).
        let at = |m, db: f64| ber_awgn(m, 10f64.powf(db / 10.0));
        assert!((at(Modulation::Bpsk, 9.5884) - 1e-5).abs() < 2e-8);
        let e16 = esn0_db_for_ber(Modulation::Qam16, 1e-5) - 10.0 * 4f64.log10();
        assert!((e16 - 13.4).abs() < 0.1, "16-QAM Eb/N0 {e16}");
        let e64 = esn0_db_for_ber(Modulation::Qam64, 1e-5) - 10.0 * 6f64.log10();
        assert!((e64 - 17.8).abs() < 0.15, "64-QAM Eb/N0 {e64}");
    }

    #[test]
    fn binary_input_awgn_limits() {
        // Textbook values: rate 1/2 needs Eb/N0 ≥ 0.187 dB with BPSK and ≥ 0 dB with Gaussian
        // inputs; capacity tends to 1 bit at high SNR and to (2/ln 2)·Es/N0·… → 0 at low SNR.
        assert!(
            (shannon_limit_biawgn_db(0.5) - 0.187).abs() < 0.005,
            "{}",
            shannon_limit_biawgn_db(0.5)
        );
        assert!(shannon_limit_gaussian_db(0.5).abs() < 1e-12);
        assert!((biawgn_capacity(1e3) - 1.0).abs() < 1e-9);
        // Low SNR: C ≈ Es/N0 / ln 2 (the same as for Gaussian inputs to first order).
        let e = 1e-3;
        assert!((biawgn_capacity(e) / (e / std::f64::consts::LN_2) - 1.0).abs() < 2e-3);
        // Rate 5/6 needs more than rate 1/2, and BPSK more than Gaussian inputs.
        assert!(shannon_limit_biawgn_db(5.0 / 6.0) > shannon_limit_gaussian_db(5.0 / 6.0));
        assert!(shannon_limit_biawgn_db(5.0 / 6.0) > 2.0);
    }

    #[test]
    fn normal_approximation_behaves_as_a_bound_should() {
        // Falls with Eb/N0, and a longer code of the same rate does better above the limit.
        let a = normal_approx_fer(1944, 972, 1.0);
        let b = normal_approx_fer(1944, 972, 1.5);
        assert!(a > b && b > 0.0 && a < 1.0, "{a} {b}");
        assert!(normal_approx_fer(648, 324, 1.5) > b);
        // The (1944, 972) bound crosses FER 1e-2 between the capacity limit and 1 dB above it.
        assert!(normal_approx_fer(1944, 972, 0.4) > 1e-2 && normal_approx_fer(1944, 972, 1.19) < 1e-2);
    }

    #[test]
    fn dense_qam_agrees_with_the_nearest_neighbour_approximation() {
        // At high SNR the exact Gray-QAM BER tends to (4/k)(1 − 1/√M)·Q(√(3k·Eb/N0/(M − 1))),
        // k = log2 M (Proakis): 256-QAM needs about 22.4 dB Eb/N0 for 1e-5.
        for m in [Modulation::Qam256, Modulation::Qam1024] {
            let k = m.bits_per_symbol() as f64;
            let mm = 2f64.powf(k);
            for ebn0_db in [20.0, 24.0, 28.0] {
                let e = 10f64.powf(ebn0_db / 10.0);
                let approx = 4.0 / k * (1.0 - 1.0 / mm.sqrt()) * q_func((3.0 * k * e / (mm - 1.0)).sqrt());
                let exact = ber_awgn(m, e);
                assert!(
                    (exact / approx - 1.0).abs() < 0.1,
                    "{m:?} {ebn0_db} dB: {exact:e} vs {approx:e}"
                );
            }
        }
        let e256 = esn0_db_for_ber(Modulation::Qam256, 1e-5) - 10.0 * 8f64.log10();
        assert!((e256 - 22.4).abs() < 0.15, "256-QAM Eb/N0 {e256}");
    }
}
