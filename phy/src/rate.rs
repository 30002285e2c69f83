//! The eight legacy 802.11a data rates and the modulation and code rate behind each.

use crate::PhyError;

/// Constellation on each data subcarrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Modulation {
    /// 1 bit per subcarrier.
    Bpsk,
    /// 2 bits per subcarrier.
    Qpsk,
    /// 4 bits per subcarrier.
    Qam16,
    /// 6 bits per subcarrier.
    Qam64,
    /// 8 bits per subcarrier (802.11ac; semcom profile only).
    Qam256,
    /// 10 bits per subcarrier (802.11ax; semcom profile only).
    Qam1024,
}

impl Modulation {
    /// All constellations, smallest first.
    pub const ALL: [Modulation; 6] = [
        Self::Bpsk,
        Self::Qpsk,
        Self::Qam16,
        Self::Qam64,
        Self::Qam256,
        Self::Qam1024,
    ];

    /// The constellations of the 802.11a profile.
    pub const LEGACY: [Modulation; 4] = [Self::Bpsk, Self::Qpsk, Self::Qam16, Self::Qam64];

    /// Coded bits per subcarrier (N_BPSC).
    pub const fn bits_per_symbol(self) -> usize {
        match self {
            Self::Bpsk => 1,
            Self::Qpsk => 2,
            Self::Qam16 => 4,
            Self::Qam64 => 6,
            Self::Qam256 => 8,
            Self::Qam1024 => 10,
        }
    }

    /// Lower-case name (`bpsk`, `qpsk`, `16qam`, `64qam`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Bpsk => "bpsk",
            Self::Qpsk => "qpsk",
            Self::Qam16 => "16qam",
            Self::Qam64 => "64qam",
            Self::Qam256 => "256qam",
            Self::Qam1024 => "1024qam",
        }
    }

    /// Parses the names [`Modulation::name`] prints (case-insensitive; `qam16` also accepted).
    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "bpsk" => Some(Self::Bpsk),
            "qpsk" => Some(Self::Qpsk),
            "16qam" | "qam16" | "16-qam" => Some(Self::Qam16),
            "64qam" | "qam64" | "64-qam" => Some(Self::Qam64),
            "256qam" | "qam256" | "256-qam" => Some(Self::Qam256),
            "1024qam" | "qam1024" | "1024-qam" => Some(Self::Qam1024),
            _ => None,
        }
    }
}

/// Convolutional code rate after puncturing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeRate {
    /// The mother code, no puncturing.
    R1_2,
    /// Every fourth coded bit removed.
    R2_3,
    /// Two of every six coded bits removed.
    R3_4,
}

impl CodeRate {
    /// (numerator, denominator).
    pub const fn ratio(self) -> (usize, usize) {
        match self {
            Self::R1_2 => (1, 2),
            Self::R2_3 => (2, 3),
            Self::R3_4 => (3, 4),
        }
    }
}

/// One of the eight 802.11a/g OFDM rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rate {
    /// BPSK 1/2.
    R6,
    /// BPSK 3/4.
    R9,
    /// QPSK 1/2.
    R12,
    /// QPSK 3/4.
    R18,
    /// 16-QAM 1/2.
    R24,
    /// 16-QAM 3/4.
    R36,
    /// 64-QAM 2/3.
    R48,
    /// 64-QAM 3/4.
    R54,
}

impl Rate {
    /// All rates, most robust first.
    pub const ALL: [Rate; 8] = [
        Self::R6,
        Self::R9,
        Self::R12,
        Self::R18,
        Self::R24,
        Self::R36,
        Self::R48,
        Self::R54,
    ];

    /// The rate for a number of Mbit/s (20 MHz channel).
    pub fn from_mbps(mbps: u32) -> Result<Self, PhyError> {
        Self::ALL
            .into_iter()
            .find(|r| r.mbps() == mbps)
            .ok_or(PhyError::UnsupportedRate { mbps })
    }

    /// Data rate in Mbit/s for a 20 MHz channel.
    pub const fn mbps(self) -> u32 {
        match self {
            Self::R6 => 6,
            Self::R9 => 9,
            Self::R12 => 12,
            Self::R18 => 18,
            Self::R24 => 24,
            Self::R36 => 36,
            Self::R48 => 48,
            Self::R54 => 54,
        }
    }

    /// Subcarrier modulation.
    pub const fn modulation(self) -> Modulation {
        match self {
            Self::R6 | Self::R9 => Modulation::Bpsk,
            Self::R12 | Self::R18 => Modulation::Qpsk,
            Self::R24 | Self::R36 => Modulation::Qam16,
            Self::R48 | Self::R54 => Modulation::Qam64,
        }
    }

    /// Code rate after puncturing.
    pub const fn code_rate(self) -> CodeRate {
        match self {
            Self::R6 | Self::R12 | Self::R24 => CodeRate::R1_2,
            Self::R48 => CodeRate::R2_3,
            Self::R9 | Self::R18 | Self::R36 | Self::R54 => CodeRate::R3_4,
        }
    }

    /// Coded bits per subcarrier (N_BPSC).
    pub const fn n_bpsc(self) -> usize {
        self.modulation().bits_per_symbol()
    }

    /// Coded bits per OFDM symbol (N_CBPS).
    pub const fn n_cbps(self) -> usize {
        self.n_bpsc() * crate::ofdm::N_DATA
    }

    /// Data bits per OFDM symbol (N_DBPS).
    pub const fn n_dbps(self) -> usize {
        self.mbps() as usize * 4
    }

    /// The four RATE bits R1..R4 of the SIGNAL field, R1 in bit 3.
    pub const fn signal_bits(self) -> u8 {
        match self {
            Self::R6 => 0b1101,
            Self::R9 => 0b1111,
            Self::R12 => 0b0101,
            Self::R18 => 0b0111,
            Self::R24 => 0b1001,
            Self::R36 => 0b1011,
            Self::R48 => 0b0001,
            Self::R54 => 0b0011,
        }
    }

    /// Inverse of [`Rate::signal_bits`].
    pub fn from_signal_bits(bits: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.signal_bits() == bits)
    }

    /// Number of DATA OFDM symbols for a PSDU of `psdu_len` octets:
    /// SERVICE (16) + PSDU + tail (6), rounded up to whole symbols.
    pub const fn n_data_symbols(self, psdu_len: usize) -> usize {
        (16 + 8 * psdu_len + 6).div_ceil(self.n_dbps())
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} Mbit/s", self.mbps())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_17_parameters() {
        // IEEE 802.11a-1999 Table 78 (rate-dependent parameters).
        let expect = [
            (6, 1, 48, 24),
            (9, 1, 48, 36),
            (12, 2, 96, 48),
            (18, 2, 96, 72),
            (24, 4, 192, 96),
            (36, 4, 192, 144),
            (48, 6, 288, 192),
            (54, 6, 288, 216),
        ];
        for (r, (mbps, bpsc, cbps, dbps)) in Rate::ALL.into_iter().zip(expect) {
            assert_eq!((r.mbps(), r.n_bpsc(), r.n_cbps(), r.n_dbps()), (mbps, bpsc, cbps, dbps));
            let (k, n) = r.code_rate().ratio();
            assert_eq!(r.n_cbps() * k, r.n_dbps() * n);
            assert_eq!(Rate::from_signal_bits(r.signal_bits()), Some(r));
        }
        assert!(Rate::from_mbps(11).is_err());
    }
}
