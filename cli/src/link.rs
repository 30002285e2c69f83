//! `semcom send DIR --link radio|quic|auto`: files as items over the radio link (the PHY over
//! the simulated channel in this process, or a live radio: a SoapySDR device or a UDP virtual
//! radio), over QUIC, or over the radio with fallback to QUIC; and `semcom recv`, the receiving
//! end of the radio link on a live radio.

use crate::quic::{collect_files, file_item};
use crate::radio::{install_stop_handler, stop_requested, RadioArgs, Way};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use semcom_phy::channel::{Awgn, Chain};
use semcom_phy::Rate;
use semcom_transport::link::fallback::{FallbackConfig, FallbackLink, Via};
use semcom_transport::link::radio::burst_power;
use semcom_transport::link::{PhyMode, RadioItemLink, RadioItemLinkConfig};
use semcom_transport::quic::{QuicClient, QuicClientConfig};
use semcom_transport::radio::sim::SimRadio;
use semcom_transport::radio::Radio;
use semcom_transport::{IqFormat, Item, Link, LinkKey, Outcome};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

/// Which link carries the items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LinkChoice {
    /// The radio: link frames (sealed) on the semcom PHY, through the simulated channel or on
    /// the live radio that -a/--udp name.
    Radio,
    /// QUIC to `--connect`.
    Quic,
    /// The radio, falling back to QUIC while its delivery is poor.
    Auto,
}

#[derive(Args, Debug)]
pub struct SendDirArgs {
    /// Files or directories (every regular file in them, sorted by name).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Which link.
    #[arg(long, value_enum, default_value_t = LinkChoice::Radio)]
    link: LinkChoice,
    /// Radio: SNR of the simulated channel, dB (without -a/--udp).
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    snr: f64,
    #[command(flatten)]
    keys: KeyArgs,
    /// Radio: a live radio instead of the simulated channel. It has no return channel, so each
    /// item is reported `sent` (the receiving `semcom recv` reports what arrived).
    #[command(flatten)]
    radio: RadioArgs,
    /// Compress each item with zstd -19 first.
    #[arg(long)]
    zstd: bool,
    /// QUIC: server (or emulator) address.
    #[arg(long, default_value = "127.0.0.1:4433")]
    connect: SocketAddr,
    /// QUIC: the server's certificate (DER), pinned.
    #[arg(long, default_value = "semcom-cert.der")]
    cert: PathBuf,
    /// One JSON object per item.
    #[arg(long)]
    json: bool,
}

/// The link key options of the radio link (both ends).
#[derive(Args, Debug)]
pub struct KeyArgs {
    /// Radio: link key file (32 bytes or 64 hex digits).
    #[arg(long, conflicts_with_all = ["passphrase", "insecure"])]
    key: Option<PathBuf>,
    /// Radio: derive the link key from this passphrase (Argon2id) and --link-name.
    #[arg(long, conflicts_with = "insecure")]
    passphrase: Option<String>,
    /// Radio: name that separates links sharing a passphrase.
    #[arg(long, default_value = "semcom")]
    link_name: String,
    /// Radio: link frames unsealed (no encryption, no authentication).
    #[arg(long)]
    insecure: bool,
}

impl KeyArgs {
    fn key(&self) -> Result<Option<LinkKey>> {
        Ok(match (&self.key, &self.passphrase, self.insecure) {
            (Some(f), _, _) => Some(LinkKey::from_file(f)?),
            (None, Some(p), _) => Some(LinkKey::from_passphrase(p, &self.link_name)?),
            (None, None, true) => None,
            (None, None, false) => {
                bail!("the radio link needs a key: --key FILE or --passphrase, or --insecure for unsealed frames")
            }
        })
    }
}

fn radio(a: &SendDirArgs) -> Result<RadioItemLink<SimRadio>> {
    let key = a.keys.key()?;
    let mut ch = Chain::new();
    ch.push(Awgn::for_snr(a.snr, burst_power(PhyMode::Legacy(Rate::R6))?, 1)?);
    Ok(RadioItemLink::new(
        SimRadio::new(ch, 20e6),
        key,
        RadioItemLinkConfig::default(),
    ))
}

fn quic(a: &SendDirArgs) -> Result<QuicClient> {
    let pinned = std::fs::read(&a.cert).with_context(|| format!("reading the certificate {}", a.cert.display()))?;
    Ok(QuicClient::connect(a.connect, &pinned, QuicClientConfig::default())?)
}

