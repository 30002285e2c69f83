//! `semcom sim image`: images over the OFDM PHY at a channel-use budget, PSNR and MS-SSIM against
//! SNR.
//!
//! The budget: k complex channel uses per image, k/n = `--ratio`, n = the image's real sample
//! values / 2 (768 × 512 RGB at 1/16: k = 36 864). Both modes get the same airtime: that of an
//! analog frame of k symbols (preamble, L-SIG, 3 header symbols, ⌈k/48⌉ payload symbols; see
//! `semcom_phy::semcom`).
//!
//! - **analog**: an [`AnalogImageCodec`] maps the image to at most k symbols, which ride one analog
//!   semcom frame through the transmitter, the channel and the streaming receiver; the decoder
//!   gets the equalised symbols and the receiver's per-symbol SNR estimates.
//! - **jpeg**, the separated chain: the fastest 802.11a rate whose item loss, estimated from the
//!   PER measured through the PHY at that SNR and channel (`--rate-frames` frames of the largest
//!   PSDU the plan sends), stays at or below `--max-item-loss` (1 − (1 − PER)^m for m PSDUs); 6
//!   Mbit/s when no rate meets it. Then the largest JPEG quality (the `image` crate's encoder,
//!   1 … 100, binary search) whose file fits the octets that rate carries in the airtime, split
//!   into PSDUs of at most 4095 octets with FCS (inter-frame spaces not counted: in the chain's
//!   favour). If any PSDU fails, the item is lost; if even quality 1 does not fit, it is lost
//!   without being sent.
//!
//! A lost item is scored as a mid-grey image (every sample 0.5). Rayleigh: block fading with an
//! exponential power-delay profile (`--delay-spread`), one realisation per item (every PSDU of a
//! JPEG item sees the same one), as `semcom sim link` uses.

use crate::plot::{curves, Series};
use crate::units;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_codec::picture::{ms_ssim, psnr, Picture};
use semcom_phy::channel::{burst_power, Awgn, Chain, Fading, FadingSpec, Impairment, TimingOffset};
use semcom_phy::crc::append_fcs;
use semcom_phy::sim::{analog_burst_samples, frame_seed, FrameSim, Propagation, SimParams};
use semcom_phy::{Complex32, Rate, Receiver, RxEvent, Transmitter, TxParams};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// An analog (joint source-channel) image codec: what `--mode analog` runs.
pub trait AnalogImageCodec: Sync {
    /// A short name for reports.
    fn name(&self) -> String;
    /// The channel symbols for `pic` at bandwidth ratio `ratio` = (num, den): at most
    /// k = ⌊n · num / den⌋ of them, n = `pic.len() / 2`, average power at most 1. `snr_db` is the
    /// channel's nominal SNR (per sample), as a transmitter with feedback would know it; an
    /// SNR-agnostic encoder ignores it. Also returns the 7-bit parameter the analog frame's
    /// header carries for the codec.
    fn symbols(&self, pic: &Picture, ratio: (usize, usize), snr_db: f64) -> Result<(Vec<Complex32>, u8)>;
    /// The picture from the received, equalised symbols (as many as were sent, in order), the
    /// receiver's SNR estimate for each, dB, and the header's codec parameter.
    fn reconstruct(
        &self,
        rx: &[Complex32],
        snr_db: &[f32],
        param: u8,
        width: usize,
        height: usize,
        channels: usize,
    ) -> Result<Picture>;

    /// The picture from a received analog frame, the same size as `like` (the original).
    fn reconstruct_frame(&self, f: &semcom_phy::rx::AnalogRxFrame, like: &Picture) -> Result<Picture> {
        self.reconstruct(
            &f.symbols,
            &f.symbol_snr_db,
            f.header.param,
            like.width(),
            like.height(),
            like.channels(),
        )
    }
}

/// How images are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImageMode {
    /// JPEG at the best legacy 802.11a rate, same airtime (the separated baseline).
    Jpeg,
    /// Analog JSCC symbols on an analog semcom frame (needs a trained analog model).
    Analog,
}

/// Channel models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ImageChannel {
    /// White Gaussian noise only.
    Awgn,
    /// Block Rayleigh fading (exponential delay profile, one realisation per item) plus noise.
    Rayleigh,
}

/// A bandwidth ratio k/n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio(pub usize, pub usize);

