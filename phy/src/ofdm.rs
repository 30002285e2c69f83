//! 20 MHz OFDM numerology and the subcarrier layout of 802.11a.
//!
//! Subcarrier indices run −32 … 31; FFT bins use the usual order (bin = index mod 64).

use num_complex::Complex32;

/// FFT size.
pub const N_FFT: usize = 64;
/// Cyclic prefix of a SIGNAL or DATA symbol, samples.
pub const N_CP: usize = 16;
/// Samples per SIGNAL or DATA symbol.
pub const N_SYM: usize = N_FFT + N_CP;
/// Data subcarriers per symbol.
pub const N_DATA: usize = 48;
/// Pilot subcarriers per symbol.
pub const N_PILOT: usize = 4;
/// Occupied subcarriers (data + pilots).
pub const N_USED: usize = N_DATA + N_PILOT;
/// Samples of the short training field.
pub const STF_LEN: usize = 160;
/// Samples of the long training field (GI2 + two symbols).
pub const LTF_LEN: usize = 160;
/// Samples of preamble + SIGNAL.
pub const HEADER_LEN: usize = STF_LEN + LTF_LEN + N_SYM;
/// Nominal sample rate, Hz.
pub const SAMPLE_RATE_HZ: f64 = 20e6;

/// Pilot subcarrier indices and their base values (before the polarity sequence).
pub const PILOTS: [(i32, f32); 4] = [(-21, 1.0), (-7, 1.0), (7, 1.0), (21, -1.0)];

/// Data subcarrier indices in the order d_0 … d_47 fill them.
pub const DATA_SUBCARRIERS: [i32; N_DATA] = {
    let mut out = [0i32; N_DATA];
    let mut n = 0;
    let mut k = -26;
    while k <= 26 {
        if k != 0 && k != -21 && k != -7 && k != 7 && k != 21 {
            out[n] = k;
            n += 1;
        }
        k += 1;
    }
    out
};

/// FFT bin of subcarrier index `k` (−32 … 31).
#[inline]
pub const fn bin(k: i32) -> usize {
    k.rem_euclid(N_FFT as i32) as usize
}

/// Occupied subcarrier indices (−26 … 26 without 0), ascending.
pub const USED_SUBCARRIERS: [i32; N_USED] = {
    let mut out = [0i32; N_USED];
    let mut n = 0;
    let mut k = -26;
    while k <= 26 {
        if k != 0 {
            out[n] = k;
            n += 1;
        }
        k += 1;
    }
    out
};

/// Fills the 64 bins of one SIGNAL/DATA symbol: the 48 points on the data subcarriers, the
/// pilots with polarity `polarity` (±1), zeros elsewhere.
pub fn assemble_symbol(points: &[Complex32], polarity: f32, bins: &mut [Complex32; N_FFT]) {
    bins.fill(Complex32::new(0.0, 0.0));
    for (&k, &p) in DATA_SUBCARRIERS.iter().zip(points) {
        bins[bin(k)] = p;
    }
    for (k, v) in PILOTS {
        bins[bin(k)] = Complex32::new(v * polarity, 0.0);
    }
}
