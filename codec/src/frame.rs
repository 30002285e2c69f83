//! `SemanticFrame`: the versioned, self-describing wire format of one coded item.
//!
//! ```text
//!  byte 0      version (high nibble, = 1) | modality (low nibble)
//!  byte 1      flags: 0x01 model id · 0x02 params · 0x04 importance segments · 0x08 CRC-32
//!  [4 bytes]   model id (big-endian): the first 4 bytes of SHA-256 of the model file
//!  [varint n]  params length, then n bytes (modality-specific, e.g. tolerances)
//!  [varint k]  importance segments, then k × (varint class, varint byte length): they cut the
//!              payload into consecutive segments, each with its importance class (0 = most
//!              important), which the link maps to a more or less robust PHY rate
//!  varint m    payload length, then m bytes
//!  [4 bytes]   CRC-32 (little-endian) of every byte before it
//! ```
//!
//! A file or a first frame carries everything; frames inside an established stream may leave out
//! the model id (fixed by the session) and the CRC (the link already checks integrity). Parsing
//! never panics: any byte string gives a frame or a [`CodecError`], and a frame has exactly one
//! encoding (minimal varints, no empty optional fields), so parsing then writing gives the input.

use crate::CodecError;

/// Frame format version written and read.
pub const VERSION: u8 = 1;

const F_MODEL: u8 = 0x01;
const F_PARAMS: u8 = 0x02;
const F_IMPORTANCE: u8 = 0x04;
const F_CRC: u8 = 0x08;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Modality {
    /// Text: messages, log lines, alerts.
    Text,
    /// Telemetry records (JSON objects or CSV rows).
    Telemetry,
    /// Images.
    Image,
    /// Sensor windows (multichannel time series).
    Sensor,
    /// Audio.
    Audio,
}

impl Modality {
    /// Every modality.
    pub const ALL: [Modality; 5] = [Self::Text, Self::Telemetry, Self::Image, Self::Sensor, Self::Audio];

    /// Wire code (low nibble of byte 0).
    pub const fn code(self) -> u8 {
        match self {
            Self::Text => 0,
            Self::Telemetry => 1,
            Self::Image => 2,
            Self::Sensor => 3,
            Self::Audio => 4,
        }
    }

    /// Inverse of [`Modality::code`].
    pub fn from_code(c: u8) -> Result<Self, CodecError> {
        Self::ALL
            .into_iter()
            .find(|m| m.code() == c)
            .ok_or(CodecError::Modality(c))
    }

    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Telemetry => "telemetry",
            Self::Image => "image",
            Self::Sensor => "sensor",
            Self::Audio => "audio",
        }
    }

    /// Parses [`Modality::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for Modality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A model id: the first 4 bytes of SHA-256 of a model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelId(pub u32);

impl ModelId {
    /// The id of a model file's bytes.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        use sha2::Digest;
        let h = sha2::Sha256::digest(bytes);
        ModelId(u32::from_be_bytes([h[0], h[1], h[2], h[3]]))
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// One importance segment: `len` payload bytes of class `class` (0 = most important).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Importance class.
    pub class: u8,
    /// Bytes of payload.
    pub len: usize,
}

/// A coded item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemanticFrame {
    /// What the payload carries.
    pub modality: Modality,
    /// The weights it was coded with, when the frame says.
    pub model: Option<ModelId>,
    /// Modality-specific parameters.
    pub params: Vec<u8>,
    /// Importance segments over the payload (empty: all one class).
    pub segments: Vec<Segment>,
    /// The coded payload.
    pub payload: Vec<u8>,
    /// Whether [`SemanticFrame::to_bytes`] appends a CRC-32.
    pub with_crc: bool,
}

impl SemanticFrame {
    /// A self-describing frame (model id, CRC).
    pub fn new(modality: Modality, model: ModelId, payload: Vec<u8>) -> Self {
        Self {
            modality,
            model: Some(model),
            params: Vec::new(),
            segments: Vec::new(),
            payload,
            with_crc: true,
        }
    }

