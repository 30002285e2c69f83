//! The 802.11a transmitter: PSDU → baseband IQ at 20 MS/s (§17.3).
//!
//! ```text
//! PSDU ─► SERVICE+PSDU+tail+pad ─► scramble ─► zero tail ─► conv. encode ─► puncture
//!      ─► interleave (per symbol) ─► map ─► + pilots ─► IFFT ─► CP ─► window ─┐
//! L-STF ─► L-LTF ─► SIGNAL (BPSK 1/2, not scrambled) ──────────────────────────┴─► IQ
//! ```
//!
//! Each segment (L-STF, L-LTF, SIGNAL, every DATA symbol) is extended by one sample of its
//! periodic continuation; that sample and the segment's first are halved and overlap-added,
//! the short transition window of Annex G. A packet therefore has one sample more than the sum of
//! its segments. The time-domain scale is the standard's: IFFT divided by 64.

use crate::convcode;
use crate::interleaver::Interleaver;
use crate::mapping::Mapper;
use crate::ofdm::{assemble_symbol, N_CP, N_FFT, N_SYM, STF_LEN};
use crate::preamble::{ltf_freq, stf_freq};
use crate::rate::{Modulation, Rate};
use crate::scrambler::{pilot_polarity, Scrambler};
use crate::semcom::{lsig_length, scrambled_bits, AnalogHeader, Segment, SegmentInfo, SemcomHeader};
use crate::signal::SignalField;
use crate::PhyError;
use num_complex::Complex32;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Per-packet transmit parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxParams {
    /// Data rate.
    pub rate: Rate,
    /// Initial scrambler state, 1 … 127 (x1 in bit 0; see [`Scrambler`]).
    pub scrambler_seed: u8,
}

/// The DATA field's bits before scrambling: 16 SERVICE zeros, the PSDU (each octet least
/// significant bit first), 6 tail zeros, zero padding to whole symbols.
pub fn data_bits(psdu: &[u8], rate: Rate) -> Vec<u8> {
    let n = rate.n_data_symbols(psdu.len()) * rate.n_dbps();
    let mut bits = vec![0u8; n];
    for (i, &byte) in psdu.iter().enumerate() {
        for j in 0..8 {
            bits[16 + 8 * i + j] = (byte >> j) & 1;
        }
    }
    bits
}

/// Scrambles the DATA bits in place and then forces the six tail bits back to zero.
pub fn scramble_data(bits: &mut [u8], psdu_len: usize, scrambler: Scrambler) {
    let mut s = scrambler;
    s.apply(bits);
    let tail = 16 + 8 * psdu_len;
    bits[tail..tail + 6].fill(0);
}

/// One symbol's 64 bins → its time-domain segment of 81 samples (CP, symbol, one extension
/// sample), before windowing. `fft` must be an inverse FFT of size 64.
pub fn symbol_time(fft: &dyn Fft<f32>, bins: &[Complex32; N_FFT], scratch: &mut [Complex32]) -> [Complex32; N_SYM + 1] {
    let mut x = *bins;
    fft.process_with_scratch(&mut x, scratch);
    let scale = 1.0 / N_FFT as f32;
    std::array::from_fn(|n| x[(n + N_FFT - N_CP) % N_FFT] * scale)
}

/// The L-STF (161 samples: 160 + the overlap sample), before windowing.
pub fn stf_time(fft: &dyn Fft<f32>) -> Vec<Complex32> {
    let mut x = stf_freq();
    fft.process(&mut x);
    (0..=STF_LEN).map(|n| x[n % N_FFT] / N_FFT as f32).collect()
}

/// The L-LTF (161 samples: GI2, two symbols, the overlap sample), before windowing.
pub fn ltf_time(fft: &dyn Fft<f32>) -> Vec<Complex32> {
    let mut x = ltf_freq();
    fft.process(&mut x);
    (0..=crate::ofdm::LTF_LEN)
        .map(|n| x[(n + N_FFT - 32) % N_FFT] / N_FFT as f32)
        .collect()
}

