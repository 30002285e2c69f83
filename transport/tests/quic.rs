//! The QUIC link through the lossy-link emulator (acceptance 3), certificate pinning and
//! oversized items (acceptance 7).

use rand::{Rng, SeedableRng};
use semcom_transport::emulator::{Emulator, EmulatorConfig};
use semcom_transport::quic::{CertKey, QuicClient, QuicClientConfig, QuicOutcome, QuicServer};
use semcom_transport::{Item, ItemKind, LinkError};
use sha2::Digest;
use std::collections::HashMap;
use std::time::Duration;

fn items(n: usize, seed: u64) -> Vec<Item> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let len = rng.random_range(0..1200);
            Item::new(ItemKind::Zstd, (0..len).map(|_| rng.random()).collect())
        })
        .collect()
}

/// Acceptance 3: 10 000 items over QUIC through the emulator at 0, 10, 20 and 30 % loss (each
/// way): every item is delivered or reported failed, and every delivered item is the one sent
/// (SHA-256 checked by the test, independently of the link's own check).
#[test]
fn ten_thousand_items_through_0_to_30_percent_loss_are_delivered_or_reported() {
    let cert = CertKey::generate(&[]).unwrap();
    let server = QuicServer::bind("127.0.0.1:0".parse().unwrap(), &cert, 1 << 20).unwrap();
    let mut total = (0, 0);
    for (k, loss) in [0.0, 0.1, 0.2, 0.3].into_iter().enumerate() {
        let emu = Emulator::start(
            "127.0.0.1:0".parse().unwrap(),
            server.local_addr().unwrap(),
            EmulatorConfig {
                loss,
                seed: k as u64,
                ..Default::default()
            },
        )
        .unwrap();
        let mut client = QuicClient::connect(
            emu.local_addr(),
            &cert.cert_der,
            QuicClientConfig {
                connect_timeout: Duration::from_secs(20),
                item_timeout: Duration::from_secs(10),
                ..Default::default()
            },
        )
        .unwrap();
        let sent = items(2500, 100 + k as u64);
        let outcomes = client.send_all(&sent, 64);
        // What the server got, by id.
        let mut got: HashMap<u32, Vec<u8>> = HashMap::new();
        while let Some(it) = server.recv_timeout(Duration::from_millis(500)) {
            assert!(got.insert(it.id, it.bytes).is_none(), "item {} received twice", it.id);
        }
        let (mut delivered, mut failed) = (0, 0);
        for (i, (o, it)) in outcomes.iter().zip(&sent).enumerate() {
            match o {
                Ok(QuicOutcome::Delivered { .. }) => {
                    delivered += 1;
                    let b = got
                        .get(&(i as u32))
                        .unwrap_or_else(|| panic!("item {i} acknowledged but not received"));
                    assert_eq!(
                        sha2::Sha256::digest(b),
                        sha2::Sha256::digest(&it.bytes),
                        "item {i} corrupted"
                    );
                }
                Ok(QuicOutcome::Failed(_)) | Err(_) => failed += 1,
            }
        }
        for (id, b) in &got {
            assert_eq!(b, &sent[*id as usize].bytes, "item {id} received with other bytes");
        }
        assert_eq!(delivered + failed, sent.len());
        eprintln!(
            "loss {:.0} %: {delivered} delivered, {failed} reported failed, emulator {:?}",
            loss * 100.0,
            emu.counters()
        );
        total.0 += delivered;
        total.1 += failed;
        client.close();
    }
    assert_eq!(total.0 + total.1, 10_000);
    // QUIC retransmits: at these losses nearly everything arrives in time (what does not is
    // the tail of the 30 % run on a loaded machine, reported failed).
    assert!(total.0 >= 9_500, "{total:?}");
    // The server may hold items whose acknowledgement was lost (reported failed, not lost);
    // it never saw altered bytes.
    let c = server.counters();
    assert!(c.items as usize >= total.0, "{c:?}");
    assert_eq!((c.hash_mismatch, c.malformed, c.oversized), (0, 0, 0));
    // Items up to about 1.15 kB went as datagrams (acknowledged and retransmitted by the link),
    // the others on streams: both paths carried a share.
    assert!(c.datagram_items > 5_000 && c.datagram_items < c.items, "{c:?}");
    // Lost acknowledgements made the client send datagram items again: the server
    // acknowledged the repeats without passing them on twice (checked above by id).
    assert!(c.duplicates > 0, "{c:?}");
    server.close();
}

/// Acceptance 7: a server with another certificate than the pinned one is refused.
#[test]
fn a_server_with_another_certificate_is_refused() {
    let real = CertKey::generate(&[]).unwrap();
    let impostor = CertKey::generate(&[]).unwrap();
    let server = QuicServer::bind("127.0.0.1:0".parse().unwrap(), &impostor, 1 << 20).unwrap();
    let r = QuicClient::connect(
        server.local_addr().unwrap(),
        &real.cert_der,
        QuicClientConfig {
            connect_timeout: Duration::from_secs(5),
            ..Default::default()
        },
    );
    match r {
        Err(LinkError::Quic(msg)) => assert!(msg.contains("handshake"), "{msg}"),
        other => panic!("connected to an impostor: {other:?}"),
    }
    // The server counts the failed handshake (when the client's close arrives).
    let t = std::time::Instant::now();
    while server.counters().failed_handshakes == 0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.counters().failed_handshakes, 1);
    assert_eq!(server.counters().connections, 0);
    server.close();
}

/// Acceptance 7: oversized items are refused at both ends, and counted by the server.
#[test]
fn oversized_items_are_refused_and_counted() {
    let cert = CertKey::generate(&[]).unwrap();
    let server = QuicServer::bind("127.0.0.1:0".parse().unwrap(), &cert, 1000).unwrap();
    // A client whose own limit is higher than the server's.
    let mut client = QuicClient::connect(
        server.local_addr().unwrap(),
        &cert.cert_der,
        QuicClientConfig {
            max_item: 5000,
            ..Default::default()
        },
    )
    .unwrap();
    let big = Item::new(ItemKind::Raw, vec![1; 2000]);
    let huge = Item::new(ItemKind::Raw, vec![1; 6000]);
    let small = Item::new(ItemKind::Raw, vec![2; 10]);
    let out = client.send_all(&[big, huge, small.clone()], 4);
    assert!(
        matches!(&out[0], Ok(QuicOutcome::Failed(m)) if m.contains("refused")),
        "{:?}",
        out[0]
    );
    assert!(matches!(&out[1], Err(LinkError::ItemTooLarge { .. })), "{:?}", out[1]);
    assert!(matches!(&out[2], Ok(QuicOutcome::Delivered { .. })), "{:?}", out[2]);
    let it = server.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(it.bytes, small.bytes);
    assert_eq!(server.counters().oversized, 1);
    client.close();
    server.close();
}
