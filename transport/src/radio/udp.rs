//! The udp backend: IQ samples in UDP datagrams between processes (a virtual radio, e.g.
//! `semcom tx` → `semcom channel` → `semcom rx` on one machine).
//!
//! Each datagram is a 32-byte header and whole samples:
//!
//! | bytes | field |
//! |---|---|
//! | 0–3 | magic `SCIQ` |
//! | 4 | version (1) |
//! | 5 | sample format: 0 cf32, 1 ci16, 2 cu8, 3 ci8 (little-endian, as in SigMF) |
//! | 6–7 | flags, u16 LE: bit 0 = end of stream (no samples follow) |
//! | 8–11 | stream id, u32 LE: random per sender, so a restarted sender is a new stream |
//! | 12–15 | sequence number of the datagram, u32 LE, wrapping |
//! | 16–23 | index of the first sample in the stream, u64 LE |
//! | 24–31 | sample rate, f64 LE, samples per second |
//!
//! The sender is paced at the sample rate (it may run [`UdpConfig::lead`] ahead), like a
//! device's transmit buffer. The receiver counts missing datagrams and samples from the
//! sequence numbers and sample indices ([`RadioStats::lost_packets`], [`RadioStats::lost_samples`]),
//! fills short gaps with zeros so sample offsets keep matching time, drops datagrams that arrive
//! late, and ignores datagrams that are not semcom IQ (counted as `bad_packets`). None of that
//! ends the stream; an end-of-stream datagram does.

use super::{Radio, RadioInfo, RadioStats, RxRead};
use crate::{IqFormat, TransportError};
use num_complex::Complex32;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// Datagram header length, bytes.
pub const HEADER_LEN: usize = 32;
const MAGIC: &[u8; 4] = b"SCIQ";
const VERSION: u8 = 1;
/// Flag: the sender ended the stream.
pub const FLAG_END: u16 = 1;
/// End-of-stream datagrams are sent this many times (UDP may drop one).
const END_REPEAT: usize = 3;

/// The header of one datagram.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PacketHeader {
    /// Sample format of the payload.
    pub format: IqFormat,
    /// Flags ([`FLAG_END`]).
    pub flags: u16,
    /// Random id of the sender's stream.
    pub stream_id: u32,
    /// Datagram sequence number.
    pub seq: u32,
    /// Stream index of the first sample.
    pub first_sample: u64,
    /// Sample rate, S/s.
    pub sample_rate_hz: f64,
}

fn format_code(f: IqFormat) -> u8 {
    match f {
        IqFormat::Cf32 => 0,
        IqFormat::Ci16 => 1,
        IqFormat::Cu8 => 2,
        IqFormat::Ci8 => 3,
    }
}

impl PacketHeader {
    /// Appends the header and `samples` encoded in the header's format to `out`.
    pub fn encode(&self, samples: &[Complex32], out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(format_code(self.format));
        out.extend_from_slice(&self.flags.to_le_bytes());
        out.extend_from_slice(&self.stream_id.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.first_sample.to_le_bytes());
        out.extend_from_slice(&self.sample_rate_hz.to_le_bytes());
        for &s in samples {
            self.format.encode(s, out);
        }
    }

    /// Parses a datagram into its header and payload; `Err` says why it is not a valid semcom
    /// IQ datagram.
    pub fn parse(d: &[u8]) -> Result<(PacketHeader, &[u8]), &'static str> {
        if d.len() < HEADER_LEN {
            return Err("shorter than the header");
        }
        if &d[..4] != MAGIC {
            return Err("bad magic");
        }
        if d[4] != VERSION {
            return Err("unknown version");
        }
        let format = match d[5] {
            0 => IqFormat::Cf32,
            1 => IqFormat::Ci16,
            2 => IqFormat::Cu8,
            3 => IqFormat::Ci8,
            _ => return Err("unknown sample format"),
        };
        let u32_at = |i: usize| u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let sample_rate_hz = f64::from_bits(u64_at(24));
        if !(sample_rate_hz.is_finite() && sample_rate_hz > 0.0) {
            return Err("bad sample rate");
        }
        let payload = &d[HEADER_LEN..];
        if !payload.len().is_multiple_of(format.sample_bytes()) {
            return Err("payload is not a whole number of samples");
        }
        Ok((
            PacketHeader {
                format,
                flags: u16::from_le_bytes([d[6], d[7]]),
                stream_id: u32_at(8),
                seq: u32_at(12),
                first_sample: u64_at(16),
                sample_rate_hz,
            },
            payload,
        ))
    }
}

