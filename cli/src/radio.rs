//! Radio options shared by `tx`, `rx` and `probe`, opening the radio they name, and Ctrl-C.

use crate::units;
use anyhow::{bail, Result};
use clap::Args;
use semcom_transport::radio::udp::{UdpConfig, UdpRadio};
use semcom_transport::radio::{Radio, ReaderThread};
use semcom_transport::IqFormat;
use std::sync::atomic::{AtomicBool, Ordering};

/// A radio: a SoapySDR device (`-a`) or a UDP virtual radio (`--udp`), and its settings.
#[derive(Args, Debug, Clone, Default)]
pub struct RadioArgs {
    /// SoapySDR device arguments, e.g. driver=hackrf, driver=uhd,serial=… (see `semcom probe`).
    #[arg(short = 'a', long = "device", value_name = "ARGS")]
    pub device: Option<String>,
    /// IQ over UDP, a virtual radio: rx listens on HOST:PORT, tx sends to HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "device")]
    pub udp: Option<String>,
    /// Centre frequency, Hz (suffixes k, M, G: 2.45G).
    #[arg(short = 'f', long = "freq", value_parser = units::si_number, value_name = "HZ")]
    pub frequency: Option<f64>,
    /// Sample rate, S/s (suffixes k, M, G). Default 20M (the 802.11a/g numerology).
    #[arg(short = 's', long = "sample-rate", value_parser = units::positive, value_name = "RATE")]
    pub sample_rate: Option<f64>,
    /// Gain, dB: overall (40) or per element (LNA=20,VGA=30). SoapySDR devices only.
    #[arg(short = 'g', long, value_parser = parse_gain, allow_hyphen_values = true)]
    pub gain: Option<GainArg>,
    /// Analog filter bandwidth, Hz (suffixes k, M). SoapySDR devices only.
    #[arg(long, value_parser = units::positive, value_name = "HZ")]
    pub bandwidth: Option<f64>,
    /// Antenna name (see `semcom probe`). SoapySDR devices only.
    #[arg(long)]
    pub antenna: Option<String>,
    /// Channel of a multi-channel device. SoapySDR devices only.
    #[arg(long, default_value_t = 0)]
    pub channel: usize,
}

/// `-g`: an overall gain or gains per element.
#[derive(Clone, Debug, PartialEq)]
pub enum GainArg {
    /// Overall, dB.
    Overall(f64),
    /// (element, dB) pairs.
    Elements(Vec<(String, f64)>),
}

/// Parses `40`, `-5.5` or `LNA=20,VGA=30`.
pub fn parse_gain(s: &str) -> Result<GainArg> {
    if !s.contains('=') {
        let g: f64 = s
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("gain `{s}` is not a number of dB (or NAME=dB,NAME=dB)"))?;
        if !g.is_finite() {
            bail!("gain `{s}` is not finite");
        }
        return Ok(GainArg::Overall(g));
    }
    let mut v = Vec::new();
    for part in s.split(',') {
        let Some((k, x)) = part.split_once('=') else {
            bail!("gain `{s}`: `{part}` is not NAME=dB");
        };
        let g: f64 = x
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("gain `{s}`: `{x}` is not a number of dB"))?;
        if k.trim().is_empty() || !g.is_finite() {
            bail!("gain `{s}`: `{part}` is not NAME=dB");
        }
        v.push((k.trim().to_string(), g));
    }
    Ok(GainArg::Elements(v))
}

/// Which way a radio streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    Rx,
    Tx,
}

impl RadioArgs {
    /// True when a live radio (device or UDP) is named.
    pub fn is_live(&self) -> bool {
        self.device.is_some() || self.udp.is_some()
    }

    /// The sample rate asked for (positive: see [`units::positive`]), or 20 MS/s.
    pub fn rate(&self) -> f64 {
        self.sample_rate.unwrap_or(semcom_phy::ofdm::SAMPLE_RATE_HZ)
    }

    /// Refuses device-only settings when the radio is not a SoapySDR device.
    pub fn check_device_only(&self) -> Result<()> {
        if self.device.is_none() {
            for (set, name) in [
                (self.gain.is_some(), "-g/--gain"),
                (self.bandwidth.is_some(), "--bandwidth"),
                (self.antenna.is_some(), "--antenna"),
                (self.channel != 0, "--channel"),
            ] {
                if set {
                    bail!("{name} applies to SoapySDR devices (-a ARGS)");
                }
            }
        }
        Ok(())
    }

    /// Opens the live radio these options name, streaming `way`. `udp_format` is the sample
    /// format a UDP sender uses.
    pub fn open(&self, way: Way, udp_format: IqFormat) -> Result<Box<dyn Radio>> {
        self.check_device_only()?;
        let rate = self.rate();
        if let Some(addr) = &self.udp {
            let cfg = UdpConfig {
                sample_rate_hz: rate,
                format: udp_format,
                ..UdpConfig::default()
            };
            return Ok(match way {
                // The socket is drained on its own thread, so a moment of slow decoding is not a
                // burst of lost datagrams.
                Way::Rx => Box::new(ReaderThread::spawn(UdpRadio::listen(addr, cfg)?, 1 << 14, 64)),
                Way::Tx => Box::new(UdpRadio::send_to(addr, cfg)?),
            });
        }
        match &self.device {
            Some(args) => open_soapy(self, args, way, rate),
            None => bail!("no radio: give -a DEVICE-ARGS or --udp HOST:PORT"),
        }
    }
}

