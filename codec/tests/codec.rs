//! The codec core end to end with small seeded models: determinism across thread counts, the
//! deterministic engine against candle, model-id refusal, text and telemetry round trips, loss
//! resilience, lossy tolerances, hostile payloads, and the one training smoke run.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use semcom_codec::bpe::Bpe;
use semcom_codec::prior::{Config, Model, PrefixCache, TokenCoder};
use semcom_codec::telemetry::{FieldCost, TelemetryDecoder, TelemetryDictionary, TelemetryEncoder, TelemetryOptions};
use semcom_codec::text::{TextCodec, TextKind, TextStream};
use semcom_codec::train::{train, untrained_prior, TextFile, TrainOptions};
use semcom_codec::vocab::{BOS, EOS, FIRST_MERGE, TAG_KEY, TAG_LOG, TAG_STRING};
use semcom_codec::{CodecError, Prior, SemanticFrame};

const SAMPLE: &str = "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_38865049064139660 terminating
Resumption of the session. I declare resumed the session of the European Parliament adjourned on Friday 17 December 1999.
{\"temperature\":7.1,\"humidity\":84,\"vdd\":3616,\"x\":59,\"y\":16,\"z\":-2}";

fn prior(seed: u64, max_len: usize) -> (Prior, Vec<u8>) {
    let bpe = Bpe::train(SAMPLE.lines().map(str::as_bytes), 40);
    let mut cfg = Config::tiny(FIRST_MERGE as usize + bpe.merges().len());
    cfg.max_len = max_len;
    let bytes = untrained_prior(&cfg, &bpe, seed).expect("prior");
    (Prior::from_bytes(&bytes).expect("loads"), bytes)
}

fn random_text(rng: &mut ChaCha8Rng, n: usize) -> Vec<u8> {
    let words = [
        "block",
        "INFO",
        "the",
        "session",
        "blk_",
        "Parliament",
        " ",
        "  ",
        "42",
        "-7.5",
        "\t",
        "é",
        "\u{1F600}",
    ];
    let mut s = Vec::new();
    while s.len() < n {
        if rng.random_bool(0.1) {
            s.push(rng.random::<u8>());
        } else {
            s.extend_from_slice(words[rng.random_range(0..words.len())].as_bytes());
        }
    }
    s
}

/// Encoding on 2 threads (batched prefill split across threads, windows over a context longer
/// than the model's) and decoding on 1 (token by token) must agree bit for bit.
#[test]
fn two_thread_encoder_one_thread_decoder() {
    let (p, _) = prior(3, 32);
    let one = TextCodec::new(&p);
    let two = TextCodec::new(&p).with_threads(2);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for n in [0, 1, 5, 31, 32, 33, 64, 150, 400] {
        let msg = random_text(&mut rng, n);
        let a = two.encode_payload(&msg, TextKind::Log, None).unwrap();
        let b = one.encode_payload(&msg, TextKind::Log, None).unwrap();
        assert_eq!(a, b, "payload depends on the thread count (length {n})");
        assert_eq!(one.decode_payload(&a, None).unwrap(), msg, "length {n}");
    }
    // Stream mode: the context carries earlier messages.
    let (mut se, mut sd) = (TextStream::new(), TextStream::new());
    for i in 0..12 {
        let msg = random_text(&mut rng, 10 + 9 * i);
        let pl = two.encode_payload(&msg, TextKind::Text, Some(&mut se)).unwrap();
        assert_eq!(one.decode_payload(&pl, Some(&mut sd)).unwrap(), msg);
    }
}

/// With an n-gram memory in the model file the coder still agrees across thread counts, round
/// trips everything, and codes text like its training text in fewer bits.
#[test]
fn ngram_memory_is_deterministic_and_helps() {
    let (p, bytes) = prior(5, 48);
    let lines: Vec<Vec<u8>> = (0..60)
        .map(|i| format!("081109 2036{:02} 148 INFO dfs.DataNode$PacketResponder: PacketResponder {} for block blk_{} terminating", i % 60, i % 3, 1000 + 37 * i).into_bytes())
        .collect();
    let file = TextFile {
        name: "hdfs".into(),
        tag: TAG_LOG,
        train: lines[..50].to_vec(),
        heldout: lines[50..].to_vec(),
        extra: false,
    };
    let ng = semcom_codec::train::build_ngram(&[file], p.bpe(), false, 6, 1, 16, 0).unwrap();
    for int8 in [false, true] {
        let with = Prior::from_bytes(&Prior::file_with_ngram(&bytes, Some(&ng), int8).unwrap()).unwrap();
        assert!(with.ngram().is_some() && p.ngram().is_none());
        assert_eq!(with.engine().is_quantised(), int8);
        assert_ne!(with.id(), p.id(), "the memory is part of the model id");
        let (one, two) = (TextCodec::new(&with), TextCodec::new(&with).with_threads(2));
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let (mut plain, mut mem) = (0, 0);
        for msg in lines[50..]
            .iter()
            .cloned()
            .chain((0..8).map(|i| random_text(&mut rng, 20 * i)))
        {
            let a = two.encode_payload(&msg, TextKind::Log, None).unwrap();
            assert_eq!(a, one.encode_payload(&msg, TextKind::Log, None).unwrap(), "int8 {int8}");
            assert_eq!(one.decode_payload(&a, None).unwrap(), msg);
            if msg.starts_with(b"081109") {
                mem += a.len();
                plain += TextCodec::new(&p)
                    .encode_payload(&msg, TextKind::Log, None)
                    .unwrap()
                    .len();
            }
        }
        assert!(mem * 2 < plain, "memory {mem} B vs transformer alone {plain} B");
        // Stream mode: its own memory learns the stream, so later lines cost less.
        let (mut se, mut sd) = (TextStream::new(), TextStream::new());
        let mut stream = 0;
        for msg in &lines[50..] {
            let pl = two.encode_payload(msg, TextKind::Log, Some(&mut se)).unwrap();
            assert_eq!(&one.decode_payload(&pl, Some(&mut sd)).unwrap(), msg);
            stream += pl.len();
        }
        assert!(stream < mem, "stream {stream} B vs alone {mem} B");
    }
    // The file records the arithmetic and the memory: removing both gives the original coder.
    let back = Prior::file_with_ngram(&Prior::file_with_ngram(&bytes, Some(&ng), true).unwrap(), None, false).unwrap();
    let back = Prior::from_bytes(&back).unwrap();
    assert!(back.ngram().is_none() && !back.engine().is_quantised());
    assert_eq!(
        TextCodec::new(&back)
            .encode_payload(&lines[55], TextKind::Log, None)
            .unwrap(),
        TextCodec::new(&p)
            .encode_payload(&lines[55], TextKind::Log, None)
            .unwrap()
    );
}

/// The 8-bit engine stays close to the f32 one: next-token log-probabilities within 0.15 nats
/// on a random model over random text.
/// The prefix cache (keys and strings of the telemetry codec) only saves time: every sequence
/// it codes, repeated, sharing a beginning with another, longer than what it keeps or than the
/// context window, gives the bytes of a fresh coder, and decodes back through another cache.
#[test]
fn prefix_cache_codes_the_bits_of_a_fresh_coder() {
    let (plain, bytes) = prior(21, 16);
    let lines: Vec<&[u8]> = SAMPLE.lines().map(str::as_bytes).collect();
    let file = TextFile {
        name: "sample".into(),
        tag: TAG_LOG,
        train: lines.iter().map(|l| l.to_vec()).collect(),
        heldout: Vec::new(),
        extra: false,
    };
    let ng = semcom_codec::train::build_ngram(&[file], plain.bpe(), false, 6, 1, 16, 0).unwrap();
    let with = Prior::from_bytes(&Prior::file_with_ngram(&bytes, Some(&ng), true).unwrap()).unwrap();
    for p in [&plain, &with] {
        let allowed = p.text_allowed();
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let pool: Vec<u32> = (0..allowed.len() as u32)
            .filter(|&t| allowed[t as usize] && t != EOS)
            .collect();
        let mut seqs: Vec<(u32, Vec<u32>)> = Vec::new();
        for i in 0..40 {
            let len = [0, 1, 2, 3, 5, 8, 30, 70][i % 8];
            let mut s: Vec<u32> = (0..len).map(|_| pool[rng.random_range(0..pool.len())]).collect();
            if i % 5 == 4 {
                // A sequence sharing the beginning of an earlier one.
                let (_, earlier) = &seqs[rng.random_range(0..seqs.len())];
                s = earlier[..earlier.len() / 2].iter().copied().chain(s).collect();
            }
            s.push(EOS);
            let tag = if i % 3 == 0 { TAG_KEY } else { TAG_STRING };
            seqs.push((tag, s));
        }
        // Every sequence again, in another order.
        let again: Vec<(u32, Vec<u32>)> = seqs.iter().rev().cloned().collect();
        seqs.extend(again);
        let mut cache = PrefixCache::new(p, allowed);
        let mut enc_cached = semcom_codec::rangecoder::RangeEncoder::new();
        let mut enc_fresh = semcom_codec::rangecoder::RangeEncoder::new();
        for (tag, s) in &seqs {
            let mut c = cache.coder(&[BOS, *tag]);
            let mut f = TokenCoder::new(p, &[BOS, *tag]);
            for &t in s {
                c.encode(&mut enc_cached, t).unwrap();
                f.encode(&mut enc_fresh, t, allowed).unwrap();
            }
        }
        assert!(!cache.is_empty());
        let coded = enc_cached.finish();
        assert_eq!(coded, enc_fresh.finish(), "the cache changed the bits");
        let mut cache = PrefixCache::new(p, allowed);
        let mut dec = semcom_codec::rangecoder::RangeDecoder::new(&coded);
        for (tag, s) in &seqs {
            let mut c = cache.coder(&[BOS, *tag]);
            let back: Vec<u32> = s.iter().map(|_| c.decode(&mut dec).unwrap()).collect();
            assert_eq!(&back, s);
        }
        // A token the mask forbids is refused, by the cache as by a fresh coder.
        let banned = (0..allowed.len() as u32).find(|&t| !allowed[t as usize]).unwrap();
        let mut enc = semcom_codec::rangecoder::RangeEncoder::new();
        assert!(cache.coder(&[BOS, TAG_KEY]).encode(&mut enc, banned).is_err());
        assert!(TokenCoder::new(p, &[BOS, TAG_KEY])
            .encode(&mut enc, banned, allowed)
            .is_err());
    }
}

#[test]
fn int8_engine_tracks_f32() {
    let (p, bytes) = prior(11, 64);
    let ng = semcom_codec::prior::ngram::NGram::build([&[1u32, 2][..]], 1, 1, 16, 0).unwrap();
    let q = Prior::from_bytes(&Prior::file_with_ngram(&bytes, Some(&ng), true).unwrap()).unwrap();
    let v = p.engine().config().vocab_size;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let seq: Vec<u32> = (0..40).map(|_| rng.random_range(0..v as u32)).collect();
    let a = semcom_codec::prior::sequence_logits(p.engine(), &seq, 1).unwrap();
    let b = semcom_codec::prior::sequence_logits(q.engine(), &seq, 2).unwrap();
    let logp = |l: &[f32]| {
        let m = l.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let z: f32 = l.iter().map(|&x| (x - m).exp()).sum();
        l.iter().map(|&x| x - m - z.ln()).collect::<Vec<f32>>()
    };
    let mut worst = 0f32;
    for (ra, rb) in a.chunks_exact(v).zip(b.chunks_exact(v)) {
        for (x, y) in logp(ra).iter().zip(logp(rb)) {
            worst = worst.max((x - y).abs());
        }
    }
    assert!(worst < 0.15, "int8 log-probs differ by up to {worst}");
    assert!(
        worst > 0.0,
        "the 8-bit engine computed exactly the f32 values: not quantised?"
    );
}

/// The engine that codes must compute what the candle model computes (to float rounding).
#[test]
fn engine_matches_candle() {
    let (p, bytes) = prior(5, 64);
    let cfg = p.engine().config().clone();
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &Device::Cpu).unwrap();
    let model = Model::new(&cfg, vb).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let toks: Vec<u32> = std::iter::once(BOS)
        .chain((0..40).map(|_| rng.random_range(0..cfg.vocab_size as u32)))
        .collect();
    let x = Tensor::from_slice(&toks, (1, toks.len()), &Device::Cpu).unwrap();
    let logits: Vec<Vec<f32>> = model.forward(&x).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
    let mut st = p.engine().new_state();
    let mut out = vec![0f32; cfg.vocab_size];
    let mut worst = 0f32;
    for (i, &t) in toks.iter().enumerate() {
        p.engine().step(&mut st, t, &mut out);
        let lse = |v: &[f32]| {
            let m = v.iter().copied().fold(f32::MIN, f32::max);
            m + v.iter().map(|x| (x - m).exp()).sum::<f32>().ln()
        };
        let (a, b) = (lse(&out), lse(&logits[i]));
        for (x, y) in out.iter().zip(&logits[i]) {
            worst = worst.max(((x - a) - (y - b)).abs());
        }
    }
    assert!(worst < 2e-3, "engine and candle log-probabilities differ by {worst}");
}

