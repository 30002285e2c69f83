//! Receiving the semcom profile (see [`crate::semcom`]): after an L-SIG at 6 Mbit/s, the next
//! symbols are probed for the QBPSK header; when it is there and its CRC holds, the frame is
//! decoded segment by segment with the LDPC decoder instead of as 802.11a DATA.
//!
//! Synchronisation, the channel estimate, the sampling-clock drift and the pilot phase tracking
//! are the 802.11a receiver's (the pilots are the same); only the header and the segments'
//! demapping and decoding differ. LLRs are in natural units (×[`crate::ldpc::LLR_SCALE`]):
//! for an equalised point, weight |H|²/σ², σ² the noise per FFT bin measured on the L-LTF.

use super::{bin, pilot_phasor, Header, Receiver, RxEvent};
use crate::ldpc::{LayeredDecoder, MinSumConfig, LLR_SCALE};
use crate::mapping::{constellation, demap_quantized};
use crate::ofdm::PILOTS;
use crate::ofdm::{DATA_SUBCARRIERS, N_CP, N_DATA, N_FFT, N_SYM, USED_SUBCARRIERS};
use crate::scrambler::Scrambler;
use crate::semcom::{AnalogHeader, FrameHeader, HeaderError, SegmentInfo, SemcomHeader};
use crate::viterbi::Termination;
use num_complex::Complex32;

/// Header symbols probed at most (the longest header, four segments).
pub(super) const PROBE_SYMBOLS: usize = SemcomHeader::header_symbols(crate::semcom::MAX_SEGMENTS);

/// One decoded segment.
#[derive(Clone, Debug, PartialEq)]
pub struct RxSegment {
    /// What the header announced: MCS, importance class, length.
    pub info: SegmentInfo,
    /// The decoded octets (`info.length` of them; FCS included by convention).
    pub payload: Vec<u8>,
    /// The last four octets are the CRC-32 of the others and every codeword decoded to a
    /// codeword: the segment arrived intact.
    pub fcs_ok: bool,
    /// LDPC codewords in the segment.
    pub codewords: u32,
    /// Codewords whose decisions violate some parity check.
    pub failed_codewords: u32,
    /// LDPC iterations summed over the codewords.
    pub iterations: u32,
}

/// A semcom-profile frame whose header decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct SemcomRxFrame {
    /// Absolute index of the frame's first L-STF sample.
    pub offset: u64,
    /// The header.
    pub header: SemcomHeader,
    /// The segments, in header order.
    pub segments: Vec<RxSegment>,
    /// Estimated SNR in dB, per-sample definition, from the L-LTF.
    pub snr_db: f32,
    /// Decision-directed error vector magnitude of the segments' symbols, dB.
    pub evm_db: f32,
    /// Carrier frequency offset, Hz.
    pub cfo_hz: f32,
    /// Mean received power over the L-LTF, dB.
    pub rssi_db: f32,
    /// Sampling-clock offset from the pilots, ppm.
    pub sfo_ppm: f32,
    /// Equalised data-subcarrier points of the segments (48 per symbol) when
    /// [`super::RxConfig::keep_symbols`] is set.
    pub symbols: Vec<Complex32>,
}

/// An analog semcom frame (see [`crate::semcom`]) whose header decoded: the equalised symbols
/// and what the receiver knows of their noise.
///
/// The per-subcarrier SNR is |H_k|² / σ², H the preamble's channel estimate and σ² the noise
/// per FFT bin, pooled from the L-LTF (52 bins) and the pilots' residual over the frame (4 per
/// symbol, after the phase tracking): the pilots see the channel estimate's own error and the
/// tracking's, as the data subcarriers do. σ² / |H_k|² is then the expected error variance of
/// an equalised symbol of unit power on subcarrier k.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalogRxFrame {
    /// Absolute index of the frame's first L-STF sample.
    pub offset: u64,
    /// The header.
    pub header: AnalogHeader,
    /// The equalised (zero-forced, pilot phase corrected) symbols, `header.symbols` of them in
    /// transmit order.
    pub symbols: Vec<Complex32>,
    /// Per symbol, the estimated SNR of its subcarrier, dB (aligned with `symbols`).
    pub symbol_snr_db: Vec<f32>,
    /// The estimated SNR of each data subcarrier (−26 … 26 without the pilots and DC), dB.
    pub subcarrier_snr_db: [f32; N_DATA],
    /// Estimated SNR in dB, per-sample definition, from the L-LTF (as for the other frames).
    pub snr_db: f32,
    /// Expected error vector magnitude of the symbols, dB: the mean of σ² / |H_k|² over the
    /// symbols (unit-power symbols).
    pub evm_db: f32,
    /// Carrier frequency offset, Hz.
    pub cfo_hz: f32,
    /// Mean received power over the L-LTF, dB.
    pub rssi_db: f32,
    /// Sampling-clock offset from the pilots, ppm.
    pub sfo_ppm: f32,
}

