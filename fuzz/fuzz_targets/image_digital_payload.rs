//! The digital image decoder (`semcom_codec::image::digital`) on arbitrary frame parameters and
//! payloads, with the built-in DCT model and the shipped model
//! (`models/image-digital.safetensors`, loaded once, when present).
//!
//! Input layout: one byte `n`, then `n` bytes of frame parameters, then the payload. Parameters
//! of either mode parse (1: one stream, 2: sliced); the last two payload bytes also choose a
//! lost byte range for the concealing decoder.
//!
//! Checks: never panics; a payload that decodes gives a picture of the declared shape with
//! samples in [0, 1]; decoding is deterministic; concealed decoding (blank and prior, with and
//! without a lost range) gives a picture of the declared shape or a typed error, and with
//! nothing lost the same picture as the plain decoder when that one succeeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_codec::image::digital::{Conceal, DigitalCode, DigitalModel};
use std::sync::OnceLock;

fn models() -> &'static [DigitalModel] {
    static M: OnceLock<Vec<DigitalModel>> = OnceLock::new();
    M.get_or_init(|| {
        let mut v = vec![DigitalModel::dct()];
        if let Ok(m) = DigitalModel::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/image-digital.safetensors"
        ))) {
            v.push(m);
        }
        v
    })
}

/// Small images only, so that each input runs fast.
const MAX_PIXELS: usize = 1 << 14;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n).min(rest.len());
    let (params, payload) = rest.split_at(n);
    let Ok(code) = DigitalCode::from_parts(params, payload, MAX_PIXELS) else {
        return;
    };
    for m in models() {
        if let Ok(pic) = m.decode(&code, MAX_PIXELS) {
            assert_eq!(
                (pic.width(), pic.height(), pic.channels()),
                (code.width, code.height, code.channels)
            );
            assert!(pic.data().iter().all(|v| (0.0..=1.0).contains(v)));
            assert_eq!(m.decode(&code, MAX_PIXELS).ok().as_ref(), Some(&pic));
            let (again, rep) = m
                .decode_concealed(&code, &[], Conceal::Prior, MAX_PIXELS)
                .expect("a code that decodes decodes concealed");
            assert_eq!(again, pic);
            assert!(!rep.concealed());
        }
        let lost = match payload {
            [.., a, b] => {
                let start = usize::from(*a) * payload.len() / 256;
                vec![start..start + usize::from(*b % 64)]
            }
            _ => vec![],
        };
        for conceal in [Conceal::Blank, Conceal::Prior] {
            if let Ok((pic, rep)) = m.decode_concealed(&code, &lost, conceal, MAX_PIXELS) {
                assert_eq!(
                    (pic.width(), pic.height(), pic.channels()),
                    (code.width, code.height, code.channels)
                );
                assert!(pic.data().iter().all(|v| (0.0..=1.0).contains(v)));
                assert!(rep.lost_slices + rep.undecodable_slices <= rep.slices);
            }
        }
    }
});
