//! Parsers for command-line values: numbers with SI suffixes (`2.4G`, `20M`, `2k`), SNR ranges
//! (`A:STEP:B`, or lists of those and values), scrambler seeds (`93`, `0x5d`, `0b1011101`),
//! complex taps (`0.3-0.2j`).

use anyhow::{bail, Context, Result};

/// A number with an optional SI suffix: k, M, G (case-insensitive for k, as SDR tools accept).
pub fn si_number(s: &str) -> Result<f64> {
    let t = s.trim();
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('M') => (&t[..t.len() - 1], 1e6),
        Some('G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a number (suffixes k, M, G allowed)"))?;
    if !v.is_finite() {
        bail!("`{s}` is not a finite number");
    }
    Ok(v * mult)
}

/// A count of at least 1 (threads, rounds, items in flight): 0 would do nothing, or wait forever.
pub fn at_least_one(s: &str) -> Result<usize> {
    let v: usize = s
        .trim()
        .parse()
        .with_context(|| format!("`{s}` is not a whole number"))?;
    if v == 0 {
        bail!("must be at least 1");
    }
    Ok(v)
}

/// A positive number with an optional SI suffix (a sample rate, a bandwidth).
pub fn positive(s: &str) -> Result<f64> {
    let v = si_number(s)?;
    if v <= 0.0 {
        bail!("`{s}` must be above 0");
    }
    Ok(v)
}

/// A number ≥ 0 with an optional SI suffix (a rate limit where 0 means none).
pub fn non_negative(s: &str) -> Result<f64> {
    let v = si_number(s)?;
    if v < 0.0 {
        bail!("`{s}` must not be negative");
    }
    Ok(v)
}

/// A finite number (an SNR in dB): `nan` and `inf` parse as f64 but mean nothing here.
pub fn finite(s: &str) -> Result<f64> {
    let v: f64 = s.trim().parse().with_context(|| format!("`{s}` is not a number"))?;
    if !v.is_finite() {
        bail!("`{s}` is not a finite number");
    }
    Ok(v)
}

/// The RMS delay spread of a fading channel, samples (50 ns each): in (0, 16].
pub fn delay_spread(s: &str) -> Result<f64> {
    let v: f64 = s.trim().parse().with_context(|| format!("`{s}` is not a number"))?;
    if !(v > 0.0 && v <= 16.0) {
        bail!("`{s}`: must be in (0, 16] samples");
    }
    Ok(v)
}

/// A duration: a number and a unit, `us`, `ms`, `s`, `m` or `h` (`10ms`, `1.5s`, `2m`); a bare
/// number is seconds.
pub fn duration(s: &str) -> Result<std::time::Duration> {
    let t = s.trim();
    let split = t.find(|c: char| c.is_ascii_alphabetic() || c == 'µ').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => bail!("`{s}`: unknown time unit `{unit}` (us, ms, s, m, h)"),
    };
    let v: f64 = num
        .trim()
        .parse()
        .with_context(|| format!("`{s}` is not a duration (e.g. 10ms, 1.5s, 2m)"))?;
    let secs = v * scale;
    if !(secs.is_finite() && (0.0..=1e9).contains(&secs)) {
        bail!("`{s}` is not a duration between 0 and 10⁹ s");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// The points of an `A:STEP:B` range or a list (see [`snr_range`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Points(pub Vec<f64>);

/// [`snr_range`] for clap.
pub fn points(s: &str) -> Result<Points> {
    snr_range(s).map(Points)
}

/// Points in dB (or any unit): a comma-separated list of items, each a single value `A` or an
/// inclusive range `A:STEP:B` (`20,0:1:3` is 0, 1, 2, 3, 20): ascending, each point once, at
/// most 1000 in all.
pub fn snr_range(s: &str) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for item in s.split(',') {
        out.extend(range_item(item, s)?);
        if out.len() > 1000 {
            bail!("`{s}` has more than 1000 points");
        }
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    Ok(out)
}

/// One item of [`snr_range`]'s list (`whole`: the list, for errors).
fn range_item(item: &str, whole: &str) -> Result<Vec<f64>> {
    let parts: Vec<&str> = item.split(':').collect();
    let num = |x: &str| -> Result<f64> {
        let v: f64 = x
            .trim()
            .parse()
            .with_context(|| format!("`{x}` in `{whole}` is not a number"))?;
        if !v.is_finite() {
            bail!("`{x}` in `{whole}` is not finite");
        }
        Ok(v)
    };
    let (a, step, b) = match parts.as_slice() {
        [a] => return Ok(vec![num(a)?]),
        [a, step, b] => (num(a)?, num(step)?, num(b)?),
        _ => bail!("`{item}` in `{whole}`: expected A:STEP:B (e.g. 0:1:10), a single value, or a comma-separated list of those"),
    };
    if step <= 0.0 {
        bail!("`{item}`: STEP must be positive");
    }
    if b < a {
        bail!("`{item}`: the end ({b}) is below the start ({a})");
    }
    // In floating point: (B − A) / STEP can overflow, or pass usize's range and saturate.
    let span = (b - a) / step;
    if !(span.is_finite() && span < 1000.0) {
        bail!("`{item}` has {:.3e} points; at most 1000", span + 1.0);
    }
    let n = (span + 1e-9).floor() as usize + 1;
    Ok((0..n).map(|i| a + step * i as f64).collect())
}

/// A scrambler seed: decimal, `0x…` or `0b…`, 1 … 127, x1 in the least significant bit
/// (Annex G's state "1011101" is `0b1011101` = 93).
pub fn scrambler_seed(s: &str) -> Result<u8> {
    let t = s.trim();
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(h, 16)
    } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        u32::from_str_radix(b, 2)
    } else {
        t.parse()
    }
    .with_context(|| format!("scrambler seed `{s}` is not a number"))?;
    if !(1..=127).contains(&v) {
        bail!("scrambler seed {v} is out of range 1..=127 (the all-zero state never scrambles)");
    }
    Ok(v as u8)
}

