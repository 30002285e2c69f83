//! # semcom-phy
//!
//! The OFDM physical layer of semcom, sans-IO: no files, sockets, threads or devices. Bits go in,
//! complex baseband samples (20 MS/s, 802.11a numerology) come out, and back.
//!
//! ```text
//!  PSDU ─► Transmitter ─► [Complex32] ─► channel::* (optional) ─► Receiver::push ─► RxEvent
//!          scramble, K=7 code, puncture,     AWGN, CFO, timing,      detect (L-STF), CFO,
//!          interleave, map, pilots, IFFT,    phase noise, taps,      timing (L-LTF), channel
//!          CP, window, L-STF/L-LTF/SIGNAL    fading                  estimate, SIGNAL, DATA:
//!                                                                    LLRs ─► soft Viterbi ─► FCS
//! ```
//!
//! Two profiles share the preamble, synchronisation and channel estimation:
//! - IEEE 802.11a-1999 (clause 17) / 802.11g ERP-OFDM: eight rates from 6 to 54 Mbit/s,
//!   bit-exact with the standard's Annex G example;
//! - `semcom` ([`semcom`]): a QBPSK header after the legacy L-SIG, then up to four segments at
//!   their own MCS (BPSK … 1024-QAM, 802.11n LDPC codes of [`ldpc`]) for unequal error
//!   protection. The receiver tells the two apart per frame.
//!
//! **SNR definition** used everywhere in this crate: the mean power per sample of the
//! transmitted burst (preamble to last DATA sample, channel gain normalised to unit average
//! power), divided by the complex noise power per sample in the full 20 MHz band. Per-subcarrier
//! SNR is 10·log10(64/52) ≈ 0.9 dB higher.

pub mod channel;
pub mod convcode;
pub mod crc;
mod error;
pub mod interleaver;
pub mod ldpc;
pub mod mapping;
pub mod ofdm;
pub mod preamble;
pub mod rate;
pub mod rx;
pub mod scrambler;
pub mod semcom;
pub mod signal;
pub mod sim;
pub mod theory;
pub mod tx;
pub mod viterbi;

pub use error::{PhyError, SignalError};
pub use num_complex::Complex32;
pub use rate::{CodeRate, Modulation, Rate};
pub use rx::{Receiver, RxConfig, RxEvent, RxFrame};
pub use tx::{Transmitter, TxParams};
