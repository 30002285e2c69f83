//! The `semcom` PHY profile: 802.11n LDPC codes, constellations up to 1024-QAM and unequal
//! error protection, behind a preamble that 802.11a receivers understand.
//!
//! ```text
//!  L-STF  L-LTF  L-SIG           semcom header (QBPSK, BCC 1/2)      segment 0      segment 1 …
//!  ─────────────────────────────┬──────────────────────────────────┬──────────────┬──────────
//!  legacy, unchanged:           │ version, segments, code, analog, │ LDPC at its  │ LDPC at its
//!  RATE 6 Mbit/s, LENGTH spoofed│ scrambler seed; per segment MCS, │ own MCS,     │ own MCS
//!  to cover the whole PPDU      │ importance class, length; CRC-16 │ whole symbols│
//! ```
//!
//! **Legacy receivers defer**: L-SIG announces 6 Mbit/s and a LENGTH whose duration is exactly
//! the rest of the PPDU (the 802.11n mixed-format trick), so an 802.11a receiver stays off the
//! medium until the end and then drops the frame on its FCS.
//!
//! **Header**: 3 to 5 OFDM symbols (by segment count) of BPSK rate-1/2 convolutional code with
//! the 802.11a BPSK interleaver, rotated by 90° (QBPSK, as HT-SIG): a semcom receiver tells it
//! from 802.11a DATA by where the energy of the first two symbols lies, before decoding. Bits,
//! each field least significant bit first:
//!
//! | bits | field |
//! |------|-------|
//! | 2 | version (0) |
//! | 2 | segments − 1 (1 … 4) |
//! | 2 | code (0: IEEE 802.11n LDPC; other values refused) |
//! | 1 | analog payload (0 here; 1: an analog frame, below) |
//! | 7 | scrambler seed (1 … 127) |
//! | 19 per segment | modulation (3: BPSK … 1024-QAM), LDPC rate (2), importance class (2), length in octets (12) |
//! | 16 | CRC-16-CCITT (x^16 + x^12 + x^5 + 1, initial ones) of all the bits above |
//! | 6 | tail (zeros), then zero padding to whole symbols |
//!
//! **Segments** follow in header order, each starting on a new symbol: the octets (least
//! significant bit first) are scrambled with x^7 + x^4 + 1 from the header's seed (restarted
//! per segment, so each can be descrambled alone), fitted into LDPC codewords with the
//! shortening, puncturing and repetition of 802.11n ([`crate::ldpc::LdpcFit`], N_CBPS = 48 ×
//! bits per subcarrier), and mapped to the 48 data subcarriers in order, as 802.11n sends LDPC
//! without an interleaver. Pilots continue the 802.11a polarity sequence across the header
//! and the segments. A segment's last four octets are, by convention, its FCS (CRC-32), as in
//! a PSDU; the receiver reports each segment's verdict on its own.
//!
//! **Analog frames** ([`AnalogHeader`]) carry a caller's complex symbols (e.g. deep JSCC
//! channel symbols, unit average power) instead of coded bits: the same preamble, L-SIG and
//! 3-symbol QBPSK header, with the analog bit set, then the symbols straight on the 48 data
//! subcarriers of successive OFDM symbols (symbol i on data subcarrier i mod 48 of OFDM symbol
//! ⌊i / 48⌋, subcarriers in order −26 … 26; the last OFDM symbol padded with zeros), pilots as
//! for segments. Header bits: version (2, 0), segments − 1 (2, 0), code (2, 0), analog (1, 1),
//! reserved (7, zero), importance class (2), symbol count (17, 1 … [`MAX_ANALOG_SYMBOLS`]),
//! CRC-16 as above, tail. [`FrameHeader::from_bits`] parses either kind.

use crate::ldpc::{LdpcFit, LdpcRate};
use crate::ofdm::N_DATA;
use crate::rate::Modulation;
use crate::PhyError;
use thiserror::Error;