/// Parses `NUM/DEN` (0 < NUM/DEN ≤ 1).
pub fn ratio(s: &str) -> Result<Ratio> {
    let Some((a, b)) = s.split_once('/') else {
        bail!("`{s}`: expected a ratio NUM/DEN such as 1/16");
    };
    let (a, b): (usize, usize) = (
        a.trim()
            .parse()
            .with_context(|| format!("`{s}`: `{a}` is not a whole number"))?,
        b.trim()
            .parse()
            .with_context(|| format!("`{s}`: `{b}` is not a whole number"))?,
    );
    if a == 0 || b == 0 || a > b {
        bail!("`{s}`: the ratio must be in (0, 1], e.g. 1/16");
    }
    Ok(Ratio(a, b))
}

#[derive(Args, Debug, Clone)]
pub struct SimImageArgs {
    /// Folder of PNG/JPEG images (other files are skipped; a .png/.jpg that does not decode is an
    /// error).
    #[arg(long)]
    data: PathBuf,
    /// How images are sent.
    #[arg(long, value_enum)]
    mode: ImageMode,
    /// SNR points in dB, A:STEP:B or a comma-separated list (per-sample SNR over the burst / noise power).
    #[arg(long, default_value = "0:2:20", value_parser = units::points, allow_hyphen_values = true)]
    snr: units::Points,
    /// Bandwidth ratio k/n, n = real sample values / 2.
    #[arg(long, default_value = "1/16", value_parser = ratio)]
    ratio: Ratio,
    /// Channel model.
    #[arg(long, value_enum, default_value_t = ImageChannel::Awgn)]
    channel: ImageChannel,
    /// RMS delay spread of the Rayleigh channel, samples (50 ns each).
    #[arg(long, default_value_t = 2.0, value_parser = crate::units::delay_spread)]
    delay_spread: f64,
    /// Use at most this many images (the first by file name); 0: all.
    #[arg(short = 'n', long, default_value_t = 0)]
    max_images: usize,
    /// Send every image this many times per SNR point, each through its own channel draw (noise,
    /// timing offset and, for Rayleigh, fading): more realisations, smoother means. The first
    /// realisation of each image is the one a single run sends.
    #[arg(long, default_value_t = 1)]
    realisations: usize,
    /// JPEG: frames per legacy rate for the PER that picks the rate.
    #[arg(long, default_value_t = 50)]
    rate_frames: u64,
    /// JPEG: the item loss the rate choice allows, 0 … 1.
    #[arg(long, default_value_t = 0.1)]
    max_item_loss: f64,
    /// Base seed: every item's channel derives from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, value_parser = crate::units::at_least_one)]
    threads: Option<usize>,
    /// The analog JSCC model (`--mode analog`).
    #[arg(long, default_value = "models/image-jscc.safetensors")]
    model: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write a plot of PSNR against SNR (PNG, or SVG by extension).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// Complex channel uses of `pic` at `ratio`: ⌊n · num / den⌋, n = real values / 2, at least 1.
pub fn channel_uses(pic: &Picture, ratio: Ratio) -> usize {
    (pic.len() * ratio.0 / (2 * ratio.1)).max(1)
}

/// The PSDU lengths (FCS included) a legacy `rate` sends within `budget` samples: as many
/// 4095-octet PSDUs as fit, then the longest that fits the rest (if it carries at least one
/// octet besides the FCS).
pub fn psdu_plan(rate: Rate, budget: usize) -> Vec<usize> {
    let max = semcom_phy::signal::MAX_PSDU_LEN;
    let full = Transmitter::packet_len(rate, max);
    let mut plan = vec![max; budget / full];
    let rest = budget - plan.len() * full;
    if let Some(len) = (5..max).rev().find(|&l| Transmitter::packet_len(rate, l) <= rest) {
        plan.push(len);
    }
    plan
}

/// The images of `dir` (PNG/JPEG by extension), sorted by name, at most `max` (0: all), with
/// the number of other files skipped.
pub fn load_images(dir: &Path, max: usize) -> Result<(Vec<(String, Picture)>, usize)> {
    let rd = std::fs::read_dir(dir).with_context(|| format!("cannot read the folder {}", dir.display()))?;
    let mut paths = Vec::new();
    let mut skipped = 0;
    for e in rd {
        let p = e.with_context(|| format!("listing {}", dir.display()))?.path();
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if p.is_file() && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
            paths.push(p);
        } else {
            skipped += 1;
        }
    }
    if paths.is_empty() {
        bail!("no PNG or JPEG images in {}", dir.display());
    }
    paths.sort();
    if max > 0 {
        paths.truncate(max);
    }
    let pics = paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            Ok((name, Picture::load(p)?))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((pics, skipped))
}