#[test]
fn frames_from_other_weights_are_refused() {
    let (a, _) = prior(1, 64);
    let (b, _) = prior(2, 64);
    let frame = TextCodec::new(&a).encode(b"hello", TextKind::Text).unwrap();
    let parsed = SemanticFrame::from_bytes(&frame.to_bytes()).unwrap();
    match TextCodec::new(&b).decode(&parsed) {
        Err(CodecError::ModelMismatch { frame, decoder }) => {
            assert_eq!(frame, a.id().to_string());
            assert_eq!(decoder, b.id().to_string());
            let msg = CodecError::ModelMismatch { frame, decoder }.to_string();
            assert!(
                msg.contains(&a.id().to_string()) && msg.contains(&b.id().to_string()),
                "{msg}"
            );
        }
        other => panic!("expected a model mismatch, got {other:?}"),
    }
    assert_eq!(TextCodec::new(&a).decode(&parsed).unwrap(), b"hello");
}

#[test]
fn model_files_that_are_not_priors_are_refused() {
    let (_, bytes) = prior(1, 64);
    assert!(matches!(
        Prior::from_bytes(b"not a model"),
        Err(CodecError::Model { .. })
    ));
    for cut in [0, 8, bytes.len() / 2, bytes.len() - 1] {
        assert!(Prior::from_bytes(&bytes[..cut]).is_err(), "a file cut at {cut} loaded");
    }
}

