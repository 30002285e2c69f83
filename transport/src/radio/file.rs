//! The file backend: plays back SigMF recordings and raw IQ files (`.cf32`, `.cs16`, `.cu8`,
//! `.cs8`, stdin) as a receive stream, and records a transmit stream to them, with one SigMF
//! annotation per transmitted frame. Files run as fast as they are read.

use super::{Radio, RadioInfo, RadioStats, RxRead};
use crate::sigmf::{Annotation, Meta};
use crate::{IqFormat, IqReader, IqWriter, TransportError};
use num_complex::Complex32;
use std::path::Path;

/// A file as a radio: [`FileRadio::open`] to play one back, [`FileRadio::create`] to record.
#[derive(Debug)]
pub struct FileRadio {
    info: RadioInfo,
    reader: Option<IqReader>,
    writer: Option<IqWriter>,
    stats: RadioStats,
}

impl FileRadio {
    /// Plays back `path` (see [`IqReader::open`] for the names it understands). The sample
    /// rate is the recording's, else `sample_rate_hz`, else 20 MS/s; `sample_rate_hz` given for
    /// a recording that declares another rate is an error.
    pub fn open(path: &Path, format: Option<IqFormat>, sample_rate_hz: Option<f64>) -> Result<Self, TransportError> {
        let reader = IqReader::open(path, format)?;
        let declared = reader.sample_rate_hz();
        let rate = match (declared, sample_rate_hz) {
            (Some(d), Some(want)) if (d - want).abs() > 1e-6 * d.max(want) => {
                return Err(TransportError::StreamMismatch {
                    source_name: path.display().to_string(),
                    reason: format!(
                        "the recording is at {}, but {} was asked for",
                        super::si(d, "S/s"),
                        super::si(want, "S/s")
                    ),
                })
            }
            (Some(d), _) => d,
            (None, Some(want)) => want,
            (None, None) => semcom_phy::ofdm::SAMPLE_RATE_HZ,
        };
        let meta = reader.meta();
        let info = RadioInfo {
            name: path.display().to_string(),
            hardware: meta.and_then(|m| m.hw.clone()),
            sample_rate_hz: rate,
            frequency_hz: meta.and_then(|m| m.frequency_hz),
            timestamps: false,
            realtime: false,
        };
        Ok(Self {
            info,
            reader: Some(reader),
            writer: None,
            stats: RadioStats::default(),
        })
    }

    /// Records to `path`: raw IQ in `format`, or a SigMF recording (when the name ends in
    /// `.sigmf-data`, `.sigmf-meta` or `.sigmf`) with `meta`'s fields; `-` is stdout.
    pub fn create(path: &Path, format: IqFormat, meta: Meta) -> Result<Self, TransportError> {
        let info = RadioInfo {
            name: path.display().to_string(),
            hardware: meta.hw.clone(),
            sample_rate_hz: meta.sample_rate_hz.unwrap_or(semcom_phy::ofdm::SAMPLE_RATE_HZ),
            frequency_hz: meta.frequency_hz,
            timestamps: false,
            realtime: false,
        };
        let writer = IqWriter::create(path, format, meta)?;
        Ok(Self {
            info,
            reader: None,
            writer: Some(writer),
            stats: RadioStats::default(),
        })
    }

    /// The playback's SigMF metadata, if it is a recording.
    pub fn meta(&self) -> Option<&Meta> {
        self.reader.as_ref().and_then(IqReader::meta)
    }

    /// The sample format of the file.
    pub fn format(&self) -> Option<IqFormat> {
        self.reader
            .as_ref()
            .map(IqReader::format)
            .or_else(|| self.writer.as_ref().map(IqWriter::format))
    }

    fn unsupported(&self, reason: &str) -> TransportError {
        TransportError::NotSupported {
            radio: self.info.name.clone(),
            reason: reason.into(),
        }
    }
}

impl Radio for FileRadio {
    fn info(&self) -> &RadioInfo {
        &self.info
    }

    fn read(&mut self, out: &mut Vec<Complex32>, max: usize) -> Result<RxRead, TransportError> {
        let Some(r) = self.reader.as_mut() else {
            return Err(self.unsupported("opened for recording, not playback"));
        };
        let n = r.read(out, max)?;
        if n == 0 {
            return Ok(RxRead::End);
        }
        self.stats.samples_read += n as u64;
        Ok(RxRead::Samples {
            count: n,
            time_ns: None,
        })
    }

    fn write(&mut self, samples: &[Complex32]) -> Result<(), TransportError> {
        let Some(w) = self.writer.as_mut() else {
            return Err(self.unsupported("opened for playback, not recording"));
        };
        w.write(samples)?;
        self.stats.samples_written += samples.len() as u64;
        Ok(())
    }

    fn annotate(&mut self, annotation: Annotation) {
        if let Some(w) = self.writer.as_mut() {
            w.annotate(annotation);
        }
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        if let Some(w) = self.writer.take() {
            w.finish()?;
        }
        Ok(())
    }

    fn stats(&self) -> RadioStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_then_plays_back_with_metadata() {
        let dir = std::env::temp_dir().join(format!("semcom-fileradio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.sigmf-data");
        let mut meta = Meta::new("ci16_le", 10e6);
        meta.frequency_hz = Some(5.9e9);
        meta.hw = Some("test bench".into());
        let mut w = FileRadio::create(&p, IqFormat::Ci16, meta).unwrap();
        let x: Vec<Complex32> = (0..500).map(|i| Complex32::new(0.001 * i as f32, -0.5)).collect();
        w.write(&x).unwrap();
        w.annotate(Annotation {
            sample_start: 3,
            sample_count: 4,
            label: "frame".into(),
            comment: None,
        });
        assert!(matches!(
            w.read(&mut Vec::new(), 10),
            Err(TransportError::NotSupported { .. })
        ));
        w.finish().unwrap();
        assert_eq!(w.stats().samples_written, 500);

        let mut r = FileRadio::open(&p, None, None).unwrap();
        assert_eq!(r.info().sample_rate_hz, 10e6);
        assert_eq!(r.info().frequency_hz, Some(5.9e9));
        assert_eq!(r.info().hardware.as_deref(), Some("test bench"));
        assert_eq!(r.meta().unwrap().annotations.len(), 1);
        let mut y = Vec::new();
        while let RxRead::Samples { .. } = r.read(&mut y, 64).unwrap() {}
        assert_eq!(y.len(), 500);
        assert!((y[499] - x[499]).norm() < 1e-4);
        assert!(matches!(r.write(&x), Err(TransportError::NotSupported { .. })));
        // A rate that contradicts the recording is refused; one that agrees is fine.
        assert!(matches!(
            FileRadio::open(&p, None, Some(20e6)),
            Err(TransportError::StreamMismatch { .. })
        ));
        assert!(FileRadio::open(&p, None, Some(10e6)).is_ok());
    }
}
