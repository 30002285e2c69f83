//! `semcom tx` and `semcom rx` through the real SoapySDR API, on the loopback device module of
//! this repository (transport/soapy-loopback), which the test builds with g++ against the
//! system's SoapySDR headers and loads through SOAPY_SDR_PLUGIN_PATH. Needs the `soapy`
//! feature, libsoapysdr-dev and g++ (`.ci/run` installs them).
//!
//! SOAPY_SDR_ROOT points at an empty place, so only the loopback module is loaded: the tests
//! do not depend on (or wait for) whatever other SoapySDR modules the machine has. Every test
//! uses its own cable name, so they run in parallel without meeting. Streams run at 2 MS/s
//! (see tests/radio.rs); the 20 MS/s measurements are in docs/radios.md.

#![cfg(feature = "soapy")]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// Builds the loopback module once per test run; returns its directory.
fn module_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tmp("soapy-modules");
        std::fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../transport/soapy-loopback/SemcomLoopback.cpp");
        let lib = dir.join("libSemcomLoopback.so");
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
        let out = Command::new(&cxx)
            .args(["-std=c++17", "-O2", "-Wall", "-shared", "-fPIC"])
            .arg(&src)
            .arg("-o")
            .arg(&lib)
            .arg("-lSoapySDR")
            .output()
            .unwrap_or_else(|e| panic!("running {cxx} to build the loopback module (install g++): {e}"));
        assert!(
            out.status.success(),
            "building {} failed (needs g++ and libsoapysdr-dev): {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// The environment that makes `names` the loopback devices, and the only SoapySDR devices.
fn env(names: &str) -> Vec<(&'static str, String)> {
    let dir = module_dir();
    vec![
        ("SOAPY_SDR_PLUGIN_PATH", s(dir).to_string()),
        ("SOAPY_SDR_ROOT", s(&dir.join("no-system-modules")).to_string()),
        ("SEMCOM_LOOPBACK_DEVICES", names.to_string()),
    ]
}

fn envs<'a>(e: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    e.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A cable name of this test process.
fn cable(test: &str) -> String {
    format!("t{}-{test}", std::process::id())
}

/// 50 frames at each of the eight legacy rates, one `semcom tx` per rate, into one `semcom rx`
/// that runs throughout: every frame arrives with a good FCS, and no overflow.
#[test]
fn every_legacy_rate_through_the_loopback_device() {
    let name = cable("rates");
    let e = env(&name);
    let e = envs(&e);
    let dev = format!("driver=loopback,name={name},buffer_ms=1000,noise_db=-55");
    let mut rx = Proc::spawn(
        &[
            "rx",
            "-a",
            &dev,
            "-s",
            "2M",
            "-f",
            "2.45G",
            "-g",
            "40",
            "--count",
            "400",
            "--duration",
            "80s",
            "--json",
        ],
        &e,
    );
    rx.wait_for("receiving from", true, T);
    // A deep transmit FIFO (100 ms), as the receive ring is deep (1 s): a busy CI machine may
    // leave a process waiting for a while, and an underflow inside a frame would cut it.
    let tx_dev = format!("driver=loopback,name={name},tx_lead_ms=100");
    for rate in ["6", "9", "12", "18", "24", "36", "48", "54"] {
        let (st, out, err) = run(
            &[
                "tx",
                "-a",
                &tx_dev,
                "-s",
                "2M",
                "-f",
                "2.45G",
                "-g",
                "40",
                "--rate",
                rate,
                "--random",
                "300",
                "-n",
                "50",
                "--interval",
                "200us",
                "--seed",
                rate,
            ],
            &e,
            T,
        );
        assert!(st.success(), "tx at {rate}: {err}");
        assert!(out.contains("50 frame(s)"), "{out}");
    }
    let (st, out, err) = rx.finish(T);
    assert!(st.success(), "rx: {err}");
    let (frames, sum) = frames_and_summary(&out);
    assert_eq!(sum["stopped"], "count reached", "{sum}");
    assert_eq!(sum["fcs_ok"], 400, "{sum}");
    assert_eq!(sum["overflows"], 0, "{sum}");
    for rate in [6, 9, 12, 18, 24, 36, 48, 54] {
        let n = frames.iter().filter(|f| f["rate_mbps"] == rate).count();
        assert_eq!(n, 50, "{rate} Mbit/s");
    }
    // The device timestamps its stream; frames carry their time, in order.
    let times: Vec<i64> = frames.iter().map(|f| f["time_ns"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]));
}

