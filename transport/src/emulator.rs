//! A lossy-link emulator: a UDP proxy with loss, delay, jitter and a rate limit, where the loss
//! can follow the PHY: each datagram is sent through the simulated 802.11a PHY (transmitter,
//! channel at a chosen SNR, receiver) as one PSDU of its size, and dropped when that frame is
//! not received intact. The QUIC path and the radio path then see the same channel.
//!
//! ```text
//!  client ──► listen ─[loss · PHY · delay + jitter · rate]─► forward (server)
//!  client ◄── listen ◄[loss · PHY · delay + jitter · rate]── (the same, the other way)
//! ```
//!
//! One thread per direction receives, decides and schedules; datagrams leave in the order of
//! their release times (jitter may reorder them, as real links do).

use crate::TransportError;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_phy::sim::{FrameSim, Propagation, SimParams};
use semcom_phy::Rate;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Loss that follows the PHY.
#[derive(Clone, Debug, PartialEq)]
pub struct PhyLoss {
    /// SNR, dB.
    pub snr_db: f64,
    /// Legacy rate each datagram is sent at.
    pub rate: Rate,
    /// Propagation (AWGN, or fading with a fresh realisation per datagram).
    pub propagation: Propagation,
}

/// Settings of the emulator (each direction alike).
#[derive(Clone, Debug, PartialEq)]
pub struct EmulatorConfig {
    /// Probability of dropping a datagram, 0 … 1 (on top of PHY loss).
    pub loss: f64,
    /// One-way delay.
    pub delay: Duration,
    /// Uniform extra delay in 0 … jitter.
    pub jitter: Duration,
    /// Rate limit, bits per second (None: unlimited).
    pub rate_bps: Option<f64>,
    /// Loss from the PHY simulation.
    pub phy: Option<PhyLoss>,
    /// Datagrams waiting at most (more are dropped: a full queue).
    pub queue: usize,
    /// Seed of the loss and jitter draws.
    pub seed: u64,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            loss: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate_bps: None,
            phy: None,
            queue: 4096,
            seed: 1,
        }
    }
}

/// Counters of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectionCounters {
    /// Datagrams received.
    pub received: u64,
    /// Bytes of the datagrams received.
    pub received_bytes: u64,
    /// With PHY loss: time on the air of every datagram received (sent over the PHY), ns.
    pub airtime_ns: u64,
    /// Datagrams forwarded.
    pub forwarded: u64,
    /// Dropped by the loss probability.
    pub dropped_loss: u64,
    /// Dropped because the PHY frame was not received intact.
    pub dropped_phy: u64,
    /// Dropped because the queue was full.
    pub dropped_queue: u64,
}

/// Counters of both directions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EmulatorCounters {
    /// Client → server.
    pub upstream: DirectionCounters,
    /// Server → client.
    pub downstream: DirectionCounters,
}

/// A running emulator; stops when dropped.
#[derive(Debug)]
pub struct Emulator {
    local: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: Arc<Mutex<EmulatorCounters>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn sock_err(addr: impl std::fmt::Display, source: std::io::Error) -> TransportError {
    TransportError::Socket {
        addr: addr.to_string(),
        source,
    }
}

impl Emulator {
    /// Listens on `listen` for the client and forwards to `forward`.
    pub fn start(listen: SocketAddr, forward: SocketAddr, cfg: EmulatorConfig) -> Result<Self, TransportError> {
        if !(0.0..=1.0).contains(&cfg.loss) {
            return Err(TransportError::Address {
                addr: format!("loss {}", cfg.loss),
                reason: "loss must be 0 … 1".into(),
            });
        }
        let front = UdpSocket::bind(listen).map_err(|e| sock_err(listen, e))?;
        let back_bind: SocketAddr = if forward.is_ipv4() {
            "0.0.0.0:0".parse().expect("address")
        } else {
            "[::]:0".parse().expect("address")
        };
        let back = UdpSocket::bind(back_bind).map_err(|e| sock_err(back_bind, e))?;
        back.connect(forward).map_err(|e| sock_err(forward, e))?;
        let local = front.local_addr().map_err(|e| sock_err(listen, e))?;
        // Bursts (a QUIC flight, a test's volley) must wait in the kernel while a direction
        // simulates the PHY for earlier datagrams; the system may grant less than asked.
        for s in [&front, &back] {
            let _ = socket2::SockRef::from(s).set_recv_buffer_size(4 << 20);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Mutex::new(EmulatorCounters::default()));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let front = Arc::new(front);
        let back = Arc::new(back);
        let mut threads = Vec::new();
        for up in [true, false] {
            let (rx, tx) = if up {
                (front.clone(), back.clone())
            } else {
                (back.clone(), front.clone())
            };
            let d = Direction {
                rx,
                tx,
                up,
                cfg: cfg.clone(),
                rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ if up { 0x0075 } else { 0xd0e1 }),
                client: client.clone(),
                counters: counters.clone(),
                stop: stop.clone(),
            };
            threads.push(std::thread::spawn(move || d.run()));
        }
        Ok(Self {
            local,
            stop,
            counters,
            threads,
        })
    }

