//! [`RadioItemLink`]: items over the PHY on any [`Radio`] (a device, a UDP virtual radio, the
//! simulated channel).
//!
//! Sending: the item is cut into fragments, each fragment sealed into a link frame, and the
//! link frames go out as PPDUs: with the semcom profile, up to four consecutive fragments of an
//! item share one PPDU, each in its own segment at the MCS of its importance class (more
//! important → more robust); with the 802.11a profile, one fragment per PSDU at one rate. A
//! stretch of silence follows every PPDU. Receiving: frames whose FCS passes are opened
//! (key id, replay window, tag), fragments reassembled, and every item reported once:
//! delivered, partial (after the reassembly timeout) or lost (a later item of the same sender
//! arrived first and nothing of it did).
//!
//! Time at the receiver is the radio's sample clock (samples received ÷ sample rate), so a
//! simulation gives the same timeouts however fast it runs.

use super::crypto::{Opener, Sealer};
use super::frame::{fragment, Fragment, Reassembler, ReceivedItem};
use super::{Item, ItemLinkStats, ItemReport, Link, LinkError, LinkKey, Outcome, SendReport};
use crate::radio::{Radio, RadioLink, RxRead};
use semcom_phy::crc::append_fcs;
use semcom_phy::semcom::{Mcs, Segment, MAX_SEGMENTS};
use semcom_phy::{Rate, RxConfig, RxEvent, TxParams};
use std::collections::{HashMap, VecDeque};

/// Which PHY profile carries the link frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhyMode {
    /// The semcom profile (LDPC): the MCS of importance classes 0, 1, 2, 3.
    Semcom([Mcs; 4]),
    /// 802.11a at one rate for every frame (convolutional code).
    Legacy(Rate),
}

/// Mean power of the transmitter's bursts (per sample, at unit transmit scale) in `mode`,
/// measured on a 200-octet frame: the signal power to which a simulated channel's SNR refers.
pub fn burst_power(mode: PhyMode) -> Result<f64, LinkError> {
    let mut tx = semcom_phy::Transmitter::new();
    let mut out = Vec::new();
    let psdu = vec![0x5au8; 200];
    match mode {
        PhyMode::Legacy(rate) => {
            tx.transmit(
                &psdu,
                &TxParams {
                    rate,
                    scrambler_seed: 93,
                },
                &mut out,
            )?;
        }
        PhyMode::Semcom(mcs) => {
            tx.transmit_semcom(
                &[Segment {
                    payload: &psdu,
                    mcs: mcs[0],
                    class: 0,
                }],
                93,
                &mut out,
            )?;
        }
    }
    Ok(semcom_phy::channel::burst_power(&out))
}

impl PhyMode {
    /// The semcom profile with every class at `mcs`.
    pub fn semcom_uniform(mcs: Mcs) -> Self {
        Self::Semcom([mcs; 4])
    }
}

/// Largest [`RadioItemLinkConfig::max_fragment`] whose link frame (fragment header, sealing,
/// FCS) fits one PSDU.
pub const MAX_FRAGMENT: usize = semcom_phy::signal::MAX_PSDU_LEN
    - 4
    - super::frame::INNER_HEADER
    - super::frame::SEALED_HEADER
    - super::crypto::TAG_LEN;

/// Settings of a [`RadioItemLink`].
#[derive(Clone, Debug)]
pub struct RadioItemLinkConfig {
    /// PHY profile and rates.
    pub phy: PhyMode,
    /// Largest fragment, bytes of item data.
    pub max_fragment: usize,
    /// Zero samples after every PPDU.
    pub gap_samples: u64,
    /// A partial item is given up this long after its first fragment, µs.
    pub reassembly_timeout_us: u64,
    /// Largest item accepted, bytes.
    pub max_item: usize,
    /// Items held in reassembly at once.
    pub max_pending: usize,
    /// Receiver settings.
    pub rx: RxConfig,
}

impl Default for RadioItemLinkConfig {
    fn default() -> Self {
        Self {
            phy: PhyMode::Semcom([
                Mcs::from_name("bpsk-1/2").expect("known MCS"),
                Mcs::from_name("qpsk-1/2").expect("known MCS"),
                Mcs::from_name("qpsk-3/4").expect("known MCS"),
                Mcs::from_name("16qam-1/2").expect("known MCS"),
            ]),
            max_fragment: 512,
            gap_samples: 800,
            reassembly_timeout_us: 50_000,
            max_item: 64 * 1024,
            max_pending: 64,
            rx: RxConfig::default(),
        }
    }
}

