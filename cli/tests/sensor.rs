//! `semcom encode/decode --modality sensor`, `semcom eval sensor` and `semcom sim sensor` end to
//! end, and their errors for bad input (non-zero exit, a message naming the problem, no panic).

mod common;

use common::{assert_fails, s, semcom, tmp};
use std::path::Path;

const MODEL: &str = "models/sensor-har.safetensors";

#[test]
fn encode_decode_round_trips_and_bad_windows_are_named() {
    // Two 9 × 128 windows with 4-significant-digit values.
    let line = |k: usize| -> String {
        (0..9)
            .map(|c| {
                (0..128)
                    .map(|i| {
                        format!(
                            "{:.3e}",
                            ((i + 7 * c + k) as f32 * 0.11).sin() * 0.5 + if c >= 6 { 1.0 } else { 0.0 }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join(":")
    };
    let input = tmp("w.txt");
    std::fs::write(&input, format!("{}\n{}\n", line(0), line(3))).unwrap();
    let (frames, back) = (tmp("w.frames"), tmp("w.back"));
    let out = semcom(&["encode", "--modality", "sensor", s(&input), "-o", s(&frames)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = semcom(&["decode", s(&frames), "-o", s(&back)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parse = |t: &str| -> Vec<f32> {
        t.split([',', ':', '\n'])
            .filter(|x| !x.is_empty())
            .map(|x| x.parse().unwrap())
            .collect()
    };
    assert_eq!(
        parse(&std::fs::read_to_string(&back).unwrap()),
        parse(&std::fs::read_to_string(&input).unwrap())
    );
    for mode in ["event", "reconstruct", "on-change"] {
        let out = semcom(&[
            "encode",
            "--modality",
            "sensor",
            "--sensor-mode",
            mode,
            "--model",
            MODEL,
            s(&input),
            "-o",
            s(&frames),
        ]);
        assert!(out.status.success(), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
        let out = semcom(&["decode", "--model", MODEL, s(&frames), "-o", s(&back)]);
        assert!(out.status.success(), "{mode}: {}", String::from_utf8_lossy(&out.stderr));
        let text = std::fs::read_to_string(&back).unwrap();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("event ")).count(),
            if mode == "reconstruct" { 0 } else { 2 },
            "{text}"
        );
    }
    // Bad input: NaN, infinity, an empty window, a wrong channel count for the model, no model.
    for (content, mode, needle) in [
        ("1,2,NaN\n", "lossless", "sample 2 of channel 0 is NaN"),
        ("1,inf,2\n", "lossless", "is inf"),
        (":\n", "lossless", "empty sensor window"),
        ("1,2,3:4,5\n", "lossless", "channel 1 has 2 samples"),
        (
            "1,2,3:4,5,6\n",
            "event",
            "2 channel(s) × 3 samples but the sensor model expects 9 × 128",
        ),
    ] {
        std::fs::write(&input, content).unwrap();
        let out = semcom(&[
            "encode",
            "--modality",
            "sensor",
            "--sensor-mode",
            mode,
            "--model",
            MODEL,
            s(&input),
            "-o",
            s(&frames),
        ]);
        assert_fails(&out, needle);
    }
    std::fs::write(&input, format!("{}\n", line(0))).unwrap();
    let out = semcom(&[
        "encode",
        "--modality",
        "sensor",
        "--sensor-mode",
        "event",
        "--model",
        "models/text-prior.safetensors",
        s(&input),
        "-o",
        s(&frames),
    ]);
    assert_fails(&out, "not a semcom sensor model");
    for p in [&input, &frames, &back] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn eval_and_sim_report_json_on_the_dataset() {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/uci-har");
    if !Path::new(data).exists() {
        eprintln!("skipped: {data} is absent");
        return;
    }
    let out = semcom(&[
        "eval", "sensor", "--data", data, "--mode", "event", "--model", MODEL, "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["event"]["accuracy"].as_f64().unwrap() >= 0.9, "{v}");
    let out = semcom(&[
        "sim", "sensor", "--data", data, "--model", MODEL, "--snr", "3", "-n", "10", "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["points"][0]["event"]["lost"].as_f64(), Some(0.0), "{v}");
    // At −3 dB the plain receiver loses most 8-octet event frames; four copies to the
    // known-format receiver (the default) lose at most one in 20 (none in 300 when measured).
    let sim_at = |extra: &[&str]| {
        let mut args = vec![
            "sim", "sensor", "--data", data, "--model", MODEL, "--snr", "-3", "-n", "20", "--json",
        ];
        args.extend_from_slice(extra);
        let out = semcom(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let v = sim_at(&[]);
    assert!(v["points"][0]["event"]["lost"].as_f64().unwrap() <= 0.05, "{v}");
    assert_eq!(v["event_repeats"].as_u64(), Some(4), "{v}");
    let v = sim_at(&["--event-repeats", "1", "--event-rx", "legacy"]);
    assert!(v["points"][0]["event"]["lost"].as_f64().unwrap() >= 0.5, "{v}");
    let out = semcom(&[
        "sim",
        "sensor",
        "--data",
        data,
        "--model",
        MODEL,
        "--event-repeats",
        "9",
    ]);
    assert_fails(&out, "--event-repeats");
    let out = semcom(&["eval", "sensor", "--data", "/nonexistent", "--json"]);
    assert_fails(&out, "/nonexistent");
}
