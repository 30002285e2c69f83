//! The `semcom` binary end to end: file round trips, JSON output, and clear errors (non-zero
//! exit, a message naming the problem, no panic) for bad files and arguments.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn semcom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_semcom"))
        .args(args)
        .output()
        .expect("run semcom")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("semcom-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

/// Asserts a failure with a message containing `needle`, and no panic.
fn assert_fails(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, got success; stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(
        err.to_lowercase().contains(&needle.to_lowercase()),
        "stderr lacks `{needle}`: {err}"
    );
}

/// The prior, from the package directory these tests run in.
const PRIOR: &str = "../models/text-prior.safetensors";

fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn tx_then_rx_in_every_format() {
    for (name, extra) in [
        ("a.cf32", vec![]),
        ("b.sigmf-data", vec![]),
        ("c.cs16", vec!["--scale", "4"]),
        ("d.cs8", vec!["--scale", "6"]),
    ] {
        let f = tmp(name);
        let mut args = vec![
            "tx",
            "--rate",
            "24",
            "--random",
            "300",
            "-n",
            "4",
            "-o",
            s(&f),
            "--json",
        ];
        args.extend(extra.iter().copied());
        let out = semcom(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let input = if name.ends_with("sigmf-data") {
            tmp("b.sigmf-meta")
        } else {
            f.clone()
        };
        let out = semcom(&["rx", "-i", s(&input), "--json"]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let lines = json_lines(&out);
        let frames: Vec<_> = lines.iter().filter(|l| l.get("psdu_hex").is_some()).collect();
        assert_eq!(frames.len(), 4, "{name}");
        for f in &frames {
            assert_eq!(f["rate_mbps"], 24);
            assert_eq!(f["length"], 300);
            assert_eq!(f["fcs_ok"], true);
            assert_eq!(f["psdu_hex"].as_str().unwrap().len(), 600);
            for k in ["offset", "snr_db", "evm_db", "cfo_hz"] {
                assert!(f.get(k).is_some(), "{k}");
            }
        }
        let summary = &lines.last().unwrap()["summary"];
        assert_eq!(summary["fcs_ok"], 4, "{name}");
    }
}

#[test]
fn psdu_file_and_stdin() {
    let psdu = tmp("psdu.bin");
    std::fs::write(&psdu, b"hello, semcom").unwrap();
    let iq = tmp("p.cf32");
    let out = semcom(&[
        "tx",
        "--rate",
        "6",
        "--psdu",
        s(&psdu),
        "--append-fcs",
        "--scrambler-seed",
        "0b1011101",
        "-o",
        s(&iq),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Decode from stdin.
    let mut child = Command::new(env!("CARGO_BIN_EXE_semcom"))
        .args(["rx", "-i", "-", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &std::fs::read(&iq).unwrap()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let lines = json_lines(&out);
    let hex = lines[0]["psdu_hex"].as_str().unwrap().to_string();
    assert!(hex.starts_with(&b"hello, semcom".iter().map(|b| format!("{b:02x}")).collect::<String>()));
    assert_eq!(lines[0]["scrambler_seed"], 93);
    assert_eq!(lines[0]["fcs_ok"], true);
}

#[test]
fn sim_phy_json_and_plot() {
    let png = tmp("sim.png");
    let out = semcom(&[
        "sim",
        "phy",
        "--rate",
        "6",
        "--length",
        "100",
        "--snr",
        "2:4:10",
        "-n",
        "20",
        "--json",
        "--plot",
        s(&png),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = &json_lines(&out)[0];
    let pts = v["points"].as_array().unwrap();
    assert_eq!(pts.len(), 3);
    assert_eq!(pts[2]["per"], 0.0, "6 Mbit/s at 10 dB loses nothing");
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let svg = tmp("sim.svg");
    let out = semcom(&[
        "sim",
        "phy",
        "--snr",
        "5",
        "-n",
        "5",
        "--channel",
        "rayleigh",
        "--plot",
        s(&svg),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
}

#[test]
fn bad_files_are_named() {
    let empty = tmp("empty.cf32");
    std::fs::write(&empty, b"").unwrap();
    assert_fails(&semcom(&["rx", "-i", s(&empty)]), "empty");
    let trunc = tmp("trunc.cf32");
    std::fs::write(&trunc, [0u8; 8 * 100 + 3]).unwrap();
    assert_fails(&semcom(&["rx", "-i", s(&trunc)]), "not a whole number");
    let nan = tmp("nan.cf32");
    let mut b = vec![0u8; 8 * 1000];
    b[8 * 700..8 * 700 + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(&nan, b).unwrap();
    assert_fails(&semcom(&["rx", "-i", s(&nan)]), "sample 700");
    assert_fails(&semcom(&["rx", "-i", s(&tmp("missing.cf32"))]), "missing.cf32");
    let meta = tmp("broken.sigmf-meta");
    std::fs::write(&meta, "{\"global\": {}}").unwrap();
    assert_fails(&semcom(&["rx", "-i", s(&meta)]), "core:datatype");
    let unknown = tmp("x.wav");
    std::fs::write(&unknown, [0u8; 16]).unwrap();
    assert_fails(&semcom(&["rx", "-i", s(&unknown)]), "unsupported sample format");
    let empty_psdu = tmp("empty.bin");
    std::fs::write(&empty_psdu, b"").unwrap();
    assert_fails(
        &semcom(&["tx", "--psdu", s(&empty_psdu), "-o", s(&tmp("o.cf32"))]),
        "1 … 4095",
    );
    let big = tmp("big.bin");
    std::fs::write(&big, vec![7u8; 4093]).unwrap();
    assert_fails(
        &semcom(&["tx", "--psdu", s(&big), "--append-fcs", "-o", s(&tmp("o.cf32"))]),
        "4097 octets",
    );
    assert_fails(
        &semcom(&["tx", "--random", "10", "-o", "/nonexistent-dir/x.cf32"]),
        "nonexistent-dir",
    );
    // An item too large for the link is refused before the others go out.
    let items = tmp("items");
    std::fs::create_dir_all(&items).unwrap();
    std::fs::write(items.join("a.txt"), b"small").unwrap();
    std::fs::write(items.join("z.bin"), vec![7u8; 70_000]).unwrap();
    let out = semcom(&["send", s(&items), "--link", "radio", "--passphrase", "correct horse"]);
    assert_fails(&out, "nothing sent");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("a.txt"),
        "a.txt went out first"
    );
}

#[test]
fn bad_arguments_are_named() {
    let o = tmp("o.cf32");
    assert_fails(
        &semcom(&["tx", "--rate", "11", "--random", "10", "-o", s(&o)]),
        "unsupported rate 11",
    );
    assert_fails(&semcom(&["tx", "--random", "0", "-o", s(&o)]), "--random 0");
    assert_fails(&semcom(&["tx", "--random", "5000", "-o", s(&o)]), "4095");
    assert_fails(
        &semcom(&["tx", "--random", "10", "--scrambler-seed", "0", "-o", s(&o)]),
        "out of range",
    );
    assert_fails(
        &semcom(&["tx", "--random", "10", "--frames", "0", "-o", s(&o)]),
        "--frames",
    );
    assert_fails(
        &semcom(&["tx", "--random", "10", "--scale", "nan", "-o", s(&o)]),
        "--scale",
    );
    assert_fails(
        &semcom(&["tx", "--random", "10", "--format", "cf64", "-o", s(&o)]),
        "unknown sample format",
    );
    assert_fails(&semcom(&["rx"]), "--input");
    assert_fails(&semcom(&["sim", "phy", "--snr", "10:1:5"]), "below the start");
    assert_fails(&semcom(&["sim", "phy", "--snr", "0:0:5"]), "STEP must be positive");
    assert_fails(&semcom(&["sim", "phy", "--length", "2"]), "--length 2");
    assert_fails(&semcom(&["sim", "phy", "--rate", "7"]), "unsupported rate 7");
    assert_fails(&semcom(&["sim", "phy", "--channel", "moon"]), "moon");
    assert_fails(&semcom(&["sim", "phy", "--delay-spread", "-1"]), "--delay-spread");
    assert_fails(&semcom(&["sim", "phy", "-n", "0"]), "--frames");
    assert_fails(
        &semcom(&["sim", "phy", "--k-factor", "-2", "--channel", "rician"]),
        "k_factor",
    );
    // Values that parse but mean nothing: refused before any work starts.
    let x = tmp("x.txt");
    std::fs::write(&x, "x\n").unwrap();
    for (args, needle) in [
        (
            &["encode", "--modality", "text", "--threads", "0", s(&x), "-o", s(&o)][..],
            "at least 1",
        ),
        (&["sim", "link", "--threads", "0"], "at least 1"),
        (&["sim", "link", "--max-fragment", "0"], "at least 1"),
        (&["sim", "link", "--max-fragment", "5000"], "one PSDU"),
        (
            &["sim", "link", "--delay-spread", "nan", "-o", s(&tmp("sl"))],
            "--delay-spread",
        ),
        (&["rx", "--sample-rate", "0", "-i", s(&x)], "above 0"),
        (&["rx", "-n", "0", "-i", s(&x)], "--count"),
        (&["emulate", "--snr", "nan"], "finite"),
        (&["emulate", "--rate=-5"], "negative"),
        (&["quic", "send", "--parallel", "0", s(&x)], "at least 1"),
        (&["bench", "codec", "--runs", "0"], "at least 1"),
        (
            &["bench", "codec", "--model", PRIOR, "--telemetry", "/nonexistent/t.csv"],
            "/nonexistent/t.csv",
        ),
        (&["eval", "telemetry", "--model", PRIOR, "--data", s(&x)], "too few"),
        (
            &["eval", "text", "--model", PRIOR, "--data", s(&x)],
            "no held-out messages",
        ),
        (
            &["train", "text", "--data", s(&x), "--lr", "nan", "-o", s(&o)],
            "--lr NaN",
        ),
        (
            &["train", "text", "--data", s(&x), "--max-len", "0", "-o", s(&o)],
            "--max-len 0",
        ),
        (&["train", "text", "--data", s(&x), "-o", s(&o)], "no held-out lines"),
        (
            &["train", "sensor", "--data", s(&x), "--epochs", "0", "-o", s(&o)],
            "at least 1",
        ),
        // A limit past what a Duration holds is refused at parse time (it panicked once the
        // photos had loaded).
        (
            &["train", "image", "--data", s(&x), "--time-limit", "1e300", "-o", s(&o)],
            "--time-limit",
        ),
        (
            &["train", "image", "--data", s(&x), "--depth", "1,1", "-o", s(&o)],
            "give three",
        ),
        (
            &[
                "train",
                "image",
                "--data",
                s(&x),
                "--init",
                s(&x),
                "--depth",
                "1,1,1",
                "-o",
                s(&o),
            ],
            "cannot be used with",
        ),
    ] {
        assert_fails(&semcom(args), needle);
    }
    // Negative values are values, not flags.
    let out = semcom(&["sim", "phy", "--snr", "-4:2:-2", "-n", "3", "--cfo", "-20k", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json_lines(&out)[0]["points"][0]["snr_db"], -4.0);
}

/// `eval telemetry --loss`: a decoder that loses records at random reports what it failed, and
/// never a wrong record (the command fails on one); a loss outside 0..=100 is refused.
#[test]
fn eval_telemetry_with_losses() {
    let path = tmp("uplinks.ndjson");
    let lines: Vec<String> = (0..300)
        .map(|i| {
            format!(
                r#"{{"dev":"EMS-1","fcnt":{i},"temperature":{:.1},"gw":"gw-{}","rssi":{}}}"#,
                20.0 + (i % 7) as f64 * 0.1,
                i % 3,
                -100 - (i * 7919) % 13
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let out = semcom(&[
        "eval",
        "telemetry",
        "--data",
        s(&path),
        "--model",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../models/text-prior.safetensors"),
        "--loss",
        "10",
        "--json",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = &json_lines(&out)[0]["traces"][0];
    let loss = &v["loss"];
    let lost = loss["lost"].as_u64().unwrap();
    // About 10 % of 300 records, and at most 16 failed records per loss.
    assert!((15..=45).contains(&lost), "{loss}");
    assert!(loss["failed"].as_u64().unwrap() <= 16 * lost, "{loss}");
    let bad = semcom(&["eval", "telemetry", "--data", s(&path), "--loss", "150"]);
    assert_fails(&bad, "150");
}
