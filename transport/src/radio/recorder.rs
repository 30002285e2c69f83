//! [`Recorder`]: an [`IqWriter`] on a thread of its own, so a receive loop that records never
//! waits on the disk. The kernel may hold a writer for a good part of a second while it flushes
//! dirty pages; a live radio whose reader waits that long overflows.
//!
//! The queue is bounded (about a second at 20 MS/s): a disk slower than the stream on average
//! makes [`Recorder::write`] wait, and the radio then overflows and counts it.

use crate::sigmf::Annotation;
use crate::{IqWriter, TransportError};
use num_complex::Complex32;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

enum Msg {
    Samples(Vec<Complex32>),
    Annotate(Annotation),
}

/// Samples are handed to the writer thread in blocks of this many.
const BLOCK: usize = 1 << 18;
/// Blocks queued at most: 80 × 2¹⁸ samples, 1.05 s at 20 MS/s (168 MB in cf32).
const QUEUE_BLOCKS: usize = 80;

/// A recording written in the background.
#[derive(Debug)]
pub struct Recorder {
    queue: Option<SyncSender<Msg>>,
    block: Vec<Complex32>,
    thread: Option<JoinHandle<Result<u64, TransportError>>>,
    name: String,
}

impl Recorder {
    /// Starts writing to `writer` in the background.
    pub fn spawn(mut writer: IqWriter) -> Self {
        let name = writer.path().display().to_string();
        let (tx, rx) = sync_channel::<Msg>(QUEUE_BLOCKS);
        let thread = std::thread::Builder::new()
            .name(format!("record {name}"))
            .spawn(move || {
                for m in rx {
                    match m {
                        Msg::Samples(v) => writer.write(&v)?,
                        Msg::Annotate(a) => writer.annotate(a),
                    }
                }
                writer.finish()
            })
            .expect("spawning the recorder thread");
        Self {
            queue: Some(tx),
            block: Vec::with_capacity(BLOCK),
            thread: Some(thread),
            name,
        }
    }

    fn finished(&self) -> TransportError {
        TransportError::NotSupported {
            radio: self.name.clone(),
            reason: "the recording is finished".into(),
        }
    }

    fn send(&mut self, m: Msg) -> Result<(), TransportError> {
        let Some(q) = &self.queue else {
            return Err(self.finished());
        };
        if q.send(m).is_ok() {
            return Ok(());
        }
        // The writer stopped: its error says why.
        self.queue = None;
        self.join().and_then(|_| Err(self.finished()))
    }

    fn join(&mut self) -> Result<u64, TransportError> {
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| {
                Err(TransportError::NotSupported {
                    radio: self.name.clone(),
                    reason: "the recorder thread panicked".into(),
                })
            }),
            None => Err(self.finished()),
        }
    }

    fn flush_block(&mut self) -> Result<(), TransportError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        self.send(Msg::Samples(full))
    }

    /// Queues samples.
    pub fn write(&mut self, mut samples: &[Complex32]) -> Result<(), TransportError> {
        if self.queue.is_none() {
            return Err(self.finished());
        }
        while !samples.is_empty() {
            let n = samples.len().min(BLOCK - self.block.len());
            self.block.extend_from_slice(&samples[..n]);
            samples = &samples[n..];
            if self.block.len() == BLOCK {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    /// Queues an annotation.
    pub fn annotate(&mut self, a: Annotation) -> Result<(), TransportError> {
        self.send(Msg::Annotate(a))
    }

    /// Writes what is queued, completes the recording (SigMF metadata), and returns the
    /// number of samples written.
    pub fn finish(&mut self) -> Result<u64, TransportError> {
        let flushed = self.flush_block();
        self.queue = None;
        let written = self.join();
        flushed.and(written)
    }
}

impl Drop for Recorder {
    /// A recording dropped without [`finish`](Self::finish) (an error unwinding) is still
    /// completed.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigmf::Meta;
    use crate::{IqFormat, IqReader};
    use std::path::Path;

    #[test]
    fn records_in_the_background() {
        let dir = std::env::temp_dir().join(format!("semcom-recorder-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("r.sigmf-data");
        let w = IqWriter::create(&p, IqFormat::Cf32, Meta::new("cf32_le", 1e6)).unwrap();
        let mut r = Recorder::spawn(w);
        let x: Vec<Complex32> = (0..600_000).map(|i| Complex32::new(i as f32, 0.5)).collect();
        for c in x.chunks(70_001) {
            r.write(c).unwrap();
        }
        r.annotate(Annotation {
            sample_start: 10,
            sample_count: 5,
            label: "frame".into(),
            comment: None,
        })
        .unwrap();
        assert_eq!(r.finish().unwrap(), 600_000);
        assert!(r.write(&x[..1]).is_err(), "writes after finish are refused");
        let mut rd = IqReader::open(&p.with_extension("sigmf-meta"), None).unwrap();
        assert_eq!(rd.meta().unwrap().annotations.len(), 1);
        assert_eq!(rd.read_all().unwrap(), x);
    }

    /// A disk error reaches the receive loop as an error, not a hang or a silent loss.
    #[test]
    fn a_failing_disk_is_an_error() {
        if !Path::new("/dev/full").exists() {
            eprintln!("SKIPPED: no /dev/full");
            return;
        }
        let w = IqWriter::create(Path::new("/dev/full"), IqFormat::Cf32, Meta::new("cf32_le", 1e6)).unwrap();
        let mut r = Recorder::spawn(w);
        let x = vec![Complex32::new(0.1, 0.2); 1 << 16];
        let mut failed = false;
        for _ in 0..200 {
            if r.write(&x).is_err() {
                failed = true;
                break;
            }
        }
        let end = r.finish();
        assert!(failed || end.is_err());
        if let Err(e) = end {
            assert!(
                matches!(e, TransportError::Io { .. } | TransportError::NotSupported { .. }),
                "{e}"
            );
        }
    }
}
