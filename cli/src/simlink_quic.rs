//! The classical path over QUIC for `semcom sim link --quic-snr`: the zstd items through the
//! lossy-link emulator, whose loss follows the PHY at the SNR (each datagram one 802.11a PSDU at
//! the rate the radio classical path mostly uses), with a per-item deadline. QUIC retransmits, so
//! it trades airtime for delivery: the rows report the airtime of every datagram, both ways.

use crate::simlink::{zstd_decompressor, LinkChannel, Prepared, Row, SimLinkArgs};
use anyhow::Result;
use semcom_phy::channel::FadingSpec;
use semcom_phy::sim::Propagation;
use semcom_phy::Rate;
use semcom_transport::emulator::{Emulator, EmulatorConfig, PhyLoss};
use semcom_transport::quic::{CertKey, QuicClient, QuicClientConfig, QuicOutcome, QuicServer};
use semcom_transport::ItemKind;
use std::collections::HashMap;
use std::time::Duration;

pub fn run_quic_point(a: &SimLinkArgs, p: &Prepared, pi: usize, channel: LinkChannel, snr_db: f64) -> Result<Row> {
    // The rate most classical items of this modality use at equal airtime.
    let mut count: HashMap<u32, usize> = HashMap::new();
    for r in &p.classical_rate {
        *count.entry(r.mbps()).or_default() += 1;
    }
    let mbps = count.into_iter().max_by_key(|&(m, c)| (c, m)).map_or(6, |(m, _)| m);
    let rate = Rate::from_mbps(mbps)?;
    let cert = CertKey::generate(&[])?;
    let server = QuicServer::bind("127.0.0.1:0".parse()?, &cert, 1 << 20)?;
    let emu = Emulator::start(
        "127.0.0.1:0".parse()?,
        server.local_addr()?,
        EmulatorConfig {
            phy: Some(PhyLoss {
                snr_db,
                rate,
                propagation: match channel {
                    LinkChannel::Awgn => Propagation::Awgn,
                    LinkChannel::Rayleigh => Propagation::Fading(FadingSpec::exponential(a.delay_spread, 0.0, 0.0)),
                },
            }),
            seed: a.seed ^ (pi as u64) << 32 ^ snr_db.to_bits(),
            ..Default::default()
        },
    )?;
    let n = p.classical.len();
    let client = QuicClient::connect(
        emu.local_addr(),
        &cert.cert_der,
        QuicClientConfig {
            connect_timeout: a.quic_timeout,
            item_timeout: a.quic_timeout,
            ..Default::default()
        },
    );
    let (mut delivered, mut lat, mut lat_n) = (0usize, 0.0, 0usize);
    if let Ok(mut c) = client {
        let out = c.send_all(&p.classical, 8);
        for o in &out {
            if let Ok(QuicOutcome::Delivered { latency }) = o {
                delivered += 1;
                lat += latency.as_secs_f64() * 1e6;
                lat_n += 1;
            }
        }
        c.close();
    }
    // What the server got, decoded and compared.
    let mut d = zstd_decompressor(&p.dict)?;
    let mut meaning = 0;
    let mut intact = vec![false; n];
    while let Some(it) = server.recv_timeout(Duration::from_millis(50)) {
        let i = it.id as usize;
        let Some(sent) = p.classical.get(i) else {
            continue;
        };
        intact[i] = it.bytes == sent.bytes;
        let ok = match sent.kind {
            ItemKind::Zstd => d
                .decompress(&it.bytes, 1 << 20)
                .is_ok_and(|x| p.classical_meaning(i, &x)),
            _ => p.classical_meaning(i, &it.bytes),
        };
        meaning += usize::from(ok);
    }
    let c = emu.counters();
    drop(emu);
    server.close();
    let airtime_ns = c.upstream.airtime_ns + c.downstream.airtime_ns;
    let wire = c.upstream.received_bytes + c.downstream.received_bytes;
    Ok(Row {
        modality: p.modality.name(),
        channel: channel.name(),
        snr_db,
        path: "classical-quic",
        phy: format!("QUIC over 802.11a {mbps} Mbit/s"),
        items: n,
        link_delivered: delivered,
        link_partial: 0,
        concealed: 0,
        link_lost: n - delivered,
        meaning,
        meaning_share: meaning as f64 / n as f64,
        psnr_db: p
            .image
            .as_ref()
            .map(|t| (0..n).map(|i| t.classical_psnr(i, intact[i])).sum::<f64>() / n as f64),
        bits_per_char: crate::simlink::bits_per_char(p, &p.classical),
        payload_bytes: p.classical.iter().map(|i| i.bytes.len()).sum::<usize>() as f64 / n as f64,
        wire_bytes: wire as f64 / n as f64,
        airtime_us: airtime_ns as f64 / 1e3 / n as f64,
        latency_us: if lat_n > 0 { lat / lat_n as f64 } else { f64::NAN },
        refused_frames: 0,
    })
}
