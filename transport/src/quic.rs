//! The QUIC link (quinn, rustls with ring): whole items on streams, small items as datagrams,
//! each acknowledged by the receiver with the SHA-256 of what it got, so the sender knows every
//! item's fate.
//!
//! ```text
//!  client → server, one bidirectional stream per item (or one datagram, see below)
//!  bytes 0–3    b"SCQ1"
//!  byte 4       item kind (ItemKind::code)
//!  bytes 5–8    item id (big-endian)
//!  bytes 9–12   length n (big-endian)
//!  bytes 13–44  SHA-256 of the item
//!  then         n bytes, then FIN
//!  server → client
//!  byte 0       status: 0 received intact, 1 refused (too large, malformed), 2 hash mismatch
//!  bytes 1–32   SHA-256 of what the server received (zeros when refused)
//! ```
//!
//! **Datagrams.** An item whose header and bytes fit one QUIC datagram (about 1.2 kB; the
//! path's limit) goes as an unreliable datagram with the same 45-byte header, when
//! [`QuicClientConfig::datagrams`] is on (the default): no stream to open, no flow-control
//! frames. Reliability is ours: the server answers every datagram item with an acknowledgement
//! datagram (`b"SCA1"`, status, id, SHA-256 of what it got), and the client sends the item again
//! after a retransmission timeout (twice the smoothed RTT, at least 20 ms, doubling, at most
//! 1 s) until it is acknowledged or the item timeout expires (then it is reported failed). The
//! server passes each (connection, id) on once: a repeat is acknowledged again, not delivered
//! again. Ids are remembered for two minutes, longer than any client retries.
//!
//! **Certificates.** The server presents a self-signed certificate, generated with rcgen or
//! given as DER files. The client trusts that one certificate and nothing else (it is the only
//! trust anchor of its verifier; there is no system root store), so a server with any other
//! certificate fails the handshake: the client *pins* it.
//!
//! Both ends run their own tokio runtime on background threads; the API is blocking.

use crate::link::{Item, ItemKind, ItemLinkStats, ItemReport, Link, LinkError, Outcome, SendReport};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::Digest;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 4] = b"SCQ1";
const HEADER: usize = 45;
/// Server name the certificate is made for and the client asks for.
pub const SERVER_NAME: &str = "semcom";
/// ALPN protocol id.
const ALPN: &[u8] = b"semcom-items/1";

/// Acknowledgement of a datagram item: magic, status, id, SHA-256.
const ACK_MAGIC: &[u8; 4] = b"SCA1";
const ACK_LEN: usize = 4 + 1 + 4 + 32;
/// How long the server remembers datagram item ids (duplicate suppression).
const DEDUP_FOR: Duration = Duration::from_secs(120);

const ST_OK: u8 = 0;
const ST_REFUSED: u8 = 1;
const ST_HASH: u8 = 2;

fn quic_err(what: &str, e: impl std::fmt::Display) -> LinkError {
    LinkError::Quic(format!("{what}: {e}"))
}

fn runtime() -> Result<tokio::runtime::Runtime, LinkError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| quic_err("tokio runtime", e))
}

/// A certificate and its private key (DER).
#[derive(Clone)]
pub struct CertKey {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl std::fmt::Debug for CertKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CertKey({} bytes of certificate, key hidden)", self.cert_der.len())
    }
}

impl CertKey {
    /// A fresh self-signed certificate for [`SERVER_NAME`] and `extra_names`.
    pub fn generate(extra_names: &[String]) -> Result<Self, LinkError> {
        let mut names = vec![SERVER_NAME.to_string()];
        names.extend(extra_names.iter().cloned());
        let ck = rcgen::generate_simple_self_signed(names).map_err(|e| quic_err("generating a certificate", e))?;
        Ok(Self {
            cert_der: ck.cert.der().to_vec(),
            key_der: ck.key_pair.serialize_der(),
        })
    }

    /// Reads a certificate and key (DER files).
    pub fn load(cert: &Path, key: &Path) -> Result<Self, LinkError> {
        let read = |p: &Path| std::fs::read(p).map_err(|e| LinkError::Key(format!("{}: {e}", p.display())));
        Ok(Self {
            cert_der: read(cert)?,
            key_der: read(key)?,
        })
    }

