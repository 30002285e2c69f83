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

#[test]
fn sim_link_delivers_everything_at_high_snr_and_nothing_far_below_the_preamble_limit() {
    let out = out_dir("sim");
    let st = semcom()
        .args([
            "sim",
            "link",
            "--snr",
            "-5:30:25",
            "--limit",
            "8",
            "--channels",
            "awgn",
            "-o",
        ])
        .arg(&out)
        .args(["--json"])
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let stdout = String::from_utf8_lossy(&st.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
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
    let st = semcom()
        .args([
            "sim",
            "link",
            "--snr",
            "25",
            "--quic-snr",
            "-5:30:25",
            "--limit",
            "4",
            "--channels",
            "awgn",
            "--json",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let stdout = String::from_utf8_lossy(&st.stdout);
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
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

#[test]
fn bad_arguments_are_refused() {
    for args in [
        vec!["sim", "link", "--semantic-mcs", "qpsk-9/10"],
        vec!["sim", "link", "--text", "/nonexistent/file"],
        vec!["sim", "link", "--model", "/nonexistent/model"],
        vec!["sim", "link", "--snr", "5:1:1"],
    ] {
        let st = semcom().args(&args).arg("-o").arg(out_dir("bad")).output().unwrap();
        assert!(!st.status.success(), "{args:?}");
        assert!(!String::from_utf8_lossy(&st.stderr).contains("panicked"), "{args:?}");
    }
}