/// Settings of a UDP radio.
#[derive(Clone, Debug, PartialEq)]
pub struct UdpConfig {
    /// Sample rate, S/s: the pace of the sender; the receiver refuses streams at another rate.
    pub sample_rate_hz: f64,
    /// Sample format sent (the receiver takes whatever each datagram says).
    pub format: IqFormat,
    /// Samples per datagram sent (at most 65507 − 32 bytes of payload).
    pub samples_per_packet: usize,
    /// Send at the sample rate (a virtual radio); false sends as fast as samples come (a relay
    /// such as the channel emulator, whose input is already paced).
    pub pace: bool,
    /// How far the paced sender may run ahead of real time.
    pub lead: Duration,
    /// The receiver waits this long for a datagram before reporting a timeout.
    pub read_timeout: Duration,
    /// Gaps up to this many samples are filled with zeros; longer ones are skipped.
    pub max_fill_samples: u64,
    /// Socket buffer size asked of the kernel (it may grant less: `net.core.rmem_max`).
    pub socket_buffer_bytes: usize,
    /// Emulated network loss on the sending side: every `drop_every`-th datagram is not sent
    /// (its sequence number and samples are skipped, so the receiver sees a gap); 0 for none.
    /// Counted in the sender's [`RadioStats::lost_packets`].
    pub drop_every: u64,
}

impl Default for UdpConfig {
    fn default() -> Self {
        Self {
            sample_rate_hz: semcom_phy::ofdm::SAMPLE_RATE_HZ,
            format: IqFormat::Cf32,
            samples_per_packet: 2048,
            pace: true,
            lead: Duration::from_millis(5),
            read_timeout: Duration::from_millis(100),
            max_fill_samples: 1 << 24,
            socket_buffer_bytes: 8 << 20,
            drop_every: 0,
        }
    }
}

/// One end of a UDP IQ stream: [`UdpRadio::listen`] receives, [`UdpRadio::send_to`] transmits.
#[derive(Debug)]
pub struct UdpRadio {
    socket: UdpSocket,
    peer: Option<SocketAddr>,
    info: RadioInfo,
    cfg: UdpConfig,
    stats: RadioStats,
    // Transmit side.
    stream_id: u32,
    seq: u32,
    next_sample: u64,
    tx_pending: Vec<Complex32>,
    packet: Vec<u8>,
    t_start: Option<Instant>,
    finished: bool,
    // Receive side.
    expect: Option<(u32, u32, u64)>,
    datagram: Vec<u8>,
    pending: Vec<Complex32>,
    pending_pos: usize,
    pending_first: u64,
    ended: bool,
}

/// Resolves `HOST:PORT`.
pub fn resolve(addr: &str) -> Result<SocketAddr, TransportError> {
    let bad = |reason: String| TransportError::Address {
        addr: addr.to_string(),
        reason,
    };
    let mut it = addr
        .to_socket_addrs()
        .map_err(|e| bad(format!("not a HOST:PORT address ({e})")))?;
    it.next().ok_or_else(|| bad("resolves to no address".into()))
}

impl UdpRadio {
    fn new(socket: UdpSocket, peer: Option<SocketAddr>, name: String, cfg: UdpConfig) -> Result<Self, TransportError> {
        let max = (65_507 - HEADER_LEN) / cfg.format.sample_bytes();
        if cfg.samples_per_packet == 0 || cfg.samples_per_packet > max {
            return Err(TransportError::Unsupported {
                device: name,
                what: format!(
                    "{} samples per datagram: 1 … {max} fit in a UDP datagram in {}",
                    cfg.samples_per_packet, cfg.format
                ),
            });
        }
        if !(cfg.sample_rate_hz.is_finite() && cfg.sample_rate_hz > 0.0) {
            return Err(TransportError::Unsupported {
                device: name,
                what: format!("sample rate {} S/s", cfg.sample_rate_hz),
            });
        }
        // A random stream id from the clock and the process id (no RNG needed for this).
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let stream_id = nanos ^ std::process::id().rotate_left(16);
        Ok(Self {
            socket,
            peer,
            info: RadioInfo {
                name,
                hardware: Some("semcom udp virtual radio".into()),
                sample_rate_hz: cfg.sample_rate_hz,
                frequency_hz: None,
                timestamps: true,
                realtime: true,
            },
            cfg,
            stats: RadioStats::default(),
            stream_id,
            seq: 0,
            next_sample: 0,
            tx_pending: Vec::new(),
            packet: Vec::new(),
            t_start: None,
            finished: false,
            expect: None,
            datagram: vec![0u8; 65_536],
            pending: Vec::new(),
            pending_pos: 0,
            pending_first: 0,
            ended: false,
        })
    }

