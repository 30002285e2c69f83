//! SigMF metadata (the `.sigmf-meta` JSON beside a `.sigmf-data` file), version 1.x.
//!
//! Only the core namespace is interpreted; other keys are ignored. A recording semcom cannot
//! read as one stream of complex samples is refused rather than misread: more than one
//! channel (`core:num_channels`), metadata only, or header bytes between captures. A
//! non-conforming dataset (`core:dataset`, with `core:header_bytes` before the first capture and
//! `core:trailing_bytes`) is read.

use crate::TransportError;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// SigMF specification version written.
pub const SIGMF_VERSION: &str = "1.2.0";

/// One annotation: a labelled span of samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    /// First sample.
    pub sample_start: u64,
    /// Number of samples.
    pub sample_count: u64,
    /// Short label (`core:label`).
    pub label: String,
    /// Longer free text (`core:comment`), if any.
    pub comment: Option<String>,
}

/// The parts of a recording's metadata semcom reads and writes.
#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    /// `core:datatype`, e.g. `cf32_le`.
    pub datatype: String,
    /// `core:sample_rate`, samples per second.
    pub sample_rate_hz: Option<f64>,
    /// `core:frequency` of the first capture, Hz.
    pub frequency_hz: Option<f64>,
    /// `core:datetime` of the first capture (ISO 8601, UTC).
    pub datetime: Option<String>,
    /// `core:description`.
    pub description: Option<String>,
    /// `core:hw`.
    pub hw: Option<String>,
    /// `core:recorder`.
    pub recorder: Option<String>,
    /// Annotations, in sample order.
    pub annotations: Vec<Annotation>,
    /// `core:dataset`: the data file's name, beside the metadata, when it is not the
    /// `.sigmf-data` of the pair (a non-conforming dataset).
    pub dataset: Option<String>,
    /// `core:header_bytes` of the first capture: bytes before the first sample.
    pub header_bytes: u64,
    /// `core:trailing_bytes`: bytes after the last sample.
    pub trailing_bytes: u64,
}

impl Meta {
    /// Metadata for a new recording.
    pub fn new(datatype: &str, sample_rate_hz: f64) -> Self {
        Self {
            datatype: datatype.to_string(),
            sample_rate_hz: Some(sample_rate_hz),
            frequency_hz: None,
            datetime: Some(utc_now_iso8601()),
            description: None,
            hw: None,
            recorder: Some(format!("semcom {}", env!("CARGO_PKG_VERSION"))),
            annotations: Vec::new(),
            dataset: None,
            header_bytes: 0,
            trailing_bytes: 0,
        }
    }

    /// The JSON document (required fields of the SigMF 1.x schema always present).
    pub fn to_json(&self) -> Value {
        let mut global = Map::new();
        global.insert("core:datatype".into(), json!(self.datatype));
        global.insert("core:version".into(), json!(SIGMF_VERSION));
        if let Some(r) = self.sample_rate_hz {
            global.insert("core:sample_rate".into(), json!(r));
        }
        if let Some(d) = &self.description {
            global.insert("core:description".into(), json!(d));
        }
        if let Some(h) = &self.hw {
            global.insert("core:hw".into(), json!(h));
        }
        if let Some(r) = &self.recorder {
            global.insert("core:recorder".into(), json!(r));
        }
        let mut capture = Map::new();
        capture.insert("core:sample_start".into(), json!(0));
        if let Some(f) = self.frequency_hz {
            capture.insert("core:frequency".into(), json!(f));
        }
        if let Some(d) = &self.datetime {
            capture.insert("core:datetime".into(), json!(d));
        }
        let mut anns = self.annotations.clone();
        anns.sort_by_key(|a| a.sample_start);
        let annotations: Vec<Value> = anns
            .iter()
            .map(|a| {
                let mut m = Map::new();
                m.insert("core:sample_start".into(), json!(a.sample_start));
                m.insert("core:sample_count".into(), json!(a.sample_count));
                m.insert("core:label".into(), json!(a.label));
                if let Some(c) = &a.comment {
                    m.insert("core:comment".into(), json!(c));
                }
                Value::Object(m)
            })
            .collect();
        json!({ "global": global, "captures": [capture], "annotations": annotations })
    }