    /// The client-facing address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The counters so far.
    pub fn counters(&self) -> EmulatorCounters {
        self.counters.lock().map(|c| *c).unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Direction {
    rx: Arc<UdpSocket>,
    tx: Arc<UdpSocket>,
    up: bool,
    cfg: EmulatorConfig,
    rng: ChaCha8Rng,
    client: Arc<Mutex<Option<SocketAddr>>>,
    counters: Arc<Mutex<EmulatorCounters>>,
    stop: Arc<AtomicBool>,
}

impl Direction {
    fn count(&self, f: impl FnOnce(&mut DirectionCounters)) {
        if let Ok(mut c) = self.counters.lock() {
            f(if self.up { &mut c.upstream } else { &mut c.downstream });
        }
    }

    fn run(mut self) {
        let mut queue: BinaryHeap<Reverse<(Instant, u64, Vec<u8>)>> = BinaryHeap::new();
        let mut seq = 0u64;
        let mut line_free = Instant::now();
        let mut sim = FrameSim::new();
        let mut buf = vec![0u8; 65_536];
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            while queue.peek().is_some_and(|Reverse((t, _, _))| *t <= now) {
                let Reverse((_, _, d)) = queue.pop().expect("peeked");
                let sent = if self.up {
                    self.tx.send(&d)
                } else {
                    match self.client.lock().ok().and_then(|c| *c) {
                        Some(c) => self.tx.send_to(&d, c),
                        None => Ok(0),
                    }
                };
                if sent.is_ok() {
                    self.count(|c| c.forwarded += 1);
                }
            }
            let wait = queue
                .peek()
                .map_or(Duration::from_millis(20), |Reverse((t, _, _))| {
                    t.saturating_duration_since(now).min(Duration::from_millis(20))
                })
                .max(Duration::from_micros(200));
            let _ = self.rx.set_read_timeout(Some(wait));
            let (n, from) = match self.rx.recv_from(&mut buf) {
                Ok(x) => x,
                Err(_) => continue,
            };
            if self.up {
                if let Ok(mut c) = self.client.lock() {
                    *c = Some(from);
                }
            }
            let airtime_ns = self.cfg.phy.as_ref().map_or(0, |p| {
                let samples =
                    semcom_phy::Transmitter::packet_len(p.rate, (n + 4).min(semcom_phy::signal::MAX_PSDU_LEN));
                (samples as f64 * 1e9 / semcom_phy::ofdm::SAMPLE_RATE_HZ) as u64
            });
            self.count(|c| {
                c.received += 1;
                c.received_bytes += n as u64;
                c.airtime_ns += airtime_ns;
            });
            if self.rng.random::<f64>() < self.cfg.loss {
                self.count(|c| c.dropped_loss += 1);
                continue;
            }
            if let Some(p) = &self.cfg.phy {
                let params = SimParams {
                    propagation: p.propagation.clone(),
                    // The datagram is the PSDU, plus its FCS.
                    ..SimParams::awgn(p.rate, (n + 4).min(semcom_phy::signal::MAX_PSDU_LEN), p.snr_db)
                };
                let ok = sim.run(&params, self.rng.random(), false).is_ok_and(|o| o.delivered);
                if !ok {
                    self.count(|c| c.dropped_phy += 1);
                    continue;
                }
            }
            if queue.len() >= self.cfg.queue {
                self.count(|c| c.dropped_queue += 1);
                continue;
            }
            let now = Instant::now();
            let jitter = if self.cfg.jitter.is_zero() {
                Duration::ZERO
            } else {
                self.cfg.jitter.mul_f64(self.rng.random::<f64>())
            };
            let mut release = now + self.cfg.delay + jitter;
            if let Some(bps) = self.cfg.rate_bps {
                // The line serialises datagrams one after another at the rate.
                let start = line_free.max(now);
                line_free = start + Duration::from_secs_f64(n as f64 * 8.0 / bps);
                release = release.max(line_free + self.cfg.delay);
            }
            seq += 1;
            queue.push(Reverse((release, seq, buf[..n].to_vec())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echo_server() -> (SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>) {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        let addr = s.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 2048];
            while !st.load(Ordering::Relaxed) {
                if let Ok((n, from)) = s.recv_from(&mut b) {
                    let _ = s.send_to(&b[..n], from);
                }
            }
        });
        (addr, stop, t)
    }

    fn round_trips(emu: &Emulator, n: usize, len: usize, pace: Duration) -> usize {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        // Read while sending: the socket's buffer would overflow otherwise.
        let r = c.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut got = 0;
            let mut b = [0u8; 2048];
            while r.recv_from(&mut b).is_ok() {
                got += 1;
            }
            got
        });
        for i in 0..n {
            let mut d = vec![0u8; len];
            d[..4].copy_from_slice(&(i as u32).to_be_bytes());
            c.send_to(&d, emu.local_addr()).unwrap();
            std::thread::sleep(pace);
        }
        reader.join().unwrap()
    }

