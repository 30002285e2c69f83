//! `semcom sim link` and `semcom demo`: the semantic path against the classical path, item by
//! item, through the whole stack at equal airtime.
//!
//! Every item (a text message, a telemetry record, a sensor window) is sent two ways over the same simulated
//! channel (AWGN, or block Rayleigh fading with a fresh realisation per item):
//!
//! - **semantic**: the codec's payload in a `SemanticFrame` (no model id or CRC inside the
//!   link: the link authenticates), as link frames on the semcom PHY profile, importance class
//!   0 at `--semantic-mcs` (LDPC);
//! - **classical**: the item compressed with zstd -19 (magicless, no checksum; the raw bytes when
//!   zstd would not shrink them; with a dictionary when `--dict-from` gives training data), as link
//!   frames on 802.11a at the slowest legacy rate whose airtime fits the semantic frame's: *equal
//!   airtime per item*. Slower legacy rates are more robust at every SNR, so that is the best rate
//!   for any SNR under the budget; when even 54 Mbit/s does not fit, 54 Mbit/s is used and the
//!   airtime column shows the excess.
//!
//! Both go through `semcom_transport::link` (fragmentation, ChaCha20-Poly1305 unless
//! `--insecure`, reassembly) and the PHY transmitter, channel model and streaming receiver. At the
//! receiver every item is decoded (text by the prior, telemetry by the stream decoder, which loses
//! the records after a lost one until the next resync point; zstd by zstd) and compared with the
//! original: the item's meaning counts as delivered only when the text is exact and the telemetry
//! record identical (lossless coding is inside any tolerance).
//!
//! Sensor windows (UCI-HAR, 9 × 128 f32) carry their meaning as the sensor codec's one-byte event
//! (class, confidence, anomaly) on the semantic path and as the raw f32 window through zstd on the
//! classical path, whose receiver runs the same classifier on the window when it arrives intact.
//! Their meaning counts as delivered when the class at the receiver is the true label, so both
//! paths top out at the classifier's accuracy on the originals (reported). A 4-byte frame takes so
//! little airtime that the ≈ 4 KB classical item never fits it: it goes at 54 Mbit/s with more
//! airtime than the semantic item, which the summary states.

use crate::plot::{log_curves, Series};
use crate::simlink_image::ImageTruth;
use crate::units;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use semcom_codec::frame::{get_varint, put_varint};
use semcom_codec::sensor::{self, Decoded, Event, SensorModel, Window};
use semcom_codec::telemetry::{TelemetryDecoder, TelemetryEncoder, TelemetryOptions};
use semcom_codec::text::{TextCodec, TextKind};
use semcom_codec::{Modality, Prior, SemanticFrame};
use semcom_phy::channel::{Awgn, Chain, Fading, FadingSpec};
use semcom_phy::semcom::Mcs;
use semcom_phy::sim::frame_seed;
use semcom_phy::Rate;
use semcom_transport::link::crypto::{Opener, Sealer};
use semcom_transport::link::radio::{burst_power, MAX_FRAGMENT};
use semcom_transport::link::{PhyMode, RadioItemLink, RadioItemLinkConfig};
use semcom_transport::radio::sim::SimRadio;
use semcom_transport::{Item, ItemKind, Link, LinkKey, Outcome};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The built-in samples (held-out parts of ../shared/datasets; see cli/samples/SOURCE.md).
const SAMPLE_TEXT: &str = include_str!("../samples/text.txt");
const SAMPLE_TELEMETRY: &str = include_str!("../samples/telemetry.ndjson");
/// 48 UCI-HAR test windows (one per line, channels `:`-separated, as `semcom encode --modality
/// sensor` reads them), zstd-compressed, and their labels (1 … 6).
const SAMPLE_SENSOR: &[u8] = include_bytes!("../samples/sensor-har.txt.zst");
const SAMPLE_SENSOR_LABELS: &str = include_str!("../samples/sensor-har.labels");

/// The legacy rates, slowest first.
pub(crate) const LEGACY: [Rate; 8] = [
    Rate::R6,
    Rate::R9,
    Rate::R12,
    Rate::R18,
    Rate::R24,
    Rate::R36,
    Rate::R48,
    Rate::R54,
];

/// Share of items whose meaning must arrive for the semantic path to "deliver" at an SNR.
const DELIVERS: f64 = 0.9;
/// Share the classical path must lose for the comparison's acceptance ("more than half").
const LOSES: f64 = 0.5;

/// Channel models of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LinkChannel {
    /// White Gaussian noise only.
    Awgn,
    /// Rayleigh fading (exponential delay profile), a fresh realisation per item, plus noise.
    Rayleigh,
}

impl LinkChannel {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Awgn => "awgn",
            Self::Rayleigh => "rayleigh",
        }
    }
}

/// Modalities the comparison covers (those whose codecs have landed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LinkModality {
    /// Text messages and log lines.
    Text,
    /// Telemetry records (JSON).
    Telemetry,
    /// Sensor windows (UCI-HAR, 9 × 128 f32): the event byte against the raw window.
    Sensor,
    /// Images: the digital image codec (and the analog JSCC) against JPEG.
    Image,
}