    /// Refuses the frame unless it was made with `model` (or does not say) and carries `modality`.
    pub fn check(&self, modality: Modality, model: ModelId) -> Result<(), CodecError> {
        if self.modality != modality {
            return Err(CodecError::WrongModality {
                frame: self.modality.name(),
                decoder: modality.name(),
            });
        }
        match self.model {
            Some(m) if m != model => Err(CodecError::ModelMismatch {
                frame: m.to_string(),
                decoder: model.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Serialises the frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut flags = 0;
        if self.model.is_some() {
            flags |= F_MODEL;
        }
        if !self.params.is_empty() {
            flags |= F_PARAMS;
        }
        if !self.segments.is_empty() {
            flags |= F_IMPORTANCE;
        }
        if self.with_crc {
            flags |= F_CRC;
        }
        let mut out = Vec::with_capacity(self.payload.len() + 16);
        out.push((VERSION << 4) | self.modality.code());
        out.push(flags);
        if let Some(m) = self.model {
            out.extend_from_slice(&m.0.to_be_bytes());
        }
        if !self.params.is_empty() {
            put_varint(&mut out, self.params.len() as u64);
            out.extend_from_slice(&self.params);
        }
        if !self.segments.is_empty() {
            put_varint(&mut out, self.segments.len() as u64);
            for s in &self.segments {
                put_varint(&mut out, u64::from(s.class));
                put_varint(&mut out, s.len as u64);
            }
        }
        put_varint(&mut out, self.payload.len() as u64);
        out.extend_from_slice(&self.payload);
        if self.with_crc {
            let c = crc32fast::hash(&out);
            out.extend_from_slice(&c.to_le_bytes());
        }
        out
    }

    /// Parses a frame that arrived with holes: the frame byte ranges `lost` did not arrive
    /// (their bytes in `bytes` are ignored) and `bytes` may be cut short. The header, up to the
    /// payload, must have arrived ([`CodecError::Lost`] otherwise); the CRC is not checked (the
    /// link authenticates what arrived). Returns the frame, whose payload may be shorter than
    /// declared, and the lost ranges relative to the payload — what a concealing decoder such
    /// as `DigitalModel::decode_concealed` takes. With nothing lost this is
    /// [`SemanticFrame::from_bytes`] and no ranges.
    pub fn from_bytes_with_gaps(
        bytes: &[u8],
        lost: &[std::ops::Range<usize>],
    ) -> Result<(Self, Vec<std::ops::Range<usize>>), CodecError> {
        let lost: Vec<std::ops::Range<usize>> = lost.iter().filter(|l| l.start < l.end).cloned().collect();
        if lost.is_empty() {
            return Ok((Self::from_bytes(bytes)?, Vec::new()));
        }
        let mut r = Reader { b: bytes, pos: 0 };
        let head = (|| {
            let (modality, flags) = r.head()?;
            let (model, params, segments) = r.fields(flags)?;
            let m = r.varint("payload length")?;
            Ok::<_, CodecError>((modality, model, params, segments, m))
        })();
        let at = r.pos;
        if lost.iter().any(|l| l.start <= at) {
            return Err(CodecError::Lost(format!("the frame header (first {} bytes)", at + 1)));
        }
        let (modality, model, params, segments, m) = head?;
        let end = usize::try_from(m)
            .unwrap_or(usize::MAX)
            .min(bytes.len() - at)
            .saturating_add(at);
        let payload = bytes[at..end].to_vec();
        let rel = lost.iter().map(|l| l.start - at..l.end.saturating_sub(at)).collect();
        Ok((
            Self {
                modality,
                model,
                params,
                segments,
                payload,
                with_crc: false,
            },
            rel,
        ))
    }

    /// Bytes of the header that [`SemanticFrame::to_bytes`] writes before the payload.
    pub fn header_len(&self) -> usize {
        let n = Self {
            payload: Vec::new(),
            with_crc: false,
            ..self.clone()
        }
        .to_bytes()
        .len()
            - 1;
        let mut v = Vec::new();
        put_varint(&mut v, self.payload.len() as u64);
        n + v.len()
    }

    /// Parses a frame: exactly `bytes`, no trailing data.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader { b: bytes, pos: 0 };
        let (modality, flags) = r.head()?;
        if flags & F_CRC != 0 {
            if bytes.len() < 6 {
                return Err(CodecError::Truncated {
                    field: "CRC-32",
                    offset: bytes.len(),
                    needed: 6 - bytes.len(),
                });
            }
            let (body, crc) = bytes.split_at(bytes.len() - 4);
            let found = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
            let computed = crc32fast::hash(body);
            if found != computed {
                return Err(CodecError::Crc { found, computed });
            }
            r.b = body;
        }
        let (model, params, segments) = r.fields(flags)?;
        let m = r.len("payload length")?;
        let payload = r.take("payload", m)?.to_vec();
        if r.pos != r.b.len() {
            return Err(CodecError::Malformed(format!(
                "{} trailing byte(s) after the payload",
                r.b.len() - r.pos
            )));
        }
        let seg_total = segments.iter().try_fold(0usize, |a, s| a.checked_add(s.len));
        if !segments.is_empty() && seg_total != Some(payload.len()) {
            return Err(CodecError::Malformed(format!(
                "importance segments cover {seg_total:?} bytes of a {}-byte payload",
                payload.len()
            )));
        }
        Ok(Self {
            modality,
            model,
            params,
            segments,
            payload,
            with_crc: flags & F_CRC != 0,
        })
    }
}

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7F) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Reads a LEB128 varint from the start of `b`: the value and the bytes it took, or `None` when
/// `b` ends first or the value needs more than 64 bits.
pub fn get_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut r = Reader { b, pos: 0 };
    let v = r.varint("varint").ok()?;
    Some((v, r.pos))
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// The optional fields between the flags and the payload length.
    #[allow(clippy::type_complexity)]
    fn fields(&mut self, flags: u8) -> Result<(Option<ModelId>, Vec<u8>, Vec<Segment>), CodecError> {
        let model = if flags & F_MODEL != 0 {
            let b = self.take("model id", 4)?;
            Some(ModelId(u32::from_be_bytes([b[0], b[1], b[2], b[3]])))
        } else {
            None
        };
        let params = if flags & F_PARAMS != 0 {
            let n = self.len("params length")?;
            if n == 0 {
                return Err(CodecError::Malformed("params flag set but no params".into()));
            }
            self.take("params", n)?.to_vec()
        } else {
            Vec::new()
        };
        let mut segments = Vec::new();
        if flags & F_IMPORTANCE != 0 {
            let k = self.len("segment count")?;
            if k == 0 {
                return Err(CodecError::Malformed("importance flag set but no segments".into()));
            }
            for _ in 0..k {
                let class = self.varint("segment class")?;
                let class = u8::try_from(class)
                    .map_err(|_| CodecError::Malformed(format!("importance class {class} > 255")))?;
                let len = self.len("segment length")?;
                segments.push(Segment { class, len });
            }
        }
        Ok((model, params, segments))
    }
    /// The first two bytes: version and modality, then the flags (only known ones).
    fn head(&mut self) -> Result<(Modality, u8), CodecError> {
        let head = self.byte("version/modality")?;
        if head >> 4 != VERSION {
            return Err(CodecError::Version(head >> 4));
        }
        let modality = Modality::from_code(head & 0x0F)?;
        let flags = self.byte("flags")?;
        if flags & !(F_MODEL | F_PARAMS | F_IMPORTANCE | F_CRC) != 0 {
            return Err(CodecError::Malformed(format!("unknown flags {flags:#04x}")));
        }
        Ok((modality, flags))
    }