#[test]
fn corrupt_text_payloads_fail_or_differ_but_never_panic() {
    let (p, _) = prior(4, 64);
    let c = TextCodec::new(&p);
    let msg = b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1";
    let good = c.encode_payload(msg, TextKind::Log, None).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for i in 0..300 {
        let mut bad = good.clone();
        match i % 3 {
            0 => bad.truncate(rng.random_range(0..bad.len())),
            1 => {
                let k = rng.random_range(0..bad.len());
                bad[k] ^= 1 << rng.random_range(0..8);
            }
            _ => bad = (0..rng.random_range(0..64)).map(|_| rng.random()).collect(),
        }
        if let Ok(out) = c.decode_payload(&bad, None) {
            assert!(out.len() <= 1 << 20);
        }
    }
    // A payload cut short must not decode to the message (truncation is detected, or the
    // result differs).
    for cut in 0..good.len() {
        assert_ne!(
            c.decode_payload(&good[..cut], None).ok().as_deref(),
            Some(&msg[..]),
            "cut at {cut}"
        );
    }
}

/// Loss falls in a short training run on a tiny corpus (the only test that trains).
#[test]
fn training_smoke_run_lowers_the_loss() {
    let lines: Vec<Vec<u8>> = (0..400)
        .map(|i| {
            format!(
                "081109 2036{:02} {} INFO dfs.DataNode: block blk_{} terminating",
                i % 60,
                100 + i % 37,
                1000 + 7 * i
            )
            .into_bytes()
        })
        .collect();
    let files = vec![TextFile {
        name: "smoke".into(),
        tag: TAG_LOG,
        train: lines[..320].to_vec(),
        heldout: lines[320..].to_vec(),
        extra: false,
    }];
    let opts = TrainOptions {
        model: Config::tiny(0),
        merges: 30,
        steps: 40,
        batch: 4,
        seq_len: 48,
        lr: 3e-3,
        warmup: 5,
        eval_every: 0,
        mix: [1.0, 0.0, 0.0],
        ..TrainOptions::default()
    };
    let t = train(&files, &opts, &mut |_| {}).unwrap();
    assert!(
        t.final_loss_bits < t.initial_loss_bits - 0.5,
        "loss {} → {}",
        t.initial_loss_bits,
        t.final_loss_bits
    );
    let p = Prior::from_bytes(&t.file).unwrap();
    let c = TextCodec::new(&p);
    let m = &lines[350];
    assert_eq!(
        &c.decode_payload(&c.encode_payload(m, TextKind::Log, None).unwrap(), None)
            .unwrap(),
        m
    );
}

/// Telemetry records in the shape of the project's LoRaWAN trace.
fn uplink(i: u64, rng: &mut ChaCha8Rng) -> String {
    let t = 1_672_867_882_173u64 + i * 600_000 + rng.random_range(0..400);
    let temp = 70 + (i as i64 % 50) - 25 + rng.random_range(-2..=2);
    let hot = ["0eb555c61a8ecb4a2a43a799b85c7f3a", "b174c78dbcf95611a4bdb33452797fd3"][rng.random_range(0..2)];
    let raw: String = (0..32)
        .map(|_| {
            char::from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[rng.random_range(0..64)])
        })
        .collect();
    format!(
        r#"{{"name":"ELSYS_EMS","fcnt":{},"decoded":{{"payload":{{"humidity":{},"temperature":{}.{},"vdd":{},"x":{}}},"status":"success"}},"raw_packet":"{raw}","reported_at":{t},"_date":"{}","hotspots":[{{"frequency":{},"name":"{hot}","rssi":{},"snr":{}}}],"ok":true,"n":null}}"#,
        71 + i,
        80 + rng.random_range(0..5),
        temp.div_euclid(10),
        temp.rem_euclid(10),
        3616 - i as i64 / 10,
        rng.random_range(-60..60),
        format_iso(t + 487),
        ["868.2999877929688", "868.0999755859375", "867.5"][rng.random_range(0..3)],
        -110 - rng.random_range(0..20),
        ["-3.799999952316284", "-11", "2.5"][rng.random_range(0..3)],
    )
}

fn format_iso(ms: u64) -> String {
    let s = ms / 1000;
    let (d, r) = (s / 86_400, s % 86_400);
    // 2023-01-04 is day 19361; the test only needs consistent, valid dates in January 2023.
    format!(
        "2023-01-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        4 + (d - 19_361) % 27,
        r / 3600,
        r / 60 % 60,
        r % 60,
        ms % 1000
    )
}

fn csv_rows(n: usize, rng: &mut ChaCha8Rng) -> Vec<String> {
    let mut v = vec!["time_utc,fcnt,temperature_c,humidity_pct,label,payload_hex".to_string()];
    for i in 0..n as u64 {
        let t = 1_672_867_882_173u64 + i * 600_000 + rng.random_range(0..400);
        v.push(format!(
            "{},{},{:.1},{},{},01{:04x}02{:02x}",
            format_iso(t),
            71 + i,
            7.0 + rng.random_range(-3..=3) as f64 / 10.0,
            80 + rng.random_range(0..4),
            ["ok", "\"a,b\"", ""][rng.random_range(0..3)],
            700 + i,
            80 + i % 4
        ));
    }
    v
}

fn round_trip(p: &Prior, records: &[String], opts: &TelemetryOptions) -> Vec<usize> {
    let mut enc = TelemetryEncoder::new(p, opts.clone());
    let mut dec = TelemetryDecoder::new(p, opts.clone());
    let mut sizes = Vec::new();
    for r in records {
        let (seq, payload) = enc.encode(r.as_bytes()).unwrap();
        assert_eq!(dec.decode(seq, &payload).unwrap(), r.as_bytes(), "record {seq}");
        sizes.push(payload.len());
    }
    sizes
}

#[test]
fn telemetry_round_trips_json_and_csv_and_compresses() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let json: Vec<String> = (0..200).map(|i| uplink(i, &mut rng)).collect();
    let sizes = round_trip(&p, &json, &TelemetryOptions::default());
    let late: usize = sizes[100..].iter().sum::<usize>() / 100;
    let raw: usize = json[100..].iter().map(String::len).sum::<usize>() / 100;
    // 24 random base64 bytes dominate; the rest must cost little.
    assert!(late < 45, "mean {late} bytes per {raw}-byte record");
    let csv = csv_rows(150, &mut rng);
    let sizes = round_trip(&p, &csv, &TelemetryOptions::default());
    assert!(sizes[50..].iter().sum::<usize>() / 100 < 12, "{sizes:?}");
    // Anything else is still lossless (verbatim lines, non-compact JSON, odd CSV).
    let odd: Vec<String> = [
        "{ \"a\": 1 }",
        "x\"y",
        "",
        "{\"a\":[1,{\"b\":-0}],\"c\":1e5}",
        "a,b",
        "1,2",
        "\"unterminated",
        "{\"k\":\"\\u00e9\\\"\"}",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    round_trip(
        &p,
        &odd,
        &TelemetryOptions {
            resync: 3,
            tolerances: vec![],
            dictionary: None,
        },
    );
}