impl LinkModality {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Telemetry => "telemetry",
            Self::Sensor => "sensor",
            Self::Image => "image",
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct SimLinkArgs {
    /// Text files, one message per line (default: the built-in samples).
    #[arg(long, num_args = 1..)]
    text: Vec<PathBuf>,
    /// Telemetry files, one JSON record per line, in time order (default: the built-in samples).
    #[arg(long, num_args = 1..)]
    telemetry: Vec<PathBuf>,
    /// UCI-HAR folder whose test split gives the sensor windows (default: the built-in sample).
    #[arg(long)]
    sensor: Option<PathBuf>,
    /// The sensor model (event mode: class, confidence, anomaly in one byte).
    #[arg(long, default_value = "models/sensor-har.safetensors")]
    sensor_model: PathBuf,
    /// Folder of PNG/JPEG images (e.g. ../shared/datasets/kodak; default: eight built-in 192 × 128
    /// crops of Kodak images).
    #[arg(long)]
    pub(crate) image: Option<PathBuf>,
    /// The digital image model.
    #[arg(long, default_value = "models/image-digital.safetensors")]
    pub(crate) image_model: PathBuf,
    /// The analog JSCC image model (k/n = 1/16).
    #[arg(long, default_value = "models/image-jscc.safetensors")]
    pub(crate) analog_model: PathBuf,
    /// Code every digital image item at this size, bits per pixel (whole semantic frame),
    /// instead of at the coarsest step that reaches `--image-psnr` + `--image-margin`.
    #[arg(long)]
    pub(crate) image_bpp: Option<f64>,
    /// Margin above `--image-psnr` the digital items are coded for, dB.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) image_margin: f64,
    /// PSNR an image must reach at the receiver for its meaning to count as delivered, dB.
    #[arg(long, default_value_t = 25.0)]
    pub(crate) image_psnr: f64,
    /// Leave out the analog image path.
    #[arg(long)]
    pub(crate) no_analog: bool,
    /// Modalities to compare.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "text,telemetry,sensor,image"
    )]
    modalities: Vec<LinkModality>,
    /// Take only the last FRACTION of each file's lines as items (e.g. 0.2: the held-out part
    /// of ../shared/datasets files, whose first 80 % trained the prior); 0: every line.
    #[arg(long, default_value_t = 0.0)]
    held_out: f64,
    /// Give the classical path a zstd dictionary per modality, trained on the lines before the
    /// held-out part (needs --held-out and files).
    #[arg(long)]
    zstd_dict: bool,
    /// The prior.
    #[arg(long, default_value = "models/text-prior.safetensors")]
    model: PathBuf,
    /// SNRs, dB: A:STEP:B, one value, or a comma-separated list of those.
    #[arg(long, default_value = "-5:1:25", value_parser = units::points, allow_hyphen_values = true)]
    snr: units::Points,
    /// Channel models.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "awgn,rayleigh")]
    channels: Vec<LinkChannel>,
    /// RMS delay spread of the Rayleigh channel, samples (50 ns each).
    #[arg(long, default_value_t = 2.0, value_parser = units::delay_spread)]
    pub(crate) delay_spread: f64,
    /// MCS of the semantic path's importance class 0 (semcom profile, LDPC).
    #[arg(long, default_value = "qpsk-2/3")]
    semantic_mcs: String,
    /// Send every classical item at this 802.11a rate (Mbit/s) instead of the equal-airtime
    /// rule: a reference point for how much airtime the classical path would need; the summary
    /// marks the comparison as not at equal airtime.
    #[arg(long)]
    classical_rate: Option<u32>,
    /// Largest fragment, bytes.
    #[arg(long, default_value_t = 512, value_parser = max_fragment)]
    pub(crate) max_fragment: usize,
    /// Items per modality (0: all): text messages and sensor windows evenly spaced over the
    /// files, telemetry records from the start (a stream).
    #[arg(long, default_value_t = 0)]
    pub(crate) limit: usize,
    /// Telemetry records between resync points.
    #[arg(long, default_value_t = 8)]
    resync: u32,
    /// SNRs at which the classical items also go over QUIC through the lossy-link emulator,
    /// whose loss follows the PHY (real sockets on 127.0.0.1; seconds per point). None by default.
    #[arg(long, value_parser = units::points, allow_hyphen_values = true)]
    quic_snr: Option<units::Points>,
    /// Per-item deadline of the QUIC path (e.g. 2s).
    #[arg(long, default_value = "2s", value_parser = units::duration)]
    pub(crate) quic_timeout: std::time::Duration,
    /// Send link frames unsealed (no ChaCha20-Poly1305): 31 bytes less per frame.
    #[arg(long)]
    insecure: bool,
    /// Base seed of the channels.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Simulation threads.
    #[arg(long, default_value_t = 2, value_parser = crate::units::at_least_one)]
    threads: usize,
    /// Output directory: link.csv, link.json, summary.md and one PNG plot per channel.
    #[arg(short, long, default_value = "sim-link")]
    out: PathBuf,
    /// Print the JSON on stdout as well.
    #[arg(long)]
    json: bool,
}

impl SimLinkArgs {
    /// The demo's settings: built-in samples, both channels, −5 … 25 dB, and the QUIC path at
    /// 0, 6, 12 and 18 dB.
    pub fn demo(out: PathBuf, threads: usize) -> Self {
        Self {
            text: Vec::new(),
            telemetry: Vec::new(),
            sensor: None,
            sensor_model: PathBuf::from("models/sensor-har.safetensors"),
            image: None,
            image_model: PathBuf::from("models/image-digital.safetensors"),
            analog_model: PathBuf::from("models/image-jscc.safetensors"),
            image_bpp: None,
            image_margin: 1.0,
            image_psnr: 25.0,
            no_analog: false,
            modalities: vec![
                LinkModality::Text,
                LinkModality::Telemetry,
                LinkModality::Sensor,
                LinkModality::Image,
            ],
            held_out: 0.0,
            zstd_dict: false,
            quic_snr: Some(units::Points(vec![0.0, 6.0, 12.0, 18.0])),
            quic_timeout: std::time::Duration::from_secs(2),
            model: PathBuf::from("models/text-prior.safetensors"),
            snr: units::Points((-5..=25).map(f64::from).collect()),
            channels: vec![LinkChannel::Awgn, LinkChannel::Rayleigh],
            delay_spread: 2.0,
            semantic_mcs: "qpsk-2/3".into(),
            classical_rate: None,
            max_fragment: 512,
            limit: 0,
            resync: 8,
            insecure: false,
            seed: 1,
            threads,
            out,
            json: false,
        }
    }
}

/// One modality's items, coded both ways.
pub(crate) struct Prepared {
    pub(crate) modality: LinkModality,
    pub(crate) originals: Vec<Vec<u8>>,
    pub(crate) semantic: Vec<Item>,
    pub(crate) classical: Vec<Item>,
    /// Slowest legacy rate fitting the semantic item's airtime.
    pub(crate) classical_rate: Vec<Rate>,
    telemetry_opts: Option<TelemetryOptions>,
    /// zstd dictionary of the classical path (empty: none).
    pub(crate) dict: Vec<u8>,
    /// Sensor items only: true labels, and whether the classifier is right on the original.
    sensor: Option<SensorTruth>,
    /// Image items only: the pictures, the decoder and the PSNR figures.
    pub(crate) image: Option<ImageTruth>,
}

/// What decides a sensor item's meaning.
pub(crate) struct SensorTruth {
    labels: Vec<u8>,
    /// The classifier's class on the original window equals the label (the receiver of an
    /// intact window runs the same classifier).
    right_on_original: Vec<bool>,
}

