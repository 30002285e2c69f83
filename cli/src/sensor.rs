//! The sensor codec on the command line: `semcom train sensor`, `semcom eval sensor`,
//! `semcom sim sensor`, and the sensor side of `semcom encode` / `semcom decode`.
//!
//! Datasets are read from a UCI HAR folder (`…/uci-har`) or a UCR/UEA folder holding
//! `<Name>_TRAIN.ts` and `<Name>_TEST.ts`. Every figure is measured on the dataset's own test
//! split; models are trained on its train split only.

use crate::train::sha256_hex;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_codec::frame::put_varint;
use semcom_codec::sensor::data::{self, Labelled};
use semcom_codec::sensor::train::{train as train_model, SensorTrainOptions};
use semcom_codec::sensor::{self, gorilla, nrmse, Decoded, Event, OnChange, SensorModel, Window};
use semcom_codec::{Modality, SemanticFrame};
use semcom_phy::channel::{burst_power, Awgn, Chain, Impairment, TimingOffset};
use semcom_phy::crc::append_fcs;
use semcom_phy::rx::{KnownFormat, SIFS_SAMPLES};
use semcom_phy::{Complex32, Rate, Receiver, RxConfig, RxEvent, Transmitter, TxParams};
use serde_json::json;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Largest window a decoded lossless header may declare (samples).
const MAX_SAMPLES: usize = 1 << 22;

/// A dataset split by name: UCI HAR or a UCR/UEA folder.
pub fn load_split(dir: &Path, split: &str) -> Result<(Labelled, Vec<String>)> {
    if data::har_root(dir).is_some() {
        let l = data::load_har(dir, split)?;
        return Ok((l, data::HAR_CHANNELS.iter().map(|s| s.to_string()).collect()));
    }
    let want = format!("_{}.ts", split.to_ascii_uppercase());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: not a UCI HAR or UCR folder", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&want))
        })
        .collect();
    files.sort();
    let Some(f) = files.first() else {
        bail!("{}: no UCI HAR layout and no *{want} file", dir.display())
    };
    let l = data::load_ts(f)?;
    let ch = l.windows.first().map_or(0, Window::channels);
    Ok((l, (0..ch).map(|c| format!("dim{c}")).collect()))
}

// ───────────────────────────── train ─────────────────────────────

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Dataset folder (UCI HAR, or UCR with equal-length series); its train split is used.
    #[arg(long)]
    data: PathBuf,
    /// Model file to write; the model card goes next to it as .md.
    #[arg(short, long, default_value = "models/sensor-har.safetensors")]
    output: PathBuf,
    /// Passes over the training windows.
    #[arg(long, default_value_t = 120, value_parser = crate::units::at_least_one)]
    epochs: usize,
    /// Seed of initialisation and batch order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn train(a: TrainArgs) -> Result<()> {
    let t0 = Instant::now();
    let (train_set, names) = load_split(&a.data, "train")?;
    let opts = SensorTrainOptions {
        seed: a.seed,
        epochs: a.epochs,
        ..Default::default()
    };
    let bar = ProgressBar::new(a.epochs as u64).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} epoch {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (model, report) = train_model(&train_set, names, &opts, &mut |_, loss| {
        bar.inc(1);
        bar.set_message(format!("loss {loss:.4}"));
    })?;
    bar.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    let bytes = model.to_bytes()?;
    if let Some(dir) = a.output.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    }
    std::fs::write(&a.output, &bytes).with_context(|| a.output.display().to_string())?;
    // Held-out figures for the card: the test split, never seen in training.
    let test = load_split(&a.data, "test").ok().map(|t| t.0);
    let acc = test
        .as_ref()
        .map(|t| accuracy(&model, &t.windows, &t.labels))
        .transpose()?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let sha = sha256_hex(&bytes);
    let c = &model.config;
    let mut s = String::new();
    let name = a.output.file_name().and_then(|n| n.to_str()).unwrap_or("model");
    writeln!(s, "# Model card: {name}\n")?;
    writeln!(s, "The sensor model of semcom: the event classifier and anomaly detector, and the per-channel KLT bases of reconstruction mode (see `codec/src/sensor/model.rs`).\n")?;
    writeln!(s, "- **sha256**: `{sha}` (model id `{}`)", model.id())?;
    writeln!(s, "- **size**: {} bytes", bytes.len())?;
    writeln!(
        s,
        "- **shape**: {} channels × {} samples ({}); classes: {}",
        c.channels,
        c.len,
        c.channel_names.join(", "),
        c.classes.join(", ")
    )?;
    writeln!(s, "- **classifier**: {} features → {} → {} → {} (ReLU), AdamW lr {} (cosine to 5 %), weight decay {}, batch {}, {} epochs, {} steps", sensor::features::count(c.channels), c.hidden[0], c.hidden[1], c.classes.len(), opts.lr, opts.weight_decay, opts.batch, opts.epochs, report.steps)?;
    writeln!(
        s,
        "- **anomaly threshold**: RMS of standardised features > {:.3} (the {:.1} % quantile of the training windows)",
        c.anomaly_threshold,
        opts.anomaly_quantile * 100.0
    )?;
    writeln!(s, "- **command**: `{command}`")?;
    writeln!(s, "- **seed**: {}; trained on the CPU in {secs:.1} s", a.seed)?;
    writeln!(
        s,
        "- **data**: `{}`, train split only: {} windows",
        a.data.display(),
        train_set.windows.len()
    )?;
    writeln!(
        s,
        "- **training loss**: {:.4} → {:.4} nats (first → last epoch); training accuracy {:.2} %",
        report.loss_first_last.0,
        report.loss_first_last.1,
        100.0 * report.train_accuracy
    )?;
    if let (Some(t), Some(acc)) = (&test, acc) {
        writeln!(
            s,
            "\n## Held-out metrics (test split, {} windows; never used in training)\n",
            t.windows.len()
        )?;
        writeln!(s, "- event (1 byte per window): accuracy {:.2} %", 100.0 * acc)?;
        let ev = eval_event(&model, t, true)?;
        writeln!(
            s,
            "- anomaly flag on clean test windows: {:.2} %",
            100.0 * ev["anomaly_rate_clean"].as_f64().unwrap_or(f64::NAN)
        )?;
        for target in [0.05f32, 0.045] {
            let r = eval_recon(&model, t, target, true)?;
            writeln!(s, "- reconstruction at target NRMSE {target}: {:.1} bytes/window mean ({:.4} of raw f32), worst channel NRMSE {:.4} of the test-split std ({:.4} of the training std), classifier accuracy on reconstructions {:.2} % (originals {:.2} %)",
                r["mean_payload_bytes"].as_f64().unwrap_or(f64::NAN), r["fraction_of_raw"].as_f64().unwrap_or(f64::NAN),
                r["nrmse_worst_channel"].as_f64().unwrap_or(f64::NAN),
                r["nrmse_per_channel_train_std"].as_array().map_or(f64::NAN, |v| v.iter().filter_map(|x| x.as_f64()).fold(0.0, f64::max)),
                100.0 * r["accuracy_reconstructed"].as_f64().unwrap_or(f64::NAN), 100.0 * r["accuracy_original"].as_f64().unwrap_or(f64::NAN))?;
        }
    }
    writeln!(
        s,
        "\nReproduce the held-out figures with `semcom eval sensor --data {} --model {}`.",
        a.data.display(),
        a.output.display()
    )?;
    let card = a.output.with_extension("md");
    std::fs::write(&card, s).with_context(|| card.display().to_string())?;
    println!(
        "wrote {} ({} bytes, sha256 {sha}) and {}; training accuracy {:.2} %{}",
        a.output.display(),
        bytes.len(),
        card.display(),
        100.0 * report.train_accuracy,
        acc.map_or(String::new(), |a| format!(", test accuracy {:.2} %", 100.0 * a))
    );
    Ok(())
}