    /// Parses and checks a metadata document.
    pub fn from_json(path: &Path, text: &str) -> Result<Self, TransportError> {
        let bad = |reason: String| TransportError::SigmfMeta {
            path: path.to_path_buf(),
            reason,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let global = v
            .get("global")
            .and_then(Value::as_object)
            .ok_or_else(|| bad("no `global` object".into()))?;
        let datatype = global
            .get("core:datatype")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("`global` has no string `core:datatype`".into()))?
            .to_string();
        match global.get("core:version").and_then(Value::as_str) {
            Some(ver) if ver.starts_with("1.") => {}
            Some(ver) => return Err(bad(format!("`core:version` {ver} is not a SigMF 1.x version"))),
            None => return Err(bad("`global` has no string `core:version`".into())),
        }
        let num = |m: &Map<String, Value>, k: &str| -> Result<Option<f64>, TransportError> {
            match m.get(k) {
                None => Ok(None),
                Some(x) => x
                    .as_f64()
                    .filter(|f| f.is_finite())
                    .map(Some)
                    .ok_or_else(|| bad(format!("`{k}` is not a number"))),
            }
        };
        let count = |m: &Map<String, Value>, k: &str| -> Result<Option<u64>, TransportError> {
            match m.get(k) {
                None => Ok(None),
                Some(x) => x
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| bad(format!("`{k}` is not a whole number"))),
            }
        };
        match count(global, "core:num_channels")? {
            None | Some(1) => {}
            Some(n) => {
                return Err(bad(format!(
                    "`core:num_channels` is {n}: only single-channel recordings are read (extract one channel)"
                )))
            }
        }
        if global.get("core:metadata_only").and_then(Value::as_bool) == Some(true) {
            return Err(bad("`core:metadata_only`: the recording has no samples".into()));
        }
        let dataset = match global.get("core:dataset") {
            None => None,
            Some(Value::String(d)) if !d.is_empty() && Path::new(d).file_name().is_some_and(|f| f == d.as_str()) => {
                Some(d.clone())
            }
            Some(d) => return Err(bad(format!("`core:dataset` {d} is not a file name"))),
        };
        let trailing_bytes = count(global, "core:trailing_bytes")?.unwrap_or(0);
        let sample_rate_hz = num(global, "core:sample_rate")?;
        if let Some(r) = sample_rate_hz {
            if r <= 0.0 {
                return Err(bad(format!("`core:sample_rate` {r} is not positive")));
            }
        }
        let captures = v
            .get("captures")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("no `captures` array".into()))?;
        let first = captures.first().and_then(Value::as_object);
        let (frequency_hz, datetime) = match first {
            Some(c) => (
                num(c, "core:frequency")?,
                c.get("core:datetime").and_then(Value::as_str).map(str::to_string),
            ),
            None => (None, None),
        };
        let mut header_bytes = 0;
        for (i, c) in captures.iter().enumerate() {
            let c = c
                .as_object()
                .ok_or_else(|| bad(format!("capture {i} is not an object")))?;
            match count(c, "core:header_bytes")? {
                None | Some(0) => {}
                Some(n) if i == 0 => header_bytes = n,
                Some(n) => {
                    return Err(bad(format!(
                        "capture {i} has {n} header bytes inside the dataset, which semcom does not read"
                    )))
                }
            }
        }
        let mut annotations = Vec::new();
        if let Some(anns) = v.get("annotations").and_then(Value::as_array) {
            for a in anns {
                let Some(a) = a.as_object() else {
                    return Err(bad("an annotation is not an object".into()));
                };
                let start = a
                    .get("core:sample_start")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| bad("an annotation has no `core:sample_start`".into()))?;
                annotations.push(Annotation {
                    sample_start: start,
                    sample_count: a.get("core:sample_count").and_then(Value::as_u64).unwrap_or(0),
                    label: a
                        .get("core:label")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    comment: a.get("core:comment").and_then(Value::as_str).map(str::to_string),
                });
            }
        } else {
            return Err(bad("no `annotations` array".into()));
        }
        let s = |k: &str| global.get(k).and_then(Value::as_str).map(str::to_string);
        Ok(Self {
            datatype,
            sample_rate_hz,
            frequency_hz,
            datetime,
            description: s("core:description"),
            hw: s("core:hw"),
            recorder: s("core:recorder"),
            annotations,
            dataset,
            header_bytes,
            trailing_bytes,
        })
    }
}