    fn socket(addr: SocketAddr, cfg: &UdpConfig, what: &str) -> Result<Socket, TransportError> {
        let err = |source| TransportError::Socket {
            addr: addr.to_string(),
            source,
        };
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)).map_err(err)?;
        // Best effort: the kernel caps the size at net.core.{r,w}mem_max.
        let _ = if what == "rx" {
            s.set_recv_buffer_size(cfg.socket_buffer_bytes)
        } else {
            s.set_send_buffer_size(cfg.socket_buffer_bytes)
        };
        Ok(s)
    }

    /// Receives the stream sent to local address `addr` (`HOST:PORT`; `0.0.0.0:PORT` for all
    /// interfaces).
    pub fn listen(addr: &str, cfg: UdpConfig) -> Result<Self, TransportError> {
        let a = resolve(addr)?;
        let s = Self::socket(a, &cfg, "rx")?;
        s.bind(&a.into()).map_err(|source| TransportError::Socket {
            addr: a.to_string(),
            source,
        })?;
        let socket: UdpSocket = s.into();
        socket
            .set_read_timeout(Some(cfg.read_timeout.max(Duration::from_millis(1))))
            .map_err(|source| TransportError::Socket {
                addr: a.to_string(),
                source,
            })?;
        let local = socket.local_addr().unwrap_or(a);
        Self::new(socket, None, format!("udp {local}"), cfg)
    }

    /// Transmits to `addr` (`HOST:PORT`). Nobody needs to listen: like a radio, it sends anyway.
    pub fn send_to(addr: &str, cfg: UdpConfig) -> Result<Self, TransportError> {
        let peer = resolve(addr)?;
        if peer.port() == 0 {
            return Err(TransportError::Address {
                addr: addr.to_string(),
                reason: "port 0 is no destination (it means \"any port\" only when listening)".into(),
            });
        }
        let local: SocketAddr = if peer.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let s = Self::socket(peer, &cfg, "tx")?;
        s.bind(&local.into()).map_err(|source| TransportError::Socket {
            addr: local.to_string(),
            source,
        })?;
        Self::new(s.into(), Some(peer), format!("udp {peer}"), cfg)
    }

    /// The local address (useful after listening on port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.socket.local_addr().ok()
    }

    fn send_packet(&mut self, n: usize, flags: u16) -> Result<(), TransportError> {
        let Some(peer) = self.peer else {
            return Err(TransportError::NotSupported {
                radio: self.info.name.clone(),
                reason: "a listening UDP radio does not transmit".into(),
            });
        };
        if self.cfg.pace && n > 0 {
            let now = Instant::now();
            let t0 = *self.t_start.get_or_insert(now);
            let due = t0 + Duration::from_secs_f64(self.next_sample as f64 / self.cfg.sample_rate_hz);
            if due > now + self.cfg.lead {
                std::thread::sleep(due - now - self.cfg.lead);
            } else if now > due + Duration::from_millis(50) {
                // The sender fell behind real time (the stream has a hole in time, not in
                // samples): count it like a device underflow and restart the clock.
                self.stats.underflows += 1;
                self.t_start = Some(now - Duration::from_secs_f64(self.next_sample as f64 / self.cfg.sample_rate_hz));
            }
        }
        self.packet.clear();
        PacketHeader {
            format: self.cfg.format,
            flags,
            stream_id: self.stream_id,
            seq: self.seq,
            first_sample: self.next_sample,
            sample_rate_hz: self.cfg.sample_rate_hz,
        }
        .encode(&self.tx_pending[..n], &mut self.packet);
        let dropped = self.cfg.drop_every > 0
            && flags & FLAG_END == 0
            && (u64::from(self.seq) + 1).is_multiple_of(self.cfg.drop_every);
        let sent = if dropped {
            self.stats.lost_packets += 1;
            self.stats.lost_samples += n as u64;
            Ok(0)
        } else {
            self.socket.send_to(&self.packet, peer)
        };
        match sent {
            Ok(_) => {}
            // Transient: a full socket buffer, or an ICMP "port unreachable" from an earlier
            // datagram when nobody listens yet. A radio transmits regardless.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::ConnectionRefused
                        | std::io::ErrorKind::Interrupted
                ) || e.raw_os_error() == Some(105) =>
            {
                self.stats.errors += 1
            }
            Err(source) => {
                return Err(TransportError::Socket {
                    addr: peer.to_string(),
                    source,
                })
            }
        }
        if flags & FLAG_END == 0 {
            self.seq = self.seq.wrapping_add(1);
            self.next_sample += n as u64;
            self.stats.samples_written += n as u64;
            self.tx_pending.drain(..n);
        }
        Ok(())
    }

    fn rx_samples(&mut self, out: &mut Vec<Complex32>, max: usize) -> RxRead {
        let n = max.min(self.pending.len() - self.pending_pos);
        out.extend_from_slice(&self.pending[self.pending_pos..self.pending_pos + n]);
        let first = self.pending_first + self.pending_pos as u64;
        self.pending_pos += n;
        self.stats.samples_read += n as u64;
        RxRead::Samples {
            count: n,
            time_ns: Some((first as f64 * 1e9 / self.cfg.sample_rate_hz).round() as i64),
        }
    }
}