impl Prepared {
    /// Whether the classical item `i`, decompressed to `bytes`, delivers its meaning.
    pub(crate) fn classical_meaning(&self, i: usize, bytes: &[u8]) -> bool {
        self.originals.get(i).is_some_and(|o| o.as_slice() == bytes)
            && self.sensor.as_ref().is_none_or(|s| s.right_on_original[i])
            && self.image.as_ref().is_none_or(|t| t.jpeg_psnr[i] >= t.threshold)
    }

    /// Accuracy of the classifier on the original windows (sensor items only).
    pub(crate) fn clean_accuracy(&self) -> Option<f64> {
        self.sensor.as_ref().map(|s| {
            s.right_on_original.iter().filter(|&&r| r).count() as f64 / s.right_on_original.len().max(1) as f64
        })
    }
}

/// Sensor windows and labels (0-based) of `--sensor DIR`'s test split or of the built-in sample.
fn sensor_windows(dir: Option<&Path>) -> Result<(Vec<Window>, Vec<u8>)> {
    if let Some(d) = dir {
        let (l, _) = crate::sensor::load_split(d, "test")?;
        return Ok((l.windows, l.labels));
    }
    let text = zstd::stream::decode_all(SAMPLE_SENSOR).context("built-in sensor sample")?;
    let windows = crate::sensor::parse_windows(std::str::from_utf8(&text).context("built-in sensor sample")?, false)?;
    let labels = SAMPLE_SENSOR_LABELS
        .lines()
        .map(|l| match l.trim().parse::<u8>() {
            Ok(v @ 1..=6) => Ok(v - 1),
            _ => bail!("built-in sensor labels: `{l}` is not 1 … 6"),
        })
        .collect::<Result<Vec<u8>>>()?;
    if labels.len() != windows.len() {
        bail!(
            "built-in sensor sample: {} windows, {} labels",
            windows.len(),
            labels.len()
        );
    }
    Ok((windows, labels))
}

/// One operating point of one path.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub(crate) modality: &'static str,
    pub(crate) channel: &'static str,
    pub(crate) snr_db: f64,
    pub(crate) path: &'static str,
    pub(crate) phy: String,
    pub(crate) items: usize,
    /// Items the link delivered whole.
    pub(crate) link_delivered: usize,
    /// Items with fragments missing.
    pub(crate) link_partial: usize,
    /// Of those, items the receiver showed with concealed parts (images).
    pub(crate) concealed: usize,
    /// Items of which nothing arrived.
    pub(crate) link_lost: usize,
    /// Items whose meaning arrived (decoded and equal to the original; images: within the
    /// PSNR threshold).
    pub(crate) meaning: usize,
    pub(crate) meaning_share: f64,
    /// Images: mean PSNR of what the receiver shows (a lost image as mid-grey), dB.
    pub(crate) psnr_db: Option<f64>,
    /// Text: bits per character of what the path sends (the item before the link: frame or
    /// zstd output), over all items.
    pub(crate) bits_per_char: Option<f64>,
    /// Mean item size before the link (codec output), bytes.
    pub(crate) payload_bytes: f64,
    /// Mean bytes on the air per item (link frames with headers, tags and FCS; QUIC: every
    /// datagram both ways, retransmissions included).
    pub(crate) wire_bytes: f64,
    /// Mean airtime per item, µs.
    pub(crate) airtime_us: f64,
    /// Mean latency of delivered items (start of transmission to completion), µs.
    pub(crate) latency_us: f64,
    /// Frames the receiver refused (security), all causes.
    pub(crate) refused_frames: u64,
}

pub(crate) fn model_path(p: &Path) -> PathBuf {
    if p.exists() || p.is_absolute() {
        return p.to_path_buf();
    }
    // From a fresh clone, `cargo run` may start elsewhere than the repository root.
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p);
    if fallback.exists() {
        fallback
    } else {
        p.to_path_buf()
    }
}

/// Lines of text or records.
type Lines = Vec<Vec<u8>>;

/// The items (the held-out part of each file) and the lines before them (training part).
fn lines_of(files: &[PathBuf], builtin: &str, held_out: f64) -> Result<(Lines, Lines)> {
    let (mut items, mut train) = (Vec::new(), Vec::new());
    if files.is_empty() {
        items.extend(builtin.lines().filter(|l| !l.is_empty()).map(|l| l.as_bytes().to_vec()));
        return Ok((items, train));
    }
    for f in files {
        let b = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let lines: Vec<Vec<u8>> = b
            .split(|&c| c == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        let cut = if held_out > 0.0 {
            ((lines.len() as f64) * (1.0 - held_out)).round() as usize
        } else {
            0
        };
        let cut = cut.min(lines.len());
        train.extend_from_slice(&lines[..cut]);
        items.extend_from_slice(&lines[cut..]);
    }
    Ok((items, train))
}

fn train_dict(a: &SimLinkArgs, train: &[Vec<u8>]) -> Result<Vec<u8>> {
    if !a.zstd_dict {
        return Ok(Vec::new());
    }
    if train.is_empty() {
        bail!("--zstd-dict needs training lines: give files and --held-out (e.g. 0.2)");
    }
    let total: usize = train.iter().map(Vec::len).sum();
    zstd::dict::from_samples(train, (total / 8).clamp(256, 112_640)).context("training the zstd dictionary")
}

/// zstd -19 of one item without header fields.
fn zstd_compressor(dict: &[u8]) -> Result<zstd::bulk::Compressor<'static>> {
    use zstd::zstd_safe::{CParameter, FrameFormat};
    let mut c = zstd::bulk::Compressor::with_dictionary(19, dict).context("zstd")?;
    c.set_parameter(CParameter::Format(FrameFormat::Magicless))?;
    c.set_parameter(CParameter::ChecksumFlag(false))?;
    c.set_parameter(CParameter::ContentSizeFlag(false))?;
    c.set_parameter(CParameter::DictIdFlag(false))?;
    Ok(c)
}

pub(crate) fn zstd_decompressor(dict: &[u8]) -> Result<zstd::bulk::Decompressor<'static>> {
    use zstd::zstd_safe::{DParameter, FrameFormat};
    let mut d = zstd::bulk::Decompressor::with_dictionary(dict).context("zstd")?;
    d.set_parameter(DParameter::Format(FrameFormat::Magicless))?;
    Ok(d)
}

/// The frame a semantic item travels in: modality, parameters, payload; no model id or CRC.
pub(crate) fn semantic_item(modality: Modality, params: Vec<u8>, payload: Vec<u8>) -> Item {
    let f = SemanticFrame {
        modality,
        model: None,
        params,
        segments: Vec::new(),
        payload,
        with_crc: false,
    };
    Item::new(ItemKind::Semantic, f.to_bytes())
}

