//! Standard radio relations between the numbers of a record, as predictors: a LoRaWAN network
//! server's export carries values derived from others (the effective signal power from RSSI and
//! SNR, the free-space loss from the distance and the frequency), which cost nothing once the
//! codec knows the relation. Both ends evaluate them with the same IEEE-754 operations (additions,
//! multiplications, divisions; no platform `ln`/`exp`/`powf`, which may differ in the last bit
//! between libms), so a prediction is the same bits on every machine.

/// A relation giving a number from two earlier numbers of its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relation {
    /// LoRa effective signal power (dB) from RSSI (dBm) and SNR (dB):
    /// `rssi + snr − 10·log10(1 + 10^(snr/10))`.
    Esp,
    /// Free-space path loss (dB) from a distance in metres and a frequency in MHz:
    /// `20·log10(d/1000) + 20·log10(f) + 32.45` (the textbook form with d in km; 32.45 rounds
    /// 20·log10(4π·10⁹/c)).
    FreeSpaceLoss,
}

pub(crate) const RELATIONS: [Relation; 2] = [Relation::Esp, Relation::FreeSpaceLoss];

const LN2: f64 = std::f64::consts::LN_2;
const LN10: f64 = std::f64::consts::LN_10;

impl Relation {
    /// The relation's value for arguments `a` and `b`, or `None` outside its domain.
    pub(crate) fn eval(self, a: f64, b: f64) -> Option<f64> {
        match self {
            Relation::Esp => {
                if !(-60.0..=60.0).contains(&b) || !a.is_finite() {
                    return None;
                }
                let lin = exp(b / 10.0 * LN10);
                Some(a + b - 10.0 * ln(1.0 + lin)? / LN10)
            }
            Relation::FreeSpaceLoss => {
                if !(a > 0.0 && b > 0.0 && a < 1e12 && b < 1e9) {
                    return None;
                }
                Some(20.0 * (ln(a / 1000.0)? / LN10) + 20.0 * (ln(b)? / LN10) + 32.45)
            }
        }
    }

    /// What [`Relation::plausible`] needs to know about a value `v`, or `None` when no
    /// arguments can give it.
    pub(crate) fn prepare(self, v: f64) -> Option<f64> {
        match self {
            // Received powers in dBm are negative.
            Relation::Esp => (v < 0.0).then_some(v),
            // 20·log10(d·f) − 27.55 = v: the product d·f.
            Relation::FreeSpaceLoss => (20.0..=300.0).contains(&v).then(|| exp((v + 27.55) / 20.0 * LN10)),
        }
    }

    /// A cheap test (no logarithm) that the value `prepare` was given may be this relation of `a`
    /// and `b`; most pairs fail it.
    pub(crate) fn plausible(self, a: f64, b: f64, prepared: f64) -> bool {
        match self {
            // 10·log10(1 + 10^(snr/10)) lies in (0, max(snr, 0) + 3.02].
            Relation::Esp => {
                let v = prepared;
                a < 0.0 && (-40.0..=40.0).contains(&b) && v < a + b && v >= a + b - b.max(0.0) - 3.1
            }
            Relation::FreeSpaceLoss => a > 0.0 && b > 0.0 && (a * b / prepared - 1.0).abs() < 0.01,
        }
    }
}

/// Natural logarithm of `x > 0` (finite) from basic operations: `x = m·2^e` with
/// `m ∈ [√½, √2)`, `ln m = 2·atanh((m−1)/(m+1))` by its series (|t| < 0.172, 12 terms).
fn ln(x: f64) -> Option<f64> {
    if !(x > 0.0 && x.is_finite()) {
        return None;
    }
    let (mut m, mut e) = (x, 0i32);
    if m < f64::MIN_POSITIVE {
        m *= 18_446_744_073_709_551_616.0; // 2^64
        e -= 64;
    }
    let bits = m.to_bits();
    e += ((bits >> 52) & 0x7ff) as i32 - 1023;
    m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        e += 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let mut term = t;
    let mut sum = 0.0;
    for k in 0..12 {
        sum += term / f64::from(2 * k + 1);
        term *= t2;
    }
    Some(f64::from(e) * LN2 + 2.0 * sum)
}

/// `e^x` for |x| ≤ 700 from basic operations: `x = k·ln 2 + r`, |r| ≤ ln 2 / 2, Taylor series of
/// `e^r` (18 terms), times `2^k` built from its bits.
fn exp(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    let k = (x / LN2).round();
    // ln 2 in two parts (Cody and Waite): k·LN2_HI is exact, so r keeps its precision.
    const LN2_HI: f64 = 6.931_471_803_691_238e-1;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut term = 1.0;
    let mut sum = 1.0;
    for i in 1..18 {
        term = term * r / f64::from(i);
        sum += term;
    }
    let k = k as i64;
    // 2^k in two halves, each a normal number for |k| ≤ 1010.
    let half = k / 2;
    let p1 = f64::from_bits(((half + 1023) as u64) << 52);
    let p2 = f64::from_bits(((k - half + 1023) as u64) << 52);
    sum * p1 * p2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_and_exp_match_the_platform_closely() {
        for &x in &[1e-300, 1e-5, 0.3, 0.999, 1.0, 1.5, 2.0, 10.0, 868.1, 6809.0, 1e300] {
            let (a, b) = (ln(x).unwrap(), x.ln());
            assert!(
                (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1.0),
                "ln {x}: {a} vs {b}"
            );
        }
        for &x in &[-700.0, -20.0, -1.0, -0.1, 0.0, 0.5, 1.0, 3.3, 50.0, 700.0] {
            let (a, b) = (exp(x), f64::exp(x));
            assert!((a - b).abs() <= 8.0 * f64::EPSILON * b, "exp {x}: {a} vs {b}");
        }
        assert_eq!(ln(0.0), None);
        assert_eq!(ln(-1.0), None);
        assert_eq!(ln(f64::NAN), None);
    }

    /// Values from a Helium network server's export (`_esp`, `_freeSpaceLoss`, rounded to 0.01).
    #[test]
    fn relations_reproduce_exported_values() {
        let esp = Relation::Esp.eval(-135.0, -21.5).unwrap();
        assert_eq!((esp * 100.0).round(), -15653.0);
        let fsl = Relation::FreeSpaceLoss.eval(1818.0, 868.3).unwrap();
        assert_eq!((fsl * 100.0).round(), 9642.0);
        assert!(Relation::Esp.plausible(-135.0, -21.5, -156.53));
        assert!(!Relation::Esp.plausible(-135.0, -21.5, -150.0));
        let t = Relation::FreeSpaceLoss.prepare(96.42).unwrap();
        assert!(Relation::FreeSpaceLoss.plausible(1818.0, 868.3, t));
        assert!(!Relation::FreeSpaceLoss.plausible(1818.0, 433.9, t));
        assert_eq!(Relation::FreeSpaceLoss.prepare(-3.0), None);
        assert_eq!(Relation::FreeSpaceLoss.eval(-1.0, 868.1), None);
    }
}
