//! Bit-exactness against IEEE 802.11a-1999 Annex G: the standard's worked example (100-octet
//! PSDU, 36 Mbit/s, scrambler state 1011101), one test per table.

mod common;

use common::*;
use semcom_phy::convcode;
use semcom_phy::ofdm::{N_FFT, N_SYM};
use semcom_phy::preamble::{ltf_freq, stf_freq};
use semcom_phy::scrambler::Scrambler;
use semcom_phy::signal::SignalField;
use semcom_phy::tx::{data_bits, ltf_time, scramble_data, stf_time, symbol_time, window_segment};
use semcom_phy::{Complex32, Modulation, Rate, Transmitter, TxParams};

const RATE: Rate = Rate::R36;

fn psdu() -> Option<Vec<u8>> {
    let p = read_hex_bytes("G1.hex.txt")?;
    assert_eq!(p.len(), 100);
    Some(p)
}

/// Annex G's scrambler initial state "1011101", written x1 … x7.
fn seed() -> Scrambler {
    Scrambler::from_x1_to_x7([1, 0, 1, 1, 1, 0, 1]).unwrap()
}

fn signal_coded() -> Vec<u8> {
    let mut c = Vec::new();
    convcode::encode(&SignalField::new(RATE, 100).unwrap().to_bits(), &mut c);
    c
}

fn scrambled(psdu: &[u8]) -> Vec<u8> {
    let mut bits = data_bits(psdu, RATE);
    scramble_data(&mut bits, psdu.len(), seed());
    bits
}

fn first_symbol_coded(psdu: &[u8]) -> Vec<u8> {
    let mut coded = Vec::new();
    convcode::encode_punctured(&scrambled(psdu), RATE.code_rate(), &mut coded);
    coded.truncate(RATE.n_cbps());
    coded
}

#[test]
fn g2_short_training_frequency() {
    let Some(want) = read_iq("G2.iq.txt") else {
        return;
    };
    assert_iq_close(&stf_freq(), &want, "G.2");
}

#[test]
fn g3_short_training_one_period() {
    let Some(want) = read_iq("G3.iq.txt") else {
        return;
    };
    let tx = Transmitter::new();
    let stf = stf_time(&**tx.ifft());
    assert_iq_close(&stf[..want.len()], &want, "G.3");
}

#[test]
fn g4_short_training_windowed() {
    let Some(want) = read_iq("G4.iq.txt") else {
        return;
    };
    let tx = Transmitter::new();
    let mut stf = stf_time(&**tx.ifft());
    window_segment(&mut stf);
    assert_iq_close(&stf, &want, "G.4");
}

#[test]
fn g5_long_training_frequency() {
    let Some(want) = read_iq("G5.iq.txt") else {
        return;
    };
    assert_iq_close(&ltf_freq(), &want, "G.5");
}

#[test]
fn g6_long_training_windowed() {
    let Some(want) = read_iq("G6.iq.txt") else {
        return;
    };
    let tx = Transmitter::new();
    let mut ltf = ltf_time(&**tx.ifft());
    window_segment(&mut ltf);
    assert_iq_close(&ltf, &want, "G.6");
}

#[test]
fn g7_signal_bits() {
    let Some(want) = read_hex_bits("G7.hex.txt") else {
        return;
    };
    assert_eq!(SignalField::new(RATE, 100).unwrap().to_bits().to_vec(), want);
}

#[test]
fn g8_signal_coded() {
    let Some(want) = read_hex_bits("G8.hex.txt") else {
        return;
    };
    assert_eq!(signal_coded(), want);
}

#[test]
fn g9_signal_interleaved() {
    let Some(want) = read_hex_bits("G9.hex.txt") else {
        return;
    };
    let tx = Transmitter::new();
    let mut out = vec![0u8; 48];
    tx.interleaver(Modulation::Bpsk).interleave(&signal_coded(), &mut out);
    assert_eq!(out, want);
}

#[test]
fn g11_signal_frequency() {
    let Some(want) = read_iq("G11.iq.txt") else {
        return;
    };
    let tx = Transmitter::new();
    let bins = tx.symbol_bins(&signal_coded(), Modulation::Bpsk, 0);
    assert_iq_close(&bins, &want, "G.11");
}

