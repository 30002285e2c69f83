//! The streaming 802.11a receiver.
//!
//! Feed samples of any chunk size with [`Receiver::push`]; take decoded frames and other
//! events with [`Receiver::poll_event`]. Nothing depends on how the stream was chunked.
//!
//! ```text
//!  Search ──L-STF run──► Header ──L-LTF timing, fine CFO, channel fit, SIGNAL ok──► Data
//!    ▲                     │ SIGNAL refused                                         │ all
//!    └─────────────────────┴──────────────────── frame event ◄──────────────────────┘ samples
//! ```
//!
//! Frames are decoded whole once their last sample has arrived, which lets the phase tracker
//! smooth over symbols on both sides and fit the sampling-clock drift over the whole frame.

mod chest;
mod detect;
mod known;
mod semcom;

pub use known::{KnownFormat, KNOWN_DETECT_THRESHOLD, MAX_REPEATS, SIFS_SAMPLES};
pub use semcom::{AnalogRxFrame, RxSegment, SemcomRxFrame};

use crate::interleaver::Interleaver;
use crate::mapping::{constellation, demap_quantized, hard_label, k_mod, quantize_llr};
use crate::ofdm::{bin, DATA_SUBCARRIERS, N_CP, N_FFT, N_SYM, PILOTS, USED_SUBCARRIERS};
use crate::preamble::{ltf_freq, ltf_value};
use crate::rate::{Modulation, Rate};
use crate::scrambler::{pilot_polarity, Scrambler};
use crate::signal::SignalField;
use crate::viterbi::{Termination, ViterbiDecoder};
use crate::{convcode, crc, SignalError};
use chest::ChannelEstimator;
use detect::{Detection, Detector};
use num_complex::{Complex32, Complex64};
use rustfft::{Fft, FftPlanner};
use std::collections::VecDeque;
use std::sync::Arc;

/// Receiver settings. The defaults suit 802.11a at 20 MS/s.
#[derive(Clone, Debug, PartialEq)]
pub struct RxConfig {
    /// Sample rate of the input, Hz; only used to report CFO in Hz.
    pub sample_rate_hz: f64,
    /// Detection threshold on the normalised L-STF autocorrelation |ρ| (0 … 1).
    pub detect_threshold: f32,
    /// Consecutive positions above the threshold needed to declare a packet.
    pub detect_run: usize,
    /// Samples the FFT window starts before the estimated symbol start (inside the CP).
    pub fft_backoff: usize,
    /// Symbols on each side averaged by the pilot phase tracker.
    pub phase_smoothing: usize,
    /// Keep the equalised data-subcarrier points of each frame in [`RxFrame::symbols`]
    /// (constellation plots, uncoded BER).
    pub keep_symbols: bool,
    /// Known-format reception (see [`KnownFormat`]): when set, the receiver listens only for
    /// frames of this rate and length, sent this many times, decodes them without SIGNAL and
    /// combines the copies; other frames are not reported.
    pub expect: Option<KnownFormat>,
}

impl RxConfig {
    /// The L-STF detection threshold in use: in known-format mode the lower of the two.
    fn threshold(&self) -> f32 {
        match &self.expect {
            Some(kf) => self.detect_threshold.min(kf.detect_threshold),
            None => self.detect_threshold,
        }
    }
}

impl Default for RxConfig {
    fn default() -> Self {
        Self {
            sample_rate_hz: crate::ofdm::SAMPLE_RATE_HZ,
            detect_threshold: 0.45,
            detect_run: 24,
            fft_backoff: 3,
            phase_smoothing: 8,
            keep_symbols: false,
            expect: None,
        }
    }
}

/// One decoded frame with its statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct RxFrame {
    /// Absolute index (from the first sample ever pushed) of the frame's first L-STF sample.
    pub offset: u64,
    /// Data rate from SIGNAL.
    pub rate: Rate,
    /// PSDU length in octets from SIGNAL.
    pub length: usize,
    /// Whether the last four PSDU octets are the CRC-32 of the others.
    pub fcs_ok: bool,
    /// The decoded PSDU (FCS included).
    pub psdu: Vec<u8>,
    /// Estimated SNR in dB, per-sample definition (see the crate docs), from the L-LTF.
    pub snr_db: f32,
    /// Error vector magnitude of the DATA symbols against hard decisions, dB.
    pub evm_db: f32,
    /// Carrier frequency offset, Hz (positive: the signal is above the tuned frequency).
    pub cfo_hz: f32,
    /// Mean received power over the L-LTF, dB relative to a sample of magnitude 1.
    pub rssi_db: f32,
    /// Sampling-clock offset estimated from the pilots, parts per million.
    pub sfo_ppm: f32,
    /// Scrambler state recovered from the SERVICE field (x1 in bit 0).
    pub scrambler_seed: u8,
    /// Equalised data-subcarrier points, 48 per DATA symbol in subcarrier order, when
    /// [`RxConfig::keep_symbols`] is set (empty otherwise).
    pub symbols: Vec<Complex32>,
}

/// What the receiver reports.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RxEvent {
    /// A frame whose SIGNAL field passed its checks; see `fcs_ok` for the payload.
    Frame(RxFrame),
    /// A SIGNAL field passed, but the first DATA symbols' pilots are not there: no frame follows
    /// (a false SIGNAL, or preambles without data). Nothing is decoded.
    Rejected {
        /// Estimated first L-STF sample.
        offset: u64,
        /// Rate from SIGNAL.
        rate: Rate,
        /// Length from SIGNAL.
        length: usize,
    },
    /// A semcom-profile frame (see [`crate::semcom`]): its header passed; see each segment's
    /// `fcs_ok`.
    Semcom(SemcomRxFrame),
    /// An analog semcom frame (see [`crate::semcom`]): its header passed; the equalised
    /// symbols and their SNR estimates.
    Analog(AnalogRxFrame),
    /// An L-SIG at 6 Mbit/s was followed by a semcom (QBPSK) header that was refused.
    SemcomHeaderError {
        /// Estimated first L-STF sample.
        offset: u64,
        /// Why the header was refused.
        error: crate::semcom::HeaderError,
    },
    /// A preamble was found but the SIGNAL field was refused.
    HeaderError {
        /// Estimated first L-STF sample.
        offset: u64,
        /// Why SIGNAL was refused.
        error: SignalError,
    },
    /// The stream ended (see [`Receiver::flush`]) before the frame's last sample.
    Truncated {
        /// Estimated first L-STF sample.
        offset: u64,
        /// Rate from SIGNAL.
        rate: Rate,
        /// Length from SIGNAL.
        length: usize,
    },
}

/// Running counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxStats {
    /// Samples pushed.
    pub samples: u64,
    /// Non-finite samples (NaN, ±inf) replaced by zero.
    pub non_finite: u64,
    /// L-STF detections.
    pub detections: u64,
    /// Detections without a credible L-LTF (known-format mode: detections that gave no frame).
    pub sync_failures: u64,
    /// SIGNAL fields and semcom headers refused.
    pub header_errors: u64,
    /// Accepted SIGNAL fields not followed by DATA pilots ([`RxEvent::Rejected`]).
    pub rejected: u64,
    /// Frames decoded (FCS good or bad), both profiles.
    pub frames: u64,
    /// Frames whose FCS failed (semcom: any segment not intact).
    pub fcs_failures: u64,
    /// Frames cut off by the end of the stream.
    pub truncated: u64,
    /// Frames whose FCS failed with the preamble's channel estimate and passed after the
    /// channel was re-estimated over the frame.
    pub tracking_recoveries: u64,
}

