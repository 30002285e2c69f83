//! `SignalField::from_bits` on arbitrary 24-byte arrays (each byte one "bit"; only bit 0 counts).
//!
//! Checks: never panics; the verdict matches a reference model of §17.3.4 (parity over bits
//! 0–17, tail bits 18–23 zero, RATE one of the eight, LENGTH ≠ 0, reserved bit ignored); an
//! accepted field round-trips through `to_bits`, whose output equals the input's low bits with
//! the reserved bit cleared (and parity adjusted), and passes `SignalField::new`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_phy::signal::SignalField;
use semcom_phy::{Rate, SignalError};

fuzz_target!(|data: &[u8]| {
    if data.len() < 24 {
        return;
    }
    let raw: [u8; 24] = data[..24].try_into().unwrap();
    let bits: [u8; 24] = raw.map(|b| b & 1);
    let got = SignalField::from_bits(&raw);
    assert_eq!(got, SignalField::from_bits(&bits), "only bit 0 of each byte may matter");

    // Reference model, checks in the documented order.
    let parity = bits[..18].iter().fold(0, |p, &b| p ^ b);
    let r = (0..4).fold(0u8, |acc, i| (acc << 1) | bits[i]);
    let length = (0..12).fold(0usize, |acc, i| acc | (usize::from(bits[5 + i]) << i));
    let expect: Result<(Rate, usize), SignalError> = if parity != 0 {
        Err(SignalError::Parity)
    } else if bits[18..].iter().any(|&b| b != 0) {
        Err(SignalError::Tail)
    } else if let Some(rate) = Rate::from_signal_bits(r) {
        if length == 0 {
            Err(SignalError::ZeroLength)
        } else {
            Ok((rate, length))
        }
    } else {
        Err(SignalError::Rate(r))
    };
    assert_eq!(got.map(|s| (s.rate, s.length)), expect);

    if let Ok(s) = got {
        assert!((1..=semcom_phy::signal::MAX_PSDU_LEN).contains(&s.length));
        assert_eq!(SignalField::new(s.rate, s.length).ok(), Some(s));
        let back = s.to_bits();
        assert_eq!(SignalField::from_bits(&back), Ok(s), "round trip");
        let mut want = bits;
        // Reserved bit: ignored on receive, sent as 0, so the parity bit follows it.
        want[17] ^= want[4];
        want[4] = 0;
        assert_eq!(back, want, "to_bits must reproduce the accepted bits");
    }
});
