//! `semcom quic cert|serve|send` and `semcom emulate`: the QUIC link and the lossy-link
//! emulator from the command line.

use crate::radio::{install_stop_handler, stop_requested};
use crate::units;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use semcom_phy::channel::FadingSpec;
use semcom_phy::sim::Propagation;
use semcom_phy::Rate;
use semcom_transport::emulator::{Emulator, EmulatorConfig, PhyLoss};
use semcom_transport::quic::{CertKey, QuicClient, QuicClientConfig, QuicOutcome, QuicServer};
use semcom_transport::{Item, ItemKind};
use sha2::Digest;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub enum QuicCommand {
    /// Generate a self-signed certificate and key (DER) for `quic serve`; the sender pins the
    /// certificate.
    Cert(CertArgs),
    /// Receive items over QUIC (each acknowledged with its SHA-256).
    Serve(ServeArgs),
    /// Send files (or the files of directories) as items over QUIC to a server whose
    /// certificate is pinned.
    Send(SendArgs),
}

#[derive(Args, Debug)]
pub struct CertArgs {
    /// Certificate file to write (DER).
    #[arg(long, default_value = "semcom-cert.der")]
    cert: PathBuf,
    /// Private key file to write (PKCS#8 DER, mode 600).
    #[arg(long, default_value = "semcom-key.der")]
    key: PathBuf,
    /// Extra DNS names or IP addresses in the certificate (it always holds `semcom`).
    #[arg(long)]
    name: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4433")]
    listen: SocketAddr,
    /// Certificate (DER); generated with --key when it does not exist.
    #[arg(long, default_value = "semcom-cert.der")]
    cert: PathBuf,
    /// Private key (PKCS#8 DER).
    #[arg(long, default_value = "semcom-key.der")]
    key: PathBuf,
    /// Write each item to this directory as `<peer>-<id>.<kind>`.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Largest item accepted, bytes (larger ones are refused and counted).
    #[arg(long, default_value_t = 1 << 20)]
    max_item: usize,
    /// Stop after this many items (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    count: u64,
    /// One JSON object per item.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct SendArgs {
    /// Files or directories (every regular file in them, sorted by name).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Server address (or the emulator's).
    #[arg(long, default_value = "127.0.0.1:4433")]
    connect: SocketAddr,
    /// The server's certificate (DER): the only one trusted.
    #[arg(long, default_value = "semcom-cert.der")]
    cert: PathBuf,
    /// Compress each item with zstd -19 first (the classical path).
    #[arg(long)]
    zstd: bool,
    /// Items in flight at once.
    #[arg(long, default_value_t = 16, value_parser = units::at_least_one)]
    parallel: usize,
    /// An item not acknowledged within this time is reported failed (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = units::duration)]
    item_timeout: Duration,
    /// Largest item sent, bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_item: usize,
    /// Send every item on its own stream (by default items that fit one QUIC datagram go as
    /// datagrams, acknowledged and retransmitted by the link).
    #[arg(long)]
    no_datagrams: bool,
    /// One JSON object per item.
    #[arg(long)]
    json: bool,
}

pub fn run(c: QuicCommand) -> Result<()> {
    match c {
        QuicCommand::Cert(a) => cert(a),
        QuicCommand::Serve(a) => serve(a),
        QuicCommand::Send(a) => send(a),
    }
}

fn cert(a: CertArgs) -> Result<()> {
    let ck = CertKey::generate(&a.name)?;
    ck.save(&a.cert, &a.key)?;
    eprintln!(
        "wrote {} (certificate, give it to senders) and {} (private key, keep it)",
        a.cert.display(),
        a.key.display()
    );
    Ok(())
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn serve(a: ServeArgs) -> Result<()> {
    let ck = if a.cert.exists() || a.key.exists() {
        CertKey::load(&a.cert, &a.key)?
    } else {
        let ck = CertKey::generate(&[])?;
        ck.save(&a.cert, &a.key)?;
        eprintln!("generated {} and {}", a.cert.display(), a.key.display());
        ck
    };
    if let Some(d) = &a.out {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let server = QuicServer::bind(a.listen, &ck, a.max_item)?;
    eprintln!("listening on {} (QUIC)", server.local_addr()?);
    install_stop_handler();
    let mut n = 0u64;
    while !stop_requested() && (a.count == 0 || n < a.count) {
        let Some(it) = server.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        n += 1;
        let h = hex(&sha2::Sha256::digest(&it.bytes));
        if a.json {
            println!(
                "{}",
                serde_json::json!({"peer": it.peer.to_string(), "id": it.id, "kind": it.kind.name(), "bytes": it.bytes.len(), "sha256": h})
            );
        } else {
            println!(
                "{} {} {} {} bytes sha256 {h}",
                it.peer,
                it.id,
                it.kind.name(),
                it.bytes.len()
            );
        }
        if let Some(d) = &a.out {
            let name = format!(
                "{}-{}.{}",
                it.peer.to_string().replace([':', '[', ']'], "_"),
                it.id,
                it.kind.name()
            );
            std::fs::write(d.join(&name), &it.bytes).with_context(|| format!("writing {name}"))?;
        }
    }
    let c = server.counters();
    eprintln!(
        "{} items ({} as datagrams, {} repeated datagrams not passed on twice); refused: {} oversized, {} malformed, {} hash mismatch; {} connections, {} failed handshakes",
        c.items,
        c.datagram_items,
        c.duplicates,
        c.oversized,
        c.malformed,
        c.hash_mismatch,
        c.connections,
        c.failed_handshakes
    );
    server.close();
    Ok(())
}

/// Every regular file of `paths` (directories: their files, sorted by name; not recursive).
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let md = std::fs::metadata(p).with_context(|| format!("{}", p.display()))?;
        if md.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p.clone());
        }
    }
    if out.is_empty() {
        bail!("no files to send");
    }
    Ok(out)
}

