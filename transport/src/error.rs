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
    /// The PHY refused a frame (length, rate).
    #[error(transparent)]
    Phy(#[from] semcom_phy::PhyError),
    /// No SoapySDR device matches the arguments.
    #[error("no SoapySDR device matches `{args}`; {}", list_or_none("devices found", available))]
    NoDevice {
        /// The device arguments given.
        args: String,
        /// Every device SoapySDR enumerates, as argument strings.
        available: Vec<String>,
    },
    /// Several SoapySDR devices match the arguments.
    #[error("{} SoapySDR devices match `{args}`; add a key (serial=…, name=…) to pick one: {}", matches.len(), matches.join(" | "))]
    AmbiguousDevice {
        /// The device arguments given.
        args: String,
        /// The matching devices, as argument strings.
        matches: Vec<String>,
    },
    /// A setting the device does not support (sample rate, frequency, gain, antenna, channel,
    /// bandwidth, stream format), with what it does support.
    #[error("{device}: {what}")]
    Unsupported {
        /// The device (arguments or address).
        device: String,
        /// The setting and the supported values.
        what: String,
    },
    /// A device call failed (opening, configuring, starting a stream).
    #[error("{device}: {op} failed: {message}")]
    Device {
        /// The device.
        device: String,
        /// The operation.
        op: String,
        /// The driver's message.
        message: String,
    },
    /// A device stopped streaming (unplugged, powered off, driver failure).
    #[error("{device}: the device stopped streaming after {samples} samples ({reason}); was it unplugged?")]
    DeviceLost {
        /// The device.
        device: String,
        /// Samples streamed before it was lost.
        samples: u64,
        /// The last error or symptom.
        reason: String,
    },
    /// A socket error.
    #[error("udp {addr}: {source}")]
    Socket {
        /// The local or remote address.
        addr: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// An address that cannot be used (`HOST:PORT` expected).
    #[error("`{addr}`: {reason}")]
    Address {
        /// The address as written.
        addr: String,
        /// What is wrong.
        reason: String,
    },
    /// A stream whose parameters differ from the ones configured (e.g. its sample rate).
    #[error("{source_name}: {reason}")]
    StreamMismatch {
        /// The stream (address, file).
        source_name: String,
        /// What differs.
        reason: String,
    },
    /// The radio cannot do this (transmit on a receive-only radio, or the reverse).
    #[error("{radio}: {reason}")]
    NotSupported {
        /// The radio.
        radio: String,
        /// What it cannot do.
        reason: String,
    },
}

fn list_or_none(what: &str, v: &[String]) -> String {
    if v.is_empty() {
        "SoapySDR finds no device at all (are the driver module and the device present? `SoapySDRUtil --find` lists them)".into()
    } else {
        format!("{what}: {}", v.join(" | "))
    }
}

impl TransportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