/// The largest JPEG quality (and its file) that fits `max_bytes`, by binary search (file size
/// grows with quality); `None` when quality 1 does not fit.
pub fn largest_quality(pic: &Picture, max_bytes: usize) -> Result<JpegFile> {
    let one = pic.to_jpeg(1)?;
    if one.len() > max_bytes {
        return Ok(None);
    }
    let (mut best, mut lo, mut hi) = ((1u8, one), 2u8, 100u8);
    while lo <= hi {
        let q = lo + (hi - lo) / 2;
        let f = pic.to_jpeg(q)?;
        if f.len() <= max_bytes {
            best = (q, f);
            lo = q + 1;
        } else {
            hi = q - 1;
        }
    }
    Ok(Some(best))
}

/// One image at one SNR.
#[derive(Clone, Debug, Serialize)]
pub struct ItemResult {
    pub image: String,
    pub snr_db: f64,
    pub psnr_db: f64,
    pub ms_ssim: f64,
    /// The item did not arrive (scored as mid-grey).
    pub lost: bool,
    /// JPEG: even quality 1 did not fit, nothing was sent (also `lost`).
    pub not_sent: bool,
    /// Complex channel uses of the budget (k).
    pub channel_uses: usize,
    /// Airtime of the budget, µs (20 MS/s).
    pub airtime_us: f64,
    /// JPEG: the legacy rate, Mbit/s.
    pub rate_mbps: Option<u32>,
    /// JPEG: whether that rate met the loss target (else it is 6 Mbit/s, the most robust).
    pub rate_target_met: Option<bool>,
    /// JPEG: quality and file size.
    pub quality: Option<u8>,
    pub bytes: Option<usize>,
}

fn propagation(a: &SimImageArgs) -> Propagation {
    match a.channel {
        ImageChannel::Awgn => Propagation::Awgn,
        ImageChannel::Rayleigh => Propagation::Fading(FadingSpec::exponential(a.delay_spread, 0.0, 0.0)),
    }
}

/// The legacy rate for the JPEG chain at `snr` within `budget` samples (see the module docs), and
/// whether it met the loss target.
fn choose_rate(a: &SimImageArgs, point: u64, snr: f64, budget: usize) -> Result<(Rate, bool)> {
    let mut sim = FrameSim::new();
    for rate in Rate::ALL.into_iter().rev() {
        let plan = psdu_plan(rate, budget);
        let Some(&len) = plan.first() else { continue };
        let per_max = 1.0 - (1.0 - a.max_item_loss).powf(1.0 / plan.len() as f64);
        let allowed = (per_max * a.rate_frames as f64).floor() as u64;
        let p = SimParams {
            propagation: propagation(a),
            ..SimParams::awgn(rate, len, snr)
        };
        let mut failures = 0;
        for i in 0..a.rate_frames {
            let seed = frame_seed(a.seed ^ 0x7a7e, point * 8 + u64::from(rate.mbps()), i);
            failures += u64::from(!sim.run(&p, seed, false)?.delivered);
            if failures > allowed {
                break;
            }
        }
        if failures <= allowed {
            return Ok((rate, true));
        }
    }
    Ok((Rate::R6, false))
}

