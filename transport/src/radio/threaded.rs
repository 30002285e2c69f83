//! [`ReaderThread`]: a receive stream read on its own thread, so the reader keeps draining the
//! source (a UDP socket, a device) while the consumer is busy, and short stalls of the consumer
//! do not become lost samples.
//!
//! The queue between the two is bounded: a consumer slower than the stream on average fills it,
//! the reader thread then waits, and the source overflows and counts what it loses, as it would
//! without the thread. Nothing is dropped silently here.

use super::{Radio, RadioInfo, RadioStats, RxRead};
use crate::TransportError;
use num_complex::Complex32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

enum Msg {
    Samples(Vec<Complex32>, Option<i64>),
    End,
    Failed(TransportError),
}

/// A receive-only radio whose reads run on a thread of their own.
#[derive(Debug)]
pub struct ReaderThread {
    info: RadioInfo,
    queue: Option<Receiver<Msg>>,
    stats: Arc<Mutex<RadioStats>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    chunk: Vec<Complex32>,
    pos: usize,
    time_ns: Option<i64>,
    ended: bool,
    wait: Duration,
}

impl ReaderThread {
    /// Starts reading `radio` on a new thread in chunks of up to `chunk` samples, with up to
    /// `depth` chunks queued.
    pub fn spawn<R: Radio + 'static>(mut radio: R, chunk: usize, depth: usize) -> Self {
        let info = radio.info().clone();
        let stats = Arc::new(Mutex::new(radio.stats()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = sync_channel(depth.max(1));
        let (st, stp) = (Arc::clone(&stats), Arc::clone(&stop));
        let chunk = chunk.max(1);
        let thread = std::thread::Builder::new()
            .name(format!("rx {}", info.name))
            .spawn(move || {
                while !stp.load(Ordering::Relaxed) {
                    let mut v = Vec::with_capacity(chunk);
                    let r = radio.read(&mut v, chunk);
                    if let Ok(mut s) = st.lock() {
                        *s = radio.stats();
                    }
                    let msg = match r {
                        Ok(RxRead::Samples { time_ns, .. }) => Msg::Samples(v, time_ns),
                        Ok(RxRead::Timeout) => continue,
                        Ok(RxRead::End) => Msg::End,
                        Err(e) => Msg::Failed(e),
                    };
                    let last = !matches!(msg, Msg::Samples(..));
                    if tx.send(msg).is_err() || last {
                        break;
                    }
                }
                let _ = radio.finish();
            })
            .expect("spawning a reader thread");
        Self {
            info,
            queue: Some(rx),
            stats,
            stop,
            thread: Some(thread),
            chunk: Vec::new(),
            pos: 0,
            time_ns: None,
            ended: false,
            wait: Duration::from_millis(100),
        }
    }

    fn take(&mut self, out: &mut Vec<Complex32>, max: usize) -> RxRead {
        let n = max.min(self.chunk.len() - self.pos);
        out.extend_from_slice(&self.chunk[self.pos..self.pos + n]);
        let time_ns = self
            .time_ns
            .map(|t| t + (self.pos as f64 * 1e9 / self.info.sample_rate_hz).round() as i64);
        self.pos += n;
        RxRead::Samples { count: n, time_ns }
    }
}

impl Radio for ReaderThread {
    fn info(&self) -> &RadioInfo {
        &self.info
    }

    fn read(&mut self, out: &mut Vec<Complex32>, max: usize) -> Result<RxRead, TransportError> {
        if self.pos < self.chunk.len() {
            return Ok(self.take(out, max));
        }
        if self.ended {
            return Ok(RxRead::End);
        }
        let Some(q) = &self.queue else {
            return Ok(RxRead::End);
        };
        match q.recv_timeout(self.wait) {
            Ok(Msg::Samples(v, t)) => {
                self.chunk = v;
                self.pos = 0;
                self.time_ns = t;
                Ok(self.take(out, max))
            }
            Ok(Msg::End) | Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                Ok(RxRead::End)
            }
            Ok(Msg::Failed(e)) => {
                self.ended = true;
                Err(e)
            }
            Err(RecvTimeoutError::Timeout) => Ok(RxRead::Timeout),
        }
    }

    fn write(&mut self, _: &[Complex32]) -> Result<(), TransportError> {
        Err(TransportError::NotSupported {
            radio: self.info.name.clone(),
            reason: "a receive stream does not transmit".into(),
        })
    }

    fn finish(&mut self) -> Result<(), TransportError> {
        self.stop.store(true, Ordering::Relaxed);
        // Dropping the queue unblocks a reader waiting to hand over a chunk.
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Ok(())
    }

    fn stats(&self) -> RadioStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }
}

impl Drop for ReaderThread {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::radio::sim::SimRadio;
    use semcom_phy::channel::Chain;

    /// Everything the source delivers arrives, in order, in any read sizes; the end and the
    /// counters come through.
    #[test]
    fn passes_the_stream_through() {
        let mut src = SimRadio::new(Chain::new(), 1e6);
        let x: Vec<Complex32> = (0..10_000).map(|i| Complex32::new(i as f32, -(i as f32))).collect();
        src.write(&x).unwrap();
        src.finish().unwrap();
        let mut r = ReaderThread::spawn(src, 777, 2);
        let mut y = Vec::new();
        let mut sizes = [5usize, 1000, 64].iter().cycle();
        loop {
            match r.read(&mut y, *sizes.next().unwrap()).unwrap() {
                RxRead::Samples { count, .. } => assert!(count > 0),
                RxRead::Timeout => {}
                RxRead::End => break,
            }
        }
        assert_eq!(y, x);
        assert_eq!(r.stats().samples_read, 10_000);
        assert!(matches!(r.write(&x), Err(TransportError::NotSupported { .. })));
        r.finish().unwrap();
    }

    /// A source error reaches the consumer as that error.
    #[test]
    fn errors_come_through() {
        let dir = std::env::temp_dir().join(format!("semcom-threaded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("nan.cf32");
        let mut b = vec![0u8; 8 * 100];
        b[8 * 50..8 * 50 + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        std::fs::write(&p, b).unwrap();
        let src = crate::radio::file::FileRadio::open(&p, None, None).unwrap();
        let mut r = ReaderThread::spawn(src, 16, 4);
        let mut y = Vec::new();
        let e = loop {
            match r.read(&mut y, 100) {
                Ok(RxRead::End) => panic!("ended without the error"),
                Ok(_) => {}
                Err(e) => break e,
            }
        };
        assert!(matches!(e, TransportError::NonFinite { sample: 50, .. }), "{e}");
        assert_eq!(r.read(&mut y, 100).unwrap(), RxRead::End);
    }
}