fn accuracy(model: &SensorModel, windows: &[Window], labels: &[u8]) -> Result<f64> {
    let mut ok = 0usize;
    for (w, &l) in windows.iter().zip(labels) {
        ok += usize::from(model.assess(w)?.class == l);
    }
    Ok(ok as f64 / windows.len().max(1) as f64)
}

// ───────────────────────────── eval ─────────────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EvalMode {
    /// Lossless coding against the Gorilla baseline, zstd and raw f32.
    Lossless,
    /// Learned reconstruction tokens at a target NRMSE.
    Reconstruct,
    /// One-byte event tokens: accuracy and anomaly flags.
    Event,
    /// Send on change of meaning over a session built from runs of same-activity test windows.
    OnChange,
    /// All three.
    All,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Dataset folder (UCI HAR, or a UCR folder with <Name>_TEST.ts); the test split is used.
    #[arg(long)]
    data: PathBuf,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = EvalMode::All)]
    mode: EvalMode,
    /// Sensor model (reconstruct and event modes).
    #[arg(long, default_value = "models/sensor-har.safetensors")]
    model: PathBuf,
    /// Target NRMSE per channel (fraction of the channel's training standard deviation).
    #[arg(long, default_value_t = 0.05)]
    nrmse: f32,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn zstd_size(bytes: &[u8]) -> Result<usize> {
    Ok(zstd::bulk::compress(bytes, 19)?.len())
}

pub fn eval(a: EvalArgs) -> Result<()> {
    let (test, _) = load_split(&a.data, "test")?;
    if test.windows.is_empty() {
        bail!("{}: the test split holds no windows", a.data.display());
    }
    let mut report = serde_json::Map::new();
    report.insert("data".into(), json!(a.data.display().to_string()));
    report.insert("windows".into(), json!(test.windows.len()));
    let samples: usize = test.windows.iter().map(|w| w.samples().len()).sum();
    if matches!(a.mode, EvalMode::Lossless | EvalMode::All) {
        let (mut ours, mut gor, mut zs, mut raw) = (0usize, 0usize, 0usize, 0usize);
        let t0 = Instant::now();
        let payloads: Vec<Vec<u8>> = test.windows.iter().map(sensor::encode_lossless).collect();
        let secs = t0.elapsed().as_secs_f64();
        for (w, p) in test.windows.iter().zip(&payloads) {
            let back = sensor::decode(p, None, MAX_SAMPLES)?;
            let Decoded::Window(back) = back else {
                bail!("lossless payload decoded to an event")
            };
            if back
                .samples()
                .iter()
                .zip(w.samples())
                .any(|(x, y)| x.to_bits() != y.to_bits())
            {
                bail!("lossless round trip failed: a coder bug");
            }
            let g = gorilla::encode(w);
            if gorilla::decode(&g, w.channels(), w.len())? != *w {
                bail!("Gorilla round trip failed: a coder bug");
            }
            ours += p.len();
            gor += g.len();
            zs += zstd_size(&w.to_le_bytes())?;
            raw += w.raw_bytes();
        }
        let v = json!({"bytes": ours, "gorilla_bytes": gor, "zstd19_bytes": zs, "raw_f32_bytes": raw,
            "bits_per_sample": 8.0 * ours as f64 / samples as f64,
            "gorilla_bits_per_sample": 8.0 * gor as f64 / samples as f64,
            "zstd19_bits_per_sample": 8.0 * zs as f64 / samples as f64,
            "gain_over_gorilla": gor as f64 / ours as f64, "gain_over_zstd": zs as f64 / ours as f64,
            "gain_over_raw": raw as f64 / ours as f64, "encode_windows_per_s": test.windows.len() as f64 / secs,
            "verified": "every window decoded bit-exactly (f32)"});
        if !a.json {
            println!(
                "lossless, {} test windows, {samples} samples (each window coded alone, payload incl. its tag byte):",
                test.windows.len()
            );
            println!(
                "  semcom   {:>9} bytes  {:>6.2} bits/sample",
                ours,
                8.0 * ours as f64 / samples as f64
            );
            println!(
                "  Gorilla  {:>9} bytes  {:>6.2} bits/sample  (semcom is {:.2}× smaller)",
                gor,
                8.0 * gor as f64 / samples as f64,
                gor as f64 / ours as f64
            );
            println!(
                "  zstd -19 {:>9} bytes  {:>6.2} bits/sample  (semcom is {:.2}× smaller)",
                zs,
                8.0 * zs as f64 / samples as f64,
                zs as f64 / ours as f64
            );
            println!("  raw f32  {:>9} bytes  32.00 bits/sample", raw);
        }
        report.insert("lossless".into(), v);
    }
    if matches!(
        a.mode,
        EvalMode::Reconstruct | EvalMode::Event | EvalMode::OnChange | EvalMode::All
    ) {
        let model = SensorModel::load(&a.model)?;
        if matches!(a.mode, EvalMode::Event | EvalMode::All) {
            report.insert("event".into(), eval_event(&model, &test, a.json)?);
        }
        if matches!(a.mode, EvalMode::Reconstruct | EvalMode::All) {
            report.insert("reconstruct".into(), eval_recon(&model, &test, a.nrmse, a.json)?);
        }
        if matches!(a.mode, EvalMode::OnChange | EvalMode::All) {
            report.insert("on_change".into(), eval_on_change(&model, &test, a.nrmse, a.json)?);
        }
    }
    if a.json {
        println!("{}", serde_json::Value::Object(report));
    }
    Ok(())
}

