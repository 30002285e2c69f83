//! [`RadioLink`]: the 802.11a/g PHY on top of a [`Radio`].

use super::recorder::Recorder;
use super::{Radio, RadioStats, RxRead};
use crate::sigmf::Annotation;
use crate::{IqWriter, TransportError};
use num_complex::Complex32;
use semcom_phy::rx::RxStats;
use semcom_phy::{Receiver, RxConfig, RxEvent, Transmitter, TxParams};
use std::collections::VecDeque;

/// Zeros written per call while idling.
const SILENCE_CHUNK: usize = 16_384;
/// Sample-index → time anchors older than this many samples are dropped (frames are reported
/// within a few milliseconds of their start).
const ANCHOR_HORIZON: u64 = 1 << 26;

/// Where a transmitted frame sits in the transmitted stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentFrame {
    /// Index of its first sample in the stream.
    pub start: u64,
    /// Its length in samples.
    pub samples: usize,
}

/// Counters of a link: the radio's and the receiver's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkStats {
    /// The radio's stream counters.
    pub radio: RadioStats,
    /// The PHY receiver's counters.
    pub phy: RxStats,
    /// Samples pushed into the receiver.
    pub rx_samples: u64,
    /// Samples transmitted.
    pub tx_samples: u64,
    /// Samples recorded (when recording).
    pub recorded: u64,
}

/// The PHY transmitter and streaming receiver on a radio.
///
/// Transmit: [`send`](Self::send) modulates a PSDU and writes it,
/// [`send_silence`](Self::send_silence) keeps a continuous stream going between frames, [`end_tx`](Self::end_tx)
/// ends the burst. Receive: [`poll`](Self::poll) reads one chunk from the radio and runs the
/// receiver over it; [`next_event`](Self::next_event) hands out what it found. With
/// [`record`](Self::record), every received sample is also written to a recording that gets one
/// SigMF annotation per decoded frame.
#[derive(Debug)]
pub struct RadioLink<R: Radio> {
    radio: R,
    tx: Transmitter,
    tx_buf: Vec<Complex32>,
    tx_scale: f32,
    tx_samples: u64,
    rx: Receiver,
    rx_buf: Vec<Complex32>,
    rx_samples: u64,
    chunk: usize,
    /// (receiver sample index, radio time in ns) of chunks that carried a timestamp.
    anchors: VecDeque<(u64, i64)>,
    recorder: Option<Recorder>,
    recorded: u64,
    events: VecDeque<RxEvent>,
    zeros: Vec<Complex32>,
}

impl<R: Radio> RadioLink<R> {
    /// A link on `radio`; the receiver works at the radio's sample rate.
    pub fn new(radio: R, mut rx_cfg: RxConfig) -> Self {
        rx_cfg.sample_rate_hz = radio.info().sample_rate_hz;
        Self {
            radio,
            tx: Transmitter::new(),
            tx_buf: Vec::new(),
            tx_scale: 1.0,
            tx_samples: 0,
            rx: Receiver::new(rx_cfg),
            rx_buf: Vec::with_capacity(1 << 16),
            rx_samples: 0,
            chunk: 1 << 16,
            anchors: VecDeque::new(),
            recorder: None,
            recorded: 0,
            events: VecDeque::new(),
            zeros: vec![Complex32::new(0.0, 0.0); SILENCE_CHUNK],
        }
    }

    /// The radio.
    pub fn radio(&self) -> &R {
        &self.radio
    }

    /// The radio, mutably.
    pub fn radio_mut(&mut self) -> &mut R {
        &mut self.radio
    }

    /// Multiplies transmitted samples by `scale` (1 keeps the standard's amplitude, whose
    /// peaks stay below 1 at full scale).
    pub fn set_tx_scale(&mut self, scale: f32) {
        self.tx_scale = scale;
    }

    /// Largest number of samples one [`poll`](Self::poll) asks the radio for (default 65536).
    pub fn set_chunk(&mut self, samples: usize) {
        self.chunk = samples.max(1);
    }

    /// Records every received sample to `writer` from now on, with an annotation for each
    /// decoded frame. Call before the first [`poll`](Self::poll) for annotations to line up
    /// with the recording's sample indices. The writing happens on a thread of its own, so a
    /// slow moment of the disk does not hold up a live radio's reads.
    pub fn record(&mut self, writer: IqWriter) {
        self.recorder = Some(Recorder::spawn(writer));
    }

    /// Modulates `psdu` and transmits it.
    pub fn send(&mut self, psdu: &[u8], params: &TxParams) -> Result<SentFrame, TransportError> {
        self.tx_buf.clear();
        let n = self.tx.transmit(psdu, params, &mut self.tx_buf)?;
        if self.tx_scale != 1.0 {
            for s in &mut self.tx_buf {
                *s *= self.tx_scale;
            }
        }
        let start = self.tx_samples;
        self.radio.write(&self.tx_buf)?;
        self.tx_samples += n as u64;
        self.radio.annotate(Annotation {
            sample_start: start,
            sample_count: n as u64,
            label: format!("802.11a {}, {} octets", params.rate, psdu.len()),
            comment: Some(format!(
                "scrambler seed {}, FCS {}",
                params.scrambler_seed,
                if semcom_phy::crc::fcs_ok(psdu) {
                    "valid"
                } else {
                    "absent or invalid"
                }
            )),
        });
        Ok(SentFrame { start, samples: n })
    }

