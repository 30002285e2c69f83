//! # semcom-transport
//!
//! Links that move semcom frames. Today: IQ sample files, raw and SigMF, which the radio
//! backends and the command-line tools read and write.
//!
//! ```text
//!  file.cf32 / .cs16 / .cu8 / .cs8 ──┐                 ┌──► Receiver::push (semcom-phy)
//!  file.sigmf-meta + .sigmf-data ────┼──► IqReader ────┘
//!  stdin ("-", cf32) ────────────────┘
//!  Transmitter (semcom-phy) ──► IqWriter ──► raw file / SigMF pair / stdout
//! ```

mod error;
pub mod iqfile;
pub mod sigmf;

pub use error::TransportError;
pub use iqfile::{IqFormat, IqReader, IqWriter};