#[test]
fn telemetry_recovers_within_the_resync_interval_after_a_loss() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let records: Vec<String> = (0..120).map(|i| uplink(i, &mut rng)).collect();
    for lost in [0u64, 5, 16, 17, 40, 63] {
        let opts = TelemetryOptions::default();
        let mut enc = TelemetryEncoder::new(&p, opts.clone());
        let mut dec = TelemetryDecoder::new(&p, opts);
        let mut first_good_after = None;
        for r in &records {
            let (seq, payload) = enc.encode(r.as_bytes()).unwrap();
            if seq == lost {
                continue;
            }
            match dec.decode(seq, &payload) {
                Ok(out) => {
                    assert_eq!(out, r.as_bytes(), "record {seq} decoded wrongly after losing {lost}");
                    if seq > lost && first_good_after.is_none() {
                        first_good_after = Some(seq);
                    }
                }
                Err(e) => {
                    assert!(
                        seq > lost && seq < lost + 17,
                        "record {seq} failed ({e}) after losing {lost}"
                    );
                    assert!(
                        first_good_after.is_none(),
                        "record {seq} failed after {first_good_after:?} decoded"
                    );
                }
            }
        }
        assert!(
            first_good_after.is_some_and(|g| g <= lost + 16),
            "lost {lost}: first good {first_good_after:?}"
        );
    }
}

/// Codes `records` in one stream, drops the payloads of the records in `lost`, and decodes the
/// rest: every record must decode exactly or fail with an error for which `may_fail(seq, last
/// loss before it)` holds. Returns how many failed.
fn decode_with_losses(
    p: &Prior,
    records: &[String],
    lost: &[u64],
    may_fail: impl Fn(u64, Option<u64>) -> bool,
) -> usize {
    decode_with_losses_and(p, None, records, lost, may_fail)
}

/// [`decode_with_losses`] of a stream coded with a dictionary.
fn decode_with_losses_and(
    p: &Prior,
    dict: Option<&TelemetryDictionary>,
    records: &[String],
    lost: &[u64],
    may_fail: impl Fn(u64, Option<u64>) -> bool,
) -> usize {
    let mut enc = TelemetryEncoder::with_dictionary(p, TelemetryOptions::default(), dict);
    let mut dec = TelemetryDecoder::with_dictionary(p, enc.options().clone(), dict).unwrap();
    let mut failed = 0;
    for r in records {
        let (seq, payload) = enc.encode(r.as_bytes()).unwrap();
        if lost.contains(&seq) {
            continue;
        }
        match dec.decode(seq, &payload) {
            Ok(out) => assert_eq!(out, r.as_bytes(), "record {seq} decoded wrongly, lost {lost:?}"),
            Err(e) => {
                failed += 1;
                let last = lost.iter().copied().filter(|&l| l < seq).max();
                assert!(may_fail(seq, last), "record {seq} failed ({e}), lost {lost:?}");
            }
        }
    }
    failed
}

/// Codes `records` in one stream (default options) and returns what each field cost from record
/// `from` on, by path.
fn field_costs(p: &Prior, records: &[String], from: usize) -> HashMap<String, FieldCost> {
    field_costs_with(p, &TelemetryOptions::default(), records, from)
}

fn field_costs_with(p: &Prior, opts: &TelemetryOptions, records: &[String], from: usize) -> HashMap<String, FieldCost> {
    let mut enc = TelemetryEncoder::new(p, opts.clone());
    for (i, r) in records.iter().enumerate() {
        if i == from {
            enc.keep_costs();
        }
        enc.encode(r.as_bytes()).unwrap();
    }
    enc.costs().into_iter().collect()
}

/// For each pattern of lost records: every failure follows some loss by at most 16 records
/// (the last loss before it, a fortiori), so at most 16 fail per loss.
fn recovers_within_16(p: &Prior, records: &[String], patterns: &[Vec<u64>]) {
    for lost in patterns {
        let failed = decode_with_losses(p, records, lost, within_16);
        assert!(failed <= 16 * lost.len(), "{failed} failed records for {lost:?}");
    }
}

/// Whether `seq` lies within 16 records after the last loss before it.
fn within_16(seq: u64, last: Option<u64>) -> bool {
    last.is_some_and(|l| seq < l + 17)
}

/// Whether `seq` lies within 16 records after the last loss before it, or before the refresh
/// period (every 8th of 16 records) after that loss: where a decoder that lost what several
/// periods made usable (templates, warm-start profiles) learns it afresh.
fn within_16_or_refresh(seq: u64, last: Option<u64>) -> bool {
    within_16(seq, last) || last.is_some_and(|l| seq < (l / 128 + 1) * 128)
}

/// Gateway records whose per-gateway fields (coordinates, name) depend on the gateway id, one
/// gateway of which moves at record 200.
fn gateway_record(i: u64, rng: &mut ChaCha8Rng) -> String {
    let g = rng.random_range(0..6u64);
    gateway_record_of(i, g, rng)
}

/// [`gateway_record`] from gateway `g`.
fn gateway_record_of(i: u64, g: u64, rng: &mut ChaCha8Rng) -> String {
    let moved = g == 2 && i >= 200;
    let lat = 45.18 + g as f64 * 0.013 + if moved { 0.5 } else { 0.0 };
    format!(
        r#"{{"dev":"EMS-1","fcnt":{i},"gateways":[{{"channel":{},"id":"gw-{g}-{:08x}","lat":{lat:.5},"long":{:.5},"name":"site {g}","rssi":{}}}]}}"#,
        rng.random_range(0..8),
        g * 0x9e37_79b9,
        5.74 - g as f64 * 0.007,
        -100 - rng.random_range(0..20),
    )
}

/// The keyed memory (a field's value per gateway id) pays off, and a decoder that lost records
/// (so holds fewer or older associations) never outputs a wrong record: it decodes right or
/// reports a desync, and one loss costs at most 16 records.
#[test]
fn telemetry_keyed_values_save_bits_and_never_decode_stale() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let records: Vec<String> = (0..1600).map(|i| gateway_record(i, &mut rng)).collect();
    // Coordinates per gateway cost almost nothing once known, though the gateway changes at random.
    let costs = field_costs(&p, &records, 100);
    let per_record = |path: &str| costs[path].bits / costs[path].records as f64;
    for path in ["gateways.0.long", "gateways.0.name"] {
        assert!(
            per_record(path) < 1.0,
            "{path}: {:.2} bits per record",
            per_record(path)
        );
    }
    // The moved gateway's latitude changed: it is sent in full until the change settled (64
    // periods, to record 1232), then known again, except in refresh periods.
    let settled = field_costs(&p, &records, 1250);
    let per_record = |path: &str| settled[path].bits / settled[path].records as f64;
    let (lat, long) = (per_record("gateways.0.lat"), per_record("gateways.0.long"));
    assert!(lat < long + 1.5, "lat {lat:.2} long {long:.2} bits per record");
    // Lost records: single ones, a burst across the move, several in different resync periods.
    let patterns: Vec<Vec<u64>> = vec![
        vec![40],
        vec![199],
        vec![200, 201, 202, 203, 204, 205, 206, 207, 208],
        vec![20, 37, 70, 150, 199, 230, 231, 300],
        (0..400).filter(|i| (i * 7919) % 10 == 3).collect(),
    ];
    recovers_within_16(&p, &records[..400], &patterns);
    // A decoder that lost every record of the moved gateway until its new latitude was in use
    // (more than 64 periods after the move) holds the old one: it refuses the references (never
    // decodes the old latitude) and learns the new one where a refresh period sends it in full.
    let gw2 = |i: u64| records[i as usize].contains("\"id\":\"gw-2-");
    let moved: Vec<u64> = (200..1250u64).filter(|&i| gw2(i)).collect();
    let refresh = |i: u64| i % (16 * 8) < 16;
    let relearnt = (1250..1600u64)
        .find(|&i| refresh(i) && gw2(i))
        .expect("a refresh period with gw-2");
    let may_fail = |seq: u64, last: Option<u64>| within_16(seq, last) || seq < (relearnt / 16 + 1) * 16;
    let failed = decode_with_losses(&p, &records, &moved, may_fail);
    assert!(failed > 0, "the stale decoder should have refused a changed value");
}