/// Segments one PPDU carries at most.
pub const MAX_SEGMENTS: usize = 4;
/// Largest segment, octets (the 12-bit length field).
pub const MAX_SEGMENT_LEN: usize = 4095;
/// Largest PPDU after L-SIG, OFDM symbols: L-SIG's LENGTH (≤ 4095 octets at 6 Mbit/s) must
/// cover it.
pub const MAX_SYMBOLS: usize = 1366;
/// Complex symbols an analog frame carries at most: the data symbols after a 3-symbol header
/// that L-SIG can cover.
pub const MAX_ANALOG_SYMBOLS: usize = (MAX_SYMBOLS - 3) * N_DATA;
/// Header bits before the per-segment fields.
const COMMON_BITS: usize = 14;
/// Header bits per segment.
const SEGMENT_BITS: usize = 19;
/// Data bits per header symbol (BPSK, rate 1/2, 48 subcarriers).
const HEADER_BITS_PER_SYMBOL: usize = 24;

/// Modulation and LDPC code rate of one segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mcs {
    /// Constellation on every data subcarrier.
    pub modulation: Modulation,
    /// LDPC code rate.
    pub rate: LdpcRate,
}

impl Mcs {
    /// A modulation and code rate.
    pub const fn new(modulation: Modulation, rate: LdpcRate) -> Self {
        Self { modulation, rate }
    }

    /// Every MCS, ordered by information bits per symbol (most robust first; ties, such as
    /// 16-QAM 3/4 and 64-QAM 1/2, smaller constellation first).
    pub fn all() -> Vec<Mcs> {
        let mut v: Vec<Mcs> = Modulation::ALL
            .into_iter()
            .flat_map(|m| LdpcRate::ALL.into_iter().map(move |r| Mcs::new(m, r)))
            .collect();
        v.sort_by(|a, b| a.info_bits_per_symbol().total_cmp(&b.info_bits_per_symbol()));
        v
    }

    /// Coded bits per OFDM symbol N_CBPS.
    pub const fn n_cbps(&self) -> usize {
        N_DATA * self.modulation.bits_per_symbol()
    }

    /// Information bits per OFDM symbol before shortening (N_CBPS · R).
    pub fn info_bits_per_symbol(&self) -> f64 {
        self.n_cbps() as f64 * self.rate.value()
    }

    /// Data rate at 20 MHz (4 µs symbols), Mbit/s.
    pub fn mbps(&self) -> f64 {
        self.info_bits_per_symbol() / 4.0
    }

    /// `qpsk-1/2`, `256qam-5/6` …
    pub fn name(&self) -> String {
        format!("{}-{}", self.modulation.name(), self.rate.name())
    }

    /// Parses [`Mcs::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        let (m, r) = s.trim().split_once('-')?;
        Some(Self::new(Modulation::from_name(m)?, LdpcRate::from_name(r)?))
    }

    fn modulation_code(&self) -> u8 {
        Modulation::ALL.iter().position(|&m| m == self.modulation).unwrap_or(0) as u8
    }

    fn rate_code(&self) -> u8 {
        LdpcRate::ALL.iter().position(|&r| r == self.rate).unwrap_or(0) as u8
    }
}

impl std::fmt::Display for Mcs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// One segment as the header announces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Its modulation and code rate.
    pub mcs: Mcs,
    /// Importance class, 0 … 3: opaque to the PHY, carried for the link layer and the codec.
    pub class: u8,
    /// Length in octets, 1 … 4095.
    pub length: usize,
}

impl SegmentInfo {
    /// The LDPC fitting of this segment (always succeeds for a valid segment).
    pub fn fit(&self) -> Result<LdpcFit, PhyError> {
        LdpcFit::new(8 * self.length, self.mcs.n_cbps(), self.mcs.rate)
    }
}