fn classical_item(c: &mut zstd::bulk::Compressor<'_>, original: &[u8]) -> Result<Item> {
    let z = c.compress(original).context("zstd")?;
    Ok(if z.len() < original.len() {
        Item::new(ItemKind::Zstd, z)
    } else {
        Item::new(ItemKind::Raw, original.to_vec())
    })
}

fn link_config(a: &SimLinkArgs, phy: PhyMode) -> RadioItemLinkConfig {
    RadioItemLinkConfig {
        phy,
        max_fragment: a.max_fragment,
        ..Default::default()
    }
}

fn key(a: &SimLinkArgs) -> Option<LinkKey> {
    // A fixed key: the simulation measures the link, not key management.
    (!a.insecure).then(|| LinkKey::from_bytes([0x5e; 32]))
}

fn semantic_phy(a: &SimLinkArgs) -> Result<PhyMode> {
    let m0 = Mcs::from_name(&a.semantic_mcs)
        .with_context(|| format!("unknown MCS `{}` (e.g. bpsk-1/2, qpsk-3/4)", a.semantic_mcs))?;
    let d = RadioItemLinkConfig::default();
    let PhyMode::Semcom(mut m) = d.phy else {
        unreachable!("the default is the semcom profile")
    };
    m[0] = m0;
    Ok(PhyMode::Semcom(m))
}

fn prepare(a: &SimLinkArgs, prior: &Prior) -> Result<Vec<Prepared>> {
    let mut out = Vec::new();
    let sem_phy = semantic_phy(a)?;
    let mut scratch = RadioItemLink::new(SimRadio::new(Chain::new(), 20e6), key(a), link_config(a, sem_phy));
    let forced = a
        .classical_rate
        .map(|m| Rate::from_mbps(m).with_context(|| format!("--classical-rate {m}: not an 802.11a rate")))
        .transpose()?;
    for &m in &a.modalities {
        let mut sensor_truth = None;
        let mut images = None;
        let (originals, semantic, telemetry_opts, dict) = match m {
            LinkModality::Text => {
                let (mut items, train) = lines_of(&a.text, SAMPLE_TEXT, a.held_out)?;
                let dict = train_dict(a, &train)?;
                if a.limit > 0 && items.len() > a.limit {
                    // Evenly spaced, so that every file is represented.
                    let n = items.len();
                    items = (0..a.limit).map(|i| items[i * n / a.limit].clone()).collect();
                }
                let codec = TextCodec::new(prior).with_threads(a.threads);
                let sem = items
                    .iter()
                    .enumerate()
                    .map(|(i, t)| {
                        let p = codec
                            .encode_payload(t, TextKind::guess(t), None)
                            .with_context(|| format!("text item {i}"))?;
                        Ok(semantic_item(Modality::Text, Vec::new(), p))
                    })
                    .collect::<Result<Vec<_>>>()?;
                (items, sem, None, dict)
            }
            LinkModality::Telemetry => {
                let (mut items, train) = lines_of(&a.telemetry, SAMPLE_TELEMETRY, a.held_out)?;
                let dict = train_dict(a, &train)?;
                if a.limit > 0 {
                    items.truncate(a.limit);
                }
                let opts = TelemetryOptions {
                    resync: a.resync,
                    tolerances: Vec::new(),
                    dictionary: None,
                };
                let mut enc = TelemetryEncoder::new(prior, opts.clone());
                let mut sem = Vec::with_capacity(items.len());
                for (i, r) in items.iter().enumerate() {
                    let (seq, p) = enc.encode(r).with_context(|| format!("telemetry item {i}"))?;
                    let mut params = Vec::new();
                    put_varint(&mut params, seq);
                    sem.push(semantic_item(Modality::Telemetry, params, p));
                }
                (items, sem, Some(opts), dict)
            }
            LinkModality::Sensor => {
                let (mut windows, mut labels) = sensor_windows(a.sensor.as_deref())?;
                if a.limit > 0 && windows.len() > a.limit {
                    let n = windows.len();
                    windows = (0..a.limit).map(|i| windows[i * n / a.limit].clone()).collect();
                    labels = (0..a.limit).map(|i| labels[i * n / a.limit]).collect();
                }
                let model_file = model_path(&a.sensor_model);
                let model = SensorModel::load(&model_file)
                    .with_context(|| format!("loading the sensor model {}", a.sensor_model.display()))?;
                let mut sem = Vec::with_capacity(windows.len());
                let mut right = Vec::with_capacity(windows.len());
                for (i, (w, &l)) in windows.iter().zip(&labels).enumerate() {
                    let p = sensor::encode_event(&model, w).with_context(|| format!("sensor window {i}"))?;
                    right.push(Event::from_byte(p[0]).class == l);
                    sem.push(semantic_item(Modality::Sensor, Vec::new(), p));
                }
                sensor_truth = Some(SensorTruth {
                    labels,
                    right_on_original: right,
                });
                // The classical path sends the raw f32 window, as `semcom sim sensor` does.
                let raw = windows.iter().map(Window::to_le_bytes).collect();
                (raw, sem, None, Vec::new())
            }
            LinkModality::Image => {
                let mut im = crate::simlink_image::prepare(a, &mut scratch, sem_phy, forced)?;
                let jpegs = std::mem::take(&mut im.jpegs);
                let sem = std::mem::take(&mut im.semantic);
                images = Some(im);
                (jpegs, sem, None, Vec::new())
            }
        };
        if originals.is_empty() {
            bail!("no {m:?} items");
        }
        if let Some(im) = images {
            out.push(Prepared {
                modality: m,
                originals,
                semantic,
                classical: im.classical,
                classical_rate: im.rates,
                telemetry_opts: None,
                dict,
                sensor: None,
                image: Some(im.truth),
            });
            continue;
        }
        let mut zc = zstd_compressor(&dict)?;
        let classical = originals
            .iter()
            .map(|o| classical_item(&mut zc, o))
            .collect::<Result<Vec<_>>>()?;
        let mut classical_rate = Vec::with_capacity(originals.len());
        for (s, c) in semantic.iter().zip(&classical) {
            if let Some(r) = forced {
                classical_rate.push(r);
                continue;
            }
            let budget = scratch.airtime_us(s, sem_phy)?;
            let mut pick = Rate::R54;
            for r in LEGACY {
                if scratch.airtime_us(c, PhyMode::Legacy(r))? <= budget + 1e-9 {
                    pick = r;
                    break;
                }
            }
            classical_rate.push(pick);
        }
        out.push(Prepared {
            modality: m,
            originals,
            semantic,
            classical,
            classical_rate,
            telemetry_opts,
            dict,
            sensor: sensor_truth,
            image: None,
        });
    }
    Ok(out)
}

