//! Own transmitter → channel → own receiver.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_phy::channel::{burst_power, Awgn, Cfo, Chain, Impairment, TimingOffset};
use semcom_phy::crc::append_fcs;
use semcom_phy::{Complex32, Rate, Receiver, RxConfig, RxEvent, Transmitter, TxParams};

fn random_psdu(rng: &mut ChaCha8Rng, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len.saturating_sub(4)).map(|_| rng.random()).collect();
    if len >= 4 {
        append_fcs(&mut p);
    } else {
        p = (0..len).map(|_| rng.random()).collect();
    }
    p
}

fn frames(events: Vec<RxEvent>) -> Vec<semcom_phy::RxFrame> {
    events
        .into_iter()
        .filter_map(|e| match e {
            RxEvent::Frame(f) => Some(f),
            _ => None,
        })
        .collect()
}

#[test]
fn clean_every_rate() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut tx = Transmitter::new();
    for rate in Rate::ALL {
        let psdu = random_psdu(&mut rng, 300);
        let mut sig = vec![Complex32::new(0.0, 0.0); 500];
        tx.transmit(
            &psdu,
            &TxParams {
                rate,
                scrambler_seed: 0x5d,
            },
            &mut sig,
        )
        .unwrap();
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 500));
        let got = frames(Receiver::new(RxConfig::default()).decode_all(&sig));
        assert_eq!(got.len(), 1, "{rate}");
        assert!(got[0].fcs_ok, "{rate}");
        assert_eq!(got[0].psdu, psdu, "{rate}");
        assert_eq!(got[0].scrambler_seed, 0x5d);
        eprintln!(
            "{rate}: offset {} snr {:.1} evm {:.1} cfo {:.0}",
            got[0].offset, got[0].snr_db, got[0].evm_db, got[0].cfo_hz
        );
    }
}

#[test]
fn noisy_cfo_timing() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut tx = Transmitter::new();
    for rate in Rate::ALL {
        let psdu = random_psdu(&mut rng, 1000);
        let mut burst = Vec::new();
        tx.transmit(
            &psdu,
            &TxParams {
                rate,
                scrambler_seed: 1 + rng.random_range(0..127),
            },
            &mut burst,
        )
        .unwrap();
        let p = burst_power(&burst);
        let mut sig = vec![Complex32::new(0.0, 0.0); 777];
        sig.extend(&burst);
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 600));
        let mut ch = Chain::new();
        ch.push(TimingOffset::new(rng.random_range(0.0..1.0), 0.0).unwrap());
        ch.push(Cfo::new(rng.random_range(-200e3..200e3), 20e6, 1.0).unwrap());
        ch.push(Awgn::for_snr(30.0, p, 7).unwrap());
        let mut out = Vec::new();
        ch.process(&sig, &mut out);
        let got = frames(Receiver::new(RxConfig::default()).decode_all(&out));
        assert_eq!(got.len(), 1, "{rate}");
        eprintln!(
            "{rate}: offset {} snr {:.1} evm {:.1} cfo {:.0} fcs {}",
            got[0].offset, got[0].snr_db, got[0].evm_db, got[0].cfo_hz, got[0].fcs_ok
        );
        assert!(got[0].fcs_ok, "{rate}");
    }
}