/// The channel of one item: block fading (one realisation, from `item_seed`), a fractional
/// timing offset, AWGN at `snr` over the burst's power.
fn item_channel(a: &SimImageArgs, item_seed: u64, snr: f64, power: f64, noise_seed: u64) -> Result<Chain> {
    let mut c = Chain::new();
    if a.channel == ImageChannel::Rayleigh {
        c.push(Fading::new(
            FadingSpec::exponential(a.delay_spread, 0.0, 0.0),
            item_seed ^ 0xfade,
        )?);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(noise_seed);
    c.push(TimingOffset::new(rng.random_range(0.0..1.0), 0.0)?);
    c.push(Awgn::for_snr(snr, power, rng.random())?);
    Ok(c)
}

/// Sends `file` as PSDUs at `rate` through the channel and receiver; true when every PSDU
/// arrived intact.
fn send_jpeg(a: &SimImageArgs, file: &[u8], rate: Rate, snr: f64, item_seed: u64) -> Result<bool> {
    let mut tx = Transmitter::new();
    let mut rx = Receiver::default();
    let body = semcom_phy::signal::MAX_PSDU_LEN - 4;
    for (i, chunk) in file.chunks(body).enumerate() {
        let mut psdu = chunk.to_vec();
        append_fcs(&mut psdu);
        let mut sig = vec![Complex32::new(0.0, 0.0); 300];
        let params = TxParams {
            rate,
            scrambler_seed: (i % 127 + 1) as u8,
        };
        let n = tx.transmit(&psdu, &params, &mut sig)?;
        let power = burst_power(&sig[300..300 + n]);
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 400));
        let mut ch = item_channel(a, item_seed, snr, power, frame_seed(item_seed, 1, i as u64))?;
        let mut samples = Vec::with_capacity(sig.len() + 64);
        ch.process(&sig, &mut samples);
        rx.reset();
        let ok = rx
            .decode_all(&samples)
            .iter()
            .any(|e| matches!(e, RxEvent::Frame(f) if f.fcs_ok && f.psdu == psdu));
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A JPEG quality and its file, `None` when even quality 1 does not fit.
type JpegFile = Option<(u8, Vec<u8>)>;

struct Prepared {
    images: Vec<(String, Picture)>,
    /// JPEG: per (SNR point, budget), the rate and whether it met the target.
    rates: HashMap<(usize, usize), (Rate, bool)>,
}

/// Runs every image at every SNR point; `codec` serves `--mode analog`.
pub fn simulate(a: &SimImageArgs, codec: Option<&dyn AnalogImageCodec>) -> Result<Vec<ItemResult>> {
    if a.mode == ImageMode::Analog && codec.is_none() {
        bail!(
            "no analog image model: `--mode analog` needs a trained analog JSCC model (semcom_codec::image), \
             which this build does not have; use --mode jpeg"
        );
    }
    if !(0.0..=1.0).contains(&a.max_item_loss) {
        bail!("--max-item-loss must be within 0 … 1");
    }
    if a.rate_frames == 0 {
        bail!("--rate-frames must be at least 1");
    }
    if !(1..=1000).contains(&a.realisations) {
        bail!("--realisations must be within 1 … 1000");
    }
    let (images, _) = load_images(&a.data, a.max_images)?;
    let snr = &a.snr.0;
    let threads = a
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let budget = |p: &Picture| analog_burst_samples(channel_uses(p, a.ratio));
    let mut rates = HashMap::new();
    if a.mode == ImageMode::Jpeg {
        let mut keys: Vec<(usize, usize)> = (0..snr.len())
            .flat_map(|i| images.iter().map(move |(_, p)| (i, p)))
            .map(|(i, p)| (i, budget(p)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let found = parallel(threads, keys.len(), |j| {
            let (i, b) = keys[j];
            choose_rate(a, i as u64, snr[i], b)
        })?;
        rates = keys.into_iter().zip(found).collect();
    }
    let prep = Prepared { images, rates };
    let n_img = prep.images.len();
    // JPEG files by (image, rate): they do not depend on the SNR.
    let files: Mutex<HashMap<(usize, u32), JpegFile>> = Mutex::new(HashMap::new());
    let per_point = n_img * a.realisations;
    parallel(threads, snr.len() * per_point, |job| {
        let (point, item) = (job / per_point, job % per_point);
        let img = item % n_img;
        let (name, pic) = &prep.images[img];
        let k = channel_uses(pic, a.ratio);
        let air = budget(pic);
        // Realisation r of image i is item i + r·n: realisation 0 is what a single run sends.
        let item_seed = frame_seed(a.seed, point as u64, item as u64);
        let mut r = ItemResult {
            image: name.clone(),
            snr_db: snr[point],
            psnr_db: f64::NAN,
            ms_ssim: f64::NAN,
            lost: true,
            not_sent: false,
            channel_uses: k,
            airtime_us: air as f64 / 20.0,
            rate_mbps: None,
            rate_target_met: None,
            quality: None,
            bytes: None,
        };
        let got = match (a.mode, codec) {
            (ImageMode::Analog, Some(codec)) => {
                let (sy, param) = codec.symbols(pic, (a.ratio.0, a.ratio.1), snr[point])?;
                if sy.len() > k {
                    bail!("{}: {} symbols for a budget of {k}", codec.name(), sy.len());
                }
                let p = SimParams {
                    propagation: propagation(a),
                    ..SimParams::awgn(Rate::R6, 4, snr[point])
                };
                let o = FrameSim::new().run_analog_param(&p, &sy, param, item_seed)?;
                match o.frame {
                    Some(f) => Some(codec.reconstruct_frame(&f, pic)?),
                    None => None,
                }
            }
            _ => {
                let (rate, met) = prep.rates[&(point, air)];
                r.rate_mbps = Some(rate.mbps());
                r.rate_target_met = Some(met);
                let capacity: usize = psdu_plan(rate, air).iter().map(|l| l - 4).sum();
                let cached = files
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .get(&(img, rate.mbps()))
                    .cloned();
                let file = match cached {
                    Some(f) => f,
                    None => {
                        let f = largest_quality(pic, capacity)?;
                        files
                            .lock()
                            .map_err(|_| anyhow::anyhow!("poisoned"))?
                            .insert((img, rate.mbps()), f.clone());
                        f
                    }
                };
                match file {
                    None => {
                        r.not_sent = true;
                        None
                    }
                    Some((q, bytes)) => {
                        r.quality = Some(q);
                        r.bytes = Some(bytes.len());
                        if send_jpeg(a, &bytes, rate, snr[point], item_seed)? {
                            Some(Picture::from_bytes(&bytes)?)
                        } else {
                            None
                        }
                    }
                }
            }
        };
        r.lost = got.is_none();
        let shown = match got {
            Some(p) => p,
            None => Picture::grey(pic.width(), pic.height(), pic.channels())?,
        };
        r.psnr_db = psnr(pic, &shown)?;
        r.ms_ssim = ms_ssim(pic, &shown)?;
        Ok(r)
    })
}

/// `f(0 … n−1)` on `threads` threads, results in order; the first error wins.
fn parallel<T: Send>(threads: usize, n: usize, f: impl Fn(usize) -> Result<T> + Sync) -> Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<Result<T>>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.min(n).max(1) {
            s.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                if j >= n {
                    break;
                }
                let r = f(j);
                let failed = r.is_err();
                out.lock().unwrap_or_else(|e| e.into_inner())[j] = Some(r);
                if failed {
                    next.store(n, Ordering::Relaxed);
                }
            });
        }
    });
    let mut vals = Vec::with_capacity(n);
    let mut missing = false;
    for r in out.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match r {
            Some(Ok(v)) => vals.push(v),
            Some(Err(e)) => return Err(e),
            None => missing = true,
        }
    }
    if missing {
        bail!("a simulation job did not run");
    }
    Ok(vals)
}

