//! Link security: ChaCha20-Poly1305 under a pre-shared key, nonces that never repeat, a replay
//! window, and counters of every frame refused.
//!
//! **Key.** 32 bytes, from a key file (32 raw bytes or 64 hex digits) or derived from a
//! passphrase with Argon2id (salt: `semcom link v1` and the link's name, so both ends derive the
//! same key without talking). A 16-bit key id (SHA-256 of the key, domain-separated) travels in
//! every frame so that a receiver tells a frame under another key ("wrong key") from a frame
//! under its own key that was changed in flight ("tampered"); the id says nothing about the key.
//!
//! **Nonce.** 12 bytes = the sender's 64-bit session id ‖ a 32-bit frame counter. The session id
//! is drawn from the operating system's random source when a sender starts, the counter counts up
//! from 0 and the sender refuses to seal once it would wrap. A nonce therefore repeats under a
//! key only if two sender sessions draw the same 64-bit id (probability about n²/2⁶⁵ after n
//! sessions: 3·10⁻⁸ after a million restarts).
//!
//! **Replay.** The receiver keeps, per session, the highest counter it has authenticated and a
//! 128-frame window of the counters below it; a counter already seen, or older than the window,
//! is a replay. Up to [`MAX_SESSIONS`] sessions are tracked at once; a session pushed out (least
//! recently heard) is remembered as retired (up to [`MAX_RETIRED`] ids) and its frames are refused
//! as replays from then on. The tag is checked before the window, so a frame changed in flight
//! counts as tampered whatever field was changed, and only frames that authenticate move the
//! window.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use sha2::Digest;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use super::LinkError;

/// Key length, bytes.
pub const KEY_LEN: usize = 32;
/// Authentication tag length, bytes.
pub const TAG_LEN: usize = 16;
/// Sessions a receiver tracks at once.
pub const MAX_SESSIONS: usize = 64;
/// Retired session ids a receiver remembers.
pub const MAX_RETIRED: usize = 65_536;
/// Width of the replay window, frames.
pub const REPLAY_WINDOW: u32 = 128;

/// A pre-shared link key. `Debug` shows only its id.
#[derive(Clone)]
pub struct LinkKey {
    bytes: [u8; KEY_LEN],
    id: u16,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LinkKey(id {:04x})", self.id)
    }
}

impl LinkKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let mut h = sha2::Sha256::new();
        h.update(b"semcom link key id v1");
        h.update(bytes);
        let d = h.finalize();
        Self {
            bytes,
            id: u16::from_be_bytes([d[0], d[1]]),
        }
    }

    /// A fresh random key (from the operating system's random source).
    pub fn generate() -> Self {
        let mut b = [0u8; KEY_LEN];
        rand::Rng::fill(&mut rand::rng(), &mut b[..]);
        Self::from_bytes(b)
    }

    /// Reads a key file: exactly 32 bytes, or 64 hex digits (surrounding whitespace allowed).
    pub fn from_file(path: &Path) -> Result<Self, LinkError> {
        let data = std::fs::read(path).map_err(|e| LinkError::Key(format!("{}: {e}", path.display())))?;
        Self::parse(&data).map_err(|reason| LinkError::Key(format!("{}: {reason}", path.display())))
    }

    /// Parses a key file's contents (see [`LinkKey::from_file`]).
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        if data.len() == KEY_LEN {
            let mut b = [0u8; KEY_LEN];
            b.copy_from_slice(data);
            return Ok(Self::from_bytes(b));
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| format!("{} bytes: a key file holds 32 raw bytes or 64 hex digits", data.len()))?
            .trim();
        if text.len() != 2 * KEY_LEN || !text.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "{} bytes: a key file holds 32 raw bytes or 64 hex digits",
                data.len()
            ));
        }
        let mut b = [0u8; KEY_LEN];
        for (i, o) in b.iter_mut().enumerate() {
            *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
        }
        Ok(Self::from_bytes(b))
    }

    /// Derives a key from a passphrase with Argon2id (19 MiB, 2 passes, the crate's defaults);
    /// `link_name` separates the keys of links that share a passphrase.
    pub fn from_passphrase(passphrase: &str, link_name: &str) -> Result<Self, LinkError> {
        if passphrase.len() < 8 {
            return Err(LinkError::Key("passphrase shorter than 8 characters".into()));
        }
        let salt = format!("semcom link v1:{link_name}");
        let mut b = [0u8; KEY_LEN];
        argon2::Argon2::default()
            .hash_password_into(passphrase.as_bytes(), salt.as_bytes(), &mut b)
            .map_err(|e| LinkError::Key(format!("argon2: {e}")))?;
        Ok(Self::from_bytes(b))
    }

    /// The key as 64 hex digits (what [`LinkKey::from_file`] reads).
    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The 16-bit key id carried in frames.
    pub fn id(&self) -> u16 {
        self.id
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new((&self.bytes).into())
    }
}