impl Radio for UdpRadio {
    fn info(&self) -> &RadioInfo {
        &self.info
    }

    fn read(&mut self, out: &mut Vec<Complex32>, max: usize) -> Result<RxRead, TransportError> {
        if self.peer.is_some() {
            return Err(TransportError::NotSupported {
                radio: self.info.name.clone(),
                reason: "a sending UDP radio does not receive".into(),
            });
        }
        if self.pending_pos < self.pending.len() {
            return Ok(self.rx_samples(out, max));
        }
        if self.ended {
            return Ok(RxRead::End);
        }
        loop {
            let len = match self.socket.recv(&mut self.datagram) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    self.stats.timeouts += 1;
                    return Ok(RxRead::Timeout);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(TransportError::Socket {
                        addr: self.info.name.clone(),
                        source,
                    })
                }
            };
            let Ok((h, payload)) = PacketHeader::parse(&self.datagram[..len]) else {
                self.stats.bad_packets += 1;
                continue;
            };
            let rel = (h.sample_rate_hz - self.cfg.sample_rate_hz).abs() / self.cfg.sample_rate_hz;
            if rel > 1e-9 {
                return Err(TransportError::StreamMismatch {
                    source_name: self.info.name.clone(),
                    reason: format!(
                        "the sender streams at {}, this receiver is set to {} (set -s to match)",
                        super::si(h.sample_rate_hz, "S/s"),
                        super::si(self.cfg.sample_rate_hz, "S/s")
                    ),
                });
            }
            if self.expect.is_some_and(|(id, _, _)| id != h.stream_id) {
                tracing::info!("{}: a new sender stream began (id {:08x})", self.info.name, h.stream_id);
                self.expect = None;
            }
            if h.flags & FLAG_END != 0 {
                if self.expect.is_some_and(|(_, _, next)| h.first_sample > next) {
                    let (_, seq, next) = self.expect.expect("checked");
                    self.stats.lost_packets += u64::from(h.seq.wrapping_sub(seq));
                    self.stats.lost_samples += h.first_sample - next;
                }
                self.ended = true;
                return Ok(RxRead::End);
            }
            let sb = h.format.sample_bytes();
            let count = payload.len() / sb;
            self.pending.clear();
            self.pending_pos = 0;
            self.pending_first = h.first_sample;
            if let Some((_, seq, next)) = self.expect {
                if h.first_sample < next {
                    self.stats.late_packets += 1;
                    continue;
                }
                let gap = h.first_sample - next;
                if gap > 0 {
                    self.stats.lost_packets += u64::from(h.seq.wrapping_sub(seq)).max(1);
                    self.stats.lost_samples += gap;
                    if gap <= self.cfg.max_fill_samples {
                        self.pending.resize(gap as usize, Complex32::new(0.0, 0.0));
                        self.pending_first = next;
                    }
                }
            }
            let before = self.pending.len();
            self.pending
                .extend(payload.chunks_exact(sb).map(|b| h.format.decode(b)));
            if self.pending[before..]
                .iter()
                .any(|s| !(s.re.is_finite() && s.im.is_finite()))
            {
                // Not samples a radio can produce: drop the datagram (its samples count as a
                // gap when the next one arrives).
                self.pending.clear();
                self.stats.bad_packets += 1;
                continue;
            }
            self.expect = Some((h.stream_id, h.seq.wrapping_add(1), h.first_sample + count as u64));
            if self.pending.is_empty() {
                continue;
            }
            return Ok(self.rx_samples(out, max));
        }
    }

    fn write(&mut self, samples: &[Complex32]) -> Result<(), TransportError> {
        if self.finished {
            return Err(TransportError::NotSupported {
                radio: self.info.name.clone(),
                reason: "write after finish".into(),
            });
        }
        self.tx_pending.extend_from_slice(samples);
        let spp = self.cfg.samples_per_packet;
        while self.tx_pending.len() >= spp {
            self.send_packet(spp, 0)?;
        }
        Ok(())
    }

    /// Sends what is pending, then moves the stream's sample index on by `samples` without
    /// sending them: the receiver counts a gap (and fills it, see [`UdpConfig::max_fill_samples`]).
    fn skip(&mut self, samples: u64) -> Result<(), TransportError> {
        if self.finished {
            return Err(TransportError::NotSupported {
                radio: self.info.name.clone(),
                reason: "write after finish".into(),
            });
        }
        if self.peer.is_none() {
            return Err(TransportError::NotSupported {
                radio: self.info.name.clone(),
                reason: "a listening UDP radio does not transmit".into(),
            });
        }
        self.end_burst()?;
        self.next_sample += samples;
        Ok(())
    }

    fn end_burst(&mut self) -> Result<(), TransportError> {
        if !self.tx_pending.is_empty() {
            self.send_packet(self.tx_pending.len(), 0)?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        if self.peer.is_none() || self.finished {
            return Ok(());
        }
        self.end_burst()?;
        for _ in 0..END_REPEAT {
            self.send_packet(0, FLAG_END)?;
        }
        self.finished = true;
        Ok(())
    }

    fn stats(&self) -> RadioStats {
        self.stats
    }
}