/// Means per SNR point.
#[derive(Clone, Debug, Serialize)]
struct Point {
    snr_db: f64,
    items: usize,
    psnr_db: f64,
    ms_ssim: f64,
    lost: usize,
    not_sent: usize,
    /// Items sent whose frames failed (lost − not sent).
    failed: usize,
    channel_uses: f64,
    airtime_us: f64,
    rates_mbps: Vec<u32>,
    rate_target_met: Option<bool>,
    quality: Option<f64>,
    bytes: Option<f64>,
}

fn summarise(a: &SimImageArgs, rows: &[ItemResult]) -> Vec<Point> {
    a.snr
        .0
        .iter()
        .map(|&s| {
            let r: Vec<&ItemResult> = rows.iter().filter(|r| r.snr_db == s).collect();
            let n = r.len().max(1) as f64;
            let mean = |f: &dyn Fn(&ItemResult) -> f64| r.iter().map(|x| f(x)).sum::<f64>() / n;
            let sent: Vec<&&ItemResult> = r.iter().filter(|x| x.quality.is_some()).collect();
            let mut rates_mbps: Vec<u32> = r.iter().filter_map(|x| x.rate_mbps).collect();
            rates_mbps.sort_unstable();
            rates_mbps.dedup();
            let met: Vec<bool> = r.iter().filter_map(|x| x.rate_target_met).collect();
            Point {
                snr_db: s,
                items: r.len(),
                psnr_db: mean(&|x| x.psnr_db),
                ms_ssim: mean(&|x| x.ms_ssim),
                lost: r.iter().filter(|x| x.lost).count(),
                not_sent: r.iter().filter(|x| x.not_sent).count(),
                failed: r.iter().filter(|x| x.lost && !x.not_sent).count(),
                channel_uses: mean(&|x| x.channel_uses as f64),
                airtime_us: mean(&|x| x.airtime_us),
                rates_mbps,
                rate_target_met: (!met.is_empty()).then(|| met.iter().all(|&m| m)),
                quality: (!sent.is_empty())
                    .then(|| sent.iter().map(|x| f64::from(x.quality.unwrap_or(0))).sum::<f64>() / sent.len() as f64),
                bytes: (!sent.is_empty())
                    .then(|| sent.iter().map(|x| x.bytes.unwrap_or(0) as f64).sum::<f64>() / sent.len() as f64),
            }
        })
        .collect()
}

