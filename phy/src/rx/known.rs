//! Known-format reception: the application listens for legacy frames of one rate and PSDU
//! length, sent `repeats` times in a row with a fixed gap (see [`KnownFormat`] and
//! [`crate::Transmitter::transmit_repeated`]).
//!
//! Knowing the format lets the receiver do without the two steps that fail first at low SNR on
//! short frames:
//!
//! - **SIGNAL** is not decoded: its content is known, so a SIGNAL field hit by noise costs
//!   nothing. The DATA field is decoded with the known rate and length.
//! - **Detection** runs with a lower L-STF threshold ([`KnownFormat::detect_threshold`]), and
//!   one detected copy is enough: the others lie at known spacings before or after it.
//!
//! The copies are then combined before the Viterbi decoder (maximum-ratio): each copy is
//! synchronised on its own L-LTF (timing, fine CFO, channel, noise), demodulated, and its LLRs
//! are weighted by its estimated SNR |H|²/σ² and summed. A copy that is not there (noise only)
//! gets a small weight from its small channel estimate. The receiver does not know which copy it
//! detected, so it tries each placement of the burst around the detection, the most energetic
//! first, and keeps the first whose FCS holds. Nothing else validates the frame, so the FCS
//! decides: a frame is reported only when its CRC-32 holds (false accepts ≈ 2⁻³² per decode).

use super::{Acquired, Detection, Header, Receiver, RxEvent, RxFrame, T1_SEARCH};
use crate::mapping::quantize_llr;
use crate::ofdm::{N_CP, N_FFT, N_SYM, USED_SUBCARRIERS};
use crate::rate::Rate;
use crate::signal::SignalField;
use crate::tx::Transmitter;
use crate::PhyError;
use num_complex::Complex32;

/// Copies per burst at most.
pub const MAX_REPEATS: usize = 8;
/// SIFS of 802.11a, 16 µs at 20 MS/s: the default gap between copies.
pub const SIFS_SAMPLES: usize = 320;
/// Default L-STF detection threshold in known-format mode (|ρ|, against 0.45 otherwise). On the
/// L-STF ρ ≈ SNR / (1 + SNR), 0.28 at −4 dB; on noise ρ ≈ 1/8.
pub const KNOWN_DETECT_THRESHOLD: f32 = 0.2;
/// Samples after a failed detection's start where the search resumes (see
/// [`Receiver::process_known`]); below the 78 that the L-LTF search window covers.
const RETRY_AFTER: u64 = 64;
/// Mean |LLR| the combined LLRs are scaled to before quantisation (the Viterbi decoder does not
/// care about the scale; this keeps resolution and stays clear of the i8 limits).
const COMBINED_MEAN_LLR: f32 = 16.0;

/// The one frame format a receiver listens for (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KnownFormat {
    /// Rate of the DATA field.
    pub rate: Rate,
    /// PSDU length in octets, FCS included (4 … 4095).
    pub length: usize,
    /// Copies the transmitter sends of each frame (1 … [`MAX_REPEATS`]).
    pub repeats: usize,
    /// Samples of silence between copies.
    pub gap: usize,
    /// L-STF detection threshold used in this mode (the lower of it and
    /// [`super::RxConfig::detect_threshold`]).
    pub detect_threshold: f32,
}

impl KnownFormat {
    /// `repeats` copies of a `length`-octet PSDU at `rate`, SIFS apart, detected with
    /// [`KNOWN_DETECT_THRESHOLD`].
    pub fn new(rate: Rate, length: usize, repeats: usize) -> Result<Self, PhyError> {
        SignalField::new(rate, length)?;
        if length < 4 {
            return Err(PhyError::KnownFormat {
                reason: format!("a known-format PSDU needs its 4-octet FCS, got {length} octet(s)"),
            });
        }
        if !(1..=MAX_REPEATS).contains(&repeats) {
            return Err(PhyError::KnownFormat {
                reason: format!("repeats must be 1 … {MAX_REPEATS}, got {repeats}"),
            });
        }
        Ok(Self {
            rate,
            length,
            repeats,
            gap: SIFS_SAMPLES,
            detect_threshold: KNOWN_DETECT_THRESHOLD,
        })
    }

    /// Samples from one copy's first sample to the next's.
    pub fn spacing(&self) -> u64 {
        (Transmitter::packet_len(self.rate, self.length) + self.gap) as u64
    }

    /// Samples a whole burst occupies on the air (copies and the gaps between them).
    pub fn burst_len(&self) -> usize {
        self.repeats * Transmitter::packet_len(self.rate, self.length) + (self.repeats - 1) * self.gap
    }

