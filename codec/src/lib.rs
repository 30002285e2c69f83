//! # semcom-codec
//!
//! The semantic codecs of semcom: meaning → tokens → bytes and back. This crate has no radio and
//! no sockets.
//!
//! - [`frame`]: the [`SemanticFrame`] wire format every codec emits.
//! - [`rangecoder`]: the arithmetic (range) coder over integer frequencies.
//! - [`prior`]: the shared causal transformer whose next-token distribution drives the coder,
//!   trained with candle and run by a deterministic engine.
//! - [`vocab`] and [`bpe`]: the shared token space and the text tokenizer.
//! - [`text`]: lossless text (log lines, messages, sentences).
//! - [`telemetry`]: JSON/CSV records, lossless or within per-field tolerances.
//! - [`image`]: images as analog JSCC channel symbols (learned transform + refinement network).
//! - [`picture`]: images in and out (PNG/JPEG files, planar floats) and their quality metrics.
//! - [`sensor`]: multichannel sensor windows: lossless, reconstruction tokens, or events.

pub mod bpe;
pub mod error;
pub mod frame;
pub mod image;
pub mod modelfile;
pub mod picture;
pub mod prior;
pub mod rangecoder;
pub mod sensor;
pub mod telemetry;
pub mod text;
pub mod train;
pub mod vocab;

pub use error::CodecError;
pub use frame::{Modality, ModelId, SemanticFrame};
pub use prior::Prior;