/// A window made unlike the training data in one of four seeded ways.
fn corrupt(w: &Window, kind: usize, rng: &mut ChaCha8Rng) -> Result<Window> {
    let (ch, len) = (w.channels(), w.len());
    let mut s = w.samples().to_vec();
    let c = rng.random_range(0..ch);
    match kind {
        // A stuck sensor: one channel frozen at its first value.
        0 => {
            let v = s[c * len];
            s[c * len..(c + 1) * len].fill(v);
        }
        // A gain fault: one channel ×8.
        1 => s[c * len..(c + 1) * len].iter_mut().for_each(|x| *x *= 8.0),
        // Impulsive interference: 8 spikes of 5 g / 5 rad/s.
        2 => {
            for _ in 0..8 {
                let i = rng.random_range(0..len);
                s[c * len + i] += if rng.random() { 5.0 } else { -5.0 };
            }
        }
        // A dropped-out device: every channel zero.
        _ => s.fill(0.0),
    }
    Ok(Window::new(ch, len, s)?)
}

fn eval_event(model: &SensorModel, test: &Labelled, quiet: bool) -> Result<serde_json::Value> {
    let k = model.config.classes.len();
    let mut confusion = vec![vec![0usize; k]; k];
    let (mut ok, mut flagged, mut level_sum) = (0usize, 0usize, 0f64);
    for (w, &l) in test.windows.iter().zip(&test.labels) {
        let p = sensor::encode_event(model, w)?;
        if p.len() != 1 {
            bail!("event payload of {} bytes", p.len());
        }
        let Decoded::Event(e) = sensor::decode(&p, Some(model), MAX_SAMPLES)? else {
            bail!("not an event")
        };
        ok += usize::from(e.class == l);
        flagged += usize::from(e.anomaly);
        level_sum += f64::from(e.confidence());
        if usize::from(l) < k && usize::from(e.class) < k {
            confusion[usize::from(l)][usize::from(e.class)] += 1;
        }
    }
    let n = test.windows.len();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut detected = [0usize; 4];
    for (i, w) in test.windows.iter().enumerate() {
        let kind = i % 4;
        detected[kind] += usize::from(model.assess(&corrupt(w, kind, &mut rng)?)?.anomaly);
    }
    let per_kind = n.div_ceil(4) as f64;
    let names = [
        "stuck channel",
        "gain ×8 on a channel",
        "8 spikes of ±5",
        "all channels zero",
    ];
    let det: Vec<_> = names
        .iter()
        .zip(detected)
        .enumerate()
        .map(|(i, (nm, d))| json!({"fault": nm, "windows": (0..n).filter(|j| j % 4 == i).count(), "flagged": d}))
        .collect();
    let acc = ok as f64 / n as f64;
    if !quiet {
        println!("event, {n} test windows, 1 byte per window (class · 4-bit confidence · anomaly flag):");
        println!(
            "  accuracy {:.2} % ({ok}/{n}); mean stated confidence {:.3}",
            100.0 * acc,
            level_sum / n as f64
        );
        println!(
            "  anomaly flag on clean test windows: {:.2} % ({flagged}/{n})",
            100.0 * flagged as f64 / n as f64
        );
        for (nm, d) in names.iter().zip(detected) {
            println!(
                "  anomaly flag on windows with a {nm}: {:.1} %",
                100.0 * d as f64 / per_kind
            );
        }
        println!("  confusion (rows: truth, columns: decoded):");
        for (i, row) in confusion.iter().enumerate() {
            println!("    {:<20} {:?}", model.config.classes[i], row);
        }
    }
    Ok(
        json!({"accuracy": acc, "correct": ok, "windows": n, "payload_bytes_per_window": 1,
        "mean_confidence": level_sum / n as f64, "anomaly_rate_clean": flagged as f64 / n as f64,
        "anomaly_detection": det, "confusion": confusion}),
    )
}

