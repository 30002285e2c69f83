//! The one error type of `semcom-transport`.

use std::path::PathBuf;
use thiserror::Error;

/// Everything that can go wrong moving samples or frames. Each variant names the file, device
/// or position involved.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// An operating-system I/O error on a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no samples.
    #[error("{path}: file is empty (no IQ samples)")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file's size is not a whole number of samples.
    #[error("{path}: {bytes} bytes is not a whole number of {format} samples ({sample_bytes} bytes each): the file is truncated or not {format}")]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        bytes: u64,
        /// The sample format.
        format: &'static str,
        /// Bytes per complex sample.
        sample_bytes: usize,
    },
    /// A sample is NaN or infinite.
    #[error("{path}: sample {sample} (byte offset {byte_offset}) is not a finite number")]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// Index of the sample.
        sample: u64,
        /// Its byte offset in the data file.
        byte_offset: u64,
    },
    /// A SigMF or raw datatype this crate does not read or write.
    #[error("{path}: unsupported sample format `{datatype}` (supported: cf32_le, ci16_le, cu8, ci8)")]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
        /// The format as written.
        datatype: String,
    },
    /// A SigMF metadata file that is not valid.
    #[error("{path}: invalid SigMF metadata: {reason}")]
    SigmfMeta {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl TransportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