    /// `repeats`, clamped to what the receiver handles (the fields are public).
    pub(super) fn copies(&self) -> usize {
        self.repeats.clamp(1, MAX_REPEATS)
    }

    /// Samples the receiver keeps before a detection: the earliest copy may lie this far back.
    pub(super) fn lookback(&self) -> u64 {
        (self.copies() as u64 - 1) * self.spacing()
    }

    /// Samples needed after a detection before the burst can be processed.
    pub(super) fn span(&self) -> u64 {
        let n_sym = self.rate.n_data_symbols(self.length);
        self.lookback() + T1_SEARCH.1 + 128 + (N_SYM * (n_sym + 1)) as u64 + 16
    }
}

/// Smallest normalised correlation with the decoded frame's points for a slot to count as one
/// of its copies.
const MEMBER_CORRELATION: f32 = 0.2;

/// Re⟨z, x⟩ / (‖z‖·‖x‖); 0 when either is empty or zero.
fn correlation(z: &[Complex32], x: &[Complex32]) -> f32 {
    let dot: f32 = z.iter().zip(x).map(|(a, b)| (a * b.conj()).re).sum();
    let nz: f32 = z.iter().map(|a| a.norm_sqr()).sum();
    let nx: f32 = x.iter().map(|b| b.norm_sqr()).sum();
    if nz > 0.0 && nx > 0.0 && z.len() == x.len() {
        dot / (nz * nx).sqrt()
    } else {
        0.0
    }
}

/// One candidate copy: synchronised and demodulated.
struct CopyRx {
    acq: Acquired,
    /// Estimated SNR per subcarrier, |H|²/σ² (the maximum-ratio weight).
    weight: f32,
    llrs: Vec<i8>,
    eq: Vec<Complex32>,
    dd_error: f64,
    sfo_ppm: f32,
}