fn eval_recon(model: &SensorModel, test: &Labelled, target: f32, quiet: bool) -> Result<serde_json::Value> {
    let ch = model.config.channels;
    let n = test.windows.len();
    // The test split's own per-channel standard deviation (the NRMSE denominator reported).
    let mut s1 = vec![0f64; ch];
    let mut s2 = vec![0f64; ch];
    let mut se = vec![0f64; ch];
    let (mut bytes, mut max_bytes) = (0usize, 0usize);
    let (mut ok_orig, mut ok_rec) = (0usize, 0usize);
    let mut worst_window = 0f64;
    let t0 = Instant::now();
    let mut payloads = Vec::with_capacity(n);
    for w in &test.windows {
        payloads.push(sensor::encode_reconstruct(model, w, &[target])?);
    }
    let secs = t0.elapsed().as_secs_f64();
    for ((w, &l), p) in test.windows.iter().zip(&test.labels).zip(&payloads) {
        let Decoded::Window(r) = sensor::decode(p, Some(model), MAX_SAMPLES)? else {
            bail!("not a window")
        };
        bytes += p.len();
        max_bytes = max_bytes.max(p.len());
        for e in nrmse(w, &r, &model.scale) {
            worst_window = worst_window.max(e);
        }
        for c in 0..ch {
            for (&x, &y) in w.channel(c).iter().zip(r.channel(c)) {
                s1[c] += f64::from(x);
                s2[c] += f64::from(x) * f64::from(x);
                se[c] += (f64::from(x) - f64::from(y)).powi(2);
            }
        }
        ok_orig += usize::from(model.assess(w)?.class == l);
        ok_rec += usize::from(model.assess(&r)?.class == l);
    }
    let m = (n * model.config.len) as f64;
    let per_channel: Vec<f64> = (0..ch)
        .map(|c| {
            let sd = (s2[c] / m - (s1[c] / m).powi(2)).max(0.0).sqrt();
            (se[c] / m).sqrt() / sd
        })
        .collect();
    let per_channel_train: Vec<f64> = (0..ch)
        .map(|c| (se[c] / m).sqrt() / f64::from(model.scale[c]))
        .collect();
    let raw = 4 * ch * model.config.len;
    let mean_bytes = bytes as f64 / n as f64;
    let (acc_o, acc_r) = (ok_orig as f64 / n as f64, ok_rec as f64 / n as f64);
    let worst = per_channel.iter().copied().fold(0.0, f64::max);
    if !quiet {
        println!("reconstruct, {n} test windows, target NRMSE {target} per channel and window (of the training std):");
        println!("  payload {mean_bytes:.1} bytes/window mean, {max_bytes} max; raw f32 {raw} bytes ({:.1}× smaller, {:.4} of raw)", raw as f64 / mean_bytes, mean_bytes / raw as f64);
        println!(
            "  NRMSE per channel over the test split (RMSE / test-split std): worst {:.4}, {}",
            worst,
            per_channel
                .iter()
                .zip(&model.config.channel_names)
                .map(|(e, n)| format!("{n} {e:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!("  worst single window and channel (RMSE / training std): {worst_window:.4}");
        println!(
            "  classifier accuracy: originals {:.2} %, reconstructions {:.2} % (Δ {:+.2} points)",
            100.0 * acc_o,
            100.0 * acc_r,
            100.0 * (acc_r - acc_o)
        );
        println!(
            "  encode {:.0} windows/s (one core, incl. rate control)",
            n as f64 / secs
        );
    }
    Ok(
        json!({"target_nrmse": target, "mean_payload_bytes": mean_bytes, "max_payload_bytes": max_bytes,
        "raw_f32_bytes": raw, "fraction_of_raw": mean_bytes / raw as f64,
        "nrmse_per_channel_test_std": per_channel, "nrmse_per_channel_train_std": per_channel_train,
        "nrmse_worst_channel": worst, "nrmse_worst_window_channel": worst_window,
        "accuracy_original": acc_o, "accuracy_reconstructed": acc_r,
        "encode_windows_per_s": n as f64 / secs}),
    )
}

/// Send on change of meaning. The test split is not in time order (and UCI HAR windows overlap
/// by half), so a session is built from it: runs of 5 … 30 windows of one activity, activities
/// and run lengths drawn with a fixed seed, every test window used once.
fn eval_on_change(model: &SensorModel, test: &Labelled, target: f32, quiet: bool) -> Result<serde_json::Value> {
    let k = model.config.classes.len();
    let mut queues: Vec<Vec<usize>> = vec![Vec::new(); k.max(1)];
    for (i, &l) in test.labels.iter().enumerate() {
        queues[usize::from(l).min(k.max(1) - 1)].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut order = Vec::with_capacity(test.windows.len());
    while queues.iter().any(|q| !q.is_empty()) {
        let live: Vec<usize> = (0..queues.len()).filter(|&c| !queues[c].is_empty()).collect();
        let c = live[rng.random_range(0..live.len())];
        let run = rng.random_range(5..=30).min(queues[c].len());
        order.extend(queues[c].drain(..run));
    }
    let mut policy = OnChange::new(0.8, vec![target]);
    let (mut bytes, mut attached, mut always) = (0usize, 0usize, 0usize);
    for &i in &order {
        let w = &test.windows[i];
        let (p, with) = policy.next(model, w)?;
        bytes += p.len();
        attached += usize::from(with);
        always += 1 + sensor::encode_reconstruct(model, w, &[target])?.len();
    }
    let n = order.len();
    let changes = order
        .windows(2)
        .filter(|p| test.labels[p[0]] != test.labels[p[1]])
        .count()
        + 1;
    if !quiet {
        println!("send on change of meaning, {n} test windows as a session of {changes} same-activity runs (seeded), confidence threshold 0.8, target NRMSE {target}:");
        println!("  reconstruction attached to {attached} windows ({:.1} %); {:.1} bytes/window on average against {:.1} for event + reconstruction every window ({:.1} % of the airtime payload saved)",
            100.0 * attached as f64 / n as f64, bytes as f64 / n as f64, always as f64 / n as f64, 100.0 * (1.0 - bytes as f64 / always as f64));
    }
    Ok(
        json!({"windows": n, "activity_runs": changes, "min_confidence": 0.8, "target_nrmse": target,
        "windows_with_reconstruction": attached, "mean_payload_bytes": bytes as f64 / n as f64,
        "always_reconstruct_mean_payload_bytes": always as f64 / n as f64,
        "payload_saved": 1.0 - bytes as f64 / always as f64}),
    )
}

// ───────────────────────────── sim ─────────────────────────────

#[derive(Args, Debug)]
pub struct SimArgs {
    /// Dataset folder; the test split is sent.
    #[arg(long)]
    data: PathBuf,
    /// Sensor model.
    #[arg(long, default_value = "models/sensor-har.safetensors")]
    model: PathBuf,
    /// SNR points in dB, A:STEP:B or a comma-separated list (per-sample SNR over the burst / noise power).
    #[arg(long, default_value = "-4:1:4", value_parser = crate::units::points, allow_hyphen_values = true)]
    snr: crate::units::Points,
    /// 802.11a rate in Mbit/s (6 is the most robust).
    #[arg(long, default_value_t = 6)]
    rate: u32,
    /// Windows per SNR point (the first N of the test split).
    #[arg(short = 'n', long, default_value_t = 300)]
    windows: usize,
    /// Target NRMSE of the reconstruction chain.
    #[arg(long, default_value_t = 0.05)]
    nrmse: f32,
    /// Copies of each event frame sent back to back, SIFS (16 µs) apart (1 … 8).
    #[arg(long, default_value_t = 4)]
    event_repeats: usize,
    /// Receiver of the event frames: `known` listens for their fixed rate and length, decodes
    /// without SIGNAL and combines the copies (maximum-ratio, before Viterbi); `legacy` is the
    /// plain 802.11a receiver, which takes the first copy that passes its FCS.
    #[arg(long, value_enum, default_value_t = EventRx::Known)]
    event_rx: EventRx,
    /// Largest PSDU of the raw chain; longer payloads are cut into fragments (octets, incl. FCS).
    #[arg(long, default_value_t = 2304)]
    fragment: usize,
    /// Base seed of noise and timing.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write a plot of error and loss rates against SNR (PNG, or SVG when the name ends in .svg).
    #[arg(long)]
    plot: Option<PathBuf>,
}

/// How the event frames are received (see [`SimArgs::event_rx`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EventRx {
    /// Known-format reception with combining of the copies.
    Known,
    /// The plain 802.11a receiver.
    Legacy,
}

/// One PSDU through TX → fractional timing offset → AWGN → RX; true if it arrives intact.
struct Link {
    tx: Transmitter,
    rx: Receiver,
    /// Receiver of the event frames.
    event_rx: Receiver,
    event_repeats: usize,
    rate: Rate,
}

impl Link {
    fn send(&mut self, body: &[u8], snr_db: f64, rng: &mut ChaCha8Rng) -> Result<bool> {
        self.send_copies(body, snr_db, rng, false)
    }

    /// An event frame: `event_repeats` copies, to the event receiver.
    fn send_event(&mut self, body: &[u8], snr_db: f64, rng: &mut ChaCha8Rng) -> Result<bool> {
        self.send_copies(body, snr_db, rng, true)
    }

    fn send_copies(&mut self, body: &[u8], snr_db: f64, rng: &mut ChaCha8Rng, event: bool) -> Result<bool> {
        let mut psdu = body.to_vec();
        append_fcs(&mut psdu);
        let params = TxParams {
            rate: self.rate,
            scrambler_seed: rng.random_range(1..=127),
        };
        let lead = rng.random_range(200..600usize);
        let mut sig = vec![Complex32::new(0.0, 0.0); lead];
        let copies = if event { self.event_repeats } else { 1 };
        self.tx
            .transmit_repeated(&psdu, &params, copies, SIFS_SAMPLES, &mut sig)?;
        // The SNR is per sample over one copy (the gaps would lower the mean power).
        let power = burst_power(&sig[lead..lead + Transmitter::packet_len(self.rate, psdu.len())]);
        sig.extend(std::iter::repeat_n(Complex32::new(0.0, 0.0), 400));
        let mut ch = Chain::new();
        ch.push(TimingOffset::new(rng.random_range(0.0..1.0), 0.0)?);
        ch.push(Awgn::for_snr(snr_db, power, rng.random())?);
        let mut out = Vec::with_capacity(sig.len() + 64);
        ch.process(&sig, &mut out);
        let rx = if event { &mut self.event_rx } else { &mut self.rx };
        rx.reset();
        Ok(rx.decode_all(&out).into_iter().any(|e| match e {
            RxEvent::Frame(f) => f.fcs_ok && f.psdu == psdu,
            _ => false,
        }))
    }
}

/// A frame as a session sends it: no model id (fixed by the session), no CRC (the FCS checks).
fn air_frame(payload: Vec<u8>) -> Vec<u8> {
    let mut f = SemanticFrame::new(Modality::Sensor, semcom_codec::ModelId(0), payload);
    f.model = None;
    f.with_crc = false;
    f.to_bytes()
}

pub fn sim(a: SimArgs) -> Result<()> {
    let model = SensorModel::load(&a.model)?;
    let (test, _) = load_split(&a.data, "test")?;
    let n = a.windows.min(test.windows.len());
    if n == 0 {
        bail!("no windows to send");
    }
    if !(64..=4095).contains(&a.fragment) {
        bail!("--fragment must be 64 … 4095 octets");
    }
    let rate = Rate::from_mbps(a.rate)?;
    if !(1..=semcom_phy::rx::MAX_REPEATS).contains(&a.event_repeats) {
        bail!("--event-repeats must be 1 … {}", semcom_phy::rx::MAX_REPEATS);
    }
    // What each chain puts on the air per window, and what the receiver makes of it.
    let mut event_frames = Vec::with_capacity(n);
    let mut event_ok = Vec::with_capacity(n);
    let mut recon_frames = Vec::with_capacity(n);
    let mut recon_err = Vec::with_capacity(n);
    let mut raw_frames: Vec<Vec<Vec<u8>>> = Vec::with_capacity(n);
    let mut raw_ok = Vec::with_capacity(n);
    for (w, &l) in test.windows[..n].iter().zip(&test.labels) {
        let p = sensor::encode_event(&model, w)?;
        let Decoded::Event(e) = sensor::decode(&p, Some(&model), MAX_SAMPLES)? else {
            bail!("not an event")
        };
        event_ok.push(e.class == l);
        event_frames.push(air_frame(p));
        let p = sensor::encode_reconstruct(&model, w, &[a.nrmse])?;
        let Decoded::Window(r) = sensor::decode(&p, Some(&model), MAX_SAMPLES)? else {
            bail!("not a window")
        };
        let e = nrmse(w, &r, &model.scale);
        recon_err.push(e.iter().sum::<f64>() / e.len() as f64);
        recon_frames.push(air_frame(p));
        // The raw chain: the window's f32 samples through zstd -19, fragmented; the receiver
        // classifies the window it gets back (exactly the original) when every fragment arrives.
        let z = zstd::bulk::compress(&w.to_le_bytes(), 19)?;
        raw_frames.push(z.chunks(a.fragment - 4).map(<[u8]>::to_vec).collect());
        raw_ok.push(model.assess(w)?.class == l);
    }
    // Every event frame has the same length (a 1-byte payload), which known-format reception
    // relies on.
    let event_len = event_frames[0].len() + 4;
    if event_frames.iter().any(|f| f.len() + 4 != event_len) {
        bail!("event frames differ in length");
    }
    let known = KnownFormat::new(rate, event_len, a.event_repeats)?;
    let mut link = Link {
        tx: Transmitter::new(),
        rx: Receiver::new(RxConfig::default()),
        event_rx: Receiver::new(RxConfig {
            expect: (a.event_rx == EventRx::Known).then_some(known),
            ..RxConfig::default()
        }),
        event_repeats: a.event_repeats,
        rate,
    };
    let clean_event = event_ok.iter().filter(|&&b| b).count() as f64 / n as f64;
    let clean_raw = raw_ok.iter().filter(|&&b| b).count() as f64 / n as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(a.seed);
    let bar = ProgressBar::new((a.snr.0.len() * n) as u64).with_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} windows ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut points = Vec::new();
    for &snr in &a.snr.0 {
        let (mut ev_acc, mut ev_lost, mut raw_acc, mut raw_lost, mut rec_lost) =
            (0usize, 0usize, 0usize, 0usize, 0usize);
        let mut rec_err_sum = 0.0;
        for i in 0..n {
            if link.send_event(&event_frames[i], snr, &mut rng)? {
                ev_acc += usize::from(event_ok[i]);
            } else {
                ev_lost += 1;
            }
            let mut all = true;
            for f in &raw_frames[i] {
                all &= link.send(f, snr, &mut rng)?;
            }
            if all {
                raw_acc += usize::from(raw_ok[i]);
            } else {
                raw_lost += 1;
            }
            if link.send(&recon_frames[i], snr, &mut rng)? {
                rec_err_sum += recon_err[i];
            } else {
                rec_lost += 1;
            }
            bar.inc(1);
        }
        let nf = n as f64;
        points.push(json!({"snr_db": snr,
            "event": {"accuracy": ev_acc as f64 / nf, "lost": ev_lost as f64 / nf},
            "raw_zstd": {"accuracy": raw_acc as f64 / nf, "lost": raw_lost as f64 / nf},
            "reconstruct": {"lost": rec_lost as f64 / nf,
                "mean_nrmse_delivered": if rec_lost < n { json!(rec_err_sum / (n - rec_lost) as f64) } else { json!(null) }}}));
    }
    bar.finish_and_clear();
    let mean = |v: &[Vec<u8>]| v.iter().map(Vec::len).sum::<usize>() as f64 / n as f64;
    let raw_mean = raw_frames
        .iter()
        .map(|f| f.iter().map(|x| x.len() + 4).sum::<usize>())
        .sum::<usize>() as f64
        / n as f64;
    let raw_frags = raw_frames.iter().map(Vec::len).sum::<usize>() as f64 / n as f64;
    // The SNR at which the raw chain loses half its windows (linear interpolation), and the
    // lowest SNR down to which the event chain stays within 2 points of its clean accuracy.
    let series = |f: &dyn Fn(&serde_json::Value) -> f64| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|p| (p["snr_db"].as_f64().unwrap_or(0.0), f(p)))
            .collect()
    };
    let raw_loss = series(&|p| p["raw_zstd"]["lost"].as_f64().unwrap_or(1.0));
    let half = raw_loss.windows(2).find_map(|w| {
        let ((s0, l0), (s1, l1)) = (w[0], w[1]);
        ((l0 >= 0.5) != (l1 >= 0.5)).then(|| s0 + (0.5 - l0) * (s1 - s0) / (l1 - l0))
    });
    let ev = series(&|p| p["event"]["accuracy"].as_f64().unwrap_or(0.0));
    let mut holds_down_to = None;
    for &(s, acc) in ev.iter().rev() {
        if acc >= clean_event - 0.02 {
            holds_down_to = Some(s);
        } else {
            break;
        }
    }
    // Airtime per window, µs (20 MS/s): the event burst with its copies and gaps; every
    // fragment of the raw chain; the reconstruction frame.
    let us = |samples: f64| samples / 20.0;
    let event_airtime = us(known.burst_len() as f64);
    let raw_airtime = us(raw_frames
        .iter()
        .flat_map(|f| f.iter().map(|x| Transmitter::packet_len(rate, x.len() + 4)))
        .sum::<usize>() as f64
        / n as f64);
    let recon_airtime = us(recon_frames
        .iter()
        .map(|f| Transmitter::packet_len(rate, f.len() + 4))
        .sum::<usize>() as f64
        / n as f64);
    // Acceptance 4 of issue 6: within 2 points down to the raw chain's half-loss SNR and 3 dB
    // further.
    let beyond = half.zip(holds_down_to).map(|(h, d)| h - d);
    let summary = json!({"rate_mbps": a.rate, "channel": "awgn", "windows_per_point": n, "seed": a.seed,
        "event_repeats": a.event_repeats, "event_receiver": format!("{:?}", a.event_rx).to_lowercase(),
        "event_airtime_us": event_airtime, "raw_zstd_airtime_us": raw_airtime, "reconstruct_airtime_us": recon_airtime,
        "event_holds_db_beyond_raw_half_loss": beyond,
        "event_frame_octets_mean": mean(&event_frames) + 4.0, "event_payload_bytes": 1,
        "reconstruct_frame_octets_mean": mean(&recon_frames) + 4.0,
        "raw_zstd_octets_mean": raw_mean, "raw_zstd_fragments_mean": raw_frags,
        "clean_event_accuracy": clean_event, "clean_raw_accuracy": clean_raw,
        "raw_half_loss_snr_db": half, "event_within_2_points_down_to_snr_db": holds_down_to,
        "points": points});
    if let Some(path) = &a.plot {
        let curve = |name: &str, f: &dyn Fn(&serde_json::Value) -> f64, dashed: bool| crate::plot::Series {
            name: name.into(),
            points: series(f),
            dashed,
        };
        crate::plot::log_curves(
            path,
            &format!(
                "802.11a {rate}, AWGN, {n} UCI-HAR windows/point, events sent ×{}",
                a.event_repeats
            ),
            "SNR (dB, per sample)",
            "rate",
            &[
                curve(
                    "event: 1 − accuracy (1-byte payload)",
                    &|p| 1.0 - p["event"]["accuracy"].as_f64().unwrap_or(0.0),
                    false,
                ),
                curve(
                    "raw f32 + zstd: 1 − accuracy",
                    &|p| 1.0 - p["raw_zstd"]["accuracy"].as_f64().unwrap_or(0.0),
                    false,
                ),
                curve(
                    "event frames lost",
                    &|p| p["event"]["lost"].as_f64().unwrap_or(1.0),
                    true,
                ),
                curve(
                    "raw windows lost (any fragment)",
                    &|p| p["raw_zstd"]["lost"].as_f64().unwrap_or(1.0),
                    true,
                ),
                curve(
                    "reconstruction frames lost",
                    &|p| p["reconstruct"]["lost"].as_f64().unwrap_or(1.0),
                    true,
                ),
            ],
        )?;
    }
    if a.json {
        println!("{summary}");
        return Ok(());
    }
    println!(
        "802.11a {rate} over AWGN, {n} test windows per point; on the air per window (PSDU incl. FCS): event {:.1} octets, reconstruction {:.1}, raw f32 + zstd {:.1} in {:.2} fragment(s)",
        mean(&event_frames) + 4.0,
        mean(&recon_frames) + 4.0,
        raw_mean,
        raw_frags
    );
    println!(
        "airtime per window: event {event_airtime:.0} µs ({}, {} receiver), reconstruction {recon_airtime:.0} µs, raw f32 + zstd {raw_airtime:.0} µs",
        if a.event_repeats == 1 {
            "1 copy".to_string()
        } else {
            format!("{} copies SIFS apart", a.event_repeats)
        },
        format!("{:?}", a.event_rx).to_lowercase()
    );
    println!(
        "clean accuracy: event {:.2} %, raw window {:.2} %",
        100.0 * clean_event,
        100.0 * clean_raw
    );
    println!(
        "{:>7} {:>10} {:>9} {:>10} {:>9} {:>10} {:>12}",
        "SNR dB", "event acc", "ev lost", "raw acc", "raw lost", "recon lost", "recon NRMSE"
    );
    for p in &points {
        println!(
            "{:>7.2} {:>9.2}% {:>8.2}% {:>9.2}% {:>8.2}% {:>9.2}% {:>12}",
            p["snr_db"].as_f64().unwrap_or(0.0),
            100.0 * p["event"]["accuracy"].as_f64().unwrap_or(0.0),
            100.0 * p["event"]["lost"].as_f64().unwrap_or(0.0),
            100.0 * p["raw_zstd"]["accuracy"].as_f64().unwrap_or(0.0),
            100.0 * p["raw_zstd"]["lost"].as_f64().unwrap_or(0.0),
            100.0 * p["reconstruct"]["lost"].as_f64().unwrap_or(0.0),
            p["reconstruct"]["mean_nrmse_delivered"]
                .as_f64()
                .map_or("-".into(), |v| format!("{v:.4}"))
        );
    }
    println!(
        "raw chain loses half its windows at {}; event accuracy within 2 points of clean down to {}",
        half.map_or("— (not crossed in this range)".into(), |s| format!("{s:.2} dB")),
        holds_down_to.map_or("— (not even at the highest SNR)".into(), |s| format!("{s:.2} dB"))
    );
    if let Some(b) = beyond {
        println!(
            "event accuracy holds {b:.2} dB beyond the raw chain's half-loss SNR{}",
            if ev
                .first()
                .is_some_and(|&(s, acc)| Some(s) == holds_down_to && acc >= clean_event - 0.02)
            {
                " (down to the lowest SNR simulated)"
            } else {
                ""
            }
        );
    }
    Ok(())
}