#[derive(Debug, Default)]
struct Quality {
    snr: f64,
    evm: f64,
    n: u32,
}

/// Items over a [`RadioLink`]: sender and receiver in one (a loop-back or simulated radio
/// exercises both; across two processes each uses its half).
#[derive(Debug)]
pub struct RadioItemLink<R: Radio> {
    phy: RadioLink<R>,
    cfg: RadioItemLinkConfig,
    sealer: Sealer,
    opener: Opener,
    reasm: Reassembler,
    next_id: u16,
    scrambler: u8,
    /// Transmit sample index of each of our items' first sample.
    sent_at: HashMap<u16, u64>,
    quality: HashMap<(u64, u16), Quality>,
    /// Per sender session: the next item id expected.
    expected: HashMap<u64, u16>,
    reports: VecDeque<ItemReport>,
    stats: ItemLinkStats,
    inner_malformed: u64,
    scratch_tx: semcom_phy::Transmitter,
    /// The radio said its stream ended (end of a file, a UDP sender that closed).
    rx_ended: bool,
}

impl<R: Radio> RadioItemLink<R> {
    /// A link on `radio`; `key: None` sends and accepts unsealed frames (`--insecure`).
    pub fn new(radio: R, key: Option<LinkKey>, cfg: RadioItemLinkConfig) -> Self {
        Self::with_sealer(radio, Sealer::new(key.clone()), Opener::new(key), cfg)
    }

    /// A link with a given sealer and opener (a fixed session id for reproducible runs).
    pub fn with_sealer(radio: R, sealer: Sealer, opener: Opener, cfg: RadioItemLinkConfig) -> Self {
        Self {
            phy: RadioLink::new(radio, cfg.rx.clone()),
            reasm: Reassembler::new(cfg.reassembly_timeout_us, cfg.max_item, cfg.max_pending),
            cfg,
            sealer,
            opener,
            next_id: 0,
            scrambler: 1,
            sent_at: HashMap::new(),
            quality: HashMap::new(),
            expected: HashMap::new(),
            reports: VecDeque::new(),
            stats: ItemLinkStats::default(),
            inner_malformed: 0,
            scratch_tx: semcom_phy::Transmitter::new(),
            rx_ended: false,
        }
    }

    /// True once the radio's receive stream has ended (end of a file, a UDP sender that closed
    /// its stream): a receiving loop can stop after [`Link::finish`].
    pub fn rx_ended(&self) -> bool {
        self.rx_ended
    }

    /// The PHY link underneath (its radio, PHY counters).
    pub fn phy(&self) -> &RadioLink<R> {
        &self.phy
    }

    /// The PHY link underneath, mutably (e.g. to change a simulated channel).
    pub fn phy_mut(&mut self) -> &mut RadioLink<R> {
        &mut self.phy
    }

    /// Changes the PHY profile and rates from the next item on.
    pub fn set_phy(&mut self, phy: PhyMode) {
        self.cfg.phy = phy;
    }

    /// Link-frame bytes an item of `len` bytes takes (fragment and link headers, tags),
    /// without the PHY's FCS.
    pub fn wire_bytes(&self, len: usize) -> usize {
        let frags = len.div_ceil(self.cfg.max_fragment).max(1);
        len + frags * (super::frame::INNER_HEADER + self.sealer.overhead())
    }