/// Applies the Annex G transition window to one segment: halves its first and last samples.
pub fn window_segment(seg: &mut [Complex32]) {
    if let Some(f) = seg.first_mut() {
        *f *= 0.5;
    }
    if let Some(l) = seg.last_mut() {
        *l *= 0.5;
    }
}

/// Builds packets. Plans and tables are made once; [`Transmitter::transmit`] reuses buffers.
///
/// The DATA path does not run the stage functions one after another: a per-rate gather table
/// maps each subcarrier's bits straight to positions in the rate-1/2 coded stream, folding
/// puncturing and interleaving into one pass (each symbol holds whole puncturing periods). A
/// test checks it against the stage-by-stage composition at every rate.
pub struct Transmitter {
    ifft: Arc<dyn Fft<f32>>,
    scratch: Vec<Complex32>,
    preamble: Vec<Complex32>,
    polarity: [i8; 127],
    interleavers: [Interleaver; 6],
    mappers: [Mapper; 6],
    /// Per rate (index in [`Rate::ALL`]), as bit planes: `gather[b * 48 + i]` is the index, in a
    /// symbol's block of the rate-1/2 stream, of bit b of subcarrier i's label.
    gather: [Vec<u16>; 8],
    bits: Vec<u8>,
    coded: Vec<u8>,
    points: Vec<Complex32>,
}

impl std::fmt::Debug for Transmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transmitter").finish_non_exhaustive()
    }
}

impl Default for Transmitter {
    fn default() -> Self {
        Self::new()
    }
}

fn mod_index(m: Modulation) -> usize {
    match m {
        Modulation::Bpsk => 0,
        Modulation::Qpsk => 1,
        Modulation::Qam16 => 2,
        Modulation::Qam64 => 3,
        Modulation::Qam256 => 4,
        Modulation::Qam1024 => 5,
    }
}

/// Position in the rate-1/2 stream of the `k`-th bit that survives puncturing.
fn unpunctured_index(rate: crate::rate::CodeRate, k: usize) -> usize {
    let pat = convcode::keep_pattern(rate);
    let kept: Vec<usize> = pat.iter().enumerate().filter(|(_, &x)| x).map(|(i, _)| i).collect();
    (k / kept.len()) * pat.len() + kept[k % kept.len()]
}

impl Transmitter {
    /// Plans the IFFT and builds every table.
    pub fn new() -> Self {
        let ifft = FftPlanner::new().plan_fft_inverse(N_FFT);
        let scratch = vec![Complex32::new(0.0, 0.0); ifft.get_inplace_scratch_len()];
        // L-STF then L-LTF, windowed and overlap-added: 321 samples, the last overlapping SIGNAL.
        let mut preamble = vec![Complex32::new(0.0, 0.0); 2 * STF_LEN + 1];
        let mut stf = stf_time(&*ifft);
        window_segment(&mut stf);
        let mut ltf = ltf_time(&*ifft);
        window_segment(&mut ltf);
        overlap_add(&mut preamble, 0, &stf);
        overlap_add(&mut preamble, STF_LEN, &ltf);
        let interleavers =
            Modulation::ALL.map(|m| Interleaver::new(m.bits_per_symbol() * crate::ofdm::N_DATA, m.bits_per_symbol()));
        let gather = Rate::ALL.map(|rate| {
            let il = &interleavers[mod_index(rate.modulation())];
            let nb = rate.n_bpsc();
            let mut g = vec![0u16; rate.n_cbps()];
            for k in 0..rate.n_cbps() {
                let j = il.position(k);
                let (i, b) = (j / nb, j % nb);
                g[b * crate::ofdm::N_DATA + i] = unpunctured_index(rate.code_rate(), k) as u16;
            }
            g
        });
        Self {
            ifft,
            scratch,
            preamble,
            polarity: pilot_polarity(),
            interleavers,
            mappers: Modulation::ALL.map(Mapper::new),
            gather,
            bits: Vec::new(),
            coded: Vec::new(),
            points: Vec::new(),
        }
    }

    /// Samples in a packet carrying `psdu_len` octets at `rate`, the final overlap sample
    /// included.
    pub fn packet_len(rate: Rate, psdu_len: usize) -> usize {
        crate::ofdm::HEADER_LEN + N_SYM * rate.n_data_symbols(psdu_len) + 1
    }