// ─────────────────────── encode / decode files ───────────────────────

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SensorMode {
    /// Bit-exact 32-bit float samples (a value that a 32-bit float cannot hold exactly, such as
    /// 0.1234567891, is refused rather than rounded).
    Lossless,
    /// Reconstruction tokens at --nrmse.
    Reconstruct,
    /// One-byte events.
    Event,
    /// Events, plus reconstruction tokens when the event changes or is uncertain.
    OnChange,
}

/// Parses one window per line: channels separated by `:`, samples by `,` or whitespace (the
/// data lines of a UCR `.ts` file without the label); blank lines are skipped. With `exact`, a
/// sample whose 32-bit float does not print back as the same number is refused: the lossless
/// mode would otherwise return a different number than it was given.
pub fn parse_windows(text: &str, exact: bool) -> Result<Vec<Window>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let chans = l
                .split(':')
                .map(|c| {
                    c.split(|ch: char| ch == ',' || ch.is_whitespace())
                        .filter(|t| !t.is_empty())
                        .map(|t| {
                            let v = t
                                .parse::<f32>()
                                .with_context(|| format!("line {}: `{t}` is not a number", i + 1))?;
                            if exact && v.is_finite() && t.parse::<f64>().ok() != format!("{v}").parse::<f64>().ok() {
                                bail!(
                                    "line {}: `{t}` is not a 32-bit float, which lossless mode carries \
                                     exactly (it would come back as {v}); round it, or use a lossy mode",
                                    i + 1
                                );
                            }
                            Ok(v)
                        })
                        .collect::<Result<Vec<f32>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            Window::from_channels(&chans).with_context(|| format!("line {}", i + 1))
        })
        .collect()
}

