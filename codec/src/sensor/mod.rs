//! The sensor codec: windows of multichannel time series (IMU axes, current, power, vibration)
//! sent as meaning, as reconstruction tokens, or losslessly — chosen per window.
//!
//! ```text
//!  Window (channels × len f32) ──┬─ lossless ─── decimal fixed point → prediction → range coder
//!                                ├─ reconstruct ─ per-channel KLT → quantised tokens (rate
//!                                │                control to a target NRMSE) → range coder
//!                                └─ event ────── features → MLP → class, confidence, anomaly
//!                                                 → one byte
//! ```
//!
//! **Payload** (the `payload` of a [`SemanticFrame`](crate::SemanticFrame) of modality
//! `sensor`):
//!
//! | length | content |
//! |---|---|
//! | 1 byte | an [`Event`] token: class (3 bits) · confidence (4 bits) · anomaly (1 bit) |
//! | ≥ 2 bytes | tag `0x01` + lossless stream (carries channels and length) |
//! |  | tag `0x02` + reconstruction stream (shape from the model) |
//! |  | tag `0x03` + event byte + reconstruction stream |
//!
//! Lossless frames need no model; the other modes need the [`SensorModel`] the frame's model id
//! names. [`OnChange`] is the send-on-change-of-meaning policy: an event byte per window, and the
//! reconstruction tokens only when the event changes, is uncertain or anomalous.

pub mod data;
pub mod features;
pub mod gorilla;
pub mod klt;
pub mod lossless;
pub mod model;
pub mod recon;
pub mod train;
mod window;

pub use model::{Assessment, SensorModel};
pub use window::{nrmse, Window, MAX_CHANNELS, MAX_LEN};

use crate::CodecError;

const TAG_LOSSLESS: u8 = 0x01;
const TAG_RECON: u8 = 0x02;
const TAG_EVENT_RECON: u8 = 0x03;

/// The meaning of a window in one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Class index (0 … 7).
    pub class: u8,
    /// Confidence, quantised: the posterior lies in `[level/16, (level+1)/16)` (0 … 15).
    pub level: u8,
    /// The window is unlike the training data.
    pub anomaly: bool,
}

impl Event {
    /// The event of an assessment.
    pub fn of(a: &Assessment) -> Self {
        Self {
            class: a.class & 7,
            level: ((a.confidence * 16.0) as u8).min(15),
            anomaly: a.anomaly,
        }
    }

    /// The byte on the air.
    pub fn to_byte(self) -> u8 {
        (self.class & 7) << 5 | (self.level & 15) << 1 | u8::from(self.anomaly)
    }

    /// Inverse of [`Event::to_byte`] (every byte is an event).
    pub fn from_byte(b: u8) -> Self {
        Self {
            class: b >> 5,
            level: (b >> 1) & 15,
            anomaly: b & 1 == 1,
        }
    }

    /// The confidence the level stands for (the middle of its interval).
    pub fn confidence(self) -> f32 {
        (f32::from(self.level) + 0.5) / 16.0
    }
}

/// What a sensor payload decodes to.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// Only the meaning.
    Event(Event),
    /// The window (lossless, or reconstructed within its target error).
    Window(Window),
    /// The meaning and the reconstructed window.
    EventAndWindow(Event, Window),
}

/// A lossless payload.
pub fn encode_lossless(w: &Window) -> Vec<u8> {
    let mut out = vec![TAG_LOSSLESS];
    out.extend(lossless::encode(w));
    out
}

/// An event payload (one byte).
pub fn encode_event(model: &SensorModel, w: &Window) -> Result<Vec<u8>, CodecError> {
    Ok(vec![Event::of(&model.assess(w)?).to_byte()])
}

/// A reconstruction payload meeting `targets` (NRMSE, one or one per channel).
pub fn encode_reconstruct(model: &SensorModel, w: &Window, targets: &[f32]) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![TAG_RECON];
    out.extend(recon::encode(model, w, targets)?);
    Ok(out)
}

/// Decodes a sensor payload. `model` is needed for everything but lossless payloads;
/// `max_samples` bounds the window a lossless header may declare.
pub fn decode(payload: &[u8], model: Option<&SensorModel>, max_samples: usize) -> Result<Decoded, CodecError> {
    let need = || model.ok_or_else(|| CodecError::Input("this sensor payload needs the sensor model (--model)".into()));
    match payload {
        [] => Err(CodecError::Payload("empty sensor payload".into())),
        [b] => Ok(Decoded::Event(Event::from_byte(*b))),
        [TAG_LOSSLESS, rest @ ..] => Ok(Decoded::Window(lossless::decode(rest, max_samples)?)),
        [TAG_RECON, rest @ ..] => Ok(Decoded::Window(recon::decode(need()?, rest)?)),
        [TAG_EVENT_RECON, e, rest @ ..] => Ok(Decoded::EventAndWindow(
            Event::from_byte(*e),
            recon::decode(need()?, rest)?,
        )),
        [t, ..] => Err(CodecError::Payload(format!("unknown sensor payload tag {t:#04x}"))),
    }
}

/// Send on change of meaning: every window costs its event byte; the reconstruction tokens go
/// along only when the class differs from the last one sent, the confidence is below
/// `min_confidence`, or the window is anomalous.
#[derive(Clone, Debug)]
pub struct OnChange {
    /// Confidence below which the window is sent too.
    pub min_confidence: f32,
    /// NRMSE targets of the reconstruction tokens.
    pub targets: Vec<f32>,
    last: Option<u8>,
}

impl OnChange {
    /// A policy with no history.
    pub fn new(min_confidence: f32, targets: Vec<f32>) -> Self {
        Self {
            min_confidence,
            targets,
            last: None,
        }
    }

    /// The payload for the next window and whether it carries the reconstruction.
    pub fn next(&mut self, model: &SensorModel, w: &Window) -> Result<(Vec<u8>, bool), CodecError> {
        let a = model.assess(w)?;
        let e = Event::of(&a);
        let attach = self.last != Some(e.class) || a.confidence < self.min_confidence || a.anomaly;
        self.last = Some(e.class);
        if !attach {
            return Ok((vec![e.to_byte()], false));
        }
        let mut out = vec![TAG_EVENT_RECON, e.to_byte()];
        out.extend(recon::encode(model, w, &self.targets)?);
        Ok((out, true))
    }
}

#[cfg(test)]
mod tests;
