//! What the codec targets share (not a target itself: included with `#[path]`): the shipped
//! text prior, loaded once per process.

use semcom_codec::Prior;
use std::sync::OnceLock;

/// `models/text-prior.safetensors`.
pub fn prior() -> &'static Prior {
    static P: OnceLock<Prior> = OnceLock::new();
    P.get_or_init(|| {
        Prior::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/text-prior.safetensors"
        )))
        .expect("the shipped prior loads")
    })
}
