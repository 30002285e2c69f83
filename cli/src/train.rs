//! `semcom train`: trains the codec's models and writes them with their model cards.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use semcom_codec::prior::Config;
use semcom_codec::train::{load_corpus, train, HeldOut, TrainOptions};
use semcom_codec::vocab::TAG_LOG;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    /// Train the text prior (and its BPE tokenizer) on log and text files.
    Text(TextArgs),
    /// Add the n-gram memory of the training text to a trained prior (same weights, new id).
    Ngram(NgramArgs),
    /// Train the sensor model (event classifier, anomaly detector, reconstruction transforms)
    /// on a dataset's train split.
    Sensor(crate::sensor::TrainArgs),
    /// Train the analog JSCC image model (KLT basis + refinement network) on photos.
    Image(crate::image::TrainArgs),
    /// Fit the digital image model (colour and 8 × 8 block transforms) on photos.
    ImageDigital(crate::image_digital::TrainArgs),
}

#[derive(Args, Debug)]
pub struct NgramArgs {
    /// The trained prior whose tokenizer the memory uses.
    #[arg(long, default_value = "models/text-prior.safetensors")]
    prior: PathBuf,
    /// Training data, split as `semcom train text` splits it (the last 20 % is never read).
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Extra training-only text; counted only with --with-extra.
    #[arg(long)]
    extra: Vec<PathBuf>,
    /// Count the extra text too.
    #[arg(long)]
    with_extra: bool,
    /// Longest context, tokens.
    #[arg(long, default_value_t = 6)]
    order: usize,
    /// Drop contexts of two or more tokens seen fewer times than this.
    #[arg(long, default_value_t = 2)]
    min_count: u32,
    /// Escape weight β of the blend (larger trusts the memory less).
    #[arg(long, default_value_t = 16.0)]
    beta: f64,
    /// Escape pseudo-count γ of the blend (larger trusts rarely seen contexts less).
    #[arg(long, default_value_t = 0.0)]
    gamma: f64,
    /// Run the transformer with 8-bit weights and activations (faster; exact integer sums).
    #[arg(long)]
    int8: bool,
    /// Model file to write; its card goes next to it as .md.
    #[arg(short, long, default_value = "models/text-prior.safetensors")]
    output: PathBuf,
}

#[derive(Args, Debug)]
pub struct TextArgs {
    /// Training data: files or directories (searched for *.log, *.txt, *.en). The last 20 % of
    /// each file's lines are held out.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Extra training-only text (one passage per line), e.g. from scripts/english-corpus.sh.
    #[arg(long)]
    extra: Vec<PathBuf>,
    /// Model file to write (safetensors); the model card goes next to it as .md.
    #[arg(short, long, default_value = "models/text-prior.safetensors")]
    output: PathBuf,
    /// Optimiser steps.
    #[arg(long, default_value_t = 6000)]
    steps: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens per row.
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    /// Width of the model.
    #[arg(long, default_value_t = 160)]
    d_model: usize,
    /// Transformer blocks.
    #[arg(long, default_value_t = 4)]
    layers: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// MLP width (default 4 × d_model).
    #[arg(long)]
    d_ff: Option<usize>,
    /// Longest context of the coder, tokens.
    #[arg(long, default_value_t = 256)]
    max_len: usize,
    /// BPE merges (text vocabulary = 288 + merges).
    #[arg(long, default_value_t = 1760)]
    merges: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Warm-up steps.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Fraction of stream rows (consecutive messages as context).
    #[arg(long, default_value_t = 0.2)]
    stream_fraction: f64,
    /// Sampling weights of log files, text files and extra text.
    #[arg(long, value_delimiter = ',', num_args = 3, default_values_t = [0.55, 0.25, 0.2])]
    mix: Vec<f64>,
    /// Seed of initialisation and sampling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Held-out evaluation every this many steps (0: only at the end).
    #[arg(long, default_value_t = 500)]
    eval_every: usize,
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: TrainCommand) -> Result<()> {
    match cmd {
        TrainCommand::Text(a) => text(a),
        TrainCommand::Ngram(a) => ngram(a),
        TrainCommand::Sensor(a) => crate::sensor::train(a),
        TrainCommand::Image(a) => crate::image::train(a),
        TrainCommand::ImageDigital(a) => crate::image_digital::train(a),
    }
}