    /// Modulates one semcom-profile PPDU of `segments` (see `semcom_phy::semcom`) and
    /// transmits it.
    pub fn send_semcom(
        &mut self,
        segments: &[semcom_phy::semcom::Segment<'_>],
        scrambler_seed: u8,
    ) -> Result<SentFrame, TransportError> {
        self.tx_buf.clear();
        let n = self.tx.transmit_semcom(segments, scrambler_seed, &mut self.tx_buf)?;
        if self.tx_scale != 1.0 {
            for s in &mut self.tx_buf {
                *s *= self.tx_scale;
            }
        }
        let start = self.tx_samples;
        self.radio.write(&self.tx_buf)?;
        self.tx_samples += n as u64;
        let octets: usize = segments.iter().map(|s| s.payload.len()).sum();
        self.radio.annotate(Annotation {
            sample_start: start,
            sample_count: n as u64,
            label: format!("semcom, {} segments, {octets} octets", segments.len()),
            comment: Some(
                segments
                    .iter()
                    .map(|s| format!("{} class {} {} octets", s.mcs, s.class, s.payload.len()))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        });
        Ok(SentFrame { start, samples: n })
    }

    /// Transmits `samples` zeros (the idle time between frames of a continuous stream).
    pub fn send_silence(&mut self, samples: u64) -> Result<(), TransportError> {
        let mut left = samples;
        while left > 0 {
            let n = left.min(SILENCE_CHUNK as u64) as usize;
            self.radio.write(&self.zeros[..n])?;
            left -= n as u64;
        }
        self.tx_samples += samples;
        Ok(())
    }

    /// Ends the transmit burst.
    pub fn end_tx(&mut self) -> Result<(), TransportError> {
        self.radio.end_burst()
    }

    /// Samples transmitted so far (frames and silence).
    pub fn tx_samples(&self) -> u64 {
        self.tx_samples
    }

    /// Reads one chunk from the radio, records it, and runs the receiver over it. Decoded
    /// frames and other receiver events wait in [`next_event`](Self::next_event).
    pub fn poll(&mut self) -> Result<RxRead, TransportError> {
        self.rx_buf.clear();
        let r = self.radio.read(&mut self.rx_buf, self.chunk)?;
        if let RxRead::Samples { count, time_ns } = r {
            let chunk = &self.rx_buf[self.rx_buf.len() - count..];
            if let Some(t) = time_ns {
                self.anchors.push_back((self.rx_samples, t));
                while self.anchors.len() > 1 && self.anchors[1].0 + ANCHOR_HORIZON < self.rx_samples {
                    self.anchors.pop_front();
                }
            }
            if let Some(w) = self.recorder.as_mut() {
                w.write(chunk)?;
                self.recorded += count as u64;
            }
            self.rx.push(chunk);
            self.rx_samples += count as u64;
            self.collect_events();
        }
        Ok(r)
    }

    fn collect_events(&mut self) {
        while let Some(ev) = self.rx.poll_event() {
            if let (RxEvent::Frame(f), Some(w)) = (&ev, self.recorder.as_mut()) {
                // A failed recorder reports its error on the next write.
                let _ = w.annotate(Annotation {
                    sample_start: f.offset,
                    sample_count: Transmitter::packet_len(f.rate, f.length) as u64,
                    label: format!("802.11a {}, {} octets", f.rate, f.length),
                    comment: Some(format!(
                        "FCS {}, SNR {:.1} dB, EVM {:.1} dB, CFO {:+.0} Hz, scrambler seed {}",
                        if f.fcs_ok { "ok" } else { "failed" },
                        f.snr_db,
                        f.evm_db,
                        f.cfo_hz,
                        f.scrambler_seed
                    )),
                });
            }
            self.events.push_back(ev);
        }
    }

    /// The next receiver event (frames, refused headers, truncated frames).
    pub fn next_event(&mut self) -> Option<RxEvent> {
        self.events.pop_front()
    }

    /// The radio time (ns) of receiver sample `offset` (e.g. a frame's first sample), when the
    /// radio timestamps its chunks.
    pub fn time_ns_at(&self, offset: u64) -> Option<i64> {
        let i = self.anchors.partition_point(|a| a.0 <= offset);
        let (idx, t) = *self.anchors.get(i.checked_sub(1)?)?;
        let rate = self.radio.info().sample_rate_hz;
        Some(t + ((offset - idx) as f64 * 1e9 / rate).round() as i64)
    }

    /// Ends reception: the receiver decodes what it still holds (events follow in
    /// [`next_event`](Self::next_event)), and the recording, if any, is completed (SigMF
    /// metadata written).
    pub fn finish_rx(&mut self) -> Result<(), TransportError> {
        self.rx.flush();
        self.collect_events();
        if let Some(mut w) = self.recorder.take() {
            w.finish()?;
        }
        Ok(())
    }

    /// Counters.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            radio: self.radio.stats(),
            phy: self.rx.stats(),
            rx_samples: self.rx_samples,
            tx_samples: self.tx_samples,
            recorded: self.recorded,
        }
    }

    /// The radio, back.
    pub fn into_radio(self) -> R {
        self.radio
    }
}