/// A decoder that saw the moved gateway's new latitude, then lost that gateway's records for
/// longer than the change had settled, with losses in many periods, still holds the new value:
/// the reference says when the value changed, so the decoder takes it and nothing fails more than
/// 16 records after a loss. (Before references carried that, such a decoder could not tell its
/// value from an older one and refused it, failing records long after its last loss.)
#[test]
fn telemetry_changed_keyed_value_is_taken_by_a_decoder_that_saw_the_change() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    // gw-2 moves at record 200 (period 12); from record 1250 on it is heard in one period of
    // four only, then not at all from 2400 until record 2456 (period 153, not a refresh period).
    let records: Vec<String> = (0..2600u64)
        .map(|i| {
            let epoch = i / 16;
            let g = match i {
                1250..2400 if epoch % 4 == 0 && i % 16 == 5 => 2,
                1250..2456 => [0, 1, 3, 4, 5][rng.random_range(0..5usize)],
                2456 => 2,
                _ => rng.random_range(0..6u64),
            };
            gateway_record_of(i, g, &mut rng)
        })
        .collect();
    let gw2 = |i: u64| records[i as usize].contains("\"id\":\"gw-2-");
    // The decoder last sees gw-2 before record 1250 (period 77, long after the move) and loses
    // every gw-2 record from there to 2400: 18 incomplete periods, none after period 148.
    let lost: Vec<u64> = (1250..2400u64).filter(|&i| gw2(i)).collect();
    assert!(lost.len() >= 17 && gw2(2456) && !(2400..2456).any(gw2));
    let failed = decode_with_losses(&p, &records, &lost, within_16);
    assert!(failed > 0, "the lost records should have cost some of their periods");
}

/// A decoder that lost every record of one gateway (so it lacks the gateway's id in the string
/// memories and its keyed coordinates and name, which the encoder refers to by hash) fails the
/// records that refer to them, but only until the next full refresh (period 256, record 4096):
/// from there the encoder sends each long-lived item in full the first time it uses it.
#[test]
fn telemetry_decoder_lacking_long_lived_items_recovers_at_full_refresh() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let records: Vec<String> = (0..4400).map(|i| gateway_record(i, &mut rng)).collect();
    let gw5 = |i: u64| records[i as usize].contains("\"id\":\"gw-5-");
    let lost: Vec<u64> = (0..4096u64).filter(|&i| gw5(i)).collect();
    assert!(lost.len() > 500 && (4096..4400).any(gw5));
    let failed = decode_with_losses(&p, &records, &lost, |seq, _| seq < 4096);
    // Without full refreshes every later gw-5 record (and the rest of its period) would fail.
    assert!(
        failed > 1000,
        "only {failed} failed: the decoder should have lacked gw-5"
    );
}

/// On a reliable stream (`resync` 0: no resync points, the decoder sees every record in order)
/// what went out once is known at the other end: a shape, a string or a keyed value is referred
/// to from its second use on, a changed keyed value at once. Such a stream costs less than one
/// with resync points by far (half, here), not more.
#[test]
fn telemetry_reliable_stream_refers_to_what_went_out_once() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let records: Vec<String> = (0..400).map(|i| gateway_record(i, &mut rng)).collect();
    let reliable = TelemetryOptions {
        resync: 0,
        tolerances: vec![],
        dictionary: None,
    };
    let mean = |s: Vec<usize>| s[100..].iter().sum::<usize>() as f64 / 300.0;
    let (once, resync) = (
        mean(round_trip(&p, &records, &reliable)),
        mean(round_trip(&p, &records, &TelemetryOptions::default())),
    );
    assert!(
        once < 0.6 * resync,
        "{once:.2} bytes per record at resync 0, {resync:.2} at 16"
    );
    // Per-gateway fields cost almost nothing from the first records on, the moved gateway's
    // latitude (record 200) too.
    let costs = field_costs_with(&p, &reliable, &records, 20);
    let per_record = |path: &str| costs[path].bits / costs[path].records as f64;
    for path in ["gateways.0.lat", "gateways.0.long", "gateways.0.name"] {
        assert!(
            per_record(path) < 1.0,
            "{path}: {:.2} bits per record",
            per_record(path)
        );
    }
}

/// A base58check string (a Helium hotspot id) is sent as its bytes without the checksum (34
/// bytes, 272 bits, where the prior took about 430), and a corrupted one (checksum wrong) still
/// round-trips, by another class.
#[test]
fn telemetry_base58check_ids_cost_their_bytes() {
    let (p, _) = prior(6, 64);
    let ids = [
        "11xHRM14WPH9AmAC2gGqHHj4esGKcViWLdQL83mcVNRRdhftJf",
        "112g1Jjmg9RUSUSop9orNC7tSBosuRNhbctR8X2iHL4h3ZR4oUhg",
        "1126yPc8zWx4zKNb3sWhUCAoeV9ZsYiY5qRtMRZtF3rp6u5SYuHR",
        "112vJJNGVwSNxePseL4pCtUiKMYtLT9DVv7qBEZW5GW6Xtx5vJUA",
        "112aUzhqddD7QFTSMbmXvkHTHrNB8z5GB3MwuvhbyCkM8g53Fabu",
        "11bswTTXSuJCFq25Yiaq93H5i7tUitrVEqxVzFpeXCV8deqUg4f",
        // The first with its last character changed: not base58check.
        "11xHRM14WPH9AmAC2gGqHHj4esGKcViWLdQL83mcVNRRdhftJg",
    ];
    let records: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| format!(r#"{{"fcnt":{i},"id":"{id}"}}"#))
        .collect();
    round_trip(&p, &records, &TelemetryOptions::default());
    let costs = field_costs(&p, &records[..6], 0);
    let per_id = costs["id"].bits / 6.0;
    assert!(per_id < 300.0, "{per_id:.1} bits per base58check id");
}

/// A sensor that reports every 10 or every 30 minutes (at random) with up to 0.4 s of jitter,
/// heard on channels whose frequency follows from the channel number.
fn two_period_record(t: u64, rng: &mut ChaCha8Rng) -> String {
    let ch = rng.random_range(0..3u64);
    format!(
        r#"{{"dev":"EMS-1","reported_at":{t},"hotspots":[{{"channel":{ch},"frequency":{},"rssi":{}}}]}}"#,
        ["868.1", "868.3", "868.5"][ch as usize],
        -100 - rng.random_range(0..20),
    )
}

/// A timestamp whose period switches between two steps is predicted from the step it takes
/// (its index costs about a bit, not a 21-bit residual), and a nested number that follows from
/// the number before it (a frequency from its channel) is a keyed value; both decode right or
/// fail within 16 records of a loss.
#[test]
fn telemetry_steps_and_sibling_keys() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let mut t = 1_695_882_095_467u64;
    let records: Vec<String> = (0..400)
        .map(|_| {
            t += [600_000, 1_800_000][rng.random_range(0..2)] + rng.random_range(0..400);
            two_period_record(t, &mut rng)
        })
        .collect();
    let costs = field_costs(&p, &records, 100);
    let per_record = |path: &str| costs[path].bits / costs[path].records as f64;
    // About 9.6 bits for the jitter's change, one for the step, and the first records of each
    // resync period, which have no steps yet (22.9 bits with the last value or linear prediction).
    let ts = per_record("reported_at");
    assert!(ts < 20.0, "reported_at: {ts:.2} bits per record");
    let freq = per_record("hotspots.0.frequency");
    assert!(freq < 1.0, "frequency: {freq:.2} bits per record");
    for lost in [vec![50u64], vec![17, 18, 19], vec![100, 161, 250, 251, 330]] {
        decode_with_losses(&p, &records, &lost, within_16);
    }
}