    /// Writes the certificate and key (DER files; the key file readable by its owner only on
    /// Unix).
    pub fn save(&self, cert: &Path, key: &Path) -> Result<(), LinkError> {
        let io = |p: &Path, e: std::io::Error| LinkError::Key(format!("{}: {e}", p.display()));
        std::fs::write(cert, &self.cert_der).map_err(|e| io(cert, e))?;
        std::fs::write(key, &self.key_der).map_err(|e| io(key, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).map_err(|e| io(key, e))?;
        }
        Ok(())
    }
}

fn sha256(b: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(b).into()
}

/// One item a [`QuicServer`] received intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuicItem {
    /// The sender's address.
    pub peer: SocketAddr,
    /// What it is.
    pub kind: ItemKind,
    /// The sender's id.
    pub id: u32,
    /// The bytes (their SHA-256 matched the sender's).
    pub bytes: Vec<u8>,
}

/// Counters of a [`QuicServer`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuicServerCounters {
    /// Connections accepted (handshake completed).
    pub connections: u64,
    /// Handshakes that failed.
    pub failed_handshakes: u64,
    /// Items received intact.
    pub items: u64,
    /// Streams refused: bad header, unknown kind, truncated.
    pub malformed: u64,
    /// Items refused for their size.
    pub oversized: u64,
    /// Items whose bytes did not match the sender's hash.
    pub hash_mismatch: u64,
    /// Items (of `items`) that came as datagrams.
    pub datagram_items: u64,
    /// Repeated datagram items (a retransmission whose first copy had arrived): acknowledged
    /// again, not delivered again.
    pub duplicates: u64,
}

/// A QUIC server receiving items.
#[derive(Debug)]
pub struct QuicServer {
    // The endpoint drops before its runtime.
    endpoint: quinn::Endpoint,
    rx: std::sync::mpsc::Receiver<QuicItem>,
    counters: Arc<Mutex<QuicServerCounters>>,
    rt: tokio::runtime::Runtime,
}

