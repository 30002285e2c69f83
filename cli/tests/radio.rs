//! `semcom tx`, `semcom channel` and `semcom rx` as separate processes on UDP virtual radios,
//! SigMF recordings of what `rx` received (checked against the SigMF schema and played back),
//! Ctrl-C, and the messages of a build without SoapySDR. No hardware, no system library.
//!
//! The streams run in real time at 2 MS/s rather than 20 MS/s: the PHY does not depend on the
//! rate, and a 2-core CI machine then has room for three processes at once. The 20 MS/s
//! figures are measured by hand (docs/radios.md), not asserted in tests.

mod common;

use common::*;
use std::collections::HashSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// The PSDUs `semcom tx --random N -n K --seed S` sends, by decoding its file output.
fn expected_psdus(tx_args: &[&str]) -> Vec<String> {
    let f = tmp(&format!("expected-{}.cf32", tx_args.join("_").replace(['/', ' '], "")));
    let mut args = vec!["tx"];
    args.extend_from_slice(tx_args);
    args.extend_from_slice(&["-o", s(&f)]);
    let (st, _, e) = run(&args, &[], T);
    assert!(st.success(), "{e}");
    let (st, o, e) = run(&["rx", "-i", s(&f), "--json"], &[], T);
    assert!(st.success(), "{e}");
    let psdus = frames_and_summary(&o)
        .0
        .iter()
        .map(|f| f["psdu_hex"].as_str().unwrap().to_string())
        .collect();
    remove(&[&f]);
    psdus
}

/// tx → channel (15 dB SNR, 2 kHz CFO, Rayleigh fading, and every 400th datagram dropped) →
/// rx over UDP: at least 99 % of the frames at 6 Mbit/s arrive with a good FCS, the gaps are
/// counted and zero-filled without stopping anything, and the recording made on the way plays
/// back to the same frames.
#[test]
fn three_processes_over_udp_with_a_channel() {
    let (a, b) = (free_port(), free_port());
    let (a, b) = (format!("127.0.0.1:{a}"), format!("127.0.0.1:{b}"));
    let rec = tmp("udp.sigmf-data");
    let mut rx = Proc::spawn(
        &[
            "rx",
            "--udp",
            &b,
            "-s",
            "2M",
            "--duration",
            "40s",
            "--json",
            "--record",
            s(&rec),
        ],
        &[],
    );
    rx.wait_for("receiving from", true, T);
    let in_addr = format!("udp:{a}");
    let out_addr = format!("udp:{b}");
    let mut ch = Proc::spawn(
        &[
            "channel",
            "--in",
            &in_addr,
            "--out",
            &out_addr,
            "-s",
            "2M",
            "--snr",
            "15",
            "--cfo",
            "2k",
            "--fading",
            "rayleigh",
            "--seed",
            "3",
            "--drop-every",
            "400",
            "--json",
        ],
        &[],
    );
    ch.wait_for("channel udp", true, T);
    let tx_args = ["--rate", "6", "--random", "100", "-n", "400", "--seed", "7"];
    let mut args = vec!["tx", "--udp", &a, "-s", "2M", "--interval", "400us"];
    args.extend_from_slice(&tx_args);
    let (st, out, err) = run(&args, &[], T);
    assert!(st.success(), "tx: {err}");
    assert!(out.contains("400 frame(s)"), "{out}");
    // The end of the stream travels tx → channel → rx, and both stop by themselves.
    let (st, ch_out, err) = ch.finish(T);
    assert!(st.success(), "channel: {err}");
    let ch_sum = &json_lines(&ch_out)[0];
    let dropped = ch_sum["dropped_packets"].as_u64().unwrap();
    assert!(dropped >= 1, "{ch_out}");
    let (st, rx_out, err) = rx.finish(T);
    assert!(st.success(), "rx: {err}");
    let (frames, sum) = frames_and_summary(&rx_out);
    assert_eq!(sum["stopped"], "end of stream", "{sum}");
    let good: Vec<&str> = frames
        .iter()
        .filter(|f| f["fcs_ok"] == true)
        .map(|f| f["psdu_hex"].as_str().unwrap())
        .collect();
    assert!(good.len() >= 396, "{} of 400 frames delivered; {sum}", good.len());
    let expected: HashSet<String> = expected_psdus(&tx_args).into_iter().collect();
    assert_eq!(expected.len(), 400);
    assert!(
        good.iter().all(|p| expected.contains(*p)),
        "a frame that was never sent"
    );
    assert_eq!(good.iter().collect::<HashSet<_>>().len(), good.len(), "duplicates");
    // Every gap the channel made is seen by the receiver (and any the channel's own input
    // had, on a busy machine: it passes those on as gaps).
    assert!(sum["lost_packets"].as_u64().unwrap() >= dropped, "{sum}");
    assert!(sum["lost_samples"].as_u64().unwrap() >= dropped, "{sum}");
    let snr = sum["snr_db"]["median"].as_f64().unwrap();
    assert!((11.0..19.0).contains(&snr), "median SNR {snr} dB at a 15 dB channel");
    let cfo = sum["cfo_hz"]["median"].as_f64().unwrap();
    assert!((cfo - 2000.0).abs() < 500.0, "median CFO {cfo} Hz");

    // The recording: valid SigMF, one annotation per frame, and it plays back to the same
    // frames at the same offsets.
    let meta_path = rec.with_extension("sigmf-meta");
    let meta = check_sigmf(&meta_path);
    assert_eq!(meta["global"]["core:sample_rate"], 2e6);
    assert_eq!(meta["annotations"].as_array().unwrap().len(), frames.len());
    let (st, o, e) = run(&["rx", "-i", s(&meta_path), "--json"], &[], T);
    assert!(st.success(), "{e}");
    let (replayed, _) = frames_and_summary(&o);
    let key = |f: &serde_json::Value| (f["offset"].clone(), f["psdu_hex"].clone(), f["fcs_ok"].clone());
    assert_eq!(
        replayed.iter().map(key).collect::<Vec<_>>(),
        frames.iter().map(key).collect::<Vec<_>>()
    );
    remove(&[&rec]);
}