/// Which path a job runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PathKind {
    /// The codec's frames over the semcom profile.
    Semantic,
    /// zstd / JPEG over 802.11a.
    Classical,
    /// Analog image symbols on an analog frame.
    Analog,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Job {
    prep: usize,
    pub(crate) channel: LinkChannel,
    pub(crate) snr_db: f64,
    path: PathKind,
    pub(crate) index: u64,
}

/// Decoded text by payload (decoding is a pure function of the bytes; a cache saves the prior's
/// time when the same payload arrives at many SNRs).
type TextCache = Mutex<HashMap<Vec<u8>, Option<Vec<u8>>>>;

fn channel_for(a: &SimLinkArgs, ch: LinkChannel, snr_db: f64, power: f64, seed: u64) -> Result<Chain> {
    let mut c = Chain::new();
    if ch == LinkChannel::Rayleigh {
        c.push(Fading::new(
            FadingSpec::exponential(a.delay_spread, 0.0, 0.0),
            seed ^ 0xfade,
        )?);
    }
    c.push(Awgn::for_snr(snr_db, power, seed)?);
    Ok(c)
}

fn run_job(a: &SimLinkArgs, p: &Prepared, job: Job, prior: &Prior, cache: &TextCache) -> Result<Row> {
    if job.path == PathKind::Analog {
        let t = p.image.as_ref().context("analog jobs are for images")?;
        return crate::simlink_image::run_analog_job(a, t, job, p.modality.name());
    }
    let semantic = job.path == PathKind::Semantic;
    let sem_phy = semantic_phy(a)?;
    let power = burst_power(PhyMode::Legacy(Rate::R6))?;
    let first = channel_for(a, job.channel, job.snr_db, power, frame_seed(a.seed, job.index, 0))?;
    let k = key(a);
    let mut link = RadioItemLink::with_sealer(
        SimRadio::new(first, 20e6),
        Sealer::with_session(k.clone(), frame_seed(a.seed, job.index, u64::MAX)),
        Opener::new(k),
        link_config(a, sem_phy),
    );
    let items = if semantic { &p.semantic } else { &p.classical };
    let mut reports = Vec::new();
    let (mut wire, mut air) = (0usize, 0.0f64);
    for (i, it) in items.iter().enumerate() {
        if job.channel == LinkChannel::Rayleigh && i > 0 {
            let ch = channel_for(
                a,
                job.channel,
                job.snr_db,
                power,
                frame_seed(a.seed, job.index, i as u64),
            )?;
            link.phy_mut().radio_mut().set_channel(ch);
        }
        if !semantic {
            link.set_phy(PhyMode::Legacy(p.classical_rate[i]));
        }
        let r = link.send(it)?;
        wire += r.wire_bytes;
        air += r.airtime_us;
        reports.extend(link.poll()?);
    }
    reports.extend(link.finish()?);
    let stats = link.stats();
    let n = items.len();
    let mut got: Vec<Option<Vec<u8>>> = vec![None; n];
    let mut parts: Vec<Option<Vec<Option<Vec<u8>>>>> = vec![None; n];
    let (mut partial, mut lat, mut lat_n) = (0, 0.0, 0usize);
    for r in reports {
        let i = usize::from(r.id);
        if i >= n {
            continue;
        }
        match r.outcome {
            Outcome::Delivered(b) => {
                got[i] = Some(b);
                if let Some(l) = r.latency_us {
                    lat += l;
                    lat_n += 1;
                }
            }
            Outcome::Partial(f) => {
                partial += 1;
                parts[i] = Some(f);
            }
            Outcome::Lost => {}
        }
    }
    let delivered = got.iter().filter(|g| g.is_some()).count();
    let mut psnr_db = None;
    let mut concealed = 0;
    let meaning = if let Some(t) = &p.image {
        let mut sum = 0.0;
        let mut ok = 0;
        for (i, g) in got.iter().enumerate() {
            let v = if let (true, Some(f)) = (semantic, &parts[i]) {
                let (v, c) = t.partial_psnr(i, f, a.max_fragment);
                concealed += usize::from(c);
                v
            } else if semantic {
                t.semantic_psnr(i, &items[i].bytes, g.as_deref())
            } else {
                t.classical_psnr(i, g.as_deref() == Some(p.originals[i].as_slice()))
            };
            sum += v;
            ok += usize::from(v >= t.threshold);
        }
        psnr_db = Some(sum / n as f64);
        ok
    } else if semantic {
        decode_semantic(p, &got, prior, cache)?
    } else {
        let mut d = zstd_decompressor(&p.dict)?;
        got.iter()
            .zip(items)
            .enumerate()
            .filter(|(i, (g, it))| match g {
                Some(b) => match it.kind {
                    ItemKind::Zstd => d.decompress(b, 1 << 20).is_ok_and(|x| p.classical_meaning(*i, &x)),
                    _ => p.classical_meaning(*i, b),
                },
                None => false,
            })
            .count()
    };
    let phy = if semantic {
        format!("semcom {}", a.semantic_mcs)
    } else {
        let mut rates: Vec<u32> = p.classical_rate.iter().map(|r| r.mbps()).collect();
        rates.sort_unstable();
        rates.dedup();
        format!(
            "802.11a {} Mbit/s",
            rates.iter().map(u32::to_string).collect::<Vec<_>>().join("/")
        )
    };
    Ok(Row {
        modality: p.modality.name(),
        channel: job.channel.name(),
        snr_db: job.snr_db,
        path: if semantic { "semantic" } else { "classical" },
        phy,
        items: n,
        link_delivered: delivered,
        link_partial: partial,
        concealed,
        link_lost: n - delivered - partial,
        meaning,
        meaning_share: meaning as f64 / n as f64,
        psnr_db,
        bits_per_char: bits_per_char(p, items),
        payload_bytes: items.iter().map(|i| i.bytes.len()).sum::<usize>() as f64 / n as f64,
        wire_bytes: wire as f64 / n as f64,
        airtime_us: air / n as f64,
        latency_us: if lat_n > 0 { lat / lat_n as f64 } else { f64::NAN },
        refused_frames: stats.security.refused(),
    })
}

