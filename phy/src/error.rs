//! The one error type of `semcom-phy`.

use thiserror::Error;

/// Everything that can go wrong in the PHY.
///
/// Input from outside (PSDU lengths, SIGNAL fields, samples) never panics: it ends here.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum PhyError {
    /// The PSDU length is outside what the SIGNAL field can announce.
    #[error("PSDU length {len} octets is out of range (1..={max})")]
    PsduLength {
        /// The rejected length in octets.
        len: usize,
        /// The largest length allowed.
        max: usize,
    },
    /// A data rate that 802.11a does not define.
    #[error("unsupported rate {mbps} Mbit/s (expected one of 6, 9, 12, 18, 24, 36, 48, 54)")]
    UnsupportedRate {
        /// The rejected rate in Mbit/s.
        mbps: u32,
    },
    /// A scrambler seed outside 1..=127 (the all-zero state never scrambles).
    #[error("scrambler seed {seed} is out of range (1..=127)")]
    ScramblerSeed {
        /// The rejected seed.
        seed: u32,
    },
    /// The SIGNAL field failed one of its checks.
    #[error("SIGNAL field rejected: {0}")]
    Signal(#[from] SignalError),
    /// A channel-model parameter that makes no sense (negative Doppler, NaN SNR, no taps …).
    #[error("invalid channel parameter `{name}`: {reason}")]
    ChannelParam {
        /// The parameter's name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A known-format reception setting that cannot be met (see [`crate::rx::KnownFormat`]).
    #[error("invalid known frame format: {reason}")]
    KnownFormat {
        /// What is wrong with it.
        reason: String,
    },
    /// A payload that the LDPC fitting of 802.11n 20.3.11.7.5 cannot place.
    #[error(
        "cannot fit {payload_bits} payload bits into LDPC codewords on {coded_bits_per_symbol}-bit symbols: {reason}"
    )]
    LdpcFit {
        /// Payload bits N_pld.
        payload_bits: usize,
        /// Coded bits per OFDM symbol N_CBPS.
        coded_bits_per_symbol: usize,
        /// Why.
        reason: String,
    },
    /// A semcom-profile PPDU that cannot be built (segment count, lengths, classes, duration).
    #[error("invalid semcom frame: {reason}")]
    SemcomFrame {
        /// What is wrong with it.
        reason: String,
    },
    /// A caller-provided buffer is too small.
    #[error("output buffer holds {got} samples but {needed} are needed")]
    BufferTooSmall {
        /// Samples needed.
        needed: usize,
        /// Samples available.
        got: usize,
    },
}

/// Why a decoded SIGNAL field was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalError {
    /// Even parity over the first 18 bits does not hold.
    #[error("parity check failed")]
    Parity,
    /// The RATE bits name none of the eight legacy rates.
    #[error("RATE bits {0:#06b} name no legacy rate")]
    Rate(u8),
    /// LENGTH is zero.
    #[error("LENGTH is zero")]
    ZeroLength,
    /// The six tail bits are not zero.
    #[error("tail bits are not zero")]
    Tail,
}
