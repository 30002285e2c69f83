//! Helpers of the CLI tests: `semcom` run from the repository root with its errors checked,
//! `semcom` processes that run side by side, JSON output, and a SigMF check against the SigMF
//! 1.x schema.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("semcom-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `semcom args` to the end from the repository root (model paths such as
/// `models/….safetensors` are relative to it).
pub fn semcom(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_semcom"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run semcom")
}

/// Asserts that a run succeeded, showing its stderr if not.
pub fn ok(out: &Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Asserts that a run failed with a message containing `needle`, and did not panic.
pub fn assert_fails(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure; stderr: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    assert!(err.contains(needle), "stderr lacks `{needle}`: {err}");
}

/// Removes a test's files (recordings are tens of MB); a failed test leaves them for a look.
pub fn remove(paths: &[&Path]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
        if p.extension().is_some_and(|e| e == "sigmf-data") {
            let _ = std::fs::remove_file(p.with_extension("sigmf-meta"));
        }
    }
}

/// A free UDP port on 127.0.0.1 (bound and released; another process could take it in
/// between, which these tests accept).
pub fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `semcom` with its stdout and stderr collected in the background.
pub struct Proc {
    pub child: Child,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn collect(mut r: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut br = BufReader::new(&mut r);
        let mut line = Vec::new();
        while br.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
            into.lock().unwrap().push_str(&String::from_utf8_lossy(&line));
            line.clear();
        }
    })
}

impl Proc {
    /// Starts `semcom args` with extra environment variables.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut c = Command::new(env!("CARGO_BIN_EXE_semcom"));
        c.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("start semcom");
        let out = Arc::new(Mutex::new(String::new()));
        let err = Arc::new(Mutex::new(String::new()));
        let threads = vec![
            collect(child.stdout.take().unwrap(), Arc::clone(&out)),
            collect(child.stderr.take().unwrap(), Arc::clone(&err)),
        ];
        Proc {
            child,
            out,
            err,
            threads,
        }
    }

    pub fn stdout(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().clone()
    }

    /// Waits until stderr (`on_stderr`) or stdout contains `needle`; panics after `limit` or
    /// when the process exits first.
    pub fn wait_for(&mut self, needle: &str, on_stderr: bool, limit: Duration) {
        let t0 = Instant::now();
        loop {
            let text = if on_stderr { self.stderr() } else { self.stdout() };
            if text.contains(needle) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "semcom exited ({st}) before printing `{needle}`; stderr: {}\nstdout: {}",
                    self.stderr(),
                    self.stdout()
                );
            }
            assert!(
                t0.elapsed() < limit,
                "no `{needle}` after {limit:?}; stderr: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT (Ctrl-C).
    pub fn interrupt(&self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -INT failed");
    }

    /// Waits for the exit (killing it after `limit`), then returns its status, stdout and
    /// stderr.
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, String, String) {
        let t0 = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                let st = self.child.wait().unwrap();
                for t in self.threads.drain(..) {
                    let _ = t.join();
                }
                panic!("semcom ran past {limit:?} ({st}); stderr: {}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let (o, e) = (self.stdout(), self.stderr());
        assert!(!e.contains("panicked"), "panicked: {e}");
        (status, o, e)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `semcom args` to the end.
pub fn run(args: &[&str], env: &[(&str, &str)], limit: Duration) -> (ExitStatus, String, String) {
    Proc::spawn(args, env).finish(limit)
}

pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The frame objects and the summary of `semcom rx --json` output.
pub fn frames_and_summary(text: &str) -> (Vec<serde_json::Value>, serde_json::Value) {
    let lines = json_lines(text);
    let summary = lines
        .iter()
        .find_map(|l| l.get("summary").cloned())
        .unwrap_or_else(|| panic!("no summary in {text}"));
    let frames = lines.into_iter().filter(|l| l.get("psdu_hex").is_some()).collect();
    (frames, summary)
}

/// Checks a SigMF recording: the data file's size against the datatype, the required fields of
/// the SigMF 1.x schema (here, always), the whole schema with Python's jsonschema
/// (cli/tests/data/sigmf-schema-meta.json, SigMF v1.2.6), and `sigmf_validate` (the SigMF
/// project's validator) when those are installed. Returns the metadata.
pub fn check_sigmf(meta_path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(meta_path).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let g = &m["global"];
    let dt = g["core:datatype"].as_str().expect("core:datatype");
    let bytes_per_sample = match dt {
        "cf32_le" => 8,
        "ci16_le" => 4,
        "ci8" | "cu8" => 2,
        other => panic!("unexpected datatype {other}"),
    };
    assert!(g["core:version"].as_str().unwrap().starts_with("1."));
    assert!(g["core:sample_rate"].as_f64().unwrap() > 0.0);
    let caps = m["captures"].as_array().expect("captures");
    assert!(!caps.is_empty());
    assert!(caps[0]["core:sample_start"].is_u64());
    let data = meta_path.with_extension("sigmf-data");
    let len = std::fs::metadata(&data).unwrap().len();
    assert_eq!(len % bytes_per_sample, 0, "{}", data.display());
    let samples = len / bytes_per_sample;
    for a in m["annotations"].as_array().expect("annotations") {
        let start = a["core:sample_start"].as_u64().expect("annotation core:sample_start");
        let count = a["core:sample_count"].as_u64().unwrap_or(0);
        assert!(start + count <= samples, "annotation past the end: {a}");
    }
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigmf-schema-meta.json");
    let py = "import json, sys, jsonschema\n\
              schema = json.load(open(sys.argv[1]))\n\
              jsonschema.Draft202012Validator(schema).validate(json.load(open(sys.argv[2])))\n\
              print('valid')";
    match Command::new("python3")
        .args(["-c", py, s(&schema), s(meta_path)])
        .output()
    {
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            eprintln!("SKIPPED the SigMF schema check: python3 has no jsonschema (apt-get install python3-jsonschema)")
        }
        Ok(o) => assert!(
            o.status.success() && String::from_utf8_lossy(&o.stdout).contains("valid"),
            "{} fails the SigMF schema: {}",
            meta_path.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("SKIPPED the SigMF schema check: no python3"),
    }
    match Command::new("sigmf_validate").arg(meta_path).output() {
        Ok(o) => assert!(
            o.status.success(),
            "sigmf_validate refuses {}: {}{}",
            meta_path.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("SKIPPED sigmf_validate: not installed (pip install sigmf)"),
    }
    m
}