/// Ctrl-C stops `rx` cleanly: it exits 0 with its summary, and the recording is complete
/// (metadata written, one annotation per reported frame) though the stream went on.
#[test]
fn ctrl_c_completes_the_recording() {
    let port = format!("127.0.0.1:{}", free_port());
    let rec = tmp("interrupted.sigmf-data");
    let mut rx = Proc::spawn(&["rx", "--udp", &port, "-s", "2M", "--json", "--record", s(&rec)], &[]);
    rx.wait_for("receiving from", true, T);
    let tx = Proc::spawn(
        &[
            "tx",
            "--udp",
            &port,
            "-s",
            "2M",
            "--rate",
            "12",
            "--random",
            "200",
            "-n",
            "100000",
            "--interval",
            "1ms",
        ],
        &[],
    );
    rx.wait_for("\"fcs_ok\":true", false, T);
    std::thread::sleep(Duration::from_millis(300));
    rx.interrupt();
    let (st, out, err) = rx.finish(T);
    assert!(st.success(), "rx after Ctrl-C: {st} {err}");
    let (frames, sum) = frames_and_summary(&out);
    assert_eq!(sum["stopped"], "interrupted");
    assert!(!frames.is_empty());
    let meta = check_sigmf(&rec.with_extension("sigmf-meta"));
    assert_eq!(meta["annotations"].as_array().unwrap().len(), frames.len());
    let bytes = std::fs::metadata(&rec).unwrap().len();
    assert_eq!(bytes, 8 * sum["recorded"].as_u64().unwrap());
    // The transmitter stops on Ctrl-C too, and says so.
    tx.interrupt();
    let (st, out, err) = tx.finish(T);
    assert!(st.success(), "tx after Ctrl-C: {err}");
    assert!(out.contains("interrupted"), "{out}");
    remove(&[&rec]);
}

/// Bad radio arguments are refused with a message, before anything streams.
#[test]
fn bad_radio_arguments_are_named() {
    let fails = |args: &[&str], needle: &str| {
        let (st, _, e) = run(args, &[], T);
        assert!(!st.success(), "{args:?} succeeded");
        assert!(e.contains(needle), "{args:?}: stderr lacks `{needle}`: {e}");
    };
    fails(&["rx", "--udp", "nonsense"], "not a HOST:PORT");
    fails(
        &["rx", "--udp", "127.0.0.1:1", "-g", "40"],
        "-g/--gain applies to SoapySDR devices",
    );
    fails(&["rx", "--udp", "127.0.0.1:1", "-s", "0"], "`0` must be above 0");
    fails(&["rx", "--udp", "127.0.0.1:1", "-s", "fast"], "not a number");
    fails(
        &["tx", "--udp", "127.0.0.1:1", "--random", "10", "--repeat", "0"],
        "--repeat",
    );
    fails(
        &["tx", "--random", "10", "-o", "x.cf32", "--udp", "127.0.0.1:1"],
        "cannot be used with",
    );
    fails(
        &[
            "channel",
            "--in",
            "udp:127.0.0.1:0",
            "--out",
            "x.cf32",
            "--drop-every",
            "3",
        ],
        "--drop-every",
    );
    let empty = tmp("empty-items.txt");
    std::fs::write(&empty, "\n\n").unwrap();
    fails(&["tx", "--items", s(&empty), "-o", s(&tmp("i.cf32"))], "no items");
}

