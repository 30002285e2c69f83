//! The digital image mode: `semcom train image-digital`, `semcom eval image-digital`, and the
//! image side of `semcom encode` / `semcom decode`.
//!
//! A `.sem` image file is one [`SemanticFrame`] (preceded by its length, as every `semcom
//! encode` file): modality image, the model id, the parameters of [`DigitalCode::params`] and
//! the range-coded tokens. Rates are counted on that whole file.

use anyhow::{bail, Context, Result};
use clap::Args;
use semcom_codec::frame::put_varint;
use semcom_codec::frame::Segment;
use semcom_codec::image::digital::{
    step_for_quality, DigitalCode, DigitalConfig, DigitalModel, DEFAULT_MAX_PIXELS, MAX_STEP_Q,
};
use semcom_codec::image::train::load_images;
use semcom_codec::picture::{psnr, Picture};
use semcom_codec::{Modality, SemanticFrame};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The default model file.
pub const DEFAULT_MODEL: &str = "models/image-digital.safetensors";

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Directories of training photos (PNG/JPEG). Never give the evaluation set (Kodak) here.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Model file to write; the model card goes next to it as .md.
    #[arg(short, long, default_value = DEFAULT_MODEL)]
    output: PathBuf,
    /// Block transform: `dct` (the 2-D DCT; it codes photos-train 0.2–0.3 dB better than the
    /// fitted KLT) or `klt` (fitted per colour component on the data). The colour transform is
    /// always fitted.
    #[arg(long, default_value = "dct")]
    transform: String,
    /// Quantiser rounding offset ρ (0.5: plain rounding).
    #[arg(long)]
    rounding: Option<f32>,
    /// Reconstruction offset δ toward zero, in steps.
    #[arg(long)]
    recon_bias: Option<f32>,
    /// Deblocking strength in steps (0: off).
    #[arg(long)]
    deblock: Option<f32>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Directory of evaluation images (e.g. ../shared/datasets/kodak).
    #[arg(long)]
    data: PathBuf,
    /// The digital image model.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Use the built-in DCT model instead of --model (the untrained reference).
    #[arg(long)]
    builtin_dct: bool,
    /// Target rates, bits per pixel (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,1.0")]
    bpp: Vec<f64>,
    /// Only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ConcealArgs {
    /// Directory of evaluation images (e.g. ../shared/datasets/kodak).
    #[arg(long)]
    data: PathBuf,
    /// The digital image model.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Target rates, bits per pixel of the whole file (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0.25,0.5,1.0")]
    bpp: Vec<f64>,
    /// Fraction of the image's slice fragments dropped (rounded up to whole fragments).
    #[arg(long, default_value_t = 0.1)]
    drop: f64,
    /// Link fragment payload, bytes (as `semcom sim link --max-fragment`).
    #[arg(long, default_value_t = 512, value_parser = crate::simlink::max_fragment)]
    fragment: usize,
    /// Target slice size in bytes (default: the fragment size).
    #[arg(long)]
    slice_bytes: Option<usize>,
    /// Block rows per slice instead of aiming at --slice-bytes.
    #[arg(long)]
    slice_rows: Option<u32>,
    /// Seeds of the fragment drops (comma-separated); each image and rate draws its own
    /// pattern from the seed.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// JSON output.
    #[arg(long)]
    json: bool,
}

/// The `.sem` file of one coded image.
pub fn sem_file(model: &DigitalModel, code: &DigitalCode) -> Vec<u8> {
    let mut f = SemanticFrame::new(Modality::Image, model.id(), code.payload.clone());
    f.params = code.params();
    let bytes = f.to_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 3);
    put_varint(&mut out, bytes.len() as u64);
    out.extend_from_slice(&bytes);
    out
}

