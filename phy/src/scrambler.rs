//! The 802.11a data scrambler, S(x) = x^7 + x^4 + 1.
//!
//! The state holds x1..x7 with x1 in bit 0; each step outputs x7 ⊕ x4 and shifts it in at x1.
//! Scrambling and descrambling are the same operation.

use crate::PhyError;

/// A 7-bit additive scrambler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scrambler {
    state: u8,
}

/// The generator's cycle from the all-ones state: the output bit at each position (two periods,
/// so any 127-bit window is contiguous), the state at each position, and each state's position.
struct Cycle {
    seq: [u8; 254],
    state_at: [u8; 127],
    offset_of: [u8; 128],
}

static CYCLE: Cycle = {
    let mut c = Cycle {
        seq: [0; 254],
        state_at: [0; 127],
        offset_of: [0; 128],
    };
    let mut s = 0x7fu8;
    let mut p = 0;
    while p < 127 {
        c.state_at[p] = s;
        c.offset_of[s as usize] = p as u8;
        let b = ((s >> 6) ^ (s >> 3)) & 1;
        c.seq[p] = b;
        c.seq[p + 127] = b;
        s = ((s << 1) | b) & 0x7f;
        p += 1;
    }
    c
};

impl Scrambler {
    /// A scrambler in state `seed` (x1 in bit 0). The state must be non-zero.
    pub fn new(seed: u8) -> Result<Self, PhyError> {
        if seed == 0 || seed > 0x7f {
            return Err(PhyError::ScramblerSeed { seed: seed.into() });
        }
        Ok(Self { state: seed })
    }

    /// A scrambler in the state given as the standard writes it: seven bits x1 … x7 left to right
    /// (Annex G's "1011101").
    pub fn from_x1_to_x7(bits: [u8; 7]) -> Result<Self, PhyError> {
        let seed = bits.iter().enumerate().fold(0u8, |acc, (i, &b)| acc | ((b & 1) << i));
        Self::new(seed)
    }

    /// The state after the receiver has seen the first seven scrambled SERVICE bits, which are
    /// zeros before scrambling: those seven bits are the scrambler's output, and they are also
    /// exactly what it has shifted into its register.
    pub fn from_first_outputs(bits: &[u8; 7]) -> Self {
        let mut s = 0u8;
        for &b in bits {
            s = ((s << 1) | (b & 1)) & 0x7f;
        }
        // A frame whose first 7 descrambled bits are all zero cannot come from a valid state;
        // use the all-ones state so a corrupt frame still yields a defined (wrong) result.
        Self {
            state: if s == 0 { 0x7f } else { s },
        }
    }

    /// Current state (x1 in bit 0).
    pub fn state(&self) -> u8 {
        self.state
    }

    /// Next sequence bit.
    #[inline]
    pub fn next_bit(&mut self) -> u8 {
        let b = ((self.state >> 6) ^ (self.state >> 3)) & 1;
        self.state = ((self.state << 1) | b) & 0x7f;
        b
    }

    /// XORs the sequence into `bits` (one bit per byte, values 0/1). The generator has a single
    /// 127-state cycle, so this is an XOR with a window of the precomputed cycle.
    pub fn apply(&mut self, bits: &mut [u8]) {
        let mut off = usize::from(CYCLE.offset_of[usize::from(self.state)]);
        for chunk in bits.chunks_mut(127) {
            let n = chunk.len();
            for (b, &k) in chunk.iter_mut().zip(&CYCLE.seq[off..off + n]) {
                *b ^= k;
            }
            off = (off + chunk.len()) % 127;
        }
        self.state = CYCLE.state_at[off];
    }
}

/// The pilot polarity sequence p_0 … p_126: the scrambler's output from the all-ones state,
/// with 0 → +1 and 1 → −1 (802.11a §17.3.5.9).
pub fn pilot_polarity() -> [i8; 127] {
    let mut s = Scrambler { state: 0x7f };
    let mut p = [0i8; 127];
    for v in &mut p {
        *v = if s.next_bit() == 0 { 1 } else { -1 };
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_ones_sequence_matches_standard() {
        // 802.11a §17.3.5.4: from the all-ones state the generator yields
        // 00001110 11110010 11001001 00000010 00100110 00101110 10110110 00001100 ...
        let want = "00001110111100101100100100000010001001100010111010110110000011001101";
        let mut s = Scrambler::new(0x7f).unwrap();
        let got: String = (0..want.len()).map(|_| char::from(b'0' + s.next_bit())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn period_is_127_and_table_matches_bitwise() {
        let mut s = Scrambler::new(0x5d).unwrap();
        let seq: Vec<u8> = (0..254).map(|_| s.next_bit()).collect();
        assert_eq!(&seq[..127], &seq[127..]);
        for seed in 1..128u8 {
            let mut a = Scrambler::new(seed).unwrap();
            let mut b = a;
            let mut bits = vec![0u8; 77];
            a.apply(&mut bits);
            let want: Vec<u8> = (0..77).map(|_| b.next_bit()).collect();
            assert_eq!(bits, want);
            assert_eq!(a, b);
        }
    }

    #[test]
    fn receiver_recovers_state_from_service_bits() {
        for seed in 1..128u8 {
            let mut tx = Scrambler::new(seed).unwrap();
            let first: [u8; 7] = std::array::from_fn(|_| tx.next_bit());
            let mut rx = Scrambler::from_first_outputs(&first);
            for _ in 0..50 {
                assert_eq!(rx.next_bit(), tx.next_bit());
            }
        }
    }

    #[test]
    fn polarity_starts_as_standard() {
        // 802.11a eq. (25): p_0..p_15 = 1,1,1,1, -1,-1,-1,1, -1,-1,-1,-1, 1,1,-1,1
        let p = pilot_polarity();
        assert_eq!(&p[..16], &[1, 1, 1, 1, -1, -1, -1, 1, -1, -1, -1, -1, 1, 1, -1, 1]);
        assert!(Scrambler::new(0).is_err());
        assert!(Scrambler::new(128).is_err());
    }
}
