//! Link frames from the network: the outer header, the opener (key id, replay window, tag),
//! the inner fragment header and reassembly, on arbitrary byte strings.
//!
//! Checks: never panics; a forged frame never authenticates under the key (the fuzzer cannot
//! compute a Poly1305 tag); an unsealed frame that an insecure receiver accepts parses back to
//! the same fragment bytes; reassembly of what parses stays within its limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_transport::link::frame::{Fragment, OuterHeader, Reassembler};
use semcom_transport::link::{LinkKey, Opener};

fuzz_target!(|data: &[u8]| {
    let _ = OuterHeader::parse(data);
    let mut secure = Opener::new(Some(LinkKey::from_bytes([7; 32])));
    assert!(secure.open(data).is_err(), "a forged frame authenticated");
    assert_eq!(secure.counters().refused(), 1);
    let mut insecure = Opener::new(None);
    let mut reasm = Reassembler::new(1_000, 4096, 4);
    // The input as a sequence of frames, each prefixed by one length byte.
    let mut rest = data;
    let mut now = 0;
    while let Some((&n, tail)) = rest.split_first() {
        let n = usize::from(n).min(tail.len());
        let (frame, tail) = tail.split_at(n);
        rest = tail;
        now += 100;
        if let Ok(o) = insecure.open(frame) {
            if let Ok(f) = Fragment::parse(&o.inner) {
                assert_eq!(f.to_bytes(), o.inner, "fragment round trip");
                if let Ok(done) = reasm.push(o.session, f, now) {
                    for it in done {
                        assert!(it.fragments.len() <= 256);
                        if let Some(b) = it.bytes() {
                            assert!(b.len() <= 4096);
                        }
                    }
                }
            }
        }
        let _ = reasm.expire(now);
        assert!(reasm.pending() <= 4);
    }
});