/// Frames a receiver refused, by reason, and frames it accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecurityCounters {
    /// Frames that authenticated (or, without security, parsed) and were passed on.
    pub accepted: u64,
    /// Frames that are not link frames (too short, unknown version, bad fields).
    pub malformed: u64,
    /// Frames under another key (key id differs), or sealed frames when this end has no key.
    pub wrong_key: u64,
    /// Frames under this end's key whose authentication failed: changed in flight or forged.
    pub tampered: u64,
    /// Frames whose (session, counter) was already accepted, or older than the window, or of a
    /// retired session.
    pub replayed: u64,
    /// Unsealed frames refused because this end requires security.
    pub unauthenticated: u64,
}

impl SecurityCounters {
    /// Every refused frame.
    pub fn refused(&self) -> u64 {
        self.malformed + self.wrong_key + self.tampered + self.replayed + self.unauthenticated
    }
}

/// The sending side: seals inner frames under the key with fresh nonces.
#[derive(Debug)]
pub struct Sealer {
    key: Option<(LinkKey, ChaCha20Poly1305Dbg)>,
    session: u64,
    counter: u64,
}

/// `ChaCha20Poly1305` with a `Debug` that shows nothing of the key schedule.
#[derive(Clone)]
struct ChaCha20Poly1305Dbg(ChaCha20Poly1305);

impl std::fmt::Debug for ChaCha20Poly1305Dbg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChaCha20Poly1305")
    }
}

/// The 12-byte nonce of (session, counter).
fn nonce(session: u64, counter: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&session.to_be_bytes());
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n
}

impl Sealer {
    /// A sender with a random session id; `None`: frames go out unsealed (`--insecure`).
    pub fn new(key: Option<LinkKey>) -> Self {
        Self::with_session(key, rand::Rng::random(&mut rand::rng()))
    }

    /// A sender with a given session id (tests, reproducible simulations). Two senders must
    /// never use one session id under one key.
    pub fn with_session(key: Option<LinkKey>, session: u64) -> Self {
        Self {
            key: key.map(|k| {
                let c = ChaCha20Poly1305Dbg(k.cipher());
                (k, c)
            }),
            session,
            counter: 0,
        }
    }

    /// The session id.
    pub fn session(&self) -> u64 {
        self.session
    }

    /// Whether frames are sealed.
    pub fn secure(&self) -> bool {
        self.key.is_some()
    }

    /// Bytes a sealed (or plain) frame adds to its inner frame.
    pub fn overhead(&self) -> usize {
        if self.key.is_some() {
            super::frame::SEALED_HEADER + TAG_LEN
        } else {
            super::frame::PLAIN_HEADER
        }
    }

    /// Wraps `inner` in a link frame: header, then the inner frame sealed (or plain).
    pub fn seal(&mut self, inner: &[u8]) -> Result<Vec<u8>, LinkError> {
        let counter = u32::try_from(self.counter).map_err(|_| LinkError::CounterExhausted)?;
        self.counter += 1;
        let mut out = Vec::with_capacity(inner.len() + self.overhead());
        match &self.key {
            Some((key, cipher)) => {
                out.push((super::frame::VERSION << 4) | super::frame::F_SEALED);
                out.extend_from_slice(&key.id().to_be_bytes());
                out.extend_from_slice(&self.session.to_be_bytes());
                out.extend_from_slice(&counter.to_be_bytes());
                let ct = cipher
                    .0
                    .encrypt(
                        (&nonce(self.session, counter)).into(),
                        Payload { msg: inner, aad: &out },
                    )
                    .map_err(|_| LinkError::Crypto)?;
                out.extend_from_slice(&ct);
            }
            None => {
                out.push(super::frame::VERSION << 4);
                out.extend_from_slice(&self.session.to_be_bytes());
                out.extend_from_slice(&counter.to_be_bytes());
                out.extend_from_slice(inner);
            }
        }
        Ok(out)
    }
}

