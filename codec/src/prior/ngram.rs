//! A token n-gram memory of the training text, blended into the transformer's distribution.
//!
//! The transformer is small, and it generalises; it does not remember the long literal strings
//! that recur in logs (templates, component names, paths) or the formulaic phrases of a corpus.
//! The n-gram memory does: for every context of 1 … `order` tokens seen in training it keeps
//! how often each token followed. At coding time the contexts present in the history are
//! blended from the shortest to the longest with the Witten–Bell / PPM-C rule
//!
//! ```text
//! p_k(t) = (c_k(t) + e_k·p_{k−1}(t)) / (n_k + e_k)     e_k = β·u_k + γ     p_0 = the transformer
//! ```
//!
//! where `n_k` is how often the order-k context occurred and `u_k` how many different tokens
//! followed it (β = 1, γ = 0 is Witten–Bell; γ > 0 makes rarely seen contexts count less). This is how context-mixing compressors lift a neural model with a match memory.
//!
//! Contexts are keyed by a 64-bit hash of (order, tokens); a collision only costs bits, never
//! correctness, because encoder and decoder hold the same table and do the same `f64`
//! arithmetic in the same order.

use crate::frame::{get_varint, put_varint};
use crate::CodecError;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

const MAGIC: &[u8; 4] = b"SCNG";
const VERSION: u8 = 1;
/// Longest context the format accepts.
pub const MAX_ORDER: usize = 16;

/// Keys are already hashes: the map does not hash them again.
#[derive(Default, Debug, Clone, Copy)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type KeyMap<V> = HashMap<u64, V, BuildHasherDefault<KeyHasher>>;

/// The hash of the order-k context ending at the end of `history`, for k = 1 … as many as
/// `history` and `order` allow, shortest first.
fn context_hashes(history: &[u32], order: usize, out: &mut Vec<u64>) {
    out.clear();
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    for (k, &t) in history.iter().rev().take(order).enumerate() {
        h = (h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3_u64.wrapping_add(k as u64 * 2));
        h ^= h >> 29;
        out.push(h.wrapping_add(k as u64 + 1));
    }
}

/// Followers of one context: where they start in the arena, how many, and their total count.
#[derive(Clone, Copy, Debug)]
struct Entry {
    start: u32,
    len: u32,
    total: u32,
}

/// The n-gram memory: contexts of 1 … `order` tokens and their followers' counts.
#[derive(Clone, Debug)]
pub struct NGram {
    order: usize,
    /// Escape weight β per follower (×1/16): larger trusts the memory less.
    beta16: u32,
    /// Escape pseudo-count γ (×1/16): larger trusts rarely seen contexts less.
    gamma16: u32,
    map: KeyMap<Entry>,
    /// (token, count), grouped by context, tokens ascending within a context.
    followers: Vec<(u32, u32)>,
}