impl Receiver {
    /// Decodes the burst around a detection at `start` in known-format mode (all its samples
    /// are buffered, or the stream has ended).
    pub(super) fn process_known(&mut self, kf: KnownFormat, d: Detection, start: u64) {
        let Ok(signal) = SignalField::new(kf.rate, kf.length) else {
            self.stats.sync_failures += 1;
            return self.resume_after_failure(start + 16);
        };
        let k = kf.copies();
        let spacing = kf.spacing();
        // Candidate copy positions start + m·spacing, m = −(k−1) … k−1; slot i is m = i − (k−1).
        let copies: Vec<Option<CopyRx>> = (0..2 * k - 1)
            .map(|i| {
                let back = (k - 1 - i.min(k - 1)) as u64 * spacing;
                let fwd = i.saturating_sub(k - 1) as u64 * spacing;
                let at = (start + fwd).checked_sub(back)?;
                self.known_copy(at, d.cfo_rad, signal)
            })
            .collect();
        // Placement j: the detected copy is copy j, so slots k−1−j … 2k−2−j. Most energy first.
        let weight = |i: usize| copies[i].as_ref().map_or(0.0, |c| c.weight);
        let mut placements: Vec<(usize, f32)> = (0..k)
            .map(|j| (j, (k - 1 - j..2 * k - 1 - j).map(weight).sum::<f32>()))
            .collect();
        placements.sort_by(|a, b| b.1.total_cmp(&a.1));
        let n_llr = copies.iter().flatten().map(|c| c.llrs.len()).next().unwrap_or(0);
        for (j, total) in placements {
            if !(total > 0.0) || n_llr == 0 {
                continue;
            }
            let slots = k - 1 - j..2 * k - 1 - j;
            let mut acc = vec![0f32; n_llr];
            for c in slots.clone().filter_map(|i| copies[i].as_ref()) {
                for (a, &l) in acc.iter_mut().zip(&c.llrs) {
                    *a += c.weight * f32::from(l);
                }
            }
            let mean = acc.iter().map(|v| v.abs()).sum::<f32>() / n_llr as f32;
            let scale = if mean > 0.0 { COMBINED_MEAN_LLR / mean } else { 0.0 };
            self.llrs.clear();
            self.llrs.extend(acc.iter().map(|&v| quantize_llr(v * scale)));
            let (psdu, fcs_ok, seed) = self.decode_data(kf.rate, kf.length);
            if !fcs_ok {
                continue;
            }
            // The copies of this frame: the slots whose points correlate with what it sends
            // (≈ 0.5 or more for a copy at −6 dB, ≈ 0 ± 0.05 for noise or another frame). The
            // burst ends after the last of them, whichever placement decoded it.
            let reference = self.reference_points(&psdu, seed, kf.rate).unwrap_or_default();
            let mut members: Vec<&CopyRx> = copies
                .iter()
                .flatten()
                .filter(|c| correlation(&c.eq, &reference) > MEMBER_CORRELATION)
                .collect();
            if members.is_empty() {
                // (Not seen: even at −6 dB a copy correlates ≈ 0.5.) The placement's copies.
                members = slots.clone().filter_map(|i| copies[i].as_ref()).collect();
            }
            let Some(best) = members.iter().max_by(|a, b| a.weight.total_cmp(&b.weight)) else {
                continue;
            };
            let first_t1 = members.iter().map(|c| c.acq.t1).min().unwrap_or(best.acq.t1);
            let last_t1 = members.iter().map(|c| c.acq.t1).max().unwrap_or(best.acq.t1);
            let n_used = USED_SUBCARRIERS.len() as f32;
            let frame = RxFrame {
                offset: first_t1.saturating_sub(192),
                rate: kf.rate,
                length: kf.length,
                fcs_ok: true,
                psdu,
                snr_db: 10.0 * (best.weight * n_used / N_FFT as f32).log10(),
                evm_db: (10.0 * (best.dd_error / best.eq.len().max(1) as f64).max(1e-30).log10()) as f32,
                cfo_hz: (best.acq.cfo * self.cfg.sample_rate_hz / (2.0 * std::f64::consts::PI)) as f32,
                rssi_db: best.acq.rssi_db,
                sfo_ppm: best.sfo_ppm,
                scrambler_seed: seed,
                symbols: if self.cfg.keep_symbols {
                    best.eq.clone()
                } else {
                    Vec::new()
                },
            };
            self.stats.frames += 1;
            self.events.push_back(RxEvent::Frame(frame));
            let n_sym = kf.rate.n_data_symbols(kf.length);
            let end = last_t1 + 128 + (N_SYM * (n_sym + 1)) as u64;
            // A later detection (noise just after the burst) may place slots on these copies
            // again: they are consumed. The search goes on after the burst, and never backwards.
            self.known_consumed = end;
            return self.resume_search(end.max(start + 16));
        }
        // No placement gave a frame: a false detection, or a burst too weak. Every L-STF
        // starting up to 78 samples after `start` had its L-LTF searched (from 100 + 92 on), so
        // the search goes on from `start` + 64, armed: with the lowered threshold, noise just
        // before a preamble often starts a run, and a disarmed detector would then sleep
        // through the whole L-STF plateau that follows.
        self.stats.sync_failures += 1;
        self.resume_search(start + RETRY_AFTER);
    }

    /// Synchronises on the L-LTF of a copy whose L-STF starts near `at` and demodulates its
    /// DATA field with the known rate and length; `None` when there is no channel there at all.
    fn known_copy(&mut self, at: u64, coarse_cfo: f64, signal: SignalField) -> Option<CopyRx> {
        // No credibility test: a copy that is not there is weighted down by its SNR instead.
        let acq = self.acquire(at, coarse_cfo, 0.0)?;
        if acq.t1 < self.known_consumed {
            return None;
        }
        let n_sym = signal.rate.n_data_symbols(signal.length);
        let hdr = Header {
            t1: acq.t1,
            cfo: acq.cfo,
            h: acq.h,
            h_power: acq.h_power,
            noise_var: acq.noise_var,
            signal,
            n_sym,
            rssi_db: acq.rssi_db,
            checked: true,
            semcom_probed: true,
            semcom: None,
        };
        let first = hdr.t1 + 128 + N_CP as u64 - self.cfg.fft_backoff as u64;
        let weight = hdr.h_power / hdr.noise_var;
        let mut syms = std::mem::take(&mut self.syms);
        let shifts = self.fft_data_symbols(&hdr, first, weight, &mut syms);
        let (corrections, sfo_ppm) = self.track_phase(&syms, &shifts, &hdr.h, weight);
        let mut eq = Vec::new();
        let dd_error = self.demodulate(
            &syms,
            &corrections,
            std::slice::from_ref(&hdr.h),
            hdr.h_power,
            signal.rate,
            &mut eq,
        );
        self.syms = syms;
        Some(CopyRx {
            acq,
            weight,
            llrs: self.llrs.clone(),
            eq,
            dd_error,
            sfo_ppm,
        })
    }
}