/// A file as an item: raw, or zstd -19 when that is smaller.
pub fn file_item(path: &Path, zstd: bool) -> Result<Item> {
    let b = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if zstd {
        let z = zstd::bulk::compress(&b, 19).context("zstd")?;
        if z.len() < b.len() {
            return Ok(Item::new(ItemKind::Zstd, z));
        }
    }
    Ok(Item::new(ItemKind::Raw, b))
}

fn send(a: SendArgs) -> Result<()> {
    let files = collect_files(&a.paths)?;
    let items: Vec<Item> = files.iter().map(|f| file_item(f, a.zstd)).collect::<Result<_>>()?;
    let pinned = std::fs::read(&a.cert).with_context(|| format!("reading the certificate {}", a.cert.display()))?;
    let mut client = QuicClient::connect(
        a.connect,
        &pinned,
        QuicClientConfig {
            max_item: a.max_item,
            item_timeout: a.item_timeout,
            datagrams: !a.no_datagrams,
            ..Default::default()
        },
    )?;
    let start = Instant::now();
    let out = client.send_all(&items, a.parallel);
    let mut failed = 0;
    for ((f, it), o) in files.iter().zip(&items).zip(&out) {
        let (status, detail) = match o {
            Ok(QuicOutcome::Delivered { latency }) => ("delivered", format!("{:.1} ms", latency.as_secs_f64() * 1e3)),
            Ok(QuicOutcome::Failed(r)) => ("failed", r.clone()),
            Err(e) => ("refused", e.to_string()),
        };
        failed += usize::from(status != "delivered");
        if a.json {
            println!(
                "{}",
                serde_json::json!({"file": f.display().to_string(), "kind": it.kind.name(), "bytes": it.bytes.len(), "outcome": status, "detail": detail})
            );
        } else {
            println!(
                "{} {} {} bytes {status} ({detail})",
                f.display(),
                it.kind.name(),
                it.bytes.len()
            );
        }
    }
    eprintln!(
        "{} of {} items delivered in {:.2} s",
        items.len() - failed,
        items.len(),
        start.elapsed().as_secs_f64()
    );
    client.close();
    if failed > 0 {
        bail!("{failed} items not delivered");
    }
    Ok(())
}

/// Channel models of the emulator's PHY loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EmuChannel {
    /// White Gaussian noise.
    Awgn,
    /// Rayleigh fading (exponential delay profile, 2-sample RMS delay spread), a fresh
    /// realisation per datagram.
    Rayleigh,
}

#[derive(Args, Debug)]
pub struct EmulateArgs {
    /// Address the client sends to.
    #[arg(long, default_value = "127.0.0.1:4434")]
    listen: SocketAddr,
    /// Address of the server.
    #[arg(long, default_value = "127.0.0.1:4433")]
    forward: SocketAddr,
    /// Datagram loss probability, each way (0 … 1).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// One-way delay (e.g. 20ms).
    #[arg(long, default_value = "0s", value_parser = units::duration)]
    delay: Duration,
    /// Extra uniform delay 0 … this.
    #[arg(long, default_value = "0s", value_parser = units::duration)]
    jitter: Duration,
    /// Rate limit, bit/s (suffixes k, M; 0: none).
    #[arg(long, default_value = "0", value_parser = units::non_negative)]
    rate: f64,
    /// Loss following the PHY: each datagram goes through the simulated 802.11a PHY at this
    /// SNR (dB) as one PSDU, and is dropped unless received intact.
    #[arg(long, allow_hyphen_values = true, value_parser = units::finite)]
    snr: Option<f64>,
    /// Legacy rate of that PSDU, Mbit/s.
    #[arg(long, default_value_t = 6)]
    phy_rate: u32,
    /// Channel model of the PHY loss.
    #[arg(long, value_enum, default_value_t = EmuChannel::Awgn)]
    channel: EmuChannel,
    /// Seed of the loss and jitter draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Stop after this long (0: run until Ctrl-C).
    #[arg(long, default_value = "0s", value_parser = units::duration)]
    duration: Duration,
}

pub fn emulate(a: EmulateArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&a.loss) {
        bail!("--loss {}: a probability, 0 … 1", a.loss);
    }
    let phy = match a.snr {
        Some(snr_db) => Some(PhyLoss {
            snr_db,
            rate: Rate::from_mbps(a.phy_rate)?,
            propagation: match a.channel {
                EmuChannel::Awgn => Propagation::Awgn,
                EmuChannel::Rayleigh => Propagation::Fading(FadingSpec::exponential(2.0, 0.0, 0.0)),
            },
        }),
        None => None,
    };
    let emu = Emulator::start(
        a.listen,
        a.forward,
        EmulatorConfig {
            loss: a.loss,
            delay: a.delay,
            jitter: a.jitter,
            rate_bps: (a.rate > 0.0).then_some(a.rate),
            phy,
            seed: a.seed,
            ..Default::default()
        },
    )?;
    eprintln!("emulating {} → {}", emu.local_addr(), a.forward);
    install_stop_handler();
    let start = Instant::now();
    while !stop_requested() && (a.duration.is_zero() || start.elapsed() < a.duration) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let c = emu.counters();
    for (name, d) in [("client → server", c.upstream), ("server → client", c.downstream)] {
        eprintln!(
            "{name}: {} received, {} forwarded, dropped {} (loss) {} (PHY) {} (queue)",
            d.received, d.forwarded, d.dropped_loss, d.dropped_phy, d.dropped_queue
        );
    }
    Ok(())
}
