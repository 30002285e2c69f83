//! Image items of `semcom sim link`: the digital image codec and the analog JSCC against JPEG.
//!
//! - **semantic** (digital): the image coded by `semcom_codec::image::digital` at the coarsest
//!   step whose picture reaches `--image-psnr` + `--image-margin` (or at `--image-bpp`), in the
//!   sliced mode (independently decodable bands of block rows, about one link fragment each),
//!   in a `SemanticFrame`, as link frames on the semcom profile like every other semantic item.
//!   When fragments are lost but the first one (frame header and slice table) arrived, the
//!   receiver conceals the missing bands (`Conceal::Prior`: tokens estimated from the received
//!   rows) and shows the item as delivered with concealed parts;
//! - **analog**: the learned analog JSCC model's k = n/16 symbols on one analog semcom frame (no
//!   link layer: analog symbols are not bytes, so they are neither sealed nor fragmented);
//! - **classical**: a JPEG (the `image` crate's encoder) at equal airtime. Its size is free, so
//!   the rate and the quality are chosen together: for each legacy rate from the slowest, the
//!   largest quality whose file fits the semantic item's airtime as link frames at that rate; the
//!   first (slowest, hence most robust at every SNR) rate whose JPEG reaches the meaning threshold
//!   wins. When no rate gets there, the fastest rate with its largest JPEG is sent (its meaning is
//!   lost whatever the SNR); when not even quality 1 fits at 54 Mbit/s, quality 1 goes at 54
//!   Mbit/s with more airtime than the semantic item, which the summary states.
//!
//! The meaning of an image is delivered when the picture shown at the receiver is within
//! `--image-psnr` dB PSNR (default 25) of the original. A lost image is shown as mid-grey.

use crate::image::Jscc;
use crate::simimage::{channel_uses, largest_quality, load_images, AnalogImageCodec, Ratio};
use crate::simlink::{Job, LinkChannel, Row, SimLinkArgs};
use anyhow::{bail, Context, Result};
use semcom_codec::image::digital::{slice_rows_for, Conceal, DigitalCode, DigitalModel, MAX_STEP_Q};
use semcom_codec::image::AnalogJscc;
use semcom_codec::picture::{psnr, Picture};
use semcom_codec::CodecError;
use semcom_codec::{Modality, SemanticFrame};
use semcom_phy::channel::FadingSpec;
use semcom_phy::sim::{analog_burst_samples, frame_seed, FrameSim, Propagation, SimParams};
use semcom_phy::{Complex32, Rate};
use semcom_transport::link::gaps::{uniform_layout, with_gaps};
use semcom_transport::link::{PhyMode, RadioItemLink, RadioItemLinkConfig};
use semcom_transport::radio::sim::SimRadio;
use semcom_transport::{Item, ItemKind};
use std::ops::Range;
use std::path::Path;

/// The built-in images: 192 × 128 centre crops of eight Kodak images (see cli/samples/SOURCE.md).
const SAMPLE_IMAGES: [(&str, &[u8]); 8] = [
    ("kodim01", include_bytes!("../samples/image-kodim01.png")),
    ("kodim03", include_bytes!("../samples/image-kodim03.png")),
    ("kodim05", include_bytes!("../samples/image-kodim05.png")),
    ("kodim07", include_bytes!("../samples/image-kodim07.png")),
    ("kodim15", include_bytes!("../samples/image-kodim15.png")),
    ("kodim19", include_bytes!("../samples/image-kodim19.png")),
    ("kodim21", include_bytes!("../samples/image-kodim21.png")),
    ("kodim23", include_bytes!("../samples/image-kodim23.png")),
];

/// The analog model's bandwidth ratio.
const ANALOG_RATIO: Ratio = Ratio(1, 16);

/// One image's analog symbols and the header parameter of its frame.
type AnalogSymbols = (Vec<Complex32>, u8);

