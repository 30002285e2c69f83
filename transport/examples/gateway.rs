//! A gateway: reads every file of a directory as an item, sends the items over the radio link
//! (the semcom PHY through a simulated channel, sealed with ChaCha20-Poly1305) and over QUIC
//! (to a server in this process with a generated, pinned certificate), and prints each item's
//! outcome. Then it feeds both links bad input from the "network" (malformed and wrongly keyed
//! radio frames, a server with another certificate, an oversized item) and shows that each is
//! refused and counted.
//!
//! ```sh
//! cargo run --release -p semcom-transport --example gateway -- DIR [SNR_DB]
//! ```

use semcom_phy::channel::{Awgn, Chain};
use semcom_phy::crc::append_fcs;
use semcom_phy::{Rate, TxParams};
use semcom_transport::link::crypto::Sealer;
use semcom_transport::link::radio::burst_power;
use semcom_transport::link::{PhyMode, RadioItemLink, RadioItemLinkConfig};
use semcom_transport::quic::{CertKey, QuicClient, QuicClientConfig, QuicOutcome, QuicServer};
use semcom_transport::radio::sim::SimRadio;
use semcom_transport::{Item, ItemKind, Link, LinkKey, Outcome};
use std::path::PathBuf;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().ok_or("usage: gateway DIR [SNR_DB]")?);
    let snr: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(15.0);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let items: Vec<Item> = files
        .iter()
        .map(|f| std::fs::read(f).map(|b| Item::new(ItemKind::Raw, b)))
        .collect::<Result<_, _>>()?;
    println!("{} items from {}", items.len(), dir.display());

    // The radio link: sealed link frames, semcom PHY, AWGN at `snr`.
    let key = LinkKey::generate();
    let mut ch = Chain::new();
    ch.push(Awgn::for_snr(snr, burst_power(PhyMode::Legacy(Rate::R6))?, 7)?);
    let mut radio = RadioItemLink::new(SimRadio::new(ch, 20e6), Some(key), RadioItemLinkConfig::default());
    println!("\nradio link (semcom PHY, {snr} dB AWGN, ChaCha20-Poly1305):");
    let mut names = std::collections::HashMap::new();
    let mut reports = Vec::new();
    for (f, it) in files.iter().zip(&items) {
        match radio.send(it) {
            Ok(r) => {
                names.insert(r.id, f.clone());
                println!(
                    "  sent {} ({} bytes): {} PPDUs, {:.0} µs on air",
                    f.display(),
                    it.bytes.len(),
                    r.frames,
                    r.airtime_us
                );
            }
            Err(e) => println!("  {}: refused: {e}", f.display()),
        }
        reports.extend(radio.poll()?);
    }
    // Bad input on the air: garbage that passes the PHY's FCS, and a frame under another key.
    let mut garbage = b"not a link frame".to_vec();
    append_fcs(&mut garbage);
    let params = TxParams {
        rate: Rate::R12,
        scrambler_seed: 71,
    };
    radio.phy_mut().send(&garbage, &params)?;
    radio.phy_mut().send_silence(1000)?;
    let mut intruder = Sealer::new(Some(LinkKey::generate()));
    let mut forged = intruder.seal(&[0u8; 40])?;
    append_fcs(&mut forged);
    radio.phy_mut().send(&forged, &params)?;
    radio.phy_mut().send_silence(1000)?;
    reports.extend(radio.finish()?);
    for r in &reports {
        let name = names.get(&r.id).map_or("?".into(), |p| p.display().to_string());
        let detail = match &r.outcome {
            Outcome::Delivered(b) => format!("{} bytes", b.len()),
            Outcome::Partial(f) => format!("{} of {} fragments", f.iter().flatten().count(), f.len()),
            Outcome::Lost => String::new(),
        };
        println!(
            "  received {name}: {} {detail} (SNR {:.1} dB, latency {:.0} µs)",
            r.outcome.name(),
            r.snr_db.unwrap_or(f32::NAN),
            r.latency_us.unwrap_or(f64::NAN)
        );
    }
    let s = radio.stats();
    println!(
        "  counters: {} delivered, {} partial, {} lost; refused frames: {} malformed, {} wrong key, {} tampered, {} replayed; {} PHY frames failed their FCS",
        s.delivered, s.partial, s.lost, s.security.malformed, s.security.wrong_key, s.security.tampered, s.security.replayed, s.carrier_errors
    );

    // The QUIC link: a server here, the client pins its certificate.
    println!("\nQUIC link (127.0.0.1, pinned self-signed certificate):");
    let cert = CertKey::generate(&[])?;
    let max_item = 1 << 20;
    let server = QuicServer::bind("127.0.0.1:0".parse()?, &cert, max_item)?;
    let addr = server.local_addr()?;
    let mut client = QuicClient::connect(
        addr,
        &cert.cert_der,
        QuicClientConfig {
            max_item: 4 * max_item,
            ..Default::default()
        },
    )?;
    let mut to_send = items.clone();
    // An item larger than the server accepts.
    to_send.push(Item::new(ItemKind::Raw, vec![0; 2 * max_item]));
    let outcomes = client.send_all(&to_send, 8);
    for (i, o) in outcomes.iter().enumerate() {
        let name = files
            .get(i)
            .map_or("(oversized test item)".into(), |p| p.display().to_string());
        match o {
            Ok(QuicOutcome::Delivered { latency }) => {
                println!("  {name}: delivered in {:.1} ms", latency.as_secs_f64() * 1e3)
            }
            Ok(QuicOutcome::Failed(r)) => println!("  {name}: failed: {r}"),
            Err(e) => println!("  {name}: refused: {e}"),
        }
    }
    client.close();
    // A server with another certificate: the client refuses the handshake.
    let impostor = QuicServer::bind("127.0.0.1:0".parse()?, &CertKey::generate(&[])?, max_item)?;
    match QuicClient::connect(impostor.local_addr()?, &cert.cert_der, QuicClientConfig::default()) {
        Ok(_) => println!("  impostor server accepted (must not happen)"),
        Err(e) => println!("  server with another certificate: refused: {e}"),
    }
    std::thread::sleep(Duration::from_millis(100));
    let c = server.counters();
    println!(
        "  server counters: {} items, {} oversized, {} malformed, {} hash mismatch; impostor saw {} failed handshake(s)",
        c.items,
        c.oversized,
        c.malformed,
        c.hash_mismatch,
        impostor.counters().failed_handshakes
    );
    server.close();
    impostor.close();
    Ok(())
}
