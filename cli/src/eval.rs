//! `semcom eval …`: what the codecs send, against general-purpose compressors on the same items.
//!
//! Every item is compressed on its own, as a device would send it: zstd at level 19 without
//! its frame header fields (magicless, no checksum, no content size, no dictionary id), with and
//! without a dictionary trained on the training part of the same file; CBOR for telemetry. Every
//! semcom payload is decoded again and compared with the input, so a figure never comes from a
//! coder that lost data.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use semcom_codec::telemetry::{TelemetryDecoder, TelemetryDictionary, TelemetryEncoder, TelemetryOptions};
use semcom_codec::text::{TextCodec, TextKind, TextStream};
use semcom_codec::train::{load_corpus, split_lines};
use semcom_codec::vocab::TAG_LOG;
use semcom_codec::Prior;
use serde_json::json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Subcommand, Debug)]
pub enum EvalCommand {
    /// Bits per character of held-out messages (last 20 % of each file), each coded alone.
    Text(TextArgs),
    /// Bytes per record of telemetry (last 20 % of each trace in time order).
    Telemetry(TelemetryArgs),
    /// Sensor windows (test split): lossless against Gorilla, reconstruction, events.
    Sensor(crate::sensor::EvalArgs),
    /// Images: PSNR of the analog JSCC model against SNR (simulated channel on the symbols).
    Image(crate::image::EvalArgs),
    /// Images, digital mode: PSNR at target bits per pixel against JPEG at the same rates.
    ImageDigital(crate::image_digital::EvalArgs),
    /// Images, digital mode: concealment of lost link fragments (sliced code, PSNR of blank vs
    /// prior concealment) and the rate cost of slicing.
    ImageConceal(crate::image_digital::ConcealArgs),
}

#[derive(Args, Debug)]
pub struct TextArgs {
    /// Files or directories (*.log are logs; *.txt, *.en are text).
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// The text prior.
    #[arg(long, default_value = "models/text-prior.safetensors")]
    model: PathBuf,
    /// At most this many held-out messages per file (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Files evaluated in parallel (timings are then shared-machine figures; see `semcom bench codec`).
    #[arg(long, default_value_t = 2, value_parser = crate::units::at_least_one)]
    threads: usize,
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

/// A telemetry decoder that loses records at random (seeded), counting what it then fails.
struct Lossy<'p> {
    dec: TelemetryDecoder<'p>,
    percent: u8,
    rng: rand_chacha::ChaCha8Rng,
    last_loss: Option<u64>,
    lost: usize,
    failed: usize,
    /// Failed records more than 16 after the last loss before them.
    late: usize,
}

impl<'p> Lossy<'p> {
    fn new(dec: TelemetryDecoder<'p>, percent: u8, seed: u64) -> Self {
        Self {
            dec,
            percent,
            rng: rand::SeedableRng::seed_from_u64(seed),
            last_loss: None,
            lost: 0,
            failed: 0,
            late: 0,
        }
    }