    /// Appends one semcom-profile PPDU carrying `segments` (see [`crate::semcom`]) to `out`
    /// and returns its length in samples.
    pub fn transmit_semcom(
        &mut self,
        segments: &[Segment<'_>],
        scrambler_seed: u8,
        out: &mut Vec<Complex32>,
    ) -> Result<usize, PhyError> {
        let header = SemcomHeader::new(
            segments
                .iter()
                .map(|s| SegmentInfo {
                    mcs: s.mcs,
                    class: s.class,
                    length: s.payload.len(),
                })
                .collect(),
            scrambler_seed,
        )?;
        let scrambler = Scrambler::new(scrambler_seed)?;
        let total = header.total_symbols()?;
        let (len, mut pos, mut s) = self.semcom_preamble(&header.to_bits(), total, out)?;
        let base = out.len() - len;
        let pkt = &mut out[base..];

        // Segments: scramble, LDPC, map bits to subcarriers in order.
        let mut bits = std::mem::take(&mut self.bits);
        let mut coded = std::mem::take(&mut self.coded);
        for (seg, info) in segments.iter().zip(&header.segments) {
            let fit = info.fit()?;
            scrambled_bits(seg.payload, scrambler, &mut bits);
            coded.clear();
            fit.encode(&bits, &mut coded);
            let m = info.mcs.modulation;
            let nb = m.bits_per_symbol();
            let mapper = self.mappers[mod_index(m)].clone();
            for sym in coded.chunks_exact(info.mcs.n_cbps()) {
                let points: [Complex32; crate::ofdm::N_DATA] =
                    std::array::from_fn(|i| mapper.map(&sym[i * nb..(i + 1) * nb]));
                let mut bins = [Complex32::new(0.0, 0.0); N_FFT];
                assemble_symbol(&points, f32::from(self.polarity[s % 127]), &mut bins);
                self.emit_bins(bins, &mut pkt[pos..]);
                pos += N_SYM;
                s += 1;
            }
        }
        self.bits = bits;
        self.coded = coded;
        debug_assert_eq!(pos, len - 1);
        Ok(len)
    }

    /// Appends one analog semcom PPDU (see [`crate::semcom`]) carrying `symbols` — complex
    /// channel symbols of unit average power, placed as they are on the data subcarriers, 48 per
    /// OFDM symbol, the last symbol zero-padded — to `out` and returns its length in samples.
    /// Refuses an empty or too long payload, a non-finite symbol and an average power above 1
    /// (by more than 1 %).
    pub fn transmit_analog(
        &mut self,
        symbols: &[Complex32],
        class: u8,
        out: &mut Vec<Complex32>,
    ) -> Result<usize, PhyError> {
        self.transmit_analog_param(symbols, class, 0, out)
    }

    /// [`Self::transmit_analog`] with the header's 7-bit codec parameter set to `param`.
    pub fn transmit_analog_param(
        &mut self,
        symbols: &[Complex32],
        class: u8,
        param: u8,
        out: &mut Vec<Complex32>,
    ) -> Result<usize, PhyError> {
        let header = AnalogHeader::new(symbols.len(), class)?.with_param(param)?;
        let bad = |reason: String| PhyError::SemcomFrame { reason };
        if let Some(i) = symbols.iter().position(|z| !(z.re.is_finite() && z.im.is_finite())) {
            return Err(bad(format!("analog symbol {i} is not finite")));
        }
        let power = symbols.iter().map(|z| f64::from(z.norm_sqr())).sum::<f64>() / symbols.len() as f64;
        if power > 1.01 {
            return Err(bad(format!(
                "analog symbols have average power {power:.4}; at most 1 (normalise them)"
            )));
        }
        let (len, mut pos, mut s) = self.semcom_preamble(&header.to_bits(), header.total_symbols(), out)?;
        let base = out.len() - len;
        for chunk in symbols.chunks(crate::ofdm::N_DATA) {
            let points: [Complex32; crate::ofdm::N_DATA] =
                std::array::from_fn(|i| chunk.get(i).copied().unwrap_or_default());
            let mut bins = [Complex32::new(0.0, 0.0); N_FFT];
            assemble_symbol(&points, f32::from(self.polarity[s % 127]), &mut bins);
            self.emit_bins(bins, &mut out[base + pos..]);
            pos += N_SYM;
            s += 1;
        }
        debug_assert_eq!(pos, len - 1);
        Ok(len)
    }

    /// Appends a semcom PPDU of `total` symbols after L-SIG, zeroed, to `out` and writes its
    /// preamble, L-SIG (6 Mbit/s, LENGTH covering the PPDU) and the QBPSK header carrying
    /// `header_bits`. Returns the PPDU's length, the position in it of the first symbol after
    /// the header and that symbol's index for the pilot polarity.
    fn semcom_preamble(
        &mut self,
        header_bits: &[u8],
        total: usize,
        out: &mut Vec<Complex32>,
    ) -> Result<(usize, usize, usize), PhyError> {
        let signal = SignalField::new(Rate::R6, lsig_length(total))?;
        let len = crate::ofdm::HEADER_LEN + N_SYM * total + 1;
        let base = out.len();
        out.resize(base + len, Complex32::new(0.0, 0.0));
        let pkt = &mut out[base..];
        pkt[..self.preamble.len()].copy_from_slice(&self.preamble);
        let mut pos = 2 * STF_LEN;
        self.coded.clear();
        convcode::encode(&signal.to_bits(), &mut self.coded);
        let bins = self.symbol_bins(&self.coded, Modulation::Bpsk, 0);
        self.emit_bins(bins, &mut pkt[pos..]);
        pos += N_SYM;

        // Header: BPSK 1/2, interleaved like SIGNAL, on the imaginary axis (QBPSK).
        self.coded.clear();
        convcode::encode(header_bits, &mut self.coded);
        let coded = std::mem::take(&mut self.coded);
        let mut s = 1;
        for chunk in coded.chunks_exact(crate::ofdm::N_DATA) {
            let mut inter = [0u8; crate::ofdm::N_DATA];
            self.interleavers[0].interleave(chunk, &mut inter);
            let points: [Complex32; crate::ofdm::N_DATA] =
                std::array::from_fn(|i| Complex32::new(0.0, if inter[i] == 0 { -1.0 } else { 1.0 }));
            let mut bins = [Complex32::new(0.0, 0.0); N_FFT];
            assemble_symbol(&points, f32::from(self.polarity[s % 127]), &mut bins);
            self.emit_bins(bins, &mut out[base + pos..]);
            pos += N_SYM;
            s += 1;
        }
        self.coded = coded;
        Ok((len, pos, s))
    }

    /// Appends one packet carrying `psdu` to `out` and returns its length in samples.
    pub fn transmit(&mut self, psdu: &[u8], params: &TxParams, out: &mut Vec<Complex32>) -> Result<usize, PhyError> {
        let signal = SignalField::new(params.rate, psdu.len())?;
        let scrambler = Scrambler::new(params.scrambler_seed)?;
        let rate = params.rate;
        let len = Self::packet_len(rate, psdu.len());
        let base = out.len();
        out.resize(base + len, Complex32::new(0.0, 0.0));
        let pkt = &mut out[base..];
        pkt[..self.preamble.len()].copy_from_slice(&self.preamble);
        let mut pos = 2 * STF_LEN;

        // SIGNAL: BPSK 1/2, not scrambled, pilot polarity p_0.
        self.coded.clear();
        convcode::encode(&signal.to_bits(), &mut self.coded);
        let bins = self.symbol_bins(&self.coded, Modulation::Bpsk, 0);
        self.emit_bins(bins, &mut pkt[pos..]);
        pos += N_SYM;

        // DATA.
        let mut points = std::mem::take(&mut self.points);
        self.encode_data_points(psdu, rate, scrambler, &mut points);
        for (n, sym) in points.chunks_exact(crate::ofdm::N_DATA).enumerate() {
            let mut bins = [Complex32::new(0.0, 0.0); N_FFT];
            assemble_symbol(sym, f32::from(self.polarity[(n + 1) % 127]), &mut bins);
            self.emit_bins(bins, &mut pkt[pos..]);
            pos += N_SYM;
        }
        self.points = points;
        Ok(len)
    }

    /// Appends `repeats` identical packets carrying `psdu` (same scrambler seed), `gap` samples of
    /// silence apart, and returns the burst's length in samples: the time diversity that
    /// [`crate::rx::KnownFormat`] reception combines. Each copy is a standard packet on its own.
    pub fn transmit_repeated(
        &mut self,
        psdu: &[u8],
        params: &TxParams,
        repeats: usize,
        gap: usize,
        out: &mut Vec<Complex32>,
    ) -> Result<usize, PhyError> {
        let base = out.len();
        for i in 0..repeats {
            if i > 0 {
                out.resize(out.len() + gap, Complex32::new(0.0, 0.0));
            }
            if let Err(e) = self.transmit(psdu, params, out) {
                out.truncate(base);
                return Err(e);
            }
        }
        Ok(out.len() - base)
    }

    /// The data-subcarrier points (48 per DATA symbol, subcarrier order) a packet carrying
    /// `psdu` sends: what [`Transmitter::transmit`] modulates, without the IFFT. The receiver
    /// uses it to rebuild the reference of a decoded frame.
    pub fn data_points_for(&mut self, psdu: &[u8], params: &TxParams) -> Result<Vec<Complex32>, PhyError> {
        SignalField::new(params.rate, psdu.len())?;
        let scrambler = Scrambler::new(params.scrambler_seed)?;
        let mut points = Vec::new();
        self.encode_data_points(psdu, params.rate, scrambler, &mut points);
        Ok(points)
    }

    /// DATA: bits, scramble, zero the tail, encode at rate 1/2, then per symbol gather the
    /// subcarrier labels through the puncture + interleave table and map them.
    fn encode_data_points(&mut self, psdu: &[u8], rate: Rate, scrambler: Scrambler, points: &mut Vec<Complex32>) {
        let n_sym = rate.n_data_symbols(psdu.len());
        self.bits.clear();
        self.bits.resize(n_sym * rate.n_dbps(), 0);
        for (chunk, &byte) in self.bits[16..].chunks_exact_mut(8).zip(psdu) {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = (byte >> j) & 1;
            }
        }
        scramble_data(&mut self.bits, psdu.len(), scrambler);
        self.coded.clear();
        convcode::encode(&self.bits, &mut self.coded);
        points.clear();
        points.reserve(n_sym * crate::ofdm::N_DATA);
        let m = rate.modulation();
        let nb = m.bits_per_symbol();
        let g = &self.gather[Rate::ALL.iter().position(|&r| r == rate).unwrap_or(0)];
        let mapper = &self.mappers[mod_index(m)];
        for half in self.coded.chunks_exact(2 * rate.n_dbps()) {
            let mut labels = [0usize; crate::ofdm::N_DATA];
            for plane in g.chunks_exact(crate::ofdm::N_DATA).take(nb) {
                for (l, &j) in labels.iter_mut().zip(plane) {
                    *l = (*l << 1) | usize::from(half[usize::from(j)]);
                }
            }
            points.extend(labels.iter().map(|&l| mapper.point(l)));
        }
    }