impl RxStats {
    /// The counts accumulated since `earlier` (a snapshot of the same receiver).
    pub fn since(&self, earlier: &RxStats) -> RxStats {
        RxStats {
            samples: self.samples - earlier.samples,
            non_finite: self.non_finite - earlier.non_finite,
            detections: self.detections - earlier.detections,
            sync_failures: self.sync_failures - earlier.sync_failures,
            header_errors: self.header_errors - earlier.header_errors,
            rejected: self.rejected - earlier.rejected,
            frames: self.frames - earlier.frames,
            fcs_failures: self.fcs_failures - earlier.fcs_failures,
            truncated: self.truncated - earlier.truncated,
            tracking_recoveries: self.tracking_recoveries - earlier.tracking_recoveries,
        }
    }
}

/// Timing, frequency and channel of a frame whose SIGNAL decoded.
#[derive(Clone, Debug)]
struct Header {
    /// Absolute index of the first sample of the first L-LTF symbol.
    t1: u64,
    /// Total CFO, radians per sample.
    cfo: f64,
    /// Channel estimate, FFT-bin order.
    h: [Complex32; N_FFT],
    /// Mean |H|² over the used subcarriers.
    h_power: f32,
    /// Noise variance per FFT bin (one symbol).
    noise_var: f32,
    signal: SignalField,
    n_sym: usize,
    rssi_db: f32,
    /// The first DATA symbols' pilots have been checked (see [`Receiver::pilots_plausible`]).
    checked: bool,
    /// The symbols after a 6 Mbit/s L-SIG have been probed for a semcom header.
    semcom_probed: bool,
    /// The semcom header (digital or analog), when the frame is one; `n_sym` then counts its
    /// symbols after L-SIG.
    semcom: Option<Box<crate::semcom::FrameHeader>>,
}

/// What [`Receiver::acquire`] finds on an L-LTF.
#[derive(Clone, Debug)]
struct Acquired {
    /// Absolute index of the first sample of the first L-LTF symbol.
    t1: u64,
    /// Total CFO, radians per sample.
    cfo: f64,
    /// Channel estimate, FFT-bin order.
    h: [Complex32; N_FFT],
    /// Mean |H|² over the used subcarriers.
    h_power: f32,
    /// Noise variance per FFT bin (one symbol).
    noise_var: f32,
    rssi_db: f32,
}

#[derive(Clone, Debug)]
enum State {
    Search,
    Header(Detection, u64),
    Data(Box<Header>),
}

/// Samples needed after a detection before the header can be processed: the latest L-LTF start
/// searched plus the L-LTF and SIGNAL (the SIGNAL FFT window ends before 128 + 80).
const HEADER_SPAN: u64 = T1_SEARCH.1 + 208;
/// Range of L-LTF first-symbol starts searched, relative to the detection start.
const T1_SEARCH: (u64, u64) = (100, 270);
/// DATA symbols whose pilots are checked before a frame is buffered whole.
const PLAUSIBILITY_SYMBOLS: usize = 4;
/// Frames shorter than this many DATA symbols are not worth a channel-tracking pass.
const TRACK_MIN_SYMBOLS: usize = 12;
/// Re-estimation passes at most (each from the previous pass's decoded bits).
const TRACK_PASSES: usize = 3;
/// Symbols on each side averaged by the channel tracker.
const TRACK_HALF_WINDOW: usize = 4;
/// GI2 samples left out of the fine CFO estimate (transition window).
const GI2_SKIP: usize = 4;
/// Minimum share of the L-LTF region's energy correlating with the L-LTF (over 12 delays) for a
/// detection to proceed.
const LTF_MIN_CORR: f32 = 0.4;
/// The sampling-clock drift fit is dropped when its residual exceeds this many times what the
/// pilots' noise explains (χ² per degree of freedom).
const DRIFT_MISFIT: f64 = 4.0;
/// Prior standard deviation of the sampling-clock offset (fraction), for the SFO fit.
const SFO_PRIOR: f64 = 40e-6;