/// Why a semcom header was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// The CRC-16 does not hold.
    #[error("header CRC failed")]
    Crc,
    /// A version this receiver does not know.
    #[error("header version {0} is not supported")]
    Version(u8),
    /// A code other than 802.11n LDPC.
    #[error("code {0} is not supported (0: 802.11n LDPC)")]
    Code(u8),
    /// The modulation field names no constellation.
    #[error("modulation code {0} names no constellation")]
    Modulation(u8),
    /// A segment of length zero.
    #[error("segment {0} has length zero")]
    ZeroLength(usize),
    /// The scrambler seed is zero.
    #[error("scrambler seed is zero")]
    Seed,
    /// The analog-payload flag is set where a digital header was expected
    /// ([`SemcomHeader::from_bits`]; [`FrameHeader::from_bits`] takes both kinds).
    #[error("analog frame where a digital (segment) header was expected")]
    Analog,
    /// An analog header whose reserved fields (segments − 1, the seed's 7 bits) are not zero.
    #[error("analog header: reserved field {0} is not zero")]
    Reserved(u8),
    /// An analog header announcing no symbols, or more than a PPDU holds.
    #[error("analog header announces {0} symbols (1 … {MAX_ANALOG_SYMBOLS})", MAX_ANALOG_SYMBOLS = MAX_ANALOG_SYMBOLS)]
    AnalogSymbols(usize),
    /// The segments need more symbols than L-SIG's LENGTH covers.
    #[error("segments need {needed} symbols but L-SIG covers {covered}")]
    Duration {
        /// Symbols after L-SIG the header implies.
        needed: usize,
        /// Symbols after L-SIG that L-SIG announces.
        covered: usize,
    },
}

/// The contents of a semcom header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemcomHeader {
    /// The segments, 1 … 4, in transmission order.
    pub segments: Vec<SegmentInfo>,
    /// Scrambler state (1 … 127) every segment starts from.
    pub scrambler_seed: u8,
    /// The payload is analog (JSCC symbols). Never set by this crate's transmitter.
    pub analog: bool,
}

/// CRC-16-CCITT (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR) of a bit
/// string, one bit per byte, first bit first.
pub fn crc16_bits(bits: &[u8]) -> u16 {
    bits.iter().fold(0xffffu16, |crc, &b| {
        let top = ((crc >> 15) as u8 ^ (b & 1)) & 1;
        let crc = crc << 1;
        if top == 1 {
            crc ^ 0x1021
        } else {
            crc
        }
    })
}

fn put(bits: &mut Vec<u8>, value: usize, width: usize) {
    bits.extend((0..width).map(|i| ((value >> i) & 1) as u8));
}

fn get(bits: &[u8], at: &mut usize, width: usize) -> usize {
    let v = (0..width).fold(0usize, |acc, i| acc | (usize::from(bits[*at + i] & 1) << i));
    *at += width;
    v
}

impl SemcomHeader {
    /// A header for `segments`, checking counts, lengths, classes and the seed, and that the
    /// whole PPDU fits the L-SIG duration.
    pub fn new(segments: Vec<SegmentInfo>, scrambler_seed: u8) -> Result<Self, PhyError> {
        let bad = |reason: String| PhyError::SemcomFrame { reason };
        if segments.is_empty() || segments.len() > MAX_SEGMENTS {
            return Err(bad(format!("{} segments; 1 … {MAX_SEGMENTS} allowed", segments.len())));
        }
        for (i, s) in segments.iter().enumerate() {
            if s.length == 0 || s.length > MAX_SEGMENT_LEN {
                return Err(bad(format!(
                    "segment {i}: {} octets; 1 … {MAX_SEGMENT_LEN} allowed",
                    s.length
                )));
            }
            if s.class > 3 {
                return Err(bad(format!("segment {i}: importance class {}; 0 … 3 allowed", s.class)));
            }
        }
        if scrambler_seed == 0 || scrambler_seed > 127 {
            return Err(PhyError::ScramblerSeed {
                seed: scrambler_seed.into(),
            });
        }
        let h = Self {
            segments,
            scrambler_seed,
            analog: false,
        };
        let total = h.total_symbols()?;
        if total > MAX_SYMBOLS {
            return Err(bad(format!(
                "{total} symbols after L-SIG; L-SIG covers at most {MAX_SYMBOLS}"
            )));
        }
        Ok(h)
    }

    /// Header symbols for `segments` segments (3 … 5).
    pub const fn header_symbols(segments: usize) -> usize {
        (COMMON_BITS + SEGMENT_BITS * segments + 16 + 6).div_ceil(HEADER_BITS_PER_SYMBOL)
    }

    /// Header symbols of this header.
    pub fn n_header_symbols(&self) -> usize {
        Self::header_symbols(self.segments.len())
    }

    /// Position of the first tail bit (the convolutional code is terminated there).
    pub fn tail_at(segments: usize) -> usize {
        COMMON_BITS + SEGMENT_BITS * segments + 16
    }

