//! Radios: sources and sinks of complex baseband samples, and [`RadioLink`], which puts the
//! PHY on top of one.
//!
//! ```text
//!              ┌──────────── RadioLink ─────────────┐
//!  PSDU ──────►│ Transmitter ──► Radio::write       │──► device / file / UDP / channel model
//!  RxEvent ◄───│ Receiver ◄── Radio::read ──► (recorder: SigMF + one annotation per frame)
//!              └────────────────────────────────────┘
//! ```
//!
//! Backends: `soapy` (SoapySDR devices, cargo feature `soapy`), [`file`](mod@file) (SigMF recordings and
//! raw IQ files), [`udp`] (IQ over UDP between processes: a virtual radio) and [`sim`] (an
//! in-process channel from `semcom_phy::channel`).
//!
//! Radios stream continuously. Overflows, underflows, timeouts and lost UDP packets are counted
//! in [`RadioStats`] and never end a stream; a device that stops streaming is a
//! [`TransportError::DeviceLost`].

pub mod file;
mod link;
mod recorder;
pub mod sim;
#[cfg(feature = "soapy")]
pub mod soapy;
mod threaded;
pub mod udp;

pub use link::{LinkStats, RadioLink, SentFrame};
pub use threaded::ReaderThread;

use crate::sigmf::Annotation;
use crate::TransportError;
use num_complex::Complex32;

/// What a radio is, for logs, reports and SigMF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct RadioInfo {
    /// How the radio was opened: `soapy driver=hackrf,serial=…`, `udp 127.0.0.1:5000`, a path.
    pub name: String,
    /// Hardware description (SigMF `core:hw`), when known.
    pub hardware: Option<String>,
    /// Sample rate, samples per second.
    pub sample_rate_hz: f64,
    /// Centre frequency, Hz, when known.
    pub frequency_hz: Option<f64>,
    /// True when received chunks carry timestamps.
    pub timestamps: bool,
    /// True when the stream runs at the sample rate (a device, a paced virtual radio), false
    /// when it goes as fast as it is read (files).
    pub realtime: bool,
}

/// The outcome of one [`Radio::read`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxRead {
    /// `count` samples were appended; `time_ns` is the time of the first, on the radio's clock
    /// (nanoseconds), when the radio has one.
    Samples {
        /// Samples appended.
        count: usize,
        /// Time of the first sample, ns.
        time_ns: Option<i64>,
    },
    /// Nothing arrived within the radio's read timeout (counted in [`RadioStats::timeouts`]).
    Timeout,
    /// The stream ended: end of a file, or the sender of a UDP stream closed it.
    End,
}

/// Counters of a radio's streams. Nothing here is fatal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RadioStats {
    /// Samples received.
    pub samples_read: u64,
    /// Samples transmitted.
    pub samples_written: u64,
    /// Receive overflows: the host did not read fast enough and the device dropped samples.
    pub overflows: u64,
    /// Transmit underflows: the device ran out of samples in the middle of a burst.
    pub underflows: u64,
    /// Reads or writes that timed out.
    pub timeouts: u64,
    /// Transmit bursts the device reported late (time errors).
    pub late: u64,
    /// Other recoverable stream errors (corrupt packets from the device).
    pub errors: u64,
    /// UDP datagrams missing from the sequence (gaps).
    pub lost_packets: u64,
    /// Samples in those gaps (replaced by zeros when the gap is short, see [`udp`]).
    pub lost_samples: u64,
    /// UDP datagrams that arrived after later ones and were dropped.
    pub late_packets: u64,
    /// UDP datagrams that were not semcom IQ packets (ignored).
    pub bad_packets: u64,
}

