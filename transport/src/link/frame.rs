//! Link frames: the outer header that security needs, the inner fragment header, fragmentation
//! of an item and reassembly with a timeout.
//!
//! ```text
//!  outer, sealed (15 bytes + 16-byte tag)      outer, plain (`--insecure`, 13 bytes)
//!  byte 0      version 1 (high nibble) | 0x1   byte 0      version 1 (high nibble) | 0x0
//!  bytes 1–2   key id (big-endian)             bytes 1–8   session id
//!  bytes 3–10  session id                      bytes 9–12  frame counter
//!  bytes 11–14 frame counter                   then        inner frame
//!  then        ChaCha20-Poly1305(inner frame), header as associated data, 16-byte tag
//!
//!  inner frame (5 bytes + data)
//!  byte 0      item kind (high nibble) | importance class 0…3 (low nibble)
//!  bytes 1–2   item id (big-endian, per session, wraps)
//!  byte 3      fragment index
//!  byte 4      fragment count − 1
//!  then        the fragment's bytes
//! ```
//!
//! The PHY carries one link frame per PSDU (or semcom segment) and adds its own FCS. Parsing never
//! panics: any byte string is a header or a [`LinkError::Malformed`].

use super::{Item, ItemKind, LinkError};
use std::collections::HashMap;

/// Link frame format version.
pub const VERSION: u8 = 1;
/// Flag: the inner frame is sealed.
pub(crate) const F_SEALED: u8 = 0x1;
/// Outer header bytes of a sealed frame.
pub const SEALED_HEADER: usize = 15;
/// Outer header bytes of a plain frame.
pub const PLAIN_HEADER: usize = 13;
/// Inner header bytes.
pub const INNER_HEADER: usize = 5;
/// Most fragments of one item.
pub const MAX_FRAGMENTS: usize = 256;
/// Importance classes (as the semcom PHY profile has).
pub const CLASSES: u8 = 4;

/// The outer header of a link frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OuterHeader {
    /// Key id, for sealed frames.
    pub key_id: Option<u16>,
    /// Sender's session id.
    pub session: u64,
    /// Frame counter.
    pub counter: u32,
    /// Header length in bytes.
    pub len: usize,
}

impl OuterHeader {
    /// Parses the outer header at the start of `b`.
    pub fn parse(b: &[u8]) -> Result<Self, LinkError> {
        let &first = b.first().ok_or_else(|| LinkError::Malformed("empty frame".into()))?;
        if first >> 4 != VERSION {
            return Err(LinkError::Malformed(format!(
                "link frame version {} (this build reads {VERSION})",
                first >> 4
            )));
        }
        let flags = first & 0x0f;
        if flags & !F_SEALED != 0 {
            return Err(LinkError::Malformed(format!("unknown link flags {flags:#x}")));
        }
        let sealed = flags & F_SEALED != 0;
        let len = if sealed { SEALED_HEADER } else { PLAIN_HEADER };
        if b.len() < len {
            return Err(LinkError::Malformed(format!(
                "{} bytes: shorter than a link header ({len})",
                b.len()
            )));
        }
        let (key_id, rest) = if sealed {
            (Some(u16::from_be_bytes([b[1], b[2]])), &b[3..])
        } else {
            (None, &b[1..])
        };
        let mut s = [0u8; 8];
        s.copy_from_slice(&rest[..8]);
        let mut c = [0u8; 4];
        c.copy_from_slice(&rest[8..12]);
        Ok(Self {
            key_id,
            session: u64::from_be_bytes(s),
            counter: u32::from_be_bytes(c),
            len,
        })
    }
}

/// One fragment of an item (an inner frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// What the item is.
    pub kind: ItemKind,
    /// Importance class of these bytes (0 = most important).
    pub class: u8,
    /// The item's id.
    pub item: u16,
    /// Index of this fragment.
    pub index: u8,
    /// Fragments in the item (1 … 256).
    pub count: u16,
    /// The bytes.
    pub data: Vec<u8>,
}