impl Receiver {
    /// Probes the `k` symbols after L-SIG for a semcom header. `Ok(None)`: the first two carry
    /// their energy on the real axis, so this is 802.11a DATA.
    pub(super) fn semcom_header(&mut self, hdr: &Header, k: usize) -> Result<Option<FrameHeader>, HeaderError> {
        let first = hdr.t1 + 128 + N_CP as u64 - self.cfg.fft_backoff as u64;
        let scale = 4.0 / hdr.h_power;
        let mut deint = vec![0i8; 2 * N_DATA * k];
        let (mut e_re, mut e_im) = (0.0f32, 0.0f32);
        for s in 1..=k {
            let y = self.fft_at(first + (s * N_SYM) as u64, hdr.cfo, hdr.t1);
            let phase = pilot_phasor(&y, &hdr.h, f32::from(self.polarity[s % 127]));
            let rot = phase.conj() / phase.norm().max(f32::MIN_POSITIVE);
            let mut llr = [0i8; N_DATA];
            for (i, &sc) in DATA_SUBCARRIERS.iter().enumerate() {
                let z = y[bin(sc)] * rot * hdr.h[bin(sc)].conj();
                if s <= 2 {
                    // Normalised by |H|² first: the raw fourth power underflows f32 on quiet
                    // input (samples ×1e-15), and every frame then looked like BPSK.
                    let (re, im) = (z.re * scale, z.im * scale);
                    e_re += re * re;
                    e_im += im * im;
                }
                // Bit 1 → +j, as BPSK's bit 1 → +1; positive LLR = bit 0.
                llr[i] = crate::mapping::quantize_llr(-4.0 * z.im * scale);
            }
            self.interleavers[0].deinterleave(&llr, &mut deint[(s - 1) * N_DATA..s * N_DATA]);
        }
        if !(e_im > e_re) {
            return Ok(None);
        }
        // The segment count sits in the first bits: decode the shortest header's span first.
        let min_syms = SemcomHeader::header_symbols(1).min(k);
        let mut bits = vec![0u8; 24 * k];
        self.viterbi.decode(
            &deint[..2 * 24 * min_syms],
            Termination::BestState,
            &mut bits[..24 * min_syms],
        );
        let n = SemcomHeader::segments_announced(&bits).unwrap_or(1);
        let needed = SemcomHeader::header_symbols(n);
        if needed > k {
            return Err(HeaderError::Duration {
                needed,
                covered: hdr.n_sym,
            });
        }
        let tail_end = SemcomHeader::tail_at(n) + 6;
        self.viterbi
            .decode(&deint[..2 * tail_end], Termination::ZeroState, &mut bits[..tail_end]);
        let header = FrameHeader::from_bits(&bits[..tail_end])?;
        let covered = hdr.n_sym;
        match header.total_symbols() {
            Ok(t) if t <= covered => Ok(Some(header)),
            Ok(t) => Err(HeaderError::Duration { needed: t, covered }),
            // A header that passed its checks always fits; keep the error typed anyway.
            Err(_) => Err(HeaderError::Duration {
                needed: usize::MAX,
                covered,
            }),
        }
    }

