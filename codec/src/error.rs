//! The one error type of `semcom-codec`.

use thiserror::Error;

/// Everything that can go wrong encoding or decoding meaning. Variants carry what was expected
/// and what was found.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame's bytes end before a field does.
    #[error("frame truncated: {field} needs {needed} more byte(s) at offset {offset}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Byte offset in the frame.
        offset: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// A frame's integrity check fails.
    #[error("frame integrity check failed: CRC-32 {found:08x}, computed {computed:08x}")]
    Crc {
        /// CRC carried by the frame.
        found: u32,
        /// CRC of its contents.
        computed: u32,
    },
    /// A frame version this build does not read.
    #[error("unsupported frame version {0} (this build reads version 1)")]
    Version(u8),
    /// A modality code this build does not know.
    #[error("unknown modality code {0}")]
    Modality(u8),
    /// A malformed field (bad varint, lengths that do not add up, trailing bytes …).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The frame was made with other model weights than the decoder holds.
    #[error(
        "frame was encoded with model {frame} but this decoder holds model {decoder}: decode with the same weights"
    )]
    ModelMismatch {
        /// Model id in the frame (hex).
        frame: String,
        /// Model id of the decoder (hex).
        decoder: String,
    },
    /// A telemetry stream coded with another dictionary than the decoder holds (or with one
    /// where it holds none, or the reverse).
    #[error(
        "the stream was coded with telemetry dictionary {stream} but this decoder holds {decoder}: decode with the same dictionary"
    )]
    DictionaryMismatch {
        /// Dictionary id the stream names (hex), or "none".
        stream: String,
        /// Dictionary id of the decoder (hex), or "none".
        decoder: String,
    },
    /// The frame carries another modality than the decoder decodes.
    #[error("frame carries {frame} but the decoder decodes {decoder}")]
    WrongModality {
        /// Modality in the frame.
        frame: &'static str,
        /// Modality of the decoder.
        decoder: &'static str,
    },
    /// The payload is not a valid code stream for this model (corrupt or truncated payload).
    #[error("payload does not decode: {0}")]
    Payload(String),
    /// A stream record that depends on records this decoder does not hold (lost or failed);
    /// decoding resumes at the stream's next resync point.
    #[error("stream out of step: {0}")]
    Desync(String),
    /// Bytes that decoding cannot do without were lost in transit (e.g. the slice table of a
    /// sliced image): send them at a more robust importance class.
    #[error("essential bytes lost: {0}")]
    Lost(String),
    /// A model file that cannot be used.
    #[error("model file {path}: {reason}")]
    Model {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Input that the codec cannot represent (not UTF-8 where text is required, not a record …).
    #[error("invalid input: {0}")]
    Input(String),
    /// A machine-learning backend error (training, loading weights).
    #[error("model backend: {0}")]
    Backend(String),
    /// An I/O error, with the file involved.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<candle_core::Error> for CodecError {
    fn from(e: candle_core::Error) -> Self {
        CodecError::Backend(e.to_string())
    }
}