    /// OFDM symbols of each segment.
    pub fn segment_symbols(&self) -> Result<Vec<usize>, PhyError> {
        self.segments.iter().map(|s| Ok(s.fit()?.n_sym)).collect()
    }

    /// Symbols after L-SIG: header and every segment.
    pub fn total_symbols(&self) -> Result<usize, PhyError> {
        Ok(self.n_header_symbols() + self.segment_symbols()?.iter().sum::<usize>())
    }

    /// The header's bits before the convolutional code: fields, CRC, tail and padding
    /// (24 per header symbol).
    pub fn to_bits(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_BITS_PER_SYMBOL * MAX_SEGMENTS + 24);
        put(&mut b, 0, 2);
        put(&mut b, self.segments.len() - 1, 2);
        put(&mut b, 0, 2);
        put(&mut b, usize::from(self.analog), 1);
        put(&mut b, usize::from(self.scrambler_seed), 7);
        for s in &self.segments {
            put(&mut b, usize::from(s.mcs.modulation_code()), 3);
            put(&mut b, usize::from(s.mcs.rate_code()), 2);
            put(&mut b, usize::from(s.class), 2);
            put(&mut b, s.length, 12);
        }
        let crc = crc16_bits(&b);
        put(&mut b, usize::from(crc), 16);
        b.resize(self.n_header_symbols() * HEADER_BITS_PER_SYMBOL, 0);
        b
    }

    /// The segment count a header's first bits announce (1 … 4); the rest of the header may
    /// still be refused.
    pub fn segments_announced(bits: &[u8]) -> Option<usize> {
        (bits.len() >= 4).then(|| get(bits, &mut 2, 2) + 1)
    }

    /// Parses decoded header bits (at least up to the CRC), checking the CRC and every field.
    pub fn from_bits(bits: &[u8]) -> Result<Self, HeaderError> {
        let n = Self::segments_announced(bits).ok_or(HeaderError::Crc)?;
        let crc_at = Self::tail_at(n) - 16;
        if bits.len() < crc_at + 16 {
            return Err(HeaderError::Crc);
        }
        if get(bits, &mut crc_at.clone(), 16) != usize::from(crc16_bits(&bits[..crc_at])) {
            return Err(HeaderError::Crc);
        }
        let mut at = 0;
        let version = get(bits, &mut at, 2) as u8;
        if version != 0 {
            return Err(HeaderError::Version(version));
        }
        at += 2;
        let code = get(bits, &mut at, 2) as u8;
        if code != 0 {
            return Err(HeaderError::Code(code));
        }
        let analog = get(bits, &mut at, 1) == 1;
        if analog {
            return Err(HeaderError::Analog);
        }
        let seed = get(bits, &mut at, 7) as u8;
        if seed == 0 {
            return Err(HeaderError::Seed);
        }
        let mut segments = Vec::with_capacity(n);
        for i in 0..n {
            let m = get(bits, &mut at, 3) as u8;
            let modulation = *Modulation::ALL.get(usize::from(m)).ok_or(HeaderError::Modulation(m))?;
            let rate = LdpcRate::ALL[get(bits, &mut at, 2)];
            let class = get(bits, &mut at, 2) as u8;
            let length = get(bits, &mut at, 12);
            if length == 0 {
                return Err(HeaderError::ZeroLength(i));
            }
            segments.push(SegmentInfo {
                mcs: Mcs::new(modulation, rate),
                class,
                length,
            });
        }
        Ok(Self {
            segments,
            scrambler_seed: seed,
            analog,
        })
    }
}

/// The header of an analog frame (see the module docs): how many complex symbols follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnalogHeader {
    /// Complex symbols carried, 1 … [`MAX_ANALOG_SYMBOLS`].
    pub symbols: usize,
    /// Importance class, 0 … 3: opaque to the PHY.
    pub class: u8,
    /// A 7-bit parameter of the analog codec (0 … 127), opaque to the PHY: the image codec sends
    /// its power-normalisation gain code here.
    pub param: u8,
}

/// Header symbols of an analog frame.
pub const ANALOG_HEADER_SYMBOLS: usize = SemcomHeader::header_symbols(1);