/// A frequency keyed by its channel, written by two network-server versions: `868.1` and its
/// f32 spelling `868.0999755859375` are one keyed value (the spelling costs a bit, not a
/// contradiction that loses the key for good), and every record decodes to its own spelling.
#[test]
fn telemetry_keyed_numbers_in_two_spellings() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(34);
    let records: Vec<String> = (0..400u64)
        .map(|i| {
            let ch = rng.random_range(0..3usize);
            // The old server (f32 spellings) until record 150, the new one after.
            let old = i < 150 && rng.random_range(0..3) == 0;
            let freq = if old {
                ["868.0999755859375", "868.2999877929688", "868.5"][ch]
            } else {
                ["868.1", "868.3", "868.5"][ch]
            };
            let rssi = -100 - rng.random_range(0..20);
            format!(r#"{{"dev":"EMS-1","hotspots":[{{"channel":{ch},"frequency":{freq},"rssi":{rssi}}}]}}"#)
        })
        .collect();
    let costs = field_costs(&p, &records, 200);
    let freq = costs["hotspots.0.frequency"].bits / costs["hotspots.0.frequency"].records as f64;
    // 0.8 bits; compared by text, the entries were contradicted in the first records: 3.9 bits.
    assert!(freq < 1.5, "frequency: {freq:.2} bits per record");
    for lost in [vec![50u64], vec![17, 18, 19], vec![100, 161, 250, 251, 330]] {
        decode_with_losses(&p, &records, &lost, within_16);
    }
}

/// A sensor whose hex payload carries its readings' mantissas between constant type bytes,
/// next to a field of random bytes (ciphertext).
fn payload_record(i: u64, rng: &mut ChaCha8Rng) -> String {
    let t = 180 + (i % 40) as i64 + rng.random_range(-2..=2);
    let h = 60 + rng.random_range(0..20u64);
    let key: String = (0..12).map(|_| format!("{:02x}", rng.random::<u8>())).collect();
    format!(
        r#"{{"dev":"EMS-1","temperature":{}.{},"humidity":{h},"payload":"01{t:04x}02{h:02x}0a0b0c","mic":"{key}"}}"#,
        t / 10,
        t % 10
    )
}

/// The first payload of each resync period starts from the template of earlier periods (type
/// bytes and which reading each other byte carries), and a decoder that lost what made the
/// template usable (a loss in each of the first periods) decodes again from the next refresh
/// period (every 8th) at the latest; single losses cost at most 16 records, and nothing decodes
/// wrongly.
#[test]
fn telemetry_byte_templates_start_each_period_and_survive_losses() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(44);
    let records: Vec<String> = (0..400).map(|i| payload_record(i, &mut rng)).collect();
    let costs = field_costs(&p, &records, 144);
    let c = costs["payload"];
    // Without templates each period's first payload costs its 64 bits and more: 5.1 bits per
    // record; with them about 1.6 (a reference per period, and every 8th period without).
    let intra = c.intra_bits / c.records as f64;
    assert!(intra < 2.5, "payload in intra records: {intra:.2} bits per record");
    let patterns: Vec<Vec<u64>> = vec![
        vec![40],
        vec![47],
        vec![48],
        vec![100, 200, 201, 333],
        // One loss in each of the periods whose templates the encoder goes on to use: the
        // decoder lacks them until the refresh period at record 128.
        vec![5, 20, 40],
    ];
    for lost in patterns {
        // Within 16 records of the last loss, or before the next refresh period.
        let failed = decode_with_losses(&p, &records, &lost, within_16_or_refresh);
        if lost.len() == 1 {
            assert!(failed <= 16, "{failed} failed records for one lost");
        }
    }
}

/// A steady sensor: constant strings and flags, a slowly moving reading, a counter.
fn steady_record(i: u64, rng: &mut ChaCha8Rng) -> String {
    format!(
        r#"{{"dev":"EMS-1","status":"ok","mode":3,"leak":false,"fcnt":{},"temp":{}.{},"rssi":{}}}"#,
        900 + i,
        21 + (i / 40) % 3,
        rng.random_range(0..10),
        -100 - rng.random_range(0..4),
    )
}

/// A field whose statistics are steady starts each resync period from the profile of its last
/// four (complete) periods instead of from scratch, so intra records cost less; a decoder that
/// lost records in three of those periods still holds the profile, and one that lost records in
/// all four decodes again from the next refresh period (every 8th).
#[test]
fn telemetry_warm_starts_steady_fields_and_survives_losses() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(55);
    let records: Vec<String> = (0..400).map(|i| steady_record(i, &mut rng)).collect();
    let costs = field_costs(&p, &records, 144);
    let (mut intra, mut all) = (0.0, 0.0);
    for path in ["dev", "status", "mode", "fcnt", "rssi"] {
        intra += costs[path].intra_bits / costs[path].records as f64;
        all += costs[path].bits / costs[path].records as f64;
    }
    // Every period cold: 9.32 bits per record (3.44 of them in intra records); warm: 8.18 (3.13).
    assert!(
        all < 8.7,
        "steady fields: {all:.2} bits per record ({intra:.2} in intra records)"
    );
    // One loss, a burst across a period boundary, losses in two periods: every failure within 16
    // records of a loss.
    recovers_within_16(&p, &records, &[vec![60], vec![207, 208, 209], vec![100, 120]]);
    // Losses in periods 9, 10 and 11: the decoder still holds period 8's profile.
    recovers_within_16(&p, &records, &[vec![150, 170, 180]]);
    // Losses in periods 9 to 12: the next periods' warm starts come from profiles this decoder
    // lacks, until the refresh period at record 256; never a wrong record.
    let failed = decode_with_losses(&p, &records, &[150, 170, 180, 200], within_16_or_refresh);
    assert!(failed > 16 && failed < 256 - 150, "{failed} failed");
}