impl NGram {
    /// Counts every context of 1 … `order` tokens in `sequences` (each a token stream, e.g. a
    /// file's messages one after another). Contexts of two or more tokens seen fewer than
    /// `min_count` times are dropped.
    pub fn build<'a>(
        sequences: impl IntoIterator<Item = &'a [u32]>,
        order: usize,
        min_count: u32,
        beta16: u32,
        gamma16: u32,
    ) -> Result<Self, CodecError> {
        if !(1..=MAX_ORDER).contains(&order) || beta16 == 0 || beta16 > 1 << 24 || gamma16 > 1 << 24 {
            return Err(CodecError::Input(format!(
                "n-gram order must be 1…{MAX_ORDER}, β in (0, 10⁶], γ in [0, 10⁶]"
            )));
        }
        // Per context: its order and its followers' counts.
        let mut counts: KeyMap<(usize, HashMap<u32, u32>)> = KeyMap::default();
        let mut hashes = Vec::with_capacity(order);
        for seq in sequences {
            for i in 1..seq.len() {
                context_hashes(&seq[..i], order, &mut hashes);
                for (k, &h) in hashes.iter().enumerate() {
                    let e = counts.entry(h).or_insert_with(|| (k + 1, HashMap::new()));
                    *e.1.entry(seq[i]).or_default() += 1;
                }
            }
        }
        let mut keys: Vec<u64> = counts.keys().copied().collect();
        keys.sort_unstable();
        let mut map = KeyMap::default();
        let mut followers = Vec::new();
        for k in keys {
            let (o, f) = &counts[&k];
            let total: u32 = f.values().sum();
            // Order-1 contexts are few: kept whatever their count.
            if total < min_count && *o > 1 {
                continue;
            }
            let mut v: Vec<(u32, u32)> = f.iter().map(|(&t, &c)| (t, c)).collect();
            v.sort_unstable();
            map.insert(
                k,
                Entry {
                    start: followers.len() as u32,
                    len: v.len() as u32,
                    total,
                },
            );
            followers.extend(v);
        }
        Ok(Self {
            order,
            beta16,
            gamma16,
            map,
            followers,
        })
    }

    /// Longest context, tokens.
    pub fn order(&self) -> usize {
        self.order
    }

    /// Contexts held.
    pub fn contexts(&self) -> usize {
        self.map.len()
    }

    /// Serialises the table (zstd-compressed).
    pub fn to_bytes(&self) -> Result<Vec<u8>, CodecError> {
        let mut keys: Vec<(&u64, &Entry)> = self.map.iter().collect();
        keys.sort_unstable_by_key(|(k, _)| **k);
        let mut raw = Vec::new();
        put_varint(&mut raw, self.order as u64);
        put_varint(&mut raw, u64::from(self.beta16));
        put_varint(&mut raw, u64::from(self.gamma16));
        put_varint(&mut raw, keys.len() as u64);
        let mut last = 0u64;
        for (&k, e) in keys {
            put_varint(&mut raw, k - last);
            last = k;
            put_varint(&mut raw, u64::from(e.len));
            let mut prev = 0u32;
            for &(t, c) in &self.followers[e.start as usize..][..e.len as usize] {
                put_varint(&mut raw, u64::from(t - prev));
                prev = t;
                put_varint(&mut raw, u64::from(c));
            }
        }
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        out.extend(zstd::bulk::compress(&raw, 19).map_err(|e| CodecError::Backend(e.to_string()))?);
        Ok(out)
    }

    /// Parses [`NGram::to_bytes`]; tokens must be below `vocab`.
    pub fn from_bytes(b: &[u8], vocab: usize) -> Result<Self, CodecError> {
        let bad = |what: &str| CodecError::Model {
            path: String::new(),
            reason: format!("n-gram table: {what}"),
        };
        if b.len() < 5 || &b[..4] != MAGIC {
            return Err(bad("bad magic"));
        }
        if b[4] != VERSION {
            return Err(bad(&format!("version {} (this build reads {VERSION})", b[4])));
        }
        let raw = zstd::bulk::decompress(&b[5..], 1 << 30).map_err(|e| bad(&format!("zstd: {e}")))?;
        let mut at = 0usize;
        let mut next = || -> Result<u64, CodecError> {
            let (v, n) = get_varint(&raw[at..]).ok_or_else(|| bad("truncated"))?;
            at += n;
            Ok(v)
        };
        let order = next()? as usize;
        let beta16 = next()?;
        let gamma16 = next()?;
        let n = next()?;
        if !(1..=MAX_ORDER).contains(&order) || beta16 == 0 || beta16 > 1 << 24 || gamma16 > 1 << 24 {
            return Err(bad("order or β out of range"));
        }
        if n > raw.len() as u64 {
            return Err(bad("more contexts than bytes"));
        }
        let mut map = KeyMap::default();
        map.reserve(n as usize);
        let mut followers = Vec::new();
        let mut key = 0u64;
        for _ in 0..n {
            key = key.checked_add(next()?).ok_or_else(|| bad("context keys overflow"))?;
            let len = next()?;
            if len == 0 || len > vocab as u64 {
                return Err(bad("a context with no or too many followers"));
            }
            let start = followers.len() as u32;
            let mut tok = 0u64;
            let mut total = 0u64;
            for _ in 0..len {
                tok = tok.saturating_add(next()?);
                let c = next()?;
                if tok >= vocab as u64 || c == 0 || c > u64::from(u32::MAX) {
                    return Err(bad("follower token or count out of range"));
                }
                total += c;
                followers.push((tok as u32, c as u32));
            }
            if total > u64::from(u32::MAX) {
                return Err(bad("context count overflows"));
            }
            map.insert(
                key,
                Entry {
                    start,
                    len: len as u32,
                    total: total as u32,
                },
            );
        }
        Ok(Self {
            order,
            beta16: beta16 as u32,
            gamma16: gamma16 as u32,
            map,
            followers,
        })
    }

    /// Blends the memory into `p` (the transformer's probabilities, indexed by token) for the
    /// token after `history`; tokens outside `allowed` stay at zero. `hashes` and `extra` are
    /// scratch. Returns whether any context was found (else `p` is unchanged).
    pub fn blend(
        &self,
        history: &[u32],
        allowed: &[bool],
        p: &mut [f64],
        hashes: &mut Vec<u64>,
        extra: &mut Vec<(u32, f64)>,
    ) -> bool {
        context_hashes(history, self.order, hashes);
        let found = hashes.iter().filter_map(|h| {
            let e = self.map.get(h)?;
            Some((&self.followers[e.start as usize..][..e.len as usize], e.total))
        });
        blend_contexts(found, self.beta16, self.gamma16, allowed, p, extra)
    }
}

