//! `semcom train image` and `semcom eval image`: the analog JSCC image model.

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use semcom_codec::image::net::MAX_DEPTH;
use semcom_codec::image::train::{eval_analog, load_images, train_analog, ImageTrainOptions};
use semcom_codec::image::{AnalogCode, AnalogJscc};
use semcom_codec::picture::Picture;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Directories of training photos (PNG/JPEG). Every 10th image (sorted by name) is held out
    /// for the progress score. Never give the evaluation set (Kodak) here.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Model file to write; the model card goes next to it as .md.
    #[arg(short, long, default_value = "models/image-jscc.safetensors")]
    output: PathBuf,
    /// Optimiser steps of the refinement network.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Crops per step.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Crop side, pixels (multiple of 32).
    #[arg(long, default_value_t = 256)]
    crop: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Width of the network at block resolution.
    #[arg(long, default_value_t = 192)]
    coarse: usize,
    /// Residual 3 × 3 convolutions at block, half-block and quarter-block resolution, as
    /// `COARSE,MID,FINE` (each 0 … 16).
    #[arg(long, default_value = "1,1,1", value_parser = depths)]
    depth: [usize; 3],
    /// Seed of initialisation, crops and channel noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Go on training this model's network: its transform, power allocation and network shape
    /// are kept (so --coarse and --depth cannot be given).
    #[arg(long, conflicts_with_all = ["coarse", "depth"])]
    init: Option<PathBuf>,
    /// Stop training after this long (`470`, `470s`, `8m`), keeping the model (the card says
    /// how many steps were done).
    #[arg(long, value_parser = crate::units::duration)]
    time_limit: Option<std::time::Duration>,
    /// Held-out score every this many steps.
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    /// Evaluation images for the model card (scored after training; never trained on).
    #[arg(long)]
    card_eval: Option<PathBuf>,
}