    fn byte(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.take(field, 1)?[0])
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or(CodecError::Truncated {
                field,
                offset: self.pos,
                needed: (self.pos.saturating_add(n)).saturating_sub(self.b.len()).max(1),
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(field)?;
            v |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                if b == 0 && shift > 0 {
                    return Err(CodecError::Malformed(format!(
                        "{field}: varint with a redundant zero byte"
                    )));
                }
                return Ok(v);
            }
        }
        Err(CodecError::Malformed(format!("{field}: varint longer than 64 bits")))
    }

    /// A length: a varint that must fit in what is left of the frame.
    fn len(&mut self, field: &'static str) -> Result<usize, CodecError> {
        let v = self.varint(field)?;
        let left = self.b.len() - self.pos;
        usize::try_from(v)
            .ok()
            .filter(|&n| n <= left)
            .ok_or_else(|| CodecError::Truncated {
                field,
                offset: self.pos,
                needed: usize::try_from(v).map_or(usize::MAX, |n| n.saturating_sub(left)),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn sample() -> SemanticFrame {
        SemanticFrame {
            modality: Modality::Telemetry,
            model: Some(ModelId(0xdead_beef)),
            params: vec![1, 2, 3],
            segments: vec![Segment { class: 0, len: 2 }, Segment { class: 3, len: 3 }],
            payload: vec![9, 8, 7, 6, 5],
            with_crc: true,
        }
    }

    #[test]
    fn round_trip_every_flag_combination() {
        for bits in 0..16u8 {
            let mut f = sample();
            if bits & 1 == 0 {
                f.model = None;
            }
            if bits & 2 == 0 {
                f.params.clear();
            }
            if bits & 4 == 0 {
                f.segments.clear();
            }
            f.with_crc = bits & 8 != 0;
            assert_eq!(SemanticFrame::from_bytes(&f.to_bytes()).unwrap(), f);
        }
    }

    #[test]
    fn every_corruption_is_refused_or_detected() {
        let bytes = sample().to_bytes();
        // Every truncation is an error.
        for n in 0..bytes.len() {
            assert!(SemanticFrame::from_bytes(&bytes[..n]).is_err(), "truncated to {n}");
        }
        // Every single-bit flip is caught (CRC-32 detects all single-bit errors).
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(SemanticFrame::from_bytes(&b).is_err(), "bit {i}");
        }
        let mut b = bytes.clone();
        b.push(0);
        assert!(SemanticFrame::from_bytes(&b).is_err());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..100_000 {
            let n = rng.random_range(0..40);
            let b: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let _ = SemanticFrame::from_bytes(&b);
        }
    }

    /// Found by the fuzzer: a length shorter than what is left computed the shortfall anyway
    /// (an overflow in debug builds).
    #[test]
    fn fuzz_regression_short_length() {
        let b = include_bytes!("../../fuzz/regressions/semantic_frame/crash-75bf90b44fdb255e0905be6570705636c28ac7f6");
        assert!(SemanticFrame::from_bytes(b).is_err());
    }

    #[test]
    fn other_weights_are_named() {
        let f = sample();
        let e = f.check(Modality::Telemetry, ModelId(0x0123_4567)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("deadbeef") && msg.contains("01234567"), "{msg}");
        assert!(f.check(Modality::Text, ModelId(0xdead_beef)).is_err());
        assert!(f.check(Modality::Telemetry, ModelId(0xdead_beef)).is_ok());
    }
}