impl Fragment {
    /// Serialises the fragment as an inner frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(INNER_HEADER + self.data.len());
        v.push((self.kind.code() << 4) | (self.class & 0x0f));
        v.extend_from_slice(&self.item.to_be_bytes());
        v.push(self.index);
        v.push((self.count - 1) as u8);
        v.extend_from_slice(&self.data);
        v
    }

    /// Parses an inner frame.
    pub fn parse(b: &[u8]) -> Result<Self, LinkError> {
        if b.len() < INNER_HEADER {
            return Err(LinkError::Malformed(format!(
                "inner frame of {} bytes (header is {INNER_HEADER})",
                b.len()
            )));
        }
        let kind = ItemKind::from_code(b[0] >> 4)
            .ok_or_else(|| LinkError::Malformed(format!("unknown item kind {}", b[0] >> 4)))?;
        let class = b[0] & 0x0f;
        if class >= CLASSES {
            return Err(LinkError::Malformed(format!("importance class {class} (0 … 3)")));
        }
        let count = u16::from(b[4]) + 1;
        if u16::from(b[3]) >= count {
            return Err(LinkError::Malformed(format!("fragment {} of {count}", b[3])));
        }
        Ok(Self {
            kind,
            class,
            item: u16::from_be_bytes([b[1], b[2]]),
            index: b[3],
            count,
            data: b[INNER_HEADER..].to_vec(),
        })
    }
}

/// Cuts `item` into fragments of at most `max_data` bytes; a fragment never spans two
/// importance classes. An empty item is one empty fragment.
pub fn fragment(item: &Item, id: u16, max_data: usize) -> Result<Vec<Fragment>, LinkError> {
    let max_data = max_data.max(1);
    let mut pieces: Vec<(u8, std::ops::Range<usize>)> = Vec::new();
    let mut at = 0;
    for &(class, len) in item.class_runs() {
        let end = at + len;
        while at < end {
            let e = end.min(at + max_data);
            pieces.push((class, at..e));
            at = e;
        }
    }
    if pieces.is_empty() {
        pieces.push((0, 0..0));
    }
    if pieces.len() > MAX_FRAGMENTS {
        return Err(LinkError::ItemTooLarge {
            bytes: item.bytes.len(),
            max: MAX_FRAGMENTS * max_data,
        });
    }
    let count = pieces.len() as u16;
    Ok(pieces
        .into_iter()
        .enumerate()
        .map(|(i, (class, r))| Fragment {
            kind: item.kind,
            class,
            item: id,
            index: i as u8,
            count,
            data: item.bytes[r].to_vec(),
        })
        .collect())
}

/// An item as the receiver rebuilt it, whole or with fragments missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedItem {
    /// Sender's session id.
    pub session: u64,
    /// Item id.
    pub id: u16,
    /// What it is.
    pub kind: ItemKind,
    /// The fragments in order; `None` where one was lost.
    pub fragments: Vec<Option<Vec<u8>>>,
    /// Receiver time of the first fragment, µs.
    pub first_us: u64,
    /// Receiver time of the last fragment, µs.
    pub last_us: u64,
}

impl ReceivedItem {
    /// Whether every fragment arrived.
    pub fn is_complete(&self) -> bool {
        self.fragments.iter().all(Option::is_some)
    }

    /// The item's bytes when complete.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        self.is_complete()
            .then(|| self.fragments.iter().flatten().flatten().copied().collect())
    }

    /// Fragments that were lost.
    pub fn missing(&self) -> usize {
        self.fragments.iter().filter(|f| f.is_none()).count()
    }
}

/// Counters of a reassembler.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReassemblyCounters {
    /// Fragments that contradict earlier fragments of their item (kind, count), refused.
    pub inconsistent: u64,
    /// Fragments received twice (the copy is dropped).
    pub duplicates: u64,
    /// Items refused because they would exceed the size limit.
    pub oversized: u64,
    /// Items completed.
    pub completed: u64,
    /// Items given up with fragments missing (timeout, or pushed out by newer items).
    pub expired: u64,
}

#[derive(Debug)]
struct Partial {
    kind: ItemKind,
    frags: Vec<Option<Vec<u8>>>,
    got: usize,
    bytes: usize,
    first_us: u64,
    last_us: u64,
}

/// Rebuilds items from fragments; gives up on an item `timeout_us` after its first fragment.
#[derive(Debug)]
pub struct Reassembler {
    timeout_us: u64,
    max_item: usize,
    max_pending: usize,
    pending: HashMap<(u64, u16), Partial>,
    counters: ReassemblyCounters,
}

