//! Item links: whole items (a semantic frame, or a classical payload) in, items out, each with
//! its outcome, over any carrier.
//!
//! ```text
//!  Item ─► fragment (≤ max bytes, one importance class each) ─► inner frame ─► seal (AEAD)
//!       ─► link frame ─► PHY (class → MCS) ─► radio ─► PHY RX ─► open (key id, replay window,
//!       tag) ─► reassemble (timeout) ─► ItemReport: delivered / partial (holes) / lost
//! ```
//!
//! - [`frame`]: the link frame format, fragmentation and reassembly.
//! - [`crypto`]: ChaCha20-Poly1305 under a pre-shared key, nonces, the replay window, counters.
//! - [`radio`]: [`RadioItemLink`], the [`Link`] over a [`crate::RadioLink`] and any radio.
//! - [`fallback`]: [`fallback::FallbackLink`], radio first, QUIC when the radio fails.
//!
//! The QUIC link is [`crate::quic::QuicClient`] (sender) and [`crate::quic::QuicServer`].

pub mod crypto;
pub mod fallback;
pub mod frame;
pub mod gaps;
pub mod radio;

pub use crypto::{LinkKey, Opener, Sealer, SecurityCounters};
pub use frame::{Fragment, Reassembler, ReassemblyCounters, ReceivedItem};
pub use radio::{PhyMode, RadioItemLink, RadioItemLinkConfig};

use thiserror::Error;

/// What an item carries, so the receiver knows how to decode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// A `SemanticFrame` (semcom-codec).
    Semantic,
    /// The item's bytes as they are.
    Raw,
    /// The item compressed with zstd.
    Zstd,
}

impl ItemKind {
    /// Wire code (4 bits).
    pub const fn code(self) -> u8 {
        match self {
            Self::Semantic => 0,
            Self::Raw => 1,
            Self::Zstd => 2,
        }
    }

    /// Inverse of [`ItemKind::code`].
    pub fn from_code(c: u8) -> Option<Self> {
        [Self::Semantic, Self::Raw, Self::Zstd]
            .into_iter()
            .find(|k| k.code() == c)
    }

    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Semantic => "semantic",
            Self::Raw => "raw",
            Self::Zstd => "zstd",
        }
    }
}

/// One item to send: its bytes, and the importance class of each run of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// What the bytes are.
    pub kind: ItemKind,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Consecutive runs (class 0 … 3, bytes) covering `bytes`.
    runs: Vec<(u8, usize)>,
}

impl Item {
    /// An item whose bytes are all of class 0 (most important).
    pub fn new(kind: ItemKind, bytes: Vec<u8>) -> Self {
        let runs = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![(0, bytes.len())]
        };
        Self { kind, bytes, runs }
    }

    /// Sets the importance classes: consecutive (class, bytes) runs. Runs are clamped to the
    /// item's length and classes to 0 … 3; bytes past the last run are of the last run's class
    /// (class 0 when there is none).
    pub fn with_classes(mut self, runs: Vec<(u8, usize)>) -> Self {
        let mut out = Vec::new();
        let mut at = 0;
        for (c, len) in runs {
            let len = len.min(self.bytes.len() - at);
            if len > 0 {
                out.push((c.min(frame::CLASSES - 1), len));
                at += len;
            }
        }
        if at < self.bytes.len() {
            let c = out.last().map_or(0, |r: &(u8, usize)| r.0);
            out.push((c, self.bytes.len() - at));
        }
        self.runs = out;
        self
    }

    /// The (class, bytes) runs.
    pub fn class_runs(&self) -> &[(u8, usize)] {
        &self.runs
    }
}

/// What became of one item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every byte arrived and authenticated.
    Delivered(Vec<u8>),
    /// Some fragments arrived, others did not (`None`): a codec may conceal the holes.
    Partial(Vec<Option<Vec<u8>>>),
    /// Nothing of the item arrived (a later item did, or the sender reported it failed).
    Lost,
}

impl Outcome {
    /// Short name: `delivered`, `partial`, `lost`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Delivered(_) => "delivered",
            Self::Partial(_) => "partial",
            Self::Lost => "lost",
        }
    }
}