/// Bytes the file adds around a payload (at most; the length prefix counted at 3 bytes).
fn file_overhead(model: &DigitalModel, pic: &Picture) -> usize {
    let code = DigitalCode {
        width: pic.width(),
        height: pic.height(),
        channels: pic.channels(),
        step_q: MAX_STEP_Q,
        slice_rows: None,
        payload: Vec::new(),
    };
    sem_file(model, &code).len() + 2
}

/// Codes a picture into a `.sem` file no larger than `bpp` bits per pixel (whole file), or at a
/// quality 1–100.
pub fn encode_picture(model: &DigitalModel, pic: &Picture, bpp: Option<f64>, quality: Option<u8>) -> Result<Vec<u8>> {
    let code = match (bpp, quality) {
        (Some(_), Some(_)) => bail!("give --bpp or --quality, not both"),
        (Some(b), None) => {
            if !(b.is_finite() && b > 0.0) {
                bail!("--bpp {b}: must be a positive number");
            }
            let budget = (b * (pic.width() * pic.height()) as f64 / 8.0).floor() as usize;
            let over = file_overhead(model, pic);
            model.encode_within(pic, budget.saturating_sub(over))?
        }
        (None, q) => {
            let q = q.unwrap_or(75);
            if !(1..=100).contains(&q) {
                bail!("--quality {q}: must be 1–100");
            }
            model.encode(pic, step_for_quality(q))?
        }
    };
    Ok(sem_file(model, &code))
}

/// Loads the model for encoding or decoding, with a hint when the file is missing.
pub fn load_model(path: &Path) -> Result<DigitalModel> {
    if !path.exists() {
        bail!(
            "model file {} does not exist (pass --model with the digital image model, e.g. {DEFAULT_MODEL})",
            path.display()
        );
    }
    Ok(DigitalModel::load(path)?)
}

/// `semcom encode --modality image`: a PNG/JPEG file into a `.sem` file.
pub fn encode_file(input: &[u8], model_path: &Path, bpp: Option<f64>, quality: Option<u8>) -> Result<Vec<u8>> {
    let pic = Picture::from_bytes(input).context("reading the input image")?;
    let model = load_model(model_path)?;
    encode_picture(&model, &pic, bpp, quality)
}

/// `semcom decode` of image frames: the picture of the (single) frame, as PNG bytes.
pub fn decode_frames(frames: &[SemanticFrame], model_path: &Path) -> Result<Vec<u8>> {
    let [f] = frames else {
        bail!("an image file holds one frame, this one holds {}", frames.len());
    };
    let model = load_model(model_path)?;
    match f.model {
        None => bail!("the image frame does not name its model"),
        Some(id) if id != model.id() => bail!(
            "the image was encoded with digital image model {id} but {} is {}",
            model_path.display(),
            model.id()
        ),
        Some(_) => {}
    }
    f.check(Modality::Image, model.id())?;
    let code = DigitalCode::from_parts(&f.params, &f.payload, DEFAULT_MAX_PIXELS)?;
    let pic = model.decode(&code, DEFAULT_MAX_PIXELS).context("decoding the image")?;
    Ok(pic.to_png()?)
}

