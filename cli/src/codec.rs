//! `semcom encode` / `semcom decode`: files of items ⇄ files of semantic frames.
//!
//! Input is read line by line: each line is one item (a message, a JSON record, a CSV row),
//! coded into one [`SemanticFrame`]. The output is the frames one after another, each preceded
//! by its length (LEB128). The first frame names the model; every frame carries a CRC-32 and its
//! position in the file, so a frame dropped, repeated or moved is an error, not a shorter output.
//! Decoding gives the input back byte for byte (line ends included) in the lossless modes.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use semcom_codec::frame::{get_varint, put_varint};
use semcom_codec::telemetry::{TelemetryDecoder, TelemetryEncoder, TelemetryOptions};
use semcom_codec::text::{TextCodec, TextKind, TextStream};
use semcom_codec::{Modality, Prior, SemanticFrame};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CodecModality {
    /// Text lines (logs, messages), lossless.
    Text,
    /// JSON objects or CSV rows (the first CSV line is the header).
    Telemetry,
    /// Sensor windows, one per line: channels separated by `:`, samples by `,` (give the sensor
    /// model with --model for every mode but lossless).
    Sensor,
    /// A PNG or JPEG image, coded in the digital image mode (give the model with --model,
    /// e.g. models/image-digital.safetensors, and --bpp or --quality).
    Image,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    /// Log lines if the line looks like one, else text.
    Auto,
    /// Log lines.
    Log,
    /// Free text.
    Text,
}

#[derive(Args, Debug)]
pub struct EncodeArgs {
    /// What the input holds.
    #[arg(long, value_enum)]
    modality: CodecModality,
    /// Input file (`-`: stdin).
    input: PathBuf,
    /// Output file (`-`: stdout).
    #[arg(short, long)]
    output: PathBuf,
    /// The model file (default: models/text-prior.safetensors for text and telemetry,
    /// models/sensor-har.safetensors for sensor, models/image-digital.safetensors for image).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Text: what the lines are.
    #[arg(long, value_enum, default_value_t = Kind::Auto)]
    kind: Kind,
    /// Text: code each line in the context of the lines before it (the decoder needs all of them).
    #[arg(long)]
    stream: bool,
    /// Telemetry: records between resync points (0: none).
    #[arg(long, default_value_t = 16)]
    resync: u32,
    /// Telemetry: lossy coding of a numeric field within ±TOL (KEY=TOL; repeatable).
    #[arg(long, value_parser = parse_tolerance)]
    tolerance: Vec<(String, f64)>,
    /// Encoder threads (the output does not depend on it).
    #[arg(long, default_value_t = 1, value_parser = crate::units::at_least_one)]
    threads: usize,
    /// Sensor: what each window is sent as.
    #[arg(long, value_enum, default_value_t = crate::sensor::SensorMode::Lossless)]
    sensor_mode: crate::sensor::SensorMode,
    /// Sensor: target NRMSE per channel of reconstruction tokens.
    #[arg(long, default_value_t = 0.05)]
    nrmse: f32,
    /// Image: target size in bits per pixel (whole output file; the finest quality that fits).
    #[arg(long)]
    bpp: Option<f64>,
    /// Image: quality 1–100 (100: finest; default 75 when --bpp is not given).
    #[arg(long)]
    quality: Option<u8>,
}

#[derive(Args, Debug)]
pub struct DecodeArgs {
    /// Frames from `semcom encode` (`-`: stdin).
    input: PathBuf,
    /// Output file (`-`: stdout).
    #[arg(short, long)]
    output: PathBuf,
    /// The model file (must be the one the frames were made with; default by the frames'
    /// modality, as for `semcom encode`).
    #[arg(long)]
    model: Option<PathBuf>,
}

fn parse_tolerance(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected KEY=TOLERANCE, e.g. temperature=0.1"))?;
    let t: f64 = v.parse().map_err(|_| format!("`{v}` is not a number"))?;
    if k.is_empty() || !(t.is_finite() && t >= 0.0) {
        return Err(format!(
            "`{s}`: the key must be non-empty and the tolerance finite and ≥ 0"
        ));
    }
    Ok((k.to_string(), t))
}

/// Params byte 0 flags.
const P_NO_NEWLINE: u8 = 1;
const P_STREAM: u8 = 2;
const P_OPTIONS: u8 = 4;
/// The last frame of the file (a file cut at a frame boundary is detected).
const P_LAST: u8 = 8;

/// A text or sensor file frame's parameters: its flags byte, then its position in the file
/// (LEB128), which [`check_position`] checks.
pub fn file_params(flags: u8, position: usize) -> Vec<u8> {
    let mut p = vec![flags];
    put_varint(&mut p, position as u64);
    p
}