    fn record(&mut self, seq: u64, payload: &[u8], want: &[u8]) -> Result<()> {
        if rand::Rng::random_range(&mut self.rng, 0..100u8) < self.percent {
            self.lost += 1;
            self.last_loss = Some(seq);
            return Ok(());
        }
        match self.dec.decode(seq, payload) {
            Ok(back) if back == want => {}
            Ok(_) => bail!("record {seq} decoded wrongly after losses"),
            Err(_) => {
                self.failed += 1;
                if self.last_loss.is_none_or(|l| seq > l + 16) {
                    self.late += 1;
                }
            }
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct TelemetryArgs {
    /// Files or directories: *.ndjson / *.jsonl (optionally .gz), *.csv.
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// The prior (codes keys and new strings).
    #[arg(long, default_value = "models/text-prior.safetensors")]
    model: PathBuf,
    /// Records between resync points (0: none).
    #[arg(long, default_value_t = 16)]
    resync: u32,
    /// At most this many records per trace, from its start (0: all).
    #[arg(long, default_value_t = 0)]
    limit: usize,
    /// Also list the fields that cost the most (bits per record over the evaluated part).
    #[arg(long)]
    costs: bool,
    /// One JSON object on stdout instead of a table.
    #[arg(long)]
    json: bool,
    /// Also decode each trace with this percentage of its records lost (independently, seeded)
    /// and report how many of the others failed: a decoder never outputs a wrong record, but
    /// one that lost what later records refer to fails them.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100), default_value_t = 0)]
    loss: u8,
    /// Seed of the loss draw (`--loss`).
    #[arg(long, default_value_t = 0x5EED)]
    loss_seed: u64,
    /// Code without a dictionary. By default semcom, like zstd's dictionary column, gets one
    /// built from the trace's training part (its first 80 %): static tables of each field's
    /// recurring values and the byte-string templates the codec made there.
    #[arg(long)]
    no_dictionary: bool,
    /// Also list each field's dictionary table (values, context) on stderr.
    #[arg(long)]
    show_dictionary: bool,
}

pub fn run(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Text(a) => text(a),
        EvalCommand::Telemetry(a) => telemetry(a),
        EvalCommand::Sensor(a) => crate::sensor::eval(a),
        EvalCommand::Image(a) => crate::image::eval(a),
        EvalCommand::ImageDigital(a) => crate::image_digital::eval(a),
        EvalCommand::ImageConceal(a) => crate::image_digital::eval_conceal(a),
    }
}

/// zstd -19 of one item without header fields, with an optional dictionary.
struct Zstd<'d> {
    c: zstd::bulk::Compressor<'d>,
}

impl Zstd<'static> {
    fn new(dict: &[u8]) -> Result<Self> {
        let mut c = zstd::bulk::Compressor::with_dictionary(19, dict).context("zstd")?;
        use zstd::zstd_safe::{CParameter, FrameFormat};
        c.set_parameter(CParameter::Format(FrameFormat::Magicless))?;
        c.set_parameter(CParameter::ChecksumFlag(false))?;
        c.set_parameter(CParameter::ContentSizeFlag(false))?;
        c.set_parameter(CParameter::DictIdFlag(false))?;
        Ok(Self { c })
    }

    fn size(&mut self, item: &[u8]) -> Result<usize> {
        Ok(self.c.compress(item).context("zstd")?.len())
    }
}

fn train_dict(samples: &[Vec<u8>]) -> Vec<u8> {
    let total: usize = samples.iter().map(Vec::len).sum();
    let size = (total / 8).clamp(256, 112_640);
    // Too few or too uniform samples make the trainer fail: then no dictionary.
    zstd::dict::from_samples(samples, size).unwrap_or_default()
}

fn stats(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (v.iter().sum::<f64>() / v.len() as f64, s[s.len() / 2])
}

fn text(a: TextArgs) -> Result<()> {
    let prior = Prior::load(&a.model)?;
    let codec = TextCodec::new(&prior);
    let files = load_corpus(&a.data, &[])?;
    // Files are shared out to `threads` workers; each message is still coded on one thread.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Option<serde_json::Value>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..a.threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        out.push((i, text_file(&codec, f, a.limit)));
                        if !a.json {
                            eprintln!("{}: done", f.name);
                        }
                    }
                    out
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<Option<serde_json::Value>>)> =
            workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect();
        all.sort_by_key(|x| x.0);
        all.into_iter().map(|x| x.1).collect()
    });
    let mut rows = Vec::new();
    for r in results {
        if let Some(v) = r? {
            rows.push(v);
        }
    }
    if rows.is_empty() {
        bail!("no held-out messages: the last 20 % of each file is held out, and these files are too short");
    }
    let logs: Vec<&serde_json::Value> = rows.iter().filter(|r| r["kind"] == "log").collect();
    // NaN (JSON null) when there is no log file, rather than a mean of nothing.
    let mean = |k: &str| logs.iter().map(|r| r[k].as_f64().unwrap_or(f64::NAN)).sum::<f64>() / logs.len() as f64;
    let summary = json!({
        "log_files": logs.len(), "log_mean_semcom_bpc": mean("semcom_bpc"), "log_mean_semcom_stream_bpc": mean("semcom_stream_bpc"),
        "log_mean_zstd19_bpc": mean("zstd19_bpc"), "log_mean_zstd19_dict_bpc": mean("zstd19_dict_bpc"),
        "logs_below_zstd_dict": logs.iter().filter(|r| r["semcom_bpc"].as_f64() < r["zstd19_dict_bpc"].as_f64()).count(),
    });
    if a.json {
        println!(
            "{}",
            json!({"eval": "text", "model": prior.id().to_string(), "files": rows, "summary": summary})
        );
        return Ok(());
    }
    println!(
        "model {}; bits per character of held-out messages, each message coded alone",
        prior.id()
    );
    println!(
        "{:<20} {:>8} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "file", "messages", "semcom", "+stream", "zstd-19", "zstd+dict", "dec ms"
    );
    for r in &rows {
        println!(
            "{:<20} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>11.3} {:>9.2}",
            r["file"].as_str().unwrap_or(""),
            r["messages"],
            r["semcom_bpc"].as_f64().unwrap_or(f64::NAN),
            r["semcom_stream_bpc"].as_f64().unwrap_or(f64::NAN),
            r["zstd19_bpc"].as_f64().unwrap_or(f64::NAN),
            r["zstd19_dict_bpc"].as_f64().unwrap_or(f64::NAN),
            r["decode_ms_per_message"].as_f64().unwrap_or(f64::NAN),
        );
    }
    if !logs.is_empty() {
        println!(
            "{:<20} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>11.3}",
            "mean of logs",
            logs.len(),
            mean("semcom_bpc"),
            mean("semcom_stream_bpc"),
            mean("zstd19_bpc"),
            mean("zstd19_dict_bpc")
        );
    }
    Ok(())
}