    /// Time on the air of `item` sent with `phy`, µs (PPDUs only, not the silence after them):
    /// what [`Link::send`] would report, computed without sending.
    pub fn airtime_us(&mut self, item: &Item, phy: PhyMode) -> Result<f64, LinkError> {
        let frags = fragment(item, 0, self.cfg.max_fragment)?;
        let lens: Vec<(u8, usize)> = frags
            .iter()
            .map(|f| {
                (
                    f.class,
                    super::frame::INNER_HEADER + f.data.len() + self.sealer.overhead() + 4,
                )
            })
            .collect();
        let fs = self.sample_rate();
        let mut samples = 0usize;
        let mut buf = Vec::new();
        match phy {
            PhyMode::Legacy(rate) => {
                for &(_, len) in &lens {
                    samples += semcom_phy::Transmitter::packet_len(rate, len);
                }
            }
            PhyMode::Semcom(mcs) => {
                let zeros = vec![0u8; self.cfg.max_fragment + 64];
                for group in lens.chunks(MAX_SEGMENTS) {
                    let segs: Vec<Segment<'_>> = group
                        .iter()
                        .map(|&(class, len)| Segment {
                            payload: &zeros[..len],
                            mcs: mcs[usize::from(class).min(3)],
                            class,
                        })
                        .collect();
                    buf.clear();
                    samples += self.scratch_tx.transmit_semcom(&segs, 1, &mut buf)?;
                }
            }
        }
        Ok(samples as f64 * 1e6 / fs)
    }

    fn sample_rate(&self) -> f64 {
        self.phy.radio().info().sample_rate_hz
    }

    fn next_scrambler(&mut self) -> u8 {
        self.scrambler = self.scrambler % 127 + 1;
        self.scrambler
    }

    fn now_us(&self) -> u64 {
        (self.phy.stats().rx_samples as f64 * 1e6 / self.sample_rate()) as u64
    }

    fn handle(&mut self, ev: RxEvent) {
        let mut frames: Vec<(Vec<u8>, f32, f32)> = Vec::new();
        match ev {
            RxEvent::Frame(f) => {
                if f.fcs_ok && f.psdu.len() >= 4 {
                    frames.push((f.psdu[..f.psdu.len() - 4].to_vec(), f.snr_db, f.evm_db));
                } else {
                    self.stats.carrier_errors += 1;
                }
            }
            RxEvent::Semcom(f) => {
                for s in f.segments {
                    if s.fcs_ok && s.payload.len() >= 4 {
                        frames.push((s.payload[..s.payload.len() - 4].to_vec(), f.snr_db, f.evm_db));
                    } else {
                        self.stats.carrier_errors += 1;
                    }
                }
            }
            _ => {}
        }
        let now = self.now_us();
        for (bytes, snr, evm) in frames {
            let Ok(opened) = self.opener.open(&bytes) else {
                continue; // refused and counted by the opener
            };
            let frag = match Fragment::parse(&opened.inner) {
                Ok(f) => f,
                Err(_) => {
                    self.inner_malformed += 1;
                    continue;
                }
            };
            let q = self.quality.entry((opened.session, frag.item)).or_default();
            if snr.is_finite() {
                q.snr += f64::from(snr);
                q.evm += f64::from(evm);
                q.n += 1;
            }
            // Refused fragments (contradictions, oversized items) are counted by the reassembler.
            if let Ok(done) = self.reasm.push(opened.session, frag, now) {
                for it in done {
                    self.report(it);
                }
            }
        }
    }

    fn report(&mut self, it: ReceivedItem) {
        // Items of this session skipped before this one: lost.
        let exp = self.expected.entry(it.session).or_insert(it.id);
        let ahead = it.id.wrapping_sub(*exp);
        if ahead < 0x8000 {
            for k in 0..ahead {
                let id = exp.wrapping_add(k);
                self.stats.lost += 1;
                self.reports.push_back(ItemReport {
                    session: it.session,
                    id,
                    kind: None,
                    outcome: Outcome::Lost,
                    latency_us: None,
                    snr_db: None,
                    evm_db: None,
                });
            }
            *exp = it.id.wrapping_add(1);
        }
        let q = self.quality.remove(&(it.session, it.id)).unwrap_or_default();
        let latency_us = (it.session == self.sealer.session())
            .then(|| self.sent_at.remove(&it.id))
            .flatten()
            .map(|start| (it.last_us as f64) - start as f64 * 1e6 / self.sample_rate());
        let outcome = match it.bytes() {
            Some(b) => {
                self.stats.delivered += 1;
                Outcome::Delivered(b)
            }
            None => {
                self.stats.partial += 1;
                Outcome::Partial(it.fragments)
            }
        };
        self.reports.push_back(ItemReport {
            session: it.session,
            id: it.id,
            kind: Some(it.kind),
            outcome,
            latency_us,
            snr_db: (q.n > 0).then(|| (q.snr / f64::from(q.n)) as f32),
            evm_db: (q.n > 0).then(|| (q.evm / f64::from(q.n)) as f32),
        });
    }