fn print(a: &SendDirArgs, file: &std::path::Path, it: &Item, via: &str, outcome: &str) {
    if a.json {
        println!(
            "{}",
            serde_json::json!({"file": file.display().to_string(), "bytes": it.bytes.len(), "via": via, "outcome": outcome})
        );
    } else {
        println!("{} {} bytes {outcome} via {via}", file.display(), it.bytes.len());
    }
}

/// Items over a live radio: no return channel, so every item is `sent`.
fn send_live(a: &SendDirArgs, files: &[PathBuf], items: &[Item]) -> Result<()> {
    let key = a.keys.key()?;
    let radio = a.radio.open(Way::Tx, IqFormat::Cf32)?;
    eprintln!("sending {} items on {}", items.len(), radio.info().name);
    let mut link = RadioItemLink::new(radio, key, RadioItemLinkConfig::default());
    install_stop_handler();
    let mut sent = 0;
    for (f, it) in files.iter().zip(items) {
        if stop_requested() {
            eprintln!("interrupted");
            break;
        }
        let r = link.send(it)?;
        sent += 1;
        let o = format!(
            "sent as item {} in {} frames, {:.0} µs of air",
            r.id, r.frames, r.airtime_us
        );
        print(a, f, it, "radio", &o);
    }
    link.phy_mut().end_tx()?;
    link.phy_mut().radio_mut().finish()?;
    eprintln!(
        "{sent} of {} items sent ({} without a return channel: `semcom recv` at the other end reports what arrived)",
        items.len(),
        link.phy().radio().info().name
    );
    Ok(())
}