impl AnalogHeader {
    /// A header for `symbols` complex symbols of importance class `class`.
    pub fn new(symbols: usize, class: u8) -> Result<Self, PhyError> {
        let bad = |reason: String| PhyError::SemcomFrame { reason };
        if symbols == 0 || symbols > MAX_ANALOG_SYMBOLS {
            return Err(bad(format!(
                "analog frame of {symbols} symbols; 1 … {MAX_ANALOG_SYMBOLS} allowed"
            )));
        }
        if class > 3 {
            return Err(bad(format!("importance class {class}; 0 … 3 allowed")));
        }
        Ok(Self {
            symbols,
            class,
            param: 0,
        })
    }

    /// The same header with the codec parameter `param` (7 bits).
    pub fn with_param(self, param: u8) -> Result<Self, PhyError> {
        if param > 127 {
            return Err(PhyError::SemcomFrame {
                reason: format!("analog header parameter {param}; 0 … 127 allowed"),
            });
        }
        Ok(Self { param, ..self })
    }

    /// OFDM symbols the payload takes (48 complex symbols each, the last zero-padded).
    pub fn data_symbols(&self) -> usize {
        self.symbols.div_ceil(N_DATA)
    }

    /// Symbols after L-SIG: header and payload.
    pub fn total_symbols(&self) -> usize {
        ANALOG_HEADER_SYMBOLS + self.data_symbols()
    }

    /// The header's bits before the convolutional code (fields, CRC, tail, padding: 72).
    pub fn to_bits(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEADER_BITS_PER_SYMBOL * ANALOG_HEADER_SYMBOLS);
        put(&mut b, 0, 2);
        put(&mut b, 0, 2);
        put(&mut b, 0, 2);
        put(&mut b, 1, 1);
        put(&mut b, usize::from(self.param), 7);
        put(&mut b, usize::from(self.class), 2);
        put(&mut b, self.symbols, 17);
        let crc = crc16_bits(&b);
        put(&mut b, usize::from(crc), 16);
        b.resize(ANALOG_HEADER_SYMBOLS * HEADER_BITS_PER_SYMBOL, 0);
        b
    }
}

/// A semcom header of either kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameHeader {
    /// Coded segments.
    Digital(SemcomHeader),
    /// Analog symbols.
    Analog(AnalogHeader),
}

impl FrameHeader {
    /// Parses decoded header bits of either kind, checking the CRC and every field.
    pub fn from_bits(bits: &[u8]) -> Result<Self, HeaderError> {
        match SemcomHeader::from_bits(bits) {
            Err(HeaderError::Analog) => {}
            other => return other.map(FrameHeader::Digital),
        }
        // The CRC, version and code held and the analog bit is set; its segment-count field must
        // say one (the analog header has the one-segment layout).
        match SemcomHeader::segments_announced(bits) {
            Some(1) => {}
            n => return Err(HeaderError::Reserved(n.unwrap_or(0).saturating_sub(1) as u8)),
        }
        let mut at = 7;
        let param = get(bits, &mut at, 7) as u8;
        let class = get(bits, &mut at, 2) as u8;
        let symbols = get(bits, &mut at, 17);
        if symbols == 0 || symbols > MAX_ANALOG_SYMBOLS {
            return Err(HeaderError::AnalogSymbols(symbols));
        }
        Ok(FrameHeader::Analog(AnalogHeader { symbols, class, param }))
    }

    /// Symbols after L-SIG: header and payload.
    pub fn total_symbols(&self) -> Result<usize, PhyError> {
        match self {
            FrameHeader::Digital(h) => h.total_symbols(),
            FrameHeader::Analog(h) => Ok(h.total_symbols()),
        }
    }

    /// Header symbols.
    pub fn n_header_symbols(&self) -> usize {
        match self {
            FrameHeader::Digital(h) => h.n_header_symbols(),
            FrameHeader::Analog(_) => ANALOG_HEADER_SYMBOLS,
        }
    }
}

/// One segment to send: its octets (by convention ending in an FCS), MCS and importance class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The octets, 1 … 4095.
    pub payload: &'a [u8],
    /// Modulation and code rate.
    pub mcs: Mcs,
    /// Importance class, 0 … 3.
    pub class: u8,
}