/// One item's outcome at the receiver.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemReport {
    /// Sender's session.
    pub session: u64,
    /// Item id.
    pub id: u16,
    /// What it is, when anything of it arrived.
    pub kind: Option<ItemKind>,
    /// What arrived.
    pub outcome: Outcome,
    /// From the start of its transmission to its completion, µs, when the link knows both
    /// ends' clocks (a loop-back or simulated link).
    pub latency_us: Option<f64>,
    /// Mean SNR estimate of its frames, dB, where the carrier measures it.
    pub snr_db: Option<f32>,
    /// Mean EVM of its frames, dB, where the carrier measures it.
    pub evm_db: Option<f32>,
}

/// What sending an item cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SendReport {
    /// Its id.
    pub id: u16,
    /// Frames (PPDUs, datagrams, streams) used.
    pub frames: usize,
    /// Bytes put on the carrier (link frames, headers and tags included).
    pub wire_bytes: usize,
    /// Time on the air, µs (0 where the carrier has no notion of it).
    pub airtime_us: f64,
}

/// Counters of an item link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ItemLinkStats {
    /// Items sent.
    pub items_sent: u64,
    /// Link frames sent.
    pub frames_sent: u64,
    /// Bytes put on the carrier.
    pub wire_bytes: u64,
    /// Time on the air, µs.
    pub airtime_us: f64,
    /// Carrier frames received whose integrity check (FCS) failed.
    pub carrier_errors: u64,
    /// What security refused and accepted.
    pub security: SecurityCounters,
    /// Reassembly counters.
    pub reassembly: ReassemblyCounters,
    /// Items delivered whole.
    pub delivered: u64,
    /// Items delivered with fragments missing.
    pub partial: u64,
    /// Items of which nothing arrived.
    pub lost: u64,
}

/// A carrier of whole items.
pub trait Link {
    /// Sends one item.
    fn send(&mut self, item: &Item) -> Result<SendReport, LinkError>;
    /// Handles what has arrived so far; returns the items finished since the last call.
    fn poll(&mut self) -> Result<Vec<ItemReport>, LinkError>;
    /// Ends the exchange: receives what is still in flight and gives up incomplete items.
    fn finish(&mut self) -> Result<Vec<ItemReport>, LinkError>;
    /// Counters so far.
    fn stats(&self) -> ItemLinkStats;
}

/// Errors of item links. Refused frames are errors of [`Opener::open`] and the like, counted
/// in [`ItemLinkStats`]; they never end a link.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A frame that is not a link frame.
    #[error("malformed link frame: {0}")]
    Malformed(String),
    /// A frame sealed under another key (or sealed when this end has none).
    #[error("frame under key {frame:04x}, {}", match ours { Some(k) => format!("this link's key is {k:04x}"), None => "this link is insecure (no key)".into() })]
    WrongKey {
        /// The frame's key id.
        frame: u16,
        /// This end's key id.
        ours: Option<u16>,
    },
    /// A frame under this link's key whose tag does not verify.
    #[error("frame failed authentication (changed in flight or forged)")]
    Tampered,
    /// A frame already received, older than the replay window, or of a retired session.
    #[error("replayed frame (session {session:016x}, counter {counter})")]
    Replayed {
        /// Session id.
        session: u64,
        /// Frame counter.
        counter: u32,
    },
    /// An unsealed frame on a link that requires security.
    #[error("unsealed frame refused: this link requires authentication (the sender runs --insecure?)")]
    Unauthenticated,
    /// An item larger than the link carries.
    #[error("item of {bytes} bytes; at most {max}")]
    ItemTooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The sender's frame counter would wrap: start a new session.
    #[error("frame counter exhausted for this session; start a new one")]
    CounterExhausted,
    /// The AEAD refused to seal (cannot happen with valid lengths).
    #[error("encryption failed")]
    Crypto,
    /// A key that cannot be read or derived.
    #[error("link key: {0}")]
    Key(String),
    /// QUIC: connection, handshake (e.g. a certificate other than the pinned one), stream.
    #[error("quic: {0}")]
    Quic(String),
    /// The carrier failed.
    #[error(transparent)]
    Transport(#[from] crate::TransportError),
    /// A PHY parameter the carrier refuses.
    #[error(transparent)]
    Phy(#[from] semcom_phy::PhyError),
}