fn ngram(a: NgramArgs) -> Result<()> {
    anyhow::ensure!(
        a.beta.is_finite() && a.beta >= 1.0 / 16.0 && a.beta <= 1e6,
        "--beta must be in [1/16, 10⁶]"
    );
    anyhow::ensure!(
        a.gamma.is_finite() && (0.0..=1e6).contains(&a.gamma),
        "--gamma must be in [0, 10⁶]"
    );
    let file = std::fs::read(&a.prior).with_context(|| format!("reading {}", a.prior.display()))?;
    // The transformer alone (f32, no memory): the baseline of the held-out check below.
    let file = semcom_codec::Prior::file_with_ngram(&file, None, false)
        .with_context(|| format!("loading {}", a.prior.display()))?;
    let prior = semcom_codec::Prior::from_bytes(&file).with_context(|| format!("loading {}", a.prior.display()))?;
    let files = load_corpus(&a.data, &a.extra)?;
    let t0 = std::time::Instant::now();
    let ng = semcom_codec::train::build_ngram(
        &files,
        prior.bpe(),
        a.with_extra,
        a.order,
        a.min_count,
        (a.beta * 16.0).round() as u32,
        (a.gamma * 16.0).round() as u32,
    )?;
    let out = semcom_codec::Prior::file_with_ngram(&file, Some(&ng), a.int8)?;
    let with = semcom_codec::Prior::from_bytes(&out)?;
    eprintln!(
        "{} contexts of 1…{} tokens in {:.1} s; model {} → {} bytes",
        ng.contexts(),
        ng.order(),
        t0.elapsed().as_secs_f64(),
        file.len(),
        out.len()
    );
    // Held-out check on a sample of each data file (the eval command measures all of it).
    let mut rows = Vec::new();
    for f in files.iter().filter(|f| !f.extra && !f.heldout.is_empty()) {
        let step = (f.heldout.len() / 40).max(1);
        let sample: Vec<&Vec<u8>> = f.heldout.iter().step_by(step).take(40).collect();
        let mut bits = [0f64; 2];
        let chars: usize = sample.iter().map(|l| l.len()).sum();
        for (k, p) in [&prior, &with].into_iter().enumerate() {
            let codec = semcom_codec::text::TextCodec::new(p);
            let kind = if f.tag == TAG_LOG {
                semcom_codec::text::TextKind::Log
            } else {
                semcom_codec::text::TextKind::Text
            };
            for l in &sample {
                bits[k] += 8.0 * codec.encode_payload(l, kind, None)?.len() as f64;
            }
        }
        rows.push((
            f.name.clone(),
            sample.len(),
            bits[0] / chars as f64,
            bits[1] / chars as f64,
        ));
    }
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&a.output, &out).with_context(|| format!("writing {}", a.output.display()))?;
    let sha = sha256_hex(&out);
    let command = std::iter::once("semcom".to_string())
        .chain(std::env::args().skip(1))
        .map(|s| if s.contains(' ') { format!("'{s}'") } else { s })
        .collect::<Vec<_>>()
        .join(" ");
    // The card of the prior, with the new identity and a section on the memory.
    let old_card = std::fs::read_to_string(a.prior.with_extension("md")).unwrap_or_default();
    let mut card = String::new();
    for line in old_card.lines() {
        if line.starts_with("## N-gram memory") {
            break;
        }
        if line.starts_with("- **sha256**") {
            writeln!(card, "- **sha256**: `{sha}` (model id `{}`)", with.id())?;
        } else if let Some(rest) = line.strip_prefix("- **size**: ") {
            let params = rest.split_once(", ").map_or("", |(_, p)| p);
            let params = params.split(" (weights)").next().unwrap_or(params);
            writeln!(
                card,
                "- **size**: {} bytes, {params} (weights) + n-gram memory",
                out.len()
            )?;
        } else {
            writeln!(card, "{line}")?;
        }
    }
    while card.ends_with("\n\n") {
        card.pop();
    }
    writeln!(card)?;
    writeln!(card, "## N-gram memory")?;
    writeln!(card)?;
    writeln!(card, "Added to the weights above (unchanged) by `{command}`: every context of 1…{} tokens in the training lines (first 80 % of each data file{}), {} contexts{}, blended into the transformer's distribution with escape weights β = {}, γ = {} (see `codec/src/prior/ngram.rs`). Stored in the tensor `ngram.table` ({} bytes, zstd).", ng.order(), if a.with_extra { " and the extra text" } else { "; extra text not counted" }, ng.contexts(), if a.min_count > 1 { format!(" (contexts of 2+ tokens seen ≥ {} times)", a.min_count) } else { String::new() }, a.beta, a.gamma, ng.to_bytes()?.len())?;
    writeln!(card)?;
    writeln!(card, "Engine arithmetic: {}. Held-out sample (up to 40 evenly spaced held-out lines per file, each coded alone), payload bits per character of the transformer alone (f32) and of this model:", if a.int8 { "8-bit weights and activations with exact integer sums (`--int8`)" } else { "f32" })?;
    writeln!(card)?;
    writeln!(card, "| file | messages | transformer alone | this model |")?;
    writeln!(card, "|---|---:|---:|---:|")?;
    for (n, m, b0, b1) in &rows {
        writeln!(card, "| {n} | {m} | {b0:.3} | {b1:.3} |")?;
        eprintln!("{n:20} {m:4} {b0:.3} → {b1:.3} bpc");
    }
    let card_path = a.output.with_extension("md");
    std::fs::write(&card_path, card).with_context(|| format!("writing {}", card_path.display()))?;
    eprintln!(
        "wrote {} (sha256 {sha}, model id {}) and {}",
        a.output.display(),
        with.id(),
        card_path.display()
    );
    Ok(())
}