/// The Witten–Bell blend of the contexts `found` (followers and their total, shortest context
/// first) into `p`. Returns whether there was any.
fn blend_contexts<'a>(
    found: impl Iterator<Item = (&'a [(u32, u32)], u32)>,
    beta16: u32,
    gamma16: u32,
    allowed: &[bool],
    p: &mut [f64],
    extra: &mut Vec<(u32, f64)>,
) -> bool {
    extra.clear();
    let mut dense = 1f64;
    let mut any = false;
    let beta = f64::from(beta16) / 16.0;
    let gamma = f64::from(gamma16) / 16.0;
    for (fol, total) in found {
        any = true;
        let esc = beta * fol.len() as f64 + gamma;
        let d = f64::from(total) + esc;
        let a = esc / d;
        dense *= a;
        for x in extra.iter_mut() {
            x.1 *= a;
        }
        for &(t, c) in fol {
            if allowed.get(t as usize).copied().unwrap_or(false) {
                extra.push((t, f64::from(c) / d));
            }
        }
    }
    if !any {
        return false;
    }
    for v in p.iter_mut() {
        *v *= dense;
    }
    for &(t, e) in extra.iter() {
        p[t as usize] += e;
    }
    true
}

/// An n-gram memory that learns as messages pass: the shared context of a stream. Encoder and
/// decoder add the same messages in the same order, so they hold the same counts. It forgets
/// everything when it reaches [`StreamMemory::MAX_CONTEXTS`] contexts.
#[derive(Clone, Debug)]
pub struct StreamMemory {
    map: KeyMap<(Vec<(u32, u32)>, u32)>,
    hashes: Vec<u64>,
}

impl Default for StreamMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamMemory {
    /// Contexts held before the memory starts afresh.
    pub const MAX_CONTEXTS: usize = 1 << 16;
    /// Longest context, tokens.
    pub const ORDER: usize = 8;
    /// Escape weight β (×1/16), chosen on a development split (β = 16 beat 4 and matched 64).
    const BETA16: u32 = 256;

    /// An empty memory.
    pub fn new() -> Self {
        Self {
            map: KeyMap::default(),
            hashes: Vec::new(),
        }
    }

    /// Counts the tokens `seq[from..]`, each after its context in `seq`.
    pub fn learn(&mut self, seq: &[u32], from: usize) {
        if self.map.len() > Self::MAX_CONTEXTS {
            self.map.clear();
        }
        for i in from.max(1)..seq.len() {
            context_hashes(&seq[..i], Self::ORDER, &mut self.hashes);
            for &h in &self.hashes {
                let (fol, total) = self.map.entry(h).or_default();
                *total += 1;
                match fol.iter_mut().find(|(t, _)| *t == seq[i]) {
                    Some(x) => x.1 += 1,
                    None => fol.push((seq[i], 1)),
                }
            }
        }
    }