    #[test]
    fn loss_probability_is_applied_in_both_directions() {
        let (server, stop, t) = echo_server();
        let emu = Emulator::start(
            "127.0.0.1:0".parse().unwrap(),
            server,
            EmulatorConfig {
                loss: 0.2,
                ..Default::default()
            },
        )
        .unwrap();
        let got = round_trips(&emu, 1000, 100, Duration::from_micros(300));
        let c = emu.counters();
        // Two independent 20 % losses: 64 % survive; 1000 trials, ±5 standard deviations.
        assert!((565..=715).contains(&got), "{got} of 1000 came back; {c:?}");
        assert_eq!(c.upstream.received, 1000);
        assert_eq!(c.upstream.dropped_loss + c.upstream.forwarded, 1000);
        assert_eq!(got as u64, c.downstream.forwarded);
        drop(emu);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }

    #[test]
    fn phy_loss_follows_the_snr() {
        let (server, stop, t) = echo_server();
        for (snr, lo, hi) in [(30.0, 200, 200), (-3.0, 0, 0)] {
            let emu = Emulator::start(
                "127.0.0.1:0".parse().unwrap(),
                server,
                EmulatorConfig {
                    phy: Some(PhyLoss {
                        snr_db: snr,
                        rate: Rate::R12,
                        propagation: Propagation::Awgn,
                    }),
                    ..Default::default()
                },
            )
            .unwrap();
            // Paced so that the PHY simulation of each datagram keeps up.
            let got = round_trips(&emu, 200, 300, Duration::from_millis(3));
            assert!((lo..=hi).contains(&got), "{snr} dB: {got} of 200; {:?}", emu.counters());
            if got == 0 {
                assert_eq!(emu.counters().upstream.dropped_phy, 200);
            }
        }
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }

    #[test]
    fn delay_and_rate_limit_hold_datagrams_back() {
        let (server, stop, t) = echo_server();
        let emu = Emulator::start(
            "127.0.0.1:0".parse().unwrap(),
            server,
            EmulatorConfig {
                delay: Duration::from_millis(30),
                rate_bps: Some(800_000.0),
                ..Default::default()
            },
        )
        .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let start = Instant::now();
        // 10 × 1000 bytes at 800 kbit/s: 100 ms of line time each way, plus 2 × 30 ms.
        for _ in 0..10 {
            c.send_to(&[7u8; 1000], emu.local_addr()).unwrap();
        }
        let mut b = [0u8; 2048];
        for _ in 0..10 {
            c.recv_from(&mut b).unwrap();
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(150), "{took:?}");
        drop(emu);
        stop.store(true, Ordering::Relaxed);
        t.join().unwrap();
    }
}