    /// IFFT of one symbol's bins, written at the start of `out` with its cyclic prefix and the
    /// transition window: the first sample is halved and added to what the previous segment left
    /// there, the extension sample (index 80) is halved for the next segment to add to.
    fn emit_bins(&mut self, mut bins: [Complex32; N_FFT], out: &mut [Complex32]) {
        self.ifft.process_with_scratch(&mut bins, &mut self.scratch);
        let scale = 1.0 / N_FFT as f32;
        out[0] += bins[N_FFT - N_CP] * (0.5 * scale);
        for (o, &x) in out[1..N_CP].iter_mut().zip(&bins[N_FFT - N_CP + 1..]) {
            *o = x * scale;
        }
        for (o, &x) in out[N_CP..N_SYM].iter_mut().zip(&bins) {
            *o = x * scale;
        }
        out[N_SYM] += bins[0] * (0.5 * scale);
    }

    /// The frequency-domain symbol (data points and pilots) for one symbol's coded bits;
    /// `symbol_index` 0 is SIGNAL, 1 … the DATA symbols.
    pub fn symbol_bins(&self, coded: &[u8], m: Modulation, symbol_index: usize) -> [Complex32; N_FFT] {
        let mi = mod_index(m);
        let il = &self.interleavers[mi];
        let mut inter = [0u8; crate::mapping::MAX_BITS_PER_SYMBOL * crate::ofdm::N_DATA];
        il.interleave(coded, &mut inter[..il.len()]);
        let nb = m.bits_per_symbol();
        let mapper = &self.mappers[mi];
        let points: [Complex32; crate::ofdm::N_DATA] =
            std::array::from_fn(|i| mapper.map(&inter[i * nb..(i + 1) * nb]));
        let mut bins = [Complex32::new(0.0, 0.0); N_FFT];
        assemble_symbol(&points, f32::from(self.polarity[symbol_index % 127]), &mut bins);
        bins
    }