/// What decides an image item's meaning, and what the receiver needs to decode it.
pub(crate) struct ImageTruth {
    pics: Vec<Picture>,
    model: DigitalModel,
    /// PSNR an image must reach at the receiver, dB.
    pub(crate) threshold: f64,
    /// PSNR of the digital code decoded intact, of the classical JPEG, and of mid-grey.
    clean_psnr: Vec<f64>,
    pub(crate) jpeg_psnr: Vec<f64>,
    grey_psnr: Vec<f64>,
    /// JPEG quality of each classical item.
    pub(crate) jpeg_quality: Vec<u8>,
    /// The analog model's symbols and header parameter per image (when it is loaded).
    analog: Option<(Jscc, Vec<AnalogSymbols>)>,
}

/// One modality's worth of image items: JPEG files (the classical originals), semantic items,
/// classical items, their rates and the truth.
pub(crate) struct PreparedImages {
    pub(crate) jpegs: Vec<Vec<u8>>,
    pub(crate) semantic: Vec<Item>,
    pub(crate) classical: Vec<Item>,
    pub(crate) rates: Vec<Rate>,
    pub(crate) truth: ImageTruth,
}

fn images(dir: Option<&Path>, limit: usize) -> Result<Vec<(String, Picture)>> {
    let mut v = match dir {
        Some(d) => load_images(d, 0)?.0,
        None => SAMPLE_IMAGES
            .iter()
            .map(|(n, b)| Ok((n.to_string(), Picture::from_bytes(b).context("built-in image sample")?)))
            .collect::<Result<Vec<_>>>()?,
    };
    if limit > 0 && v.len() > limit {
        let n = v.len();
        v = (0..limit).map(|i| v[i * n / limit].clone()).collect();
    }
    Ok(v)
}