/// Checks that the frame read `i`-th from a file is the one that was written `i`-th: a frame
/// dropped, repeated or moved would otherwise decode into a shorter or reordered output with
/// no error (each frame's CRC holds on its own).
pub fn check_position(params: &[u8], i: usize) -> Result<()> {
    let (pos, _) = get_varint(params.get(1..).unwrap_or(&[]))
        .with_context(|| format!("frame {i}: no position in the file (not a `semcom encode` file)"))?;
    if pos != i as u64 {
        bail!("frame {i} was written as frame {pos}: frames are missing, repeated or out of order");
    }
    Ok(())
}

pub fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).context("reading stdin")?;
        return Ok(b);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes)?;
        return Ok(out.flush()?);
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn load_prior(path: &Path) -> Result<Prior> {
    if !path.exists() {
        bail!(
            "model file {} does not exist (pass --model with the file the frames were made with)",
            path.display()
        );
    }
    Ok(Prior::load(path)?)
}

/// Lines without their `\n`, and whether the last one had it.
fn split_items(input: &[u8]) -> (Vec<&[u8]>, bool) {
    if input.is_empty() {
        return (Vec::new(), true);
    }
    let ends_with_newline = input.last() == Some(&b'\n');
    let body = if ends_with_newline {
        &input[..input.len() - 1]
    } else {
        input
    };
    (body.split(|&b| b == b'\n').collect(), ends_with_newline)
}

/// The model file a modality uses when `--model` is not given.
fn default_model(m: Modality) -> PathBuf {
    PathBuf::from(match m {
        Modality::Sensor => "models/sensor-har.safetensors",
        Modality::Image => "models/image-digital.safetensors",
        _ => "models/text-prior.safetensors",
    })
}

pub fn encode(a: EncodeArgs) -> Result<()> {
    let model = a.model.clone().unwrap_or_else(|| {
        default_model(match a.modality {
            CodecModality::Sensor => Modality::Sensor,
            CodecModality::Image => Modality::Image,
            _ => Modality::Text,
        })
    });
    if let CodecModality::Sensor = a.modality {
        let out = crate::sensor::encode_file(&read_input(&a.input)?, &model, a.sensor_mode, a.nrmse)?;
        return write_output(&a.output, &out);
    }
    if let CodecModality::Image = a.modality {
        let out = crate::image_digital::encode_file(&read_input(&a.input)?, &model, a.bpp, a.quality)?;
        return write_output(&a.output, &out);
    }
    if a.bpp.is_some() || a.quality.is_some() {
        bail!("--bpp and --quality apply to --modality image only");
    }
    let prior = load_prior(&model)?;
    let input = read_input(&a.input)?;
    let (items, final_newline) = split_items(&input);
    let mut out = Vec::new();
    let n = items.len();
    let mut push = |mut frame: SemanticFrame, first: bool| {
        if !first {
            frame.model = None;
        }
        let bytes = frame.to_bytes();
        put_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(&bytes);
    };
    match a.modality {
        CodecModality::Text => {
            let codec = TextCodec::new(&prior).with_threads(a.threads);
            let mut stream = TextStream::new();
            for (i, m) in items.iter().enumerate() {
                let kind = match a.kind {
                    Kind::Auto => TextKind::guess(m),
                    Kind::Log => TextKind::Log,
                    Kind::Text => TextKind::Text,
                };
                let payload = codec
                    .encode_payload(m, kind, a.stream.then_some(&mut stream))
                    .with_context(|| format!("line {}", i + 1))?;
                let mut f = SemanticFrame::new(Modality::Text, prior.id(), payload);
                let flags = if i + 1 == n && !final_newline { P_NO_NEWLINE } else { 0 }
                    | if a.stream { P_STREAM } else { 0 }
                    | if i + 1 == n { P_LAST } else { 0 };
                f.params = file_params(flags, i);
                push(f, i == 0);
            }
        }
        CodecModality::Telemetry => {
            let opts = TelemetryOptions {
                resync: a.resync,
                tolerances: a.tolerance.clone(),
                dictionary: None,
            };
            let mut enc = TelemetryEncoder::new(&prior, opts.clone());
            for (i, r) in items.iter().enumerate() {
                let (seq, payload) = enc.encode(r).with_context(|| format!("record on line {}", i + 1))?;
                let mut f = SemanticFrame::new(Modality::Telemetry, prior.id(), payload);
                let flags = if i + 1 == n && !final_newline { P_NO_NEWLINE } else { 0 }
                    | if i == 0 { P_OPTIONS } else { 0 }
                    | if i + 1 == n { P_LAST } else { 0 };
                f.params = vec![flags];
                put_varint(&mut f.params, seq);
                if i == 0 {
                    f.params.extend_from_slice(&opts.to_bytes());
                }
                push(f, i == 0);
            }
        }
        CodecModality::Sensor | CodecModality::Image => {
            unreachable!("sensor and image input are coded by their modules above")
        }
    }
    write_output(&a.output, &out)?;
    tracing::info!(
        items = n,
        input_bytes = input.len(),
        output_bytes = out.len(),
        "encoded"
    );
    Ok(())
}