/// Text items: bits sent per character of the originals.
pub(crate) fn bits_per_char(p: &Prepared, items: &[Item]) -> Option<f64> {
    if p.modality != LinkModality::Text {
        return None;
    }
    let chars: usize = p
        .originals
        .iter()
        .map(|o| String::from_utf8_lossy(o).chars().count())
        .sum();
    let bits: usize = items.iter().map(|i| i.bytes.len() * 8).sum();
    (chars > 0).then(|| bits as f64 / chars as f64)
}

/// Items whose decoded meaning equals the original.
fn decode_semantic(p: &Prepared, got: &[Option<Vec<u8>>], prior: &Prior, cache: &TextCache) -> Result<usize> {
    let mut ok = 0;
    match p.modality {
        LinkModality::Text => {
            let codec = TextCodec::new(prior);
            for (g, orig) in got.iter().zip(&p.originals) {
                let Some(b) = g else { continue };
                let cached = cache
                    .lock()
                    .map_err(|_| anyhow::anyhow!("cache poisoned"))?
                    .get(b)
                    .cloned();
                let text = match cached {
                    Some(t) => t,
                    None => {
                        let t = SemanticFrame::from_bytes(b)
                            .ok()
                            .filter(|f| f.modality == Modality::Text)
                            .and_then(|f| codec.decode_payload(&f.payload, None).ok());
                        cache
                            .lock()
                            .map_err(|_| anyhow::anyhow!("cache poisoned"))?
                            .insert(b.clone(), t.clone());
                        t
                    }
                };
                ok += usize::from(text.as_deref() == Some(orig.as_slice()));
            }
        }
        LinkModality::Telemetry => {
            let opts = p.telemetry_opts.clone().context("telemetry options")?;
            let mut dec = TelemetryDecoder::new(prior, opts);
            for (g, orig) in got.iter().zip(&p.originals) {
                let Some(b) = g else { continue };
                let Ok(f) = SemanticFrame::from_bytes(b) else { continue };
                let Some((seq, _)) = get_varint(&f.params) else {
                    continue;
                };
                if let Ok(r) = dec.decode(seq, &f.payload) {
                    ok += usize::from(&r == orig);
                }
            }
        }
        LinkModality::Image => bail!("image items are scored by PSNR in run_job"),
        LinkModality::Sensor => {
            let truth = p.sensor.as_ref().context("sensor labels")?;
            for (g, &label) in got.iter().zip(&truth.labels) {
                let Some(b) = g else { continue };
                let Ok(f) = SemanticFrame::from_bytes(b) else { continue };
                // Event payloads decode without the model.
                if let (Modality::Sensor, Ok(Decoded::Event(e))) = (f.modality, sensor::decode(&f.payload, None, 0)) {
                    ok += usize::from(e.class == label);
                }
            }
        }
    }
    Ok(ok)
}

/// The SNR range where the semantic path delivers (≥ 90 % of the items' meaning) and the
/// classical path loses more than half: (from, to) of the longest run of grid points.
fn winning_range(sem: &[&Row], cla: &[&Row]) -> Option<(f64, f64)> {
    let mut best: Option<(f64, f64)> = None;
    let mut cur: Option<(f64, f64)> = None;
    for (s, c) in sem.iter().zip(cla) {
        if s.meaning_share >= DELIVERS && c.meaning_share < LOSES {
            cur = Some(cur.map_or((s.snr_db, s.snr_db), |(a, _)| (a, s.snr_db)));
            if best.is_none_or(|(a, b)| b - a < cur.unwrap().1 - cur.unwrap().0) {
                best = cur;
            }
        } else {
            cur = None;
        }
    }
    best
}

/// Lowest SNR from which a path keeps at least `share` of the items' meaning.
fn threshold(rows: &[&Row], share: f64) -> Option<f64> {
    let mut t = None;
    for r in rows.iter().rev() {
        if r.meaning_share >= share {
            t = Some(r.snr_db);
        } else {
            break;
        }
    }
    t
}

/// `--max-fragment`: 1 byte up to what one link frame in one PSDU can carry.
pub(crate) fn max_fragment(s: &str) -> Result<usize> {
    let v = units::at_least_one(s)?;
    if v > MAX_FRAGMENT {
        bail!("{v} bytes: a fragment's link frame must fit one PSDU (at most {MAX_FRAGMENT} bytes of data)");
    }
    Ok(v)
}

