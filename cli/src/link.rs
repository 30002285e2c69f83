//! `semcom send DIR --link radio|quic|auto`: files as items over the radio link (the PHY over
//! the simulated channel, in this process), over QUIC, or over the radio with fallback to QUIC.

use crate::quic::{collect_files, file_item};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use semcom_phy::channel::{Awgn, Chain};
use semcom_phy::Rate;
use semcom_transport::link::fallback::{FallbackConfig, FallbackLink, Via};
use semcom_transport::link::radio::burst_power;
use semcom_transport::link::{PhyMode, RadioItemLink, RadioItemLinkConfig};
use semcom_transport::quic::{QuicClient, QuicClientConfig};
use semcom_transport::radio::sim::SimRadio;
use semcom_transport::{Item, Link, LinkKey, Outcome};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

/// Which link carries the items.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LinkChoice {
    /// The radio: link frames (sealed) on the semcom PHY through the simulated channel.
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
    /// Radio: SNR of the simulated channel, dB.
    #[arg(long, default_value_t = 20.0, allow_hyphen_values = true)]
    snr: f64,
    /// Radio: link key file (32 bytes or 64 hex digits).
    #[arg(long, conflicts_with_all = ["passphrase", "insecure"])]
    key: Option<PathBuf>,
    /// Radio: derive the link key from this passphrase (Argon2id) and --link-name.
    #[arg(long, conflicts_with = "insecure")]
    passphrase: Option<String>,
    /// Radio: name that separates links sharing a passphrase.
    #[arg(long, default_value = "semcom")]
    link_name: String,
    /// Radio: send link frames unsealed (no encryption, no authentication).
    #[arg(long)]
    insecure: bool,
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

fn radio(a: &SendDirArgs) -> Result<RadioItemLink<SimRadio>> {
    let key = match (&a.key, &a.passphrase, a.insecure) {
        (Some(f), _, _) => Some(LinkKey::from_file(f)?),
        (None, Some(p), _) => Some(LinkKey::from_passphrase(p, &a.link_name)?),
        (None, None, true) => None,
        (None, None, false) => {
            bail!("the radio link needs a key: --key FILE or --passphrase, or --insecure to send unsealed frames")
        }
    };
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

pub fn run(a: SendDirArgs) -> Result<()> {
    let files = collect_files(&a.paths)?;
    let items: Vec<Item> = files.iter().map(|f| file_item(f, a.zstd)).collect::<Result<_>>()?;
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