    fn drain_radio(&mut self) -> Result<(), LinkError> {
        loop {
            let r = self.phy.poll()?;
            while let Some(ev) = self.phy.next_event() {
                self.handle(ev);
            }
            if matches!(r, RxRead::End) {
                self.rx_ended = true;
            }
            if !matches!(r, RxRead::Samples { .. }) {
                break;
            }
        }
        let now = self.now_us();
        for it in self.reasm.expire(now) {
            self.report(it);
        }
        Ok(())
    }

    fn collect(&mut self) -> Vec<ItemReport> {
        self.reports.drain(..).collect()
    }
}

impl<R: Radio> Link for RadioItemLink<R> {
    fn send(&mut self, item: &Item) -> Result<SendReport, LinkError> {
        if item.bytes.len() > self.cfg.max_item {
            return Err(LinkError::ItemTooLarge {
                bytes: item.bytes.len(),
                max: self.cfg.max_item,
            });
        }
        let id = self.next_id;
        let frags = fragment(item, id, self.cfg.max_fragment)?;
        let mut frames = Vec::with_capacity(frags.len());
        for f in &frags {
            let mut b = self.sealer.seal(&f.to_bytes())?;
            append_fcs(&mut b);
            frames.push((f.class, b));
        }
        self.next_id = self.next_id.wrapping_add(1);
        let fs = self.sample_rate();
        let mut report = SendReport {
            id,
            frames: 0,
            wire_bytes: 0,
            airtime_us: 0.0,
        };
        self.sent_at.insert(id, self.phy.tx_samples());
        match self.cfg.phy {
            PhyMode::Legacy(rate) => {
                for (_, b) in &frames {
                    let seed = self.next_scrambler();
                    let sent = self.phy.send(
                        b,
                        &TxParams {
                            rate,
                            scrambler_seed: seed,
                        },
                    )?;
                    self.phy.send_silence(self.cfg.gap_samples)?;
                    report.frames += 1;
                    report.wire_bytes += b.len();
                    report.airtime_us += sent.samples as f64 * 1e6 / fs;
                }
            }
            PhyMode::Semcom(mcs) => {
                for group in frames.chunks(MAX_SEGMENTS) {
                    let segs: Vec<Segment<'_>> = group
                        .iter()
                        .map(|(class, b)| Segment {
                            payload: b,
                            mcs: mcs[usize::from(*class).min(3)],
                            class: *class,
                        })
                        .collect();
                    let seed = self.next_scrambler();
                    let sent = self.phy.send_semcom(&segs, seed)?;
                    self.phy.send_silence(self.cfg.gap_samples)?;
                    report.frames += 1;
                    report.wire_bytes += group.iter().map(|(_, b)| b.len()).sum::<usize>();
                    report.airtime_us += sent.samples as f64 * 1e6 / fs;
                }
            }
        }
        self.stats.items_sent += 1;
        self.stats.frames_sent += report.frames as u64;
        self.stats.wire_bytes += report.wire_bytes as u64;
        self.stats.airtime_us += report.airtime_us;
        // Forget send times of items that never showed up (bounded memory).
        if self.sent_at.len() > 4096 {
            let cut = id.wrapping_sub(2048);
            self.sent_at.retain(|&k, _| k.wrapping_sub(cut) < 0x8000);
        }
        Ok(report)
    }

    fn poll(&mut self) -> Result<Vec<ItemReport>, LinkError> {
        self.drain_radio()?;
        Ok(self.collect())
    }

    fn finish(&mut self) -> Result<Vec<ItemReport>, LinkError> {
        self.drain_radio()?;
        self.phy.finish_rx()?;
        while let Some(ev) = self.phy.next_event() {
            self.handle(ev);
        }
        for it in self.reasm.flush() {
            self.report(it);
        }
        Ok(self.collect())
    }