    /// Demodulates and decodes a semcom frame whose samples are all buffered.
    pub(super) fn process_semcom(&mut self, hdr: &Header, sc: &SemcomHeader) {
        let backoff = self.cfg.fft_backoff as u64;
        let first = hdr.t1 + 128 + N_CP as u64 - backoff;
        let snr_sc = hdr.h_power / hdr.noise_var;
        let mut syms = std::mem::take(&mut self.syms);
        let shifts = self.fft_data_symbols(hdr, first, snr_sc, &mut syms);
        let (corrections, sfo_ppm) = self.track_phase(&syms, &shifts, &hdr.h, snr_sc);

        // Zero-forcing coefficients and LLR weights |H|²/σ² per data subcarrier.
        let mut eq_c = [Complex32::new(0.0, 0.0); N_DATA];
        let mut eq_w = [0f32; N_DATA];
        for (i, &k) in DATA_SUBCARRIERS.iter().enumerate() {
            let hk = hdr.h[bin(k)];
            let hp = hk.norm_sqr().max(f32::MIN_POSITIVE);
            eq_c[i] = hk.conj() / hp;
            eq_w[i] = LLR_SCALE * hp / hdr.noise_var.max(f32::MIN_POSITIVE);
        }
        let cfg = MinSumConfig::default();
        let seed = Scrambler::new(sc.scrambler_seed).ok();
        let mut s = 1 + sc.n_header_symbols();
        let mut segments = Vec::with_capacity(sc.segments.len());
        let mut eq_all = Vec::new();
        let (mut dd_error, mut dd_points) = (0.0f64, 0usize);
        let mut llrs: Vec<i8> = Vec::new();
        let mut bits = Vec::new();
        for info in &sc.segments {
            let Ok(fit) = info.fit() else { continue };
            let m = info.mcs.modulation;
            let nb = m.bits_per_symbol();
            let points = constellation(m);
            llrs.clear();
            llrs.resize(fit.n_avbits, 0);
            for chunk in llrs.chunks_exact_mut(info.mcs.n_cbps()) {
                let zs = equalize(&syms[s], corrections[s], &eq_c);
                demap_quantized(m, &zs, &eq_w, chunk);
                for (z, l) in zs.iter().zip(chunk.chunks_exact(nb)) {
                    let label = l.iter().fold(0usize, |acc, &v| (acc << 1) | usize::from(v < 0));
                    dd_error += f64::from((z - points[label]).norm_sqr());
                }
                dd_points += N_DATA;
                if self.cfg.keep_symbols {
                    eq_all.extend_from_slice(&zs);
                }
                s += 1;
            }
            let dec = self.ldpc_decoder(fit.code());
            let st = fit.decode(&llrs, dec, &cfg, &mut bits);
            if let Some(seed) = seed {
                let mut sc = seed;
                sc.apply(&mut bits);
            }
            let payload: Vec<u8> = bits
                .chunks_exact(8)
                .map(|b| b.iter().enumerate().fold(0u8, |acc, (j, &x)| acc | ((x & 1) << j)))
                .collect();
            let fcs_ok = st.failed == 0 && crate::crc::fcs_ok(&payload);
            segments.push(RxSegment {
                info: *info,
                payload,
                fcs_ok,
                codewords: st.codewords,
                failed_codewords: st.failed,
                iterations: st.iterations,
            });
        }
        let evm = dd_error / dd_points.max(1) as f64;
        let all_ok = segments.iter().all(|s| s.fcs_ok);
        let n_used = USED_SUBCARRIERS.len() as f32;
        let frame = SemcomRxFrame {
            offset: hdr.t1.saturating_sub(192),
            header: sc.clone(),
            segments,
            snr_db: 10.0 * (snr_sc * n_used / N_FFT as f32).log10(),
            evm_db: (10.0 * evm.max(1e-30).log10()) as f32,
            cfo_hz: (hdr.cfo * self.cfg.sample_rate_hz / (2.0 * std::f64::consts::PI)) as f32,
            rssi_db: hdr.rssi_db,
            sfo_ppm,
            symbols: eq_all,
        };
        self.stats.frames += 1;
        if !all_ok {
            self.stats.fcs_failures += 1;
        }
        self.events.push_back(RxEvent::Semcom(frame));
        self.syms = syms;
        // The header's CRC vouched for the frame: it is consumed whole either way.
        self.resume_search(hdr.t1 + 128 + (N_SYM * (hdr.n_sym + 1)) as u64);
    }