/// Largest item size (bytes) whose link frames at `rate` take at most `budget_us`.
fn capacity_at(scratch: &mut RadioItemLink<SimRadio>, rate: Rate, budget_us: f64) -> Result<usize> {
    let fits = |s: &mut RadioItemLink<SimRadio>, n: usize| -> Result<bool> {
        Ok(s.airtime_us(&Item::new(ItemKind::Raw, vec![0; n]), PhyMode::Legacy(rate))? <= budget_us + 1e-9)
    };
    if !fits(scratch, 1)? {
        return Ok(0);
    }
    // The receiver's item limit bounds the search (an image as large would be refused).
    let (mut lo, mut hi) = (1usize, RadioItemLinkConfig::default().max_item);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(scratch, mid)? {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    Ok(lo)
}

/// Codes the images both ways (see the module docs).
pub(crate) fn prepare(
    a: &SimLinkArgs,
    scratch: &mut RadioItemLink<SimRadio>,
    sem_phy: PhyMode,
    forced: Option<Rate>,
) -> Result<PreparedImages> {
    if let Some(b) = a.image_bpp {
        if !(b.is_finite() && b > 0.0 && b <= 24.0) {
            bail!("--image-bpp {b}: must be in (0, 24]");
        }
    }
    if !(a.image_margin.is_finite() && (0.0..=20.0).contains(&a.image_margin)) {
        bail!("--image-margin {}: must be in [0, 20] dB", a.image_margin);
    }
    if !(a.image_psnr.is_finite() && a.image_psnr > 0.0) {
        bail!("--image-psnr {}: must be a positive number of dB", a.image_psnr);
    }
    let pics = images(a.image.as_deref(), a.limit)?;
    let model = crate::image_digital::load_model(&crate::simlink::model_path(&a.image_model))?;
    let analog = if a.no_analog {
        None
    } else {
        let path = crate::simlink::model_path(&a.analog_model);
        let m = AnalogJscc::load(&path)
            .with_context(|| format!("loading the analog image model {}", a.analog_model.display()))?;
        Some(Jscc(m))
    };
    let mut out = PreparedImages {
        jpegs: Vec::new(),
        semantic: Vec::new(),
        classical: Vec::new(),
        rates: Vec::new(),
        truth: ImageTruth {
            pics: Vec::new(),
            model,
            threshold: a.image_psnr,
            clean_psnr: Vec::new(),
            jpeg_psnr: Vec::new(),
            grey_psnr: Vec::new(),
            jpeg_quality: Vec::new(),
            analog: None,
        },
    };
    let mut analog_symbols = Vec::new();
    for (name, pic) in pics {
        let t = &mut out.truth;
        let empty = DigitalCode {
            width: pic.width(),
            height: pic.height(),
            channels: pic.channels(),
            step_q: 0,
            slice_rows: Some(1),
            payload: Vec::new(),
        };
        let code = match a.image_bpp {
            Some(bpp) => {
                let overhead = semantic_item(&empty).bytes.len();
                let budget = (bpp * (pic.width() * pic.height()) as f64 / 8.0).floor() as usize;
                let rows = slice_rows_for(pic.height(), budget, a.max_fragment);
                t.model
                    .encode_within_sliced(&pic, budget.saturating_sub(overhead).max(1), rows)
            }
            None => encode_for_psnr(&t.model, &pic, a.image_psnr + a.image_margin).and_then(|c| {
                // Slicing changes the bytes, not the picture: the same step, in bands of about
                // one link fragment.
                let rows = slice_rows_for(pic.height(), c.payload.len(), a.max_fragment);
                t.model.encode_sliced(&pic, c.step_q, rows)
            }),
        }
        .with_context(|| format!("coding {name}"))?;
        let item = semantic_item(&code);
        t.clean_psnr.push(psnr(&pic, &t.model.reconstruction(&code)?)?);
        let grey = Picture::grey(pic.width(), pic.height(), pic.channels())?;
        t.grey_psnr.push(psnr(&pic, &grey)?);
        // The classical JPEG: the slowest rate whose largest fitting JPEG carries the meaning.
        let air = scratch.airtime_us(&item, sem_phy)?;
        let candidates: Vec<Rate> = match forced {
            Some(r) => vec![r],
            None => crate::simlink::LEGACY.to_vec(),
        };
        let mut pick = None;
        for &r in &candidates {
            let cap = if forced.is_some() {
                usize::MAX
            } else {
                capacity_at(scratch, r, air)?
            };
            let Some((q, file)) = largest_quality(&pic, cap)? else {
                continue;
            };
            let p = psnr(&pic, &Picture::from_bytes(&file)?)?;
            let good = p >= a.image_psnr;
            pick = Some((r, q, file, p));
            if good {
                break;
            }
        }
        let (rate, q, file, p) = match pick {
            Some(x) => x,
            None => {
                // Not even quality 1 fits at 54 Mbit/s: send it anyway (more airtime; stated).
                let file = pic.to_jpeg(1)?;
                let p = psnr(&pic, &Picture::from_bytes(&file)?)?;
                (Rate::R54, 1, file, p)
            }
        };
        t.jpeg_psnr.push(p);
        t.jpeg_quality.push(q);
        out.classical.push(Item::new(ItemKind::Raw, file.clone()));
        out.jpegs.push(file);
        out.rates.push(rate);
        out.semantic.push(item);
        if let Some(j) = &analog {
            analog_symbols.push(j.symbols(&pic, (ANALOG_RATIO.0, ANALOG_RATIO.1), 0.0)?);
        }
        t.pics.push(pic);
    }
    if out.semantic.is_empty() {
        bail!("no images");
    }
    out.truth.analog = analog.map(|j| (j, analog_symbols));
    Ok(out)
}

/// The coarsest step (fewest bytes) whose reconstruction reaches `target` dB PSNR, by bisection
/// (PSNR falls as the step grows); the finest step when none does.
fn encode_for_psnr(model: &DigitalModel, pic: &Picture, target: f64) -> Result<DigitalCode, CodecError> {
    let meets = |c: &DigitalCode| -> Result<bool, CodecError> { Ok(psnr(pic, &model.reconstruction(c)?)? >= target) };
    let (mut lo, mut hi) = (0u16, MAX_STEP_Q);
    let mut best = model.encode(pic, 0)?;
    // Invariant: lo meets the target (or is the finest step); find the largest step that does.
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let c = model.encode(pic, mid)?;
        if meets(&c)? {
            lo = mid;
            best = c;
        } else {
            hi = mid - 1;
        }
    }
    if best.step_q != lo {
        best = model.encode(pic, lo)?;
    }
    Ok(best)
}

