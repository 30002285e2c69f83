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
        Modulation::Qam16 | Modulation::Qam64 => {
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
}