    /// Equalises an analog frame whose samples are all buffered.
    pub(super) fn process_analog(&mut self, hdr: &Header, ah: &AnalogHeader) {
        let backoff = self.cfg.fft_backoff as u64;
        let first = hdr.t1 + 128 + N_CP as u64 - backoff;
        let snr_sc = hdr.h_power / hdr.noise_var;
        let mut syms = std::mem::take(&mut self.syms);
        let shifts = self.fft_data_symbols(hdr, first, snr_sc, &mut syms);
        let (corrections, sfo_ppm) = self.track_phase(&syms, &shifts, &hdr.h, snr_sc);
        // Noise per bin: the L-LTF's estimate pooled with the pilots' residual (header and
        // payload symbols).
        let (mut resid, mut n_resid) = (0.0f64, 0usize);
        for (s, y) in syms.iter().enumerate().skip(1) {
            let (theta, slope) = corrections[s];
            let pol = f32::from(self.polarity[s % 127]);
            for &(k, v) in &PILOTS {
                let z = y[bin(k)] * Complex32::from_polar(1.0, -(theta + slope * k as f32));
                resid += f64::from((z - hdr.h[bin(k)] * (v * pol)).norm_sqr());
                n_resid += 1;
            }
        }
        let n_ltf = USED_SUBCARRIERS.len();
        let sigma2 = ((f64::from(hdr.noise_var) * n_ltf as f64 + resid) / (n_ltf + n_resid) as f64).max(1e-30);
        let mut eq_c = [Complex32::new(0.0, 0.0); N_DATA];
        let mut sc_snr = [0f32; N_DATA];
        for (i, &k) in DATA_SUBCARRIERS.iter().enumerate() {
            let hk = hdr.h[bin(k)];
            let hp = hk.norm_sqr().max(f32::MIN_POSITIVE);
            eq_c[i] = hk.conj() / hp;
            sc_snr[i] = (10.0 * (f64::from(hp) / sigma2).log10()) as f32;
        }
        let n = ah.symbols;
        let mut symbols = Vec::with_capacity(ah.data_symbols() * N_DATA);
        for s in 1 + crate::semcom::ANALOG_HEADER_SYMBOLS..syms.len() {
            symbols.extend_from_slice(&equalize(&syms[s], corrections[s], &eq_c));
        }
        symbols.truncate(n);
        let symbol_snr_db: Vec<f32> = (0..symbols.len()).map(|i| sc_snr[i % N_DATA]).collect();
        let evm = symbol_snr_db
            .iter()
            .map(|&d| 10f64.powf(-f64::from(d) / 10.0))
            .sum::<f64>()
            / n.max(1) as f64;
        let n_used = USED_SUBCARRIERS.len() as f32;
        let frame = AnalogRxFrame {
            offset: hdr.t1.saturating_sub(192),
            header: *ah,
            symbols,
            symbol_snr_db,
            subcarrier_snr_db: sc_snr,
            snr_db: 10.0 * (snr_sc * n_used / N_FFT as f32).log10(),
            evm_db: (10.0 * evm.max(1e-30).log10()) as f32,
            cfo_hz: (hdr.cfo * self.cfg.sample_rate_hz / (2.0 * std::f64::consts::PI)) as f32,
            rssi_db: hdr.rssi_db,
            sfo_ppm,
        };
        self.stats.frames += 1;
        self.events.push_back(RxEvent::Analog(frame));
        self.syms = syms;
        self.resume_search(hdr.t1 + 128 + (N_SYM * (hdr.n_sym + 1)) as u64);
    }

    /// The layered decoder for `code`, built on first use.
    fn ldpc_decoder(&mut self, code: &'static crate::ldpc::LdpcCode) -> &mut LayeredDecoder {
        match self.ldpc.iter().position(|d| std::ptr::eq(d.code(), code)) {
            Some(i) => &mut self.ldpc[i],
            None => {
                self.ldpc.push(LayeredDecoder::new(code));
                let last = self.ldpc.len() - 1;
                &mut self.ldpc[last]
            }
        }
    }
}

/// The 48 data subcarriers of one symbol, pilot-corrected (common phase θ and slope per
/// subcarrier index) and zero-forced.
fn equalize(y: &[Complex32; N_FFT], (theta, slope): (f32, f32), eq_c: &[Complex32; N_DATA]) -> [Complex32; N_DATA] {
    std::array::from_fn(|i| {
        let k = DATA_SUBCARRIERS[i];
        y[bin(k)] * Complex32::from_polar(1.0, -(theta + slope * k as f32)) * eq_c[i]
    })
}
