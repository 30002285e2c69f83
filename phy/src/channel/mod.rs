//! Channel models: composable, seeded, reproducible impairments on complex baseband.
//!
//! Every model implements [`Impairment`], processes a stream in blocks of any size, and keeps
//! its state between blocks; chaining models with [`Chain`] applies them in order. Random models
//! take a seed and give the same output for the same seed and input, however it is chunked.
//!
//! **SNR** (one definition for the whole project): the mean power per sample of the transmitted
//! burst divided by the complex noise power per sample. Multipath and fading taps are normalised
//! to unit total average power, so the SNR is also the average received SNR. Use
//! [`burst_power`] on the burst and [`Awgn::for_snr`].

mod fading;
mod impairments;

pub use fading::{Fading, FadingSpec};
pub use impairments::{Awgn, Cfo, IqImbalance, Multipath, PhaseNoise, TimingOffset};

use num_complex::Complex32;

/// A channel impairment working on a stream.
pub trait Impairment: Send {
    /// Processes `input` and appends the output to `out`. Most models give one output sample
    /// per input sample; a sampling-rate offset gives slightly more or fewer.
    fn process(&mut self, input: &[Complex32], out: &mut Vec<Complex32>);

    /// Short description for logs and reports.
    fn describe(&self) -> String;
}

/// Mean power per sample of `burst` (0 for an empty burst).
pub fn burst_power(burst: &[Complex32]) -> f64 {
    if burst.is_empty() {
        return 0.0;
    }
    burst.iter().map(|s| f64::from(s.norm_sqr())).sum::<f64>() / burst.len() as f64
}

/// Impairments applied one after another.
#[derive(Default)]
pub struct Chain {
    stages: Vec<Box<dyn Impairment>>,
    scratch: [Vec<Complex32>; 2],
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("stages", &self.describe()).finish()
    }
}

impl Chain {
    /// An empty chain (identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a stage.
    pub fn push(&mut self, stage: impl Impairment + 'static) -> &mut Self {
        self.stages.push(Box::new(stage));
        self
    }

    /// Appends a boxed stage.
    pub fn push_boxed(&mut self, stage: Box<dyn Impairment>) -> &mut Self {
        self.stages.push(stage);
        self
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// True when there are no stages.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }
}

impl Impairment for Chain {
    fn process(&mut self, input: &[Complex32], out: &mut Vec<Complex32>) {
        if self.stages.is_empty() {
            out.extend_from_slice(input);
            return;
        }
        let [a, b] = &mut self.scratch;
        a.clear();
        a.extend_from_slice(input);
        let last = self.stages.len() - 1;
        for (i, stage) in self.stages.iter_mut().enumerate() {
            if i == last {
                stage.process(a, out);
            } else {
                b.clear();
                stage.process(a, b);
                std::mem::swap(a, b);
            }
        }
    }

    fn describe(&self) -> String {
        if self.stages.is_empty() {
            return "identity".into();
        }
        self.stages.iter().map(|s| s.describe()).collect::<Vec<_>>().join(" → ")
    }
}