/// Splits a frame file into frames.
pub fn frames(bytes: &[u8]) -> Result<Vec<SemanticFrame>> {
    let mut i = 0;
    let mut out = Vec::new();
    while i < bytes.len() {
        let (len, n) =
            get_varint(&bytes[i..]).with_context(|| format!("frame {}: broken length at byte {i}", out.len()))?;
        i += n;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| i.checked_add(l))
            .filter(|&e| e <= bytes.len());
        let Some(end) = end else {
            bail!(
                "frame {}: length {len} runs past the end of the input ({} bytes)",
                out.len(),
                bytes.len()
            )
        };
        out.push(
            SemanticFrame::from_bytes(&bytes[i..end]).with_context(|| format!("frame {} at byte {i}", out.len()))?,
        );
        i = end;
    }
    Ok(out)
}

pub fn decode(a: DecodeArgs) -> Result<()> {
    let input = read_input(&a.input)?;
    let frames = frames(&input)?;
    let model = a
        .model
        .clone()
        .unwrap_or_else(|| default_model(frames.first().map_or(Modality::Text, |f| f.modality)));
    if frames.first().is_some_and(|f| f.modality == Modality::Sensor) {
        return write_output(&a.output, &crate::sensor::decode_frames(&frames, &model)?);
    }
    if frames.first().is_some_and(|f| f.modality == Modality::Image) {
        return write_output(&a.output, &crate::image_digital::decode_frames(&frames, &model)?);
    }
    let prior = load_prior(&model)?;
    let mut out = Vec::new();
    let Some(first) = frames.first() else {
        return write_output(&a.output, &out);
    };
    let modality = first.modality;
    for (i, f) in frames.iter().enumerate() {
        let last = f.params.first().is_some_and(|&p| p & P_LAST != 0);
        if last != (i + 1 == frames.len()) {
            bail!(
                "frame {i}: {} (the file is cut short or spliced)",
                if last {
                    "marked last but more frames follow"
                } else {
                    "the last frame of the file is not marked last"
                }
            );
        }
    }
    if first.model.is_none() {
        bail!("frame 0 does not name its model: not the start of a `semcom encode` file");
    }
    let flags = |f: &SemanticFrame, i: usize| -> Result<u8> {
        f.params
            .first()
            .copied()
            .with_context(|| format!("frame {i}: no parameters"))
    };
    match modality {
        Modality::Text => {
            let codec = TextCodec::new(&prior);
            let mut stream = TextStream::new();
            for (i, f) in frames.iter().enumerate() {
                f.check(Modality::Text, prior.id())
                    .with_context(|| format!("frame {i}"))?;
                let fl = flags(f, i)?;
                check_position(&f.params, i)?;
                let m = codec
                    .decode_payload(&f.payload, (fl & P_STREAM != 0).then_some(&mut stream))
                    .with_context(|| format!("frame {i}"))?;
                out.extend_from_slice(&m);
                if fl & P_NO_NEWLINE == 0 {
                    out.push(b'\n');
                }
            }
        }
        Modality::Telemetry => {
            let p = &first.params;
            let fl = flags(first, 0)?;
            if fl & P_OPTIONS == 0 {
                bail!("frame 0 carries no telemetry options: not the start of a stream");
            }
            let (_, n) = get_varint(p.get(1..).unwrap_or(&[])).context("frame 0: broken sequence number")?;
            let (opts, _) = TelemetryOptions::from_bytes(&p[1 + n..]).context("frame 0")?;
            let mut dec = TelemetryDecoder::new(&prior, opts);
            for (i, f) in frames.iter().enumerate() {
                f.check(Modality::Telemetry, prior.id())
                    .with_context(|| format!("frame {i}"))?;
                let fl = flags(f, i)?;
                let (seq, _) =
                    get_varint(&f.params[1..]).with_context(|| format!("frame {i}: broken sequence number"))?;
                // The encoder numbers records from 0; in a file every one must be there, in order
                // (the decoder alone would step over a gap, as it does on a lossy link).
                if seq != i as u64 {
                    bail!("frame {i} carries record {seq}: records are missing, repeated or out of order");
                }
                let r = dec
                    .decode(seq, &f.payload)
                    .with_context(|| format!("frame {i} (record {seq})"))?;
                out.extend_from_slice(&r);
                if fl & P_NO_NEWLINE == 0 {
                    out.push(b'\n');
                }
            }
        }
        other => bail!(
            "frame 0 carries {} frames, which this build does not decode",
            other.name()
        ),
    }
    write_output(&a.output, &out)
}