/// The frame a digital image travels in (modality, parameters, payload; no model id or CRC).
fn semantic_item(code: &DigitalCode) -> Item {
    crate::simlink::semantic_item(Modality::Image, code.params(), code.payload.clone())
}

impl ImageTruth {
    /// Number of images.
    pub(crate) fn len(&self) -> usize {
        self.pics.len()
    }

    /// Whether an analog path runs.
    pub(crate) fn has_analog(&self) -> bool {
        self.analog.is_some()
    }

    /// PSNR of the picture the receiver shows for semantic item `i` from the frame `bytes` whose
    /// frame byte ranges `lost` did not arrive (concealed), or `None` when nothing can be shown.
    fn shown_psnr(&self, i: usize, bytes: &[u8], lost: &[Range<usize>]) -> Option<f64> {
        let pic = &self.pics[i];
        let max_pixels = pic.width() * pic.height();
        let (f, lost) = SemanticFrame::from_bytes_with_gaps(bytes, lost).ok()?;
        if f.modality != Modality::Image {
            return None;
        }
        let c = DigitalCode::from_parts(&f.params, &f.payload, max_pixels).ok()?;
        if (c.width, c.height, c.channels) != (pic.width(), pic.height(), pic.channels()) {
            return None;
        }
        let shown = if lost.is_empty() {
            self.model.reconstruction(&c).ok()?
        } else {
            self.model
                .decode_concealed(&c, &lost, Conceal::Prior, max_pixels)
                .ok()?
                .0
        };
        psnr(pic, &shown).ok()
    }

    /// PSNR of what the receiver shows for semantic item `i` of which only some fragments
    /// arrived (`max_fragment`: the link's fragment size; the item is of one importance class),
    /// and whether it was concealed (false: nothing could be shown, mid-grey).
    pub(crate) fn partial_psnr(&self, i: usize, fragments: &[Option<Vec<u8>>], max_fragment: usize) -> (f64, bool) {
        let layout = uniform_layout(fragments.len(), max_fragment);
        let shown = with_gaps(fragments, &layout)
            .ok()
            .and_then(|(bytes, lost)| self.shown_psnr(i, &bytes, &lost));
        match shown {
            Some(v) => (v, true),
            None => (self.grey_psnr[i], false),
        }
    }

    /// PSNR of what the receiver shows for semantic item `i` given what arrived whole (`sent`:
    /// the item's bytes).
    pub(crate) fn semantic_psnr(&self, i: usize, sent: &[u8], got: Option<&[u8]>) -> f64 {
        match got {
            None => self.grey_psnr[i],
            Some(b) if b == sent => self.clean_psnr[i],
            // Authenticated links deliver what was sent; an unsealed one could (very rarely)
            // pass other bytes: decode them.
            Some(b) => self.shown_psnr(i, b, &[]).unwrap_or(self.grey_psnr[i]),
        }
    }

    /// PSNR of what the receiver shows for classical item `i` (`intact`: the JPEG arrived as sent).
    pub(crate) fn classical_psnr(&self, i: usize, intact: bool) -> f64 {
        if intact {
            self.jpeg_psnr[i]
        } else {
            self.grey_psnr[i]
        }
    }

    /// Mean airtime of the analog frames, µs.
    pub(crate) fn analog_airtime_us(&self) -> f64 {
        let n = self.pics.len().max(1) as f64;
        self.pics
            .iter()
            .map(|p| analog_burst_samples(channel_uses(p, ANALOG_RATIO)) as f64 / 20.0)
            .sum::<f64>()
            / n
    }
}