/// One file's held-out messages: semcom alone and in a stream, zstd -19 with and without a
/// dictionary. Every payload is decoded and compared.
fn text_file(
    codec: &TextCodec<'_>,
    f: &semcom_codec::train::TextFile,
    limit: usize,
) -> Result<Option<serde_json::Value>> {
    let held: Vec<&Vec<u8>> = f
        .heldout
        .iter()
        .take(if limit == 0 { usize::MAX } else { limit })
        .collect();
    if held.is_empty() {
        return Ok(None);
    }
    let kind = if f.tag == TAG_LOG {
        TextKind::Log
    } else {
        TextKind::Text
    };
    let dict = train_dict(&f.train);
    let (mut plain, mut with_dict) = (Zstd::new(&[])?, Zstd::new(&dict)?);
    let (mut chars, mut bits_alone, mut bits_stream, mut bits_z, mut bits_zd) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let (mut enc_s, mut dec_s) = (0f64, 0f64);
    let mut stream_enc = TextStream::new();
    let mut stream_dec = TextStream::new();
    for m in &held {
        chars += m.len();
        let t = Instant::now();
        let p = codec.encode_payload(m, kind, None)?;
        enc_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let back = codec.decode_payload(&p, None)?;
        dec_s += t.elapsed().as_secs_f64();
        if back != **m {
            bail!("{}: a message did not decode to itself", f.name);
        }
        bits_alone += 8 * p.len();
        let ps = codec.encode_payload(m, kind, Some(&mut stream_enc))?;
        if codec.decode_payload(&ps, Some(&mut stream_dec))? != **m {
            bail!("{}: a stream message did not decode to itself", f.name);
        }
        bits_stream += 8 * ps.len();
        bits_z += 8 * plain.size(m)?;
        bits_zd += 8 * with_dict.size(m)?;
    }
    let bpc = |b: usize| b as f64 / chars as f64;
    Ok(Some(json!({
        "file": f.name, "kind": if f.tag == TAG_LOG { "log" } else { "text" }, "messages": held.len(), "chars": chars,
        "semcom_bpc": bpc(bits_alone), "semcom_stream_bpc": bpc(bits_stream), "zstd19_bpc": bpc(bits_z),
        "zstd19_dict_bpc": bpc(bits_zd), "dict_bytes": dict.len(),
        "encode_ms_per_message": 1e3 * enc_s / held.len() as f64, "decode_ms_per_message": 1e3 * dec_s / held.len() as f64,
    })))
}

/// A telemetry trace: its records in order.
struct Trace {
    name: String,
    records: Vec<Vec<u8>>,
    /// How a record becomes CBOR.
    csv: bool,
}

pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing {}", path.display()))?;
        return Ok(out);
    }
    Ok(raw)
}

