//! The sensor payload parser (`semcom_codec::sensor::decode`) on arbitrary bytes, with the shipped
//! model (`models/sensor-har.safetensors`, loaded once) for the modes that need one.
//!
//! Checks: never panics; a payload that decodes to a window decodes to finite samples of the
//! declared shape; a lossless window re-encodes to a payload that decodes to the same bits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_codec::sensor::{self, Decoded, SensorModel};
use std::sync::OnceLock;

fn model() -> Option<&'static SensorModel> {
    static M: OnceLock<Option<SensorModel>> = OnceLock::new();
    M.get_or_init(|| {
        SensorModel::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/sensor-har.safetensors"
        )))
        .ok()
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    for m in [None, model()] {
        match sensor::decode(data, m, 1 << 16) {
            Ok(Decoded::Window(w)) | Ok(Decoded::EventAndWindow(_, w)) => {
                assert!(w.samples().iter().all(|x| x.is_finite()));
                assert_eq!(w.samples().len(), w.channels() * w.len());
                if data.first() == Some(&0x01) {
                    let again = sensor::encode_lossless(&w);
                    match sensor::decode(&again, None, 1 << 16) {
                        Ok(Decoded::Window(v)) => assert!(v
                            .samples()
                            .iter()
                            .zip(w.samples())
                            .all(|(a, b)| a.to_bits() == b.to_bits())),
                        other => panic!("re-encoded lossless window does not decode: {other:?}"),
                    }
                }
            }
            Ok(Decoded::Event(_)) => assert_eq!(data.len(), 1),
            Err(_) => {}
        }
    }
});