#[cfg(feature = "soapy")]
fn open_soapy(a: &RadioArgs, args: &str, way: Way, rate: f64) -> Result<Box<dyn Radio>> {
    use semcom_transport::radio::soapy::{Gain, SoapyConfig, SoapyRadio, Stream};
    let mut cfg = SoapyConfig::new(args);
    cfg.channel = a.channel;
    cfg.sample_rate_hz = rate;
    cfg.frequency_hz = a.frequency;
    cfg.bandwidth_hz = a.bandwidth;
    cfg.antenna = a.antenna.clone();
    cfg.gain = a.gain.clone().map(|g| match g {
        GainArg::Overall(x) => Gain::Overall(x),
        GainArg::Elements(v) => Gain::Elements(v),
    });
    let stream = match way {
        Way::Rx => Stream::Rx,
        Way::Tx => Stream::Tx,
    };
    Ok(Box::new(SoapyRadio::open(&cfg, stream)?))
}

#[cfg(not(feature = "soapy"))]
fn open_soapy(_: &RadioArgs, _: &str, _: Way, _: f64) -> Result<Box<dyn Radio>> {
    bail!("{NO_SOAPY}")
}

/// What a build without the `soapy` feature says when asked for a device.
#[cfg(not(feature = "soapy"))]
pub const NO_SOAPY: &str = "this semcom was built without SoapySDR support (cargo feature `soapy` is off), so it cannot open -a devices; install libsoapysdr-dev and rebuild with `cargo build --release -p semcom-cli --features soapy`. UDP radios (--udp) and files work without it";

static STOP: AtomicBool = AtomicBool::new(false);

/// Makes Ctrl-C (and SIGTERM) ask the running command to stop: it finishes what it holds
/// (recordings, summaries) and exits. A second Ctrl-C exits at once.
pub fn install_stop_handler() {
    let r = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without cleaning up");
            std::process::exit(130);
        }
    });
    if let Err(e) = r {
        tracing::warn!("cannot catch Ctrl-C: {e}");
    }
}

/// True once Ctrl-C was pressed.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// CPU time of this thread so far, seconds (Linux; `None` elsewhere).
pub fn thread_cpu_seconds() -> Option<f64> {
    // /proc/thread-self/schedstat: time on CPU (ns), wait time, timeslices.
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Refuses an output file that is the input file (or either file of its SigMF pair, through any
/// link): creating the output would truncate the samples before they are read.
pub fn refuse_overwriting(input: &std::path::Path, output: &std::path::Path) -> Result<()> {
    let files = |p: &std::path::Path| match semcom_transport::sigmf::pair_paths(p) {
        Some((meta, data)) => vec![meta, data],
        None => vec![p.to_path_buf()],
    };
    for i in files(input) {
        let Ok(im) = std::fs::metadata(&i) else { continue };
        for o in files(output) {
            if std::fs::metadata(&o).is_ok_and(|om| same_file(&im, &om)) {
                bail!(
                    "the output {} is the input {}: writing it would destroy the samples before they are read",
                    o.display(),
                    i.display()
                );
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok() && a.created().ok() == b.created().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gains() {
        assert_eq!(parse_gain("40").unwrap(), GainArg::Overall(40.0));
        assert_eq!(parse_gain("-3.5").unwrap(), GainArg::Overall(-3.5));
        assert_eq!(
            parse_gain("LNA=20, VGA=30").unwrap(),
            GainArg::Elements(vec![("LNA".into(), 20.0), ("VGA".into(), 30.0)])
        );
        for bad in ["loud", "LNA=", "=3", "LNA=20,VGA", "nan", "LNA=inf"] {
            assert!(parse_gain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_time_is_measured() {
        let a = thread_cpu_seconds();
        if let Some(a) = a {
            let mut x = 0u64;
            for i in 0..5_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            assert!(thread_cpu_seconds().unwrap() >= a);
        }
    }

    #[test]
    fn an_output_that_is_the_input_is_refused() {
        let dir = std::env::temp_dir().join(format!("semcom-overwrite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("a.cf32");
        std::fs::write(&raw, [0u8; 16]).unwrap();
        std::fs::write(dir.join("b.sigmf-meta"), "{}").unwrap();
        std::fs::write(dir.join("b.sigmf-data"), [0u8; 16]).unwrap();
        // The same file by another spelling, the other file of a SigMF pair, a link.
        assert!(refuse_overwriting(&raw, &dir.join(".").join("a.cf32")).is_err());
        assert!(refuse_overwriting(&dir.join("b.sigmf-meta"), &dir.join("b.sigmf-data")).is_err());
        assert!(refuse_overwriting(&dir.join("b.sigmf-data"), &dir.join("b.sigmf")).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&raw, dir.join("l.cf32")).unwrap();
            assert!(refuse_overwriting(&raw, &dir.join("l.cf32")).is_err());
        }
        // Another file, or one that does not exist yet, is fine.
        assert!(refuse_overwriting(&raw, &dir.join("c.cf32")).is_ok());
        assert!(refuse_overwriting(&raw, &dir.join("b.sigmf-data")).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
