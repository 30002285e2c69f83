//! `semcom sim link` and `semcom demo` end to end: the binary, the built-in samples, the model.

use std::path::PathBuf;
use std::process::Command;

fn semcom() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_semcom"));
    // The model path is relative to the repository root.
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

fn out_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("semcom-link-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Runs `semcom sim link ARGS --json -o OUT`, checks it succeeded, and returns the JSON it
/// printed last and all of its standard output.
fn sim_link_json(args: &[&str], out: &std::path::Path) -> (serde_json::Value, String) {
    let st = semcom()
        .args(["sim", "link"])
        .args(args)
        .args(["--json", "-o"])
        .arg(out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let stdout = String::from_utf8_lossy(&st.stdout).into_owned();
    let json = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    (json, stdout)
}

#[test]
fn sim_link_delivers_everything_at_high_snr_and_nothing_far_below_the_preamble_limit() {
    let out = out_dir("sim");
    let (json, _) = sim_link_json(
        &[
            "--modalities",
            "text,telemetry",
            "--snr",
            "-5:30:25",
            "--limit",
            "8",
            "--channels",
            "awgn",
        ],
        &out,
    );
    let rows = json["rows"].as_array().unwrap();
    // 2 modalities × 1 channel × 2 SNRs × 2 paths.
    assert_eq!(rows.len(), 8);
    for r in rows {
        let snr = r["snr_db"].as_f64().unwrap();
        let share = r["meaning_share"].as_f64().unwrap();
        assert_eq!(r["items"], 8);
        if snr > 20.0 {
            assert_eq!(share, 1.0, "{r}");
            assert_eq!(r["link_delivered"], 8, "{r}");
        } else {
            assert_eq!(share, 0.0, "{r}");
        }
        assert_eq!(r["refused_frames"], 0);
        // Equal airtime: the classical path never gets more than the semantic one, except
        // where even 54 Mbit/s does not fit (not with these items).
    }
    for pair in rows.chunks(2) {
        let (s, c) = (&pair[0], &pair[1]);
        assert_eq!(s["path"], "semantic");
        assert_eq!(c["path"], "classical");
        assert!(c["airtime_us"].as_f64().unwrap() <= s["airtime_us"].as_f64().unwrap() + 1e-6);
        assert!(s["payload_bytes"].as_f64().unwrap() < c["payload_bytes"].as_f64().unwrap());
    }
    for f in ["link.csv", "link.json", "summary.md", "link-awgn.png"] {
        assert!(out.join(f).metadata().unwrap().len() > 100, "{f}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn sim_link_over_quic_delivers_at_high_snr_and_not_below_the_preamble_limit() {
    let out = out_dir("quic");
    let (json, _) = sim_link_json(
        &[
            "--modalities",
            "text,telemetry",
            "--snr",
            "25",
            "--quic-snr",
            "-5:30:25",
            "--limit",
            "4",
            "--channels",
            "awgn",
        ],
        &out,
    );
    let quic: Vec<&serde_json::Value> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["path"] == "classical-quic")
        .collect();
    assert_eq!(quic.len(), 4);
    for r in quic {
        let want = if r["snr_db"].as_f64().unwrap() > 0.0 { 1.0 } else { 0.0 };
        assert_eq!(r["meaning_share"].as_f64().unwrap(), want, "{r}");
    }
    assert!(std::fs::read_to_string(out.join("summary.md"))
        .unwrap()
        .contains("over QUIC"));
    let _ = std::fs::remove_dir_all(&out);
}

/// Acceptance 1: the demo produces the table and the plots from the built-in samples.
#[test]
fn demo_produces_the_table_and_plots() {
    let out = out_dir("demo");
    let st = semcom().args(["demo", "-o"]).arg(&out).output().unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let table = String::from_utf8_lossy(&st.stdout);
    for m in [
        "| text | awgn |",
        "| text | rayleigh |",
        "| telemetry | awgn |",
        "| telemetry | rayleigh |",
        "| sensor | awgn |",
        "| sensor | rayleigh |",
        "| image | awgn |",
        "| image | rayleigh |",
        "| image (analog) | awgn |",
    ] {
        assert!(table.contains(m), "{m} missing from\n{table}");
    }
    for f in [
        "link.csv",
        "link.json",
        "summary.md",
        "link-awgn.png",
        "link-rayleigh.png",
    ] {
        assert!(out.join(f).metadata().unwrap().len() > 100, "{f}");
    }
    let _ = std::fs::remove_dir_all(&out);
}

/// Image items (the built-in Kodak crops): intact, the digital code reaches the threshold it was
/// coded for and the receiver shows it; far below the preamble limit nothing arrives and every
/// path shows grey; the JPEG at equal airtime is larger than the semantic frame.
#[test]
fn sim_link_images_meet_the_psnr_threshold_at_high_snr() {
    let out = out_dir("image");
    let (json, stdout) = sim_link_json(
        &[
            "--modalities",
            "image",
            "--snr",
            "-8:33:25",
            "--limit",
            "4",
            "--channels",
            "awgn",
        ],
        &out,
    );
    let rows = json["rows"].as_array().unwrap();
    // 1 channel × 2 SNRs × 3 paths (semantic, classical, analog).
    assert_eq!(rows.len(), 6, "{stdout}");
    let get = |snr: f64, path: &str| {
        rows.iter()
            .find(|r| r["snr_db"].as_f64() == Some(snr) && r["path"] == path)
            .unwrap_or_else(|| panic!("no {path} row at {snr} dB"))
    };
    let psnr = |r: &serde_json::Value| r["psnr_db"].as_f64().unwrap();
    for path in ["semantic", "classical", "analog"] {
        let low = get(-8.0, path);
        assert_eq!(low["meaning"], 0, "{low}");
        assert!(psnr(low) < 16.0, "{low}");
        assert!(psnr(get(25.0, path)) > psnr(low) + 8.0, "{path}");
    }
    let hi = get(25.0, "semantic");
    assert_eq!(hi["meaning"], 4, "{hi}");
    assert!(psnr(hi) >= 26.0 && psnr(hi) < 30.0, "{hi}");
    // The JPEG gets the semantic airtime at a faster rate, hence more bytes.
    let c = get(25.0, "classical");
    assert!(c["payload_bytes"].as_f64().unwrap() > hi["payload_bytes"].as_f64().unwrap());
    assert!(c["airtime_us"].as_f64().unwrap() <= hi["airtime_us"].as_f64().unwrap() + 1e-6);
    // The analog model at 25 dB: above 25 dB on these crops on average.
    assert!(psnr(get(25.0, "analog")) > 25.0);
    let _ = std::fs::remove_dir_all(&out);
}

/// Sensor items (the built-in UCI-HAR sample): the event byte carries the class as well as the
/// classifier gets it from the original window, and the raw window cannot match its airtime.
#[test]
fn sim_link_sensor_delivers_the_clean_accuracy_at_high_snr() {
    let out = out_dir("sensor");
    let (json, _) = sim_link_json(
        &[
            "--modalities",
            "sensor",
            "--snr",
            "-5:30:25",
            "--limit",
            "12",
            "--channels",
            "awgn",
        ],
        &out,
    );
    let clean = json["summary"][0]["clean_accuracy"].as_f64().unwrap();
    assert!(clean >= 0.75, "{clean}");
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        assert_eq!(r["modality"], "sensor");
        assert_eq!(r["items"], 12);
        let meaning = r["meaning"].as_f64().unwrap();
        // Neither path can beat the classifier on the original windows.
        assert!(meaning <= (clean * 12.0).round(), "{r}");
        if r["snr_db"].as_f64().unwrap() < 0.0 {
            assert_eq!(meaning, 0.0, "{r}");
        } else if r["path"] == "semantic" {
            assert_eq!(meaning, (clean * 12.0).round(), "{r}");
            assert_eq!(r["payload_bytes"].as_f64().unwrap(), 4.0, "{r}");
        }
    }
    // 1 event byte in a 3-byte frame against ≈ 4 KB of zstd'd f32: the classical item needs more
    // airtime even at 54 Mbit/s, and the summary says so.
    let (s, c) = (&rows[2], &rows[3]);
    assert_eq!(
        (s["path"].as_str(), c["path"].as_str()),
        (Some("semantic"), Some("classical"))
    );
    assert_eq!(c["phy"], "802.11a 54 Mbit/s");
    assert!(c["airtime_us"].as_f64().unwrap() > 5.0 * s["airtime_us"].as_f64().unwrap());
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("do not fit it even at 54 Mbit/s"), "{summary}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bad_arguments_are_refused() {
    for args in [
        vec!["sim", "link", "--semantic-mcs", "qpsk-9/10"],
        vec!["sim", "link", "--text", "/nonexistent/file"],
        vec!["sim", "link", "--model", "/nonexistent/model"],
        vec!["sim", "link", "--snr", "5:1:1"],
        vec!["sim", "link", "--classical-rate", "7"],
        vec!["sim", "link", "--modalities", "sensor", "--sensor", "/nonexistent/dir"],
        vec!["sim", "link", "--modalities", "image", "--image", "/nonexistent/dir"],
        vec!["sim", "link", "--modalities", "image", "--image-bpp", "0"],
        vec![
            "sim",
            "link",
            "--modalities",
            "image",
            "--analog-model",
            "/nonexistent/model",
        ],
        vec![
            "sim",
            "link",
            "--modalities",
            "sensor",
            "--sensor-model",
            "/nonexistent/model",
        ],
    ] {
        let st = semcom().args(&args).arg("-o").arg(out_dir("bad")).output().unwrap();
        assert!(!st.status.success(), "{args:?}");
        assert!(!String::from_utf8_lossy(&st.stderr).contains("panicked"), "{args:?}");
    }
}