impl Drop for UdpRadio {
    /// A sender that goes away without [`Radio::finish`] (an error, Ctrl-C) still tells the
    /// receiver the stream ended.
    fn drop(&mut self) {
        if self.peer.is_some() && !self.finished {
            self.tx_pending.clear();
            for _ in 0..END_REPEAT {
                let _ = self.send_packet(0, FLAG_END);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn rx() -> (UdpRadio, String) {
        let r = UdpRadio::listen(
            "127.0.0.1:0",
            UdpConfig {
                read_timeout: Duration::from_millis(200),
                ..UdpConfig::default()
            },
        )
        .unwrap();
        let addr = r.local_addr().unwrap().to_string();
        (r, addr)
    }

    fn read_all(r: &mut UdpRadio) -> Vec<Complex32> {
        let mut v = Vec::new();
        loop {
            match r.read(&mut v, 1000).unwrap() {
                RxRead::Samples { .. } => {}
                RxRead::End => return v,
                RxRead::Timeout => panic!("timed out after {} samples", v.len()),
            }
        }
    }

    #[test]
    fn stream_arrives_intact_in_every_format() {
        for format in IqFormat::ALL {
            let (mut r, addr) = rx();
            let mut t = UdpRadio::send_to(
                &addr,
                UdpConfig {
                    format,
                    samples_per_packet: 300,
                    pace: false,
                    ..UdpConfig::default()
                },
            )
            .unwrap();
            let x: Vec<Complex32> = (0..5000)
                .map(|i| Complex32::new((i as f32 * 0.01).sin() * 0.7, (i as f32 * 0.02).cos() * 0.7))
                .collect();
            // Write in odd pieces; the packetiser regroups them.
            for c in x.chunks(777) {
                t.write(c).unwrap();
            }
            t.finish().unwrap();
            let y = read_all(&mut r);
            assert_eq!(y.len(), x.len(), "{format}");
            let tol = if format == IqFormat::Cf32 { 0.0 } else { 1.0 / 100.0 };
            assert!(x.iter().zip(&y).all(|(a, b)| (a - b).norm() <= tol), "{format}");
            let s = r.stats();
            assert_eq!((s.lost_packets, s.lost_samples, s.bad_packets), (0, 0, 0));
            assert_eq!(t.stats().samples_written, 5000);
        }
    }

    /// A relay's skip is a gap at the receiver: filled with zeros, or (with no filling)
    /// skipped, the samples after it keeping their time.
    #[test]
    fn skipped_samples_are_a_gap() {
        for fill in [true, false] {
            let mut r = UdpRadio::listen(
                "127.0.0.1:0",
                UdpConfig {
                    max_fill_samples: if fill { 1 << 20 } else { 0 },
                    ..UdpConfig::default()
                },
            )
            .unwrap();
            let addr = r.local_addr().unwrap().to_string();
            let mut t = UdpRadio::send_to(
                &addr,
                UdpConfig {
                    pace: false,
                    ..UdpConfig::default()
                },
            )
            .unwrap();
            t.write(&[Complex32::new(1.0, 0.0); 500]).unwrap();
            t.skip(300).unwrap();
            t.write(&[Complex32::new(2.0, 0.0); 500]).unwrap();
            t.finish().unwrap();
            let mut y = Vec::new();
            let mut times = Vec::new();
            loop {
                match r.read(&mut y, 10_000).unwrap() {
                    RxRead::Samples { time_ns, .. } => times.push(time_ns.unwrap()),
                    RxRead::End => break,
                    RxRead::Timeout => panic!("timed out"),
                }
            }
            let s = r.stats();
            assert_eq!((s.lost_packets, s.lost_samples), (1, 300));
            if fill {
                assert_eq!(y.len(), 1300);
                assert!(y[500..800].iter().all(|s| *s == Complex32::new(0.0, 0.0)));
                assert_eq!(y[800], Complex32::new(2.0, 0.0));
            } else {
                assert_eq!(y.len(), 1000);
                // 800 samples at 20 MS/s: 40 µs.
                assert_eq!(times, [0, 40_000]);
            }
        }
    }

    /// Emulated loss drops every Nth datagram; the receiver counts each gap, including one
    /// found only by the end-of-stream datagram.
    #[test]
    fn emulated_loss_is_seen_as_gaps() {
        let (mut r, addr) = rx();
        let mut t = UdpRadio::send_to(
            &addr,
            UdpConfig {
                samples_per_packet: 100,
                pace: false,
                drop_every: 5,
                ..UdpConfig::default()
            },
        )
        .unwrap();
        let x: Vec<Complex32> = (0..2000).map(|i| Complex32::new(1.0, i as f32)).collect();
        t.write(&x).unwrap();
        t.finish().unwrap();
        let y = read_all(&mut r);
        // Datagrams 4, 9, 14 are zeros in the stream; 19, the last, is missing at the end.
        assert_eq!(y.len(), 1900);
        for (i, s) in y.iter().enumerate() {
            let dropped = (i / 100) % 5 == 4;
            assert_eq!(*s == Complex32::new(0.0, 0.0), dropped, "sample {i}");
        }
        assert_eq!((t.stats().lost_packets, t.stats().lost_samples), (4, 400));
        assert_eq!((r.stats().lost_packets, r.stats().lost_samples), (4, 400));
    }

    /// Datagrams missing, reordered, foreign or malformed are counted, never fatal; short gaps
    /// become zeros, so every sample keeps its stream index.
    #[test]
    fn gaps_are_counted_and_filled() {
        let (mut r, addr) = rx();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let spp = 100u64;
        let send = |seq: u32, flags: u16, n: u64| {
            let samples: Vec<Complex32> = (0..n)
                .map(|i| Complex32::new(1.0, (seq as u64 * spp + i) as f32))
                .collect();
            let mut d = Vec::new();
            PacketHeader {
                format: IqFormat::Cf32,
                flags,
                stream_id: 7,
                seq,
                first_sample: u64::from(seq) * spp,
                sample_rate_hz: 20e6,
            }
            .encode(&samples, &mut d);
            tx.send_to(&d, &addr).unwrap();
        };
        let dropped = [3u32, 4, 9, 15];
        for seq in 0..20u32 {
            if !dropped.contains(&seq) {
                send(seq, 0, spp);
            }
            if seq == 12 {
                send(5, 0, spp); // late duplicate
                tx.send_to(b"not iq at all", &addr).unwrap();
                let mut junk = vec![0u8; rng.random_range(0..200)];
                rng.fill(&mut junk[..]);
                tx.send_to(&junk, &addr).unwrap();
            }
        }
        send(20, FLAG_END, 0);
        let y = read_all(&mut r);
        assert_eq!(y.len(), 20 * spp as usize);
        for (i, s) in y.iter().enumerate() {
            let seq = (i as u64 / spp) as u32;
            if dropped.contains(&seq) {
                assert_eq!(*s, Complex32::new(0.0, 0.0), "sample {i}");
            } else {
                assert_eq!(s.im, i as f32, "sample {i} keeps its index");
            }
        }
        let s = r.stats();
        assert_eq!(s.lost_packets, 4);
        assert_eq!(s.lost_samples, 400);
        assert_eq!(s.late_packets, 1);
        assert_eq!(s.bad_packets, 2);
        assert_eq!(s.samples_read, 2000);
    }

    #[test]
    fn parser_refuses_what_is_not_a_packet() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..20_000 {
            let mut d = vec![0u8; rng.random_range(0..80)];
            rng.fill(&mut d[..]);
            if rng.random_bool(0.5) && d.len() >= 6 {
                d[..4].copy_from_slice(MAGIC);
                d[4] = VERSION;
                d[5] = rng.random_range(0..5);
            }
            if let Ok((h, p)) = PacketHeader::parse(&d) {
                assert_eq!(p.len() % h.format.sample_bytes(), 0);
                assert!(h.sample_rate_hz > 0.0);
            }
        }
        let mut ok = Vec::new();
        let h = PacketHeader {
            format: IqFormat::Ci16,
            flags: 0,
            stream_id: 1,
            seq: 2,
            first_sample: 3,
            sample_rate_hz: 1e6,
        };
        h.encode(&[Complex32::new(0.5, -0.5)], &mut ok);
        assert_eq!(PacketHeader::parse(&ok).unwrap().0, h);
        assert!(PacketHeader::parse(&ok[..ok.len() - 1]).is_err());
    }

    #[test]
    fn rate_mismatch_and_bad_addresses_are_named() {
        let (mut r, addr) = rx();
        let mut t = UdpRadio::send_to(
            &addr,
            UdpConfig {
                sample_rate_hz: 10e6,
                pace: false,
                ..UdpConfig::default()
            },
        )
        .unwrap();
        t.write(&[Complex32::new(0.1, 0.1); 4096]).unwrap();
        let e = r.read(&mut Vec::new(), 100).unwrap_err();
        assert!(e.to_string().contains("10 MS/s"), "{e}");
        for bad in ["nonsense", "127.0.0.1", "127.0.0.1:99999"] {
            assert!(matches!(
                UdpRadio::listen(bad, UdpConfig::default()),
                Err(TransportError::Address { .. })
            ));
        }
        // Port 0 means "any" to a listener, and nothing to a sender.
        assert!(matches!(
            UdpRadio::send_to("127.0.0.1:0", UdpConfig::default()),
            Err(TransportError::Address { .. })
        ));
        // Directions are enforced.
        assert!(matches!(
            t.read(&mut Vec::new(), 10),
            Err(TransportError::NotSupported { .. })
        ));
        assert!(matches!(r.write(&[]), Ok(())), "an empty write sends nothing");
        assert!(matches!(
            r.write(&[Complex32::new(0.0, 0.0); 5000]),
            Err(TransportError::NotSupported { .. })
        ));
    }

    #[test]
    fn paced_sender_keeps_to_the_sample_rate() {
        // 2000 samples at 100 kS/s take 20 ms; a paced sender cannot finish much sooner. The
        // assertion is on a lower bound (pacing works), never on an upper one (machine speed).
        let (_r, addr) = rx();
        let mut t = UdpRadio::send_to(
            &addr,
            UdpConfig {
                sample_rate_hz: 100e3,
                samples_per_packet: 100,
                lead: Duration::ZERO,
                ..UdpConfig::default()
            },
        )
        .unwrap();
        let t0 = Instant::now();
        t.write(&[Complex32::new(0.0, 0.0); 2100]).unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(19), "{:?}", t0.elapsed());
    }
}
