//! The sim backend: an in-process radio whose transmitted samples pass through a channel model
//! from `semcom_phy::channel` and come back on its receive side. Deterministic (the channel
//! models are seeded), as fast as the CPU goes: for tests and simulations of whole links.

use super::{Radio, RadioInfo, RadioStats, RxRead};
use crate::TransportError;
use num_complex::Complex32;
use semcom_phy::channel::{Chain, Impairment};
use std::collections::VecDeque;

/// A transmit → channel → receive loop in memory.
#[derive(Debug)]
pub struct SimRadio {
    info: RadioInfo,
    channel: Chain,
    queue: VecDeque<Complex32>,
    scratch: Vec<Complex32>,
    closed: bool,
    stats: RadioStats,
}

impl SimRadio {
    /// A loop through `channel` at `sample_rate_hz` (the rate the channel models were built
    /// for).
    pub fn new(channel: Chain, sample_rate_hz: f64) -> Self {
        Self {
            info: RadioInfo {
                name: format!("sim {}", channel.describe()),
                hardware: Some("semcom sim radio".into()),
                sample_rate_hz,
                frequency_hz: None,
                timestamps: false,
                realtime: false,
            },
            channel,
            queue: VecDeque::new(),
            scratch: Vec::new(),
            closed: false,
            stats: RadioStats::default(),
        }
    }

    /// Replaces the channel from now on (e.g. a fresh fading realisation per item: block
    /// fading). Samples already transmitted keep the old channel.
    pub fn set_channel(&mut self, channel: Chain) {
        self.info.name = format!("sim {}", channel.describe());
        self.channel = channel;
    }

    /// Samples transmitted but not yet read.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }
}

impl Radio for SimRadio {
    fn info(&self) -> &RadioInfo {
        &self.info
    }

    /// Returns what has been transmitted so far; [`RxRead::Timeout`] when nothing is pending,
    /// [`RxRead::End`] once the radio is finished and drained.
    fn read(&mut self, out: &mut Vec<Complex32>, max: usize) -> Result<RxRead, TransportError> {
        if self.queue.is_empty() {
            return Ok(if self.closed { RxRead::End } else { RxRead::Timeout });
        }
        let n = max.min(self.queue.len());
        out.extend(self.queue.drain(..n));
        self.stats.samples_read += n as u64;
        Ok(RxRead::Samples {
            count: n,
            time_ns: None,
        })
    }

    fn write(&mut self, samples: &[Complex32]) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::NotSupported {
                radio: self.info.name.clone(),
                reason: "write after finish".into(),
            });
        }
        self.scratch.clear();
        self.channel.process(samples, &mut self.scratch);
        self.queue.extend(self.scratch.iter().copied());
        self.stats.samples_written += samples.len() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        self.closed = true;
        Ok(())
    }

    fn stats(&self) -> RadioStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radio::RadioLink;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use semcom_phy::channel::{Awgn, Cfo, Fading, FadingSpec};
    use semcom_phy::crc::append_fcs;
    use semcom_phy::{Rate, RxConfig, RxEvent, TxParams};

    /// Frames sent over a link through a fading channel with noise and CFO come back intact,
    /// with their offsets where they were sent.
    #[test]
    fn link_over_a_simulated_channel() {
        // 25 dB SNR against the transmitter's burst power.
        let mut probe = Vec::new();
        semcom_phy::Transmitter::new()
            .transmit(
                &[0x5a; 500],
                &TxParams {
                    rate: Rate::R6,
                    scrambler_seed: 1,
                },
                &mut probe,
            )
            .unwrap();
        let power = semcom_phy::channel::burst_power(&probe);
        let mut ch = Chain::new();
        ch.push(
            Fading::new(FadingSpec::exponential(1.0, 20.0, 0.0), 5)
                .unwrap()
                .with_update_interval(256),
        );
        ch.push(Cfo::new(3e3, 20e6, 0.0).unwrap());
        ch.push(Awgn::for_snr(25.0, power, 9).unwrap());
        let mut link = RadioLink::new(SimRadio::new(ch, 20e6), RxConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut sent = Vec::new();
        link.send_silence(500).unwrap();
        for (i, rate) in Rate::ALL.iter().cycle().take(40).enumerate() {
            let mut psdu: Vec<u8> = (0..rng.random_range(10..400)).map(|_| rng.random()).collect();
            append_fcs(&mut psdu);
            let f = link
                .send(
                    &psdu,
                    &TxParams {
                        rate: *rate,
                        scrambler_seed: 1 + (i % 127) as u8,
                    },
                )
                .unwrap();
            sent.push((f.start, psdu));
            link.send_silence(300).unwrap();
        }
        link.radio_mut().finish().unwrap();
        while link.poll().unwrap() != RxRead::End {}
        link.finish_rx().unwrap();
        let mut got = Vec::new();
        while let Some(ev) = link.next_event() {
            if let RxEvent::Frame(f) = ev {
                got.push(f);
            }
        }
        assert_eq!(got.len(), sent.len());
        for (f, (start, psdu)) in got.iter().zip(&sent) {
            assert!(f.fcs_ok && &f.psdu == psdu, "frame at {start}");
            assert!(f.offset.abs_diff(*start) <= 2, "offset {} vs {start}", f.offset);
        }
        // The preamble's CFO estimate has a spread of a few hundred Hz at this SNR; its mean
        // is the channel's 3 kHz.
        let mean_cfo = got.iter().map(|f| f.cfo_hz).sum::<f32>() / got.len() as f32;
        assert!((mean_cfo - 3e3).abs() < 200.0, "{mean_cfo}");
        let st = link.stats();
        assert_eq!(st.tx_samples, st.rx_samples);
        assert_eq!(st.phy.frames, 40);
        assert_eq!(link.time_ns_at(100), None, "the sim radio has no clock");
    }
}
