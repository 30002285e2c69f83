//! The SIGNAL field: RATE, reserved bit, LENGTH, even parity and six tail bits (§17.3.4).

use crate::{rate::Rate, PhyError, SignalError};

/// Largest PSDU LENGTH the 12-bit field can carry.
pub const MAX_PSDU_LEN: usize = 4095;

/// The contents of a SIGNAL field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalField {
    /// Data rate of the DATA field.
    pub rate: Rate,
    /// PSDU length in octets (1 … 4095).
    pub length: usize,
}

impl SignalField {
    /// A SIGNAL field, checking the length.
    pub fn new(rate: Rate, length: usize) -> Result<Self, PhyError> {
        if length == 0 || length > MAX_PSDU_LEN {
            return Err(PhyError::PsduLength {
                len: length,
                max: MAX_PSDU_LEN,
            });
        }
        Ok(Self { rate, length })
    }

    /// The 24 bits in transmission order (one per byte): R1..R4, reserved, LENGTH LSB first,
    /// parity, tail.
    pub fn to_bits(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        let r = self.rate.signal_bits();
        for (i, bit) in b[..4].iter_mut().enumerate() {
            *bit = (r >> (3 - i)) & 1;
        }
        for i in 0..12 {
            b[5 + i] = ((self.length >> i) & 1) as u8;
        }
        b[17] = b[..17].iter().fold(0, |p, &x| p ^ x);
        b
    }

    /// Parses 24 decoded bits, checking parity, rate, length and tail. The reserved bit is
    /// ignored, as the standard asks receivers to.
    pub fn from_bits(b: &[u8; 24]) -> Result<Self, SignalError> {
        if b[..18].iter().fold(0, |p, &x| p ^ (x & 1)) != 0 {
            return Err(SignalError::Parity);
        }
        if b[18..].iter().any(|&x| x & 1 != 0) {
            return Err(SignalError::Tail);
        }
        let r = (0..4).fold(0u8, |acc, i| (acc << 1) | (b[i] & 1));
        let rate = Rate::from_signal_bits(r).ok_or(SignalError::Rate(r))?;
        let length = (0..12).fold(0usize, |acc, i| acc | (usize::from(b[5 + i] & 1) << i));
        if length == 0 {
            return Err(SignalError::ZeroLength);
        }
        Ok(Self { rate, length })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_rate_and_length_edge() {
        for rate in Rate::ALL {
            for len in [1, 2, 100, 1500, 4095] {
                let s = SignalField::new(rate, len).unwrap();
                assert_eq!(SignalField::from_bits(&s.to_bits()), Ok(s));
            }
        }
        assert!(SignalField::new(Rate::R6, 0).is_err());
        assert!(SignalField::new(Rate::R6, 4096).is_err());
    }

    #[test]
    fn every_single_bit_error_in_the_first_18_bits_is_caught() {
        let s = SignalField::new(Rate::R36, 100).unwrap();
        for i in 0..18 {
            let mut b = s.to_bits();
            b[i] ^= 1;
            assert!(SignalField::from_bits(&b).is_err(), "bit {i}");
        }
    }
}
