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
pub struct Transmitter {
    ifft: Arc<dyn Fft<f32>>,
    scratch: Vec<Complex32>,
    preamble: Vec<Complex32>,
    polarity: [i8; 127],
    interleavers: [Interleaver; 4],
    mappers: [Mapper; 4],
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
    }
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
        Self {
            ifft,
            scratch,
            preamble,
            polarity: pilot_polarity(),
            interleavers,
            mappers: Modulation::ALL.map(Mapper::new),
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
        let sig_coded = std::mem::take(&mut self.coded);
        self.emit_symbol(&sig_coded, Modulation::Bpsk, 0, &mut pkt[pos..]);
        self.coded = sig_coded;
        pos += N_SYM;

        // DATA.
        self.points.clear();
        let mut bits = std::mem::take(&mut self.bits);
        bits.clear();
        bits.extend(data_bits(psdu, rate));
        scramble_data(&mut bits, psdu.len(), scrambler);
        self.coded.clear();
        convcode::encode_punctured(&bits, rate.code_rate(), &mut self.coded);
        let coded = std::mem::take(&mut self.coded);
        for (n, sym_bits) in coded.chunks_exact(rate.n_cbps()).enumerate() {
            self.emit_symbol(sym_bits, rate.modulation(), n + 1, &mut pkt[pos..]);
            pos += N_SYM;
        }
        self.coded = coded;
        self.bits = bits;
        Ok(len)
    }

    /// Interleaves, maps and modulates one symbol's coded bits, overlap-adding the windowed
    /// 81-sample segment at the start of `out`.
    fn emit_symbol(&mut self, coded: &[u8], m: Modulation, symbol_index: usize, out: &mut [Complex32]) {
        let bins = self.symbol_bins(coded, m, symbol_index);
        if symbol_index > 0 {
            self.points
                .extend(crate::ofdm::DATA_SUBCARRIERS.iter().map(|&k| bins[crate::ofdm::bin(k)]));
        }
        let mut seg = symbol_time(&*self.ifft, &bins, &mut self.scratch);
        window_segment(&mut seg);
        overlap_add(out, 0, &seg);
    }

    /// The frequency-domain symbol (data points and pilots) for one symbol's coded bits;
    /// `symbol_index` 0 is SIGNAL, 1 … the DATA symbols.
    pub fn symbol_bins(&self, coded: &[u8], m: Modulation, symbol_index: usize) -> [Complex32; N_FFT] {
        let mi = mod_index(m);
        let il = &self.interleavers[mi];
        let mut inter = [0u8; 288];
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