pub fn run(a: SendDirArgs) -> Result<()> {
    let files = collect_files(&a.paths)?;
    let items: Vec<Item> = files.iter().map(|f| file_item(f, a.zstd)).collect::<Result<_>>()?;
    // Refused before anything is sent, not after the items before it went out.
    let limit = match a.link {
        LinkChoice::Radio => Some(RadioItemLinkConfig::default().max_item),
        LinkChoice::Quic => Some(QuicClientConfig::default().max_item),
        LinkChoice::Auto => None,
    };
    if let Some(max) = limit {
        let big: Vec<String> = files
            .iter()
            .zip(&items)
            .filter(|(_, it)| it.bytes.len() > max)
            .map(|(f, it)| format!("{} ({} bytes)", f.display(), it.bytes.len()))
            .collect();
        if !big.is_empty() {
            bail!(
                "larger than the link's {max}-byte items, nothing sent: {}",
                big.join(", ")
            );
        }
    }
    if a.radio.is_live() {
        return match a.link {
            LinkChoice::Radio => send_live(&a, &files, &items),
            _ => bail!(
                "-a/--udp name a live radio, which has no return channel yet: use --link radio (or QUIC alone with --link quic and no radio)"
            ),
        };
    }
    let mut failed = 0usize;
    match a.link {
        LinkChoice::Radio | LinkChoice::Quic => {
            let mut link: Box<dyn Link> = if a.link == LinkChoice::Radio {
                Box::new(radio(&a)?)
            } else {
                Box::new(quic(&a)?)
            };
            let mut outcomes: Vec<Option<&'static str>> = vec![None; items.len()];
            let mut ids = std::collections::HashMap::new();
            for (i, it) in items.iter().enumerate() {
                let r = link.send(it)?;
                ids.insert(r.id, i);
                for rep in link.poll()? {
                    if let Some(&j) = ids.get(&rep.id) {
                        outcomes[j] = Some(rep.outcome.name());
                    }
                }
            }
            for rep in link.finish()? {
                if let Some(&j) = ids.get(&rep.id) {
                    outcomes[j] = Some(rep.outcome.name());
                }
            }
            let via = if a.link == LinkChoice::Radio { "radio" } else { "quic" };
            for ((f, it), o) in files.iter().zip(&items).zip(outcomes) {
                let o = o.unwrap_or(Outcome::Lost.name());
                failed += usize::from(o != "delivered");
                print(&a, f, it, via, o);
            }
            let s = link.stats();
            eprintln!(
                "{} of {} delivered; refused frames: {} tampered, {} replayed, {} wrong key, {} malformed, {} unauthenticated",
                items.len() - failed,
                items.len(),
                s.security.tampered,
                s.security.replayed,
                s.security.wrong_key,
                s.security.malformed,
                s.security.unauthenticated
            );
        }
        LinkChoice::Auto => {
            let mut set = FallbackLink::new(radio(&a)?, quic(&a)?, FallbackConfig::default());
            let start = Instant::now();
            let mut fates = vec![None; items.len()];
            for it in &items {
                set.send(it, start.elapsed())?;
                for d in set.poll(start.elapsed())? {
                    fates[d.seq as usize] = Some(d.via);
                }
            }
            for d in set.finish(start.elapsed())? {
                fates[d.seq as usize] = Some(d.via);
            }
            for ((f, it), v) in files.iter().zip(&items).zip(fates) {
                let (via, o) = match v {
                    Some(Some(Via::Primary)) => ("radio", "delivered"),
                    Some(Some(Via::Backup)) => ("quic", "delivered"),
                    _ => ("-", "failed"),
                };
                failed += usize::from(o != "delivered");
                print(&a, f, it, via, o);
            }
            for s in set.switches() {
                eprintln!("switch at {:.3} s to {:?}: {}", s.at.as_secs_f64(), s.to, s.reason);
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} items not delivered", items.len());
    }
    Ok(())
}

/// `semcom recv`: the receiving end of the radio link on a live radio.
#[derive(Args, Debug)]
pub struct RecvArgs {
    #[command(flatten)]
    radio: RadioArgs,
    #[command(flatten)]
    keys: KeyArgs,
    /// Write each delivered item here as `item-SESSION-ID.KIND` (nothing is written without it).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Stop after this many items (delivered, partial or lost); 0: until the stream ends or Ctrl-C.
    #[arg(long, default_value_t = 0)]
    count: usize,
    /// One JSON object per item, then a summary.
    #[arg(long)]
    json: bool,
}

pub fn recv(a: RecvArgs) -> Result<()> {
    let key = a.keys.key()?;
    if let Some(d) = &a.out {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let radio = a.radio.open(Way::Rx, IqFormat::Cf32)?;
    eprintln!("receiving from {}", radio.info().name);
    let mut link = RadioItemLink::new(radio, key, RadioItemLinkConfig::default());
    install_stop_handler();
    let (mut n, mut delivered, mut partial, mut lost) = (0usize, 0usize, 0usize, 0usize);
    let stopped = loop {
        if stop_requested() {
            break "interrupted";
        }
        let ended = link.rx_ended();
        let reports = if ended { link.finish()? } else { link.poll()? };
        for r in reports {
            n += 1;
            let kind = r.kind.map_or("unknown", |k| k.name());
            let (outcome, bytes, file) = match &r.outcome {
                Outcome::Delivered(b) => {
                    delivered += 1;
                    let file = match &a.out {
                        Some(d) => {
                            let p = d.join(format!("item-{:016x}-{:05}.{kind}", r.session, r.id));
                            std::fs::write(&p, b).with_context(|| format!("writing {}", p.display()))?;
                            Some(p.display().to_string())
                        }
                        None => None,
                    };
                    ("delivered".to_string(), b.len(), file)
                }
                Outcome::Partial(f) => {
                    partial += 1;
                    let got = f.iter().filter(|x| x.is_some()).count();
                    (format!("partial ({got} of {} fragments)", f.len()), 0, None)
                }
                Outcome::Lost => {
                    lost += 1;
                    ("lost".to_string(), 0, None)
                }
            };
            if a.json {
                println!(
                    "{}",
                    serde_json::json!({"session": format!("{:016x}", r.session), "id": r.id, "kind": kind,
                        "outcome": r.outcome.name(), "bytes": bytes, "file": file, "snr_db": r.snr_db, "evm_db": r.evm_db})
                );
            } else {
                println!(
                    "item {:016x}/{} {kind} {outcome}{}{}",
                    r.session,
                    r.id,
                    if bytes > 0 {
                        format!(" {bytes} bytes")
                    } else {
                        String::new()
                    },
                    r.snr_db.map_or(String::new(), |v| format!(" snr {v:.1} dB"))
                );
            }
            if a.count > 0 && n >= a.count {
                break;
            }
        }
        if a.count > 0 && n >= a.count {
            break "count";
        }
        if ended {
            break "end of stream";
        }
    };
    let s = link.stats();
    let refused = format!(
        "{} tampered, {} replayed, {} wrong key, {} malformed, {} unauthenticated",
        s.security.tampered,
        s.security.replayed,
        s.security.wrong_key,
        s.security.malformed,
        s.security.unauthenticated
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({"summary": true, "stopped": stopped, "items": n, "delivered": delivered, "partial": partial,
                "lost": lost, "refused": {"tampered": s.security.tampered, "replayed": s.security.replayed,
                "wrong_key": s.security.wrong_key, "malformed": s.security.malformed,
                "unauthenticated": s.security.unauthenticated}, "carrier_errors": s.carrier_errors})
        );
    }
    eprintln!("stopped ({stopped}): {n} items, {delivered} delivered, {partial} partial, {lost} lost; refused frames: {refused}");
    Ok(())
}