/// A LoRaWAN-like uplink: a frame (MHDR, device address, FCtrl, the frame counter little-endian,
/// FOpts in about a third of them, FPort, 20 bytes of ciphertext and a 4-byte MIC) before the
/// frame counter as a number.
fn frame_record(i: u64, rng: &mut ChaCha8Rng) -> String {
    let fcnt = 23_000 + i;
    let fopts = rng.random_range(0..3) == 0;
    let mut frame = format!(
        "8048000000{}{:04x}",
        if fopts { "82" } else { "80" },
        (fcnt as u16).swap_bytes()
    );
    if fopts {
        frame.push_str("0307");
    }
    frame.push_str("05");
    for _ in 0..24 {
        frame.push_str(&format!("{:02x}", rng.random::<u8>()));
    }
    format!(r#"{{"dev":"EMS-1","frame":"{frame}","fcnt":{fcnt},"port":5}}"#)
}

/// A byte string with two layouts keeps each one's statistics, takes its counter bytes from a
/// number that comes after it in the record, and learns from templates which bytes are
/// ciphertext: the frame costs little more than its 24 random bytes, and losses are survived.
#[test]
fn telemetry_frame_layouts_cost_about_their_ciphertext() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(45);
    let records: Vec<String> = (0..400).map(|i| frame_record(i, &mut rng)).collect();
    let costs = field_costs(&p, &records, 144);
    let c = costs["frame"];
    // 192 bits of ciphertext and about 7 more (which layout, refresh periods); one set of
    // statistics for both layouts, without the counter that follows the frame, took 214.
    let bits = c.bits / c.records as f64;
    assert!(bits < 204.0, "frame: {bits:.1} bits per record");
    recovers_within_16(&p, &records, &[vec![40], vec![47], vec![100, 200, 201, 333]]);
}

/// A gateway's report with values a network server derives from others: the effective signal
/// power from RSSI and SNR, the free-space loss from the distance and the frequency, and the
/// date of a numeric timestamp.
fn radio_record(i: u64, rng: &mut ChaCha8Rng) -> String {
    let ts = 1_720_000_000_000 + i * 600_000 + rng.random_range(0..2000);
    let rssi = -rng.random_range(95..140i32);
    let snr = f64::from(rng.random_range(-90..40i32)) / 4.0;
    let esp = f64::from(rssi) + snr - 10.0 * (1.0 + 10f64.powf(snr / 10.0)).log10();
    let freq = [868.1, 868.3, 868.5][rng.random_range(0..3)];
    let d = rng.random_range(500..20_000u32);
    let fsl = 20.0 * (f64::from(d) / 1000.0).log10() + 20.0 * f64::log10(freq) + 32.45;
    let secs = ts / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Days since 1970 to a civil date (2024), enough for this stream.
    let date = format!(
        "2024-07-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        days - 19_905 + 1,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ts % 1000
    );
    format!(
        r#"{{"ts":{ts},"date":"{date}","gw":{{"frequency":{freq},"rssi":{rssi},"snr":{snr},"esp":{esp:.2},"dist":{{"los":{d},"fsl":{fsl:.2}}}}}}}"#
    )
}

/// Numbers derived by a standard relation (ESP, free-space loss) and a date that copies a
/// timestamp cost a fraction of what a reading costs once seen, and losses are survived.
#[test]
fn telemetry_derived_numbers_cost_little() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(46);
    let records: Vec<String> = (0..400).map(|i| radio_record(i, &mut rng)).collect();
    let costs = field_costs(&p, &records, 100);
    let per_record = |path: &str| costs[path].bits / costs[path].records as f64;
    // RSSI and SNR cost 8.7 and 14.8 bits; without the relations the ESP took 17.7. What is left
    // (about 2.5) is each resync period's first record, which has no predictor yet.
    for (path, most) in [("gw.esp", 3.5), ("gw.dist.fsl", 3.5), ("date", 2.0)] {
        let b = per_record(path);
        assert!(b < most, "{path}: {b:.2} bits per record");
    }
    assert!(per_record("gw.snr") > 10.0, "the readings are random");
    recovers_within_16(&p, &records, &[vec![40], vec![47], vec![100, 200, 201, 333]]);
}

/// A numeric field's first value in a resync period is predicted the way its last four complete
/// periods ended: a derived number by its relation, a periodic timestamp by its report period's
/// step, so intra records cost little more than others; a decoder that lost records in three of
/// those periods still holds the predictor, and one that lost records in all four decodes again
/// from the next refresh period, never wrongly.
#[test]
fn telemetry_warm_predictors_serve_a_periods_first_values() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(47);
    let records: Vec<String> = (0..400).map(|i| radio_record(i, &mut rng)).collect();
    let costs = field_costs(&p, &records, 144);
    let intra = |path: &str| 16.0 * costs[path].intra_bits / costs[path].records as f64;
    let all = |path: &str| costs[path].bits / costs[path].records as f64;
    // Per intra record, cold predictors: ESP 24.1 bits, free-space loss 27.5; warm: 6.8 and 6.6
    // (the relation's exact flag and the warm bits). The timestamp: 19.4 bits per record cold,
    // 18.7 warm (its period's second value is predicted by the step).
    for path in ["gw.esp", "gw.dist.fsl"] {
        assert!(intra(path) < 12.0, "{path}: {:.2} bits per intra record", intra(path));
    }
    assert!(all("ts") < 19.0, "ts: {:.2} bits per record", all("ts"));
    recovers_within_16(&p, &records, &[vec![60], vec![150, 170, 180]]);
    let failed = decode_with_losses(&p, &records, &[150, 170, 180, 200], within_16_or_refresh);
    assert!(failed < 256 - 150, "{failed} failed");
}

#[test]
fn lossy_telemetry_stays_within_tolerance() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let tol = [("temperature", 0.3), ("humidity", 2.0), ("rssi", 0.0)];
    let opts = TelemetryOptions {
        resync: 16,
        tolerances: tol.iter().map(|(k, t)| ((*k).to_string(), *t)).collect(),
        dictionary: None,
    };
    let mut enc = TelemetryEncoder::new(&p, opts.clone());
    let mut dec = TelemetryDecoder::new(&p, opts.clone());
    let (mut lossy, mut lossless) = (0, 0);
    let mut plain = TelemetryEncoder::new(&p, TelemetryOptions::default());
    for i in 0..200 {
        let r = uplink(i, &mut rng);
        let (seq, payload) = enc.encode(r.as_bytes()).unwrap();
        lossy += payload.len();
        lossless += plain.encode(r.as_bytes()).unwrap().1.len();
        let out = dec.decode(seq, &payload).unwrap();
        assert_eq!(out, enc.last_reconstruction());
        let a: serde_json::Value = serde_json::from_str(&r).unwrap();
        let b: serde_json::Value = serde_json::from_slice(&out).unwrap();
        for (k, t) in tol {
            let path = if k == "rssi" {
                "/hotspots/0/rssi".to_string()
            } else {
                format!("/decoded/payload/{k}")
            };
            let (x, y) = (
                a.pointer(&path).unwrap().as_f64().unwrap(),
                b.pointer(&path).unwrap().as_f64().unwrap(),
            );
            assert!((x - y).abs() <= t + 1e-9, "{k}: {x} became {y}");
        }
        assert_eq!(a.pointer("/raw_packet"), b.pointer("/raw_packet"));
        assert_eq!(a.pointer("/reported_at"), b.pointer("/reported_at"));
    }
    assert!(lossy < lossless, "tolerances saved nothing: {lossy} vs {lossless}");
}