pub fn train(a: TrainArgs) -> Result<()> {
    let t0 = Instant::now();
    let all = load_images(&a.data)?;
    let pics: Vec<&Picture> = all.iter().map(|(_, p)| p).collect();
    if !matches!(a.transform.as_str(), "klt" | "dct") {
        bail!("--transform {}: expected klt or dct", a.transform);
    }
    let mut config = DigitalConfig::default_for(&a.transform);
    config.rounding = a.rounding.unwrap_or(config.rounding);
    config.recon_bias = a.recon_bias.unwrap_or(config.recon_bias);
    config.deblock = a.deblock.unwrap_or(config.deblock);
    let model = DigitalModel::fit(&pics, config)?;
    let bytes = model.to_bytes()?;
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    std::fs::write(&a.output, &bytes).with_context(|| a.output.display().to_string())?;
    let model = DigitalModel::from_bytes(&bytes, &a.output.display().to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    let name = a
        .output
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let c = model.config();
    let mut s = String::new();
    writeln!(s, "# Model card: {name}\n")?;
    writeln!(
        s,
        "The digital image model of semcom: an orthonormal colour transform and one orthonormal 8 × 8 block \
         transform per colour component (see `codec/src/image/digital.rs`). The quantiser and the context-adaptive \
         range coder have no trained weights.\n"
    )?;
    writeln!(s, "- **sha256**: `{sha}` (model id `{}`)", model.id())?;
    writeln!(s, "- **size**: {} bytes", bytes.len())?;
    writeln!(
        s,
        "- **transform**: {} (colour: KLT of the training pixels; blocks: {})",
        c.transform,
        if c.transform == "klt" {
            "KLT of each component's 8 × 8 training blocks, strongest first"
        } else {
            "2-D DCT in zig-zag order"
        }
    )?;
    writeln!(
        s,
        "- **settings**: rounding offset ρ = {}, reconstruction offset δ = {}, chroma step × {}, deblocking {} Δ",
        c.rounding, c.recon_bias, c.chroma_step, c.deblock
    )?;
    let dirs: Vec<String> = a.data.iter().map(|d| d.display().to_string()).collect();
    writeln!(
        s,
        "- **command**: `./target/release/semcom train image-digital --data {} --transform {} -o {}`",
        dirs.join(" --data "),
        a.transform,
        a.output.display()
    )?;
    writeln!(
        s,
        "- **seed**: none needed (closed-form fit: eigen-decompositions, deterministic)"
    )?;
    writeln!(
        s,
        "- **data**: {} ({} images, all used); fitted on the CPU in {secs:.1} s",
        dirs.join(", "),
        all.len()
    )?;
    writeln!(
        s,
        "\nMeasure it on Kodak (never used in fitting) with `semcom eval image-digital --data ../shared/datasets/kodak \
         --model {}`.",
        a.output.display()
    )?;
    let card = a.output.with_extension("md");
    std::fs::write(&card, s).with_context(|| card.display().to_string())?;
    println!(
        "wrote {} ({} bytes, id {}) and {} in {secs:.1} s",
        a.output.display(),
        bytes.len(),
        model.id(),
        card.display()
    );
    Ok(())
}

/// JPEG (the `image` crate's encoder) at the highest quality whose file fits `max_bytes`;
/// `None` when even quality 1 does not fit.
fn jpeg_within(pic: &Picture, max_bytes: usize) -> Result<(Option<u8>, Vec<u8>)> {
    let raw = pic.to_u8_interleaved();
    let colour = if pic.channels() == 1 {
        image::ColorType::L8
    } else {
        image::ColorType::Rgb8
    };
    let enc = |q: u8| -> Result<Vec<u8>> {
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q).encode(
            &raw,
            pic.width() as u32,
            pic.height() as u32,
            colour,
        )?;
        Ok(out)
    };
    let (mut lo, mut hi) = (1u8, 100u8);
    let first = enc(1)?;
    if first.len() > max_bytes {
        return Ok((None, first));
    }
    let mut best = (1u8, first);
    // Largest quality that fits (sizes grow with quality).
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        let b = enc(mid)?;
        if b.len() <= max_bytes {
            lo = mid;
            best = (mid, b);
        } else {
            hi = mid - 1;
        }
    }
    Ok((Some(best.0), best.1))
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let model = if a.builtin_dct {
        DigitalModel::dct()
    } else {
        load_model(&a.model)?
    };
    let mut all = load_images(std::slice::from_ref(&a.data))?;
    if let Some(n) = a.limit {
        all.truncate(n);
    }
    if a.bpp.iter().any(|b| !(b.is_finite() && *b > 0.0)) {
        bail!("--bpp: rates must be positive");
    }
    let mut rows = Vec::new();
    let mut text = String::new();
    writeln!(
        text,
        "{} images from {}; model {} ({}); rates over the whole file\n",
        all.len(),
        a.data.display(),
        model.id(),
        if a.builtin_dct {
            "built-in DCT".to_string()
        } else {
            a.model.display().to_string()
        }
    )?;
    writeln!(
        text,
        "{:>6} | {:>9} {:>9} | {:>9} {:>9} {:>5} | {:>7}",
        "target", "semcom bpp", "PSNR dB", "JPEG bpp", "PSNR dB", "over", "Δ dB"
    )?;
    for &bpp in &a.bpp {
        let (mut s_bpp, mut s_psnr, mut j_bpp, mut j_psnr) = (0.0, 0.0, 0.0, 0.0);
        let mut over = 0;
        let mut per_image = Vec::new();
        for (path, pic) in &all {
            let px = (pic.width() * pic.height()) as f64;
            let budget = (bpp * px / 8.0).floor() as usize;
            let file = encode_picture(&model, pic, Some(bpp), None)?;
            let frames = crate::codec::frames(&file)?;
            let code = DigitalCode::from_parts(&frames[0].params, &frames[0].payload, DEFAULT_MAX_PIXELS)?;
            let rec = model.decode(&code, DEFAULT_MAX_PIXELS)?;
            let p = psnr(pic, &rec)?;
            let sb = file.len() as f64 * 8.0 / px;
            let (q, jpeg) = jpeg_within(pic, budget)?;
            if q.is_none() {
                over += 1;
            }
            let jp = psnr(pic, &Picture::from_bytes(&jpeg)?)?;
            let jb = jpeg.len() as f64 * 8.0 / px;
            s_bpp += sb;
            s_psnr += p;
            j_bpp += jb;
            j_psnr += jp;
            per_image.push(json!({
                "image": path.file_name().map(|n| n.to_string_lossy().into_owned()),
                "semcom_bpp": sb, "semcom_psnr": p, "semcom_step": code.step_q,
                "jpeg_bpp": jb, "jpeg_psnr": jp, "jpeg_quality": q,
            }));
        }
        let n = all.len() as f64;
        let (sb, sp, jb, jp) = (s_bpp / n, s_psnr / n, j_bpp / n, j_psnr / n);
        writeln!(
            text,
            "{bpp:>6.3} | {sb:>9.4} {sp:>9.2} | {jb:>9.4} {jp:>9.2} {over:>5} | {:>+7.2}",
            sp - jp
        )?;
        rows.push(json!({
            "target_bpp": bpp, "semcom_bpp": sb, "semcom_psnr": sp, "jpeg_bpp": jb, "jpeg_psnr": jp,
            "jpeg_over_budget": over, "psnr_gain_db": sp - jp, "images": per_image,
        }));
    }
    writeln!(
        text,
        "\nPSNR: mean over images of 8-bit RGB PSNR. JPEG: the `image` crate's encoder at the highest quality whose \
         file fits the target; `over`: images where even quality 1 does not fit (its size is counted)."
    )?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "data": a.data.display().to_string(), "model": model.id().to_string(),
                "builtin_dct": a.builtin_dct, "rates": rows,
            }))?
        );
    } else {
        print!("{text}");
    }
    Ok(())
}

