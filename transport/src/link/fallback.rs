//! A link set: items go over the primary link (the radio) and fall back to the backup link
//! (QUIC) when the primary's recent delivery drops below a threshold, and back when it
//! recovers. Every switch is logged (`tracing` at WARN) and kept in [`FallbackLink::switches`].
//!
//! - The primary's outcome of every item counts in a window of the last `window` items; an item
//!   with no outcome `ack_timeout` after it was sent counts as failed (a dead radio reports
//!   nothing at all).
//! - An item the primary loses (lost, partial, or timed out) is sent again over the backup, so
//!   no item is lost across a switch.
//! - On the backup, every `probe_interval` one item is also sent over the primary as a probe;
//!   after `recover_after` consecutive probes delivered, the set switches back.
//!
//! Time is the caller's (`now`): wall-clock time for a live gateway, simulated time in tests.

use super::{Item, Link, LinkError, Outcome};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Which link carries new items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Active {
    /// The primary (radio).
    Primary,
    /// The backup (QUIC).
    Backup,
}

/// A switch between links.
#[derive(Clone, Debug, PartialEq)]
pub struct SwitchEvent {
    /// When.
    pub at: Duration,
    /// To which link.
    pub to: Active,
    /// Why.
    pub reason: String,
}

/// Settings of a [`FallbackLink`].
#[derive(Clone, Debug, PartialEq)]
pub struct FallbackConfig {
    /// Primary outcomes the delivery ratio is taken over.
    pub window: usize,
    /// Switch to the backup when the ratio drops below this.
    pub threshold: f64,
    /// A primary item without an outcome after this long counts as failed.
    pub ack_timeout: Duration,
    /// On the backup, a probe over the primary at most this often.
    pub probe_interval: Duration,
    /// Consecutive probes delivered to switch back.
    pub recover_after: usize,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        Self {
            window: 8,
            threshold: 0.5,
            ack_timeout: Duration::from_millis(100),
            probe_interval: Duration::from_millis(200),
            recover_after: 3,
        }
    }
}

/// Which link delivered an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The primary.
    Primary,
    /// The backup (first choice, or after the primary lost it).
    Backup,
}

/// The final fate of one item of the set.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    /// The item's sequence number in the set (from [`FallbackLink::send`]).
    pub seq: u64,
    /// Delivered over which link; `None`: both failed (reported, not lost silently).
    pub via: Option<Via>,
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    item: Item,
    sent_at: Duration,
    probe: bool,
}

/// The primary with a fallback to the backup.
#[derive(Debug)]
pub struct FallbackLink<P: Link, B: Link> {
    primary: P,
    backup: B,
    cfg: FallbackConfig,
    active: Active,
    window: VecDeque<bool>,
    probes_ok: usize,
    last_probe: Option<Duration>,
    next_seq: u64,
    /// Primary item id → what it was.
    on_primary: HashMap<u16, Pending>,
    /// Backup item id → seq.
    on_backup: HashMap<u16, u64>,
    /// Items already delivered (probes may arrive twice).
    done: HashMap<u64, ()>,
    deliveries: Vec<Delivery>,
    switches: Vec<SwitchEvent>,
}

impl<P: Link, B: Link> FallbackLink<P, B> {
    /// A set that starts on the primary.
    pub fn new(primary: P, backup: B, cfg: FallbackConfig) -> Self {
        Self {
            primary,
            backup,
            cfg,
            active: Active::Primary,
            window: VecDeque::new(),
            probes_ok: 0,
            last_probe: None,
            next_seq: 0,
            on_primary: HashMap::new(),
            on_backup: HashMap::new(),
            done: HashMap::new(),
            deliveries: Vec::new(),
            switches: Vec::new(),
        }
    }

    /// The link carrying new items.
    pub fn active(&self) -> Active {
        self.active
    }

    /// Every switch so far.
    pub fn switches(&self) -> &[SwitchEvent] {
        &self.switches
    }

    /// The primary link.
    pub fn primary_mut(&mut self) -> &mut P {
        &mut self.primary
    }

    /// The backup link.
    pub fn backup_mut(&mut self) -> &mut B {
        &mut self.backup
    }

    fn switch(&mut self, to: Active, at: Duration, reason: String) {
        tracing::warn!(at_ms = at.as_millis() as u64, ?to, "link switch: {reason}");
        self.active = to;
        self.switches.push(SwitchEvent { at, to, reason });
        self.window.clear();
        self.probes_ok = 0;
        self.last_probe = Some(at);
    }