/// Wrong arguments, missing or ambiguous devices and unsupported settings each stop before
/// streaming, with a message that says what the device supports.
#[test]
fn bad_devices_and_settings_are_named() {
    let name = cable("bad");
    let e = env(&format!("{name},{name}-b"));
    let e = envs(&e);
    let dev = format!("driver=loopback,name={name}");
    let fails = |args: &[&str], needles: &[&str]| {
        let (st, _, err) = run(args, &e, T);
        assert!(!st.success(), "{args:?} succeeded");
        for n in needles {
            assert!(err.contains(n), "{args:?}: stderr lacks `{n}`: {err}");
        }
    };
    fails(
        &["rx", "-a", "driver=nosuch"],
        &["no SoapySDR device matches `driver=nosuch`", &format!("name={name}")],
    );
    fails(
        &["rx", "-a", "driver=loopback"],
        &["2 SoapySDR devices match", &format!("name={name}-b")],
    );
    fails(&["rx", "-a", "hackrf"], &["has no `=`"]);
    fails(
        &["rx", "-a", &dev, "-s", "100M"],
        &[
            "sample rate 100 MS/s is not supported for receive",
            "100 kS/s … 61.44 MS/s",
        ],
    );
    fails(
        &["tx", "-a", &dev, "-s", "80M", "--random", "10"],
        &["sample rate 80 MS/s is not supported for transmit"],
    );
    fails(
        &["rx", "-a", &dev, "-f", "10G"],
        &["frequency 10 GHz is out of the receive range"],
    );
    fails(
        &["rx", "-a", &dev, "-g", "100"],
        &["gain 100 dB is out of range (0 … 70 dB)"],
    );
    fails(
        &["rx", "-a", &dev, "-g", "LNA=10,VGA=3"],
        &["no receive gain element `VGA`", "LNA, PGA"],
    );
    fails(
        &["rx", "-a", &dev, "--antenna", "TX"],
        &["no receive antenna `TX`", "antennas: RX"],
    );
    fails(
        &["rx", "-a", &dev, "--channel", "2"],
        &["channel 2", "1 receive channel"],
    );
    fails(
        &["rx", "-a", &dev, "--bandwidth", "100M"],
        &["bandwidth 100 MHz is not supported"],
    );
    fails(
        &["rx", "-a", &format!("{dev},buffer_ms=lots")],
        &["opening the device failed", "buffer_ms=lots is not a number"],
    );
    fails(
        &["tx", "-a", &dev, "--random", "10", "--format", "ci16"],
        &["--format applies to files and UDP"],
    );
    // A cable in use at one rate refuses a second process at another.
    let mut rx = Proc::spawn(&["rx", "-a", &dev, "-s", "2M"], &e);
    rx.wait_for("receiving from", true, T);
    fails(
        &["tx", "-a", &dev, "-s", "4M", "--random", "10"],
        &["in use at 2e+06 S/s by another process"],
    );
    rx.interrupt();
    let (st, _, err) = rx.finish(T);
    assert!(st.success(), "{err}");
}