/// A session's replay window.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// Highest counter accepted.
    top: u32,
    /// Bit i: counter `top − i` was accepted.
    seen: u128,
    /// When it was last heard (an increasing stamp).
    heard: u64,
}

impl Window {
    fn is_replay(&self, c: u32) -> bool {
        if c > self.top {
            return false;
        }
        let back = self.top - c;
        back >= REPLAY_WINDOW || self.seen & (1u128 << back) != 0
    }

    fn accept(&mut self, c: u32) {
        if c > self.top {
            let shift = c - self.top;
            self.seen = if shift >= REPLAY_WINDOW { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.top = c;
        } else {
            self.seen |= 1u128 << (self.top - c);
        }
    }
}

/// What [`Opener::open`] found in a frame that it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The sender's session id.
    pub session: u64,
    /// The frame counter.
    pub counter: u32,
    /// The inner frame.
    pub inner: Vec<u8>,
}

/// The receiving side: checks key id, replay window and tag; counts what it refuses.
#[derive(Debug)]
pub struct Opener {
    key: Option<(LinkKey, ChaCha20Poly1305Dbg)>,
    sessions: HashMap<u64, Window>,
    retired: HashSet<u64>,
    retired_order: VecDeque<u64>,
    clock: u64,
    counters: SecurityCounters,
}

impl Opener {
    /// A receiver under `key`; `None`: accepts only unsealed frames (`--insecure`).
    pub fn new(key: Option<LinkKey>) -> Self {
        Self {
            key: key.map(|k| {
                let c = ChaCha20Poly1305Dbg(k.cipher());
                (k, c)
            }),
            sessions: HashMap::new(),
            retired: HashSet::new(),
            retired_order: VecDeque::new(),
            clock: 0,
            counters: SecurityCounters::default(),
        }
    }

    /// The counters so far.
    pub fn counters(&self) -> SecurityCounters {
        self.counters
    }

    /// Checks one link frame and returns its inner frame, or refuses it (counted).
    pub fn open(&mut self, frame: &[u8]) -> Result<Opened, LinkError> {
        let r = self.open_inner(frame);
        match &r {
            Ok(_) => self.counters.accepted += 1,
            Err(LinkError::Malformed(_)) => self.counters.malformed += 1,
            Err(LinkError::WrongKey { .. }) => self.counters.wrong_key += 1,
            Err(LinkError::Tampered) => self.counters.tampered += 1,
            Err(LinkError::Replayed { .. }) => self.counters.replayed += 1,
            Err(LinkError::Unauthenticated) => self.counters.unauthenticated += 1,
            Err(_) => self.counters.malformed += 1,
        }
        r
    }

    fn open_inner(&mut self, frame: &[u8]) -> Result<Opened, LinkError> {
        let h = super::frame::OuterHeader::parse(frame)?;
        let body = &frame[h.len..];
        let inner = match (&self.key, h.key_id) {
            (Some(_), None) => return Err(LinkError::Unauthenticated),
            (None, Some(id)) => return Err(LinkError::WrongKey { frame: id, ours: None }),
            (None, None) => {
                self.check_replay(h.session, h.counter)?;
                body.to_vec()
            }
            (Some((key, cipher)), Some(id)) => {
                if id != key.id() {
                    return Err(LinkError::WrongKey {
                        frame: id,
                        ours: Some(key.id()),
                    });
                }
                if body.len() < TAG_LEN {
                    return Err(LinkError::Malformed(format!(
                        "sealed frame of {} bytes has no room for its tag",
                        frame.len()
                    )));
                }
                // Authenticate first: a frame whose counter was changed in flight is tampered,
                // not a replay; only then does the window decide.
                let inner = cipher
                    .0
                    .decrypt(
                        (&nonce(h.session, h.counter)).into(),
                        Payload {
                            msg: body,
                            aad: &frame[..h.len],
                        },
                    )
                    .map_err(|_| LinkError::Tampered)?;
                self.check_replay(h.session, h.counter)?;
                inner
            }
        };
        self.accept(h.session, h.counter);
        Ok(Opened {
            session: h.session,
            counter: h.counter,
            inner,
        })
    }