    /// Blends the memory into `p`, like [`NGram::blend`].
    pub fn blend(
        &self,
        history: &[u32],
        allowed: &[bool],
        p: &mut [f64],
        hashes: &mut Vec<u64>,
        extra: &mut Vec<(u32, f64)>,
    ) -> bool {
        context_hashes(history, Self::ORDER, hashes);
        let found = hashes
            .iter()
            .filter_map(|h| self.map.get(h).map(|(f, t)| (f.as_slice(), *t)));
        blend_contexts(found, Self::BETA16, 0, allowed, p, extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> NGram {
        let a: Vec<u32> = vec![1, 2, 3, 4, 1, 2, 3, 5, 1, 2, 3, 4, 9, 9, 9];
        let b: Vec<u32> = vec![7, 1, 2, 3, 4];
        NGram::build([a.as_slice(), b.as_slice()], 4, 1, 16, 0).unwrap()
    }

    #[test]
    fn counts_are_those_of_the_text() {
        let ng = table();
        // After "1 2 3": 4 three times, 5 once (order 3 context).
        let mut hashes = Vec::new();
        context_hashes(&[1, 2, 3], 4, &mut hashes);
        let e = ng.map[&hashes[2]];
        let f = &ng.followers[e.start as usize..][..e.len as usize];
        assert_eq!(f, &[(4, 3), (5, 1)]);
        assert_eq!(e.total, 4);
        // Order 1 context "9": followed by 9 twice.
        context_hashes(&[9], 4, &mut hashes);
        let e = ng.map[&hashes[0]];
        assert_eq!(&ng.followers[e.start as usize..][..e.len as usize], &[(9, 2)]);
    }

    /// The blend is the Witten–Bell formula, computed by hand for one context.
    #[test]
    fn blend_matches_the_formula() {
        let ng = NGram::build([&[5u32, 6, 5, 6, 5, 7][..]], 1, 1, 16, 0).unwrap();
        let allowed = vec![true; 10];
        let mut p = vec![0.1f64; 10];
        let (mut h, mut x) = (Vec::new(), Vec::new());
        assert!(ng.blend(&[5], &allowed, &mut p, &mut h, &mut x));
        // Context "5": 6 twice, 7 once; n = 3, u = 2, β = 1: e = 2.
        let want6 = (2.0 + 2.0 * 0.1) / 5.0;
        let want7 = (1.0 + 2.0 * 0.1) / 5.0;
        let want0 = 2.0 * 0.1 / 5.0;
        assert!((p[6] - want6).abs() < 1e-12 && (p[7] - want7).abs() < 1e-12 && (p[0] - want0).abs() < 1e-12);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Unknown context: untouched.
        let mut q = vec![0.1f64; 10];
        assert!(!ng.blend(&[3], &allowed, &mut q, &mut h, &mut x));
        assert_eq!(q, vec![0.1; 10]);
    }

    #[test]
    fn bytes_round_trip_and_garbage_is_refused() {
        let ng = table();
        let b = ng.to_bytes().unwrap();
        let back = NGram::from_bytes(&b, 16).unwrap();
        assert_eq!(back.order, ng.order);
        assert_eq!(back.map.len(), ng.map.len());
        for (k, e) in &ng.map {
            let f = &back.map[k];
            assert_eq!(
                &back.followers[f.start as usize..][..f.len as usize],
                &ng.followers[e.start as usize..][..e.len as usize]
            );
        }
        // Tokens beyond the vocabulary, truncation, bad magic, flipped bytes: errors, no panic.
        assert!(NGram::from_bytes(&b, 8).is_err());
        for cut in 0..b.len() {
            let _ = NGram::from_bytes(&b[..cut], 16);
        }
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert!(NGram::from_bytes(&bad, 16).is_err());
        let mut x = 0x1234_5678u32;
        for i in 0..2000 {
            let mut c = b.clone();
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = 5 + (x as usize % (c.len() - 5));
            c[at] ^= (i % 255 + 1) as u8;
            let _ = NGram::from_bytes(&c, 16);
        }
        // Raw bodies: more contexts than bytes; token deltas that overflow (a fuzzer finding).
        for body in [&[4u64, 16, 0, 1 << 40][..], &[1, 16, 0, 1, 5, 2, 3, 1, u64::MAX, 1]] {
            let mut raw = Vec::new();
            for &v in body {
                put_varint(&mut raw, v);
            }
            let mut forged = MAGIC.to_vec();
            forged.push(VERSION);
            forged.extend(zstd::bulk::compress(&raw, 1).unwrap());
            assert!(NGram::from_bytes(&forged, 16).is_err());
        }
    }
}
