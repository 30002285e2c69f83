//! The 802.11a block interleaver (two permutations per OFDM symbol, §17.3.5.6).

/// Interleaving table for one (N_CBPS, N_BPSC) pair, built once.
#[derive(Clone, Debug)]
pub struct Interleaver {
    /// `perm[k]` = position j of input bit k in the interleaved symbol.
    perm: Vec<u16>,
}

impl Interleaver {
    /// The table for `n_cbps` coded bits per symbol and `n_bpsc` bits per subcarrier.
    pub fn new(n_cbps: usize, n_bpsc: usize) -> Self {
        let s = (n_bpsc / 2).max(1);
        let perm = (0..n_cbps)
            .map(|k| {
                let i = (n_cbps / 16) * (k % 16) + k / 16;
                let j = s * (i / s) + (i + n_cbps - (16 * i / n_cbps)) % s;
                j as u16
            })
            .collect();
        Self { perm }
    }

    /// Bits per symbol.
    pub fn len(&self) -> usize {
        self.perm.len()
    }

    /// Always false: a table covers at least one subcarrier.
    pub fn is_empty(&self) -> bool {
        self.perm.is_empty()
    }

    /// Output position of input bit `k`.
    pub fn position(&self, k: usize) -> usize {
        self.perm[k] as usize
    }

    /// Interleaves one symbol: `out[perm[k]] = input[k]`.
    pub fn interleave<T: Copy>(&self, input: &[T], out: &mut [T]) {
        for (&p, &v) in self.perm.iter().zip(input) {
            out[p as usize] = v;
        }
    }

    /// Deinterleaves one symbol: `out[k] = input[perm[k]]`.
    pub fn deinterleave<T: Copy>(&self, input: &[T], out: &mut [T]) {
        for (o, &p) in out.iter_mut().zip(&self.perm) {
            *o = input[p as usize];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_a_permutation_for_every_modulation() {
        for (cbps, bpsc) in [(48, 1), (96, 2), (192, 4), (288, 6)] {
            let il = Interleaver::new(cbps, bpsc);
            let mut seen = vec![false; cbps];
            for k in 0..cbps {
                assert!(!seen[il.position(k)]);
                seen[il.position(k)] = true;
            }
            let x: Vec<u16> = (0..cbps as u16).collect();
            let (mut y, mut z) = (vec![0; cbps], vec![0; cbps]);
            il.interleave(&x, &mut y);
            il.deinterleave(&y, &mut z);
            assert_eq!(x, z);
        }
    }
}