/// The payload's bits, least significant bit of each octet first, scrambled from `seed`.
pub fn scrambled_bits(payload: &[u8], seed: crate::scrambler::Scrambler, out: &mut Vec<u8>) {
    out.clear();
    out.extend(payload.iter().flat_map(|&b| (0..8).map(move |j| (b >> j) & 1)));
    let mut s = seed;
    s.apply(out);
}

/// Link adaptation: the receiver's SNR estimate mapped to the fastest MCS that meets a target
/// error rate, from a table of the SNR each MCS needs. The table is measured, not guessed:
/// `semcom sim rates` bisects each MCS's PER curve through the whole PHY and prints it (JSON for
/// [`LinkAdaptation::new`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LinkAdaptation {
    /// (MCS, SNR in dB it needs), fastest first.
    table: Vec<(Mcs, f64)>,
}

impl LinkAdaptation {
    /// A table of (MCS, required per-sample SNR in dB). Entries with a non-finite SNR (never
    /// met in the measured range) are dropped; an MCS that is slower than another needing no
    /// more SNR is never chosen.
    pub fn new(mut table: Vec<(Mcs, f64)>) -> Self {
        table.retain(|(_, snr)| snr.is_finite());
        table.sort_by(|a, b| b.0.info_bits_per_symbol().total_cmp(&a.0.info_bits_per_symbol()));
        Self { table }
    }

    /// The table measured for PER ≤ 10 % with 1000-octet payloads over AWGN (one segment,
    /// 200 frames per SNR, bisection to 0.25 dB), by
    /// `semcom sim rates -n 200 --target-per 0.1 --json` (seed 1). Below about 0 dB the
    /// preamble and header, not the code, limit every MCS.
    pub fn awgn_per_10() -> Self {
        const TABLE: [(&str, f64); 24] = [
            ("bpsk-1/2", 0.08),
            ("bpsk-2/3", 0.08),
            ("bpsk-3/4", 0.86),
            ("bpsk-5/6", 1.84),
            ("qpsk-1/2", 1.05),
            ("qpsk-2/3", 3.01),
            ("qpsk-3/4", 3.79),
            ("qpsk-5/6", 4.96),
            ("16qam-1/2", 6.33),
            ("16qam-2/3", 8.87),
            ("16qam-3/4", 10.04),
            ("64qam-1/2", 11.41),
            ("16qam-5/6", 11.21),
            ("64qam-2/3", 13.95),
            ("256qam-1/2", 15.31),
            ("64qam-3/4", 15.31),
            ("64qam-5/6", 16.88),
            ("1024qam-1/2", 19.22),
            ("256qam-2/3", 19.02),
            ("256qam-3/4", 20.59),
            ("256qam-5/6", 22.54),
            ("1024qam-2/3", 23.52),
            ("1024qam-3/4", 25.47),
            ("1024qam-5/6", 27.81),
        ];
        Self::new(
            TABLE
                .iter()
                .filter_map(|&(name, snr)| Mcs::from_name(name).map(|m| (m, snr)))
                .collect(),
        )
    }

    /// The fastest MCS whose required SNR is at most `snr_db − margin_db`; `None` when even the
    /// most robust one needs more.
    pub fn select(&self, snr_db: f64, margin_db: f64) -> Option<Mcs> {
        self.table
            .iter()
            .find(|(_, need)| *need <= snr_db - margin_db)
            .map(|(m, _)| *m)
    }

    /// The table, fastest first.
    pub fn table(&self) -> &[(Mcs, f64)] {
        &self.table
    }
}