impl QuicServer {
    /// Listens on `listen` with `cert`; items larger than `max_item` bytes are refused.
    pub fn bind(listen: SocketAddr, cert: &CertKey, max_item: usize) -> Result<Self, LinkError> {
        let rt = runtime()?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der.clone()));
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| quic_err("TLS", e))?
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(cert.cert_der.clone())], key)
            .map_err(|e| quic_err("server certificate", e))?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).map_err(|e| quic_err("QUIC TLS", e))?;
        let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        let mut transport = quinn::TransportConfig::default();
        transport.max_concurrent_bidi_streams(256u32.into());
        cfg.transport_config(Arc::new(transport));
        let endpoint = {
            let _g = rt.enter();
            quinn::Endpoint::server(cfg, listen).map_err(|e| quic_err(&format!("listening on {listen}"), e))?
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let counters = Arc::new(Mutex::new(QuicServerCounters::default()));
        let ep = endpoint.clone();
        let c = counters.clone();
        rt.spawn(async move {
            while let Some(incoming) = ep.accept().await {
                let tx = tx.clone();
                let c = c.clone();
                tokio::spawn(async move {
                    let conn = match incoming.await {
                        Ok(conn) => conn,
                        Err(e) => {
                            tracing::debug!("handshake failed: {e}");
                            bump(&c, |k| k.failed_handshakes += 1);
                            return;
                        }
                    };
                    bump(&c, |k| k.connections += 1);
                    let peer = conn.remote_address();
                    {
                        let (conn, tx, c) = (conn.clone(), tx.clone(), c.clone());
                        tokio::spawn(async move { serve_datagrams(conn, max_item, &c, &tx).await });
                    }
                    while let Ok((send, recv)) = conn.accept_bi().await {
                        let tx = tx.clone();
                        let c = c.clone();
                        tokio::spawn(async move {
                            serve_stream(peer, send, recv, max_item, &c, &tx).await;
                        });
                    }
                });
            }
        });
        Ok(Self {
            rt,
            endpoint,
            rx,
            counters,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, LinkError> {
        self.endpoint.local_addr().map_err(|e| quic_err("local address", e))
    }

    /// The next item received, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<QuicItem> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The counters so far.
    pub fn counters(&self) -> QuicServerCounters {
        self.counters.lock().map(|c| *c).unwrap_or_default()
    }

    /// Stops listening and closes every connection.
    pub fn close(self) {
        let _g = self.rt.enter();
        self.endpoint.close(0u32.into(), b"bye");
    }
}

fn bump(c: &Mutex<QuicServerCounters>, f: impl FnOnce(&mut QuicServerCounters)) {
    if let Ok(mut g) = c.lock() {
        f(&mut g);
    }
}

async fn serve_stream(
    peer: SocketAddr,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    max_item: usize,
    c: &Mutex<QuicServerCounters>,
    tx: &std::sync::mpsc::Sender<QuicItem>,
) {
    let mut h = [0u8; HEADER];
    let reply = |status: u8, hash: [u8; 32]| {
        let mut r = vec![status];
        r.extend_from_slice(&hash);
        r
    };
    let header = match recv.read_exact(&mut h).await {
        Ok(()) => check_header(&h, max_item),
        Err(_) => HeaderCheck::Malformed(None),
    };
    let (kind, id, len, hash) = match header {
        HeaderCheck::Good { kind, id, len, hash } => (kind, id, len, hash),
        HeaderCheck::Malformed(_) => {
            bump(c, |k| k.malformed += 1);
            let _ = send.write_all(&reply(ST_REFUSED, [0; 32])).await;
            let _ = send.finish();
            return;
        }
        HeaderCheck::Oversized(_) => {
            bump(c, |k| k.oversized += 1);
            let _ = recv.stop(1u32.into());
            let _ = send.write_all(&reply(ST_REFUSED, [0; 32])).await;
            let _ = send.finish();
            return;
        }
    };
    let bytes = match recv.read_to_end(len).await {
        Ok(b) if b.len() == len => b,
        _ => {
            bump(c, |k| k.malformed += 1);
            let _ = send.write_all(&reply(ST_REFUSED, [0; 32])).await;
            let _ = send.finish();
            return;
        }
    };
    let got = sha256(&bytes);
    if got != hash {
        bump(c, |k| k.hash_mismatch += 1);
        let _ = send.write_all(&reply(ST_HASH, got)).await;
        let _ = send.finish();
        return;
    }
    bump(c, |k| k.items += 1);
    let _ = tx.send(QuicItem { peer, kind, id, bytes });
    let _ = send.write_all(&reply(ST_OK, got)).await;
    let _ = send.finish();
}

/// What an item's 45-byte header (stream or datagram) says, or why it is refused (with the id
/// when the header got that far).
enum HeaderCheck {
    Good {
        kind: ItemKind,
        id: u32,
        len: usize,
        hash: [u8; 32],
    },
    Malformed(Option<u32>),
    Oversized(u32),
}

/// Checks the header `h` (at least [`HEADER`] bytes): magic, kind, and the length against
/// `max_item`.
fn check_header(h: &[u8], max_item: usize) -> HeaderCheck {
    if h.len() < HEADER || &h[..4] != MAGIC {
        return HeaderCheck::Malformed(None);
    }
    let id = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
    let Some(kind) = ItemKind::from_code(h[4]) else {
        return HeaderCheck::Malformed(Some(id));
    };
    let len = u32::from_be_bytes([h[9], h[10], h[11], h[12]]) as usize;
    if len > max_item {
        return HeaderCheck::Oversized(id);
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&h[13..HEADER]);
    HeaderCheck::Good { kind, id, len, hash }
}

/// What a datagram item is, or why it is refused.
enum DatagramCheck<'a> {
    Good { kind: ItemKind, id: u32, bytes: &'a [u8] },
    Malformed(Option<u32>),
    Oversized(u32),
    HashMismatch(u32),
}

fn check_datagram(d: &[u8], max_item: usize) -> DatagramCheck<'_> {
    let (kind, id, len, hash) = match check_header(d, max_item) {
        HeaderCheck::Good { kind, id, len, hash } => (kind, id, len, hash),
        HeaderCheck::Malformed(id) => return DatagramCheck::Malformed(id),
        HeaderCheck::Oversized(id) => return DatagramCheck::Oversized(id),
    };
    if d.len() != HEADER + len {
        return DatagramCheck::Malformed(Some(id));
    }
    let bytes = &d[HEADER..];
    if sha256(bytes) != hash {
        return DatagramCheck::HashMismatch(id);
    }
    DatagramCheck::Good { kind, id, bytes }
}

fn ack_datagram(status: u8, id: u32, hash: [u8; 32]) -> bytes::Bytes {
    let mut a = Vec::with_capacity(ACK_LEN);
    a.extend_from_slice(ACK_MAGIC);
    a.push(status);
    a.extend_from_slice(&id.to_be_bytes());
    a.extend_from_slice(&hash);
    a.into()
}

/// The datagram items of one connection: check, deduplicate, deliver, acknowledge.
async fn serve_datagrams(
    conn: quinn::Connection,
    max_item: usize,
    c: &Mutex<QuicServerCounters>,
    tx: &std::sync::mpsc::Sender<QuicItem>,
) {
    let peer = conn.remote_address();
    let mut seen: std::collections::HashMap<u32, Instant> = std::collections::HashMap::new();
    let mut last_prune = Instant::now();
    while let Ok(d) = conn.read_datagram().await {
        if last_prune.elapsed() > DEDUP_FOR / 4 {
            seen.retain(|_, t| t.elapsed() < DEDUP_FOR);
            last_prune = Instant::now();
        }
        let ack = match check_datagram(&d, max_item) {
            DatagramCheck::Good { kind, id, bytes } => {
                let hash = sha256(bytes);
                if seen.insert(id, Instant::now()).is_some() {
                    bump(c, |k| k.duplicates += 1);
                } else {
                    bump(c, |k| {
                        k.items += 1;
                        k.datagram_items += 1;
                    });
                    let _ = tx.send(QuicItem {
                        peer,
                        kind,
                        id,
                        bytes: bytes.to_vec(),
                    });
                }
                Some(ack_datagram(ST_OK, id, hash))
            }
            DatagramCheck::Malformed(id) => {
                bump(c, |k| k.malformed += 1);
                id.map(|id| ack_datagram(ST_REFUSED, id, [0; 32]))
            }
            DatagramCheck::Oversized(id) => {
                bump(c, |k| k.oversized += 1);
                Some(ack_datagram(ST_REFUSED, id, [0; 32]))
            }
            DatagramCheck::HashMismatch(id) => {
                bump(c, |k| k.hash_mismatch += 1);
                Some(ack_datagram(ST_HASH, id, sha256(&d[HEADER..])))
            }
        };
        if let Some(a) = ack {
            // Lost acknowledgements are repaired by the client's retransmission.
            let _ = conn.send_datagram(a);
        }
    }
}

/// Settings of a [`QuicClient`].
#[derive(Clone, Debug)]
pub struct QuicClientConfig {
    /// Largest item sent (larger ones are refused before sending).
    pub max_item: usize,
    /// An item not acknowledged within this time is reported failed.
    pub item_timeout: Duration,
    /// Connection handshake limit.
    pub connect_timeout: Duration,
    /// Send items that fit one datagram as datagrams (acknowledged and retransmitted by the
    /// link, see the module docs); off: every item on its own stream.
    pub datagrams: bool,
}

impl Default for QuicClientConfig {
    fn default() -> Self {
        Self {
            max_item: 1 << 20,
            item_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            datagrams: true,
        }
    }
}

/// What became of one item sent over QUIC.
#[derive(Clone, Debug, PartialEq)]
pub enum QuicOutcome {
    /// The server acknowledged it with the same SHA-256.
    Delivered {
        /// From the start of sending to the acknowledgement.
        latency: Duration,
    },
    /// Not acknowledged (timeout, connection lost), refused or corrupted: the reason.
    Failed(String),
}

/// A QUIC client sending items to one server whose certificate it pins.
#[derive(Debug)]
pub struct QuicClient {
    // Fields drop in this order: the connection and endpoint before their runtime.
    conn: quinn::Connection,
    endpoint: quinn::Endpoint,
    cfg: QuicClientConfig,
    next_id: u32,
    reports: VecDeque<ItemReport>,
    stats: ItemLinkStats,
    /// Datagram items awaiting their acknowledgement, by id.
    acks: AckTable,
    rt: tokio::runtime::Runtime,
}

/// Waiting senders of datagram items: id → where the acknowledgement (status, hash) goes.
type AckTable = Arc<Mutex<std::collections::HashMap<u32, tokio::sync::mpsc::UnboundedSender<(u8, [u8; 32])>>>>;

impl QuicClient {
    /// Connects to `server`, trusting only `pinned_cert_der`.
    pub fn connect(server: SocketAddr, pinned_cert_der: &[u8], cfg: QuicClientConfig) -> Result<Self, LinkError> {
        let rt = runtime()?;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(pinned_cert_der.to_vec()))
            .map_err(|e| quic_err("pinned certificate", e))?;
        let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| quic_err("TLS", e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        tls.alpn_protocols = vec![ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| quic_err("QUIC TLS", e))?;
        let client_cfg = quinn::ClientConfig::new(Arc::new(crypto));
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().expect("address")
        } else {
            "[::]:0".parse().expect("address")
        };
        let (endpoint, conn) = {
            // quinn spawns its drivers on the current runtime: stay inside it, also when an
            // error drops the endpoint.
            let _g = rt.enter();
            let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| quic_err("binding the client", e))?;
            endpoint.set_default_client_config(client_cfg);
            let connecting = endpoint
                .connect(server, SERVER_NAME)
                .map_err(|e| quic_err(&format!("connecting to {server}"), e))?;
            let conn = rt.block_on(async {
                match tokio::time::timeout(cfg.connect_timeout, connecting).await {
                    Ok(Ok(c)) => Ok(c),
                    Ok(Err(e)) => Err(quic_err(&format!("handshake with {server}"), e)),
                    Err(_) => Err(LinkError::Quic(format!(
                        "handshake with {server}: no answer within {:?}",
                        cfg.connect_timeout
                    ))),
                }
            })?;
            (endpoint, conn)
        };
        let acks: AckTable = Arc::default();
        {
            // Acknowledgements of datagram items, to whichever sender waits for them.
            let (conn, acks) = (conn.clone(), acks.clone());
            rt.spawn(async move {
                while let Ok(d) = conn.read_datagram().await {
                    if d.len() != ACK_LEN || &d[..4] != ACK_MAGIC {
                        tracing::debug!("malformed acknowledgement datagram ({} bytes)", d.len());
                        continue;
                    }
                    let id = u32::from_be_bytes([d[5], d[6], d[7], d[8]]);
                    let mut hash = [0u8; 32];
                    hash.copy_from_slice(&d[9..]);
                    if let Some(w) = acks.lock().ok().and_then(|t| t.get(&id).cloned()) {
                        let _ = w.send((d[4], hash));
                    }
                }
            });
        }
        Ok(Self {
            rt,
            endpoint,
            conn,
            cfg,
            next_id: 0,
            reports: VecDeque::new(),
            stats: ItemLinkStats::default(),
            acks,
        })
    }

    /// Sends many items, up to `parallel` at a time; one outcome per item, in order.
    pub fn send_all(&mut self, items: &[Item], parallel: usize) -> Vec<Result<QuicOutcome, LinkError>> {
        let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut handles = Vec::with_capacity(items.len());
        for it in items {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if it.bytes.len() > self.cfg.max_item {
                handles.push(Err(LinkError::ItemTooLarge {
                    bytes: it.bytes.len(),
                    max: self.cfg.max_item,
                }));
                continue;
            }
            let conn = self.conn.clone();
            let sem = sem.clone();
            let it = it.clone();
            let timeout = self.cfg.item_timeout;
            let as_datagram = self.cfg.datagrams
                && self
                    .conn
                    .max_datagram_size()
                    .is_some_and(|m| HEADER + it.bytes.len() <= m);
            let acks = self.acks.clone();
            handles.push(Ok(self.rt.spawn(async move {
                let _permit = sem.acquire_owned().await;
                if as_datagram {
                    send_datagram(&conn, &acks, &it, id, timeout).await
                } else {
                    send_one(&conn, &it, id, timeout).await
                }
            })));
        }
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.push(match h {
                Err(e) => Err(e),
                Ok(j) => match self.rt.block_on(j) {
                    Ok(o) => Ok(o),
                    Err(e) => Err(quic_err("send task", e)),
                },
            });
        }
        for (o, it) in out.iter().zip(items) {
            self.stats.items_sent += 1;
            self.stats.frames_sent += 1;
            self.stats.wire_bytes += (HEADER + it.bytes.len()) as u64;
            match o {
                Ok(QuicOutcome::Delivered { .. }) => self.stats.delivered += 1,
                _ => self.stats.lost += 1,
            }
        }
        out
    }

    /// Closes the connection.
    pub fn close(self) {
        let _g = self.rt.enter();
        self.conn.close(0u32.into(), b"done");
        let _ = self
            .rt
            .block_on(tokio::time::timeout(Duration::from_secs(1), self.endpoint.wait_idle()));
    }
}