/// A sliced image framed for a link.
pub struct SlicedFrame {
    /// The frame's bytes (no model id, no CRC: the link authenticates).
    pub bytes: Vec<u8>,
    /// The item's importance runs: frame header and slice table at class 0 (the robust class),
    /// the slices at class 1.
    pub runs: Vec<(u8, usize)>,
}

/// The frame a sliced image travels in over a link (see [`SlicedFrame`]).
pub fn sliced_frame(code: &DigitalCode) -> Result<SlicedFrame> {
    let table = code.slice_table_len()?;
    let f = SemanticFrame {
        modality: Modality::Image,
        model: None,
        params: code.params(),
        segments: vec![
            Segment { class: 0, len: table },
            Segment {
                class: 1,
                len: code.payload.len() - table,
            },
        ],
        payload: code.payload.clone(),
        with_crc: false,
    };
    let bytes = f.to_bytes();
    let header = bytes.len() - code.payload.len();
    let runs = vec![(0, header + table), (1, code.payload.len() - table)];
    Ok(SlicedFrame { bytes, runs })
}

pub fn eval_conceal(a: ConcealArgs) -> Result<()> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use semcom_codec::image::digital::{slice_rows_for, Conceal};
    use semcom_transport::link::gaps::{fragment_ranges, with_gaps};
    use semcom_transport::link::{frame::fragment, Item, ItemKind};

    let model = load_model(&a.model)?;
    let mut all = load_images(std::slice::from_ref(&a.data))?;
    if let Some(n) = a.limit {
        all.truncate(n);
    }
    if a.bpp.iter().any(|b| !(b.is_finite() && *b > 0.0)) {
        bail!("--bpp: rates must be positive");
    }
    if !(0.0..1.0).contains(&a.drop) {
        bail!("--drop {}: a fraction in [0, 1)", a.drop);
    }
    if a.fragment == 0 || a.seeds.is_empty() {
        bail!("--fragment must be positive and --seeds not empty");
    }
    let target = a.slice_bytes.unwrap_or(a.fragment);
    let mut text = String::new();
    writeln!(
        text,
        "{} images from {}; model {}; {}-byte fragments, {:.0} % of the slice fragments dropped (rounded up; \
         never the first fragment: frame header + slice table travel at class 0), seeds {:?}; slices {}\n",
        all.len(),
        a.data.display(),
        model.id(),
        a.fragment,
        a.drop * 100.0,
        a.seeds,
        match a.slice_rows {
            Some(r) => format!("of {r} block rows"),
            None => format!("aimed at {target} bytes"),
        }
    )?;
    writeln!(
        text,
        "{:>6} | {:>8} {:>8} | {:>8} {:>8} {:>6} {:>6} | {:>7} {:>8} {:>8} {:>7}",
        "target", "bpp", "PSNR", "sliced", "PSNR", "rows", "slices", "dropped", "blank", "prior", "gain"
    )?;
    let mut rows_out = Vec::new();
    for &bpp in &a.bpp {
        let mut acc = [0f64; 9];
        let mut cases = 0usize;
        let mut per_image = Vec::new();
        for (i, (path, pic)) in all.iter().enumerate() {
            let px = (pic.width() * pic.height()) as f64;
            let budget = (bpp * px / 8.0).floor() as usize;
            // Unsliced reference.
            let file = encode_picture(&model, pic, Some(bpp), None)?;
            let frames = crate::codec::frames(&file)?;
            let plain = DigitalCode::from_parts(&frames[0].params, &frames[0].payload, DEFAULT_MAX_PIXELS)?;
            let p_plain = psnr(pic, &model.decode(&plain, DEFAULT_MAX_PIXELS)?)?;
            // Sliced, at the same whole-file budget (the slice table counts).
            let over = file_overhead(&model, pic) + 2;
            let payload_budget = budget.saturating_sub(over);
            let rows = a
                .slice_rows
                .unwrap_or_else(|| slice_rows_for(pic.height(), payload_budget, target));
            let mut code = model.encode_within_sliced(pic, payload_budget, rows)?;
            while code.step_q < MAX_STEP_Q && sem_file(&model, &code).len() > budget {
                code = model.encode_sliced(pic, code.step_q + 1, rows)?;
            }
            let s_file = sem_file(&model, &code).len();
            let whole = model.decode(&code, DEFAULT_MAX_PIXELS)?;
            let p_sliced = psnr(pic, &whole)?;
            // Over the link: fragments of the frame.
            let SlicedFrame { bytes, runs } = sliced_frame(&code)?;
            let layout = fragment_ranges(&runs, a.fragment);
            let item = Item::new(ItemKind::Semantic, bytes).with_classes(runs);
            let frags = fragment(&item, 0, a.fragment)?;
            let eligible: Vec<usize> = (0..frags.len()).filter(|&k| frags[k].class != 0).collect();
            let n_drop = ((a.drop * frags.len() as f64).ceil() as usize).min(eligible.len());
            for &seed in &a.seeds {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                    seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ ((i as u64) << 16) ^ (bpp * 1000.0) as u64,
                );
                let mut pick = eligible.clone();
                pick.shuffle(&mut rng);
                // What the receiver gets (an `Outcome::Partial`), and its way back to the code:
                // fragment layout → frame with gaps → payload ranges → concealing decoder.
                let got: Vec<Option<Vec<u8>>> = frags
                    .iter()
                    .enumerate()
                    .map(|(k, f)| (!pick[..n_drop].contains(&k)).then(|| f.data.clone()))
                    .collect();
                let (rx, lost) = with_gaps(&got, &layout)?;
                let (frame, lost) = SemanticFrame::from_bytes_with_gaps(&rx, &lost)?;
                let rx_code = DigitalCode::from_parts(&frame.params, &frame.payload, DEFAULT_MAX_PIXELS)?;
                let (blank, rb) = model.decode_concealed(&rx_code, &lost, Conceal::Blank, DEFAULT_MAX_PIXELS)?;
                let (prior, rp) = model.decode_concealed(&rx_code, &lost, Conceal::Prior, DEFAULT_MAX_PIXELS)?;
                let (pb, pp) = (psnr(pic, &blank)?, psnr(pic, &prior)?);
                acc[5] += n_drop as f64 / frags.len() as f64;
                acc[6] += pb;
                acc[7] += pp;
                acc[8] += rb.lost_slices as f64 / rb.slices as f64;
                cases += 1;
                per_image.push(json!({
                    "image": path.file_name().map(|n| n.to_string_lossy().into_owned()), "seed": seed,
                    "fragments": frags.len(), "dropped": n_drop, "slices": rp.slices,
                    "lost_slices": rp.lost_slices, "concealed_blocks": rp.concealed_blocks,
                    "blank_psnr": pb, "prior_psnr": pp,
                }));
            }
            acc[0] += file.len() as f64 * 8.0 / px;
            acc[1] += p_plain;
            acc[2] += s_file as f64 * 8.0 / px;
            acc[3] += p_sliced;
            acc[4] += code.slice_count() as f64;
        }
        let n = all.len() as f64;
        let c = cases as f64;
        let (pb, pp) = (acc[6] / c, acc[7] / c);
        writeln!(
            text,
            "{bpp:>6.3} | {:>8.4} {:>8.2} | {:>8.4} {:>8.2} {:>6} {:>6.0} | {:>6.1}% {:>8.2} {:>8.2} {:>+7.2}",
            acc[0] / n,
            acc[1] / n,
            acc[2] / n,
            acc[3] / n,
            a.slice_rows.map_or("auto".to_string(), |r| r.to_string()),
            acc[4] / n,
            acc[5] / c * 100.0,
            pb,
            pp,
            pp - pb
        )?;
        rows_out.push(json!({
            "target_bpp": bpp, "unsliced_bpp": acc[0] / n, "unsliced_psnr": acc[1] / n,
            "sliced_bpp": acc[2] / n, "sliced_psnr": acc[3] / n, "mean_slices": acc[4] / n,
            "dropped_fraction": acc[5] / c, "lost_slice_fraction": acc[8] / c,
            "blank_psnr": pb, "prior_psnr": pp, "gain_db": pp - pb, "cases": per_image,
        }));
    }
    writeln!(
        text,
        "\nbpp over the whole .sem file; `sliced` PSNR with nothing lost; blank / prior: mean PSNR over images × seeds \
         with the fragments dropped (missing tokens zero / estimated from the received neighbours)."
    )?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "data": a.data.display().to_string(), "model": model.id().to_string(), "fragment": a.fragment,
                "drop": a.drop, "seeds": a.seeds, "rates": rows_out,
            }))?
        );
    } else {
        print!("{text}");
    }
    Ok(())
}
