//! Byte-level BPE: subwords learned from the training text, so a message is a few dozen tokens
//! rather than a hundred bytes (faster to code, and a longer effective context for the prior).
//!
//! Text is first cut into chunks (a letter run with an optional leading space, a single digit, a
//! run of other printable bytes, a run of whitespace, a single other byte); merges never cross a
//! chunk. Digits stay single tokens: numbers in logs and telemetry are mostly noise, which the
//! prior models best digit by digit. Any byte string tokenises (bytes are tokens), and
//! detokenising is concatenation, so coding is lossless.

use crate::vocab::{FIRST_MERGE, N_BYTES};
use std::collections::HashMap;

/// A trained tokenizer: its merges, in rank order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bpe {
    /// Merge i makes token `FIRST_MERGE + i` from the pair `(a, b)`.
    merges: Vec<(u32, u32)>,
    /// Byte string of every token id (specials empty).
    pieces: Vec<Vec<u8>>,
    ranks: HashMap<(u32, u32), u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Space,
    Punct,
    Other,
}

fn class(b: u8) -> Class {
    match b {
        b'a'..=b'z' | b'A'..=b'Z' => Class::Letter,
        b'0'..=b'9' => Class::Digit,
        b' ' | b'\t' | b'\n' | b'\r' => Class::Space,
        0x21..=0x7e => Class::Punct,
        _ => Class::Other,
    }
}

/// Cuts `text` into merge chunks (see the module docs).
pub fn chunks(text: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let start = i;
        let c = class(text[i]);
        match c {
            Class::Digit | Class::Other => i += 1,
            Class::Space => {
                // A single space followed by a letter joins the word.
                if text[i] == b' ' && i + 1 < text.len() && class(text[i + 1]) == Class::Letter {
                    i += 1;
                    while i < text.len() && class(text[i]) == Class::Letter {
                        i += 1;
                    }
                } else {
                    while i < text.len() && class(text[i]) == Class::Space {
                        i += 1;
                    }
                }
            }
            Class::Letter | Class::Punct => {
                while i < text.len() && class(text[i]) == c {
                    i += 1;
                }
            }
        }
        out.push(&text[start..i]);
    }
    out
}

impl Bpe {
    /// A tokenizer with no merges: bytes only.
    pub fn bytes_only() -> Self {
        Self::from_merges(Vec::new())
    }

    /// Rebuilds a tokenizer from its merges.
    pub fn from_merges(merges: Vec<(u32, u32)>) -> Self {
        let mut pieces: Vec<Vec<u8>> = (0..N_BYTES).map(|b| vec![b as u8]).collect();
        pieces.resize(FIRST_MERGE as usize, Vec::new());
        let mut ranks = HashMap::new();
        for (i, &(a, b)) in merges.iter().enumerate() {
            let mut p = pieces.get(a as usize).cloned().unwrap_or_default();
            p.extend_from_slice(pieces.get(b as usize).map_or(&[][..], |v| &v[..]));
            pieces.push(p);
            ranks.insert((a, b), i as u32);
        }
        Self { merges, pieces, ranks }
    }

    /// Learns `n_merges` merges from `texts` (chunk frequencies, then the most frequent pair,
    /// ties broken by the smaller pair: deterministic).
    pub fn train<'a>(texts: impl IntoIterator<Item = &'a [u8]>, n_merges: usize) -> Self {
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for t in texts {
            for c in chunks(t) {
                if c.len() > 1 {
                    *counts.entry(c).or_insert(0) += 1;
                }
            }
        }
        let mut words: Vec<(Vec<u32>, u64)> = counts
            .into_iter()
            .map(|(w, n)| (w.iter().map(|&b| u32::from(b)).collect(), n))
            .collect();
        words.sort();
        let mut merges = Vec::with_capacity(n_merges);
        for m in 0..n_merges {
            let mut pairs: HashMap<(u32, u32), u64> = HashMap::new();
            for (w, n) in &words {
                for p in w.windows(2) {
                    *pairs.entry((p[0], p[1])).or_insert(0) += n;
                }
            }
            let Some((&best, &n)) = pairs.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))) else {
                break;
            };
            if n < 2 {
                break;
            }
            let id = FIRST_MERGE + m as u32;
            for (w, _) in &mut words {
                let mut i = 0;
                while i + 1 < w.len() {
                    if (w[i], w[i + 1]) == best {
                        w[i] = id;
                        w.remove(i + 1);
                    }
                    i += 1;
                }
            }
            merges.push(best);
        }
        Self::from_merges(merges)
    }

    /// The merges, in rank order.
    pub fn merges(&self) -> &[(u32, u32)] {
        &self.merges
    }

    /// Number of token ids this tokenizer uses (bytes, specials, merges).
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The bytes of token `id` (empty for specials and unknown ids).
    pub fn piece(&self, id: u32) -> &[u8] {
        self.pieces.get(id as usize).map_or(&[], |p| &p[..])
    }

    /// Tokenises `text`.
    pub fn encode(&self, text: &[u8]) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 2 + 1);
        for c in chunks(text) {
            self.encode_chunk(c, &mut out);
        }
        out
    }

    fn encode_chunk(&self, c: &[u8], out: &mut Vec<u32>) {
        let mut w: Vec<u32> = c.iter().map(|&b| u32::from(b)).collect();
        loop {
            let best = w
                .windows(2)
                .enumerate()
                .filter_map(|(i, p)| self.ranks.get(&(p[0], p[1])).map(|&r| (r, i)))
                .min();
            let Some((r, i)) = best else { break };
            w[i] = FIRST_MERGE + r;
            w.remove(i + 1);
        }
        out.extend_from_slice(&w);
    }

    /// Concatenates the tokens' bytes.
    pub fn decode(&self, tokens: &[u32]) -> Vec<u8> {
        tokens.iter().flat_map(|&t| self.piece(t).iter().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_text() {
        let t = b"081109 203615 INFO dfs.DataNode$PacketResponder: blk_-69 \xff\xfe  end\n";
        let c = chunks(t);
        assert_eq!(c.concat(), t.to_vec());
        assert!(c.contains(&&b" dfs"[..]) || c.contains(&&b"dfs"[..]));
        assert!(c.iter().filter(|x| x[0].is_ascii_digit()).all(|x| x.len() == 1));
    }

    #[test]
    fn lossless_and_compressing() {
        let corpus: Vec<&[u8]> = vec![
            b"the parliament adopted the report",
            b"the report was adopted",
            b"PacketResponder 1 for block",
        ];
        let bpe = Bpe::train(corpus.iter().copied(), 50);
        assert!(!bpe.merges().is_empty());
        for t in [
            &b"the report"[..],
            b"",
            b"\x00\xff odd bytes 123",
            "unicode: é ü 漢".as_bytes(),
        ] {
            let tok = bpe.encode(t);
            assert_eq!(bpe.decode(&tok), t.to_vec());
        }
        assert!(bpe.encode(b"the report").len() < 10);
        assert_eq!(Bpe::from_merges(bpe.merges().to_vec()), bpe);
    }
}
