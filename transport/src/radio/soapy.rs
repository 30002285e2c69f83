//! The soapy backend: SoapySDR devices (HackRF, LimeSDR, USRP, PlutoSDR, bladeRF, RTL-SDR …)
//! through the `soapysdr` crate. Cargo feature `soapy`; needs the SoapySDR library
//! (`libsoapysdr-dev` on Debian/Ubuntu) and the device's SoapySDR module.
//!
//! A device is chosen by an argument string (`driver=hackrf,serial=…`): none matching and
//! several matching are errors that list the devices. Every setting is checked against the
//! ranges the device reports before it is applied, so an unsupported sample rate, frequency,
//! gain, antenna, bandwidth or channel is an error that says what the device supports.
//! Overflows, underflows, timeouts and late bursts are counted; a device that keeps failing or
//! stops delivering samples is [`TransportError::DeviceLost`].

use super::{si, Radio, RadioInfo, RadioStats, RxRead};
use crate::TransportError;
use num_complex::Complex32;
use serde::Serialize;
use soapysdr::{Args, Device, Direction, ErrorCode, RxStream, TxStream};
use std::time::{Duration, Instant};

/// A gain setting.
#[derive(Clone, Debug, PartialEq)]
pub enum Gain {
    /// Overall gain, dB, distributed over the elements by the driver.
    Overall(f64),
    /// Gain per named element (`LNA`, `VGA`, `PGA` …), dB.
    Elements(Vec<(String, f64)>),
}

/// How to open and set up a device.
#[derive(Clone, Debug, PartialEq)]
pub struct SoapyConfig {
    /// Device selection, SoapySDR key=value pairs separated by commas.
    pub args: String,
    /// Channel index.
    pub channel: usize,
    /// Sample rate, S/s.
    pub sample_rate_hz: f64,
    /// Centre frequency, Hz (left as the device has it when `None`).
    pub frequency_hz: Option<f64>,
    /// Gain (left as the device has it when `None`).
    pub gain: Option<Gain>,
    /// Analog filter bandwidth, Hz (the driver's choice when `None`).
    pub bandwidth_hz: Option<f64>,
    /// Antenna name (the driver's default when `None`).
    pub antenna: Option<String>,
    /// Longest wait in one read or write.
    pub timeout: Duration,
    /// A receive stream that delivers nothing for this long is a lost device.
    pub stall_timeout: Duration,
}

impl SoapyConfig {
    /// Defaults for `args`: channel 0, 20 MS/s, 100 ms timeouts, 3 s stall limit.
    pub fn new(args: &str) -> Self {
        Self {
            args: args.to_string(),
            channel: 0,
            sample_rate_hz: semcom_phy::ofdm::SAMPLE_RATE_HZ,
            frequency_hz: None,
            gain: None,
            bandwidth_hz: None,
            antenna: None,
            timeout: Duration::from_millis(100),
            stall_timeout: Duration::from_secs(3),
        }
    }
}

/// Which stream to open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Receive.
    Rx,
    /// Transmit.
    Tx,
}

/// Consecutive failed stream calls (other than overflow, underflow, timeout) that mean the
/// device is gone.
const MAX_CONSECUTIVE_ERRORS: u32 = 3;

fn args_string(a: &Args) -> String {
    a.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Parses `key=value,key=value`, refusing entries without `=` (which SoapySDR would drop
/// silently, matching every device).
pub fn parse_args(args: &str) -> Result<Args, TransportError> {
    let mut a = Args::new();
    for part in args.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(TransportError::Address {
                addr: args.to_string(),
                reason: format!(
                    "device arguments are key=value pairs separated by commas (e.g. driver=hackrf,serial=…); `{part}` has no `=`"
                ),
            });
        };
        if k.trim().is_empty() {
            return Err(TransportError::Address {
                addr: args.to_string(),
                reason: format!("`{part}` has an empty key"),
            });
        }
        a.set(k.trim(), v.trim());
    }
    Ok(a)
}

fn dev_err(device: &str, op: &str, e: soapysdr::Error) -> TransportError {
    TransportError::Device {
        device: device.to_string(),
        op: op.to_string(),
        message: e.message,
    }
}

/// The devices matching `args`, as argument strings (SoapySDR's enumeration).
pub fn enumerate(args: &str) -> Result<Vec<String>, TransportError> {
    let a = parse_args(args)?;
    let found = soapysdr::enumerate(a).map_err(|e| dev_err(args, "enumerating devices", e))?;
    Ok(found.iter().map(args_string).collect())
}

