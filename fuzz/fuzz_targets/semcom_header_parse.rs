//! `SemcomHeader::from_bits` and `FrameHeader::from_bits` on arbitrary byte strings (each byte one
//! "bit"; only bit 0 counts).
//!
//! Checks: never panics; only bit 0 of each byte matters; an accepted header has 1 … 4
//! segments of 1 … 4095 octets and classes 0 … 3 (digital) or 1 … MAX_ANALOG_SYMBOLS symbols
//! (analog), and `to_bits` reproduces the accepted bits up to the tail (fields and CRC),
//! followed by zeros; the two parsers agree on digital headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_phy::semcom::{FrameHeader, HeaderError, SemcomHeader};

fuzz_target!(|data: &[u8]| {
    let bits: Vec<u8> = data.iter().map(|b| b & 1).collect();
    let got = SemcomHeader::from_bits(data);
    assert_eq!(got, SemcomHeader::from_bits(&bits), "only bit 0 of each byte may matter");
    if let Ok(h) = &got {
        let n = h.segments.len();
        assert!((1..=semcom_phy::semcom::MAX_SEGMENTS).contains(&n));
        for s in &h.segments {
            assert!((1..=semcom_phy::semcom::MAX_SEGMENT_LEN).contains(&s.length) && s.class <= 3);
        }
        assert!(!h.analog, "analog headers are refused");
        let back = h.to_bits();
        let tail = SemcomHeader::tail_at(n);
        assert_eq!(&back[..tail], &bits[..tail], "round trip");
        assert!(back[tail..].iter().all(|&b| b == 0));
        assert_eq!(SemcomHeader::from_bits(&back), Ok(h.clone()));
    }
    let any = FrameHeader::from_bits(data);
    assert_eq!(any, FrameHeader::from_bits(&bits));
    match (&got, &any) {
        (Ok(d), Ok(FrameHeader::Digital(a))) => assert_eq!(d, a),
        (Err(HeaderError::Analog), Ok(FrameHeader::Analog(h))) => {
            assert!((1..=semcom_phy::semcom::MAX_ANALOG_SYMBOLS).contains(&h.symbols) && h.class <= 3);
            let back = h.to_bits();
            let tail = SemcomHeader::tail_at(1);
            assert_eq!(&back[..tail], &bits[..tail], "analog round trip");
            assert_eq!(FrameHeader::from_bits(&back), Ok(FrameHeader::Analog(*h)));
        }
        (Err(HeaderError::Analog), Err(_)) => {}
        (Err(e), Err(f)) => assert_eq!(e, f),
        _ => panic!("parsers disagree: {got:?} vs {any:?}"),
    }
});