/// `--depth`: three counts of layers, 0 … [`MAX_DEPTH`] each.
fn depths(s: &str) -> Result<[usize; 3], String> {
    let v: Vec<usize> = s
        .split(',')
        .map(|p| p.trim().parse::<usize>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match v[..] {
        [a, b, c] if v.iter().all(|&d| d <= MAX_DEPTH) => Ok([a, b, c]),
        [_, _, _] => Err(format!("at most {MAX_DEPTH} layers per scale")),
        _ => Err(format!("{} values: give three, COARSE,MID,FINE", v.len())),
    }
}

pub fn train(a: TrainArgs) -> Result<()> {
    anyhow::ensure!(
        a.steps > 0 && a.batch > 0 && a.eval_every > 0,
        "--steps, --batch and --eval-every must be positive"
    );
    let t0 = Instant::now();
    let all = load_images(&a.data)?;
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (i, (_, p)) in all.iter().enumerate() {
        if i % 10 == 9 {
            held.push(p)
        } else {
            train.push(p)
        }
    }
    let mut opts = ImageTrainOptions {
        steps: a.steps,
        batch: a.batch,
        crop: a.crop,
        lr: a.lr,
        seed: a.seed,
        time_limit: a.time_limit,
        init: match &a.init {
            Some(p) => Some(std::sync::Arc::new(AnalogJscc::load(p)?)),
            None => None,
        },
        ..Default::default()
    };
    opts.config.net.coarse = a.coarse;
    opts.config.net.depth = a.depth;
    let bar = ProgressBar::new(a.steps as u64).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} step {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut log = Vec::new();
    let mut avg = 0f32;
    let trained = train_analog(&train, &held, &opts, a.eval_every, &mut |p| {
        avg = if p.step == 1 {
            p.loss
        } else {
            0.98 * avg + 0.02 * p.loss
        };
        bar.set_position(p.step as u64);
        bar.set_message(format!("loss {avg:.5}"));
        if let Some(h) = &p.heldout {
            let s: Vec<String> = h.iter().map(|(snr, l, f)| format!("{snr} dB: {l:.2}→{f:.2}")).collect();
            let line = format!("step {}: held-out PSNR (linear→network) {}", p.step, s.join(", "));
            // A hidden bar (output not a terminal) prints nothing: the scores go to stderr.
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
            log.push((p.step, h.clone()));
        }
    })?;
    bar.finish_and_clear();
    let (model, bytes) = (trained.model, trained.bytes);
    let secs = t0.elapsed().as_secs_f64();
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    std::fs::write(&a.output, &bytes).with_context(|| a.output.display().to_string())?;
    let c = model.config();
    let (rn, rd) = model.ratio();
    let mut s = String::new();
    let name = a.output.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    writeln!(s, "# Model card: {name}\n")?;
    writeln!(s, "The analog JSCC image model of semcom (`codec/src/image/`): a Karhunen–Loève transform of 32 × 32 RGB blocks keeping {} coefficients (k/n = {rn}/{rd}), power allocation λ^-1/4, linear MMSE estimate at the receiver, then a convolutional refinement network conditioned on the per-symbol SNR.\n", c.components)?;
    writeln!(
        s,
        "- **sha256**: `{}` (model id `{}`)",
        crate::train::sha256_hex(&bytes),
        model.id()
    )?;
    writeln!(s, "- **size**: {} bytes", bytes.len())?;
    writeln!(s, "- **network**: widths {} (1/32) → {} (1/16) → {} (1/8), a pointwise input layer then {:?} residual 3 × 3 convolutions at those scales, GELU, pixel shuffle; input {} features per block", c.net.coarse, c.net.mid, c.net.fine, c.net.depth, c.net.input)?;
    let stopped = if trained.steps < opts.steps {
        format!(" (stopped by --time-limit; the schedule was for {})", opts.steps)
    } else {
        String::new()
    };
    if let (Some(m), Some(path)) = (&opts.init, &a.init) {
        writeln!(
            s,
            "- **went on from**: model `{}` (`{}`): its transform and network weights",
            m.id(),
            path.display()
        )?;
    }
    writeln!(s, "- **training**: {} steps{stopped} × {} crops of {}², AdamW lr {} (warm-up, cosine to 2 %), weight decay 1e-4, SNR uniform in {:?} dB per crop, half of the crops with per-symbol Rayleigh SNRs; MSE loss", trained.steps, opts.batch, opts.crop, opts.lr, opts.snr_range)?;
    writeln!(s, "- **command**: `{}`", std::env::args().collect::<Vec<_>>().join(" "))?;
    writeln!(
        s,
        "- **seed**: {}; trained on the {} in {secs:.0} s",
        a.seed, trained.device
    )?;
    let dirs: Vec<String> = a.data.iter().map(|d| format!("`{}`", d.display())).collect();
    writeln!(
        s,
        "- **data**: {} ({} images: {} for training, {} held out — every 10th by name)",
        dirs.join(", "),
        all.len(),
        train.len(),
        held.len()
    )?;
    writeln!(
        s,
        "\n## Held-out PSNR during training (centre crops, AWGN on the symbols, linear MMSE → with network)\n"
    )?;
    writeln!(s, "| step | 1 dB | 10 dB | 20 dB |\n|---|---|---|---|")?;
    for (step, h) in &log {
        let cells: Vec<String> = h.iter().map(|(_, l, f)| format!("{l:.2} → {f:.2}")).collect();
        writeln!(s, "| {step} | {} |", cells.join(" | "))?;
    }
    if let Some(dir) = &a.card_eval {
        let pics = load_images(std::slice::from_ref(dir))?;
        let refs: Vec<&Picture> = pics.iter().map(|(_, p)| p).collect();
        let snrs = [0.0f32, 1.0, 5.0, 10.0, 15.0, 20.0];
        let table = eval_analog(&model, &refs, &snrs, false, 1)?;
        writeln!(
            s,
            "\n## Evaluation on `{}` ({} images, never trained on; AWGN on the symbols, no PHY)\n",
            dir.display(),
            refs.len()
        )?;
        writeln!(s, "| SNR dB | mean PSNR dB |\n|---|---|")?;
        for (snr, row) in snrs.iter().zip(&table) {
            writeln!(s, "| {snr} | {:.2} |", row.iter().sum::<f64>() / row.len() as f64)?;
        }
        writeln!(
            s,
            "\nCommand: `semcom eval image --data {} --model {}`",
            dir.display(),
            a.output.display()
        )?;
    }
    let card = a.output.with_extension("md");
    std::fs::write(&card, s).with_context(|| card.display().to_string())?;
    eprintln!(
        "wrote {} (id {}) and {} in {secs:.0} s",
        a.output.display(),
        model.id(),
        card.display()
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Directory of evaluation images (e.g. ../shared/datasets/kodak).
    #[arg(long, required = true)]
    data: PathBuf,
    /// The analog image model.
    #[arg(long, default_value = "models/image-jscc.safetensors")]
    model: PathBuf,
    /// SNRs in dB: A:STEP:B, a value, or a comma-separated list of those (0:1:3,10,20).
    #[arg(long, default_value = "0:1:20")]
    snr: String,
    /// Per-symbol Rayleigh fading instead of AWGN.
    #[arg(long)]
    fading: bool,
    /// At most this many images (0: all).
    #[arg(short = 'n', long, default_value_t = 0)]
    limit: usize,
    /// Seed of the channel noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let model = AnalogJscc::load(&a.model)?;
    let snrs: Vec<f32> = crate::units::snr_range(&a.snr)?.into_iter().map(|v| v as f32).collect();
    let mut pics = load_images(std::slice::from_ref(&a.data))?;
    if a.limit > 0 {
        pics.truncate(a.limit);
    }
    let refs: Vec<&Picture> = pics.iter().map(|(_, p)| p).collect();
    let table = eval_analog(&model, &refs, &snrs, a.fading, a.seed)?;
    let (rn, rd) = model.ratio();
    let rows: Vec<serde_json::Value> = snrs
        .iter()
        .zip(&table)
        .map(|(snr, row)| {
            let mean = row.iter().sum::<f64>() / row.len() as f64;
            serde_json::json!({"snr_db": snr, "psnr_db": mean, "min_psnr_db": row.iter().cloned().fold(f64::INFINITY, f64::min)})
        })
        .collect();
    if a.json {
        println!(
            "{}",
            serde_json::json!({"model": model.id().to_string(), "ratio": format!("{rn}/{rd}"), "channel": if a.fading {"rayleigh-per-symbol"} else {"awgn"}, "images": refs.len(), "rows": rows})
        );
    } else {
        println!(
            "analog JSCC {} (k/n = {rn}/{rd}) on {} images, {} on the symbols (no PHY)",
            model.id(),
            refs.len(),
            if a.fading { "per-symbol Rayleigh" } else { "AWGN" }
        );
        println!("{:>7} {:>10} {:>10}", "SNR dB", "PSNR dB", "min dB");
        for r in &rows {
            println!(
                "{:>7.1} {:>10.2} {:>10.2}",
                r["snr_db"].as_f64().unwrap_or(0.0),
                r["psnr_db"].as_f64().unwrap_or(0.0),
                r["min_psnr_db"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// The learned analog model as `semcom sim image --mode analog` runs it.
pub struct Jscc(pub AnalogJscc);

impl crate::simimage::AnalogImageCodec for Jscc {
    fn name(&self) -> String {
        format!("learned JSCC {}", self.0.id())
    }

    fn symbols(&self, pic: &Picture, ratio: (usize, usize), _snr_db: f64) -> Result<(Vec<num_complex::Complex32>, u8)> {
        let own = self.0.ratio();
        anyhow::ensure!(
            ratio == own,
            "the analog model sends k/n = {}/{}; run it with --ratio {}/{}",
            own.0,
            own.1,
            own.0,
            own.1
        );
        let code = self.0.encode(pic)?;
        Ok((code.symbols, code.gain_code))
    }

    fn reconstruct(
        &self,
        rx: &[num_complex::Complex32],
        snr_db: &[f32],
        param: u8,
        width: usize,
        height: usize,
        channels: usize,
    ) -> Result<Picture> {
        let code = AnalogCode {
            width,
            height,
            channels,
            gain_code: param,
            symbols: rx.to_vec(),
        };
        Ok(self.0.decode(&code, snr_db)?)
    }
}
