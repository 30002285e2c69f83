//! # semcom-transport
//!
//! Links that move semcom frames: the PHY on a radio ([`radio::RadioLink`]), and the IQ sample
//! files (raw and SigMF) that radios record and play back.
//!
//! ```text
//!                      ┌─ soapy: SoapySDR device (feature `soapy`) ─┐
//!  PSDU ─► RadioLink ──┼─ file:  SigMF / raw IQ recording          ─┼──► RadioLink ─► frames,
//!          (PHY TX/RX) ├─ udp:   IQ datagrams to another process   ─┤    (PHY RX)     SNR, EVM, CFO
//!                      └─ sim:   channel model in memory           ─┘        │
//!                                                                            └─► recording (SigMF,
//!                                                                                 one annotation
//!                                                                                 per frame)
//! ```
//!
//! On top of the PHY, [`link`] carries whole items (semantic frames or classical payloads):
//! fragmentation, ChaCha20-Poly1305 with a replay window, reassembly, per-item outcomes.
//!
//! The `soapy` feature (off by default) links the system's SoapySDR library; everything else
//! is plain Rust.

pub mod emulator;
mod error;
pub mod iqfile;
pub mod link;
pub mod quic;
pub mod radio;
pub mod sigmf;

pub use error::TransportError;
pub use iqfile::{IqFormat, IqReader, IqWriter};
pub use link::{Item, ItemKind, ItemReport, Link, LinkError, LinkKey, Outcome};
pub use radio::{Radio, RadioLink};