impl RadioStats {
    /// Field-wise sum (a link's two radios, or a process's several streams).
    pub fn merged(&self, o: &RadioStats) -> RadioStats {
        RadioStats {
            samples_read: self.samples_read + o.samples_read,
            samples_written: self.samples_written + o.samples_written,
            overflows: self.overflows + o.overflows,
            underflows: self.underflows + o.underflows,
            timeouts: self.timeouts + o.timeouts,
            late: self.late + o.late,
            errors: self.errors + o.errors,
            lost_packets: self.lost_packets + o.lost_packets,
            lost_samples: self.lost_samples + o.lost_samples,
            late_packets: self.late_packets + o.late_packets,
            bad_packets: self.bad_packets + o.bad_packets,
        }
    }
}

/// A source and sink of complex baseband samples: an SDR, a file, a socket, a channel model.
///
/// A radio opened for one direction refuses the other with [`TransportError::NotSupported`].
pub trait Radio: Send {
    /// What this radio is.
    fn info(&self) -> &RadioInfo;

    /// Receives up to `max` samples, appended to `out`. Waits at most the radio's read timeout
    /// (about 100 ms for live radios) so the caller can react to Ctrl-C.
    fn read(&mut self, out: &mut Vec<Complex32>, max: usize) -> Result<RxRead, TransportError>;

    /// Transmits `samples` (blocking while the device's buffer is full: live radios pace the
    /// caller at the sample rate). Consecutive writes form one continuous stream.
    fn write(&mut self, samples: &[Complex32]) -> Result<(), TransportError>;

    /// Leaves a gap of `samples` sample times in the transmitted stream (a relay passing on a
    /// gap it received). The default writes zeros; a UDP radio advances its sample index
    /// instead, so its receiver sees the gap.
    fn skip(&mut self, samples: u64) -> Result<(), TransportError> {
        let zeros = [Complex32::new(0.0, 0.0); 4096];
        let mut left = samples;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.write(&zeros[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Ends the current transmit burst: what was written is sent, and the device may stop
    /// transmitting until the next write.
    fn end_burst(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    /// Attaches an annotation to the transmitted stream (recorded by file radios; others
    /// ignore it).
    fn annotate(&mut self, _annotation: Annotation) {}

    /// Finishes: waits until transmitted samples have left the device, writes file metadata,
    /// tells a UDP peer the stream ended. Reads and writes after it are errors or no-ops.
    fn finish(&mut self) -> Result<(), TransportError> {
        Ok(())
    }

    /// The counters so far.
    fn stats(&self) -> RadioStats;
}

impl<R: Radio + ?Sized> Radio for Box<R> {
    fn info(&self) -> &RadioInfo {
        (**self).info()
    }
    fn read(&mut self, out: &mut Vec<Complex32>, max: usize) -> Result<RxRead, TransportError> {
        (**self).read(out, max)
    }
    fn write(&mut self, samples: &[Complex32]) -> Result<(), TransportError> {
        (**self).write(samples)
    }
    fn skip(&mut self, samples: u64) -> Result<(), TransportError> {
        (**self).skip(samples)
    }
    fn end_burst(&mut self) -> Result<(), TransportError> {
        (**self).end_burst()
    }
    fn annotate(&mut self, annotation: Annotation) {
        (**self).annotate(annotation)
    }
    fn finish(&mut self) -> Result<(), TransportError> {
        (**self).finish()
    }
    fn stats(&self) -> RadioStats {
        (**self).stats()
    }
}

/// Formats a sample rate or frequency for messages: `20 MS/s`, `2.45 GHz`.
pub fn si(value: f64, unit: &str) -> String {
    let (v, p) = match value.abs() {
        a if a >= 1e9 => (value / 1e9, "G"),
        a if a >= 1e6 => (value / 1e6, "M"),
        a if a >= 1e3 => (value / 1e3, "k"),
        _ => (value, ""),
    };
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s} {p}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_formatting() {
        assert_eq!(si(20e6, "S/s"), "20 MS/s");
        assert_eq!(si(2.45e9, "Hz"), "2.45 GHz");
        assert_eq!(si(61.44e6, "S/s"), "61.44 MS/s");
        assert_eq!(si(100e3, "S/s"), "100 kS/s");
        assert_eq!(si(12.0, "dB"), "12 dB");
    }
}
