//! Readers for the sensor datasets: the UCI HAR "Inertial Signals" text files and the UCR/UEA
//! `.ts` format.

use super::Window;
use crate::CodecError;
use std::path::{Path, PathBuf};

/// Labelled windows of one split.
#[derive(Clone, Debug, Default)]
pub struct Labelled {
    /// The windows.
    pub windows: Vec<Window>,
    /// One class index (0-based) per window.
    pub labels: Vec<u8>,
    /// Class names, by index.
    pub classes: Vec<String>,
}

/// UCI HAR channel names in the order the windows hold them.
pub const HAR_CHANNELS: [&str; 9] = [
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "body_gyro_x",
    "body_gyro_y",
    "body_gyro_z",
    "total_acc_x",
    "total_acc_y",
    "total_acc_z",
];

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CodecError + '_ {
    move |source| CodecError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn bad(path: &Path, line: usize, what: impl std::fmt::Display) -> CodecError {
    CodecError::Input(format!("{}:{}: {what}", path.display(), line + 1))
}

/// The folder holding `train/` and `test/`: `dir` itself or `dir/UCI HAR Dataset`.
pub fn har_root(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("UCI HAR Dataset")]
        .into_iter()
        .find(|d| d.join("train").is_dir() && d.join("test").is_dir())
}

/// Reads split `split` (`train` or `test`) of UCI HAR below `dir` (see [`har_root`]).
pub fn load_har(dir: &Path, split: &str) -> Result<Labelled, CodecError> {
    let root = har_root(dir).ok_or_else(|| {
        CodecError::Input(format!(
            "{}: not a UCI HAR folder (no train/ and test/ in it or in its `UCI HAR Dataset`)",
            dir.display()
        ))
    })?;
    let mut per_channel: Vec<Vec<Vec<f32>>> = Vec::new();
    for name in HAR_CHANNELS {
        let path = root
            .join(split)
            .join("Inertial Signals")
            .join(format!("{name}_{split}.txt"));
        let text = std::fs::read_to_string(&path).map_err(io(&path))?;
        let mut rows = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let row = line
                .split_whitespace()
                .map(|t| {
                    t.parse::<f32>()
                        .map_err(|_| bad(&path, i, format!("`{t}` is not a number")))
                })
                .collect::<Result<Vec<f32>, _>>()?;
            rows.push(row);
        }
        per_channel.push(rows);
    }
    let path = root.join(split).join(format!("y_{split}.txt"));
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let labels = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| match l.trim().parse::<u8>() {
            Ok(v @ 1..=6) => Ok(v - 1),
            _ => Err(bad(&path, i, format!("label `{l}` is not 1 … 6"))),
        })
        .collect::<Result<Vec<u8>, _>>()?;
    let n = labels.len();
    if let Some((c, rows)) = per_channel.iter().enumerate().find(|(_, r)| r.len() != n) {
        return Err(CodecError::Input(format!(
            "UCI HAR {split}: {} has {} windows but {n} labels",
            HAR_CHANNELS[c],
            rows.len()
        )));
    }
    let windows = (0..n)
        .map(|w| {
            let chans: Vec<Vec<f32>> = per_channel.iter().map(|rows| rows[w].clone()).collect();
            Window::from_channels(&chans).map_err(|e| CodecError::Input(format!("UCI HAR {split} window {w}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let classes = [
        "WALKING",
        "WALKING_UPSTAIRS",
        "WALKING_DOWNSTAIRS",
        "SITTING",
        "STANDING",
        "LAYING",
    ]
    .map(String::from)
    .to_vec();
    Ok(Labelled {
        windows,
        labels,
        classes,
    })
}

/// Reads a UCR/UEA `.ts` file: one window per series (dimensions become channels), labels in
/// order of first appearance in `@classLabel` (or of appearance in the data).
pub fn load_ts(path: &Path) -> Result<Labelled, CodecError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let mut out = Labelled::default();
    let mut data = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim().trim_start_matches('\u{feff}');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !data {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("@classlabel") {
                let mut it = line.split_whitespace().skip(1);
                if it.next().is_some_and(|t| t.eq_ignore_ascii_case("true")) {
                    out.classes = it.map(String::from).collect();
                }
            } else if lower.starts_with("@data") {
                data = true;
            }
            continue;
        }
        let dims: Vec<&str> = line.split(':').collect();
        let (label, dims) = dims.split_last().ok_or_else(|| bad(path, i, "empty series"))?;
        let label = label.trim();
        let class = match out.classes.iter().position(|c| c == label) {
            Some(k) => k,
            None => {
                out.classes.push(label.to_string());
                out.classes.len() - 1
            }
        };
        let chans = dims
            .iter()
            .map(|d| {
                d.split(',')
                    .map(|t| {
                        t.trim()
                            .parse::<f32>()
                            .map_err(|_| bad(path, i, format!("`{t}` is not a number")))
                    })
                    .collect::<Result<Vec<f32>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let w = Window::from_channels(&chans).map_err(|e| bad(path, i, e))?;
        out.windows.push(w);
        out.labels
            .push(u8::try_from(class).map_err(|_| bad(path, i, "more than 256 classes"))?);
    }
    if !data {
        return Err(CodecError::Input(format!("{}: no @data section", path.display())));
    }
    Ok(out)
}