    /// The data-subcarrier points of the last packet's DATA symbols, 48 per symbol in
    /// subcarrier order.
    pub fn data_points(&self) -> &[Complex32] {
        &self.points
    }

    /// The interleaver for modulation `m`.
    pub fn interleaver(&self, m: Modulation) -> &Interleaver {
        &self.interleavers[mod_index(m)]
    }

    /// The inverse FFT plan (size 64, unnormalised).
    pub fn ifft(&self) -> &Arc<dyn Fft<f32>> {
        &self.ifft
    }
}

/// Adds `seg` into `out` at `at`; the first sample is added, the rest are added too so that
/// overlapping halves from the previous segment sum up.
fn overlap_add(out: &mut [Complex32], at: usize, seg: &[Complex32]) {
    for (o, &s) in out[at..at + seg.len()].iter_mut().zip(seg) {
        *o += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The packet assembled from the public stage functions, one after another.
    fn reference_packet(tx: &Transmitter, psdu: &[u8], p: &TxParams) -> Vec<Complex32> {
        let rate = p.rate;
        let mut out = vec![Complex32::new(0.0, 0.0); Transmitter::packet_len(rate, psdu.len())];
        out[..tx.preamble.len()].copy_from_slice(&tx.preamble);
        let mut scratch = vec![Complex32::new(0.0, 0.0); 64];
        let mut put = |out: &mut Vec<Complex32>, at: usize, bins: &[Complex32; N_FFT]| {
            let mut seg = symbol_time(&*tx.ifft, bins, &mut scratch);
            window_segment(&mut seg);
            overlap_add(out, at, &seg);
        };
        let mut sig = Vec::new();
        convcode::encode(&SignalField::new(rate, psdu.len()).unwrap().to_bits(), &mut sig);
        put(&mut out, 320, &tx.symbol_bins(&sig, Modulation::Bpsk, 0));
        let mut bits = data_bits(psdu, rate);
        scramble_data(&mut bits, psdu.len(), Scrambler::new(p.scrambler_seed).unwrap());
        let mut coded = Vec::new();
        convcode::encode_punctured(&bits, rate.code_rate(), &mut coded);
        for (n, c) in coded.chunks_exact(rate.n_cbps()).enumerate() {
            put(&mut out, 400 + N_SYM * n, &tx.symbol_bins(c, rate.modulation(), n + 1));
        }
        out
    }

    #[test]
    fn fast_path_equals_stage_composition_at_every_rate() {
        let mut tx = Transmitter::new();
        for (i, rate) in Rate::ALL.into_iter().enumerate() {
            for len in [1usize, 37, 1500] {
                let psdu: Vec<u8> = (0..len).map(|j| (j * 31 + i * 7) as u8).collect();
                let p = TxParams {
                    rate,
                    scrambler_seed: (i * 13 + len) as u8 % 127 + 1,
                };
                let mut fast = Vec::new();
                tx.transmit(&psdu, &p, &mut fast).unwrap();
                assert_eq!(fast, reference_packet(&tx, &psdu, &p), "{rate}, {len} octets");
            }
        }
    }
}