/// The 45-byte header and the bytes of an item (stream or datagram).
fn framed(it: &Item, id: u32, hash: &[u8; 32]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER + it.bytes.len());
    h.extend_from_slice(MAGIC);
    h.push(it.kind.code());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&(it.bytes.len() as u32).to_be_bytes());
    h.extend_from_slice(hash);
    h.extend_from_slice(&it.bytes);
    h
}

/// One item as a datagram, sent again after each retransmission timeout until acknowledged.
async fn send_datagram(
    conn: &quinn::Connection,
    acks: &AckTable,
    it: &Item,
    id: u32,
    timeout: Duration,
) -> QuicOutcome {
    let start = Instant::now();
    let hash = sha256(&it.bytes);
    let data = bytes::Bytes::from(framed(it, id, &hash));
    let (wtx, mut wrx) = tokio::sync::mpsc::unbounded_channel();
    if let Ok(mut t) = acks.lock() {
        t.insert(id, wtx);
    }
    let fut = async {
        let mut rto = (conn.rtt() * 2).clamp(Duration::from_millis(20), Duration::from_secs(1));
        loop {
            conn.send_datagram(data.clone())
                .map_err(|e| format!("sending a datagram: {e}"))?;
            match tokio::time::timeout(rto, wrx.recv()).await {
                Ok(Some((status, got))) => {
                    return match status {
                        ST_OK if got == hash => Ok(()),
                        ST_OK => Err("acknowledged with another hash".to_string()),
                        ST_REFUSED => Err("refused by the server (size or format)".to_string()),
                        ST_HASH => Err("the server received other bytes (hash mismatch)".to_string()),
                        _ => Err("malformed acknowledgement".to_string()),
                    };
                }
                Ok(None) => return Err("acknowledgement channel closed".to_string()),
                Err(_) => rto = (rto * 2).min(Duration::from_secs(1)),
            }
        }
    };
    let r = tokio::time::timeout(timeout, fut).await;
    if let Ok(mut t) = acks.lock() {
        t.remove(&id);
    }
    match r {
        Ok(Ok(())) => QuicOutcome::Delivered {
            latency: start.elapsed(),
        },
        Ok(Err(e)) => QuicOutcome::Failed(e),
        Err(_) => QuicOutcome::Failed(format!("not acknowledged within {timeout:?}")),
    }
}