/// Most memory `train text` sets out to use (bytes): beyond, an allocation would abort the
/// process instead of giving an error.
const MAX_TRAINING_MEMORY: f64 = 64.0 * (1u64 << 30) as f64;

/// A rough upper estimate of `train text`'s memory (bytes): weights, gradients and two AdamW
/// moments (f32), and per layer the activations a backward pass keeps (the attention matrices
/// grow with the square of the row length).
fn training_memory(a: &TextArgs) -> f64 {
    let (d, l, h) = (a.d_model as f64, a.layers as f64, a.heads as f64);
    let ff = a.d_ff.unwrap_or(4 * a.d_model) as f64;
    let (t, b) = (a.seq_len.max(1) as f64, a.batch as f64);
    let vocab = 288.0 + a.merges as f64;
    let params = 2.0 * vocab * d + a.max_len.max(a.seq_len) as f64 * d + l * (4.0 * d * d + 2.0 * d * ff);
    let activations = b * t * l * (16.0 * d + 2.0 * ff + 3.0 * h * t) + 2.0 * b * t * vocab;
    4.0 * (4.0 * params + activations)
}

fn text(a: TextArgs) -> Result<()> {
    anyhow::ensure!(
        a.steps > 0 && a.batch > 0 && a.seq_len >= 8,
        "steps, batch and seq-len must be positive (seq-len ≥ 8)"
    );
    anyhow::ensure!(
        a.mix.len() == 3 && a.mix.iter().all(|&m| m >= 0.0) && a.mix.iter().sum::<f64>() > 0.0,
        "--mix takes three non-negative weights"
    );
    anyhow::ensure!(
        (0.0..=1.0).contains(&a.stream_fraction),
        "--stream-fraction must be in [0, 1]"
    );
    anyhow::ensure!(a.lr.is_finite() && a.lr > 0.0, "--lr {}: must be above 0", a.lr);
    anyhow::ensure!(
        a.max_len >= 8,
        "--max-len {}: the coder needs a context of 8 tokens or more",
        a.max_len
    );
    let need = training_memory(&a);
    anyhow::ensure!(
        need <= MAX_TRAINING_MEMORY,
        "this model and batch would need about {:.0} GiB to train (at most {} GiB): reduce --seq-len, --batch, --d-model, --d-ff, --layers or --max-len",
        need / f64::from(1u32 << 30),
        MAX_TRAINING_MEMORY / f64::from(1u32 << 30)
    );
    let files = load_corpus(&a.data, &a.extra)?;
    let model = Config {
        vocab_size: 0,
        d_model: a.d_model,
        n_layers: a.layers,
        n_heads: a.heads,
        d_ff: a.d_ff.unwrap_or(4 * a.d_model),
        max_len: a.max_len,
        image_tokens: 0,
        sensor_tokens: 0,
    };
    let opts = TrainOptions {
        model,
        merges: a.merges,
        steps: a.steps,
        batch: a.batch,
        seq_len: a.seq_len,
        lr: a.lr,
        warmup: a.warmup.min(a.steps / 2),
        weight_decay: 0.1,
        seed: a.seed,
        stream_fraction: a.stream_fraction,
        mix: [a.mix[0], a.mix[1], a.mix[2]],
        eval_every: a.eval_every,
        eval_sample: 40,
    };
    let n_lines: usize = files.iter().map(|f| f.train.len()).sum();
    // Without held-out lines the model card's figures would be the mean of nothing.
    anyhow::ensure!(
        files.iter().any(|f| !f.heldout.is_empty()),
        "no held-out lines: the last 20 % of each --data file is held out, and these files are too short"
    );
    eprintln!(
        "{} files, {n_lines} training lines; training {} steps",
        files.len(),
        a.steps
    );
    let bar = ProgressBar::new(a.steps as u64).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps ({eta} left) {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut recent = Vec::new();
    let trained = train(&files, &opts, &mut |p| {
        recent.push(p.loss_bits);
        if recent.len() > 50 {
            recent.remove(0);
        }
        let avg = recent.iter().sum::<f64>() / recent.len() as f64;
        bar.set_position(p.step as u64);
        bar.set_message(format!("loss {avg:.3} bit/token, {:.0} tokens/s", p.tokens_per_s));
        if let Some(h) = &p.heldout {
            let line = format!("step {}: held-out {}", p.step, summary(h));
            if bar.is_hidden() {
                eprintln!("{line}");
            } else {
                bar.println(line);
            }
        }
    })?;
    bar.finish_and_clear();

    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&a.output, &trained.file).with_context(|| format!("writing {}", a.output.display()))?;
    let sha = sha256_hex(&trained.file);
    let card_path = a.output.with_extension("md");
    let command = std::env::args()
        .map(|s| if s.contains(' ') { format!("'{s}'") } else { s })
        .collect::<Vec<_>>()
        .join(" ");
    let card = model_card(&a, &files, &trained, &sha, &command)?;
    std::fs::write(&card_path, card).with_context(|| format!("writing {}", card_path.display()))?;
    eprintln!("held-out: {}", summary(&trained.heldout));
    eprintln!(
        "wrote {} (sha256 {sha}) and {}",
        a.output.display(),
        card_path.display()
    );
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "model": a.output, "sha256": sha, "steps": a.steps, "seconds": trained.seconds,
                "tokens": trained.tokens, "initial_loss_bits": trained.initial_loss_bits,
                "final_loss_bits": trained.final_loss_bits, "heldout": trained.heldout,
            })
        );
    }
    Ok(())
}

