//! A window of a multichannel time series: `channels` channels of `len` samples each, stored
//! channel after channel (`samples[c * len + i]`). Construction checks everything the codecs rely
//! on, so a [`Window`] always holds at least one finite sample per channel.

use crate::CodecError;

/// Most channels a window may declare.
pub const MAX_CHANNELS: usize = 256;
/// Most samples per channel.
pub const MAX_LEN: usize = 1 << 20;

/// One window of samples (f32, channel-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    channels: usize,
    len: usize,
    samples: Vec<f32>,
}

impl Window {
    /// A window of `channels` × `len` samples given channel after channel.
    ///
    /// Errors: no channel or no sample (empty window), more than [`MAX_CHANNELS`] channels or
    /// [`MAX_LEN`] samples, a sample count that is not `channels × len`, or a NaN/infinite sample
    /// (named by channel and index).
    pub fn new(channels: usize, len: usize, samples: Vec<f32>) -> Result<Self, CodecError> {
        if channels == 0 || len == 0 {
            return Err(CodecError::Input(format!(
                "empty sensor window ({channels} channel(s) × {len} sample(s))"
            )));
        }
        if channels > MAX_CHANNELS || len > MAX_LEN {
            return Err(CodecError::Input(format!(
                "sensor window of {channels} channels × {len} samples exceeds {MAX_CHANNELS} × {MAX_LEN}"
            )));
        }
        if samples.len() != channels * len {
            return Err(CodecError::Input(format!(
                "sensor window declares {channels} × {len} samples but holds {}",
                samples.len()
            )));
        }
        if let Some(k) = samples.iter().position(|x| !x.is_finite()) {
            return Err(CodecError::Input(format!(
                "sample {} of channel {} is {} (only finite samples can be coded)",
                k % len,
                k / len,
                samples[k]
            )));
        }
        Ok(Self { channels, len, samples })
    }

    /// A window from one vector per channel (all of the same length).
    pub fn from_channels(channels: &[Vec<f32>]) -> Result<Self, CodecError> {
        let len = channels.first().map_or(0, Vec::len);
        if let Some((c, ch)) = channels.iter().enumerate().find(|(_, ch)| ch.len() != len) {
            return Err(CodecError::Input(format!(
                "channel {c} has {} samples but channel 0 has {len}",
                ch.len()
            )));
        }
        Self::new(channels.len(), len, channels.concat())
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Samples per channel.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a window holds at least one sample (kept for API symmetry).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples of channel `c`.
    ///
    /// # Panics
    /// If `c >= channels()`.
    pub fn channel(&self, c: usize) -> &[f32] {
        &self.samples[c * self.len..(c + 1) * self.len]
    }

    /// Every sample, channel after channel.
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// Size of the window as raw little-endian f32 samples, bytes.
    pub fn raw_bytes(&self) -> usize {
        4 * self.samples.len()
    }

    /// The window as raw little-endian f32 samples (channel-major).
    pub fn to_le_bytes(&self) -> Vec<u8> {
        self.samples.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

/// Per-channel error of `decoded` against `original`: root-mean-square error divided by `scale[c]`
/// (NRMSE as a fraction).
pub fn nrmse(original: &Window, decoded: &Window, scale: &[f32]) -> Vec<f64> {
    (0..original.channels())
        .map(|c| {
            let se: f64 = original
                .channel(c)
                .iter()
                .zip(decoded.channel(c))
                .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                .sum();
            (se / original.len() as f64).sqrt() / f64::from(scale[c])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_windows_are_refused_with_a_reason() {
        let e = Window::new(0, 128, vec![]).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = Window::new(3, 0, vec![]).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = Window::new(2, 3, vec![0.0; 5]).unwrap_err().to_string();
        assert!(e.contains("holds 5"), "{e}");
        let mut v = vec![0.5; 6];
        v[4] = f32::NAN;
        let e = Window::new(2, 3, v.clone()).unwrap_err().to_string();
        assert!(e.contains("sample 1 of channel 1 is NaN"), "{e}");
        v[4] = f32::NEG_INFINITY;
        let e = Window::new(2, 3, v).unwrap_err().to_string();
        assert!(e.contains("-inf"), "{e}");
        let e = Window::from_channels(&[vec![1.0, 2.0], vec![1.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("channel 1 has 1"), "{e}");
        let w = Window::from_channels(&[vec![1.0, 2.0], vec![3.0, 4.0]]).unwrap();
        assert_eq!((w.channels(), w.len(), w.channel(1)), (2, 2, &[3.0f32, 4.0][..]));
    }
}