pub fn run(a: SimImageArgs) -> Result<()> {
    if a.mode == ImageMode::Analog {
        let model = crate::image::Jscc(semcom_codec::image::AnalogJscc::load(&a.model)?);
        return run_with(a, Some(&model));
    }
    run_with(a, None)
}

/// The command with an analog codec (the learned model, once it exists, or a test codec).
pub fn run_with(a: SimImageArgs, codec: Option<&dyn AnalogImageCodec>) -> Result<()> {
    let t0 = std::time::Instant::now();
    let rows = simulate(&a, codec)?;
    let points = summarise(&a, &rows);
    let mode = match (a.mode, codec) {
        (ImageMode::Jpeg, _) => "jpeg + 802.11a".to_string(),
        (ImageMode::Analog, Some(c)) => format!("analog ({})", c.name()),
        (ImageMode::Analog, None) => "analog".to_string(),
    };
    let channel = match a.channel {
        ImageChannel::Awgn => "awgn".to_string(),
        ImageChannel::Rayleigh => format!("block rayleigh (rms delay {} samples)", a.delay_spread),
    };
    let lost_rule = "a lost item is scored as a mid-grey image (every sample 0.5)";
    if a.json {
        println!(
            "{}",
            serde_json::json!({"mode": mode, "channel": channel, "ratio": format!("{}/{}", a.ratio.0, a.ratio.1),
                "seed": a.seed, "data": a.data.display().to_string(), "lost_items": lost_rule,
                "rate_rule": format!("fastest 802.11a rate with estimated item loss 1-(1-PER)^m <= {} ({} frames of the largest PSDU per rate); 6 Mbit/s when none", a.max_item_loss, a.rate_frames),
                "snr_definition": "per-sample signal power over the burst / noise power",
                "seconds": t0.elapsed().as_secs_f64(), "points": points, "items": rows})
        );
    } else {
        println!(
            "{mode}, {channel}, k/n = {}/{}, {} images; {lost_rule}",
            a.ratio.0,
            a.ratio.1,
            rows.len() / a.snr.0.len().max(1)
        );
        if a.mode == ImageMode::Jpeg {
            println!(
                "rate: the fastest 802.11a rate whose item loss 1 − (1 − PER)^m ≤ {} ({} frames per rate); \
                 6 Mbit/s when none (marked *); then the largest JPEG quality that fits",
                a.max_item_loss, a.rate_frames
            );
        }
        println!(
            "{:>7} {:>9} {:>8} {:>9} {:>9} {:>8} {:>6} {:>9} {:>7} {:>9} {:>11}",
            "SNR dB", "PSNR dB", "MS-SSIM", "rate", "quality", "bytes", "lost", "not sent", "failed", "k", "airtime µs"
        );
        for p in &points {
            let rate = if p.rates_mbps.is_empty() {
                "-".into()
            } else {
                let star = if p.rate_target_met == Some(false) { "*" } else { "" };
                let r = p.rates_mbps.iter().map(u32::to_string).collect::<Vec<_>>().join("/");
                format!("{r}{star}")
            };
            println!(
                "{:>7.1} {:>9.2} {:>8.4} {:>9} {:>9} {:>8} {:>6} {:>9} {:>7} {:>9.0} {:>11.1}",
                p.snr_db,
                p.psnr_db,
                p.ms_ssim,
                rate,
                p.quality.map_or("-".into(), |q| format!("{q:.1}")),
                p.bytes.map_or("-".into(), |b| format!("{b:.0}")),
                format!("{}/{}", p.lost, p.items),
                p.not_sent,
                p.failed,
                p.channel_uses,
                p.airtime_us
            );
        }
        println!("({:.1} s)", t0.elapsed().as_secs_f64());
    }
    if let Some(path) = &a.plot {
        let title = format!("{mode}, {channel}, k/n = {}/{}", a.ratio.0, a.ratio.1);
        let series = vec![Series {
            name: format!("{mode}: mean PSNR (lost items as mid-grey)"),
            points: points.iter().map(|p| (p.snr_db, p.psnr_db)).collect(),
            dashed: false,
        }];
        curves(path, &title, "SNR (dB, per sample)", "PSNR (dB)", &series)?;
        if !a.json {
            println!("plot → {}", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A linear analog scheme for testing the harness: block means of the planar samples
    /// (centred, ×1.4, so the power stays below 1), two per complex symbol; the receiver scales
    /// back and repeats each mean over its block. Real enough to degrade with the noise.
    struct Linear;

    const GAIN: f32 = 1.4;

    fn block(len: usize, k: usize) -> usize {
        len.div_ceil(2 * k)
    }

    impl AnalogImageCodec for Linear {
        fn name(&self) -> String {
            "linear test scheme".into()
        }
        fn symbols(&self, pic: &Picture, ratio: (usize, usize), _snr_db: f64) -> Result<(Vec<Complex32>, u8)> {
            let k = channel_uses(pic, Ratio(ratio.0, ratio.1));
            let b = block(pic.len(), k);
            let means: Vec<f32> = pic
                .data()
                .chunks(b)
                .map(|c| (c.iter().sum::<f32>() / c.len() as f32 - 0.5) * GAIN)
                .collect();
            Ok((
                means
                    .chunks(2)
                    .map(|p| Complex32::new(p[0], *p.get(1).unwrap_or(&0.0)))
                    .collect(),
                0,
            ))
        }
        fn reconstruct(
            &self,
            rx: &[Complex32],
            snr_db: &[f32],
            _param: u8,
            w: usize,
            h: usize,
            c: usize,
        ) -> Result<Picture> {
            assert_eq!(rx.len(), snr_db.len());
            let len = w * h * c;
            // The block length the sender used: the smallest giving this many symbols.
            let b = (1..=len)
                .find(|&b| len.div_ceil(b).div_ceil(2) <= rx.len())
                .unwrap_or(len);
            let vals: Vec<f32> = rx.iter().flat_map(|z| [z.re, z.im]).map(|v| v / GAIN + 0.5).collect();
            let data = (0..len)
                .map(|i| vals.get(i / b).copied().unwrap_or(0.5).clamp(0.0, 1.0))
                .collect();
            Ok(Picture::new(w, h, c, data)?)
        }
    }

    fn args(dir: &Path, mode: ImageMode, snr: Vec<f64>, channel: ImageChannel) -> SimImageArgs {
        SimImageArgs {
            data: dir.to_path_buf(),
            mode,
            snr: units::Points(snr),
            ratio: Ratio(1, 4),
            channel,
            delay_spread: 2.0,
            max_images: 0,
            realisations: 1,
            rate_frames: 10,
            max_item_loss: 0.1,
            seed: 5,
            threads: Some(1),
            model: PathBuf::from("models/image-jscc.safetensors"),
            json: false,
            plot: None,
        }
    }

    /// A folder with two synthetic 192 × 176 images (RGB and grey) and a text file.
    fn folder(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("semcom-simimage-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, c) in [("a.png", 3), ("b.png", 1)] {
            let (w, h) = (192, 176);
            let data = (0..w * h * c)
                .map(|i| {
                    let (x, y, ch) = (i % w, (i / w) % h, i / (w * h));
                    0.5 + 0.3 * ((x as f32 / 9.0).sin() * (y as f32 / 13.0 + ch as f32).cos())
                })
                .collect();
            Picture::new(w, h, c, data).unwrap().save_png(dir.join(name)).unwrap();
        }
        std::fs::write(dir.join("README.txt"), "not an image").unwrap();
        dir
    }

    #[test]
    fn budgets_and_plans() {
        let kodak = Picture::grey(768, 512, 3).unwrap();
        assert_eq!(channel_uses(&kodak, Ratio(1, 16)), 36_864);
        assert_eq!(ratio("1/16").unwrap(), Ratio(1, 16));
        for bad in ["0/16", "1/0", "3/2", "x", "1/y", "16"] {
            assert!(ratio(bad).is_err(), "{bad}");
        }
        let budget = analog_burst_samples(36_864);
        let mut last = 0;
        for rate in Rate::ALL {
            let plan = psdu_plan(rate, budget);
            let air: usize = plan.iter().map(|&l| Transmitter::packet_len(rate, l)).sum();
            assert!(air <= budget && plan.iter().all(|&l| (5..=4095).contains(&l)), "{rate}");
            let bytes: usize = plan.iter().map(|l| l - 4).sum();
            assert!(bytes > last, "{rate}: {bytes}");
            last = bytes;
        }
        // 54 Mbit/s for 3.1 ms carries about 20 kB.
        assert!((19_000..21_500).contains(&last), "{last}");
    }

    #[test]
    fn the_harness_runs_an_analog_codec_and_the_jpeg_chain() {
        let dir = folder("run");
        let a = args(&dir, ImageMode::Analog, vec![0.0, 25.0], ImageChannel::Awgn);
        let rows = simulate(&a, Some(&Linear)).unwrap();
        assert_eq!(rows.len(), 4);
        let at = |s: f64, img: &str| rows.iter().find(|r| r.snr_db == s && r.image == img).unwrap().clone();
        for img in ["a.png", "b.png"] {
            let (lo, hi) = (at(0.0, img), at(25.0, img));
            assert!(!hi.lost && hi.psnr_db > lo.psnr_db + 3.0, "{img}: {lo:?} {hi:?}");
            assert!(hi.ms_ssim > 0.5 && hi.ms_ssim <= 1.0);
        }
        // Rayleigh runs too, and the JPEG chain delivers at a high SNR with a fast rate.
        let a = args(&dir, ImageMode::Analog, vec![20.0], ImageChannel::Rayleigh);
        assert_eq!(simulate(&a, Some(&Linear)).unwrap().len(), 2);
        let a = args(&dir, ImageMode::Jpeg, vec![30.0], ImageChannel::Awgn);
        let rows = simulate(&a, None).unwrap();
        for r in &rows {
            assert!(!r.lost && r.quality.is_some() && r.rate_mbps == Some(54), "{r:?}");
            assert!(r.psnr_db > 25.0, "{r:?}");
        }
        // Without a model, analog mode refuses clearly.
        let e = simulate(&args(&dir, ImageMode::Analog, vec![0.0], ImageChannel::Awgn), None).unwrap_err();
        assert!(e.to_string().contains("no analog image model"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn the_learned_model_rides_the_phy_and_improves_with_snr() {
        let dir = folder("learned");
        let model = crate::image::Jscc(
            semcom_codec::image::AnalogJscc::load(std::path::Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../models/image-jscc.safetensors"
            )))
            .unwrap(),
        );
        let mut a = args(&dir, ImageMode::Analog, vec![3.0, 25.0], ImageChannel::Awgn);
        a.ratio = Ratio(1, 16);
        let rows = simulate(&a, Some(&model)).unwrap();
        assert_eq!(rows.len(), 4);
        for img in ["a.png", "b.png"] {
            let at = |snr: f64| rows.iter().find(|r| r.image.ends_with(img) && r.snr_db == snr).unwrap();
            let (lo, hi) = (at(3.0), at(25.0));
            assert!(!hi.lost && hi.psnr_db > lo.psnr_db + 1.0, "{lo:?} {hi:?}");
        }
        // Another ratio than the model's is refused by name.
        a.ratio = Ratio(1, 4);
        assert!(simulate(&a, Some(&model))
            .unwrap_err()
            .to_string()
            .contains("k/n = 1/16"));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn jpeg_items_that_cannot_fit_are_lost_unsent_and_scored_grey() {
        let dir = folder("tiny");
        let mut a = args(&dir, ImageMode::Jpeg, vec![30.0], ImageChannel::Awgn);
        a.ratio = Ratio(1, 400);
        for r in simulate(&a, None).unwrap() {
            assert!(r.lost && r.not_sent, "{r:?}");
            let img = Picture::load(dir.join(&r.image)).unwrap();
            let grey = Picture::grey(img.width(), img.height(), img.channels()).unwrap();
            assert_eq!(r.psnr_db, psnr(&img, &grey).unwrap());
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bad_folders_are_clear_errors() {
        let dir = folder("bad");
        let (imgs, skipped) = load_images(&dir, 0).unwrap();
        assert_eq!((imgs.len(), skipped), (2, 1));
        assert_eq!(load_images(&dir, 1).unwrap().0.len(), 1);
        std::fs::write(dir.join("c.png"), "not a png").unwrap();
        let e = load_images(&dir, 0).unwrap_err();
        assert!(format!("{e:#}").contains("c.png"), "{e:#}");
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(format!("{:#}", load_images(&empty, 0).unwrap_err()).contains("no PNG or JPEG"));
        assert!(format!("{:#}", load_images(&dir.join("missing"), 0).unwrap_err()).contains("cannot read"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
