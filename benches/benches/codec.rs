//! Codec speed on one core: `cargo bench -p semcom-benches --bench codec`.
//!
//! A 100-character log line and sentence through the text codec (encode, decode), and telemetry
//! records per second: readings-like records, and the first 2000 full network-server uplinks of
//! `../shared/datasets/telemetry` (skipped with a message when the data set is absent). Uses the shipped prior (`models/text-prior.safetensors`) when present, else
//! a seeded untrained prior of the same size, which costs the same time per token. The same
//! workloads run in `semcom bench codec`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use semcom_codec::bpe::Bpe;
use semcom_codec::prior::Config;
use semcom_codec::telemetry::{TelemetryDecoder, TelemetryEncoder, TelemetryOptions};
use semcom_codec::text::{TextCodec, TextKind};
use semcom_codec::train::untrained_prior;
use semcom_codec::vocab::FIRST_MERGE;
use semcom_codec::Prior;
use std::hint::black_box;

const LOG_100: &str =
    "081111 093158 19 INFO dfs.DataNode$PacketResponder: Received block blk_-4173859021237384 of size 67";
const TEXT_100: &str =
    "The committee will present its report on the safety of transport before the end of the next session.";

fn prior() -> Prior {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/text-prior.safetensors");
    if let Ok(p) = Prior::load(std::path::Path::new(shipped)) {
        return p;
    }
    let bpe = Bpe::train([LOG_100.as_bytes(), TEXT_100.as_bytes()], 200);
    let mut cfg = Config::small(FIRST_MERGE as usize + bpe.merges().len());
    cfg.vocab_size = 2048;
    Prior::from_bytes(&untrained_prior(&cfg, &bpe, 1).expect("prior")).expect("loads")
}

fn text(c: &mut Criterion) {
    let p = prior();
    let codec = TextCodec::new(&p);
    let mut g = c.benchmark_group("text_100_chars");
    g.sample_size(20);
    g.throughput(Throughput::Elements(1));
    for (name, msg, kind) in [("log", LOG_100, TextKind::Log), ("text", TEXT_100, TextKind::Text)] {
        let payload = codec.encode_payload(msg.as_bytes(), kind, None).unwrap();
        g.bench_function(format!("encode_{name}"), |b| {
            b.iter(|| codec.encode_payload(black_box(msg.as_bytes()), kind, None).unwrap())
        });
        g.bench_function(format!("decode_{name}"), |b| {
            b.iter(|| codec.decode_payload(black_box(&payload), None).unwrap())
        });
    }
    g.finish();
}

/// Readings-like records: what a sensor sends every few minutes.
fn records() -> Vec<String> {
    (0..1000u32)
        .map(|i| {
            format!(
                r#"{{"accMotion":0,"digital":0,"humidity":{},"pulseAbs":0,"temperature":{}.{},"vdd":{},"waterleak":0,"x":{},"y":{},"z":-{}}}"#,
                80 + i * 7 % 5,
                15 + i % 7,
                i * 3 % 10,
                3600 - i / 50,
                -57 + (i % 3) as i32,
                -20 + (i * 5 % 3) as i32,
                13 + i % 2
            )
        })
        .collect()
}

/// Encodes and decodes `recs` as one stream per iteration (a fresh stream each time: the codec
/// learns the schema and its keys again), in the group `name`.
fn stream_group(c: &mut Criterion, name: &str, samples: usize, recs: &[&[u8]]) {
    let p = prior();
    let opts = TelemetryOptions::default();
    let mut enc = TelemetryEncoder::new(&p, opts.clone());
    let coded: Vec<(u64, Vec<u8>)> = recs.iter().map(|r| enc.encode(r).unwrap()).collect();
    let mut g = c.benchmark_group(name);
    g.sample_size(samples);
    g.throughput(Throughput::Elements(recs.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut enc = TelemetryEncoder::new(&p, opts.clone());
            recs.iter().map(|r| enc.encode(r).unwrap().1.len()).sum::<usize>()
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut dec = TelemetryDecoder::new(&p, opts.clone());
            coded
                .iter()
                .map(|(s, pl)| dec.decode(*s, pl).unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

fn telemetry(c: &mut Criterion) {
    let recs = records();
    let recs: Vec<&[u8]> = recs.iter().map(|r| r.as_bytes()).collect();
    stream_group(c, "telemetry_readings", 20, &recs);
}

/// The trace `semcom bench codec` times: full LoRaWAN network-server uplinks (about 1.3 kB of
/// JSON each), first 2000 records.
const UPLINKS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/datasets/telemetry/ems-tourperret-A81758FFFE04B1C1.ndjson.gz"
);

fn uplinks() -> Option<Vec<Vec<u8>>> {
    use std::io::Read;
    let raw = std::fs::read(UPLINKS).ok()?;
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut text).ok()?;
    Some(
        text.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .take(2000)
            .map(<[u8]>::to_vec)
            .collect(),
    )
}

fn telemetry_full(c: &mut Criterion) {
    let Some(recs) = uplinks() else {
        eprintln!("{UPLINKS} not found: telemetry_full skipped");
        return;
    };
    let recs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
    stream_group(c, "telemetry_full", 10, &recs);
}

criterion_group!(benches, text, telemetry, telemetry_full);
criterion_main!(benches);