impl Reassembler {
    /// A reassembler with a timeout (µs), a limit on an item's size (bytes) and on the items
    /// it holds at once (the oldest is given up first).
    pub fn new(timeout_us: u64, max_item: usize, max_pending: usize) -> Self {
        Self {
            timeout_us,
            max_item,
            max_pending: max_pending.max(1),
            pending: HashMap::new(),
            counters: ReassemblyCounters::default(),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> ReassemblyCounters {
        self.counters
    }

    /// Adds a fragment received at `now_us`. Returns the items that are now finished: the
    /// fragment's item when it completed, and items pushed out to make room.
    pub fn push(&mut self, session: u64, f: Fragment, now_us: u64) -> Result<Vec<ReceivedItem>, LinkError> {
        let mut out = Vec::new();
        let key = (session, f.item);
        if !self.pending.contains_key(&key) {
            if usize::from(f.count) > MAX_FRAGMENTS {
                return Err(LinkError::Malformed("fragment count".into()));
            }
            if self.pending.len() >= self.max_pending {
                if let Some(&old) = self.pending.iter().min_by_key(|(_, p)| p.first_us).map(|(k, _)| k) {
                    out.push(self.give_up(old));
                }
            }
            self.pending.insert(
                key,
                Partial {
                    kind: f.kind,
                    frags: vec![None; usize::from(f.count)],
                    got: 0,
                    bytes: 0,
                    first_us: now_us,
                    last_us: now_us,
                },
            );
        }
        let p = self.pending.get_mut(&key).expect("inserted above");
        if p.kind != f.kind || p.frags.len() != usize::from(f.count) {
            self.counters.inconsistent += 1;
            return Err(LinkError::Malformed(format!(
                "fragment {} of item {} says {} × {:?}, earlier ones {} × {:?}",
                f.index,
                f.item,
                f.count,
                f.kind,
                p.frags.len(),
                p.kind
            )));
        }
        let slot = &mut p.frags[usize::from(f.index)];
        if slot.is_some() {
            self.counters.duplicates += 1;
            return Ok(out);
        }
        if p.bytes + f.data.len() > self.max_item {
            self.counters.oversized += 1;
            let bytes = p.bytes + f.data.len();
            self.pending.remove(&key);
            return Err(LinkError::ItemTooLarge {
                bytes,
                max: self.max_item,
            });
        }
        p.bytes += f.data.len();
        *slot = Some(f.data);
        p.got += 1;
        p.last_us = now_us;
        if p.got == p.frags.len() {
            let p = self.pending.remove(&key).expect("present");
            self.counters.completed += 1;
            out.push(ReceivedItem {
                session,
                id: f.item,
                kind: p.kind,
                fragments: p.frags,
                first_us: p.first_us,
                last_us: p.last_us,
            });
        }
        Ok(out)
    }

    fn give_up(&mut self, key: (u64, u16)) -> ReceivedItem {
        let p = self.pending.remove(&key).expect("present");
        self.counters.expired += 1;
        ReceivedItem {
            session: key.0,
            id: key.1,
            kind: p.kind,
            fragments: p.frags,
            first_us: p.first_us,
            last_us: p.last_us,
        }
    }

    /// Gives up the items whose first fragment came more than the timeout before `now_us`,
    /// oldest first.
    pub fn expire(&mut self, now_us: u64) -> Vec<ReceivedItem> {
        let mut keys: Vec<((u64, u16), u64)> = self
            .pending
            .iter()
            .filter(|(_, p)| now_us.saturating_sub(p.first_us) > self.timeout_us)
            .map(|(k, p)| (*k, p.first_us))
            .collect();
        keys.sort_by_key(|&(k, t)| (t, k));
        keys.into_iter().map(|(k, _)| self.give_up(k)).collect()
    }

    /// Gives up every pending item, oldest first.
    pub fn flush(&mut self) -> Vec<ReceivedItem> {
        self.expire_all()
    }

    fn expire_all(&mut self) -> Vec<ReceivedItem> {
        let mut keys: Vec<((u64, u16), u64)> = self.pending.iter().map(|(k, p)| (*k, p.first_us)).collect();
        keys.sort_by_key(|&(k, t)| (t, k));
        keys.into_iter().map(|(k, _)| self.give_up(k)).collect()
    }

    /// Items waiting for fragments.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn item(len: usize, classes: Vec<(u8, usize)>, seed: u64) -> Item {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        Item::new(ItemKind::Semantic, (0..len).map(|_| rng.random()).collect()).with_classes(classes)
    }

    #[test]
    fn outer_header_parse_refuses_garbage() {
        assert!(OuterHeader::parse(&[]).is_err());
        assert!(OuterHeader::parse(&[0x20; 20]).is_err());
        assert!(OuterHeader::parse(&[0x12; 20]).is_err());
        assert!(OuterHeader::parse(&[0x11; 14]).is_err());
        let h = OuterHeader::parse(&[0x11; 15]).unwrap();
        assert_eq!(h.key_id, Some(0x1111));
        assert_eq!(h.len, SEALED_HEADER);
        let h = OuterHeader::parse(&[0x10, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 3]).unwrap();
        assert_eq!((h.key_id, h.session, h.counter), (None, 9, 3));
    }

    #[test]
    fn fragments_follow_class_boundaries_and_rebuild_the_item() {
        let it = item(1000, vec![(0, 130), (2, 870)], 1);
        let frags = fragment(&it, 77, 200).unwrap();
        // 130 | 200 200 200 200 70
        assert_eq!(
            frags.iter().map(|f| (f.class, f.data.len())).collect::<Vec<_>>(),
            vec![(0, 130), (2, 200), (2, 200), (2, 200), (2, 200), (2, 70)]
        );
        let mut r = Reassembler::new(1_000_000, 1 << 20, 16);
        let mut done = Vec::new();
        // Reverse order, through bytes and back.
        for f in frags.iter().rev() {
            let g = Fragment::parse(&f.to_bytes()).unwrap();
            assert_eq!(&g, f);
            done.extend(r.push(5, g, 10).unwrap());
        }
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].bytes().unwrap(), it.bytes);
        assert_eq!(done[0].id, 77);
    }

    #[test]
    fn empty_and_oversized_items() {
        let it = Item::new(ItemKind::Raw, Vec::new());
        let f = fragment(&it, 1, 100).unwrap();
        assert_eq!(f.len(), 1);
        let mut r = Reassembler::new(1000, 100, 4);
        let done = r.push(1, f[0].clone(), 0).unwrap();
        assert_eq!(done[0].bytes().unwrap(), Vec::<u8>::new());
        assert!(matches!(
            fragment(&item(257, vec![], 2), 1, 1),
            Err(LinkError::ItemTooLarge { .. })
        ));
        // The receiver refuses an item past its own limit.
        let frags = fragment(&item(300, vec![], 3), 2, 100).unwrap();
        r.push(1, frags[0].clone(), 0).unwrap();
        assert!(matches!(
            r.push(1, frags[1].clone(), 0),
            Err(LinkError::ItemTooLarge { .. })
        ));
        assert_eq!(r.counters().oversized, 1);
    }

    #[test]
    fn timeouts_give_up_incomplete_items_with_their_holes() {
        let frags = fragment(&item(500, vec![], 4), 9, 100).unwrap();
        let mut r = Reassembler::new(1000, 1 << 20, 16);
        for (i, f) in frags.iter().enumerate() {
            if i != 2 {
                assert!(r.push(1, f.clone(), 100).unwrap().is_empty());
            }
        }
        assert!(r.expire(1000).is_empty());
        let gone = r.expire(1101);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].missing(), 1);
        assert!(gone[0].fragments[2].is_none());
        assert!(gone[0].bytes().is_none());
        assert_eq!(r.pending(), 0);
        assert_eq!(r.counters().expired, 1);
    }

    #[test]
    fn duplicates_and_contradictions() {
        let frags = fragment(&item(300, vec![], 5), 3, 100).unwrap();
        let mut r = Reassembler::new(1000, 1 << 20, 16);
        r.push(1, frags[0].clone(), 0).unwrap();
        r.push(1, frags[0].clone(), 0).unwrap();
        assert_eq!(r.counters().duplicates, 1);
        let mut bad = frags[1].clone();
        bad.count = 7;
        assert!(r.push(1, bad, 0).is_err());
        assert_eq!(r.counters().inconsistent, 1);
        // Same item id from another session is another item.
        r.push(2, frags[1].clone(), 0).unwrap();
        assert_eq!(r.pending(), 2);
    }

    #[test]
    fn inner_parse_refuses_bad_fields() {
        assert!(Fragment::parse(&[0; 4]).is_err());
        assert!(Fragment::parse(&[0xf0, 0, 0, 0, 0]).is_err()); // kind 15
        assert!(Fragment::parse(&[0x04, 0, 0, 0, 0]).is_err()); // class 4
        assert!(Fragment::parse(&[0x00, 0, 0, 2, 1]).is_err()); // fragment 2 of 2
        assert!(Fragment::parse(&[0x00, 0, 0, 255, 255]).is_ok());
    }

    #[test]
    fn full_pending_table_gives_up_the_oldest() {
        let mut r = Reassembler::new(1_000_000, 1 << 20, 2);
        for id in 0..3u16 {
            let frags = fragment(&item(200, vec![], u64::from(id)), id, 100).unwrap();
            let out = r.push(1, frags[0].clone(), u64::from(id)).unwrap();
            if id == 2 {
                assert_eq!(out.len(), 1);
                assert_eq!(out[0].id, 0);
            }
        }
        assert_eq!(r.pending(), 2);
    }
}