/// Opens the one device matching `args`.
fn open_device(args: &str) -> Result<(Device, String), TransportError> {
    let user = parse_args(args)?;
    let found = soapysdr::enumerate(parse_args(args)?).map_err(|e| dev_err(args, "enumerating devices", e))?;
    match found.len() {
        0 => {
            let available = soapysdr::enumerate("")
                .map(|v| v.iter().map(args_string).collect())
                .unwrap_or_default();
            return Err(TransportError::NoDevice {
                args: args.to_string(),
                available,
            });
        }
        1 => {}
        _ => {
            return Err(TransportError::AmbiguousDevice {
                args: args.to_string(),
                matches: found.iter().map(args_string).collect(),
            })
        }
    }
    // The enumeration result identifies the device; the user's other keys (driver options)
    // ride along, as SoapySDR's own factory does.
    let mut merged = Args::new();
    for (k, v) in found[0].iter() {
        merged.set(k, v);
    }
    for (k, v) in user.iter() {
        if merged.get(k).is_none() {
            merged.set(k, v);
        }
    }
    let name = args_string(&merged);
    let dev = Device::new(merged).map_err(|e| dev_err(&name, "opening the device", e))?;
    Ok((dev, name))
}

fn ranges_text(r: &[soapysdr::Range], unit: &str) -> String {
    if r.is_empty() {
        return "none reported".into();
    }
    r.iter()
        .map(|x| {
            if x.minimum == x.maximum {
                si(x.minimum, unit)
            } else {
                format!("{} … {}", si(x.minimum, unit), si(x.maximum, unit))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn in_ranges(r: &[soapysdr::Range], v: f64) -> bool {
    // A relative tolerance: drivers report ranges such as 61.44e6 computed in floating point.
    r.iter()
        .any(|x| v >= x.minimum * (1.0 - 1e-9) - 1e-9 && v <= x.maximum * (1.0 + 1e-9) + 1e-9)
}

enum Streams {
    Rx(RxStream<Complex32>),
    Tx(TxStream<Complex32>),
}

/// A SoapySDR device with one stream (receive or transmit) running.
pub struct SoapyRadio {
    device: Device,
    stream: Streams,
    info: RadioInfo,
    timeout_us: i64,
    stall_timeout: Duration,
    mtu: usize,
    stats: RadioStats,
    consecutive_errors: u32,
    last_samples: Instant,
    tx_started: Option<Instant>,
    in_burst: bool,
    finished: bool,
    /// The stream is started by the first read or write, not by `open`: a receive stream
    /// started early overflows while the caller is still setting up.
    active: bool,
}

impl std::fmt::Debug for SoapyRadio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoapyRadio")
            .field("info", &self.info)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl SoapyRadio {
    /// Opens the device matching `cfg.args`, checks and applies every setting, and sets up a
    /// `stream` (receive or transmit) of complex f32 samples, started by the first read or write.
    pub fn open(cfg: &SoapyConfig, stream: Stream) -> Result<Self, TransportError> {
        let (dev, name) = open_device(&cfg.args)?;
        let dir = match stream {
            Stream::Rx => Direction::Rx,
            Stream::Tx => Direction::Tx,
        };
        let dname = match stream {
            Stream::Rx => "receive",
            Stream::Tx => "transmit",
        };
        let unsupported = |what: String| TransportError::Unsupported {
            device: name.clone(),
            what,
        };
        let de = |op: &str| {
            let name = name.clone();
            let op = op.to_string();
            move |e: soapysdr::Error| dev_err(&name, &op, e)
        };
        let ch = cfg.channel;
        let n_ch = dev.num_channels(dir).map_err(de("listing channels"))?;
        if ch >= n_ch {
            return Err(unsupported(format!(
                "channel {ch}: the device has {n_ch} {dname} channel(s) (0 … {})",
                n_ch.saturating_sub(1)
            )));
        }
        let rates = dev.get_sample_rate_range(dir, ch).map_err(de("reading sample rates"))?;
        if !(cfg.sample_rate_hz.is_finite() && cfg.sample_rate_hz > 0.0 && in_ranges(&rates, cfg.sample_rate_hz)) {
            return Err(unsupported(format!(
                "sample rate {} is not supported for {dname} (supported: {})",
                si(cfg.sample_rate_hz, "S/s"),
                ranges_text(&rates, "S/s")
            )));
        }
        dev.set_sample_rate(dir, ch, cfg.sample_rate_hz)
            .map_err(de("setting the sample rate"))?;
        let actual_rate = dev.sample_rate(dir, ch).unwrap_or(cfg.sample_rate_hz);
        if (actual_rate - cfg.sample_rate_hz).abs() > 1e-6 * cfg.sample_rate_hz {
            tracing::warn!(
                "{name}: asked for {}, the device runs at {}",
                si(cfg.sample_rate_hz, "S/s"),
                si(actual_rate, "S/s")
            );
        }
        if let Some(f) = cfg.frequency_hz {
            let fr = dev.frequency_range(dir, ch).map_err(de("reading frequency ranges"))?;
            if !f.is_finite() || (!fr.is_empty() && !in_ranges(&fr, f)) {
                return Err(unsupported(format!(
                    "frequency {} is out of the {dname} range ({})",
                    si(f, "Hz"),
                    ranges_text(&fr, "Hz")
                )));
            }
            dev.set_frequency(dir, ch, f, ()).map_err(de("tuning"))?;
        }
        if let Some(a) = &cfg.antenna {
            let list = dev.antennas(dir, ch).map_err(de("listing antennas"))?;
            if !list.iter().any(|x| x == a) {
                return Err(unsupported(format!(
                    "no {dname} antenna `{a}` (antennas: {})",
                    list.join(", ")
                )));
            }
            dev.set_antenna(dir, ch, a.as_str())
                .map_err(de("selecting the antenna"))?;
        }
        match &cfg.gain {
            None => {}
            Some(Gain::Overall(g)) => {
                let r = dev.gain_range(dir, ch).map_err(de("reading the gain range"))?;
                if !g.is_finite() || *g < r.minimum - 1e-9 || *g > r.maximum + 1e-9 {
                    return Err(unsupported(format!(
                        "{dname} gain {g} dB is out of range ({} … {} dB)",
                        r.minimum, r.maximum
                    )));
                }
                dev.set_gain(dir, ch, *g).map_err(de("setting the gain"))?;
            }
            Some(Gain::Elements(list)) => {
                let names = dev.list_gains(dir, ch).map_err(de("listing gain elements"))?;
                for (el, g) in list {
                    if !names.contains(el) {
                        return Err(unsupported(format!(
                            "no {dname} gain element `{el}` (elements: {})",
                            names.join(", ")
                        )));
                    }
                    let r = dev
                        .gain_element_range(dir, ch, el.as_str())
                        .map_err(de("reading a gain range"))?;
                    if !g.is_finite() || *g < r.minimum - 1e-9 || *g > r.maximum + 1e-9 {
                        return Err(unsupported(format!(
                            "{dname} gain {el}={g} dB is out of range ({} … {} dB)",
                            r.minimum, r.maximum
                        )));
                    }
                    dev.set_gain_element(dir, ch, el.as_str(), *g)
                        .map_err(de("setting a gain element"))?;
                }
            }
        }
        if let Some(bw) = cfg.bandwidth_hz {
            let r = dev.bandwidth_range(dir, ch).map_err(de("reading bandwidths"))?;
            if !bw.is_finite() || (!r.is_empty() && !in_ranges(&r, bw)) {
                return Err(unsupported(format!(
                    "bandwidth {} is not supported for {dname} (supported: {})",
                    si(bw, "Hz"),
                    ranges_text(&r, "Hz")
                )));
            }
            dev.set_bandwidth(dir, ch, bw).map_err(de("setting the bandwidth"))?;
        }
        let formats = dev.stream_formats(dir, ch).map_err(de("listing stream formats"))?;
        if !formats.contains(&soapysdr::Format::CF32) {
            return Err(unsupported(format!(
                "the device does not stream complex f32 (formats: {})",
                formats.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        let (stream, mtu) = match stream {
            Stream::Rx => {
                let s = dev.rx_stream::<Complex32>(&[ch]).map_err(de("setting up the stream"))?;
                let mtu = s.mtu().unwrap_or(1 << 14);
                (Streams::Rx(s), mtu)
            }
            Stream::Tx => {
                let s = dev.tx_stream::<Complex32>(&[ch]).map_err(de("setting up the stream"))?;
                let mtu = s.mtu().unwrap_or(1 << 14);
                (Streams::Tx(s), mtu)
            }
        };
        let hardware = dev
            .hardware_key()
            .ok()
            .filter(|s| !s.is_empty())
            .or_else(|| dev.driver_key().ok());
        let timestamps = dev.has_hardware_time(None).unwrap_or(false);
        let frequency_hz = dev.frequency(dir, ch).ok().filter(|f| *f > 0.0).or(cfg.frequency_hz);
        Ok(Self {
            info: RadioInfo {
                name: format!("soapy {name}"),
                hardware,
                sample_rate_hz: actual_rate,
                frequency_hz,
                timestamps,
                realtime: true,
            },
            device: dev,
            stream,
            timeout_us: cfg.timeout.as_micros().clamp(1, i64::MAX as u128) as i64,
            stall_timeout: cfg.stall_timeout,
            mtu: mtu.max(1),
            stats: RadioStats::default(),
            consecutive_errors: 0,
            last_samples: Instant::now(),
            tx_started: None,
            in_burst: false,
            finished: false,
            active: false,
        })
    }

    /// The device, for settings this type does not wrap.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The stream's transfer size, samples.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    fn lost(&self, reason: String) -> TransportError {
        TransportError::DeviceLost {
            device: self.info.name.clone(),
            samples: self.stats.samples_read + self.stats.samples_written,
            reason,
        }
    }

    fn ensure_active(&mut self) -> Result<(), TransportError> {
        if self.active {
            return Ok(());
        }
        let r = match &mut self.stream {
            Streams::Rx(s) => s.activate(None),
            Streams::Tx(s) => s.activate(None),
        };
        r.map_err(|e| dev_err(&self.info.name, "starting the stream", e))?;
        self.active = true;
        self.last_samples = Instant::now();
        Ok(())
    }

    /// Counts a failed stream call; too many in a row is a lost device.
    fn stream_error(&mut self, e: soapysdr::Error) -> Result<(), TransportError> {
        self.consecutive_errors += 1;
        self.stats.errors += 1;
        if self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            let reason = if e.message.is_empty() {
                format!("{:?}", e.code)
            } else {
                format!("{:?}: {}", e.code, e.message)
            };
            return Err(self.lost(reason));
        }
        std::thread::sleep(Duration::from_millis(10));
        Ok(())
    }

    /// Collects transmit status reports (underflows, late bursts) without waiting.
    fn drain_tx_status(&mut self) {
        let Streams::Tx(s) = &mut self.stream else { return };
        for _ in 0..64 {
            let (mut mask, mut flags, mut t) = (0usize, 0i32, 0i64);
            match s.read_status(&mut mask, &mut flags, &mut t, 0) {
                Ok(_) => {}
                Err(e) => match e.code {
                    ErrorCode::Underflow => self.stats.underflows += 1,
                    ErrorCode::TimeError => self.stats.late += 1,
                    ErrorCode::Timeout | ErrorCode::NotSupported => return,
                    _ => {
                        self.stats.errors += 1;
                        return;
                    }
                },
            }
        }
    }

    fn not(&self, what: &str) -> TransportError {
        TransportError::NotSupported {
            radio: self.info.name.clone(),
            reason: format!("opened for the other direction; it does not {what}"),
        }
    }
}

impl Radio for SoapyRadio {
    fn info(&self) -> &RadioInfo {
        &self.info
    }

    fn read(&mut self, out: &mut Vec<Complex32>, max: usize) -> Result<RxRead, TransportError> {
        let Streams::Rx(_) = &self.stream else {
            return Err(self.not("receive"));
        };
        self.ensure_active()?;
        let want = max.clamp(1, self.mtu.max(1) * 8);
        let start = out.len();
        out.resize(start + want, Complex32::new(0.0, 0.0));
        loop {
            let Streams::Rx(s) = &mut self.stream else {
                unreachable!("checked above")
            };
            let r = s.read(&mut [&mut out[start..]], self.timeout_us);
            let time_ns = self.info.timestamps.then(|| s.time_ns());
            match r {
                Ok(n) => {
                    out.truncate(start + n);
                    self.consecutive_errors = 0;
                    if n == 0 {
                        self.stats.timeouts += 1;
                        return Ok(RxRead::Timeout);
                    }
                    self.last_samples = Instant::now();
                    self.stats.samples_read += n as u64;
                    return Ok(RxRead::Samples { count: n, time_ns });
                }
                Err(e) => match e.code {
                    ErrorCode::Overflow => {
                        self.stats.overflows += 1;
                        self.consecutive_errors = 0;
                    }
                    ErrorCode::Timeout => {
                        out.truncate(start);
                        self.stats.timeouts += 1;
                        if self.last_samples.elapsed() > self.stall_timeout {
                            return Err(self.lost(format!(
                                "no samples for {:.1} s",
                                self.last_samples.elapsed().as_secs_f64()
                            )));
                        }
                        return Ok(RxRead::Timeout);
                    }
                    ErrorCode::Corruption => self.stats.errors += 1,
                    _ => {
                        if let Err(lost) = self.stream_error(e) {
                            out.truncate(start);
                            return Err(lost);
                        }
                    }
                },
            }
        }
    }

    fn write(&mut self, samples: &[Complex32]) -> Result<(), TransportError> {
        if self.finished {
            return Err(self.not("transmit after finish"));
        }
        let Streams::Tx(_) = &self.stream else {
            return Err(self.not("transmit"));
        };
        self.ensure_active()?;
        self.tx_started.get_or_insert_with(Instant::now);
        self.in_burst = true;
        let mut rest = samples;
        while !rest.is_empty() {
            let n = rest.len().min(self.mtu);
            let Streams::Tx(s) = &mut self.stream else {
                unreachable!("checked above")
            };
            match s.write(&[&rest[..n]], None, false, self.timeout_us) {
                Ok(k) => {
                    self.consecutive_errors = 0;
                    self.stats.samples_written += k as u64;
                    rest = &rest[k..];
                    if k == 0 {
                        self.stats.timeouts += 1;
                    }
                }
                Err(e) => match e.code {
                    ErrorCode::Timeout => self.stats.timeouts += 1,
                    ErrorCode::Underflow => self.stats.underflows += 1,
                    ErrorCode::TimeError => self.stats.late += 1,
                    _ => self.stream_error(e)?,
                },
            }
        }
        self.drain_tx_status();
        Ok(())
    }

    fn end_burst(&mut self) -> Result<(), TransportError> {
        if !self.in_burst {
            return Ok(());
        }
        // A short run of zeros carries the end-of-burst flag: some drivers ignore it on an
        // empty write.
        let zeros = [Complex32::new(0.0, 0.0); 64];
        let Streams::Tx(s) = &mut self.stream else {
            return Ok(());
        };
        match s.write(&[&zeros[..]], None, true, self.timeout_us) {
            Ok(k) => self.stats.samples_written += k as u64,
            Err(e) => match e.code {
                ErrorCode::Timeout => self.stats.timeouts += 1,
                ErrorCode::Underflow => self.stats.underflows += 1,
                _ => self.stream_error(e)?,
            },
        }
        self.in_burst = false;
        self.drain_tx_status();
        Ok(())
    }

    /// For a transmit stream: ends the burst and waits until what was written has played out
    /// at the sample rate (closing earlier would cut the tail off on most devices).
    fn finish(&mut self) -> Result<(), TransportError> {
        if self.finished {
            return Ok(());
        }
        if let Streams::Tx(_) = self.stream {
            self.end_burst()?;
            if let Some(t0) = self.tx_started {
                let airtime = Duration::from_secs_f64(self.stats.samples_written as f64 / self.info.sample_rate_hz);
                let done = t0 + airtime + Duration::from_millis(50);
                let now = Instant::now();
                if done > now {
                    std::thread::sleep((done - now).min(Duration::from_secs(10)));
                }
            }
            self.drain_tx_status();
        }
        self.finished = true;
        Ok(())
    }

    fn stats(&self) -> RadioStats {
        self.stats
    }
}

/// A numeric range as a device reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RangeReport {
    /// Lowest value.
    pub min: f64,
    /// Highest value.
    pub max: f64,
    /// Step (0: continuous).
    pub step: f64,
}

impl From<&soapysdr::Range> for RangeReport {
    fn from(r: &soapysdr::Range) -> Self {
        Self {
            min: r.minimum,
            max: r.maximum,
            step: r.step,
        }
    }
}

/// One channel of one direction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelReport {
    /// `rx` or `tx`.
    pub direction: &'static str,
    /// Channel index.
    pub channel: usize,
    /// Antennas, the current one first.
    pub antennas: Vec<String>,
    /// Overall gain range, dB.
    pub gain: RangeReport,
    /// Gain elements and their ranges, dB.
    pub gain_elements: Vec<(String, RangeReport)>,
    /// Centre frequency ranges, Hz.
    pub frequency: Vec<RangeReport>,
    /// Sample rate ranges, S/s.
    pub sample_rates: Vec<RangeReport>,
    /// Analog bandwidth ranges, Hz.
    pub bandwidths: Vec<RangeReport>,
    /// Stream formats (SoapySDR names, CF32 = complex f32).
    pub formats: Vec<String>,
    /// Native format and its full-scale value.
    pub native_format: Option<(String, f64)>,
    /// Whether the channel streams in both directions at once.
    pub full_duplex: bool,
}

/// What a device says about itself (`semcom probe`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceReport {
    /// Its enumeration arguments (pass them to `-a`).
    pub args: String,
    /// Driver key.
    pub driver: String,
    /// Hardware key.
    pub hardware: String,
    /// Hardware information (serial, firmware …).
    pub hardware_info: Vec<(String, String)>,
    /// Whether it keeps time (timestamped streams).
    pub hardware_time: bool,
    /// Clock sources.
    pub clock_sources: Vec<String>,
    /// Every channel of both directions.
    pub channels: Vec<ChannelReport>,
}

/// Opens every device matching `args` and reports what each supports.
pub fn probe(args: &str) -> Result<Vec<DeviceReport>, TransportError> {
    let found = enumerate(args)?;
    if found.is_empty() {
        let available = enumerate("").unwrap_or_default();
        return Err(TransportError::NoDevice {
            args: args.to_string(),
            available,
        });
    }
    let mut out = Vec::new();
    for a in found {
        let dev = Device::new(parse_args(&a)?).map_err(|e| dev_err(&a, "opening the device", e))?;
        let mut channels = Vec::new();
        for (dir, dname) in [(Direction::Rx, "rx"), (Direction::Tx, "tx")] {
            for ch in 0..dev.num_channels(dir).unwrap_or(0) {
                let mut antennas = dev.antennas(dir, ch).unwrap_or_default();
                if let Ok(cur) = dev.antenna(dir, ch) {
                    if let Some(i) = antennas.iter().position(|x| *x == cur) {
                        antennas[..=i].rotate_right(1);
                    }
                }
                let conv = |v: Vec<soapysdr::Range>| v.iter().map(RangeReport::from).collect::<Vec<_>>();
                let gain_elements = dev
                    .list_gains(dir, ch)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|g| {
                        let r = dev.gain_element_range(dir, ch, g.as_str()).ok()?;
                        Some((g, RangeReport::from(&r)))
                    })
                    .collect();
                channels.push(ChannelReport {
                    direction: dname,
                    channel: ch,
                    antennas,
                    gain: dev
                        .gain_range(dir, ch)
                        .map(|r| RangeReport::from(&r))
                        .unwrap_or(RangeReport {
                            min: 0.0,
                            max: 0.0,
                            step: 0.0,
                        }),
                    gain_elements,
                    frequency: conv(dev.frequency_range(dir, ch).unwrap_or_default()),
                    sample_rates: conv(dev.get_sample_rate_range(dir, ch).unwrap_or_default()),
                    bandwidths: conv(dev.bandwidth_range(dir, ch).unwrap_or_default()),
                    formats: dev
                        .stream_formats(dir, ch)
                        .unwrap_or_default()
                        .iter()
                        .map(|f| f.to_string())
                        .collect(),
                    native_format: dev.native_stream_format(dir, ch).ok().map(|(f, s)| (f.to_string(), s)),
                    full_duplex: dev.full_duplex(dir, ch).unwrap_or(false),
                });
            }
        }
        out.push(DeviceReport {
            driver: dev.driver_key().unwrap_or_default(),
            hardware: dev.hardware_key().unwrap_or_default(),
            hardware_info: dev
                .hardware_info()
                .map(|h| h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
                .unwrap_or_default(),
            hardware_time: dev.has_hardware_time(None).unwrap_or(false),
            clock_sources: dev.list_clock_sources().unwrap_or_default(),
            args: a,
            channels,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_strings_are_checked() {
        assert!(parse_args("driver=hackrf, serial=0x12").is_ok());
        assert!(parse_args("").is_ok());
        let e = parse_args("hackrf").map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("has no `=`"), "{e}");
        assert!(parse_args("=x").map(|_| ()).is_err());
        let a = parse_args("driver=x,serial=y").unwrap();
        assert_eq!(args_string(&a), "driver=x,serial=y");
    }

    #[test]
    fn range_checks() {
        let r = [soapysdr::Range {
            minimum: 1e5,
            maximum: 61.44e6,
            step: 0.0,
        }];
        assert!(in_ranges(&r, 20e6) && in_ranges(&r, 61.44e6) && !in_ranges(&r, 100e6));
        assert_eq!(ranges_text(&r, "S/s"), "100 kS/s … 61.44 MS/s");
    }
}