/// The analog path at one operating point: every image's symbols through one analog frame.
pub(crate) fn run_analog_job(a: &SimLinkArgs, t: &ImageTruth, job: Job, modality: &'static str) -> Result<Row> {
    let Some((codec, symbols)) = &t.analog else {
        bail!("no analog image model loaded");
    };
    let propagation = match job.channel {
        LinkChannel::Awgn => Propagation::Awgn,
        LinkChannel::Rayleigh => Propagation::Fading(FadingSpec::exponential(a.delay_spread, 0.0, 0.0)),
    };
    let p = SimParams {
        propagation,
        ..SimParams::awgn(Rate::R6, 4, job.snr_db)
    };
    let mut sim = FrameSim::new();
    let (mut meaning, mut delivered, mut psnr_sum) = (0, 0, 0.0);
    for (i, ((sy, param), pic)) in symbols.iter().zip(&t.pics).enumerate() {
        let o = sim.run_analog_param(&p, sy, *param, frame_seed(a.seed, job.index, i as u64))?;
        let v = match o.frame {
            Some(f) => {
                delivered += 1;
                psnr(pic, &codec.reconstruct_frame(&f, pic)?)?
            }
            None => t.grey_psnr[i],
        };
        psnr_sum += v;
        meaning += usize::from(v >= t.threshold);
    }
    let n = t.pics.len();
    Ok(Row {
        modality,
        channel: job.channel.name(),
        snr_db: job.snr_db,
        path: "analog",
        phy: format!("semcom analog k/n {}/{}", ANALOG_RATIO.0, ANALOG_RATIO.1),
        items: n,
        link_delivered: delivered,
        link_partial: 0,
        concealed: 0,
        link_lost: n - delivered,
        meaning,
        meaning_share: meaning as f64 / n as f64,
        psnr_db: Some(psnr_sum / n as f64),
        bits_per_char: None,
        payload_bytes: f64::NAN,
        wire_bytes: f64::NAN,
        airtime_us: t.analog_airtime_us(),
        latency_us: f64::NAN,
        refused_frames: 0,
    })
}

/// The image lines of the summary's notes: what each path sends.
pub(crate) fn summary_note(a: &SimLinkArgs, t: &ImageTruth, rates: &[Rate]) -> String {
    let n = t.len().max(1) as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n;
    let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let mut by_rate: Vec<(u32, usize)> = Vec::new();
    for r in rates {
        match by_rate.iter_mut().find(|(m, _)| *m == r.mbps()) {
            Some((_, c)) => *c += 1,
            None => by_rate.push((r.mbps(), 1)),
        }
    }
    by_rate.sort_unstable();
    let carried = t.jpeg_psnr.iter().filter(|&&p| p >= t.threshold).count();
    let mut s = format!(
        "- image: meaning delivered = PSNR at the receiver ≥ {} dB. Semantic: digital codec {}, {:.2} dB mean ({:.2} min) when intact. Classical: JPEG at equal airtime, the slowest legacy rate whose largest fitting JPEG reaches the threshold ({}), {:.2} dB mean when intact, quality {}–{}; {} of {} JPEGs can carry the meaning at all.",
        t.threshold,
        match a.image_bpp {
            Some(b) => format!("at {b} bpp"),
            None => format!("at the coarsest step reaching {} dB", t.threshold + a.image_margin),
        },
        mean(&t.clean_psnr),
        min(&t.clean_psnr),
        by_rate
            .iter()
            .map(|(m, c)| format!("{c} at {m} Mbit/s"))
            .collect::<Vec<_>>()
            .join(", "),
        mean(&t.jpeg_psnr),
        t.jpeg_quality.iter().min().copied().unwrap_or(0),
        t.jpeg_quality.iter().max().copied().unwrap_or(0),
        carried,
        t.len(),
    );
    if let Some((codec, _)) = &t.analog {
        s += &format!(
            " Analog: {} at k/n = {}/{}, one analog frame per image ({:.0} µs), not sealed.",
            codec.name(),
            ANALOG_RATIO.0,
            ANALOG_RATIO.1,
            t.analog_airtime_us()
        );
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_images_decode() {
        let v = images(None, 0).unwrap();
        assert_eq!(v.len(), 8);
        assert!(v
            .iter()
            .all(|(_, p)| (p.width(), p.height(), p.channels()) == (192, 128, 3)));
        assert_eq!(images(None, 3).unwrap().len(), 3);
    }
}