/// The (`.sigmf-meta`, `.sigmf-data`) pair for a path naming either, or the base with a
/// `.sigmf` extension; `None` when the path is not a SigMF name.
pub fn pair_paths(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let s = path.to_str()?;
    let base = s
        .strip_suffix(".sigmf-data")
        .or_else(|| s.strip_suffix(".sigmf-meta"))
        .or_else(|| s.strip_suffix(".sigmf"))?;
    Some((
        PathBuf::from(format!("{base}.sigmf-meta")),
        PathBuf::from(format!("{base}.sigmf-data")),
    ))
}

/// The current UTC time as ISO 8601 (`2026-11-24T01:02:03Z`), without a date-time crate.
pub fn utc_now_iso8601() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_required_fields() {
        let mut m = Meta::new("cf32_le", 20e6);
        m.frequency_hz = Some(2.412e9);
        m.annotations.push(Annotation {
            sample_start: 500,
            sample_count: 1201,
            label: "802.11a 12 Mbit/s".into(),
            comment: Some("fcs ok".into()),
        });
        let j = m.to_json();
        for k in ["core:datatype", "core:version"] {
            assert!(j["global"][k].is_string(), "{k}");
        }
        assert_eq!(j["captures"][0]["core:sample_start"], 0);
        let back = Meta::from_json(Path::new("x"), &j.to_string()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn refuses_bad_documents() {
        for doc in [
            "",
            "[]",
            r#"{"global":{}}"#,
            r#"{"global":{"core:datatype":"cf32_le","core:version":"0.9"},"captures":[],"annotations":[]}"#,
            r#"{"global":{"core:datatype":"cf32_le","core:version":"1.0.0","core:sample_rate":-1},"captures":[],"annotations":[]}"#,
        ] {
            assert!(Meta::from_json(Path::new("m.sigmf-meta"), doc).is_err(), "{doc}");
        }
        // Recordings that are not one stream of complex samples: refused, naming the key.
        let global = |extra: &str| {
            format!(
                r#"{{"global":{{"core:datatype":"cf32_le","core:version":"1.2.0"{extra}}},"captures":[{{"core:sample_start":0}},{{"core:sample_start":100,"core:header_bytes":HB}}],"annotations":[]}}"#
            )
        };
        for (extra, hb, needle) in [
            (r#","core:num_channels":2"#, 0, "core:num_channels"),
            (r#","core:num_channels":1.5"#, 0, "core:num_channels"),
            (r#","core:metadata_only":true"#, 0, "core:metadata_only"),
            (r#","core:dataset":"../x.bin""#, 0, "core:dataset"),
            (r#","core:dataset":7"#, 0, "core:dataset"),
            (r#","core:trailing_bytes":-1"#, 0, "core:trailing_bytes"),
            ("", 16, "capture 1 has 16 header bytes"),
        ] {
            let doc = global(extra).replace("HB", &hb.to_string());
            let e = Meta::from_json(Path::new("m.sigmf-meta"), &doc)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{doc}: {e}");
        }
        let ok = global(r#","core:num_channels":1,"core:dataset":"rec.bin","core:trailing_bytes":3"#)
            .replace("HB", "0")
            .replace(
                r#"{"core:sample_start":0}"#,
                r#"{"core:sample_start":0,"core:header_bytes":44}"#,
            );
        let m = Meta::from_json(Path::new("m.sigmf-meta"), &ok).unwrap();
        assert_eq!(
            (m.dataset.as_deref(), m.header_bytes, m.trailing_bytes),
            (Some("rec.bin"), 44, 3)
        );
    }

    #[test]
    fn iso8601_shape() {
        let t = utc_now_iso8601();
        assert_eq!(t.len(), 20);
        assert!(t.starts_with("20") && t.ends_with('Z'));
        assert_eq!(
            pair_paths(Path::new("a/b.sigmf-data")).unwrap().0,
            PathBuf::from("a/b.sigmf-meta")
        );
        assert!(pair_paths(Path::new("a/b.cf32")).is_none());
    }
}
