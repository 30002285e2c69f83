//! Reading and writing complex baseband samples: raw files (`.cf32`, `.cs16`, `.cu8`, `.cs8`),
//! SigMF recordings, and stdin/stdout (`-`, raw cf32).
//!
//! Reads stream in chunks, so files of any size use bounded memory. Bad input is an error that
//! names the file and the position: empty files, sizes that are not a whole number of samples,
//! NaN or infinite samples, unknown formats, broken SigMF metadata.

use crate::sigmf::{self, Annotation, Meta};
use crate::TransportError;
use num_complex::Complex32;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Sample formats (SigMF `core:datatype` names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IqFormat {
    /// Interleaved little-endian f32 I, Q.
    Cf32,
    /// Interleaved little-endian i16 I, Q, full scale 32768.
    Ci16,
    /// Interleaved u8 I, Q, offset binary (127.5 is zero), as RTL-SDR writes.
    Cu8,
    /// Interleaved i8 I, Q, full scale 128, as HackRF writes.
    Ci8,
}

impl IqFormat {
    /// Every format.
    pub const ALL: [IqFormat; 4] = [Self::Cf32, Self::Ci16, Self::Cu8, Self::Ci8];

    /// Bytes per complex sample.
    pub const fn sample_bytes(self) -> usize {
        match self {
            Self::Cf32 => 8,
            Self::Ci16 => 4,
            Self::Cu8 | Self::Ci8 => 2,
        }
    }

    /// The SigMF datatype name.
    pub const fn sigmf_name(self) -> &'static str {
        match self {
            Self::Cf32 => "cf32_le",
            Self::Ci16 => "ci16_le",
            Self::Cu8 => "cu8",
            Self::Ci8 => "ci8",
        }
    }

    /// Parses a SigMF datatype or a short name (`cf32`, `cs16`, `ci16`, `cu8`, `cs8`, `ci8`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cf32_le" | "cf32" | "fc32" => Some(Self::Cf32),
            "ci16_le" | "ci16" | "cs16" | "sc16" => Some(Self::Ci16),
            "cu8" => Some(Self::Cu8),
            "ci8" | "cs8" | "sc8" => Some(Self::Ci8),
            _ => None,
        }
    }

    /// The format a raw file's extension implies (`.cf32`, `.cfile`, `.cs16`, `.cu8`, `.cs8` …).
    pub fn from_extension(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?;
        if ext.eq_ignore_ascii_case("cfile") || ext.eq_ignore_ascii_case("iq") {
            return Some(Self::Cf32);
        }
        Self::parse(ext)
    }

    /// One sample from its `sample_bytes()` bytes.
    pub(crate) fn decode(self, b: &[u8]) -> Complex32 {
        match self {
            Self::Cf32 => Complex32::new(
                f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                f32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            ),
            Self::Ci16 => Complex32::new(
                f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0,
                f32::from(i16::from_le_bytes([b[2], b[3]])) / 32768.0,
            ),
            Self::Cu8 => Complex32::new((f32::from(b[0]) - 127.5) / 128.0, (f32::from(b[1]) - 127.5) / 128.0),
            Self::Ci8 => Complex32::new(f32::from(b[0] as i8) / 128.0, f32::from(b[1] as i8) / 128.0),
        }
    }

    /// Appends one sample's bytes (saturating at full scale for the integer formats).
    pub(crate) fn encode(self, s: Complex32, out: &mut Vec<u8>) {
        match self {
            Self::Cf32 => {
                out.extend_from_slice(&s.re.to_le_bytes());
                out.extend_from_slice(&s.im.to_le_bytes());
            }
            Self::Ci16 => {
                let q = |v: f32| ((v * 32768.0).round().clamp(-32768.0, 32767.0) as i16).to_le_bytes();
                out.extend_from_slice(&q(s.re));
                out.extend_from_slice(&q(s.im));
            }
            Self::Cu8 => {
                let q = |v: f32| (v * 128.0 + 127.5).round().clamp(0.0, 255.0) as u8;
                out.push(q(s.re));
                out.push(q(s.im));
            }
            Self::Ci8 => {
                let q = |v: f32| (v * 128.0).round().clamp(-128.0, 127.0) as i8 as u8;
                out.push(q(s.re));
                out.push(q(s.im));
            }
        }
    }
}

impl std::fmt::Display for IqFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.sigmf_name())
    }
}