/// A complex number `a`, `bj`, `a+bj`, `a-bj`.
pub fn complex(s: &str) -> Result<num_complex::Complex32> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let err = || format!("`{s}` is not a complex number (forms: 0.5, 0.3j, 0.5-0.2j)");
    let Some(body) = t.strip_suffix('j').or_else(|| t.strip_suffix('i')) else {
        return Ok(num_complex::Complex32::new(t.parse().with_context(err)?, 0.0));
    };
    // Split at the last sign that is not at the start or after an exponent.
    let bytes = body.as_bytes();
    let split = (1..bytes.len())
        .rev()
        .find(|&i| (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E'));
    let (re, im) = match split {
        Some(i) => (body[..i].parse::<f32>().with_context(err)?, &body[i..]),
        None => (0.0, body),
    };
    let im = match im {
        "" | "+" => 1.0,
        "-" => -1.0,
        x => x.parse::<f32>().with_context(err)?,
    };
    let c = num_complex::Complex32::new(re, im);
    if !(c.re.is_finite() && c.im.is_finite()) {
        bail!("`{s}` is not finite");
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(si_number("2.45G").unwrap(), 2.45e9);
        assert_eq!(si_number("20M").unwrap(), 20e6);
        assert_eq!(si_number("2k").unwrap(), 2e3);
        assert!(si_number("fast").is_err());
        assert_eq!(snr_range("0:2:6").unwrap(), vec![0.0, 2.0, 4.0, 6.0]);
        assert_eq!(snr_range("-5").unwrap(), vec![-5.0]);
        assert!(snr_range("5:0:6").is_err());
        assert!(snr_range("6:1:5").is_err());
        assert!(snr_range("0:1").is_err());
        assert_eq!(snr_range("0:1:2,10, 20").unwrap(), vec![0.0, 1.0, 2.0, 10.0, 20.0]);
        assert_eq!(snr_range("5,-3,0:1:1").unwrap(), vec![-3.0, 0.0, 1.0, 5.0]);
        assert!(snr_range("1,,2").is_err());
        assert!(snr_range("1,x").is_err());
        assert!(snr_range("0:1:999,0:1:5").is_err());
        // Point counts past usize (or past f64) are refused, not wrapped to an empty list.
        for huge in ["0:1:1e20", "0:1:1e308", "-1e308:1e308:1e308", "0:1e-300:1", "0:1:1000"] {
            assert!(snr_range(huge).is_err(), "{huge}");
        }
        assert_eq!(snr_range("0:1:999").unwrap().len(), 1000);
        assert_eq!(at_least_one(" 3 ").unwrap(), 3);
        for bad in ["0", "-1", "1.5", "x", ""] {
            assert!(at_least_one(bad).is_err(), "{bad}");
        }
        assert_eq!(positive("20M").unwrap(), 20e6);
        assert!(positive("0").is_err() && positive("-1k").is_err() && positive("nan").is_err());
        assert_eq!(non_negative("0").unwrap(), 0.0);
        assert!(non_negative("-5").is_err() && non_negative("inf").is_err());
        assert_eq!(finite("-3.5").unwrap(), -3.5);
        assert!(finite("nan").is_err() && finite("-inf").is_err() && finite("2k").is_err());
        assert_eq!(delay_spread("16").unwrap(), 16.0);
        for bad in ["0", "-1", "16.5", "nan", "x"] {
            assert!(delay_spread(bad).is_err(), "{bad}");
        }
        assert_eq!(scrambler_seed("0b1011101").unwrap(), 93);
        assert_eq!(scrambler_seed("0x7f").unwrap(), 127);
        assert!(scrambler_seed("0").is_err());
        assert!(scrambler_seed("128").is_err());
        assert_eq!(complex("0.5-0.2j").unwrap(), num_complex::Complex32::new(0.5, -0.2));
        assert_eq!(complex("-1e-1+2j").unwrap(), num_complex::Complex32::new(-0.1, 2.0));
        assert_eq!(complex("0.3j").unwrap(), num_complex::Complex32::new(0.0, 0.3));
        assert_eq!(complex("1").unwrap(), num_complex::Complex32::new(1.0, 0.0));
        assert!(complex("1+xj").is_err());
        assert_eq!(duration("10ms").unwrap(), std::time::Duration::from_millis(10));
        assert_eq!(duration("1.5s").unwrap(), std::time::Duration::from_millis(1500));
        assert_eq!(duration("2m").unwrap(), std::time::Duration::from_secs(120));
        assert_eq!(duration("250us").unwrap(), std::time::Duration::from_micros(250));
        assert_eq!(duration("3").unwrap(), std::time::Duration::from_secs(3));
        for bad in ["", "ms", "-1s", "5 parsecs", "nan", "1e300h"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