    fn check_replay(&self, session: u64, counter: u32) -> Result<(), LinkError> {
        if self.retired.contains(&session) || self.sessions.get(&session).is_some_and(|w| w.is_replay(counter)) {
            return Err(LinkError::Replayed { session, counter });
        }
        Ok(())
    }

    fn accept(&mut self, session: u64, counter: u32) {
        self.clock += 1;
        let clock = self.clock;
        if !self.sessions.contains_key(&session) && self.sessions.len() >= MAX_SESSIONS {
            // Retire the session heard least recently.
            if let Some((&old, _)) = self.sessions.iter().min_by_key(|(_, w)| w.heard) {
                self.sessions.remove(&old);
                self.retired.insert(old);
                self.retired_order.push_back(old);
                if self.retired_order.len() > MAX_RETIRED {
                    if let Some(x) = self.retired_order.pop_front() {
                        self.retired.remove(&x);
                    }
                }
            }
        }
        let w = self.sessions.entry(session).or_insert(Window {
            top: counter,
            seen: 0,
            heard: clock,
        });
        w.accept(counter);
        w.heard = clock;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn key(seed: u8) -> LinkKey {
        LinkKey::from_bytes([seed; KEY_LEN])
    }

    #[test]
    fn round_trip_sealed_and_plain() {
        for k in [Some(key(1)), None] {
            let mut tx = Sealer::with_session(k.clone(), 7);
            let mut rx = Opener::new(k);
            for i in 0..10u8 {
                let f = tx.seal(&[i; 20]).unwrap();
                assert_eq!(f.len(), 20 + tx.overhead());
                let o = rx.open(&f).unwrap();
                assert_eq!((o.session, o.counter, o.inner), (7, u32::from(i), vec![i; 20]));
            }
            assert_eq!(rx.counters().accepted, 10);
            assert_eq!(rx.counters().refused(), 0);
        }
    }

    #[test]
    fn sealed_frames_hide_the_payload() {
        let mut tx = Sealer::with_session(Some(key(1)), 7);
        let f = tx.seal(&[0u8; 64]).unwrap();
        // Zeros in, keystream out: not one run of 8 zero bytes in the ciphertext.
        assert!(!f[super::super::frame::SEALED_HEADER..]
            .windows(8)
            .any(|w| w == [0u8; 8]));
    }

    /// Acceptance 6: 10 000 tampered, 10 000 replayed and 10 000 wrongly keyed frames are all
    /// refused and counted, and none is passed on.
    #[test]
    fn ten_thousand_each_of_tampered_replayed_and_wrong_key_frames_are_refused() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let mut tx = Sealer::with_session(Some(key(1)), rng.random());
        let mut other = Sealer::with_session(Some(key(2)), rng.random());
        let mut rx = Opener::new(Some(key(1)));
        let mut genuine = Vec::new();
        for i in 0..10_000usize {
            let len = rng.random_range(0..300);
            let inner: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            let f = tx.seal(&inner).unwrap();
            // Tampered: one to four random bits flipped anywhere after the key id (the header
            // is authenticated as associated data, so that counts too).
            let mut t = f.clone();
            for _ in 0..rng.random_range(1..=4) {
                let pos = rng.random_range(3..t.len());
                t[pos] ^= 1 << rng.random_range(0..8);
            }
            if t != f {
                assert!(matches!(rx.open(&t), Err(LinkError::Tampered)), "tampered frame {i}");
            } else {
                // Flips that cancelled out: flip one bit for sure.
                t[3] ^= 1;
                assert!(matches!(rx.open(&t), Err(LinkError::Tampered)), "tampered frame {i}");
            }
            // Wrongly keyed: a well-formed frame under another key.
            let w = other.seal(&inner).unwrap();
            assert!(
                matches!(rx.open(&w), Err(LinkError::WrongKey { .. })),
                "wrong-key frame {i}"
            );
            // Genuine, then replayed (immediately for half, later for the rest).
            let o = rx.open(&f).unwrap();
            assert_eq!(o.inner, inner);
            genuine.push(f);
            if i % 2 == 0 {
                assert!(matches!(rx.open(&genuine[i]), Err(LinkError::Replayed { .. })));
            }
        }
        for (i, f) in genuine.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            assert!(matches!(rx.open(f), Err(LinkError::Replayed { .. })), "replay {i}");
        }
        let c = rx.counters();
        assert_eq!(c.accepted, 10_000);
        assert_eq!(c.tampered, 10_000);
        assert_eq!(c.wrong_key, 10_000);
        assert_eq!(c.replayed, 10_000);
        assert_eq!(c.malformed + c.unauthenticated, 0);
    }

    #[test]
    fn replay_window_accepts_reordering_and_refuses_old_frames() {
        let mut tx = Sealer::with_session(Some(key(3)), 1);
        let mut rx = Opener::new(Some(key(3)));
        let frames: Vec<Vec<u8>> = (0..300).map(|i| tx.seal(&[i as u8]).unwrap()).collect();
        // Out of order within the window: accepted once each.
        for i in [5usize, 3, 4, 0, 1, 2, 130, 10, 129] {
            rx.open(&frames[i]).unwrap();
        }
        // 130 is the top: 2 is 128 behind (outside), 3 and 4 were seen.
        assert!(matches!(rx.open(&frames[2]), Err(LinkError::Replayed { .. })));
        assert!(matches!(rx.open(&frames[4]), Err(LinkError::Replayed { .. })));
        // 6 is 124 behind, never seen: accepted.
        rx.open(&frames[6]).unwrap();
        // Far ahead: the window moves to 299; 171 (128 behind) is too old even though it was
        // never seen, 172 (127 behind) is new once.
        rx.open(&frames[299]).unwrap();
        assert!(matches!(rx.open(&frames[171]), Err(LinkError::Replayed { .. })));
        rx.open(&frames[172]).unwrap();
        assert!(matches!(rx.open(&frames[172]), Err(LinkError::Replayed { .. })));
    }

    #[test]
    fn security_mismatches_are_refused() {
        let mut plain = Sealer::with_session(None, 1);
        let mut sealed = Sealer::with_session(Some(key(1)), 2);
        let mut secure_rx = Opener::new(Some(key(1)));
        let mut insecure_rx = Opener::new(None);
        assert!(matches!(
            secure_rx.open(&plain.seal(b"x").unwrap()),
            Err(LinkError::Unauthenticated)
        ));
        assert!(matches!(
            insecure_rx.open(&sealed.seal(b"x").unwrap()),
            Err(LinkError::WrongKey { ours: None, .. })
        ));
        assert_eq!(secure_rx.counters().unauthenticated, 1);
        assert_eq!(insecure_rx.counters().wrong_key, 1);
    }

    #[test]
    fn retired_sessions_stay_refused() {
        let k = key(9);
        let mut rx = Opener::new(Some(k.clone()));
        let mut first = Sealer::with_session(Some(k.clone()), 1000);
        let f = first.seal(b"a").unwrap();
        let g = first.seal(b"b").unwrap();
        rx.open(&f).unwrap();
        for s in 0..MAX_SESSIONS as u64 {
            rx.open(&Sealer::with_session(Some(k.clone()), s).seal(b"x").unwrap())
                .unwrap();
        }
        // Session 1000 was pushed out: even its unseen frame is now refused.
        assert!(matches!(rx.open(&g), Err(LinkError::Replayed { .. })));
    }

    #[test]
    fn keys_from_files_and_passphrases() {
        let k = key(0xab);
        let hex = k.to_hex();
        assert_eq!(LinkKey::parse(format!(" {hex}\n").as_bytes()).unwrap().id(), k.id());
        assert_eq!(LinkKey::parse(&[0xab; 32]).unwrap().id(), k.id());
        assert!(LinkKey::parse(b"abc").is_err());
        assert!(LinkKey::parse(&[b'g'; 64]).is_err());
        let a = LinkKey::from_passphrase("correct horse battery", "lab").unwrap();
        let b = LinkKey::from_passphrase("correct horse battery", "lab").unwrap();
        let c = LinkKey::from_passphrase("correct horse battery", "field").unwrap();
        assert_eq!(a.to_hex(), b.to_hex());
        assert_ne!(a.to_hex(), c.to_hex());
        assert!(LinkKey::from_passphrase("short", "lab").is_err());
        assert!(!format!("{a:?}").contains(&a.to_hex()[..8]));
    }

    #[test]
    fn the_sender_stops_before_its_counter_wraps() {
        let mut tx = Sealer::with_session(Some(key(1)), 1);
        tx.counter = u64::from(u32::MAX);
        tx.seal(b"last").unwrap();
        assert!(matches!(tx.seal(b"one more"), Err(LinkError::CounterExhausted)));
    }
}