/// `--items`: one frame per line, with its FCS; `--repeat` sends the list again.
#[test]
fn items_become_frames() {
    let items = tmp("items.txt");
    std::fs::write(&items, "temperature=21.5\n\nalert: door open\r\n").unwrap();
    let f = tmp("items.cf32");
    let (st, _, e) = run(
        &[
            "tx",
            "--items",
            s(&items),
            "--repeat",
            "2",
            "--interval",
            "100us",
            "-o",
            s(&f),
        ],
        &[],
        T,
    );
    assert!(st.success(), "{e}");
    let (st, o, e) = run(&["rx", "-i", s(&f), "--json"], &[], T);
    assert!(st.success(), "{e}");
    let (frames, _) = frames_and_summary(&o);
    let text: Vec<String> = frames
        .iter()
        .map(|f| {
            assert_eq!(f["fcs_ok"], true);
            let hex = f["psdu_hex"].as_str().unwrap();
            let bytes: Vec<u8> = (0..hex.len() - 8)
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            String::from_utf8(bytes).unwrap()
        })
        .collect();
    assert_eq!(
        text,
        [
            "temperature=21.5",
            "alert: door open",
            "temperature=21.5",
            "alert: door open"
        ]
    );
    // 100 µs at 20 MS/s = 2000 zero samples between frames.
    let offsets: Vec<u64> = frames.iter().map(|f| f["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets[0], 0);
    let first = semcom_phy::Transmitter::packet_len(semcom_phy::Rate::R12, 20) as u64;
    assert_eq!(offsets[1], first + 2000);
    remove(&[&f, &items]);
}

/// A build without the `soapy` feature says how to get device support.
#[cfg(not(feature = "soapy"))]
#[test]
fn without_soapysdr_devices_are_explained() {
    for args in [
        &["rx", "-a", "driver=hackrf"][..],
        &["tx", "-a", "driver=hackrf", "--random", "10"][..],
        &["probe"][..],
    ] {
        let (st, _, e) = run(args, &[], T);
        assert!(!st.success());
        assert!(
            e.contains("built without SoapySDR support") && e.contains("--features soapy"),
            "{e}"
        );
    }
}

/// `semcom send --udp` → `semcom channel` (12 dB SNR, 1 kHz CFO) → `semcom recv --udp`: the
/// radio item link across three processes. Every file arrives byte for byte under the right
/// key; a receiver with another key writes nothing and counts every frame as wrongly keyed.
#[test]
fn items_cross_processes_over_the_radio_link() {
    let dir = tmp("recv-items");
    let (inp, out) = (dir.join("in"), dir.join("out"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&inp).unwrap();
    let mut sent = Vec::new();
    for (i, len) in [13usize, 700, 1900].into_iter().enumerate() {
        let b: Vec<u8> = (0..len).map(|k| (k * 31 + i * 7) as u8).collect();
        std::fs::write(inp.join(format!("f{i}.bin")), &b).unwrap();
        sent.push(b);
    }
    let key = dir.join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let other = dir.join("other-key");
    std::fs::write(&other, [8u8; 32]).unwrap();
    for (k, expect) in [(&key, 3usize), (&other, 0)] {
        let (a, b) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let mut rx = Proc::spawn(
            &["recv", "--udp", &b, "-s", "2M", "--key", s(k), "-o", s(&out), "--json"],
            &[],
        );
        rx.wait_for("receiving from", true, T);
        let (ia, ob) = (format!("udp:{a}"), format!("udp:{b}"));
        let mut ch = Proc::spawn(
            &[
                "channel", "--in", &ia, "--out", &ob, "-s", "2M", "--snr", "12", "--cfo", "1k", "--seed", "5",
            ],
            &[],
        );
        ch.wait_for("channel udp", true, T);
        let (st, o, e) = run(
            &[
                "send",
                s(&inp),
                "--link",
                "radio",
                "--udp",
                &a,
                "-s",
                "2M",
                "--key",
                s(&key),
            ],
            &[],
            T,
        );
        assert!(st.success(), "send: {e}");
        assert_eq!(o.matches(" sent as item ").count(), 3, "{o}");
        let (st, _, e) = ch.finish(T);
        assert!(st.success(), "channel: {e}");
        // The end of the stream reaches the receiver, which stops by itself.
        let (st, o, e) = rx.finish(T);
        assert!(st.success(), "recv: {e}");
        let lines = json_lines(&o);
        let sum = lines.last().unwrap();
        assert_eq!(sum["stopped"], "end of stream", "{o}");
        assert_eq!(sum["delivered"].as_u64().unwrap() as usize, expect, "{o}");
        if expect == 0 {
            assert!(sum["refused"]["wrong_key"].as_u64().unwrap() >= 3, "{o}");
            continue;
        }
        let mut got: Vec<Vec<u8>> = lines
            .iter()
            .filter(|l| l["outcome"] == "delivered")
            .map(|l| std::fs::read(l["file"].as_str().unwrap()).unwrap())
            .collect();
        got.sort_by_key(Vec::len);
        assert_eq!(got, sent);
    }
    let written = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(written, 3, "the wrongly keyed run wrote nothing");
    let _ = std::fs::remove_dir_all(&dir);
}