#[test]
fn g12_signal_time_windowed() {
    let Some(want) = read_iq("G12.iq.txt") else {
        return;
    };
    let tx = Transmitter::new();
    let bins = tx.symbol_bins(&signal_coded(), Modulation::Bpsk, 0);
    let mut scratch = vec![Complex32::new(0.0, 0.0); 64];
    let mut seg = symbol_time(&**tx.ifft(), &bins, &mut scratch);
    window_segment(&mut seg);
    assert_iq_close(&seg, &want, "G.12");
}

#[test]
fn g13_g14_data_bits() {
    let (Some(p), Some(first), Some(last)) = (psdu(), read_hex_bits("G13.hex.txt"), read_hex_bits("G14.hex.txt"))
    else {
        return;
    };
    let bits = data_bits(&p, RATE);
    assert_eq!(bits.len(), 6 * 144, "six DATA symbols of 144 bits");
    assert_eq!(&bits[..144], &first[..], "G.13");
    assert_eq!(&bits[bits.len() - 144..], &last[..], "G.14");
}

#[test]
fn g16_g17_scrambled_bits() {
    let (Some(p), Some(first), Some(last)) = (psdu(), read_hex_bits("G16.hex.txt"), read_hex_bits("G17.hex.txt"))
    else {
        return;
    };
    let bits = scrambled(&p);
    assert_eq!(&bits[..144], &first[..], "G.16");
    assert_eq!(&bits[bits.len() - 144..], &last[..], "G.17");
}

#[test]
fn g18_coded_first_symbol() {
    let (Some(p), Some(want)) = (psdu(), read_hex_bits("G18.hex.txt")) else {
        return;
    };
    assert_eq!(first_symbol_coded(&p), want);
}

#[test]
fn g21_interleaved_first_symbol() {
    let (Some(p), Some(want)) = (psdu(), read_hex_bits("G21.hex.txt")) else {
        return;
    };
    let tx = Transmitter::new();
    let mut out = vec![0u8; RATE.n_cbps()];
    tx.interleaver(Modulation::Qam16)
        .interleave(&first_symbol_coded(&p), &mut out);
    assert_eq!(out, want);
}

#[test]
fn g22_first_data_symbol_frequency() {
    let (Some(p), Some(want)) = (psdu(), read_iq("G22.iq.txt")) else {
        return;
    };
    let tx = Transmitter::new();
    let bins = tx.symbol_bins(&first_symbol_coded(&p), Modulation::Qam16, 1);
    assert_iq_close(&bins, &want, "G.22");
}

/// The transmitter's packet is the windowed segments overlap-added: its preamble and SIGNAL
/// agree with G.4, G.6 and G.12 wherever the segments do not overlap, and with the sum of the
/// halves where they do.
#[test]
fn whole_packet_is_consistent_with_the_segment_tables() {
    let (Some(p), Some(g4), Some(g6), Some(g12)) = (
        psdu(),
        read_iq("G4.iq.txt"),
        read_iq("G6.iq.txt"),
        read_iq("G12.iq.txt"),
    ) else {
        return;
    };
    let mut tx = Transmitter::new();
    let mut pkt = Vec::new();
    let n = tx
        .transmit(
            &p,
            &TxParams {
                rate: RATE,
                scrambler_seed: seed().state(),
            },
            &mut pkt,
        )
        .unwrap();
    assert_eq!(n, 320 + 80 + 6 * 80 + 1);
    assert_eq!(pkt.len(), n);
    assert_iq_close(&pkt[..160], &g4[..160], "packet vs G.4");
    assert_iq_close(&[pkt[160]], &[g4[160] + g6[0]], "packet overlap L-STF/L-LTF");
    assert_iq_close(&pkt[161..320], &g6[1..160], "packet vs G.6");
    assert_iq_close(&[pkt[320]], &[g6[160] + g12[0]], "packet overlap L-LTF/SIGNAL");
    assert_iq_close(&pkt[321..400], &g12[1..80], "packet vs G.12");
    // First DATA symbol from G.22 through the IFFT, windowed.
    let g22 = read_iq("G22.iq.txt").unwrap();
    let mut bins = [Complex32::new(0.0, 0.0); N_FFT];
    bins.copy_from_slice(&g22);
    let mut scratch = vec![Complex32::new(0.0, 0.0); 64];
    let mut seg = symbol_time(&**tx.ifft(), &bins, &mut scratch);
    window_segment(&mut seg);
    assert_iq_close(&pkt[401..400 + N_SYM], &seg[1..N_SYM], "packet vs IFFT(G.22)");
}