/// Streams samples from a file, a SigMF recording or stdin.
pub struct IqReader {
    path: PathBuf,
    src: Box<dyn Read + Send>,
    format: IqFormat,
    meta: Option<Meta>,
    samples_read: u64,
    /// Bytes of an incomplete sample carried to the next read.
    partial: Vec<u8>,
    bytes: Vec<u8>,
    at_eof: bool,
}

impl std::fmt::Debug for IqReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IqReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl IqReader {
    /// Opens `path`: a SigMF recording when it names a `.sigmf-meta`, `.sigmf-data` or
    /// `.sigmf` file, `-` for stdin, otherwise a raw file whose format is `format`, or implied by
    /// the extension, or cf32. A format given for a SigMF recording must match its metadata.
    pub fn open(path: &Path, format: Option<IqFormat>) -> Result<Self, TransportError> {
        if path == Path::new("-") {
            return Ok(Self::from_reader(
                "-",
                Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin())),
                format.unwrap_or(IqFormat::Cf32),
                None,
            ));
        }
        if let Some((meta_path, data_path)) = sigmf::pair_paths(path) {
            let text = std::fs::read_to_string(&meta_path).map_err(|e| TransportError::io(&meta_path, e))?;
            let meta = Meta::from_json(&meta_path, &text)?;
            let fmt = IqFormat::parse(&meta.datatype)
                .filter(|f| f.sigmf_name() == meta.datatype)
                .ok_or_else(|| TransportError::UnsupportedFormat {
                    path: meta_path.clone(),
                    datatype: meta.datatype.clone(),
                })?;
            if let Some(want) = format {
                if want != fmt {
                    return Err(TransportError::SigmfMeta {
                        path: meta_path,
                        reason: format!("recording is {fmt}, but {want} was asked for"),
                    });
                }
            }
            let data_path = match &meta.dataset {
                Some(name) => meta_path.with_file_name(name),
                None => data_path,
            };
            let file = Self::checked_span(&data_path, fmt, meta.header_bytes, meta.trailing_bytes)?;
            return Ok(Self::from_reader(data_path, Box::new(file), fmt, Some(meta)));
        }
        let fmt = match format {
            Some(f) => f,
            None => match path.extension().and_then(|e| e.to_str()) {
                None => IqFormat::Cf32,
                Some(_) => IqFormat::from_extension(path).ok_or_else(|| TransportError::UnsupportedFormat {
                    path: path.to_path_buf(),
                    datatype: path.extension().unwrap_or_default().to_string_lossy().into_owned(),
                })?,
            },
        };
        let file = Self::checked_file(path, fmt)?;
        Ok(Self::from_reader(path, Box::new(file), fmt, None))
    }

    /// Checks size (non-empty, whole samples) before any sample is read.
    fn checked_file(path: &Path, fmt: IqFormat) -> Result<std::io::BufReader<File>, TransportError> {
        Ok(Self::checked_span(path, fmt, 0, 0)?.into_inner())
    }

    /// [`Self::checked_file`] of the samples between `header` bytes at the start and `trailing`
    /// bytes at the end (a SigMF non-conforming dataset).
    fn checked_span(
        path: &Path,
        fmt: IqFormat,
        header: u64,
        trailing: u64,
    ) -> Result<std::io::Take<std::io::BufReader<File>>, TransportError> {
        let mut file = File::open(path).map_err(|e| TransportError::io(path, e))?;
        let size = file.metadata().map_err(|e| TransportError::io(path, e))?.len();
        let Some(len) = size.checked_sub(header).and_then(|l| l.checked_sub(trailing)) else {
            return Err(TransportError::SigmfMeta {
                path: path.to_path_buf(),
                reason: format!("{size} bytes cannot hold {header} header and {trailing} trailing bytes"),
            });
        };
        if header > 0 {
            use std::io::Seek;
            file.seek(std::io::SeekFrom::Start(header))
                .map_err(|e| TransportError::io(path, e))?;
        }
        if len == 0 {
            return Err(TransportError::Empty {
                path: path.to_path_buf(),
            });
        }
        if len % fmt.sample_bytes() as u64 != 0 {
            return Err(TransportError::Truncated {
                path: path.to_path_buf(),
                bytes: len,
                format: fmt.sigmf_name(),
                sample_bytes: fmt.sample_bytes(),
            });
        }
        Ok(std::io::BufReader::with_capacity(1 << 20, file).take(len))
    }

    /// Reads from any byte source (a test buffer, a pipe).
    pub fn from_reader(
        name: impl Into<PathBuf>,
        src: Box<dyn Read + Send>,
        format: IqFormat,
        meta: Option<Meta>,
    ) -> Self {
        Self {
            path: name.into(),
            src,
            format,
            meta,
            samples_read: 0,
            partial: Vec::new(),
            bytes: Vec::new(),
            at_eof: false,
        }
    }

    /// The sample format.
    pub fn format(&self) -> IqFormat {
        self.format
    }

    /// SigMF metadata, for a recording.
    pub fn meta(&self) -> Option<&Meta> {
        self.meta.as_ref()
    }

    /// The sample rate the metadata declares, if any.
    pub fn sample_rate_hz(&self) -> Option<f64> {
        self.meta.as_ref().and_then(|m| m.sample_rate_hz)
    }

    /// Samples returned so far.
    pub fn samples_read(&self) -> u64 {
        self.samples_read
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends up to `max` samples to `out`; returns how many (0 at the end of the stream).
    /// A stream that ends inside a sample, or is empty, or holds a NaN/infinite value, is an
    /// error.
    pub fn read(&mut self, out: &mut Vec<Complex32>, max: usize) -> Result<usize, TransportError> {
        let sb = self.format.sample_bytes();
        let want = max * sb;
        self.bytes.clear();
        self.bytes.extend_from_slice(&self.partial);
        self.partial.clear();
        while self.bytes.len() < want && !self.at_eof {
            let start = self.bytes.len();
            self.bytes.resize(want, 0);
            let n = match self.src.read(&mut self.bytes[start..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => return Err(TransportError::io(&self.path, e)),
            };
            self.bytes.truncate(start + n);
            if n == 0 {
                self.at_eof = true;
            }
        }
        let whole = self.bytes.len() / sb * sb;
        if self.at_eof && whole != self.bytes.len() {
            return Err(TransportError::Truncated {
                path: self.path.clone(),
                bytes: self.samples_read * sb as u64 + self.bytes.len() as u64,
                format: self.format.sigmf_name(),
                sample_bytes: sb,
            });
        }
        self.partial.extend_from_slice(&self.bytes[whole..]);
        let first = self.samples_read;
        out.reserve(whole / sb);
        for (i, b) in self.bytes[..whole].chunks_exact(sb).enumerate() {
            let s = self.format.decode(b);
            if !(s.re.is_finite() && s.im.is_finite()) {
                let sample = first + i as u64;
                return Err(TransportError::NonFinite {
                    path: self.path.clone(),
                    sample,
                    byte_offset: sample * sb as u64,
                });
            }
            out.push(s);
        }
        let n = whole / sb;
        self.samples_read += n as u64;
        if self.samples_read == 0 && self.at_eof {
            return Err(TransportError::Empty {
                path: self.path.clone(),
            });
        }
        Ok(n)
    }

    /// Reads everything that is left.
    pub fn read_all(&mut self) -> Result<Vec<Complex32>, TransportError> {
        let mut v = Vec::new();
        while self.read(&mut v, 1 << 16)? > 0 {}
        Ok(v)
    }
}

enum Sink {
    Raw(Box<dyn Write + Send>),
    Sigmf {
        data: BufWriter<File>,
        meta_path: PathBuf,
        meta: Box<Meta>,
    },
}

/// Writes samples to a raw file, a SigMF recording (when the path names `.sigmf-data`,
/// `.sigmf-meta` or `.sigmf`; the metadata is written by [`IqWriter::finish`]), or stdout (`-`).
pub struct IqWriter {
    path: PathBuf,
    sink: Sink,
    format: IqFormat,
    written: u64,
    /// Samples beyond the integer format's full scale (saturated).
    clipped: u64,
    buf: Vec<u8>,
}

impl std::fmt::Debug for IqWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IqWriter")
            .field("path", &self.path)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl IqWriter {
    /// Creates the output. `meta` supplies the SigMF fields (its datatype is replaced by
    /// `format`); it is ignored for raw outputs.
    pub fn create(path: &Path, format: IqFormat, meta: Meta) -> Result<Self, TransportError> {
        let sink = if path == Path::new("-") {
            Sink::Raw(Box::new(BufWriter::new(std::io::stdout())))
        } else if let Some((meta_path, data_path)) = sigmf::pair_paths(path) {
            let f = File::create(&data_path).map_err(|e| TransportError::io(&data_path, e))?;
            Sink::Sigmf {
                data: BufWriter::with_capacity(1 << 20, f),
                meta_path,
                meta: Box::new(Meta {
                    datatype: format.sigmf_name().into(),
                    dataset: None,
                    header_bytes: 0,
                    trailing_bytes: 0,
                    ..meta
                }),
            }
        } else {
            let f = File::create(path).map_err(|e| TransportError::io(path, e))?;
            Sink::Raw(Box::new(BufWriter::with_capacity(1 << 20, f)))
        };
        Ok(Self {
            path: path.to_path_buf(),
            sink,
            format,
            written: 0,
            clipped: 0,
            buf: Vec::new(),
        })
    }

    /// Appends samples.
    pub fn write(&mut self, samples: &[Complex32]) -> Result<(), TransportError> {
        self.buf.clear();
        for &s in samples {
            self.format.encode(s, &mut self.buf);
        }
        if self.format != IqFormat::Cf32 {
            self.clipped += samples.iter().filter(|s| s.re.abs().max(s.im.abs()) > 1.0).count() as u64;
        }
        let w: &mut dyn Write = match &mut self.sink {
            Sink::Raw(w) => w.as_mut(),
            Sink::Sigmf { data, .. } => data,
        };
        w.write_all(&self.buf).map_err(|e| TransportError::io(&self.path, e))?;
        self.written += samples.len() as u64;
        Ok(())
    }

    /// Labels a span of samples (SigMF only; raw outputs ignore it).
    pub fn annotate(&mut self, annotation: Annotation) {
        if let Sink::Sigmf { meta, .. } = &mut self.sink {
            meta.annotations.push(annotation);
        }
    }

    /// The sample format written.
    pub fn format(&self) -> IqFormat {
        self.format
    }

    /// The output's path (the data file's, for a recording).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Samples written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Samples written so far that exceeded an integer format's full scale (±1.0) and were
    /// saturated there; [`IqWriter::finish`] warns when there were any.
    pub fn clipped(&self) -> u64 {
        self.clipped
    }

    /// Flushes the samples and writes the SigMF metadata. Returns the number of samples.
    pub fn finish(self) -> Result<u64, TransportError> {
        if self.clipped > 0 {
            tracing::warn!(
                "{}: {} of {} samples exceeded the full scale of {} (±1.0) and were clipped; lower the scale or use cf32",
                self.path.display(),
                self.clipped,
                self.written,
                self.format.sigmf_name()
            );
        }
        match self.sink {
            Sink::Raw(mut w) => w.flush().map_err(|e| TransportError::io(&self.path, e))?,
            Sink::Sigmf {
                mut data,
                meta_path,
                meta,
            } => {
                data.flush().map_err(|e| TransportError::io(&self.path, e))?;
                let text = serde_json::to_string_pretty(&meta.to_json()).unwrap_or_default();
                std::fs::write(&meta_path, text + "\n").map_err(|e| TransportError::io(&meta_path, e))?;
            }
        }
        Ok(self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("semcom-iqfile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&d);
        d
    }

    #[test]
    fn every_format_round_trips_raw_and_sigmf() {
        let x: Vec<Complex32> = (0..1000)
            .map(|i| Complex32::new((i as f32 * 0.01).sin() * 0.9, (i as f32 * 0.013).cos() * 0.9))
            .collect();
        for fmt in IqFormat::ALL {
            for name in [format!("a.{}", fmt.sigmf_name()), "b.sigmf-data".to_string()] {
                let p = tmp(&format!("{fmt}-{name}"));
                let mut w = IqWriter::create(&p, fmt, Meta::new("cf32_le", 20e6)).unwrap();
                w.write(&x[..300]).unwrap();
                w.write(&x[300..]).unwrap();
                w.annotate(Annotation {
                    sample_start: 10,
                    sample_count: 20,
                    label: "x".into(),
                    comment: None,
                });
                assert_eq!(w.finish().unwrap(), 1000);
                let mut r = IqReader::open(&p, if name.starts_with('a') { Some(fmt) } else { None }).unwrap();
                assert_eq!(r.format(), fmt);
                let y = r.read_all().unwrap();
                assert_eq!(y.len(), 1000);
                let tol = match fmt {
                    IqFormat::Cf32 => 0.0,
                    IqFormat::Ci16 => 1e-4,
                    _ => 1.0 / 128.0,
                };
                for (a, b) in x.iter().zip(&y) {
                    assert!((a - b).norm() <= tol * 1.5, "{fmt}: {a} vs {b}");
                }
                if name.starts_with('b') {
                    assert_eq!(r.meta().unwrap().annotations.len(), 1);
                    assert_eq!(r.sample_rate_hz(), Some(20e6));
                }
            }
        }
    }

    /// Integer formats saturate at full scale and count what they clipped; cf32 clips nothing.
    #[test]
    fn clipping_is_counted() {
        let x = [
            Complex32::new(0.5, -0.5),
            Complex32::new(1.5, 0.0),
            Complex32::new(0.0, -3.0),
        ];
        for fmt in IqFormat::ALL {
            let p = tmp(&format!("clip.{}", fmt.sigmf_name()));
            let mut w = IqWriter::create(&p, fmt, Meta::new("cf32_le", 20e6)).unwrap();
            w.write(&x).unwrap();
            assert_eq!(w.clipped(), if fmt == IqFormat::Cf32 { 0 } else { 2 }, "{fmt}");
            w.finish().unwrap();
            let y = IqReader::open(&p, Some(fmt)).unwrap().read_all().unwrap();
            let saturated = y[1].re <= 1.0 && y[2].im >= -1.0;
            assert!(
                (y[0] - x[0]).norm() < 0.01 && saturated == (fmt != IqFormat::Cf32),
                "{fmt}: {y:?}"
            );
            let _ = std::fs::remove_file(&p);
        }
    }

    /// A SigMF non-conforming dataset: samples inside another file, after a header and before
    /// trailing bytes, named by `core:dataset`.
    #[test]
    fn non_conforming_dataset_is_read_between_header_and_trailer() {
        let x: Vec<Complex32> = (0..50).map(|i| Complex32::new(i as f32, -(i as f32))).collect();
        let data = tmp("capture.bin");
        let mut bytes = b"RIFF-like header, 44 bytes long.............".to_vec();
        assert_eq!(bytes.len(), 44);
        for s in &x {
            bytes.extend_from_slice(&s.re.to_le_bytes());
            bytes.extend_from_slice(&s.im.to_le_bytes());
        }
        bytes.extend_from_slice(b"END");
        std::fs::write(&data, &bytes).unwrap();
        let meta = tmp("ncd.sigmf-meta");
        let name = data.file_name().unwrap().to_str().unwrap();
        let doc = |header: usize| {
            format!(
                r#"{{"global":{{"core:datatype":"cf32_le","core:version":"1.2.0","core:dataset":"{name}","core:trailing_bytes":3}},"captures":[{{"core:sample_start":0,"core:header_bytes":{header}}}],"annotations":[]}}"#
            )
        };
        std::fs::write(&meta, doc(44)).unwrap();
        let mut r = IqReader::open(&meta, None).unwrap();
        assert_eq!(r.read_all().unwrap(), x);
        // A header that leaves a partial sample, or more header than file: errors.
        std::fs::write(&meta, doc(45)).unwrap();
        assert!(matches!(
            IqReader::open(&meta, None),
            Err(TransportError::Truncated { .. })
        ));
        std::fs::write(&meta, doc(5000)).unwrap();
        let e = IqReader::open(&meta, None).unwrap_err().to_string();
        assert!(e.contains("cannot hold 5000 header"), "{e}");
    }

    #[test]
    fn bad_files_are_named_errors() {
        let empty = tmp("empty.cf32");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            IqReader::open(&empty, None),
            Err(TransportError::Empty { .. })
        ));
        let trunc = tmp("trunc.cf32");
        std::fs::write(&trunc, [0u8; 13]).unwrap();
        let e = IqReader::open(&trunc, None).unwrap_err();
        assert!(e.to_string().contains("13 bytes"), "{e}");
        let nan = tmp("nan.cf32");
        let mut bytes = vec![0u8; 8 * 4];
        bytes[8 * 2..8 * 2 + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&nan, &bytes).unwrap();
        let e = IqReader::open(&nan, None).unwrap().read_all().unwrap_err();
        assert!(
            matches!(
                e,
                TransportError::NonFinite {
                    sample: 2,
                    byte_offset: 16,
                    ..
                }
            ),
            "{e}"
        );
        assert!(matches!(
            IqReader::open(&tmp("missing.cf32"), None),
            Err(TransportError::Io { .. })
        ));
        let odd = tmp("x.wav");
        std::fs::write(&odd, [0u8; 8]).unwrap();
        assert!(matches!(
            IqReader::open(&odd, None),
            Err(TransportError::UnsupportedFormat { .. })
        ));
        // A stream (no size known up front) that ends inside a sample.
        let mut r = IqReader::from_reader(
            "pipe",
            Box::new(std::io::Cursor::new(vec![0u8; 12])),
            IqFormat::Cf32,
            None,
        );
        assert!(matches!(r.read_all(), Err(TransportError::Truncated { bytes: 12, .. })));
    }
}