#[test]
fn hostile_telemetry_payloads_never_panic() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    // Uplinks, and gateway records long enough (80) that keyed values and field memories are
    // referred to.
    let uplinks: Vec<String> = (0..40).map(|i| uplink(i, &mut rng)).collect();
    let gateways: Vec<String> = (0..80).map(|i| gateway_record(i, &mut rng)).collect();
    for (trial, records) in (0..400).map(|t| (t, if t % 2 == 0 { &uplinks } else { &gateways })) {
        let mut enc = TelemetryEncoder::new(&p, TelemetryOptions::default());
        let payloads: Vec<(u64, Vec<u8>)> = records.iter().map(|r| enc.encode(r.as_bytes()).unwrap()).collect();
        let mut dec = TelemetryDecoder::new(&p, TelemetryOptions::default());
        for (k, (seq, pl)) in payloads.iter().enumerate() {
            let mut pl = pl.clone();
            if k == (trial / 2 * 7) % records.len() {
                match trial % 3 {
                    0 => pl.truncate(rng.random_range(0..=pl.len())),
                    1 if !pl.is_empty() => {
                        let i = rng.random_range(0..pl.len());
                        pl[i] ^= 1 << rng.random_range(0..8);
                    }
                    _ => pl = (0..rng.random_range(0..200)).map(|_| rng.random()).collect(),
                }
            }
            let _ = dec.decode(*seq, &pl);
        }
    }
    let _ = TokenCoder::new(&p, &[]);
}

/// Uplinks of a device heard by one of eight gateways, each with its own RSSI range, an SNR
/// that follows the RSSI, and a LoRaWAN-like frame (constant header, the frame counter, then
/// ciphertext).
fn dictionary_record(i: u64, rng: &mut ChaCha8Rng) -> String {
    let g = rng.random_range(0..8u64);
    let rssi = -90 - 5 * g as i64 - rng.random_range(0..6);
    let snr = (rssi + 120) as f64 / 4.0 + f64::from(rng.random_range(0..3u8)) * 0.25;
    let mut frame = vec![0x40, 0x48, 0x00, 0x00, 0x00, 0x80, i as u8, (i >> 8) as u8, 5];
    frame.extend((0..10).map(|_| rng.random::<u8>()));
    let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        r#"{{"fcnt":{i},"frame":"{hex}","gw":{{"id":"gw-{g}","channel":{},"rssi":{rssi},"snr":{snr}}}}}"#,
        rng.random_range(0..3),
    )
}

/// A dictionary built from a stream's earlier records: its value tables (the SNR given the
/// RSSI) and templates (used in refresh periods too) save bits; it round-trips through its
/// bytes; garbage gives an error; a decoder with another dictionary or none refuses the
/// stream with both ids; and under losses every record decodes right or fails as without one.
#[test]
fn telemetry_dictionary_saves_bits_and_is_checked() {
    let (p, _) = prior(6, 64);
    let mut rng = ChaCha8Rng::seed_from_u64(53);
    let records: Vec<String> = (0..1200).map(|i| dictionary_record(i, &mut rng)).collect();
    let (sample, stream) = records.split_at(600);
    let d = TelemetryDictionary::build(&p, sample.iter().map(|r| r.as_bytes()));
    // A build is reproducible: the same sample gives the same bytes, so the same id.
    let again = TelemetryDictionary::build(&p, sample.iter().map(|r| r.as_bytes()));
    assert_eq!(again.to_bytes(), d.to_bytes());
    let summary = d.summary();
    let has = |path: &str| summary.iter().find(|s| s.0 == path).cloned();
    assert_eq!(
        has("gw.snr").and_then(|s| s.2).as_deref(),
        Some("gw.rssi"),
        "{summary:?}"
    );
    assert!(has("gw.id").is_some_and(|s| s.1 == 8), "{summary:?}");
    // Through its bytes, the same dictionary and id; cut or flipped bytes give errors.
    let bytes = d.to_bytes();
    let back = TelemetryDictionary::from_bytes(&bytes).unwrap();
    assert_eq!((&back, back.id()), (&d, d.id()));
    for cut in 0..bytes.len() {
        assert!(TelemetryDictionary::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    for i in 0..2000 {
        let mut b = bytes.clone();
        let at = rng.random_range(0..b.len());
        b[at] ^= 1 << (i % 8);
        let _ = TelemetryDictionary::from_bytes(&b);
    }
    // Bits with and without, in ordinary and in refresh periods (every 8th of 16 records).
    let code = |dict: Option<&TelemetryDictionary>| {
        let mut enc = TelemetryEncoder::with_dictionary(&p, TelemetryOptions::default(), dict);
        let mut dec = TelemetryDecoder::with_dictionary(&p, enc.options().clone(), dict).unwrap();
        let (mut all, mut refresh) = (0, 0);
        for r in stream {
            let (seq, payload) = enc.encode(r.as_bytes()).unwrap();
            assert_eq!(dec.decode(seq, &payload).unwrap(), r.as_bytes());
            all += payload.len();
            if (seq / 16) % 8 == 0 {
                refresh += payload.len();
            }
        }
        (all, refresh)
    };
    // 7 612 / 1 047 bytes with, 9 232 / 1 354 without (seed 53).
    let (plain, with) = (code(None), code(Some(&d)));
    assert!(
        (with.0 as f64) < 0.9 * plain.0 as f64 && (with.1 as f64) < 0.9 * plain.1 as f64,
        "bytes (all, in refresh periods): {with:?} with the dictionary, {plain:?} without"
    );
    // The stream names the dictionary: another one, or none, is refused with both ids.
    let other = TelemetryDictionary::build(&p, stream.iter().map(|r| r.as_bytes()));
    let mut enc = TelemetryEncoder::with_dictionary(&p, TelemetryOptions::default(), Some(&d));
    let opts = enc.options().clone();
    assert_eq!(opts.dictionary, Some(d.id()));
    let e = TelemetryDecoder::with_dictionary(&p, opts.clone(), Some(&other))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&d.id().to_string()) && e.contains(&other.id().to_string()),
        "{e}"
    );
    assert!(TelemetryDecoder::with_dictionary(&p, opts.clone(), None).is_err());
    let (seq, payload) = enc.encode(stream[0].as_bytes()).unwrap();
    let e = TelemetryDecoder::new(&p, opts.clone())
        .decode(seq, &payload)
        .unwrap_err();
    assert!(e.to_string().contains("dictionary"), "{e}");
    // Losses: right, or a failure within 16 records of the last loss (or, after losses in all
    // four periods a warm start draws on, before the next refresh period).
    for lost in [vec![20u64], vec![127, 128, 300], vec![100, 116, 132, 148]] {
        decode_with_losses_and(&p, Some(&d), stream, &lost, within_16_or_refresh);
    }
}