async fn send_one(conn: &quinn::Connection, it: &Item, id: u32, timeout: Duration) -> QuicOutcome {
    let start = Instant::now();
    let hash = sha256(&it.bytes);
    let fut = async {
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| format!("opening a stream: {e}"))?;
        let h = framed(it, id, &hash);
        // A server that refuses the item stops our stream and says why on its half: read the
        // answer even when the write was cut short.
        let written = match send.write_all(&h).await {
            Ok(()) => send.finish().map_err(|e| format!("finishing: {e}")),
            Err(e) => Err(format!("sending: {e}")),
        };
        let reply = match recv.read_to_end(33).await {
            Ok(r) => r,
            Err(e) => {
                return Err(written
                    .err()
                    .unwrap_or_else(|| format!("awaiting the acknowledgement: {e}")))
            }
        };
        match reply.first() {
            Some(&ST_OK) if reply.len() == 33 && reply[1..] == hash => Ok(()),
            Some(&ST_OK) => Err("acknowledged with another hash".to_string()),
            Some(&ST_REFUSED) => Err("refused by the server (size or format)".to_string()),
            Some(&ST_HASH) => Err("the server received other bytes (hash mismatch)".to_string()),
            _ => Err("malformed acknowledgement".to_string()),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(())) => QuicOutcome::Delivered {
            latency: start.elapsed(),
        },
        Ok(Err(e)) => QuicOutcome::Failed(e),
        Err(_) => QuicOutcome::Failed(format!("not acknowledged within {timeout:?}")),
    }
}

