//! Acceptance 4: the link set switches to QUIC within 1 s of the radio failing and back within
//! 5 s of its recovery, with no item lost in between. The radio is the simulated channel (its
//! SNR drops from 25 dB to −20 dB at t = 2 s and comes back at t = 6 s); time is simulated, one
//! item every 10 ms.

use rand::{Rng, SeedableRng};
use semcom_phy::channel::{Awgn, Chain};
use semcom_phy::Rate;
use semcom_transport::link::fallback::{Active, FallbackConfig, FallbackLink, Via};
use semcom_transport::link::radio::burst_power;
use semcom_transport::link::{PhyMode, RadioItemLink, RadioItemLinkConfig};
use semcom_transport::quic::{CertKey, QuicClient, QuicClientConfig, QuicServer};
use semcom_transport::radio::sim::SimRadio;
use semcom_transport::{Item, ItemKind, LinkKey};
use std::collections::HashMap;
use std::time::Duration;

fn channel(snr_db: f64, seed: u64) -> Chain {
    let mut c = Chain::new();
    c.push(Awgn::for_snr(snr_db, burst_power(PhyMode::Legacy(Rate::R6)).unwrap(), seed).unwrap());
    c
}

#[test]
fn falls_back_to_quic_within_1_s_and_returns_within_5_s_without_losing_items() {
    let cert = CertKey::generate(&[]).unwrap();
    let server = QuicServer::bind("127.0.0.1:0".parse().unwrap(), &cert, 1 << 20).unwrap();
    let quic = QuicClient::connect(
        server.local_addr().unwrap(),
        &cert.cert_der,
        QuicClientConfig::default(),
    )
    .unwrap();
    let radio = RadioItemLink::new(
        SimRadio::new(channel(25.0, 1), 20e6),
        Some(LinkKey::from_bytes([9; 32])),
        RadioItemLinkConfig::default(),
    );
    let mut set = FallbackLink::new(radio, quic, FallbackConfig::default());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let mut sent = Vec::new();
    let mut fates = HashMap::new();
    let step = Duration::from_millis(10);
    for i in 0..1000u64 {
        let now = step * i as u32;
        if i == 200 {
            set.primary_mut().phy_mut().radio_mut().set_channel(channel(-20.0, 2));
        }
        if i == 600 {
            set.primary_mut().phy_mut().radio_mut().set_channel(channel(25.0, 3));
        }
        let mut bytes = i.to_be_bytes().to_vec();
        bytes.extend((0..rng.random_range(10..400)).map(|_| rng.random::<u8>()));
        let item = Item::new(ItemKind::Raw, bytes);
        let seq = set.send(&item, now).unwrap();
        assert_eq!(seq, i);
        sent.push(item);
        for d in set.poll(now).unwrap() {
            assert!(fates.insert(d.seq, d.via).is_none());
        }
    }
    for d in set.finish(step * 1000).unwrap() {
        assert!(fates.insert(d.seq, d.via).is_none());
    }
    let sw = set.switches().to_vec();
    for s in &sw {
        eprintln!("switch at {:?} to {:?}: {}", s.at, s.to, s.reason);
    }
    assert!(sw.len() >= 2, "{sw:?}");
    assert_eq!(sw[0].to, Active::Backup);
    assert!(
        sw[0].at >= Duration::from_secs(2) && sw[0].at <= Duration::from_secs(3),
        "{:?}",
        sw[0]
    );
    assert_eq!(sw[1].to, Active::Primary);
    assert!(
        sw[1].at >= Duration::from_secs(6) && sw[1].at <= Duration::from_secs(11),
        "{:?}",
        sw[1]
    );
    assert_eq!(sw.len(), 2, "no flapping: {sw:?}");
    assert_eq!(set.active(), Active::Primary);
    // Every item delivered, over one link or the other.
    assert_eq!(fates.len(), 1000);
    let via_backup = fates.values().filter(|v| **v == Some(Via::Backup)).count();
    assert!(fates.values().all(Option::is_some), "an item failed on both links");
    // What the QUIC server got is exactly what was sent.
    let mut got = 0;
    while let Some(it) = server.recv_timeout(Duration::from_millis(300)) {
        let seq = u64::from_be_bytes(it.bytes[..8].try_into().unwrap());
        assert_eq!(it.bytes, sent[seq as usize].bytes);
        got += 1;
    }
    assert!(got >= via_backup, "{got} received, {via_backup} reported via QUIC");
    eprintln!(
        "{} items over the radio, {via_backup} over QUIC",
        fates.values().filter(|v| **v == Some(Via::Primary)).count()
    );
    set.finish(step * 1001).unwrap();
    server.close();
}
