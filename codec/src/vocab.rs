//! The shared token space of the prior, laid out the way a multimodal LLM shares one backbone:
//!
//! ```text
//!  0 … 255         raw bytes (every byte string is representable)
//!  256 … 287       specials: BOS, EOS, modality and context tags
//!  288 … 288+M−1   text subwords (BPE merges learned from the training text)
//!  then            image codebook tokens (Config::image_tokens), sensor tokens
//!                  (Config::sensor_tokens): later modalities extend the same space
//! ```
//!
//! A coder only ever codes the tokens its modality allows (the others are masked out of the
//! distribution), so adding a modality does not cost the others bits.

/// Raw bytes.
pub const N_BYTES: usize = 256;
/// Start of a message (the context every message begins with).
pub const BOS: u32 = 256;
/// End of a message.
pub const EOS: u32 = 257;
/// Context tag: free text (messages, sentences).
pub const TAG_TEXT: u32 = 258;
/// Context tag: a log line.
pub const TAG_LOG: u32 = 259;
/// Context tag: a telemetry key.
pub const TAG_KEY: u32 = 260;
/// Context tag: a telemetry string value.
pub const TAG_STRING: u32 = 261;
/// Context tag: image tokens follow.
pub const TAG_IMAGE: u32 = 262;
/// Context tag: sensor tokens follow.
pub const TAG_SENSOR: u32 = 263;
/// Context tag: audio tokens follow.
pub const TAG_AUDIO: u32 = 264;
/// First id after the specials: text subwords start here.
pub const FIRST_MERGE: u32 = 288;