pub fn run(a: SimLinkArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let model = model_path(&a.model);
    if !model.exists() {
        bail!("model file {} does not exist (pass --model)", a.model.display());
    }
    let prior = Prior::load(&model)?;
    if !(0.0..1.0).contains(&a.held_out) {
        bail!("--held-out {}: a fraction, 0 … 1", a.held_out);
    }
    let preps = prepare(&a, &prior)?;
    let mut jobs = Vec::new();
    for (pi, p) in preps.iter().enumerate() {
        let analog = p.image.as_ref().is_some_and(|t| t.has_analog());
        for &channel in &a.channels {
            for &snr_db in &a.snr.0 {
                for path in [PathKind::Semantic, PathKind::Classical, PathKind::Analog] {
                    if path == PathKind::Analog && !analog {
                        continue;
                    }
                    let index = jobs.len() as u64;
                    jobs.push(Job {
                        prep: pi,
                        channel,
                        snr_db,
                        path,
                        index,
                    });
                }
            }
        }
    }
    eprintln!(
        "coded {} items in {:.1} s; simulating {} operating points",
        preps.iter().map(|p| p.originals.len()).sum::<usize>(),
        started.elapsed().as_secs_f64(),
        jobs.len()
    );
    let n_radio = jobs.len();
    let cache: TextCache = Mutex::new(HashMap::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Row>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..a.threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&job) = jobs.get(i) else { break };
                let r = run_job(&a, &preps[job.prep], job, &prior, &cache);
                if let Ok(mut v) = results.lock() {
                    v.push((i, r));
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a simulation thread panicked"))?;
    results.sort_by_key(|r| r.0);
    let _ = n_radio;
    let mut rows: Vec<Row> = results.into_iter().map(|(_, r)| r).collect::<Result<_>>()?;
    if let Some(q) = &a.quic_snr {
        // One point at a time: each runs a QUIC server, an emulator and a client.
        for (pi, p) in preps.iter().enumerate() {
            for &channel in &a.channels {
                for &snr_db in &q.0 {
                    rows.push(crate::simlink_quic::run_quic_point(&a, p, pi, channel, snr_db)?);
                    eprintln!("QUIC {:?} {} {snr_db} dB done", p.modality, channel.name());
                }
            }
        }
    }
    write_outputs(&a, &preps, &rows, started.elapsed().as_secs_f64())
}

fn write_outputs(a: &SimLinkArgs, preps: &[Prepared], rows: &[Row], secs: f64) -> Result<()> {
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    // CSV
    let mut csv = String::from(
        "modality,channel,snr_db,path,phy,items,link_delivered,link_partial,concealed,link_lost,meaning,meaning_share,psnr_db,bits_per_char,payload_bytes,wire_bytes,airtime_us,latency_us,refused_frames\n",
    );
    for r in rows {
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{:.4},{},{},{:.1},{:.1},{:.1},{:.1},{}\n",
            r.modality,
            r.channel,
            r.snr_db,
            r.path,
            r.phy,
            r.items,
            r.link_delivered,
            r.link_partial,
            r.concealed,
            r.link_lost,
            r.meaning,
            r.meaning_share,
            r.psnr_db.map_or(String::new(), |v| format!("{v:.2}")),
            r.bits_per_char.map_or(String::new(), |v| format!("{v:.3}")),
            r.payload_bytes,
            r.wire_bytes,
            r.airtime_us,
            r.latency_us,
            r.refused_frames
        );
    }
    let csv_path = a.out.join("link.csv");
    std::fs::write(&csv_path, csv).with_context(|| format!("writing {}", csv_path.display()))?;
    // Summary
    let mut summary = String::new();
    let rule = match a.classical_rate {
        Some(m) => format!("at {m} Mbit/s (--classical-rate: NOT at equal airtime)"),
        None => "at the slowest 802.11a rate that fits the same airtime".to_string(),
    };
    summary += &format!(
        "Semantic vs classical {}: semantic = semcom profile {} (LDPC), classical = zstd -19{} {rule}; {} link frames; SNR {} … {} dB.\n\n",
        if a.classical_rate.is_some() { "per item" } else { "at equal airtime per item" },
        a.semantic_mcs,
        if a.zstd_dict { " with a dictionary trained on the files' training part" } else { "" },
        if a.insecure { "unsealed" } else { "ChaCha20-Poly1305-sealed" },
        a.snr.0.first().copied().unwrap_or(0.0),
        a.snr.0.last().copied().unwrap_or(0.0),
    );
    summary += "| modality | channel | items | semantic bytes/item (wire) | classical bytes/item (wire) | airtime semantic / classical, µs | semantic ≥ 90 % from | classical ≥ 90 % from | semantic ≥ 90 % and classical < 50 % | width |\n";
    summary += "|---|---|---:|---:|---:|---:|---:|---:|---|---:|\n";
    let mut json_summary = Vec::new();
    let mut notes = String::new();
    for (p, sem_path) in preps.iter().flat_map(|p| [(p, "semantic"), (p, "analog")]) {
        let m = p.modality.name();
        let label = if sem_path == "analog" {
            format!("{m} (analog)")
        } else {
            m.to_string()
        };
        for &ch in &a.channels {
            let sem: Vec<&Row> = rows
                .iter()
                .filter(|r| r.modality == m && r.channel == ch.name() && r.path == sem_path)
                .collect();
            let cla: Vec<&Row> = rows
                .iter()
                .filter(|r| r.modality == m && r.channel == ch.name() && r.path == "classical")
                .collect();
            let (Some(s0), Some(c0)) = (sem.first(), cla.first()) else {
                continue;
            };
            let range = winning_range(&sem, &cla);
            let fmt_t = |t: Option<f64>| t.map_or("—".to_string(), |v| format!("{v} dB"));
            let (range_s, width) = match range {
                Some((lo, hi)) => (format!("{lo} … {hi} dB"), hi - lo),
                None => ("none".to_string(), 0.0),
            };
            let bytes = if sem_path == "analog" {
                "— (analog)".to_string()
            } else {
                format!("{:.1} ({:.1})", s0.payload_bytes, s0.wire_bytes)
            };
            summary += &format!(
                "| {label} | {} | {} | {bytes} | {:.1} ({:.1}) | {:.0} / {:.0} | {} | {} | {} | {:.1} dB |\n",
                ch.name(),
                s0.items,
                c0.payload_bytes,
                c0.wire_bytes,
                s0.airtime_us,
                c0.airtime_us,
                fmt_t(threshold(&sem, DELIVERS)),
                fmt_t(threshold(&cla, DELIVERS)),
                range_s,
                width
            );
            if let Some(r) = a.classical_rate {
                notes += &format!(
                    "- {label}, {}: the classical items go at {r} Mbit/s (--classical-rate) with {:.1}× the {sem_path} airtime.\n",
                    ch.name(),
                    c0.airtime_us / s0.airtime_us
                );
            } else if sem_path == "analog" {
                notes += &format!(
                    "- {label}, {}: the classical items get the digital items' airtime, {:.2}× the analog frames' (in the classical path's favour).\n",
                    ch.name(),
                    c0.airtime_us / s0.airtime_us
                );
            } else if c0.airtime_us > s0.airtime_us * 1.001 {
                notes += &format!(
                    "- {label}, {}: the classical items take {:.2}× the {sem_path} airtime on average (some do not fit it even at 54 Mbit/s: not equal airtime, in the classical path's favour).\n",
                    ch.name(),
                    c0.airtime_us / s0.airtime_us
                );
            }
            json_summary.push(serde_json::json!({
                "modality": m,
                "path": sem_path,
                "channel": ch.name(),
                "items": s0.items,
                "semantic_payload_bytes": s0.payload_bytes,
                "semantic_wire_bytes": s0.wire_bytes,
                "classical_payload_bytes": c0.payload_bytes,
                "classical_wire_bytes": c0.wire_bytes,
                "semantic_airtime_us": s0.airtime_us,
                "classical_airtime_us": c0.airtime_us,
                "classical_phy": c0.phy,
                "semantic_90_from_db": threshold(&sem, DELIVERS),
                "classical_90_from_db": threshold(&cla, DELIVERS),
                "winning_range_db": range.map(|(l, h)| [l, h]),
                "winning_width_db": width,
                "clean_accuracy": p.clean_accuracy(),
                "psnr_db": sem.iter().map(|r| (r.snr_db, r.psnr_db)).collect::<Vec<_>>(),
                "classical_psnr_db": cla.iter().map(|r| (r.snr_db, r.psnr_db)).collect::<Vec<_>>(),
            }));
        }
    }
    for p in preps {
        if let Some(acc) = p.clean_accuracy() {
            notes += &format!(
                "- sensor: meaning delivered = the activity class at the receiver equals the true label (accuracy): the event byte's class on the semantic path, the same classifier on the intact window on the classical path. The classifier's accuracy on the original windows, {:.1} %, is the ceiling of both paths.\n",
                acc * 100.0
            );
        }
    }
    for p in preps {
        let bpc = |path: &str| {
            rows.iter()
                .find(|r| r.modality == p.modality.name() && r.path == path)
                .and_then(|r| r.bits_per_char)
        };
        if let (Some(s), Some(c)) = (bpc("semantic"), bpc("classical")) {
            notes += &format!(
                "- text: {s:.2} bits per character on the semantic path (frame with header), {c:.2} on the classical path (zstd -19{}).\n",
                if a.zstd_dict { " with a dictionary" } else { "" }
            );
        }
        if let Some(t) = &p.image {
            notes += &crate::simlink_image::summary_note(a, t, &p.classical_rate);
        }
    }
    if !notes.is_empty() {
        summary += "\n";
        summary += &notes;
    }
    let quic: Vec<&Row> = rows.iter().filter(|r| r.path == "classical-quic").collect();
    if !quic.is_empty() {
        summary += "\nClassical path over QUIC through the emulator (loss = the PHY's at the SNR, per datagram; retransmissions included):\n\n";
        summary += "| modality | channel | SNR | phy | delivered | airtime per item, µs | × the semantic airtime | latency, ms |\n|---|---|---:|---|---:|---:|---:|---:|\n";
        for q in &quic {
            let sem = rows
                .iter()
                .find(|r| r.path == "semantic" && r.modality == q.modality && r.channel == q.channel)
                .map_or(f64::NAN, |r| r.airtime_us);
            let latency = if q.latency_us.is_finite() {
                format!("{:.1}", q.latency_us / 1e3)
            } else {
                "—".to_string()
            };
            summary += &format!(
                "| {} | {} | {} dB | {} | {:.0} % | {:.0} | {:.1} | {latency} |\n",
                q.modality,
                q.channel,
                q.snr_db,
                q.phy,
                q.meaning_share * 100.0,
                q.airtime_us,
                q.airtime_us / sem,
            );
        }
    }
    summary += &format!(
        "\nMeaning delivered = decoded item identical to the original (text exact; telemetry lossless, so inside any tolerance; sensor: activity class right; image: PSNR at the receiver ≥ the threshold, a lost image shown as mid-grey). Computed in {secs:.0} s.\n"
    );
    let sum_path = a.out.join("summary.md");
    std::fs::write(&sum_path, &summary).with_context(|| format!("writing {}", sum_path.display()))?;
    // JSON
    let json = serde_json::json!({
        "settings": {
            "semantic_mcs": a.semantic_mcs,
            "classical_rate_mbps": a.classical_rate,
            "insecure": a.insecure,
            "seed": a.seed,
            "resync": a.resync,
            "zstd_dictionary": a.zstd_dict,
            "held_out": a.held_out,
            "delay_spread_samples": a.delay_spread,
        },
        "summary": json_summary,
        "rows": rows,
    });
    let json_path = a.out.join("link.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    // Plots: share of items whose meaning was lost, per channel.
    let mut plots = Vec::new();
    for &ch in &a.channels {
        let mut series = Vec::new();
        for p in preps {
            let m = p.modality.name();
            for path in ["semantic", "analog", "classical", "classical-quic"] {
                if !rows.iter().any(|r| r.path == path && r.modality == m) {
                    continue;
                }
                series.push(Series {
                    name: format!("{m}, {path}"),
                    points: rows
                        .iter()
                        .filter(|r| r.modality == m && r.channel == ch.name() && r.path == path)
                        .map(|r| (r.snr_db, 1.0 - r.meaning_share))
                        .collect(),
                    dashed: path == "classical" || path == "classical-quic",
                });
            }
        }
        let png = a.out.join(format!("link-{}.png", ch.name()));
        log_curves(
            &png,
            &format!("Items whose meaning was lost, {} (equal airtime per item)", ch.name()),
            "SNR (dB)",
            "share of items lost",
            &series,
        )?;
        plots.push(png);
    }
    print!("{summary}");
    eprintln!(
        "wrote {}, {}, {} and {}",
        csv_path.display(),
        json_path.display(),
        sum_path.display(),
        plots
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if a.json {
        println!("{}", serde_json::to_string(&json)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(snr: f64, share: f64) -> Row {
        Row {
            modality: "text",
            channel: "awgn",
            snr_db: snr,
            path: "semantic",
            phy: String::new(),
            items: 10,
            link_delivered: 0,
            link_partial: 0,
            concealed: 0,
            link_lost: 0,
            meaning: 0,
            meaning_share: share,
            psnr_db: None,
            bits_per_char: None,
            payload_bytes: 0.0,
            wire_bytes: 0.0,
            airtime_us: 0.0,
            latency_us: 0.0,
            refused_frames: 0,
        }
    }

    #[test]
    fn winning_range_is_the_longest_run() {
        let sem: Vec<Row> = [0.2, 0.95, 0.95, 1.0, 0.3, 1.0, 1.0]
            .iter()
            .enumerate()
            .map(|(i, &s)| row(i as f64, s))
            .collect();
        let cla: Vec<Row> = [0.0, 0.0, 0.4, 0.45, 0.0, 0.2, 0.9]
            .iter()
            .enumerate()
            .map(|(i, &s)| row(i as f64, s))
            .collect();
        let s: Vec<&Row> = sem.iter().collect();
        let c: Vec<&Row> = cla.iter().collect();
        assert_eq!(winning_range(&s, &c), Some((1.0, 3.0)));
        assert_eq!(threshold(&s, 0.9), Some(5.0));
        assert_eq!(threshold(&c, 0.9), Some(6.0));
    }

    #[test]
    fn built_in_samples_are_there() {
        assert_eq!(SAMPLE_TEXT.lines().count(), 40);
        assert!(SAMPLE_TELEMETRY.lines().count() >= 64);
        assert!(SAMPLE_TELEMETRY.lines().all(|l| l.starts_with('{') && l.ends_with('}')));
        let (w, l) = sensor_windows(None).unwrap();
        assert_eq!((w.len(), l.len()), (48, 48));
        assert!(w.iter().all(|w| (w.channels(), w.len()) == (9, 128)));
        // Evenly spaced over the test split: every activity is there.
        assert!((0..6).all(|c| l.contains(&c)));
    }
}