fn traces(paths: &[PathBuf], limit: usize) -> Result<Vec<Trace>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    let n = f
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    [".ndjson", ".ndjson.gz", ".jsonl", ".jsonl.gz", ".csv"]
                        .iter()
                        .any(|s| n.ends_with(s))
                })
                .collect();
            v.sort();
            files.extend(v);
        } else {
            files.push(p.clone());
        }
    }
    if files.is_empty() {
        bail!("no telemetry files (*.ndjson[.gz], *.jsonl[.gz], *.csv) in the given paths");
    }
    let mut out = Vec::new();
    for f in files {
        let bytes = read_maybe_gz(&f)?;
        let mut records: Vec<Vec<u8>> = bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        if limit > 0 {
            records.truncate(limit);
        }
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let csv = name.ends_with(".csv");
        if !csv {
            let readings: Vec<Vec<u8>> = records.iter().filter_map(|r| readings_of(r)).collect();
            if !readings.is_empty() {
                out.push(Trace {
                    name: format!("{name} (readings)"),
                    records: readings,
                    csv: false,
                });
            }
        }
        out.push(Trace {
            name: if csv {
                format!("{name} (rows)")
            } else {
                format!("{name} (full)")
            },
            records,
            csv,
        });
    }
    Ok(out)
}

/// The `decoded.payload` object of a network-server uplink, as written in it.
pub fn readings_of(line: &[u8]) -> Option<Vec<u8>> {
    let at = find(line, b"\"decoded\":{")?;
    let rest = &line[at..];
    let p = find(rest, b"\"payload\":{")? + b"\"payload\":".len();
    let obj = &rest[p..];
    let (mut depth, mut in_str, mut esc) = (0i32, false, false);
    for (i, &c) in obj.iter().enumerate() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    let o = &obj[..=i];
                    return (o.len() > 2).then(|| o.to_vec());
                }
            }
            _ => {}
        }
    }
    None
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn cbor_size(record: &[u8], csv: bool) -> Option<usize> {
    let mut out = Vec::new();
    if csv {
        let cells: Vec<ciborium::Value> = String::from_utf8_lossy(record)
            .split(',')
            .map(|c| {
                if c.is_empty() {
                    ciborium::Value::Null
                } else if let Ok(i) = c.parse::<i64>() {
                    ciborium::Value::Integer(i.into())
                } else if let Ok(f) = c.parse::<f64>() {
                    ciborium::Value::Float(f)
                } else {
                    ciborium::Value::Text(c.to_string())
                }
            })
            .collect();
        ciborium::into_writer(&ciborium::Value::Array(cells), &mut out).ok()?;
    } else {
        let v: serde_json::Value = serde_json::from_slice(record).ok()?;
        ciborium::into_writer(&v, &mut out).ok()?;
    }
    Some(out.len())
}