/// A device that disappears mid-stream ends `rx` (and `tx`) with a message and a non-zero exit,
/// not a panic or a hang, and the recording is complete up to that point; one that stalls is
/// found out by its silence.
#[test]
fn a_device_that_disappears_is_reported() {
    let name = cable("lost");
    let e = env(&format!("{name},{name}-2,{name}-3"));
    let e = envs(&e);
    let rec = tmp("lost.sigmf-data");
    let (st, out, err) = run(
        &[
            "rx",
            "-a",
            &format!("driver=loopback,name={name},fail_after=1000000"),
            "-s",
            "2M",
            "--record",
            s(&rec),
            "--json",
        ],
        &e,
        T,
    );
    assert!(!st.success());
    assert!(err.contains("the device stopped streaming after"), "{err}");
    assert!(err.contains("was it unplugged?"), "{err}");
    let (_, sum) = frames_and_summary(&out);
    let recorded = sum["recorded"].as_u64().unwrap();
    assert!(recorded >= 900_000, "{sum}");
    check_sigmf(&rec.with_extension("sigmf-meta"));
    assert_eq!(std::fs::metadata(&rec).unwrap().len(), 8 * recorded);

    let (st, _, err) = run(
        &[
            "rx",
            "-a",
            &format!("driver=loopback,name={name}-2,stall_after=100000"),
            "-s",
            "2M",
        ],
        &e,
        T,
    );
    assert!(!st.success());
    assert!(err.contains("no samples for"), "{err}");

    let (st, _, err) = run(
        &[
            "tx",
            "-a",
            &format!("driver=loopback,name={name}-3,fail_after=200000"),
            "-s",
            "2M",
            "--random",
            "100",
            "-n",
            "1000",
        ],
        &e,
        T,
    );
    assert!(!st.success());
    assert!(err.contains("the device stopped streaming"), "{err}");
    remove(&[&rec]);
}

/// Ctrl-C on a receiving device: a clean exit and a complete recording.
#[test]
fn ctrl_c_on_a_device_completes_the_recording() {
    let name = cable("int");
    let e = env(&name);
    let e = envs(&e);
    let rec = tmp("int.sigmf-data");
    let mut rx = Proc::spawn(
        &[
            "rx",
            "-a",
            &format!("driver=loopback,name={name}"),
            "-s",
            "2M",
            "-f",
            "915M",
            "--record",
            s(&rec),
            "--json",
        ],
        &e,
    );
    rx.wait_for("receiving from", true, T);
    std::thread::sleep(Duration::from_millis(500));
    rx.interrupt();
    let (st, out, err) = rx.finish(T);
    assert!(st.success(), "{err}");
    let (_, sum) = frames_and_summary(&out);
    assert_eq!(sum["stopped"], "interrupted");
    let meta = check_sigmf(&rec.with_extension("sigmf-meta"));
    assert_eq!(meta["captures"][0]["core:frequency"], 915e6);
    assert_eq!(meta["global"]["core:hw"], "semcom-loopback");
    assert_eq!(
        std::fs::metadata(&rec).unwrap().len(),
        8 * sum["recorded"].as_u64().unwrap()
    );
    remove(&[&rec]);
}

/// `semcom probe` reports the device's ranges, gains and antennas.
#[test]
fn probe_lists_the_device() {
    let name = cable("probe");
    let e = env(&name);
    let e = envs(&e);
    let (st, out, err) = run(&["probe"], &e, T);
    assert!(st.success(), "{err}");
    for needle in [
        &format!("name={name}")[..],
        "rx channel 0",
        "sample rates: 100 kS/s … 61.44 MS/s",
        "LNA: 0 … 30 dB",
        "antennas:     TX",
    ] {
        assert!(out.contains(needle), "lacks `{needle}`: {out}");
    }
    let (st, out, err) = run(&["probe", "-a", "driver=loopback", "--json"], &e, T);
    assert!(st.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["driver"], "loopback");
    assert_eq!(v[0]["channels"].as_array().unwrap().len(), 2);
    let (st, _, err) = run(&["probe", "-a", "driver=nosuch"], &e, T);
    assert!(!st.success());
    assert!(err.contains("no SoapySDR device matches"), "{err}");
}