    /// Sends an item at time `now`; returns its sequence number in the set.
    pub fn send(&mut self, item: &Item, now: Duration) -> Result<u64, LinkError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        match self.active {
            Active::Primary => {
                let r = self.primary.send(item)?;
                self.on_primary.insert(
                    r.id,
                    Pending {
                        seq,
                        item: item.clone(),
                        sent_at: now,
                        probe: false,
                    },
                );
            }
            Active::Backup => {
                let r = self.backup.send(item)?;
                self.on_backup.insert(r.id, seq);
                if self
                    .last_probe
                    .is_none_or(|t| now.saturating_sub(t) >= self.cfg.probe_interval)
                {
                    self.last_probe = Some(now);
                    let r = self.primary.send(item)?;
                    self.on_primary.insert(
                        r.id,
                        Pending {
                            seq,
                            item: item.clone(),
                            sent_at: now,
                            probe: true,
                        },
                    );
                }
            }
        }
        self.pump(now)?;
        Ok(seq)
    }

    fn delivered(&mut self, seq: u64, via: Via) {
        if self.done.insert(seq, ()).is_none() {
            self.deliveries.push(Delivery { seq, via: Some(via) });
        }
    }

    fn primary_outcome(&mut self, p: Pending, ok: bool, now: Duration) -> Result<(), LinkError> {
        if p.probe {
            if ok {
                self.delivered(p.seq, Via::Primary);
                self.probes_ok += 1;
                if self.active == Active::Backup && self.probes_ok >= self.cfg.recover_after {
                    let n = self.probes_ok;
                    self.switch(
                        Active::Primary,
                        now,
                        format!("{n} probes in a row delivered over the primary"),
                    );
                }
            } else {
                self.probes_ok = 0;
            }
            return Ok(());
        }
        if ok {
            self.delivered(p.seq, Via::Primary);
        } else if !self.done.contains_key(&p.seq) {
            // Lost on the primary: the backup carries it.
            let r = self.backup.send(&p.item)?;
            self.on_backup.insert(r.id, p.seq);
        }
        if self.active == Active::Primary {
            self.window.push_back(ok);
            while self.window.len() > self.cfg.window {
                self.window.pop_front();
            }
            let ratio = self.window.iter().filter(|&&x| x).count() as f64 / self.window.len() as f64;
            if self.window.len() >= self.cfg.window.min(4) && ratio < self.cfg.threshold {
                self.switch(
                    Active::Backup,
                    now,
                    format!(
                        "primary delivered {:.0} % of the last {} items (threshold {:.0} %)",
                        ratio * 100.0,
                        self.window.len(),
                        self.cfg.threshold * 100.0
                    ),
                );
            }
        }
        Ok(())
    }

    /// Handles the links' reports at time `now`; returns the items whose fate is now known.
    pub fn poll(&mut self, now: Duration) -> Result<Vec<Delivery>, LinkError> {
        self.pump(now)?;
        Ok(std::mem::take(&mut self.deliveries))
    }

    fn pump(&mut self, now: Duration) -> Result<(), LinkError> {
        for r in self.primary.poll()? {
            if let Some(p) = self.on_primary.remove(&r.id) {
                let ok = matches!(r.outcome, Outcome::Delivered(_));
                self.primary_outcome(p, ok, now)?;
            }
        }
        let late: Vec<u16> = self
            .on_primary
            .iter()
            .filter(|(_, p)| now.saturating_sub(p.sent_at) > self.cfg.ack_timeout)
            .map(|(&id, _)| id)
            .collect();
        let mut late: Vec<Pending> = late.into_iter().filter_map(|id| self.on_primary.remove(&id)).collect();
        late.sort_by_key(|p| p.seq);
        for p in late {
            self.primary_outcome(p, false, now)?;
        }
        for r in self.backup.poll()? {
            if let Some(seq) = self.on_backup.remove(&r.id) {
                match r.outcome {
                    Outcome::Delivered(_) => self.delivered(seq, Via::Backup),
                    _ => {
                        if self.done.insert(seq, ()).is_none() {
                            self.deliveries.push(Delivery { seq, via: None });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Waits out every item still in flight (as if `ack_timeout` had passed) and returns the
    /// last fates.
    pub fn finish(&mut self, now: Duration) -> Result<Vec<Delivery>, LinkError> {
        let mut out = Vec::new();
        for r in self.primary.finish()? {
            if let Some(p) = self.on_primary.remove(&r.id) {
                self.primary_outcome(p, matches!(r.outcome, Outcome::Delivered(_)), now)?;
            }
        }
        out.extend(self.poll(now + self.cfg.ack_timeout + Duration::from_nanos(1))?);
        for r in self.backup.finish()? {
            if let Some(seq) = self.on_backup.remove(&r.id) {
                let via = matches!(r.outcome, Outcome::Delivered(_)).then_some(Via::Backup);
                if self.done.insert(seq, ()).is_none() {
                    out.push(Delivery { seq, via });
                }
            }
        }
        out.append(&mut self.deliveries);
        Ok(out)
    }
}
