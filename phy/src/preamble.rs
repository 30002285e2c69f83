//! The legacy training fields: L-STF and L-LTF (§17.3.3).

use crate::ofdm::{bin, N_FFT};
use num_complex::Complex32;

/// L-STF values on subcarriers −26 … 26, before the √(13/6) scaling, as multiples of (1 + j).
const STF_SIGNS: [i8; 53] = [
    0, 0, 1, 0, 0, 0, -1, 0, 0, 0, 1, 0, 0, 0, -1, 0, 0, 0, -1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, -1, 0, 0,
    0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0,
];

/// L-LTF values on subcarriers −26 … 26.
pub const LTF_SEQ: [i8; 53] = [
    1, 1, -1, -1, 1, 1, -1, 1, -1, 1, 1, 1, 1, 1, 1, -1, -1, 1, 1, -1, 1, -1, 1, 1, 1, 1, 0, 1, -1, -1, 1, 1, -1, 1,
    -1, 1, -1, -1, -1, -1, -1, 1, 1, -1, -1, 1, -1, 1, -1, 1, 1, 1, 1,
];

/// L-STF in the frequency domain, FFT bin order (Annex G Table G.2).
pub fn stf_freq() -> [Complex32; N_FFT] {
    let a = (13.0f32 / 6.0).sqrt();
    let mut out = [Complex32::new(0.0, 0.0); N_FFT];
    for (i, &s) in STF_SIGNS.iter().enumerate() {
        out[bin(i as i32 - 26)] = Complex32::new(a, a) * f32::from(s);
    }
    out
}

/// L-LTF in the frequency domain, FFT bin order (Annex G Table G.5).
pub fn ltf_freq() -> [Complex32; N_FFT] {
    let mut out = [Complex32::new(0.0, 0.0); N_FFT];
    for (i, &s) in LTF_SEQ.iter().enumerate() {
        out[bin(i as i32 - 26)] = Complex32::new(f32::from(s), 0.0);
    }
    out
}

/// The L-LTF value (±1, or 0 at DC) on subcarrier `k` in −26 … 26.
#[inline]
pub fn ltf_value(k: i32) -> f32 {
    f32::from(LTF_SEQ[(k + 26) as usize])
}