    fn stats(&self) -> ItemLinkStats {
        let mut s = self.stats;
        s.security = self.opener.counters();
        // Authenticated frames whose inner fragment header is malformed count as malformed too.
        s.security.malformed += self.inner_malformed;
        s.reassembly = self.reasm.counters();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radio::sim::SimRadio;
    use crate::ItemKind;
    use rand::{Rng, SeedableRng};
    use semcom_phy::channel::{Awgn, Chain};

    fn sim(snr_db: f64, seed: u64) -> SimRadio {
        let mut ch = Chain::new();
        let p = burst_power(PhyMode::Legacy(Rate::R6)).unwrap();
        ch.push(Awgn::for_snr(snr_db, p, seed).unwrap());
        SimRadio::new(ch, 20e6)
    }

    fn items(n: usize, seed: u64) -> Vec<Item> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|i| {
                let len = rng.random_range(0..1500);
                let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                let cut = len / 3;
                Item::new(ItemKind::Semantic, bytes).with_classes(vec![((i % 4) as u8, cut), (3, len - cut)])
            })
            .collect()
    }

    #[test]
    fn items_cross_a_clean_channel_intact_in_both_profiles() {
        for phy in [RadioItemLinkConfig::default().phy, PhyMode::Legacy(Rate::R24)] {
            let cfg = RadioItemLinkConfig {
                phy,
                max_fragment: 300,
                ..Default::default()
            };
            let mut link = RadioItemLink::new(sim(30.0, 1), Some(LinkKey::from_bytes([4; 32])), cfg);
            let sent = items(12, 2);
            let mut got = Vec::new();
            for it in &sent {
                let want = link.airtime_us(it, phy).unwrap();
                let r = link.send(it).unwrap();
                assert!(r.airtime_us > 0.0 && r.wire_bytes > it.bytes.len());
                assert!((r.airtime_us - want).abs() < 1e-9, "{} vs {want}", r.airtime_us);
                got.extend(link.poll().unwrap());
            }
            got.extend(link.finish().unwrap());
            assert_eq!(got.len(), sent.len(), "{phy:?}");
            for (r, it) in got.iter().zip(&sent) {
                assert_eq!(r.outcome, Outcome::Delivered(it.bytes.clone()), "{phy:?} item {}", r.id);
                assert!(r.latency_us.unwrap() > 0.0);
                assert!(r.snr_db.unwrap() > 20.0);
            }
            let s = link.stats();
            assert_eq!(s.delivered, 12);
            assert_eq!(s.security.refused(), 0);
        }
    }

    #[test]
    fn a_receiver_with_another_key_decodes_nothing_and_counts_every_frame() {
        // Sender and receiver share the sim radio: give the receiver another key by building
        // the link from parts.
        let cfg = RadioItemLinkConfig::default();
        let mut link = RadioItemLink::with_sealer(
            sim(30.0, 3),
            Sealer::with_session(Some(LinkKey::from_bytes([1; 32])), 1),
            Opener::new(Some(LinkKey::from_bytes([2; 32]))),
            cfg,
        );
        let mut frames = 0;
        for it in items(5, 4) {
            frames += fragment(&it, 0, 512).unwrap().len();
            link.send(&it).unwrap();
        }
        let got = link.finish().unwrap();
        assert!(got.is_empty());
        assert_eq!(link.stats().security.wrong_key, frames as u64);
        assert_eq!(link.stats().security.accepted, 0);
    }

    #[test]
    fn items_lost_on_a_bad_channel_are_reported_not_delivered_wrong() {
        // At 2 dB, 16-QAM fragments of class 3 mostly fail, BPSK ones mostly pass: every report
        // is either the exact item, a partial one whose present fragments are exact, or lost.
        let mut link = RadioItemLink::new(sim(4.0, 5), None, RadioItemLinkConfig::default());
        let sent = items(20, 6);
        let mut got = Vec::new();
        for it in &sent {
            link.send(it).unwrap();
            got.extend(link.poll().unwrap());
        }
        got.extend(link.finish().unwrap());
        let mut seen = 0;
        for r in &got {
            let it = &sent[usize::from(r.id)];
            match &r.outcome {
                Outcome::Delivered(b) => assert_eq!(b, &it.bytes),
                Outcome::Partial(frags) => {
                    let want = fragment(it, r.id, 512).unwrap();
                    for (f, w) in frags.iter().zip(&want) {
                        if let Some(f) = f {
                            assert_eq!(f, &w.data);
                        }
                    }
                }
                Outcome::Lost => {}
            }
            seen += 1;
        }
        assert!(seen <= sent.len());
        assert!(
            link.stats().partial + link.stats().lost > 0,
            "the channel should lose something"
        );
    }
}