/// The L-SIG LENGTH (octets at 6 Mbit/s) whose DATA duration is exactly `symbols` OFDM
/// symbols (N ≥ 2; a semcom PPDU has at least three): ⌈(16 + 8·L + 6) / 24⌉ = N for L = 3N − 3.
pub fn lsig_length(symbols: usize) -> usize {
    (3 * symbols).saturating_sub(3).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::Rate;

    fn header(n: usize) -> SemcomHeader {
        let segments = (0..n)
            .map(|i| SegmentInfo {
                mcs: Mcs::all()[(i * 7 + 3) % 24],
                class: (i % 4) as u8,
                length: 100 + 900 * i,
            })
            .collect();
        SemcomHeader::new(segments, 93).unwrap()
    }

    #[test]
    fn crc16_known_answer() {
        // CRC-16/CCITT-FALSE of "123456789" is 0x29B1 (bits of each octet, MSB first).
        let bits: Vec<u8> = b"123456789"
            .iter()
            .flat_map(|&c| (0..8).rev().map(move |i| (c >> i) & 1))
            .collect();
        assert_eq!(crc16_bits(&bits), 0x29b1);
    }

    #[test]
    fn header_round_trips_and_every_single_bit_error_is_caught() {
        for n in 1..=MAX_SEGMENTS {
            let h = header(n);
            let bits = h.to_bits();
            assert_eq!(bits.len(), 24 * SemcomHeader::header_symbols(n));
            assert!(bits[SemcomHeader::tail_at(n)..].iter().all(|&b| b == 0), "tail and pad");
            assert_eq!(SemcomHeader::from_bits(&bits), Ok(h.clone()));
            for i in 0..SemcomHeader::tail_at(n) {
                let mut bad = bits.clone();
                bad[i] ^= 1;
                assert!(SemcomHeader::from_bits(&bad).is_err(), "{n} segments, bit {i}");
            }
        }
        assert_eq!(
            (1..=4).map(SemcomHeader::header_symbols).collect::<Vec<_>>(),
            [3, 4, 4, 5]
        );
    }

    #[test]
    fn invalid_headers_are_refused_with_a_reason() {
        let seg = SegmentInfo {
            mcs: Mcs::from_name("qpsk-1/2").unwrap(),
            class: 0,
            length: 10,
        };
        assert!(SemcomHeader::new(vec![], 1).is_err());
        assert!(SemcomHeader::new(vec![seg; 5], 1).is_err());
        assert!(SemcomHeader::new(vec![SegmentInfo { length: 0, ..seg }], 1).is_err());
        assert!(SemcomHeader::new(vec![SegmentInfo { length: 4096, ..seg }], 1).is_err());
        assert!(SemcomHeader::new(vec![SegmentInfo { class: 4, ..seg }], 1).is_err());
        assert!(SemcomHeader::new(vec![seg], 0).is_err());
        // Four full-length BPSK 1/2 segments need far more than L-SIG can cover.
        let long = SegmentInfo {
            mcs: Mcs::from_name("bpsk-1/2").unwrap(),
            length: 4095,
            ..seg
        };
        assert!(SemcomHeader::new(vec![long; 4], 1).is_err());
        // Analog flag and unknown fields, with a valid CRC.
        let mut h = SemcomHeader::new(vec![seg], 5).unwrap();
        h.analog = true;
        assert_eq!(SemcomHeader::from_bits(&h.to_bits()), Err(HeaderError::Analog));
        let mut bits = SemcomHeader::new(vec![seg], 5).unwrap().to_bits();
        bits[14] = 1; // modulation code 0b111... made 7 below
        bits[15] = 1;
        bits[16] = 1;
        let crc_at = SemcomHeader::tail_at(1) - 16;
        let crc = crc16_bits(&bits[..crc_at]);
        for i in 0..16 {
            bits[crc_at + i] = ((crc >> i) & 1) as u8;
        }
        assert_eq!(SemcomHeader::from_bits(&bits), Err(HeaderError::Modulation(7)));
    }

    /// Recomputes the CRC of a one-segment-layout header after its fields were edited.
    fn recrc(bits: &mut [u8]) {
        let crc_at = SemcomHeader::tail_at(1) - 16;
        let crc = crc16_bits(&bits[..crc_at]);
        for i in 0..16 {
            bits[crc_at + i] = ((crc >> i) & 1) as u8;
        }
    }

    #[test]
    fn analog_header_round_trips_and_bad_ones_are_refused() {
        for (n, class) in [(1, 0), (48, 1), (18_432, 2), (MAX_ANALOG_SYMBOLS, 3)] {
            let h = AnalogHeader::new(n, class).unwrap();
            let bits = h.to_bits();
            assert_eq!(bits.len(), 24 * ANALOG_HEADER_SYMBOLS);
            assert_eq!(FrameHeader::from_bits(&bits), Ok(FrameHeader::Analog(h)));
            // A digital-only parser refuses it by name.
            assert_eq!(SemcomHeader::from_bits(&bits), Err(HeaderError::Analog));
            assert_eq!(h.total_symbols(), 3 + n.div_ceil(48));
            assert!(h.total_symbols() <= MAX_SYMBOLS);
            for i in 0..SemcomHeader::tail_at(1) {
                let mut bad = bits.clone();
                bad[i] ^= 1;
                assert!(FrameHeader::from_bits(&bad).is_err(), "{n} symbols, bit {i}");
            }
        }
        assert!(AnalogHeader::new(0, 0).is_err());
        assert!(AnalogHeader::new(MAX_ANALOG_SYMBOLS + 1, 0).is_err());
        assert!(AnalogHeader::new(10, 4).is_err());
        let good = AnalogHeader::new(100, 0).unwrap().to_bits();
        // The codec parameter travels; a symbol count of zero or past the limit, a segment
        // count ≠ 1: refused even with a valid CRC.
        let p = AnalogHeader::new(100, 1).unwrap().with_param(93).unwrap();
        assert_eq!(FrameHeader::from_bits(&p.to_bits()), Ok(FrameHeader::Analog(p)));
        assert!(AnalogHeader::new(100, 1).unwrap().with_param(128).is_err());
        let mut b = good.clone();
        b[16..33].fill(0);
        recrc(&mut b);
        assert_eq!(FrameHeader::from_bits(&b), Err(HeaderError::AnalogSymbols(0)));
        let mut b = good.clone();
        b[16..33].fill(1);
        recrc(&mut b);
        assert_eq!(
            FrameHeader::from_bits(&b),
            Err(HeaderError::AnalogSymbols((1 << 17) - 1))
        );
        // Digital headers still parse through the common entry point.
        let d = header(2);
        assert_eq!(FrameHeader::from_bits(&d.to_bits()), Ok(FrameHeader::Digital(d)));
        assert_eq!(FrameHeader::from_bits(&good[..20]), Err(HeaderError::Crc));
    }

    #[test]
    fn lsig_duration_covers_exactly_the_symbols() {
        for n in 2..=MAX_SYMBOLS {
            let len = lsig_length(n);
            assert!(len <= crate::signal::MAX_PSDU_LEN);
            assert_eq!(Rate::R6.n_data_symbols(len), n, "{n} symbols");
        }
    }

    #[test]
    fn link_adaptation_picks_the_fastest_mcs_that_fits() {
        let m = |s| Mcs::from_name(s).unwrap();
        let la = LinkAdaptation::new(vec![
            (m("qpsk-1/2"), 2.0),
            (m("16qam-1/2"), 8.0),
            (m("64qam-3/4"), 15.0),
            (m("256qam-5/6"), f64::NAN),
        ]);
        assert_eq!(la.select(1.0, 0.0), None);
        assert_eq!(la.select(2.0, 0.0), Some(m("qpsk-1/2")));
        assert_eq!(la.select(9.0, 0.0), Some(m("16qam-1/2")));
        assert_eq!(la.select(9.0, 1.5), Some(m("qpsk-1/2")));
        assert_eq!(la.select(40.0, 0.0), Some(m("64qam-3/4")));
        assert_eq!(la.table().len(), 3);
        // The shipped, measured table covers every MCS and rises with the rate overall.
        let t = LinkAdaptation::awgn_per_10();
        assert_eq!(t.table().len(), 24);
        assert_eq!(t.select(30.0, 0.0), Some(m("1024qam-5/6")));
        assert_eq!(t.select(3.0, 0.0), Some(m("qpsk-1/2")));
        assert_eq!(t.select(-3.0, 0.0), None);
    }

    #[test]
    fn mcs_names_and_order() {
        let all = Mcs::all();
        assert_eq!(all.len(), 24);
        assert_eq!(all[0].name(), "bpsk-1/2");
        assert_eq!(all[23].name(), "1024qam-5/6");
        for m in &all {
            assert_eq!(Mcs::from_name(&m.name()), Some(*m));
        }
        assert!((Mcs::from_name("256qam-5/6").unwrap().mbps() - 80.0).abs() < 1e-9);
        assert!(Mcs::from_name("8psk-1/2").is_none());
    }
}