impl Link for QuicClient {
    /// Sends one item and waits for its acknowledgement (or the item timeout).
    fn send(&mut self, item: &Item) -> Result<SendReport, LinkError> {
        let id = self.next_id;
        let o = self.send_all(std::slice::from_ref(item), 1).pop().expect("one outcome");
        let (outcome, latency_us) = match o {
            Ok(QuicOutcome::Delivered { latency }) => (
                Outcome::Delivered(item.bytes.clone()),
                Some(latency.as_secs_f64() * 1e6),
            ),
            Ok(QuicOutcome::Failed(reason)) => {
                tracing::debug!(id, "item failed: {reason}");
                (Outcome::Lost, None)
            }
            Err(e) => return Err(e),
        };
        self.reports.push_back(ItemReport {
            session: 0,
            id: id as u16,
            kind: Some(item.kind),
            outcome,
            latency_us,
            snr_db: None,
            evm_db: None,
        });
        Ok(SendReport {
            id: id as u16,
            frames: 1,
            wire_bytes: HEADER + item.bytes.len(),
            airtime_us: 0.0,
        })
    }

    /// The sender's view: each item sent, delivered (acknowledged intact) or lost.
    fn poll(&mut self) -> Result<Vec<ItemReport>, LinkError> {
        Ok(self.reports.drain(..).collect())
    }