fn summary(h: &[HeldOut]) -> String {
    let mean = |f: &dyn Fn(&HeldOut) -> bool| {
        let v: Vec<f64> = h.iter().filter(|x| f(x)).map(|x| x.bits_per_char).collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let logs = mean(&|x| x.name != "europarl-v7.fr-en");
    let parts: Vec<String> = h.iter().map(|x| format!("{} {:.3}", x.name, x.bits_per_char)).collect();
    format!("mean {logs:.3} bpc over logs; {}", parts.join(", "))
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn file_sha(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| sha256_hex(&b))
        .unwrap_or_else(|e| format!("unreadable: {e}"))
}

fn model_card(
    a: &TextArgs,
    files: &[semcom_codec::train::TextFile],
    t: &semcom_codec::train::Trained,
    sha: &str,
    command: &str,
) -> Result<String> {
    let prior = semcom_codec::Prior::from_bytes(&t.file)?;
    let cfg = prior.engine().config();
    let mut s = String::new();
    let params: usize = cfg.vocab_size * cfg.d_model * 2
        + cfg.max_len * cfg.d_model
        + cfg.n_layers * (4 * cfg.d_model * cfg.d_model + 2 * cfg.d_model * cfg.d_ff + 9 * cfg.d_model + cfg.d_ff)
        + 2 * cfg.d_model;
    writeln!(
        s,
        "# Model card: {}",
        a.output.file_name().and_then(|n| n.to_str()).unwrap_or("model")
    )?;
    writeln!(s)?;
    writeln!(s, "The text prior of semcom: a causal transformer whose next-token distribution drives the range coder of the text codec (and, later, the shared multimodal token space).")?;
    writeln!(s)?;
    writeln!(s, "- **sha256**: `{sha}` (model id `{}`)", prior.id())?;
    writeln!(s, "- **size**: {} bytes, {params} parameters", t.file.len())?;
    writeln!(
        s,
        "- **architecture**: vocab {} (256 bytes, 32 specials, {} BPE merges), d_model {}, {} layers, {} heads, d_ff {}, context {} tokens, pre-LayerNorm, learned positions, GELU",
        cfg.vocab_size,
        prior.bpe().merges().len(),
        cfg.d_model,
        cfg.n_layers,
        cfg.n_heads,
        cfg.d_ff,
        cfg.max_len
    )?;
    writeln!(s, "- **command**: `{command}`")?;
    writeln!(s, "- **seed**: {}; **steps**: {}; batch {} × {} tokens; peak lr {}; AdamW (β 0.9/0.95, wd 0.1 on matrices), warm-up {} steps, cosine to 10 %", a.seed, a.steps, a.batch, a.seq_len, a.lr, a.warmup.min(a.steps / 2))?;
    writeln!(
        s,
        "- **trained on**: {} in {:.0} s ({} tokens, {:.0} tokens/s)",
        t.device,
        t.seconds,
        t.tokens,
        t.tokens as f64 / t.seconds
    )?;
    writeln!(
        s,
        "- **training loss**: {:.3} → {:.3} bits/token (first 10 → last 100 steps)",
        t.initial_loss_bits, t.final_loss_bits
    )?;
    writeln!(s)?;
    writeln!(s, "## Data")?;
    writeln!(s)?;
    writeln!(s, "Training uses the first 80 % of each data file's lines; the last 20 % are held out. Extra text is training only.")?;
    writeln!(s)?;
    writeln!(s, "| file | tag | training lines | held-out lines |")?;
    writeln!(s, "|---|---|---:|---:|")?;
    for f in files {
        let tag = if f.extra {
            "text (extra)"
        } else if f.tag == TAG_LOG {
            "log"
        } else {
            "text"
        };
        writeln!(s, "| {} | {tag} | {} | {} |", f.name, f.train.len(), f.heldout.len())?;
    }
    writeln!(s)?;
    for p in a.data.iter().chain(&a.extra) {
        if p.is_file() {
            writeln!(s, "- `{}`: sha256 `{}`", p.display(), file_sha(p))?;
        } else {
            writeln!(s, "- `{}` (directory)", p.display())?;
        }
    }
    writeln!(s)?;
    writeln!(s, "## Held-out metrics")?;
    writeln!(s)?;
    writeln!(s, "Cross-entropy of the model on every held-out line, each coded on its own (tag, tokens and end of message), in bits per character. The bytes actually sent are measured by `semcom eval text`.")?;
    writeln!(s)?;
    writeln!(s, "| file | messages | bits/char |")?;
    writeln!(s, "|---|---:|---:|")?;
    for h in &t.heldout {
        writeln!(s, "| {} | {} | {:.3} |", h.name, h.messages, h.bits_per_char)?;
    }
    Ok(s)
}
