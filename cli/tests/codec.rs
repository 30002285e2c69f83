//! `semcom encode` / `semcom decode` of text and telemetry files end to end: byte-exact round
//! trips (files and stdin/stdout), and a clear error for every way a frame file can be damaged
//! (a frame dropped, repeated, moved or corrupted, the file cut short, other weights).

use semcom_codec::frame::{get_varint, put_varint};
use std::io::Write;
use std::process::{Command, Stdio};

mod common;

use common::{assert_fails, ok, s, semcom, tmp};

const PRIOR: &str = "models/text-prior.safetensors";

/// The frames of an encoded file, as raw bytes (without their length prefixes).
fn split(file: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < file.len() {
        let (len, n) = get_varint(&file[i..]).unwrap();
        out.push(file[i + n..i + n + len as usize].to_vec());
        i += n + len as usize;
    }
    out
}

fn join(frames: &[&Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        put_varint(&mut out, f.len() as u64);
        out.extend_from_slice(f);
    }
    out
}

/// Encodes `input` with `args` and decodes it again; returns the encoded file.
fn round_trip(name: &str, input: &[u8], args: &[&str]) -> Vec<u8> {
    let (src, enc, back) = (tmp(name), tmp(&format!("{name}.scm")), tmp(&format!("{name}.out")));
    std::fs::write(&src, input).unwrap();
    let mut a = vec!["encode"];
    a.extend_from_slice(args);
    a.extend_from_slice(&[s(&src), "-o", s(&enc)]);
    ok(&semcom(&a));
    ok(&semcom(&["decode", s(&enc), "-o", s(&back)]));
    assert_eq!(std::fs::read(&back).unwrap(), input, "{name} {args:?}");
    std::fs::read(&enc).unwrap()
}

/// Decodes the frames `file` spliced as `order` (indices into its frames), expecting `needle`.
fn decode_fails(name: &str, frames: &[Vec<u8>], order: &[usize], needle: &str) {
    let p = tmp(name);
    std::fs::write(&p, join(&order.iter().map(|&i| &frames[i]).collect::<Vec<_>>())).unwrap();
    assert_fails(&semcom(&["decode", s(&p), "-o", s(&tmp("never.out"))]), needle);
}

#[test]
fn text_files_round_trip_and_damage_is_refused() {
    let log = b"081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block \
blk_38865049064139660 terminating\n081109 203807 222 INFO dfs.DataNode$PacketResponder: Received block \
blk_-6952295868487656571 of size 67108864 from /10.251.42.84\nThe session is resumed.\n\nLast line";
    for args in [&["--modality", "text"][..], &["--modality", "text", "--stream"]] {
        let file = round_trip("log.txt", log, args);
        let frames = split(&file);
        assert_eq!(frames.len(), 5);
        decode_fails(
            "drop.scm",
            &frames,
            &[0, 1, 3, 4],
            "frames are missing, repeated or out of order",
        );
        decode_fails(
            "repeat.scm",
            &frames,
            &[0, 1, 1, 3, 4],
            "frame 2 was written as frame 1",
        );
        decode_fails("swap.scm", &frames, &[0, 2, 1, 3, 4], "frame 1 was written as frame 2");
        decode_fails("cut.scm", &frames, &[0, 1, 2, 3], "not marked last");
        decode_fails("headless.scm", &frames, &[1, 2, 3, 4], "does not name its model");
        let mut bad = frames.clone();
        let mid = bad[2].len() / 2;
        bad[2][mid] ^= 0x10;
        decode_fails("corrupt.scm", &bad, &[0, 1, 2, 3, 4], "frame 2");
    }
    // Through stdin and stdout.
    let mut child = Command::new(env!("CARGO_BIN_EXE_semcom"))
        .args(["encode", "--modality", "text", "-", "-o", "-"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(log).unwrap();
    let enc = child.wait_with_output().unwrap();
    ok(&enc);
    let p = tmp("stdin.scm");
    std::fs::write(&p, &enc.stdout).unwrap();
    let dec = semcom(&["decode", s(&p), "-o", "-"]);
    ok(&dec);
    assert_eq!(dec.stdout, log);
    // Other weights: the sensor model is no text prior.
    assert_fails(
        &semcom(&["decode", s(&p), "-o", "-", "--model", "models/sensor-har.safetensors"]),
        "sensor-har",
    );
}

#[test]
fn telemetry_files_round_trip_and_damage_is_refused() {
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/datasets/telemetry/tourperret_elsys_ems_A81758FFFE04B1C1.csv"
    ))
    .unwrap();
    let head: String = csv.lines().take(41).map(|l| format!("{l}\n")).collect();
    let file = round_trip("t.csv", head.as_bytes(), &["--modality", "telemetry", "--model", PRIOR]);
    let frames = split(&file);
    assert_eq!(frames.len(), 41);
    let all: Vec<usize> = (0..41).collect();
    let mut dropped = all.clone();
    dropped.remove(20);
    decode_fails("tdrop.scm", &frames, &dropped, "frame 20 carries record 21");
    let mut swapped = all.clone();
    swapped.swap(10, 11);
    decode_fails(
        "tswap.scm",
        &frames,
        &swapped,
        "records are missing, repeated or out of order",
    );
    decode_fails("tcut.scm", &frames, &all[..40], "not marked last");
    // JSON objects, lossy within the tolerance.
    let json: String = (0..30)
        .map(|i| {
            format!(
                "{{\"t\":{},\"temperature\":{:.2},\"ok\":true}}\n",
                1000 + 60 * i,
                20.0 + 0.37 * i as f64
            )
        })
        .collect();
    round_trip("t.json", json.as_bytes(), &["--modality", "telemetry"]);
    let (src, enc, back) = (tmp("tol.json"), tmp("tol.scm"), tmp("tol.out"));
    std::fs::write(&src, &json).unwrap();
    ok(&semcom(&[
        "encode",
        "--modality",
        "telemetry",
        "--tolerance",
        "temperature=0.5",
        s(&src),
        "-o",
        s(&enc),
    ]));
    ok(&semcom(&["decode", s(&enc), "-o", s(&back)]));
    let back = std::fs::read_to_string(&back).unwrap();
    for (a, b) in json.lines().zip(back.lines()) {
        let (a, b): (serde_json::Value, serde_json::Value) =
            (serde_json::from_str(a).unwrap(), serde_json::from_str(b).unwrap());
        assert_eq!(a["t"], b["t"]);
        let d = a["temperature"].as_f64().unwrap() - b["temperature"].as_f64().unwrap();
        assert!(d.abs() <= 0.5, "{a} → {b}");
    }
    assert_eq!(back.lines().count(), 30);
}