    fn finish(&mut self) -> Result<Vec<ItemReport>, LinkError> {
        self.poll()
    }

    fn stats(&self) -> ItemLinkStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn item(len: usize) -> Vec<u8> {
        let it = Item::new(ItemKind::Zstd, (0..len).map(|i| i as u8).collect());
        framed(&it, 7, &sha256(&it.bytes))
    }

    #[test]
    fn datagram_items_are_checked_before_delivery() {
        let good = item(300);
        assert!(matches!(check_datagram(&good, 1000), DatagramCheck::Good { id: 7, bytes, .. } if bytes.len() == 300));
        assert!(matches!(check_datagram(&good, 299), DatagramCheck::Oversized(7)));
        assert!(matches!(
            check_datagram(&good[..good.len() - 1], 1000),
            DatagramCheck::Malformed(Some(7))
        ));
        assert!(matches!(
            check_datagram(&good[..HEADER - 1], 1000),
            DatagramCheck::Malformed(None)
        ));
        let mut bad_kind = good.clone();
        bad_kind[4] = 0xff;
        assert!(matches!(
            check_datagram(&bad_kind, 1000),
            DatagramCheck::Malformed(Some(7))
        ));
        let mut flipped = good.clone();
        flipped[HEADER + 10] ^= 1;
        assert!(matches!(check_datagram(&flipped, 1000), DatagramCheck::HashMismatch(7)));
        // Random bytes (seeded): never delivered.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        for _ in 0..10_000 {
            let n = rng.random_range(0..200);
            let mut d: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            if n >= 4 && rng.random_bool(0.5) {
                d[..4].copy_from_slice(MAGIC);
            }
            assert!(!matches!(check_datagram(&d, 1 << 20), DatagramCheck::Good { .. }));
        }
    }
}