/// The streaming receiver. See the module docs.
pub struct Receiver {
    cfg: RxConfig,
    buf: Vec<Complex32>,
    /// Absolute index of `buf[0]`.
    base: u64,
    /// Next detector position, absolute.
    scan: u64,
    state: State,
    det: Detector,
    fft: Arc<dyn Fft<f32>>,
    fft_scratch: Vec<Complex32>,
    ltf_time: [Complex32; N_FFT],
    chest: ChannelEstimator,
    viterbi: ViterbiDecoder,
    interleavers: [Interleaver; 6],
    polarity: [i8; 127],
    events: VecDeque<RxEvent>,
    stats: RxStats,
    syms: Vec<[Complex32; N_FFT]>,
    llrs: Vec<i8>,
    depunctured: Vec<i8>,
    bits: Vec<u8>,
    /// LDPC decoders of the semcom profile, one per code met so far.
    ldpc: Vec<crate::ldpc::LayeredDecoder>,
    /// Re-encodes decoded payloads into the points sent (EVM, channel re-estimation).
    encoder: crate::tx::Transmitter,
    equalized: Vec<Complex32>,
    /// exp(−j·cfo·i) for i in 0..64, for the CFO it was built for.
    rot_table: (f64, [Complex32; N_FFT]),
    /// Known-format mode: absolute index where the last delivered burst ended; copies found
    /// before it belong to a burst already reported.
    known_consumed: u64,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for Receiver {
    fn default() -> Self {
        Self::new(RxConfig::default())
    }
}

fn modulation_index(m: Modulation) -> usize {
    Modulation::ALL.iter().position(|&x| x == m).unwrap_or(0)
}

impl Receiver {
    /// A receiver with its FFT plan and tables built.
    pub fn new(cfg: RxConfig) -> Self {
        let mut planner = FftPlanner::new();
        let fft = planner.plan_fft_forward(N_FFT);
        let fft_scratch = vec![Complex32::new(0.0, 0.0); fft.get_inplace_scratch_len()];
        let mut ltf_time = ltf_freq();
        planner.plan_fft_inverse(N_FFT).process(&mut ltf_time);
        for v in &mut ltf_time {
            *v /= N_FFT as f32;
        }
        let det = Detector::new(cfg.threshold(), cfg.detect_run.max(1));
        Self {
            cfg,
            buf: Vec::new(),
            base: 0,
            scan: 0,
            state: State::Search,
            det,
            fft,
            fft_scratch,
            ltf_time,
            chest: ChannelEstimator::new(),
            viterbi: ViterbiDecoder::new(),
            interleavers: Modulation::ALL
                .map(|m| Interleaver::new(m.bits_per_symbol() * crate::ofdm::N_DATA, m.bits_per_symbol())),
            polarity: pilot_polarity(),
            events: VecDeque::new(),
            stats: RxStats::default(),
            syms: Vec::new(),
            llrs: Vec::new(),
            depunctured: Vec::new(),
            bits: Vec::new(),
            ldpc: Vec::new(),
            encoder: crate::tx::Transmitter::new(),
            equalized: Vec::new(),
            rot_table: (f64::NAN, [Complex32::new(0.0, 0.0); N_FFT]),
            known_consumed: 0,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &RxConfig {
        &self.cfg
    }

    /// Forgets all buffered samples, pending events and state (counters are kept); the next
    /// sample pushed has absolute index 0 again.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.base = 0;
        self.scan = 0;
        self.state = State::Search;
        self.det = Detector::new(self.cfg.threshold(), self.cfg.detect_run.max(1));
        self.events.clear();
        self.known_consumed = 0;
    }

    /// Counters so far.
    pub fn stats(&self) -> RxStats {
        self.stats
    }

    /// Feeds samples; decodes whatever they complete.
    pub fn push(&mut self, samples: &[Complex32]) {
        self.stats.samples += samples.len() as u64;
        let before = self.buf.len();
        self.buf.extend_from_slice(samples);
        // A branch-free test (`&`, not `&&`) that vectorises, with the fix-up loop only when
        // needed.
        let finite = |s: &Complex32| s.re.is_finite() & s.im.is_finite();
        if !self.buf[before..].iter().fold(true, |ok, s| ok & finite(s)) {
            for s in &mut self.buf[before..] {
                if !finite(s) {
                    *s = Complex32::new(0.0, 0.0);
                    self.stats.non_finite += 1;
                }
            }
        }
        self.run(false);
        self.compact();
    }

    /// Declares the end of the stream: a frame still waiting for samples is reported as
    /// [`RxEvent::Truncated`]. The receiver can be fed again afterwards.
    pub fn flush(&mut self) {
        self.run(true);
        if let State::Data(hdr) = std::mem::replace(&mut self.state, State::Search) {
            self.stats.truncated += 1;
            self.events.push_back(RxEvent::Truncated {
                offset: hdr.t1.saturating_sub(192),
                rate: hdr.signal.rate,
                length: hdr.signal.length,
            });
        }
        self.scan = self.end();
        self.det.reset();
        self.compact();
    }

    /// Next pending event, oldest first.
    pub fn poll_event(&mut self) -> Option<RxEvent> {
        self.events.pop_front()
    }

    /// Convenience: pushes `samples`, flushes, and returns every event.
    pub fn decode_all(&mut self, samples: &[Complex32]) -> Vec<RxEvent> {
        self.push(samples);
        self.flush();
        self.events.drain(..).collect()
    }

    fn end(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    fn run(&mut self, at_end: bool) {
        loop {
            match std::mem::replace(&mut self.state, State::Search) {
                State::Search => {
                    let mut pos = self.scan;
                    let found = self.det.scan(&self.buf, self.base, &mut pos);
                    self.scan = pos;
                    match found {
                        Some(d) => {
                            self.stats.detections += 1;
                            self.state = State::Header(d, d.start);
                        }
                        None => return,
                    }
                }
                State::Header(d, start) => {
                    if let Some(kf) = self.cfg.expect {
                        if self.end() < start + kf.span() && !at_end {
                            self.state = State::Header(d, start);
                            return;
                        }
                        self.process_known(kf, d, start);
                        continue;
                    }
                    if self.end() < start + HEADER_SPAN {
                        if !at_end {
                            self.state = State::Header(d, start);
                        }
                        return;
                    }
                    self.process_header(d, start);
                }
                State::Data(mut hdr) => {
                    if !hdr.checked {
                        // Before buffering a long frame, check that DATA symbols follow at all.
                        let k = PLAUSIBILITY_SYMBOLS.min(hdr.n_sym);
                        let need = hdr.t1 + 128 + (N_SYM * (k + 1)) as u64 - self.cfg.fft_backoff as u64;
                        if self.end() < need && !at_end {
                            self.state = State::Data(hdr);
                            return;
                        }
                        // (At the end of a stream too short to check, the frame is truncated.)
                        if self.end() >= need && !self.pilots_plausible(&hdr, k) {
                            self.stats.rejected += 1;
                            self.events.push_back(RxEvent::Rejected {
                                offset: hdr.t1.saturating_sub(192),
                                rate: hdr.signal.rate,
                                length: hdr.signal.length,
                            });
                            self.resume_after_failure(hdr.t1 + 128);
                            continue;
                        }
                        hdr.checked = true;
                    }
                    if !hdr.semcom_probed && hdr.signal.rate == Rate::R6 && hdr.n_sym >= 3 {
                        let k = semcom::PROBE_SYMBOLS.min(hdr.n_sym);
                        let need = hdr.t1 + 128 + (N_SYM * (k + 1)) as u64 - self.cfg.fft_backoff as u64;
                        if self.end() < need && !at_end {
                            self.state = State::Data(hdr);
                            return;
                        }
                        hdr.semcom_probed = true;
                        if self.end() >= need {
                            match self.semcom_header(&hdr, k) {
                                Ok(None) => {}
                                Ok(Some(h)) => {
                                    hdr.n_sym = h.total_symbols().unwrap_or(hdr.n_sym);
                                    hdr.semcom = Some(Box::new(h));
                                }
                                Err(error) => {
                                    self.stats.header_errors += 1;
                                    self.events.push_back(RxEvent::SemcomHeaderError {
                                        offset: hdr.t1.saturating_sub(192),
                                        error,
                                    });
                                    self.resume_after_failure(hdr.t1 + 128);
                                    continue;
                                }
                            }
                        }
                    }
                    // The last DATA symbol's FFT window ends `fft_backoff` samples before the frame,
                    // later if the sampling clock drifts: wait for a margin that covers 100 ppm,
                    // but at the end of the stream make do with the nominal samples.
                    let nominal = hdr.t1 + 128 + (N_SYM * (hdr.n_sym + 1)) as u64 - self.cfg.fft_backoff as u64;
                    let margin = drift_margin(hdr.n_sym);
                    if self.end() < nominal + margin && !(at_end && self.end() >= nominal) {
                        self.state = State::Data(hdr);
                        return;
                    }
                    self.process_data(&hdr);
                }
            }
        }
    }

    /// Drops samples no state can need any more.
    fn compact(&mut self) {
        // In known-format mode the first copy of a burst may lie this far before a detection.
        let lookback = self.cfg.expect.map_or(0, |kf| kf.lookback());
        let keep_from = match &self.state {
            // The detector slides from the sample before its position, and a run in progress
            // needs its first window's samples when it completes.
            State::Search => self.scan.saturating_sub(1 + self.det.run_len() as u64 + lookback),
            State::Header(_, start) => start.saturating_sub(lookback),
            State::Data(h) => h.t1.saturating_sub(64),
        };
        let drop = (keep_from.saturating_sub(self.base) as usize).min(self.buf.len());
        if drop > 0 && (drop >= 1 << 16 || drop * 2 >= self.buf.len()) {
            self.buf.drain(..drop);
            self.base += drop as u64;
        }
    }

    /// Copies `out.len()` samples starting at absolute index `from`, removing the CFO
    /// (phase referenced to absolute index `reference`).
    fn derotated(&mut self, from: u64, cfo: f64, reference: u64, out: &mut [Complex32]) {
        if self.rot_table.0 != cfo {
            self.rot_table = (
                cfo,
                std::array::from_fn(|i| c32(Complex64::from_polar(1.0, -cfo * i as f64))),
            );
        }
        // Samples not buffered (before the buffer or past its end) read as zeros.
        out.fill(Complex32::new(0.0, 0.0));
        let Some(i0) = from
            .checked_sub(self.base)
            .map(|i| i as usize)
            .filter(|&i| i < self.buf.len())
        else {
            return;
        };
        // Exact phase at each 64-sample block start, a table inside: no drift, and the inner
        // loop has no dependency chain.
        for (b, (o, s)) in out.chunks_mut(N_FFT).zip(self.buf[i0..].chunks(N_FFT)).enumerate() {
            let start = from + (b * N_FFT) as u64;
            let s0 = c32(Complex64::from_polar(1.0, -cfo * (start as f64 - reference as f64)));
            for ((o, &x), &t) in o.iter_mut().zip(s).zip(&self.rot_table.1) {
                *o = x * (s0 * t);
            }
        }
    }

    /// FFT of the 64 samples starting at absolute index `from`, CFO removed.
    fn fft_at(&mut self, from: u64, cfo: f64, reference: u64) -> [Complex32; N_FFT] {
        let mut x = [Complex32::new(0.0, 0.0); N_FFT];
        self.derotated(from, cfo, reference, &mut x);
        self.fft.process_with_scratch(&mut x, &mut self.fft_scratch);
        x
    }

    /// Resumes after a failure: as [`Receiver::resume_search`], with the detector disarmed
    /// until the plateau that led here has ended.
    fn resume_after_failure(&mut self, from: u64) {
        self.resume_search(from);
        self.det.disarm();
    }

    fn resume_search(&mut self, from: u64) {
        // The position may lie beyond the samples buffered so far; scanning waits for them.
        // (Clamping it to the buffer end would make the result depend on the chunking.)
        self.scan = from.max(self.base);
        self.det.reset();
        self.state = State::Search;
    }

    /// L-LTF timing, fine CFO and channel estimate of a preamble whose L-STF starts near
    /// absolute index `start` (the L-LTF is searched [`T1_SEARCH`] after it), starting from the
    /// coarse CFO `coarse_cfo`. `None` when the L-LTF is not credible: less than `min_corr` of the
    /// region's energy correlates with it, or no channel is left.
    fn acquire(&mut self, start: u64, coarse_cfo: f64, min_corr: f32) -> Option<Acquired> {
        let backoff = self.cfg.fft_backoff as u64;
        // Cross-correlate the coarse-derotated stream with the L-LTF symbol.
        let lo = start + T1_SEARCH.0;
        let n_pos = (T1_SEARCH.1 - T1_SEARCH.0) as usize;
        let mut region = vec![Complex32::new(0.0, 0.0); n_pos + 2 * N_FFT];
        self.derotated(lo, coarse_cfo, lo, &mut region);
        let xc: Vec<f32> = (0..n_pos + N_FFT)
            .map(|t| {
                let c: Complex32 = region[t..t + N_FFT]
                    .iter()
                    .zip(&self.ltf_time)
                    .map(|(r, l)| r * l.conj())
                    .sum();
                c.norm_sqr()
            })
            .collect();
        let metric = |t: usize| xc[t] + xc[t + N_FFT];
        let best = (0..n_pos).max_by(|&a, &b| metric(a).total_cmp(&metric(b)))?;
        // Credibility: the share of the region's energy that correlates with the L-LTF at the
        // delays a cyclic prefix can hold (from 2 before the peak to 9 after it), so multipath
        // counts in full. ≈ 1 on a clean L-LTF however many paths, ≈ SNR/(1+SNR) in noise,
        // ≈ 12 · 2/128 ≈ 0.19 on noise alone (the single strongest position alone fell below
        // 0.25 in frequency-selective fading at 30 dB).
        let energy: f32 = region[best..best + 2 * N_FFT].iter().map(|s| s.norm_sqr()).sum();
        let ltf_energy: f32 = self.ltf_time.iter().map(|s| s.norm_sqr()).sum();
        let around: f32 = (best.saturating_sub(2)..(best + 10).min(n_pos)).map(metric).sum();
        if !(around > min_corr * energy * ltf_energy) {
            return None;
        }
        // Prefer the earliest strong path (multipath): step back while the metric stays high.
        let mut t1_rel = best;
        for back in 1..=6 {
            if best >= back && metric(best - back) >= 0.5 * metric(best) {
                t1_rel = best - back;
            }
        }
        let t1 = lo + t1_rel as u64;

        // Fine CFO from the repetition of the L-LTF (GI2 + T1 against T1 + T2), lag 64. The
        // first GI2 samples are skipped: the transmit window blends them with the L-STF.
        let mut ltf = vec![Complex32::new(0.0, 0.0); 160];
        self.derotated(t1 - 32, coarse_cfo, t1, &mut ltf);
        let c: Complex64 = (GI2_SKIP..96)
            .map(|i| {
                let p = ltf[i] * ltf[i + 64].conj();
                Complex64::new(f64::from(p.re), f64::from(p.im))
            })
            .sum();
        let cfo = coarse_cfo - c.arg() / N_FFT as f64;
        let rssi = ltf.iter().map(|s| f64::from(s.norm_sqr())).sum::<f64>() / ltf.len() as f64;

        // Channel: average the two symbols, fit, and measure noise from their difference.
        let y1 = self.fft_at(t1 - backoff, cfo, t1);
        let y2 = self.fft_at(t1 + N_FFT as u64 - backoff, cfo, t1);
        let mut h_ls = [Complex32::new(0.0, 0.0); USED_SUBCARRIERS.len()];
        let mut noise = 0.0f64;
        for (h, &k) in h_ls.iter_mut().zip(&USED_SUBCARRIERS) {
            let (a, b) = (y1[bin(k)], y2[bin(k)]);
            *h = (a + b) * (0.5 * ltf_value(k));
            noise += f64::from((a - b).norm_sqr()) / 2.0;
        }
        let n_used = USED_SUBCARRIERS.len() as f64;
        // A noiseless input (a generated file) measures no noise at all; the floor 100 dB below
        // the channel keeps SNR figures independent of the sample scale and the per-subcarrier
        // SNR finite in f32 (an absolute floor of 1e-30 overflowed it on samples ×1e5, and every
        // frame then failed its FCS).
        let h_ls_power = h_ls.iter().map(|h| f64::from(h.norm_sqr())).sum::<f64>() / n_used;
        let noise_var = (noise / n_used)
            .max(h_ls_power * 1e-10)
            .max(f64::from(f32::MIN_POSITIVE));
        let mut h = [Complex32::new(0.0, 0.0); N_FFT];
        self.chest.fit(&h_ls, noise_var / 2.0, &mut h);
        let h_power = USED_SUBCARRIERS.iter().map(|&k| h[bin(k)].norm_sqr()).sum::<f32>() / n_used as f32;
        if !(h_power > 0.0) {
            return None;
        }
        Some(Acquired {
            t1,
            cfo,
            h,
            h_power,
            noise_var: noise_var as f32,
            rssi_db: (10.0 * rssi.max(1e-30).log10()) as f32,
        })
    }

    /// L-LTF timing, fine CFO, channel estimate and SIGNAL.
    fn process_header(&mut self, d: Detection, start: u64) {
        let backoff = self.cfg.fft_backoff as u64;
        let Some(Acquired {
            t1,
            cfo,
            h,
            h_power,
            noise_var,
            rssi_db,
        }) = self.acquire(start, d.cfo_rad, LTF_MIN_CORR)
        else {
            self.stats.sync_failures += 1;
            return self.resume_after_failure(start + 16);
        };

        // SIGNAL: BPSK 1/2, pilot polarity p_0.
        let sig_start = t1 + 128 + N_CP as u64 - backoff;
        let y = self.fft_at(sig_start, cfo, t1);
        let phase = pilot_phasor(&y, &h, f32::from(self.polarity[0]));
        let rot = phase.conj() / phase.norm().max(f32::MIN_POSITIVE);
        let scale = 4.0 / h_power;
        let mut llr = [0i8; 48];
        for (i, &k) in DATA_SUBCARRIERS.iter().enumerate() {
            let hk = h[bin(k)];
            let z = y[bin(k)] * rot * hk.conj();
            // LLR ∝ Re(z·H*) for BPSK (positive = bit 1 → negate for the decoder's convention).
            llr[i] = quantize_llr(-4.0 * z.re * scale);
        }
        let mut deint = [0i8; 48];
        self.interleavers[0].deinterleave(&llr, &mut deint);
        let mut bits = [0u8; 24];
        // The SIGNAL's six tail bits return the encoder to state 0.
        self.viterbi.decode(&deint, Termination::ZeroState, &mut bits);
        let offset = t1.saturating_sub(192);
        let signal = match SignalField::from_bits(&bits) {
            Ok(s) => s,
            Err(e) => {
                self.stats.header_errors += 1;
                self.events.push_back(RxEvent::HeaderError { offset, error: e });
                return self.resume_after_failure(start + 16);
            }
        };
        let n_sym = signal.rate.n_data_symbols(signal.length);
        self.state = State::Data(Box::new(Header {
            t1,
            cfo,
            h,
            h_power,
            noise_var,
            signal,
            n_sym,
            rssi_db,
            checked: false,
            semcom_probed: false,
            semcom: None,
        }));
    }

    /// Demodulates and decodes the DATA field of a frame whose samples are all buffered.
    fn process_data(&mut self, hdr: &Header) {
        match hdr.semcom.as_deref() {
            Some(crate::semcom::FrameHeader::Digital(sc)) => return self.process_semcom(hdr, sc),
            Some(crate::semcom::FrameHeader::Analog(ah)) => return self.process_analog(hdr, ah),
            None => {}
        }
        let backoff = self.cfg.fft_backoff as u64;
        let rate = hdr.signal.rate;
        let n_sym = hdr.n_sym;
        let len = hdr.signal.length;
        // Symbol 0 is SIGNAL (kept for phase tracking), 1..=n_sym are DATA.
        let first = hdr.t1 + 128 + N_CP as u64 - backoff;
        let snr_sc = hdr.h_power / hdr.noise_var;
        let mut syms = std::mem::take(&mut self.syms);
        let shifts = self.fft_data_symbols(hdr, first, snr_sc, &mut syms);
        let (corrections, sfo_ppm) = self.track_phase(&syms, &shifts, &hdr.h, snr_sc);

        let mut eq = std::mem::take(&mut self.equalized);
        let mut dd_error = self.demodulate(
            &syms,
            &corrections,
            std::slice::from_ref(&hdr.h),
            hdr.h_power,
            rate,
            &mut eq,
        );
        let (mut psdu, mut fcs_ok, mut seed) = self.decode_data(rate, len);
        if !fcs_ok && len >= 4 && n_sym >= TRACK_MIN_SYMBOLS {
            // The channel may have changed since the preamble (Doppler, long frames): estimate it
            // per symbol from the points the failed decode implies, smooth it over time, and
            // decode again. Wrong decisions only blur the estimate; the FCS judges the result.
            // References, in turn: the points the failed decode implies (best at low SNR); hard
            // decisions made symbol by symbol, each with the channel tracked from the decisions
            // before it (right at high SNR however far the channel drifted); then the points
            // the previous pass decoded.
            //
            // From the decision-directed pass on, the pilot corrections keep the common phase
            // only: a channel that changes over the frame shifts the pilots' phases apart, which
            // the sampling-clock fit misreads as drift (hundreds of ppm in fast fading), while
            // the tracked channel absorbs a real clock drift anyway.
            // (The windows' whole-sample shifts are known exactly and stay in.)
            let common_only: Vec<(f32, f32)> = corrections
                .iter()
                .zip(&shifts)
                .map(|(&(theta, _), &sh)| (theta, shift_slope(sh) as f32))
                .collect();
            let (mut p, mut sd) = (psdu.clone(), seed);
            for pass in 0..TRACK_PASSES {
                let corr = if pass == 0 { &corrections } else { &common_only };
                let reference = if pass == 1 {
                    decision_directed(&syms, corr, &hdr.h, rate.modulation(), self.polarity)
                } else {
                    let Some(r) = self.reference_points(&p, sd, rate) else {
                        break;
                    };
                    r
                };
                let tracked = track_channel(&syms, corr, &reference, self.polarity, TRACK_HALF_WINDOW);
                let mut eq2 = Vec::new();
                let dd2 = self.demodulate(&syms, corr, &tracked, hdr.h_power, rate, &mut eq2);
                let (p2, ok2, seed2) = self.decode_data(rate, len);
                if ok2 {
                    (psdu, fcs_ok, seed) = (p2, true, seed2);
                    eq = eq2;
                    dd_error = dd2;
                    self.stats.tracking_recoveries += 1;
                    break;
                }
                // Each pass's decisions are better than the last's: estimate again from them.
                (p, sd) = (p2, seed2);
            }
        }
        // EVM: against the hard decisions, except where decision errors would flatter it (low
        // SNR for the constellation) and the FCS vouches for the payload: then against the
        // points that were sent, re-encoded.
        let m = rate.modulation();
        let dd = dd_error / eq.len().max(1) as f64;
        let evm = if fcs_ok && dd > dd_evm_reliable(m) {
            let points = constellation(m);
            let reference = self.reference_points(&psdu, seed, rate);
            evm(&eq, m, reference.as_deref(), &points)
        } else {
            dd
        };

        let n_used = USED_SUBCARRIERS.len() as f32;
        let frame = RxFrame {
            offset: hdr.t1.saturating_sub(192),
            rate,
            length: len,
            fcs_ok,
            psdu,
            snr_db: 10.0 * (snr_sc * n_used / N_FFT as f32).log10(),
            evm_db: (10.0 * evm.max(1e-30).log10()) as f32,
            cfo_hz: (hdr.cfo * self.cfg.sample_rate_hz / (2.0 * std::f64::consts::PI)) as f32,
            rssi_db: hdr.rssi_db,
            sfo_ppm,
            scrambler_seed: seed,
            symbols: if self.cfg.keep_symbols { eq.clone() } else { Vec::new() },
        };
        self.stats.frames += 1;
        if !fcs_ok {
            self.stats.fcs_failures += 1;
        }
        self.events.push_back(RxEvent::Frame(frame));
        let frame_end = hdr.t1 + 128 + (N_SYM * (n_sym + 1)) as u64;
        // A good frame is consumed whole; after a bad one, look again right after its L-LTF in
        // case the SIGNAL was a false positive that hid a real frame.
        self.syms = syms;
        self.equalized = eq;
        if fcs_ok {
            self.resume_search(frame_end);
        } else {
            self.resume_after_failure(hdr.t1 + 128);
        }
    }

    /// Whether the first `k` DATA symbols carry the pilots a frame must: their residual after a
    /// per-symbol common phase is compared with the noise the L-LTF measured. A frame is refused
    /// only when the residual is both 10 times the noise and over a tenth of the pilots' power
    /// (so a clean frame with a modest implementation floor passes, and at low SNR nothing is
    /// refused). This keeps a stream of preambles (or a false SIGNAL) from costing a full
    /// 4095-octet decode each.
    fn pilots_plausible(&mut self, hdr: &Header, k: usize) -> bool {
        let first = hdr.t1 + 128 + N_CP as u64 - self.cfg.fft_backoff as u64;
        let (mut resid, mut power) = (0.0f64, 0.0f64);
        for s in 1..=k {
            let y = self.fft_at(first + (s * N_SYM) as u64, hdr.cfo, hdr.t1);
            let pol = f32::from(self.polarity[s % 127]);
            let expect = |k: i32, v: f32| hdr.h[bin(k)] * (v * pol);
            let c: Complex32 = PILOTS.iter().map(|&(k, v)| y[bin(k)] * expect(k, v).conj()).sum();
            let rot = if c.norm() > 0.0 {
                c / c.norm()
            } else {
                Complex32::new(1.0, 0.0)
            };
            for &(k, v) in &PILOTS {
                resid += f64::from((y[bin(k)] - expect(k, v) * rot).norm_sqr());
                power += f64::from(expect(k, v).norm_sqr());
            }
        }
        let noise = f64::from(hdr.noise_var) * (PILOTS.len() * k) as f64;
        !(resid > 10.0 * noise && resid > 0.1 * power)
    }

    /// FFTs of SIGNAL and the DATA symbols, the windows following the sampling-clock drift.
    ///
    /// Symbol by symbol, the pilots' phase slope updates a running estimate of the drift (the
    /// same fit as [`Receiver::track_phase`]); once the predicted drift passes half a sample,
    /// the window moves by a whole sample. Returns each symbol's window shift: a symbol's phase
    /// slope is then the drift's minus 2π·shift/64, so the slope left to measure stays within
    /// half a sample (no phase wrapping on the pilots). Without this a 4000-octet frame at
    /// 6 Mbit/s with a 30 ppm clock offset (3 samples of drift) runs out of the cyclic prefix.
    fn fft_data_symbols(
        &mut self,
        hdr: &Header,
        first: u64,
        snr_sc: f32,
        syms: &mut Vec<[Complex32; N_FFT]>,
    ) -> Vec<i64> {
        syms.clear();
        let mut shifts = Vec::with_capacity(hdr.n_sym + 1);
        let sum_k2: f64 = PILOTS.iter().map(|&(k, _)| f64::from(k * k)).sum();
        let var_a = 1.0 / (2.0 * f64::from(snr_sc.max(1e-3)) * sum_k2);
        let alpha_prior = 2.0 * std::f64::consts::PI * SFO_PRIOR / N_FFT as f64;
        let (mut num, mut den) = (0.0f64, 1.0 / (alpha_prior * alpha_prior));
        let mut shift: i64 = 0;
        // The shift stays within the margin the receiver waited for, so every window lies in
        // samples it had (or, at the end of a stream, reads the missing ones as zeros): the
        // result never depends on how much happened to be buffered.
        let max_shift = drift_margin(hdr.n_sym) as i64;
        for s in 0..=hdr.n_sym {
            let t = (112 + N_SYM * s) as f64;
            let nominal = first + (s * N_SYM) as u64;
            let start = nominal.saturating_add_signed(shift);
            let applied = shift;
            let y = self.fft_at(start, hdr.cfo, hdr.t1);
            // This symbol's pilot slope updates the drift estimate.
            let pol = f32::from(self.polarity[s % 127]);
            let q: [Complex32; 4] = std::array::from_fn(|p| {
                let (k, v) = PILOTS[p];
                y[bin(k)] * hdr.h[bin(k)].conj() * (v * pol)
            });
            let common: Complex32 = q.iter().sum();
            let a: f64 = PILOTS
                .iter()
                .zip(&q)
                .map(|(&(k, _), &v)| f64::from(k) * f64::from((v * common.conj()).arg()))
                .sum::<f64>()
                / sum_k2;
            // The drift's own slope: what the shifted window shows, plus the shift's share.
            let a = a - shift_slope(applied);
            num += a * t / var_a;
            den += t * t / var_a;
            syms.push(y);
            shifts.push(applied);
            // Drift (samples) predicted at the next symbol: the phase slope α = −2π·d/64.
            let next_t = t + N_SYM as f64;
            let drift = -(num / den) * N_FFT as f64 / (2.0 * std::f64::consts::PI) * next_t;
            if drift - shift as f64 > 0.5 && shift < max_shift {
                shift += 1;
            } else if drift - (shift as f64) < -0.5 && shift > -max_shift {
                shift -= 1;
            }
        }
        shifts
    }

    /// Equalises the DATA symbols (`syms[1..]`) with the pilot corrections and the channel —
    /// one estimate for the whole frame, or one per symbol (index = symbol, 0 = SIGNAL) — and
    /// fills `self.llrs` with deinterleaved, quantised LLRs and `eq` with the equalised points.
    /// Returns the summed squared distance of the points to their hard decisions (read off the
    /// LLR signs).
    fn demodulate(
        &mut self,
        syms: &[[Complex32; N_FFT]],
        corrections: &[(f32, f32)],
        channel: &[[Complex32; N_FFT]],
        h_power: f32,
        rate: Rate,
        eq: &mut Vec<Complex32>,
    ) -> f64 {
        let m = rate.modulation();
        let points = constellation(m);
        let nb = m.bits_per_symbol();
        let mut dd_error = 0.0f64;
        let n_sym = syms.len() - 1;
        // Soft demapping with CSI weights; the scale only matters for the i8 quantisation.
        // Per subcarrier: the zero-forcing coefficient H*/|H|² and the LLR weight ∝ |H|².
        let weight_scale = 4.0 / (h_power * k_mod(m) * k_mod(m));
        let mut eq_c = [Complex32::new(0.0, 0.0); crate::ofdm::N_DATA];
        let mut eq_w = [0f32; crate::ofdm::N_DATA];
        let il = &self.interleavers[modulation_index(m)];
        let n_cbps = rate.n_cbps();
        self.llrs.clear();
        self.llrs.resize(n_sym * n_cbps, 0);
        let mut sym_llr = [0i8; 288];
        eq.clear();
        for s in 1..=n_sym {
            if s == 1 || channel.len() > 1 {
                let h = &channel[s.min(channel.len() - 1)];
                for (i, &k) in DATA_SUBCARRIERS.iter().enumerate() {
                    let hk = h[bin(k)];
                    let hp = hk.norm_sqr().max(f32::MIN_POSITIVE);
                    eq_c[i] = hk.conj() / hp;
                    eq_w[i] = weight_scale * hp;
                }
            }
            // e^{−j(θ + slope·k)} stepped across subcarriers −26 … 26.
            let (theta, slope) = corrections[s];
            let step = Complex32::from_polar(1.0, -slope);
            let mut rot = Complex32::from_polar(1.0, -(theta - 26.0 * slope));
            let mut k = -26;
            let mut zs = [Complex32::new(0.0, 0.0); crate::ofdm::N_DATA];
            for (i, &dk) in DATA_SUBCARRIERS.iter().enumerate() {
                while k < dk {
                    rot *= step;
                    k += 1;
                }
                zs[i] = syms[s][bin(dk)] * rot * eq_c[i];
            }
            eq.extend_from_slice(&zs);
            demap_quantized(m, &zs, &eq_w, &mut sym_llr[..n_cbps]);
            for (z, l) in zs.iter().zip(sym_llr[..n_cbps].chunks_exact(nb)) {
                let label = l.iter().fold(0usize, |acc, &v| (acc << 1) | usize::from(v < 0));
                dd_error += f64::from((z - points[label]).norm_sqr());
            }
            il.deinterleave(&sym_llr[..n_cbps], &mut self.llrs[(s - 1) * n_cbps..s * n_cbps]);
        }
        dd_error
    }

    /// Decodes `self.llrs` into the PSDU: returns it, whether its FCS holds, and the
    /// transmitter's scrambler seed.
    fn decode_data(&mut self, rate: Rate, len: usize) -> (Vec<u8>, bool, u8) {
        self.depunctured.clear();
        let n_bits = convcode::depuncture(&self.llrs, rate.code_rate(), &mut self.depunctured);
        self.bits.clear();
        self.bits.resize(n_bits, 0);
        // The encoder is in state 0 right after the tail (the transmitter zeroes the tail bits
        // after scrambling); the pad bits after it carry nothing, so decode up to there.
        let tail_end = (16 + 8 * len + 6).min(n_bits);
        self.viterbi.decode(
            &self.depunctured[..2 * tail_end],
            Termination::ZeroState,
            &mut self.bits[..tail_end],
        );
        let (mut psdu, mut state) = descramble_psdu(&mut self.bits[..tail_end], len);
        let mut fcs_ok = crc::fcs_ok(&psdu);
        if !fcs_ok && len >= 4 {
            // A transmitter that leaves its tail bits scrambled ends in no known state: try
            // the best end state over every bit before giving up.
            self.viterbi
                .decode(&self.depunctured[..2 * n_bits], Termination::BestState, &mut self.bits);
            let (p, s) = descramble_psdu(&mut self.bits, len);
            if crc::fcs_ok(&p) {
                (psdu, state, fcs_ok) = (p, s, true);
            }
        }
        // The seed the transmitter used: run the recovered state back seven steps.
        (psdu, fcs_ok, rewind7(state.state()))
    }

    /// The data-subcarrier points a transmitter sends for `psdu` with scrambler `seed` (48 per
    /// DATA symbol, subcarrier order); `None` for an invalid seed or length.
    fn reference_points(&mut self, psdu: &[u8], seed: u8, rate: Rate) -> Option<Vec<Complex32>> {
        self.encoder
            .data_points_for(
                psdu,
                &crate::tx::TxParams {
                    rate,
                    scrambler_seed: seed,
                },
            )
            .ok()
    }
}

impl Receiver {
    /// Per-symbol corrections from the pilots: the common phase θ_s and the phase slope across
    /// subcarriers (radians per subcarrier index) caused by sampling-clock drift, plus that
    /// drift in ppm. Symbol 0 is SIGNAL.
    ///
    /// The slope is modelled as α·t_s (t_s: samples since the L-LTF) and α is fitted over the
    /// whole frame with a Gaussian prior (σ = [`SFO_PRIOR`]), so short frames are not tilted by
    /// noise. The common phase is detrended by the mean phase step and averaged over
    /// ±`phase_smoothing` symbols as phasors, which needs no unwrapping.
    fn track_phase(
        &self,
        syms: &[[Complex32; N_FFT]],
        shifts: &[i64],
        h: &[Complex32; N_FFT],
        snr_sc: f32,
    ) -> (Vec<(f32, f32)>, f32) {
        // Symbol s's window is shifts[s] samples late, so it sees that much less delay: its phase
        // slope is the drift's α·t plus 2π·shift/64. `slope_at` is the slope the symbol shows.
        let slope_at = |s: usize, alpha: f64, t: f64| alpha * t + shift_slope(shifts[s]);
        let n = syms.len();
        let t = |s: usize| (112 + N_SYM * s) as f64;
        debug_assert_eq!(PILOTS.map(|p| p.0), [-21, -7, 7, 21]);
        let q: Vec<[Complex32; 4]> = syms
            .iter()
            .enumerate()
            .map(|(s, y)| {
                let pol = f32::from(self.polarity[s % 127]);
                std::array::from_fn(|p| {
                    let (k, v) = PILOTS[p];
                    y[bin(k)] * h[bin(k)].conj() * (v * pol)
                })
            })
            .collect();
        // Sampling-clock drift.
        let sum_k2: f64 = PILOTS.iter().map(|&(k, _)| f64::from(k * k)).sum();
        let var_a = 1.0 / (2.0 * f64::from(snr_sc.max(1e-3)) * sum_k2);
        let alpha_prior = 2.0 * std::f64::consts::PI * SFO_PRIOR / N_FFT as f64;
        let (mut num, mut den) = (0.0f64, 1.0 / (alpha_prior * alpha_prior));
        for (s, qs) in q.iter().enumerate() {
            let common: Complex32 = qs.iter().sum();
            let a: f64 = PILOTS
                .iter()
                .zip(qs)
                .map(|(&(k, _), &v)| f64::from(k) * f64::from((v * common.conj()).arg()))
                .sum::<f64>()
                / sum_k2;
            let a = a - shift_slope(shifts[s]);
            num += a * t(s) / var_a;
            den += t(s) * t(s) / var_a;
        }
        let mut alpha = num / den;
        // The drift model says the pilots' phases, relative to their common phase, move in
        // proportion to k. A channel that changes over the frame moves them any which way; when
        // the fit leaves far more residual than the pilots' noise explains, there is no
        // evidence of drift, only of a changing channel: then assume none.
        let mean_gain = q
            .iter()
            .flat_map(|qs| qs.iter().map(|v| f64::from(v.norm())))
            .sum::<f64>()
            / (4 * n).max(1) as f64;
        let (mut chi2, mut dof) = (0.0f64, 0usize);
        for (s, qs) in q.iter().enumerate() {
            let common: Complex32 = qs.iter().sum();
            for (&(k, _), &v) in PILOTS.iter().zip(qs) {
                // Phase noise variance of this pilot: 1 / (2 · its SNR), its SNR ∝ |H_p|² ∝ |q|.
                let var = mean_gain / (2.0 * f64::from(snr_sc.max(1e-3)) * f64::from(v.norm()).max(1e-12));
                let r = f64::from((v * common.conj()).arg()) - slope_at(s, alpha, t(s)) * f64::from(k);
                chi2 += r * r / var;
            }
            dof += 3;
        }
        if dof > 12 && chi2 > DRIFT_MISFIT * dof as f64 {
            alpha = 0.0;
        }
        let sfo_ppm = (-alpha * N_FFT as f64 / (2.0 * std::f64::consts::PI) * 1e6) as f32;
        // Common phase.
        let common: Vec<Complex64> = q
            .iter()
            .enumerate()
            .map(|(s, qs)| {
                // Slope removal e^{−jα·t·k} for the pilots at k = −21, −7, 7, 21.
                let u = Complex64::from_polar(1.0, -7.0 * slope_at(s, alpha, t(s)));
                let u3 = u * u * u;
                let c = |v: Complex32| Complex64::new(f64::from(v.re), f64::from(v.im));
                c(qs[0]) * u3.conj() + c(qs[1]) * u.conj() + c(qs[2]) * u + c(qs[3]) * u3
            })
            .collect();
        let step: Complex64 = common.windows(2).map(|w| w[1] * w[0].conj()).sum();
        let omega = if step.norm() > 0.0 { step.arg() } else { 0.0 };
        let detrended: Vec<Complex64> = common
            .iter()
            .enumerate()
            .map(|(s, c)| c * Complex64::from_polar(1.0, -omega * s as f64))
            .collect();
        let m = self.cfg.phase_smoothing;
        let out = (0..n)
            .map(|s| {
                let lo = s.saturating_sub(m);
                let hi = (s + m + 1).min(n);
                let sm: Complex64 = detrended[lo..hi].iter().sum();
                let theta = sm.arg() + omega * s as f64;
                (theta as f32, slope_at(s, alpha, t(s)) as f32)
            })
            .collect();
        (out, sfo_ppm)
    }
}

/// Largest decision-directed EVM (mean squared error, unit-energy constellation) at which hard
/// decisions are wrong rarely enough (symbol errors below ~1e-3) not to flatter it.
fn dd_evm_reliable(m: Modulation) -> f64 {
    match m {
        Modulation::Bpsk => 0.2,
        Modulation::Qpsk => 0.1,
        Modulation::Qam16 => 0.02,
        Modulation::Qam64 => 0.005,
        Modulation::Qam256 => 0.0012,
        Modulation::Qam1024 => 0.0003,
    }
}

/// Mean squared error of the equalised points against what was sent (unit-energy
/// constellation): against `reference` when given, else against each point's nearest
/// constellation point, which under-reads at low SNR.
fn evm(eq: &[Complex32], m: Modulation, reference: Option<&[Complex32]>, points: &[Complex32]) -> f64 {
    let err: f64 = match reference {
        Some(r) => eq.iter().zip(r).map(|(z, x)| f64::from((z - x).norm_sqr())).sum(),
        None => eq
            .iter()
            .map(|&z| f64::from((z - points[hard_label(m, z)]).norm_sqr()))
            .sum(),
    };
    err / eq.len().max(1) as f64
}

/// Hard decisions on every DATA subcarrier, made symbol by symbol: each symbol is equalised with
/// a channel estimate updated from the previous symbols' decisions and pilots, starting from the
/// preamble's estimate. The estimate is a least-squares fit with exponential forgetting (weight
/// [`DD_STEP`] on the newest symbol): Σ Y·x* / Σ |x|², so inner points of dense constellations,
/// whose Y/x is noisy, weigh less.
fn decision_directed(
    syms: &[[Complex32; N_FFT]],
    corrections: &[(f32, f32)],
    h0: &[Complex32; N_FFT],
    m: Modulation,
    polarity: [i8; 127],
) -> Vec<Complex32> {
    let points = constellation(m);
    let mut h = *h0;
    // Running Σ Y·x* and Σ |x|², started as one symbol's worth of the preamble estimate.
    let mut num = *h0;
    let mut den = [1.0f32; N_FFT];
    let mut out = Vec::with_capacity((syms.len() - 1) * crate::ofdm::N_DATA);
    let update = |b: usize, y: Complex32, x: Complex32, num: &mut [Complex32; N_FFT], den: &mut [f32; N_FFT]| {
        num[b] = num[b] * (1.0 - DD_STEP) + y * x.conj() * DD_STEP;
        den[b] = den[b] * (1.0 - DD_STEP) + x.norm_sqr() * DD_STEP;
    };
    for s in 1..syms.len() {
        let (theta, slope) = corrections[s];
        let rot = |k: i32| Complex32::from_polar(1.0, -(theta + slope * k as f32));
        for &k in &DATA_SUBCARRIERS {
            let b = bin(k);
            let y = syms[s][b] * rot(k);
            let hp = h[b].norm_sqr();
            let x = if hp > 0.0 {
                points[hard_label(m, y * h[b].conj() / hp)]
            } else {
                points[0]
            };
            out.push(x);
            update(b, y, x, &mut num, &mut den);
        }
        let pol = f32::from(polarity[s % 127]);
        for &(k, v) in &PILOTS {
            update(
                bin(k),
                syms[s][bin(k)] * rot(k),
                Complex32::new(v * pol, 0.0),
                &mut num,
                &mut den,
            );
        }
        for &k in &USED_SUBCARRIERS {
            let b = bin(k);
            h[b] = num[b] / den[b];
        }
    }
    out
}

/// Weight of the newest symbol in the decision-directed channel update.
const DD_STEP: f32 = 0.3;

/// Per-symbol channel estimates from known (or decided) points: for each symbol s and
/// subcarrier k, the least-squares fit Σ Y·X* / Σ |X|² over symbols s ± `half_window`, where Y is
/// the received bin after the pilot phase correction and X the data point (or pilot) sent.
/// Index 0 (SIGNAL) copies symbol 1's estimate.
fn track_channel(
    syms: &[[Complex32; N_FFT]],
    corrections: &[(f32, f32)],
    reference: &[Complex32],
    polarity: [i8; 127],
    half_window: usize,
) -> Vec<[Complex32; N_FFT]> {
    let n = syms.len();
    // Per symbol: Y·X* and |X|² on each bin (data and pilots).
    let mut num = vec![[Complex32::new(0.0, 0.0); N_FFT]; n];
    let mut den = vec![[0f32; N_FFT]; n];
    for s in 1..n {
        let (theta, slope) = corrections[s];
        let rot = |k: i32| Complex32::from_polar(1.0, -(theta + slope * k as f32));
        let pts = &reference[(s - 1) * crate::ofdm::N_DATA..s * crate::ofdm::N_DATA];
        for (&k, &x) in DATA_SUBCARRIERS.iter().zip(pts) {
            num[s][bin(k)] = syms[s][bin(k)] * rot(k) * x.conj();
            den[s][bin(k)] = x.norm_sqr();
        }
        let pol = f32::from(polarity[s % 127]);
        for &(k, v) in &PILOTS {
            num[s][bin(k)] = syms[s][bin(k)] * rot(k) * (v * pol);
            den[s][bin(k)] = 1.0;
        }
    }
    let mut out = vec![[Complex32::new(0.0, 0.0); N_FFT]; n];
    for (s, est) in out.iter_mut().enumerate().skip(1) {
        let (lo, hi) = (s.saturating_sub(half_window).max(1), (s + half_window + 1).min(n));
        for &k in &USED_SUBCARRIERS {
            let b = bin(k);
            let nu: Complex32 = num[lo..hi].iter().map(|x| x[b]).sum();
            let de: f32 = den[lo..hi].iter().map(|x| x[b]).sum();
            est[b] = if de > 0.0 { nu / de } else { Complex32::new(0.0, 0.0) };
        }
    }
    if n > 1 {
        out[0] = out[1];
    }
    out
}

/// Samples of clock drift a frame of `n_sym` DATA symbols may accumulate: 100 ppm of its length,
/// plus one. The receiver waits for this many samples past a frame and moves its FFT window no
/// further.
fn drift_margin(n_sym: usize) -> u64 {
    (N_SYM * (n_sym + 1)) as u64 / 10_000 + 1
}

/// Phase slope across subcarriers (radians per subcarrier index) of a window `shift` samples
/// late: it sees `shift` samples less delay, e^{+j2πk·shift/64}.
fn shift_slope(shift: i64) -> f64 {
    2.0 * std::f64::consts::PI * shift as f64 / N_FFT as f64
}

/// Channel-weighted pilot correlation of one symbol: Σ Y_p · H_p* · expected_p.
fn pilot_phasor(y: &[Complex32; N_FFT], h: &[Complex32; N_FFT], polarity: f32) -> Complex32 {
    PILOTS
        .iter()
        .map(|&(k, v)| y[bin(k)] * h[bin(k)].conj() * (v * polarity))
        .sum()
}

#[inline]
fn c32(c: Complex64) -> Complex32 {
    Complex32::new(c.re as f32, c.im as f32)
}

/// Descrambles decoded DATA bits in place and extracts the PSDU of `len` octets. The first
/// seven SERVICE bits are zeros before scrambling, so after it they are the scrambler's own
/// output, which gives its state. Returns the PSDU and that state.
fn descramble_psdu(bits: &mut [u8], len: usize) -> (Vec<u8>, Scrambler) {
    let first7: [u8; 7] = std::array::from_fn(|i| bits[i]);
    let state = Scrambler::from_first_outputs(&first7);
    let mut s = state;
    s.apply(&mut bits[7..]);
    let psdu = (0..len)
        .map(|i| (0..8).fold(0u8, |acc, j| acc | ((bits[16 + 8 * i + j] & 1) << j)))
        .collect();
    (psdu, state)
}

/// Runs the scrambler backwards seven steps: the state before it produced the seven bits
/// that are now its register.
fn rewind7(state: u8) -> u8 {
    // Forward step: b = x7 ⊕ x4; s' = (s << 1 | b). Backwards: x7 = b ⊕ x4 where b is the
    // newest bit (bit 0) and x4 of the old state is bit 4 of the new one.
    let mut s = state;
    for _ in 0..7 {
        let b = s & 1;
        let x4_old = (s >> 4) & 1;
        let x7_old = b ^ x4_old;
        s = (s >> 1) | (x7_old << 6);
    }
    s
}