fn format_window(w: &Window) -> String {
    (0..w.channels())
        .map(|c| {
            w.channel(c)
                .iter()
                .map(|v| format!("{v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join(":")
}

/// Params byte of a sensor frame file: bit 0 marks the last frame.
const LAST: u8 = 1;

/// `semcom encode --modality sensor`.
pub fn encode_file(input: &[u8], model_path: &Path, mode: SensorMode, target: f32) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(input).context("sensor input is not UTF-8 text")?;
    let windows = parse_windows(text, mode == SensorMode::Lossless)?;
    let model = match mode {
        SensorMode::Lossless => None,
        _ => Some(SensorModel::load(model_path)?),
    };
    let mut policy = OnChange::new(0.8, vec![target]);
    let mut out = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        let payload = match (&model, mode) {
            (_, SensorMode::Lossless) => Ok(sensor::encode_lossless(w)),
            (Some(m), SensorMode::Event) => sensor::encode_event(m, w),
            (Some(m), SensorMode::Reconstruct) => sensor::encode_reconstruct(m, w, &[target]),
            (Some(m), SensorMode::OnChange) => policy.next(m, w).map(|p| p.0),
            (None, _) => unreachable!("the model is loaded for every mode but lossless"),
        }
        .with_context(|| format!("window {i}"))?;
        let mut f = SemanticFrame::new(
            Modality::Sensor,
            model.as_ref().map_or(semcom_codec::ModelId(0), |m| m.id()),
            payload,
        );
        if i > 0 || model.is_none() {
            f.model = None;
        }
        f.params = crate::codec::file_params(if i + 1 == windows.len() { LAST } else { 0 }, i);
        let b = f.to_bytes();
        put_varint(&mut out, b.len() as u64);
        out.extend(b);
    }
    Ok(out)
}

/// `semcom decode` of sensor frames: windows one per line, events as `event CLASS CONFIDENCE
/// [anomaly]`.
pub fn decode_frames(frames: &[SemanticFrame], model_path: &Path) -> Result<Vec<u8>> {
    let needs_model = frames.iter().any(|f| !(f.payload.len() >= 2 && f.payload[0] == 0x01));
    let model = if needs_model {
        Some(SensorModel::load(model_path)?)
    } else {
        None
    };
    if let (Some(m), Some(id)) = (&model, frames.first().and_then(|f| f.model)) {
        if m.id() != id {
            bail!(
                "frames were encoded with sensor model {id} but {} is {}",
                model_path.display(),
                m.id()
            );
        }
    }
    let mut out = String::new();
    for (i, f) in frames.iter().enumerate() {
        if f.modality != Modality::Sensor {
            bail!("frame {i} carries {}, not sensor", f.modality);
        }
        let last = f.params.first().is_some_and(|&p| p & LAST != 0);
        if last != (i + 1 == frames.len()) {
            bail!("frame {i}: the file is cut short or spliced");
        }
        crate::codec::check_position(&f.params, i)?;
        let event = |e: Event, out: &mut String| {
            let name = model
                .as_ref()
                .and_then(|m| m.config.classes.get(usize::from(e.class)))
                .map_or_else(|| format!("class{}", e.class), Clone::clone);
            let _ = writeln!(
                out,
                "event {name} {:.3}{}",
                e.confidence(),
                if e.anomaly { " anomaly" } else { "" }
            );
        };
        match sensor::decode(&f.payload, model.as_ref(), MAX_SAMPLES).with_context(|| format!("frame {i}"))? {
            Decoded::Event(e) => event(e, &mut out),
            Decoded::Window(w) => {
                let _ = writeln!(out, "{}", format_window(&w));
            }
            Decoded::EventAndWindow(e, w) => {
                event(e, &mut out);
                let _ = writeln!(out, "{}", format_window(&w));
            }
        }
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossless_files_round_trip_and_bad_input_is_refused() {
        let text = "0.9946,1e-5,-3.2:0.5,0.25,0.125\n1,2,3\n";
        let bytes = encode_file(text.as_bytes(), Path::new("none"), SensorMode::Lossless, 0.05).unwrap();
        let frames = crate::codec::frames(&bytes).unwrap();
        let back = decode_frames(&frames, Path::new("none")).unwrap();
        assert_eq!(
            String::from_utf8(back).unwrap(),
            "0.9946,0.00001,-3.2:0.5,0.25,0.125\n1,2,3\n"
        );
        for bad in [
            "1,NaN,2\n",
            "1,inf\n",
            "1,2:3\n",
            ":\n",
            "1,x\n",
            "1,0.1234567891\n",
            "16777217\n",
        ] {
            assert!(
                encode_file(bad.as_bytes(), Path::new("none"), SensorMode::Lossless, 0.05).is_err(),
                "{bad}"
            );
        }
        // Cut short: the last frame is missing.
        let frames = crate::codec::frames(&bytes).unwrap();
        assert!(decode_frames(&frames[..1], Path::new("none")).is_err());
        // A frame repeated or moved: every CRC holds and the last frame is last, but the
        // positions give it away.
        let three = encode_file(b"1\n2\n3\n", Path::new("none"), SensorMode::Lossless, 0.05).unwrap();
        let f = crate::codec::frames(&three).unwrap();
        let err = decode_frames(&[f[1].clone(), f[0].clone(), f[2].clone()], Path::new("none")).unwrap_err();
        assert!(format!("{err:#}").contains("out of order"), "{err:#}");
        assert!(decode_frames(&[f[0].clone(), f[0].clone(), f[2].clone()], Path::new("none")).is_err());
        assert_eq!(decode_frames(&f, Path::new("none")).unwrap(), b"1\n2\n3\n");
    }
}