fn telemetry(a: TelemetryArgs) -> Result<()> {
    let prior = Prior::load(&a.model)?;
    let opts = TelemetryOptions {
        resync: a.resync,
        ..TelemetryOptions::default()
    };
    let mut rows = Vec::new();
    for t in traces(&a.data, a.limit)? {
        let (train, held) = split_lines(&t.records);
        if held.is_empty() || train.is_empty() {
            bail!(
                "{}: {} records, too few to hold out the last 20 % and train on the rest",
                t.name,
                t.records.len()
            );
        }
        let cut = train.len();
        let dict = train_dict(&train);
        let (mut plain, mut with_dict) = (Zstd::new(&[])?, Zstd::new(&dict)?);
        let tdict = (!a.no_dictionary).then(|| TelemetryDictionary::build(&prior, train.iter().map(|r| r.as_slice())));
        if let Some(d) = tdict.as_ref().filter(|_| a.show_dictionary) {
            eprintln!("{}: dictionary {}, {} fields with tables", t.name, d.id(), d.fields());
            for (p, n, ctx) in d.summary() {
                eprintln!(
                    "  {p:<48} {n:>4} values{}",
                    ctx.map_or(String::new(), |c| format!(" given {c}"))
                );
            }
        }
        let tdict = tdict.as_ref();
        let mut enc = TelemetryEncoder::with_dictionary(&prior, opts.clone(), tdict);
        let mut dec = TelemetryDecoder::with_dictionary(&prior, enc.options().clone(), tdict)?;
        let mut lossy = Lossy::new(
            TelemetryDecoder::with_dictionary(&prior, enc.options().clone(), tdict)?,
            a.loss,
            a.loss_seed,
        );
        let (mut semcom, mut raw, mut z, mut zd, mut cbor) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut enc_s, mut dec_s) = (0f64, 0f64);
        for (i, r) in t.records.iter().enumerate() {
            let t0 = Instant::now();
            let (seq, payload) = enc.encode(r)?;
            enc_s += t0.elapsed().as_secs_f64();
            let t0 = Instant::now();
            let back = dec
                .decode(seq, &payload)
                .with_context(|| format!("{}: record {i}", t.name))?;
            dec_s += t0.elapsed().as_secs_f64();
            if back != *r {
                bail!("{}: record {i} did not decode to itself", t.name);
            }
            if a.loss > 0 {
                lossy.record(seq, &payload, r).with_context(|| t.name.clone())?;
            }
            if i + 1 == cut && a.costs {
                enc.keep_costs();
            }
            if i >= cut {
                semcom.push(payload.len() as f64);
                raw.push(r.len() as f64);
                z.push(plain.size(r)? as f64);
                zd.push(with_dict.size(r)? as f64);
                if let Some(c) = cbor_size(r, t.csv) {
                    cbor.push(c as f64);
                }
            }
        }
        let n = t.records.len() as f64;
        if a.costs {
            let m = held.len().max(1) as f64;
            eprintln!(
                "{}: bits per record (all records / of which in resync records), costliest fields",
                t.name
            );
            for (k, c) in enc.costs().iter().take(25) {
                eprintln!(
                    "  {:<48} {:>8.2} {:>8.2}",
                    k.replace('\0', "#"),
                    c.bits / m,
                    c.intra_bits / m
                );
            }
        }
        let [s, r, zz, zdd, c] = [&semcom, &raw, &z, &zd, &cbor].map(|v| stats(v));
        rows.push(json!({
            "trace": t.name, "records": t.records.len(), "evaluated": held.len(),
            "raw": {"mean": r.0, "median": r.1}, "zstd19": {"mean": zz.0, "median": zz.1},
            "zstd19_dict": {"mean": zdd.0, "median": zdd.1}, "cbor": {"mean": c.0, "median": c.1},
            "semcom": {"mean": s.0, "median": s.1},
            "zstd19_dict_over_semcom": {"mean": zdd.0 / s.0, "median": zdd.1 / s.1},
            "zstd19_over_semcom": {"mean": zz.0 / s.0, "median": zz.1 / s.1},
            "encode_records_per_s": n / enc_s, "decode_records_per_s": n / dec_s,
        }));
        if a.loss > 0 {
            rows.last_mut().expect("pushed")["loss"] = json!({
                "percent": a.loss, "seed": a.loss_seed, "lost": lossy.lost, "failed": lossy.failed,
                "failed_beyond_16_after_a_loss": lossy.late,
            });
        }
    }
    if a.json {
        println!(
            "{}",
            json!({"eval": "telemetry", "model": prior.id().to_string(), "resync": a.resync, "dictionary": !a.no_dictionary, "traces": rows})
        );
        return Ok(());
    }
    println!(
        "model {}; bytes per record (mean / median) of the last 20 % of each trace, each record alone",
        prior.id()
    );
    println!(
        "{:<52} {:>15} {:>15} {:>15} {:>15} {:>13} {:>11}",
        "trace", "raw", "zstd-19", "zstd+dict", "CBOR", "semcom", "dict/semcom"
    );
    let mm = |v: &serde_json::Value| {
        format!(
            "{:.1} / {:.0}",
            v["mean"].as_f64().unwrap_or(f64::NAN),
            v["median"].as_f64().unwrap_or(f64::NAN)
        )
    };
    for r in &rows {
        println!(
            "{:<52} {:>15} {:>15} {:>15} {:>15} {:>13} {:>11}",
            r["trace"].as_str().unwrap_or(""),
            mm(&r["raw"]),
            mm(&r["zstd19"]),
            mm(&r["zstd19_dict"]),
            mm(&r["cbor"]),
            format!(
                "{:.2} / {:.0}",
                r["semcom"]["mean"].as_f64().unwrap_or(f64::NAN),
                r["semcom"]["median"].as_f64().unwrap_or(f64::NAN)
            ),
            format!(
                "{:.1}×",
                r["zstd19_dict_over_semcom"]["mean"].as_f64().unwrap_or(f64::NAN)
            ),
        );
    }
    if a.loss > 0 {
        println!("with {} % of the records lost at random (whole trace):", a.loss);
        for r in &rows {
            let l = &r["loss"];
            println!(
                "  {:<50} lost {:>6}, failed {:>6} of the rest, {:>6} of them more than 16 records after a loss",
                r["trace"].as_str().unwrap_or(""),
                l["lost"],
                l["failed"],
                l["failed_beyond_16_after_a_loss"]
            );
        }
    }
    Ok(())
}
