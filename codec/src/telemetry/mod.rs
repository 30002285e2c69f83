//! The telemetry codec: JSON objects and CSV rows, one record per payload, coded against
//! statistics that encoder and decoder both build from the records they have seen.
//!
//! Each record is taken apart into a *shape* (keys, nesting, leaf kinds) and its leaves. The
//! shape is sent once and afterwards named by a 16-bit hash or "same as the last record". Each
//! leaf belongs to a field (its path, `hotspots.0.rssi` or a CSV column), and each field keeps its
//! own adaptive models:
//!
//! - **numbers** are decimal mantissas with a scale (`7.0` = 70 at scale 1); numbers that are
//!   `f32` values printed as `f64` (`-3.799999952316284`) are sent as the short `f32` decimal
//!   (`-3.8`). The mantissa is predicted from the field's last value, its last two (linear), or
//!   another field of the same record plus their last difference (`_timestamp` from
//!   `reported_at`), or the last value plus one of the field's recent distinct steps (a sensor
//!   that reports every 10 or every 30 minutes; the step's index is coded first), whichever
//!   has the lowest running cost over the last few values (its error's bit length, decaying by
//!   a quarter per value: a noisy field's best predictor of one value is chance); the residual
//!   costs a few bits. A short decimal that is also the f32 spelling of a value at the scale
//!   of the field's last f32 number (`-21.5` among `-16.799999237060547`) is sent as that f32
//!   value, so the field keeps one class and one scale.
//! - **strings** are "one of the field's last 8 values", a reference into a long-term memory of
//!   strings by hash, an ISO-8601 timestamp (then a number), hex, base64 or base58check (then
//!   bytes, each predicted from the same position of the field's last value; base58check without
//!   its checksum, which follows from them), or text through the prior.
//! - **keyed values**: a leaf's *key* is the first string leaf of its object (or of the nearest
//!   enclosing object that has one) coded before it, such as a gateway's `id` for its `lat`, or
//!   the device `name` for top-level fields; a nested leaf that only the top-level key would
//!   key is keyed by the number just before it in its own object instead (a `frequency` by its
//!   `channel`). A field that always had the same value with a key
//!   (a gateway's coordinates, name, distances) is sent as "the value known for this key"; see
//!   the loss rules below.
//!
//! **Loss resilience.** Record `seq` (carried by the frame, not the payload) with
//! `seq % resync == 0` is an *intra* record: every adaptive statistic starts afresh there, so a
//! decoder that lost a record decodes again from the next intra record, at most `resync` (16)
//! records later. What lives longer (shapes, the string memories, keyed values, byte-string
//! templates) is only referred to by hash once it went out in three different resync periods,
//! so a decoder lacks it only if it lost a record in each; a reference the decoder does not hold
//! is an error, never a wrong record. A keyed value that never changed is safe the same way: a
//! decoder's records are a subset of the encoder's, so it holds the same value or none. A value
//! that changed (a gateway that moved) is used again once it went out in three periods and 64
//! periods passed since the change, with its own class and, at its key's first such reference
//! in a period, how many periods ago it changed (a power of two and four bits below it, rounded
//! down). A decoder that saw the key since then holds the value; one that did not, and lost
//! records in three periods since it last saw the key, refuses it (see `Core::keyed_value`) and
//! relearns it in a refresh period.
//!
//! With `resync` 0 (a reliable link, QUIC: no intra record after the first, the decoder sees
//! every record in order) none of this applies: what went out once is referred to from then on,
//! and a changed keyed value at once.
//!
//! Two kinds of *refresh period* keep a decoder that lacks something from staying out of step:
//! every 8th period refers to no template, warm-start profile or changed keyed value, and every
//! 256th (a *full refresh*) starts a cycle in which each long-lived item is sent in full the
//! first time it is used: the encoder refers only to what went out since the cycle began. Under
//! scattered random losses a decoder that missed an item therefore fails records for at most
//! one cycle (4096 records), not forever. The price is one full spelling per item and cycle.
//!
//! **Warm starts.** A field's first record of a period may start its adaptive tables from a
//! *profile* (per symbol, how many powers of two below the likeliest; per bit, a level of its
//! log-odds) instead of from scratch: the profile its last four periods ended with, when all
//! four were complete and gave the same one. A field that started warm keeps that profile while
//! nothing moved far from it, so a steady field gives the same profile period after period. A
//! decoder that lost records in three of the four still holds it from the fourth; every 8th
//! period starts cold, so one that lost more learns afresh there.
//! A numeric field's *predictor* starts warm the same way, with a bit of its own: the
//! relation, partner (by path) or steps its last four periods ended with,
//! so a derived number's first value of a period is predicted by its relation and a periodic
//! timestamp's second by its report period's step.
//!
//! **Byte strings** (hex, base64: a LoRaWAN frame) code each byte as "unchanged" with a bit that
//! learns at the rate of a running frequency first, then a change within ±8 (a counter) or any
//! other byte uniformly (ciphertext costs its 8 bits, not more). Each length of a field's byte
//! string is a *layout* with its own last value and statistics (a frame with and without FOpts).
//! A layout's first value in a period has no last value; it may start from a *template*: what a
//! complete earlier period taught (per byte: constant, the mantissa byte of which number it
//! carries, ciphertext, or nothing), referred to by an 8-bit hash once the same template came
//! out of three periods. A decoder keeps templates of periods it decoded whole only, so its
//! templates are a subset of the encoder's; every 8th period uses none, and the encoder uses
//! only templates that came out of a period since the last full refresh, so one that lacks a
//! template learns it again.
//!
//! **Lossy mode.** A per-field tolerance (`temperature=0.1`) quantises that field's residuals in
//! steps that keep every reconstructed value within the tolerance; the encoder predicts from its
//! reconstructions, so errors do not accumulate.

pub mod dict;
pub mod models;
pub mod record;
mod relations;

use crate::frame::{put_varint, ModelId};
use crate::prior::{PrefixCache, Prior};
use crate::rangecoder::{RangeDecoder, RangeEncoder};
use crate::vocab::{BOS, EOS, TAG_KEY, TAG_STRING};
use crate::CodecError;
pub use dict::TelemetryDictionary;
use dict::{ValueTable, DICT_INC};
use models::{length, residual, residual_weights, Adaptive, Bit, Dec, Enc, Io};
use record::{Parsed, Shape};
use relations::{Relation, RELATIONS};
use std::collections::HashMap;

/// Longest record accepted.
pub const MAX_RECORD: usize = 1 << 20;
/// Longest string leaf, key or verbatim record coded through the prior (bytes).
const MAX_STRING: usize = 1 << 16;
/// Values a field remembers for "one of the last values".
const MTF: usize = 8;
/// Positions of a byte string with their own "unchanged" probability.
const BYTE_POSITIONS: usize = 64;
/// Choices for a field's first number in a resync period: 0, or one of the record's last numbers.
const FIRST_CANDIDATES: usize = 8;
/// Only numbers this large (timestamps, counters) are worth a copy: small ones cost little anyway.
const FIRST_MAGNITUDE: u128 = 1 << 16;
/// Distinct steps a field remembers for [`Pred::Step`].
const STEPS: usize = 4;
/// Only steps this large (timestamps of periodic reports) are remembered: small numbers that
/// wander (readings) are better served by the last value or the linear prediction.
const STEP_MAGNITUDE: u128 = 64;
/// A changed byte within this distance of its prediction is coded as a near change.
const NEAR: usize = 8;
/// Byte-string layouts (lengths) a field keeps per period.
const LAYOUTS: usize = 4;
/// Cap on the long-term string memory (entries).
const MEMORY_CAP: usize = 1 << 16;

/// Options both ends must share (they travel in the first frame of a stream).
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetryOptions {
    /// Every `resync`-th record is intra (0: only the first).
    pub resync: u32,
    /// Per-field absolute tolerances for lossy coding: a key (last path component or CSV column)
    /// or a full path, and the largest allowed error.
    pub tolerances: Vec<(String, f64)>,
    /// The id of the dictionary the stream is coded with (see [`dict`]), if any; set by
    /// [`TelemetryEncoder::with_dictionary`].
    pub dictionary: Option<ModelId>,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        Self {
            resync: 16,
            tolerances: Vec::new(),
            dictionary: None,
        }
    }
}

impl TelemetryOptions {
    /// Serialises for a frame's parameters.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, u64::from(self.resync));
        put_varint(&mut out, self.tolerances.len() as u64);
        for (k, t) in &self.tolerances {
            put_varint(&mut out, k.len() as u64);
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&t.to_le_bytes());
        }
        // A stream without a dictionary ends here, as before dictionaries.
        if let Some(d) = self.dictionary {
            out.push(1);
            out.extend_from_slice(&d.0.to_le_bytes());
        }
        out
    }

    /// Inverse of [`TelemetryOptions::to_bytes`]; returns the options and the bytes read.
    pub fn from_bytes(b: &[u8]) -> Result<(Self, usize), CodecError> {
        let mut i = 0;
        let bad = |w: &str| CodecError::Malformed(format!("telemetry options: {w}"));
        let varint = |i: &mut usize| -> Result<u64, CodecError> {
            let (v, n) = crate::frame::get_varint(&b[*i..]).ok_or_else(|| bad("bad varint"))?;
            *i += n;
            Ok(v)
        };
        let resync = u32::try_from(varint(&mut i)?).map_err(|_| bad("resync too large"))?;
        let n = varint(&mut i)?;
        if n > 4096 {
            return Err(bad("too many tolerances"));
        }
        let mut tolerances = Vec::new();
        for _ in 0..n {
            let len = varint(&mut i)? as usize;
            let key = b.get(i..i.saturating_add(len)).ok_or_else(|| bad("truncated key"))?;
            let key = String::from_utf8(key.to_vec()).map_err(|_| bad("key not UTF-8"))?;
            i += len;
            let t = f64::from_le_bytes(
                b.get(i..i + 8)
                    .ok_or_else(|| bad("truncated tolerance"))?
                    .try_into()
                    .map_err(|_| bad("tolerance"))?,
            );
            if !(t.is_finite() && t >= 0.0) {
                return Err(bad("tolerance must be finite and ≥ 0"));
            }
            i += 8;
            tolerances.push((key, t));
        }
        let dictionary = match b.get(i) {
            Some(1) => {
                let id = b.get(i + 1..i + 5).ok_or_else(|| bad("truncated dictionary id"))?;
                i += 5;
                Some(ModelId(u32::from_le_bytes(
                    id.try_into().map_err(|_| bad("dictionary id"))?,
                )))
            }
            _ => None,
        };
        Ok((
            Self {
                resync,
                tolerances,
                dictionary,
            },
            i,
        ))
    }

    fn tolerance(&self, path: &[u8]) -> Option<f64> {
        let last = path.rsplit(|&c| c == b'.').next().unwrap_or(path);
        self.tolerances
            .iter()
            .find(|(k, _)| k.as_bytes() == path || k.as_bytes() == last)
            .map(|t| t.1)
    }
}

/// Number classes: 0..MTF are "the field's i-th most recent value", then these.
const NUM_DEC: usize = MTF;
const NUM_F32: usize = MTF + 1;
const NUM_RAW: usize = MTF + 2;
/// The value this field had with the same key (see [`Schema::keyed`]).
const NUM_KEYED: usize = MTF + 3;
/// The same, for a key whose value changed (see [`Core::keyed_value`]).
const NUM_KEYED_CHANGED: usize = MTF + 4;
/// A value of the field's dictionary table (see [`dict`]); only fields that have one have this
/// class.
const NUM_DICT: usize = MTF + 5;
const NUM_CLASSES: usize = MTF + 6;
/// Starting weights of the number classes: the last value, then a decimal, most likely.
const NUM_CLASS_WEIGHTS: [u16; NUM_CLASSES] = [24, 2, 2, 1, 1, 1, 1, 1, 12, 2, 1, 1, 1, 128];
/// The same for a leaf that has a key: its keyed value is likely too.
const NUM_CLASS_WEIGHTS_KEYED: [u16; NUM_CLASSES] = [24, 2, 2, 1, 1, 1, 1, 1, 12, 2, 1, 16, 4, 16];

/// String classes: 0..MTF are "the field's i-th most recent value".
const S_MEMORY: usize = MTF;
const S_TIME: usize = MTF + 1;
const S_HEX_LOWER: usize = MTF + 2;
const S_HEX_UPPER: usize = MTF + 3;
const S_BASE64: usize = MTF + 4;
const S_PRIOR: usize = MTF + 5;
/// Identifier-like strings (the prior would need a token per 3 bytes or less): raw bytes.
const S_BYTES: usize = MTF + 6;
/// The value this field had with the same key (see [`Schema::keyed`]).
const S_KEYED: usize = MTF + 7;
/// One of the field's own long-term values, by an 8-bit hash (see [`FieldMemory`]).
const S_FIELD_MEMORY: usize = MTF + 8;
/// [`S_KEYED`] for a key whose value changed.
const S_KEYED_CHANGED: usize = MTF + 9;
/// Base58check text (a Helium hotspot's or a Bitcoin address): its bytes without the checksum,
/// which follows from them.
const S_BASE58CHECK: usize = MTF + 10;
/// A value of the field's dictionary table; only fields that have one have this class.
const S_DICT: usize = MTF + 11;
const S_CLASSES: usize = MTF + 12;
/// Starting weights of the string classes: the last value most likely.
const STR_CLASS_WEIGHTS: [u16; S_CLASSES] = [32, 4, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 2, 1, 1, 128];
/// The same for a leaf that has a key.
const STR_CLASS_WEIGHTS_KEYED: [u16; S_CLASSES] = [32, 4, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 2, 1, 16, 2, 4, 1, 16];
/// Longest base58check string taken apart (base conversion is quadratic).
const BASE58_MAX: usize = 128;
/// Periods after a keyed value changed before references use the new one.
const CHANGE_SETTLE: u64 = 64;
/// A keyed value where a leaf may use it: the value, the period it last changed in (if it ever
/// did), and the last period it went out in (see [`Core::keyed_value`]).
type KnownValue<'a> = (&'a Leaf, Option<u64>, u64);
/// Largest power of two coded for the age of a keyed value's change (see [`Core::change_since`]).
const AGE_EXPONENTS: usize = 48;
/// Starting weights of that power of two: a change is referred to [`CHANGE_SETTLE`] periods
/// after it at the earliest, so 2⁶ to 2⁹ periods ago, mostly.
const AGE_WEIGHTS: [u16; AGE_EXPONENTS] = {
    let mut w = [1; AGE_EXPONENTS];
    let mut e = 6;
    while e < 10 {
        w[e] = 12;
        e += 1;
    }
    w
};
/// Bits of that age below its power of two.
const AGE_BITS: u32 = 4;

/// Record kinds.
const R_SAME: usize = 0;
const R_REF: usize = 1;
const R_SPELL: usize = 2;
const R_VERBATIM: usize = 3;

/// Shape symbols of a spelled schema.
const SH_OBJ: usize = 0;
const SH_ARR: usize = 1;
const SH_NUM: usize = 2;
const SH_STR: usize = 3;
const SH_TRUE: usize = 4;
const SH_FALSE: usize = 5;
const SH_NULL: usize = 6;
const SH_ROW: usize = 7;
const SH_EMPTY: usize = 8;
const SH_SYMBOLS: usize = 9;

/// A number as (mantissa, scale): `7.0` is (70, 1).
type Num = (i128, u8);
/// A leaf's text and, for numbers and timestamps, its value.
type Leaf = (Vec<u8>, Option<Num>);

/// How a field's next number is predicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pred {
    Prev,
    Linear,
    /// Another field of the same record (field id) plus the last difference.
    Partner(usize),
    /// The last value plus one of the field's recent distinct steps (a sensor that reports every
    /// 10 or every 30 minutes), the step's index coded first.
    Step,
    /// A standard relation of two earlier numbers of the record (field ids): the effective
    /// signal power from RSSI and SNR, say.
    Derived(Relation, usize, usize),
}

/// Per-field state; everything adaptive is reset at each intra record (`epoch`).
#[derive(Clone, Debug)]
struct Field {
    path: Vec<u8>,
    tolerance: Option<f64>,
    /// Whether the stream's dictionary has a value table for the field (then its class tables
    /// have the dictionary class).
    dict: bool,
    /// The dictionary table, as this period has adapted it.
    dict_tab: Option<Adaptive>,
    epoch: u64,
    num_class: Adaptive,
    /// Number classes where the record's shape gives the leaf a key.
    num_class_keyed: Adaptive,
    /// Recent distinct numbers: text and value.
    num_mtf: Vec<Leaf>,
    scale: Adaptive,
    res: Adaptive,
    prev: Option<(i128, u8)>,
    prev2: Option<(i128, u8)>,
    pred: Pred,
    /// Whether a keyed number is written in its f32 spelling: with no number of the field yet,
    /// after one in decimal, after one in f32 spelling.
    keyed_f32: [Bit; 3],
    /// Whether `pred` predicted the last value exactly; then whether it does again is coded
    /// first (`hit`), so a derived or copied number costs a fraction of a bit.
    exact: bool,
    hit: Bit,
    /// Recent distinct steps (differences between consecutive values at one scale), the last
    /// one first; a step within 1/16 of an earlier one replaces it.
    steps: Vec<i128>,
    /// How often each of `steps` was seen in this period.
    step_seen: Vec<u16>,
    step_idx: Adaptive,
    str_class: Adaptive,
    str_class_keyed: Adaptive,
    mtf: Vec<Vec<u8>>,
    /// Byte-string layouts (values of one length) of this period, the last one used first: a
    /// field that alternates between layouts, like a LoRaWAN frame with and without FOpts, is
    /// predicted from the last value of its length with that length's statistics.
    layouts: Vec<Layout>,
    /// The last number per key of the leaf in this period.
    key_prev: HashMap<u64, Num>,
    /// A near change: -NEAR..=NEAR without 0.
    near_delta: Adaptive,
    /// Any other change, uniform (an adaptive table over 239 random values would cost more than
    /// their 7.9 bits while it learns).
    far_delta: Adaptive,
    len: Adaptive,
    /// Which layout a byte string has: one of this period's (last used first) or a new one.
    layout: Adaptive,
    time_fmt: Adaptive,
    /// The format of the field's last timestamp string.
    last_time_fmt: Option<usize>,
    /// Whether the period's first byte string starts from a template.
    use_template: Bit,
    /// The profile the period started from, if any.
    warm_from: Option<Vec<u8>>,
    /// Running cost of each predictor tried in this period (see [`Core::learn`]).
    scores: Vec<(Pred, u32)>,
    /// The scale of the field's last number in f32 spelling.
    f32_scale: Option<u8>,
    /// The predictor state the period started from (see [`Core::warm_predictor`]), if any.
    warm_pred: Option<PredState>,
    /// The largest scale of the field's numbers in this period.
    max_scale: Option<u8>,
    /// The last value's difference to what its partner had in the record (`Pred::Partner`) or
    /// to the value before it (`Pred::Linear`).
    delta: Option<i128>,
}

/// A numeric field's predictor as a period ended, by the paths of the fields it names (ids can
/// differ between ends), for a warm start of a later period's first values: which predictor,
/// whether it was exact, the scale and trailing-zero habit of the last value, the field's
/// distinct steps (smallest first) and its last difference (to its partner, or between its
/// last two values).
#[derive(Clone, Debug, PartialEq, Eq)]
struct PredState {
    pred: PredByPath,
    exact: bool,
    scale: u8,
    trim: bool,
    steps: Vec<i128>,
    delta: Option<i128>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PredByPath {
    Prev,
    Linear,
    Step,
    Partner(u64),
    Derived(Relation, u64, u64),
}

impl Field {
    /// A field no record has used yet: its period is none ([`NO_PERIOD`]), so its first record
    /// starts it afresh and no template or profile comes out of it.
    fn new(path: Vec<u8>, tolerance: Option<f64>, dict: bool) -> Self {
        Self::fresh(path, tolerance, dict, NO_PERIOD)
    }

    /// A field's state at the start of resync period `epoch`.
    fn fresh(path: Vec<u8>, tolerance: Option<f64>, dict: bool, epoch: u64) -> Self {
        // Without a dictionary table, no dictionary class.
        let (nc, sc) = if dict {
            (NUM_CLASSES, S_CLASSES)
        } else {
            (NUM_DICT, S_DICT)
        };
        Self {
            path,
            tolerance,
            dict,
            dict_tab: None,
            epoch,
            num_class: Adaptive::with(&NUM_CLASS_WEIGHTS[..nc], 32),
            num_class_keyed: Adaptive::with(&NUM_CLASS_WEIGHTS_KEYED[..nc], 32),
            num_mtf: Vec::new(),
            scale: Adaptive::with(&[8, 4, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], 48),
            res: Adaptive::with(&residual_weights(), 24),
            prev: None,
            prev2: None,
            pred: Pred::Prev,
            keyed_f32: [Bit::new(1024), Bit::new(256), Bit::new(3840)],
            exact: false,
            hit: Bit::new(2048),
            steps: Vec::new(),
            step_seen: Vec::new(),
            step_idx: Adaptive::new(STEPS, 32),
            str_class: Adaptive::with(&STR_CLASS_WEIGHTS[..sc], 32),
            str_class_keyed: Adaptive::with(&STR_CLASS_WEIGHTS_KEYED[..sc], 32),
            mtf: Vec::new(),
            layouts: Vec::new(),
            key_prev: HashMap::new(),
            near_delta: Adaptive::new(2 * NEAR, 4),
            far_delta: Adaptive::new(256 - 2 * NEAR - 1, 0),
            len: Adaptive::with(&residual_weights(), 24),
            layout: Adaptive::with(&[24, 4, 2, 1, 2], 32),
            time_fmt: Adaptive::new(TIME_FORMATS, 64),
            last_time_fmt: None,
            use_template: Bit::new(2048),
            warm_from: None,
            scores: Vec::new(),
            f32_scale: None,
            warm_pred: None,
            max_scale: None,
            delta: None,
        }
    }

    fn reset(&mut self, epoch: u64) {
        if self.epoch != epoch {
            *self = Self::fresh(std::mem::take(&mut self.path), self.tolerance, self.dict, epoch);
        }
    }

    /// The field's adaptive tables and bits, which a period may start warm.
    fn tables(&mut self) -> (Vec<&mut Adaptive>, Vec<&mut Bit>) {
        let [f0, f1, f2] = &mut self.keyed_f32;
        (
            vec![
                &mut self.res,
                &mut self.len,
                &mut self.num_class,
                &mut self.num_class_keyed,
                &mut self.scale,
                &mut self.step_idx,
                &mut self.str_class,
                &mut self.str_class_keyed,
                &mut self.near_delta,
                &mut self.layout,
                &mut self.time_fmt,
            ],
            vec![f0, f1, f2, &mut self.hit, &mut self.use_template],
        )
    }

    /// What the period taught, for a warm start of a later period (see [`Core::warm_start`]):
    /// each table's [`Adaptive::profile`] (powers of two) and each bit's
    /// [`Bit::profile`]. A field that started warm keeps the profile it started from while no
    /// entry moved more than [`PROFILE_SLACK`] (tables, in powers of two) or
    /// [`BIT_SLACK`] (bit levels) from it: a steady stream then gives the same profile period
    /// after period, which is what makes it usable.
    fn profile(&mut self) -> Vec<u8> {
        let from = self.warm_from.take();
        let (tables, bits) = self.tables();
        let mut q = Vec::with_capacity(512);
        for t in tables {
            t.profile(&mut q);
        }
        let n = q.len();
        q.extend(bits.into_iter().map(|b| b.profile()));
        if let Some(w) = from.as_ref().filter(|w| w.len() == q.len()) {
            for (k, (x, &y)) in q.iter_mut().zip(w).enumerate() {
                let slack = if k < n { PROFILE_SLACK } else { BIT_SLACK };
                if x.abs_diff(y) <= slack {
                    *x = y;
                }
            }
        }
        self.warm_from = from;
        q
    }

    /// Starts the field's tables and bits from a profile made by [`Field::profile`].
    fn warm(&mut self, q: Vec<u8>) {
        let (tables, bits) = self.tables();
        let mut at = 0;
        for t in tables {
            let n = t.symbols();
            t.warm(q.get(at..at + n).unwrap_or(&[]));
            at += n;
        }
        for (b, &l) in bits.into_iter().zip(q.get(at..).unwrap_or(&[])) {
            b.warm(l);
        }
        self.warm_from = Some(q);
    }

    /// Whether a warm start's relation or partner predicts the period's first value.
    fn warm_first(&self) -> bool {
        self.prev.is_none() && self.warm_pred.is_some() && matches!(self.pred, Pred::Derived(..) | Pred::Partner(_))
    }

    fn remember(&mut self, v: &[u8]) {
        let at = self.mtf.iter().position(|x| x == v);
        move_to_front(&mut self.mtf, at, || v.to_vec());
    }

    fn remember_num(&mut self, v: &Leaf) {
        let at = self.num_mtf.iter().position(|x| x.0 == v.0);
        move_to_front(&mut self.num_mtf, at, || v.clone());
    }
}

/// What a byte-string field learnt in this period about values of one length.
#[derive(Clone, Debug, Default)]
struct Layout {
    /// The last value of this length (for a layout made from a template: its constant bytes).
    value: Vec<u8>,
    /// The record's numbers when `value` was coded: (field, mantissa, scale), by field.
    nums: Vec<(usize, i128, u8)>,
    /// Made from a template, not yet from a value: no byte is known to have changed.
    from_template: bool,
    /// Per byte position: whether the byte stayed the same.
    same: Vec<Bit>,
    /// Per byte position: whether a changed byte moved by at most [`NEAR`] (a counter) or not
    /// (ciphertext, a new reading).
    near: Vec<Bit>,
    /// Per byte position: the numeric field whose change this byte follows, and whether that was
    /// seen twice in a row (only then is it used: a record has many numbers, and one of them
    /// changing by the same amount as a reading's byte once is no evidence).
    partner: Vec<Option<(usize, bool)>>,
    /// Per byte position, for a layout made from a template: a reading, no prediction for the
    /// layout's first value (coded raw).
    unknown: Vec<bool>,
    /// Per byte position, for a layout made from a template: ciphertext, coded raw for the whole
    /// period (its "unchanged" and "near" bits would only cost).
    cipher: Vec<bool>,
    /// Per byte position: the numeric field and byte of its mantissa that this byte carries (a
    /// payload that encodes the decoded readings): see [`source_byte`].
    source: Vec<Option<(usize, u8)>>,
    /// Per byte position: whether the byte changed in this period, for the period's template.
    varied: Vec<bool>,
    /// Per byte position: how often it changed by more than [`NEAR`] in this period.
    far: Vec<u8>,
    /// Values of this layout compared with the one before.
    compared: u32,
}

/// Byte `k` (0 = least significant) of a mantissa.
fn mantissa_byte(v: i128, k: u8) -> u8 {
    (v >> (8 * u32::from(k))) as u8
}

/// Byte `k & 3` of a mantissa at scale `s`, taken at the scale `k >> 2` its source had when the
/// byte was learnt (a reading of 26.0 arrives as `26` and still gives the bytes of 260).
fn source_byte(v: i128, s: u8, k: u8) -> u8 {
    mantissa_byte(rescale(v, s, k >> 2), k & 3)
}

/// Mantissa `v` at scale `from` taken to scale `to` (truncated when that drops digits).
fn rescale(v: i128, from: u8, to: u8) -> i128 {
    match to.cmp(&from) {
        std::cmp::Ordering::Equal => v,
        std::cmp::Ordering::Greater => v.saturating_mul(10i128.pow(u32::from(to - from).min(30))),
        std::cmp::Ordering::Less => v / 10i128.pow(u32::from(from - to).min(30)),
    }
}

/// The mantissa of field `g` among a record's numbers (sorted by field).
fn num_of(nums: &[(usize, i128, u8)], g: usize) -> Option<(i128, u8)> {
    nums.binary_search_by_key(&g, |x| x.0)
        .ok()
        .map(|i| (nums[i].1, nums[i].2))
}

/// Moves entry `at` of a recent-values list to the front, or puts `new()` there (keeping
/// [`MTF`] entries).
fn move_to_front<T>(list: &mut Vec<T>, at: Option<usize>, new: impl FnOnce() -> T) {
    match at {
        Some(p) => {
            let x = list.remove(p);
            list.insert(0, x);
        }
        None => {
            list.insert(0, new());
            list.truncate(MTF);
        }
    }
}

/// Which leaf of the record being coded each field took, by field id (a field that appears
/// twice keeps its last leaf), and the fields in the order they first appeared.
struct Slots {
    leaf: Vec<u32>,
    present: Vec<usize>,
}

impl Slots {
    fn new(fields: usize) -> Self {
        Self {
            leaf: vec![u32::MAX; fields],
            present: Vec::new(),
        }
    }

    fn get(&self, f: usize) -> Option<usize> {
        self.leaf.get(f).copied().filter(|&k| k != u32::MAX).map(|k| k as usize)
    }

    fn insert(&mut self, f: usize, j: usize) {
        if self.leaf.len() <= f {
            self.leaf.resize(f + 1, u32::MAX);
        }
        if self.leaf[f] == u32::MAX {
            self.present.push(f);
        }
        self.leaf[f] = j as u32;
    }

    /// (field, leaf) of every field seen so far in the record.
    fn iter(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.present.iter().map(|&f| (f, self.leaf[f] as usize))
    }
}

/// A shape seen in the stream.
#[derive(Clone, Debug)]
struct Schema {
    shape: Vec<Shape>,
    /// Field id of each leaf.
    fields: Vec<usize>,
    /// Whether each leaf is a number (else a string).
    leaf_is_num: Vec<bool>,
    /// Per leaf: the leaf whose value keys it (the first string leaf of its object, or of the
    /// nearest enclosing object that has one, coded before it) and its keyed-memory table.
    keyed: Vec<Option<(u32, u32)>>,
    /// The order leaves are coded in: numbers and key strings first, then the other strings, so
    /// that a byte string (a LoRaWAN frame) sees every number of its record (the frame counter
    /// after it) whatever the key order.
    order: Vec<usize>,
    /// Per leaf: the numbers before it in its object or the enclosing one (a relation's
    /// arguments: RSSI and SNR for `_esp`, the distance and the gateway's frequency for a
    /// free-space loss).
    args: Vec<Vec<u32>>,
    hash: u16,
    /// Per leaf: the leaf whose value its dictionary table is conditional on, where that one is
    /// coded before it.
    dict_ctx: Vec<Option<u32>>,
    /// Resync periods in which this shape went out in full.
    spelled: Remembered,
}

/// What a field's value was with a given key (`hotspots.#.lat` for gateway `id` X): the
/// long-term memory of functional dependencies. Usable once seen in [`USABLE`] resync periods: a
/// decoder (whose records are a subset of the encoder's) holds the same value or none, and once
/// the field took another value with that key, the rules of [`Core::keyed_value`] apply.
#[derive(Clone, Debug)]
struct Keyed {
    value: Leaf,
    /// Periods the current value went out in.
    seen: Remembered,
    /// The period the value last changed in (a gateway that moved), if it ever did: see
    /// [`Core::keyed_value`].
    changed_at: Option<u64>,
}

/// A long-lived item (a shape, string, keyed value or template) is referred to once it went out
/// in this many resync periods: a decoder lacks it only if it lost a record in each.
const USABLE: u8 = 3;
/// The period of a field no record has used yet.
const NO_PERIOD: u64 = u64::MAX;
/// A field starts a period warm when its last this many periods ended with the same profile.
const WARM_PERIODS: usize = 4;
/// How far (in powers of two) a table entry may move from the profile a period started from and
/// still leave that profile (see [`Field::profile`]).
const PROFILE_SLACK: u8 = 2;
/// The same for a bit's level.
const BIT_SLACK: u8 = 2;

/// Every this many resync periods, one starts no byte string from a template: a decoder keeps
/// templates of complete periods only, so one that lost a record in each period that made a
/// template usable learns it there and decodes again from the next period, instead of never.
const REFRESH: u64 = 8;
/// Every this many resync periods (a multiple of [`REFRESH`]), one is a full refresh period
/// (see [`Core::since`]).
const FULL_REFRESH: u64 = 256;
/// Complete resync periods remembered (a field absent for longer leaves no template).
const COMPLETE_PERIODS: usize = 64;
/// Template entries: a position that varies (a reading), a constant byte, a byte of a number's
/// mantissa, or ciphertext (changed far from the last value at least half the time).
const T_FREE: u8 = 0;
const T_CONST: u8 = 1;
const T_SOURCE: u8 = 2;
const T_CIPHER: u8 = 3;
/// Longest byte string that leaves a template.
const TEMPLATE_MAX: usize = 256;
/// Fewest bytes a template must predict to be worth its reference.
const TEMPLATE_MIN: usize = 3;

/// Cap on each field's memory (entries).
const FIELD_MEMORY_CAP: usize = 4096;
/// Longest string a field's memory keeps.
const FIELD_MEMORY_LEN: usize = 64;

/// Which long-lived items the encoder may refer to in the current period (see
/// [`Core::referable`]).
#[derive(Clone, Copy, Debug)]
struct Referable {
    /// The item went out in this many periods ([`USABLE`]; one on a reliable stream).
    periods: u8,
    /// The last of them is this period or later (see [`Core::since`]).
    since: u64,
}

/// In how many resync periods something long-lived went out.
#[derive(Clone, Debug)]
struct Remembered {
    periods: u8,
    last_epoch: u64,
    /// From the stream's dictionary: both ends hold it from the start, whatever they lost.
    fixed: bool,
}

impl Remembered {
    /// Seen once, in period `epoch`.
    fn first(epoch: u64) -> Self {
        Self {
            periods: 1,
            last_epoch: epoch,
            fixed: false,
        }
    }

    /// Not seen yet.
    fn never() -> Self {
        Self {
            periods: 0,
            last_epoch: NO_PERIOD,
            fixed: false,
        }
    }

    /// Held by both ends from the start (a dictionary's item).
    fn fixed() -> Self {
        Self {
            periods: u8::MAX,
            last_epoch: NO_PERIOD,
            fixed: true,
        }
    }

    /// Whether the encoder may refer to the item: it went out in enough periods, the last one
    /// recent enough.
    fn usable(&self, r: Referable) -> bool {
        self.fixed || (self.periods >= r.periods && self.last_epoch >= r.since)
    }

    /// Seen (again) in period `epoch`.
    fn seen(&mut self, epoch: u64) {
        if !self.fixed && self.last_epoch != epoch {
            self.last_epoch = epoch;
            self.periods = self.periods.saturating_add(1);
        }
    }
}

/// A long-term memory of strings, referred to by a hash of `bits` bits: the record-wide one
/// (16 bits) and one per field (8 bits: a gateway id among the few dozen a device is heard by).
/// A string is usable once sent in [`USABLE`] resync periods and its hash is unique here, and only while
/// this (the encoder's) memory is not full: a full memory takes no more strings, but a decoder's
/// (fewer) might, so its entries stay a subset of the encoder's.
#[derive(Clone, Debug)]
struct StringMemory {
    seen: HashMap<Vec<u8>, Remembered>,
    by_hash: HashMap<u16, Vec<Vec<u8>>>,
    bits: u32,
    cap: usize,
    /// What a reference names, for errors.
    what: &'static str,
}

impl StringMemory {
    fn new(bits: u32, cap: usize, what: &'static str) -> Self {
        Self {
            seen: HashMap::new(),
            by_hash: HashMap::new(),
            bits,
            cap,
            what,
        }
    }

    fn hash(&self, b: &[u8]) -> u16 {
        if self.bits == 16 {
            hash16(b)
        } else {
            u16::from(hash8(b))
        }
    }

    /// Notes that `v` went out in full in period `epoch`.
    fn remember(&mut self, v: Vec<u8>, epoch: u64) {
        if let Some(m) = self.seen.get_mut(&v) {
            m.seen(epoch);
            return;
        }
        if self.seen.len() >= self.cap {
            return;
        }
        self.by_hash.entry(self.hash(&v)).or_default().push(v.clone());
        self.seen.insert(v, Remembered::first(epoch));
    }

    /// Holds `v` from the start, whatever a decoder loses (a dictionary's item).
    fn fix(&mut self, v: Vec<u8>) {
        if self.seen.contains_key(&v) || self.seen.len() >= self.cap {
            return;
        }
        self.by_hash.entry(self.hash(&v)).or_default().push(v.clone());
        self.seen.insert(v, Remembered::fixed());
    }

    /// The strings a reference may name (see [`StringMemory::usable`]); with `fixed`, only
    /// those held from the start.
    fn usable_entries(&self, r: Referable, fixed: bool) -> impl Iterator<Item = &Vec<u8>> + '_ {
        self.seen
            .iter()
            .filter(move |(t, m)| (!fixed || m.fixed) && self.usable(t, r))
            .map(|e| e.0)
    }

    /// Whether the encoder may refer to `text` (see [`Core::referable`]).
    fn usable(&self, text: &[u8], r: Referable) -> bool {
        self.seen.len() < self.cap
            && self.seen.get(text).is_some_and(|m| m.usable(r))
            && self.by_hash.get(&self.hash(text)).is_some_and(|v| v.len() == 1)
    }

    /// Codes a reference to `text` (the encoder's, usable) or reads one.
    fn reference(&self, io: &mut dyn Io, text: &[u8]) -> Result<Vec<u8>, CodecError> {
        let h = io.bits(u32::from(self.hash(text)), self.bits)? as u16;
        if !io.decoding() {
            return Ok(text.to_vec());
        }
        match self.by_hash.get(&h).map(Vec::as_slice) {
            Some([v]) => Ok(v.clone()),
            _ => Err(desync(&format!(
                "{} reference {h:0w$x} is not known here (it went out in a lost record)",
                self.what,
                w = self.bits as usize / 4
            ))),
        }
    }
}

/// Codec-wide adaptive tables, reset at intra records.
#[derive(Clone, Debug)]
struct Tables {
    kind: Adaptive,
    /// A field's first number of a period: predicted from which earlier number of the record.
    first: Adaptive,
    shape: Adaptive,
    count: Adaptive,
    /// Whether a field's first record of the period starts from its profile.
    warm: Bit,
    /// Whether a numeric field's first record of the period starts from its predictor state,
    /// after a cold and after a warm start of its tables.
    warm_pred: [Bit; 2],
    /// The power of two of a changed keyed value's age (see [`Core::change_since`]).
    age: Adaptive,
}

impl Tables {
    fn new() -> Self {
        Self {
            kind: Adaptive::with(&[24, 2, 1, 1], 24),
            first: Adaptive::with(&[24, 2, 1, 1, 1, 1, 1, 1], 16),
            shape: Adaptive::new(SH_SYMBOLS, 24),
            count: Adaptive::with(&residual_weights(), 24),
            warm: Bit::new(3584),
            warm_pred: [Bit::new(1024), Bit::new(3840)],
            age: Adaptive::with(&AGE_WEIGHTS, 16),
        }
    }
}

/// State shared by encoder and decoder.
#[derive(Debug)]
struct Core<'p> {
    prior: &'p Prior,
    opts: TelemetryOptions,
    /// The stream's dictionary, if it has one (see [`dict`]).
    dict: Option<&'p TelemetryDictionary>,
    fields: Vec<Field>,
    /// Per field: its dictionary table, if any.
    dict_of: Vec<Option<&'p ValueTable>>,
    by_path: HashMap<Vec<u8>, usize>,
    key_field: usize,
    verbatim_field: usize,
    schemas: Vec<Schema>,
    by_shape: HashMap<Vec<Shape>, usize>,
    by_hash: HashMap<u16, Vec<usize>>,
    memory: StringMemory,
    /// Long-term tables by generalised path (`hotspots.#.lat`), and each field's table.
    general_ids: HashMap<Vec<u8>, u32>,
    general: Vec<u32>,
    /// Per generalised path: key text to value.
    keyed: Vec<HashMap<u64, Keyed>>,
    /// Per generalised path: the strings it took.
    field_memory: Vec<StringMemory>,
    /// Per generalised path: byte-string templates of complete resync periods (see
    /// [`Core::templates_of`]).
    templates: Vec<StringMemory>,
    /// Per field: the profiles (see [`Field::profile`]) of its last [`WARM_PERIODS`] complete
    /// periods.
    profiles: Vec<Vec<(u64, Vec<u8>)>>,
    /// Per field: its predictor state (see [`PredState`]) at the end of its last
    /// [`WARM_PERIODS`] complete periods, none where it had no number.
    pred_profiles: Vec<Vec<(u64, Option<PredState>)>>,
    /// Field ids by the hash of their paths (a warm predictor names its partners so).
    by_path_hash: HashMap<u64, usize>,
    /// Records committed in the current resync period, and the last periods that were complete
    /// (every record coded here), newest last.
    period_records: u32,
    complete: std::collections::VecDeque<u64>,
    /// The [`USABLE`] latest periods before this one that this end did not see whole (a decoder that
    /// lost records), latest first.
    incomplete: [Option<u64>; USABLE as usize],
    /// Scratch list of each predictor's error (see [`Core::learn`]).
    errs: Vec<(Pred, u128)>,
    keyed_entries: usize,
    /// The key of the leaf being coded (set per leaf by the record walk).
    leaf_key: Option<u64>,
    /// The weights of the leaf's dictionary values given its context's value, where the
    /// dictionary has them (set per leaf by the record walk).
    leaf_row: Option<&'p [u16]>,
    tables: Tables,
    /// Per (field, key) referred to for a changed keyed value in this period: the period from
    /// which on a decoder that saw the key holds the value (see [`Core::change_since`]).
    change_since: HashMap<(usize, u64), u64>,
    prev_schema: Option<usize>,
    /// The schema [`Core::schema_id`] found last (a lookup cache, not coding state).
    last_schema: Option<usize>,
    epoch: u64,
    header: Vec<Vec<u8>>,
    /// The prior's distributions for keys and strings coded so far (speed only: the same bits
    /// as a fresh coder for every string).
    strings: PrefixCache<'p>,
    /// Bits spent per field path (and on shapes), when the encoder keeps accounts.
    costs: Option<HashMap<Vec<u8>, FieldCost>>,
}

/// What one field has cost the encoder.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FieldCost {
    /// Bits, in all records.
    pub bits: f64,
    /// Bits in intra (resync) records.
    pub intra_bits: f64,
    /// Records it appeared in.
    pub records: u64,
}

/// What a record changes in the long-lived state, applied only once it has coded fully.
#[derive(Default)]
struct Pending {
    strings: Vec<Vec<u8>>,
    /// (keyed table, key, value) of every keyed leaf.
    keyed: Vec<(u32, u64, Leaf)>,
    /// (field table, string) of every string leaf.
    field_strings: Vec<(u32, Vec<u8>)>,
    spelled_schema: Option<usize>,
}

impl<'p> Core<'p> {
    fn new(prior: &'p Prior, opts: TelemetryOptions, dict: Option<&'p TelemetryDictionary>) -> Self {
        let mut c = Self {
            prior,
            opts,
            dict,
            fields: Vec::new(),
            dict_of: Vec::new(),
            by_path: HashMap::new(),
            key_field: 0,
            verbatim_field: 0,
            schemas: Vec::new(),
            by_shape: HashMap::new(),
            by_hash: HashMap::new(),
            memory: StringMemory::new(16, MEMORY_CAP, "string"),
            general_ids: HashMap::new(),
            general: Vec::new(),
            keyed: Vec::new(),
            field_memory: Vec::new(),
            templates: Vec::new(),
            profiles: Vec::new(),
            pred_profiles: Vec::new(),
            by_path_hash: HashMap::new(),
            period_records: 0,
            complete: std::collections::VecDeque::new(),
            incomplete: [None; USABLE as usize],
            errs: Vec::new(),
            keyed_entries: 0,
            leaf_key: None,
            leaf_row: None,
            tables: Tables::new(),
            change_since: HashMap::new(),
            prev_schema: None,
            last_schema: None,
            epoch: 0,
            header: Vec::new(),
            strings: PrefixCache::new(prior, prior.text_allowed()),
            costs: None,
        };
        c.key_field = c.field(b"\x00key");
        c.verbatim_field = c.field(b"\x00record");
        c
    }

    fn field(&mut self, path: &[u8]) -> usize {
        if let Some(&f) = self.by_path.get(path) {
            return f;
        }
        let tol = self.opts.tolerance(path);
        // Lossy fields code values of their own, not the dictionary's.
        let table = self.dict.and_then(|d| d.table(path)).filter(|_| tol.is_none());
        self.dict_of.push(table);
        self.fields.push(Field::new(path.to_vec(), tol, table.is_some()));
        self.profiles.push(Vec::new());
        self.pred_profiles.push(Vec::new());
        self.by_path_hash.entry(hash64(path)).or_insert(self.fields.len() - 1);
        let general: Vec<u8> = path
            .split(|&c| c == b'.')
            .map(|c| {
                if !c.is_empty() && c.iter().all(u8::is_ascii_digit) {
                    &b"#"[..]
                } else {
                    c
                }
            })
            .collect::<Vec<_>>()
            .join(&b'.');
        let next = self.general_ids.len() as u32;
        let id = *self.general_ids.entry(general.clone()).or_insert(next);
        if id == next {
            self.keyed.push(HashMap::new());
            self.field_memory
                .push(StringMemory::new(8, FIELD_MEMORY_CAP, "field value"));
            let mut t = StringMemory::new(8, FIELD_MEMORY_CAP, "byte template");
            for v in self.dict.iter().flat_map(|d| d.templates(&general)) {
                t.fix(v.clone());
            }
            self.templates.push(t);
        }
        self.general.push(id);
        self.by_path.insert(path.to_vec(), self.fields.len() - 1);
        self.fields.len() - 1
    }

    fn start(&mut self, seq: u64) -> bool {
        let intra = if self.opts.resync == 0 {
            seq == 0
        } else {
            seq.is_multiple_of(u64::from(self.opts.resync))
        };
        if intra {
            let epoch = if self.opts.resync == 0 {
                0
            } else {
                seq / u64::from(self.opts.resync)
            };
            // Periods before this end's first record count too: nothing it holds is older.
            if epoch > self.epoch {
                let whole = self.period_records == self.opts.resync;
                let skipped = (epoch - 1).saturating_sub(1).max(self.epoch + 1)..epoch;
                for e in std::iter::once(self.epoch).filter(|_| !whole).chain(skipped) {
                    self.incomplete.rotate_right(1);
                    self.incomplete[0] = Some(e);
                }
            }
            self.epoch = epoch;
            self.tables = Tables::new();
            self.change_since.clear();
            self.prev_schema = None;
            self.period_records = 0;
        }
        intra
    }

    fn schema_id(&mut self, shape: &[Shape]) -> usize {
        // Records mostly repeat the last shape looked up: compare with it before hashing.
        if let Some(s) = self.last_schema.filter(|&s| self.schemas[s].shape == shape) {
            return s;
        }
        if let Some(&s) = self.by_shape.get(shape) {
            self.last_schema = Some(s);
            return s;
        }
        let paths = record::leaf_paths(shape);
        let fields: Vec<usize> = paths.iter().map(|(p, _)| self.field(p)).collect();
        let keyed = self.keys_of(&paths, &fields);
        let hash = hash16(&shape_bytes(shape));
        let leaf_is_num: Vec<bool> = shape
            .iter()
            .filter_map(|s| matches!(s, Shape::Num | Shape::Str).then_some(matches!(s, Shape::Num)))
            .collect();
        let mut first = leaf_is_num.clone();
        for &(k, _) in keyed.iter().flatten() {
            first[k as usize] = true;
        }
        let order: Vec<usize> = (0..first.len())
            .filter(|&j| first[j])
            .chain((0..first.len()).filter(|&j| !first[j]))
            .collect();
        let args = (0..paths.len())
            .map(|j| {
                let (obj, up) = (parent(&paths[j].0), parent(parent(&paths[j].0)));
                (0..j)
                    .filter(|&k| paths[k].1 && [obj, up].contains(&parent(&paths[k].0)))
                    .map(|k| k as u32)
                    .collect()
            })
            .collect();
        let mut rank = vec![0; paths.len()];
        for (i, &j) in order.iter().enumerate() {
            rank[j] = i;
        }
        let dict_ctx = (0..paths.len())
            .map(|j| {
                let c = self.dict_of[fields[j]]?.context.as_ref()?;
                let k = paths.iter().position(|(p, _)| *p == c.path)?;
                (rank[k] < rank[j]).then_some(k as u32)
            })
            .collect();
        self.schemas.push(Schema {
            shape: shape.to_vec(),
            fields,
            leaf_is_num,
            keyed,
            order,
            args,
            hash,
            dict_ctx,
            spelled: Remembered::never(),
        });
        let id = self.schemas.len() - 1;
        self.by_shape.insert(shape.to_vec(), id);
        self.last_schema = Some(id);
        self.by_hash.entry(hash).or_default().push(id);
        id
    }

    /// For each leaf of a shape (paths and whether numeric): its key leaf and keyed table.
    /// Starts field `f`'s state afresh for the current period; a byte-string field first leaves
    /// the template of its last period when that period was complete here (both ends then hold
    /// the same state, so a decoder's templates are a subset of the encoder's).
    fn reset_field(&mut self, f: usize) -> bool {
        let old = self.fields[f].epoch;
        if old == self.epoch {
            return false;
        }
        let templates = if self.complete.contains(&old) {
            let p = self.fields[f].profile();
            keep_last_periods(&mut self.profiles[f], (old, p));
            let st = self.pred_state(f);
            keep_last_periods(&mut self.pred_profiles[f], (old, st));
            self.templates_of(f)
        } else {
            Vec::new()
        };
        self.fields[f].reset(self.epoch);
        self.fields[f].dict_tab = self.dict_of[f].map(|t| Adaptive::with(&t.weights, DICT_INC));
        for t in templates {
            self.templates[self.general[f] as usize].remember(t, old);
        }
        true
    }

    /// Whether this is a refresh period: it refers to no template, profile or changed keyed
    /// value, so a decoder that lost what several periods made usable learns it again here
    /// instead of never.
    fn refresh(&self) -> bool {
        !self.reliable() && self.epoch.is_multiple_of(REFRESH)
    }

    /// A stream without resync points (`resync` 0): a decoder sees every record, in order, so
    /// whatever went out once is known to it.
    fn reliable(&self) -> bool {
        self.opts.resync == 0
    }

    /// The long-lived items the encoder may refer to now: those that went out in [`USABLE`]
    /// periods, the last since the last full refresh ([`Core::since`]); on a reliable stream,
    /// any that went out.
    fn referable(&self) -> Referable {
        Referable {
            periods: if self.reliable() { 1 } else { USABLE },
            since: self.since(),
        }
    }

    /// The first period a long-lived item (a shape, string, keyed value or template) must have
    /// gone out in for the encoder to refer to it: the last full refresh period, one in every
    /// [`FULL_REFRESH`]. A decoder that lacks an item (it lost a record in every period that sent
    /// it) gets it again the first time it is used after a full refresh, so none stays missing
    /// for longer than that.
    fn since(&self) -> u64 {
        self.epoch - self.epoch % FULL_REFRESH
    }

    /// A field's first record of a period may start its adaptive tables from the profile its
    /// last [`WARM_PERIODS`] periods ended with, when all were complete and their profiles are the
    /// same (a stream whose statistics are steady): a decoder that lost records in all but one
    /// of them (a burst across a period boundary, say) holds the profile from that one. A bit
    /// says whether the field starts warm. Every [`REFRESH`]th period starts cold, so a decoder
    /// that lost more learns afresh there.
    fn warm_start(&mut self, io: &mut dyn Io, f: usize) -> Result<bool, CodecError> {
        if !self.may_warm() {
            return Ok(false);
        }
        let hist = &self.profiles[f];
        let (warm, held) = warm_from(self.epoch, |e| hist.iter().find(|h| h.0 == e).map(|h| &h.1));
        let held = held.cloned();
        if io.bit(&mut self.tables.warm, warm && !io.decoding())? {
            let p = held.ok_or_else(|| desync("warm start from periods this decoder lost"))?;
            self.fields[f].warm(p);
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether this period's fields may start warm (tables or predictor): not on a reliable
    /// stream, not before [`WARM_PERIODS`] periods went by, not in a refresh period.
    fn may_warm(&self) -> bool {
        !self.reliable() && self.epoch >= WARM_PERIODS as u64 && !self.refresh()
    }

    /// A numeric field's predictor state at the end of its period (see [`PredState`]). A field
    /// that started warm keeps the steps it started from while each step of the period is within
    /// 1/16 of one of them, and the last difference likewise, so a steady stream gives the same
    /// state period after period, which is what makes it usable.
    fn pred_state(&self, f: usize) -> Option<PredState> {
        let fld = &self.fields[f];
        let (p, ps) = fld.prev?;
        let path = |g: usize| hash64(&self.fields[g].path);
        let pred = match fld.pred {
            Pred::Prev => PredByPath::Prev,
            Pred::Linear => PredByPath::Linear,
            Pred::Step => PredByPath::Step,
            Pred::Partner(g) => PredByPath::Partner(path(g)),
            Pred::Derived(r, a, b) => PredByPath::Derived(r, path(a), path(b)),
        };
        // Differences rounded to about 1/16 of themselves and steps to about 1/1024, so that a
        // steady field's jitter gives the same state in most periods.
        let delta = fld
            .delta
            .filter(|_| matches!(fld.pred, Pred::Partner(_) | Pred::Linear));
        // Steps seen more than once (a sensor's report periods, not the gap of a lost uplink).
        let mut steps: Vec<i128> = if fld.pred == Pred::Step {
            let seen = |i: usize| fld.step_seen.get(i).copied().unwrap_or(0);
            (0..fld.steps.len())
                .filter(|&i| seen(i) >= 2)
                .map(|i| round_to_bits(fld.steps[i], 10))
                .collect()
        } else {
            Vec::new()
        };
        steps.sort_unstable();
        steps.dedup();
        // A partner's value plus a jitter is exact by chance only.
        let exact = match fld.pred {
            Pred::Partner(_) => delta == Some(0),
            Pred::Step => false,
            _ => fld.exact,
        };
        let mut st = PredState {
            pred,
            exact,
            scale: fld.max_scale.unwrap_or(ps),
            trim: trims_zeros(p, ps),
            steps,
            delta: delta.map(|d| round_to_bits(d, 4)),
        };
        if let Some(w) = &fld.warm_pred {
            if st.steps.iter().all(|&d| w.steps.iter().any(|&e| same_step(d, e))) {
                st.steps.clone_from(&w.steps);
            }
            if let (Some(d), Some(e)) = (st.delta, w.delta) {
                if same_step(d, e) {
                    st.delta = Some(e);
                }
            }
            st.trim = w.trim;
        }
        Some(st)
    }

    /// A numeric field's first record of a period may start its predictor from the state its
    /// last [`WARM_PERIODS`] complete periods ended with, when all gave the same one (see
    /// [`Core::pred_state`]): the relation or partner that predicted it, or the steps of a
    /// sensor's report period, so the period's first values cost what later ones do. The same
    /// rules as [`Core::warm_start`]: a bit says whether, a decoder holds the state if it saw any
    /// one of those periods whole, and refresh periods start cold.
    fn warm_predictor(&mut self, io: &mut dyn Io, f: usize, tables_warm: bool) -> Result<(), CodecError> {
        if !self.may_warm() {
            return Ok(());
        }
        let hist = &self.pred_profiles[f];
        let (warm, held) = warm_from(self.epoch, |e| {
            hist.iter().find(|h| h.0 == e).and_then(|h| h.1.as_ref())
        });
        let held = held.cloned();
        if !io.bit(
            &mut self.tables.warm_pred[usize::from(tables_warm)],
            warm && !io.decoding(),
        )? {
            return Ok(());
        }
        let st = held.ok_or_else(|| desync("warm predictor from periods this decoder lost"))?;
        let id = |h: u64| {
            self.by_path_hash
                .get(&h)
                .copied()
                .ok_or_else(|| desync("warm predictor names a field this decoder has not seen"))
        };
        let pred = match st.pred {
            PredByPath::Prev => Pred::Prev,
            PredByPath::Linear => Pred::Linear,
            PredByPath::Step => Pred::Step,
            PredByPath::Partner(g) => Pred::Partner(id(g)?),
            PredByPath::Derived(r, a, b) => Pred::Derived(r, id(a)?, id(b)?),
        };
        let fld = &mut self.fields[f];
        fld.pred = pred;
        fld.exact = st.exact;
        fld.steps.clone_from(&st.steps);
        fld.warm_pred = Some(st);
        Ok(())
    }

    /// What a period taught about a byte-string field, for the next periods' first values: per
    /// layout (values of one length), per byte of its last value, the number (by path) and
    /// mantissa byte it carries, or the byte if it never changed, or nothing. Stable fields (a
    /// sensor's payload layout, a device address in a LoRaWAN frame) give the same templates in
    /// every period, so they become usable.
    fn templates_of(&self, f: usize) -> Vec<Vec<u8>> {
        let fld = &self.fields[f];
        let mut out = Vec::new();
        for lay in &fld.layouts {
            if lay.compared == 0 || lay.value.len() > TEMPLATE_MAX {
                continue;
            }
            let mut t = (lay.value.len() as u32).to_le_bytes().to_vec();
            let mut useful = false;
            for (i, &b) in lay.value.iter().enumerate() {
                if let Some((g, k)) = lay.source.get(i).copied().flatten() {
                    t.push(T_SOURCE);
                    t.extend_from_slice(&hash64(&self.fields[g].path).to_le_bytes());
                    t.push(k);
                    useful = true;
                } else if lay.varied.get(i) == Some(&false) {
                    t.extend_from_slice(&[T_CONST, b]);
                    useful = true;
                } else if lay.far.get(i).is_some_and(|&x| 2 * u32::from(x) >= lay.compared) {
                    t.push(T_CIPHER);
                } else {
                    t.push(T_FREE);
                }
            }
            if useful {
                out.push(t);
            }
        }
        out
    }

    /// The usable template of generalised path `gid` for values of `raw`'s length that predicts
    /// most bytes of `raw` (at least [`TEMPLATE_MIN`]), for the encoder.
    fn best_template(&self, gid: usize, raw: &[u8], nums: &[(usize, i128, u8)], fixed: bool) -> Option<Vec<u8>> {
        self.templates[gid]
            .usable_entries(self.referable(), fixed)
            .filter_map(|t| {
                let entries = parse_template(t).ok().filter(|e| e.len() == raw.len())?;
                let preds = self.template_bytes(&entries, nums);
                let score = preds.iter().zip(raw).filter(|(p, &b)| p.0 == Some(b)).count();
                (score >= TEMPLATE_MIN).then_some((score, t))
            })
            .max()
            .map(|(_, t)| t.clone())
    }

    /// A template's prediction of each byte, with the (field, mantissa byte) it came from.
    fn template_bytes(&self, entries: &[TByte], nums: &[(usize, i128, u8)]) -> Vec<TPred> {
        entries
            .iter()
            .map(|e| match *e {
                TByte::Free | TByte::Cipher => (None, None),
                TByte::Const(b) => (Some(b), None),
                TByte::Source(h, k) => nums
                    .iter()
                    .find(|x| hash64(&self.fields[x.0].path) == h)
                    .map_or((None, None), |x| (Some(source_byte(x.1, x.2, k)), Some((x.0, k)))),
            })
            .collect()
    }

    /// A period's first layout from a template: constant bytes as its value, sourced bytes from
    /// their numbers, both likely right; free bytes (ciphertext) likely changed and far.
    fn template_layout(&self, entries: &[TByte], nums: &[(usize, i128, u8)]) -> Layout {
        let preds = self.template_bytes(entries, nums);
        let n = entries.len().min(BYTE_POSITIONS);
        // Ciphertext: settled on "changed, far"; a reading learns afresh; the rest: "same".
        let same = |i: usize| match entries[i] {
            TByte::Cipher => Bit::settled(32),
            TByte::Free => Bit::new(2048),
            _ => Bit::settled(3968),
        };
        let near = |i: usize| match entries[i] {
            TByte::Cipher => Bit::settled(256),
            _ => Bit::new(2048),
        };
        Layout {
            value: entries
                .iter()
                .map(|e| match e {
                    TByte::Const(b) => *b,
                    _ => 0,
                })
                .collect(),
            nums: Vec::new(),
            from_template: true,
            same: (0..n).map(same).collect(),
            near: (0..n).map(near).collect(),
            partner: vec![None; n],
            unknown: entries.iter().map(|e| matches!(e, TByte::Free)).collect(),
            cipher: entries.iter().map(|e| matches!(e, TByte::Cipher)).collect(),
            source: preds.iter().take(n).map(|p| p.1).collect(),
            varied: Vec::new(),
            far: Vec::new(),
            compared: 0,
        }
    }

    fn keys_of(&self, paths: &[(Vec<u8>, bool)], fields: &[usize]) -> Vec<Option<(u32, u32)>> {
        (0..paths.len())
            .map(|j| {
                let own = parent(&paths[j].0);
                let mut obj = own;
                let key = loop {
                    let first = paths[..j].iter().position(|(p, num)| !num && parent(p) == obj);
                    if first.is_some() || obj.is_empty() {
                        break first;
                    }
                    obj = parent(obj);
                }?;
                // A nested leaf that only the record's top-level key (the device) would key is
                // keyed by the number just before it in its own object instead: a channel number
                // for its frequency.
                let sibling = j
                    .checked_sub(1)
                    .filter(|&i| obj.is_empty() && !own.is_empty() && paths[i].1 && parent(&paths[i].0) == own);
                Some((sibling.unwrap_or(key) as u32, self.general[fields[j]]))
            })
            .collect()
    }

    /// Applies a fully coded record's long-lived changes.
    fn commit(&mut self, p: Pending, schema: Option<usize>) {
        // A decoder only commits records whose chain reaches back to the period's intra record,
        // so a full count means it decoded the whole period, as the encoder coded it.
        self.period_records += 1;
        if !self.reliable() && self.period_records == self.opts.resync {
            self.complete.push_back(self.epoch);
            if self.complete.len() > COMPLETE_PERIODS {
                self.complete.pop_front();
            }
        }
        if let Some(s) = p.spelled_schema {
            self.schemas[s].spelled.seen(self.epoch);
        }
        let epoch = self.epoch;
        for (t, key, v) in p.keyed {
            let table = &mut self.keyed[t as usize];
            if let Some(e) = table.get_mut(&key) {
                if e.value != v {
                    e.value = v;
                    e.seen = Remembered::first(epoch);
                    e.changed_at = Some(epoch);
                } else {
                    e.seen.seen(epoch);
                }
            } else if self.keyed_entries < MEMORY_CAP {
                self.keyed_entries += 1;
                table.insert(
                    key,
                    Keyed {
                        value: v,
                        seen: Remembered::first(epoch),
                        changed_at: None,
                    },
                );
            }
        }
        for (t, v) in p.field_strings {
            self.field_memory[t as usize].remember(v, epoch);
        }
        for s in p.strings {
            self.memory.remember(s, epoch);
        }
        self.prev_schema = schema;
    }

    /// The record walk shared by encoder and decoder. `rec` holds the encoder's record (the
    /// decoder passes an empty one and gets the decoded one back).
    fn code(&mut self, io: &mut dyn Io, rec: &Input, intra: bool) -> Result<(Output, Pending), CodecError> {
        let mut pending = Pending::default();
        // Bits are only counted when the encoder keeps accounts.
        let keep = self.costs.is_some();
        let mut mark = if keep { io.coded_bits() } else { 0.0 };
        let mut account = |costs: &mut Option<HashMap<Vec<u8>, FieldCost>>, path: &[u8], now: f64| {
            if let Some(c) = costs {
                let e = c.entry(path.to_vec()).or_default();
                e.bits += now - mark;
                if intra {
                    e.intra_bits += now - mark;
                }
                e.records += 1;
            }
            mark = now;
        };
        // Record kind and shape.
        let (kind, schema) = match rec {
            Input::Record(p) => {
                let id = self.schema_id(&p.shape);
                let sc = &self.schemas[id];
                let unique = self.by_hash.get(&sc.hash).is_some_and(|v| v.len() == 1);
                let kind = if !intra && self.prev_schema == Some(id) {
                    R_SAME
                } else if unique && sc.spelled.usable(self.referable()) {
                    R_REF
                } else {
                    R_SPELL
                };
                (kind, Some(id))
            }
            Input::Verbatim(_) => (R_VERBATIM, None),
            Input::Decode => (0, None),
        };
        let kind = io.symbol(&mut self.tables.kind, kind)?;
        let schema = match kind {
            R_SAME => {
                if intra {
                    return Err(CodecError::Payload("intra record refers to the previous record".into()));
                }
                Some(self.prev_schema.ok_or_else(|| desync("no previous record"))?)
            }
            R_REF => {
                let h = io.bits(u32::from(schema.map_or(0, |s| self.schemas[s].hash)), 16)? as u16;
                if io.decoding() {
                    match self.by_hash.get(&h).map(Vec::as_slice) {
                        Some([s]) => Some(*s),
                        _ => {
                            return Err(desync(&format!(
                                "record shape {h:04x} is not known here (it went out in a lost record)"
                            )))
                        }
                    }
                } else {
                    schema
                }
            }
            R_SPELL => {
                let shape = self.spell(io, schema.map(|s| self.schemas[s].shape.clone()), &mut pending)?;
                let id = self.schema_id(&shape);
                pending.spelled_schema = Some(id);
                Some(id)
            }
            R_VERBATIM => {
                let v = match rec {
                    Input::Verbatim(v) => v.as_slice(),
                    _ => &[],
                };
                let f = self.verbatim_field;
                let out = self.prior_string(io, f, v, TAG_STRING)?;
                return Ok((Output::Verbatim(out), pending));
            }
            _ => return Err(CodecError::Payload("unknown record kind".into())),
        };
        let schema = schema.expect("every arm above gives a schema");
        account(
            &mut self.costs,
            b"(record shape)",
            if keep { io.coded_bits() } else { 0.0 },
        );
        let fields = self.schemas[schema].fields.clone();
        let leaf_is_num = self.schemas[schema].leaf_is_num.clone();
        let keyed = self.schemas[schema].keyed.clone();
        let order = self.schemas[schema].order.clone();
        let dict_ctx = self.schemas[schema].dict_ctx.clone();
        let mut leaves: Vec<Vec<u8>> = vec![Vec::new(); fields.len()];
        // Numeric value of each leaf in this record (for cross-field prediction).
        let mut cur: Vec<Option<(i128, u8)>> = vec![None; fields.len()];
        let mut slot = Slots::new(self.fields.len());
        // Per leaf used as a key: its hash, or none for a timestamp (computed once).
        let mut key_hashes: Vec<Option<Option<u64>>> = vec![None; fields.len()];
        let refresh = self.refresh();
        for &j in &order {
            let f = fields[j];
            if self.reset_field(f) {
                let tables_warm = self.warm_start(io, f)?;
                if leaf_is_num[j] {
                    self.warm_predictor(io, f, tables_warm)?;
                }
            }
            let text = match rec {
                Input::Record(p) => p.leaves.get(j).map_or(&[][..], Vec::as_slice),
                _ => &[],
            };
            // The value this field had with this record's key, where both ends may use it (the
            // decoder takes whatever it holds: the encoder only refers to values it cannot lack).
            // A timestamp never repeats: no key (both ends see the key's text). Keys go by a 64-bit
            // hash: keys that collide only share an entry, whose value is then contradicted or
            // the same, so a collision costs bits, never correctness.
            let by_key = keyed[j]
                .filter(|_| self.fields[f].tolerance.is_none())
                .and_then(|(k, t)| {
                    let k = k as usize;
                    let h = *key_hashes[k]
                        .get_or_insert_with(|| parse_time(&leaves[k]).is_none().then(|| hash64(&leaves[k])));
                    h.map(|h| (h, t))
                });
            let known = by_key
                .and_then(|(h, t)| self.keyed[t as usize].get(&h))
                .filter(|e| {
                    let settled = |c: u64| self.reliable() || (!refresh && self.epoch > c + CHANGE_SETTLE);
                    io.decoding() || (e.seen.usable(self.referable()) && e.changed_at.is_none_or(settled))
                })
                .map(|e| (e.value.clone(), e.changed_at, e.seen.last_epoch));
            let known = known.as_ref().map(|(v, c, e)| (v, *c, *e));
            self.leaf_key = by_key.map(|(h, _)| h);
            self.leaf_row = dict_ctx[j].and_then(|k| self.dict_of[f]?.context.as_ref()?.row(&leaves[k as usize]));
            let leaf = if leaf_is_num[j] {
                self.number(io, f, text, &cur, &slot, by_key.map(|_| known))?
            } else {
                self.string(io, f, text, &cur, &slot, by_key.map(|_| known), &mut pending)?
            };
            cur[j] = leaf.1;
            if let (Some(key), Some(v)) = (self.leaf_key.take(), leaf.1) {
                self.fields[f].key_prev.insert(key, v);
            }
            if let Some((h, t)) = by_key {
                // A number by its value: `868.1` and its f32 spelling `868.0999755859375` (two
                // network-server versions) are the same entry, not a contradiction.
                let v = match f32_widened(&leaf.0).filter(|_| leaf_is_num[j]) {
                    Some(d) => (format_decimal(d.0, d.1).into_bytes(), Some(d)),
                    None => leaf.clone(),
                };
                pending.keyed.push((t, h, v));
            }
            let out = leaf.0;
            slot.insert(f, j);
            account(
                &mut self.costs,
                &self.fields[f].path,
                if keep { io.coded_bits() } else { 0.0 },
            );
            leaves[j] = out;
        }
        self.learn(schema, &fields, &cur);
        Ok((Output::Record(leaves, schema), pending))
    }

    /// After a record: choose each numeric field's predictor for the next one and shift values.
    fn learn(&mut self, schema: usize, fields: &[usize], cur: &[Option<(i128, u8)>]) {
        let args = &self.schemas[schema].args;
        let real: Vec<Option<f64>> = cur.iter().map(|c| c.and_then(|(m, s)| num_f64(m, s))).collect();
        let mut choice = Vec::with_capacity(fields.len());
        for (j, &f) in fields.iter().enumerate() {
            let Some((v, s)) = cur[j] else {
                choice.push(None);
                continue;
            };
            let fld = &self.fields[f];
            let Some((p, ps)) = fld.prev.filter(|p| p.1 == s) else {
                // First value of the epoch: a field of this record at the same scale that is
                // close to it (a copy of a timestamp, say) predicts it better than its own past.
                let near = fields[..j]
                    .iter()
                    .enumerate()
                    .filter_map(|(k, &g)| cur[k].filter(|c| c.1 == s).map(|c| (v.abs_diff(c.0), k, g)))
                    .min()
                    .map(|(d, _, g)| (d, g));
                let close = |e: u128| e.saturating_mul(1000) < v.unsigned_abs();
                // A warm start's steps or last difference serve the period's second value.
                let keep =
                    fld.prev.is_none() && fld.warm_pred.is_some() && matches!(fld.pred, Pred::Step | Pred::Linear);
                choice.push(Some(match (derived(&args[j], fields, &real, v, s, fld.pred), near) {
                    (Some((e, d)), _) if close(e) => (d, e == 0),
                    (_, Some((d, g))) if close(d) => (Pred::Partner(g), d == 0),
                    _ if keep => (fld.pred, fld.warm_pred.as_ref().is_some_and(|w| w.exact)),
                    _ => (Pred::Prev, false),
                }));
                continue;
            };
            // Every predictor's error on this value; the one with the lowest running cost (of
            // the last few values, not the last alone: a noisy field's best predictor of one value
            // is chance) predicts the next.
            let mut errs = std::mem::take(&mut self.errs);
            errs.clear();
            if fld.steps.len() >= 2 {
                let e = fld
                    .steps
                    .iter()
                    .map(|&d| v.abs_diff(p.saturating_add(d)))
                    .min()
                    .unwrap_or(u128::MAX);
                errs.push((Pred::Step, e));
            }
            errs.push((Pred::Prev, v.abs_diff(p)));
            if let Some((p2, _)) = fld.prev2.filter(|p| p.1 == ps) {
                errs.push((Pred::Linear, v.abs_diff(2 * p - p2)));
            } else if let Some(d) = fld.warm_pred.as_ref().filter(|w| w.scale == s).and_then(|w| w.delta) {
                // The period's second value: the last difference of earlier periods.
                errs.push((Pred::Linear, v.abs_diff(p.saturating_add(d))));
            }
            // Other fields and relations only where nothing simpler was exact, or the one in use
            // (they cost a pass over the record's numbers).
            let simple_exact = errs.iter().any(|e| e.1 == 0);
            for (k, &g) in fields[..j].iter().enumerate() {
                if simple_exact && fld.pred != Pred::Partner(g) {
                    continue;
                }
                let (Some((vk, sk)), Some((pk, _))) = (cur[k], self.fields[g].prev.filter(|q| q.1 == s)) else {
                    continue;
                };
                if sk != s {
                    continue;
                }
                errs.push((Pred::Partner(g), (v - vk).abs_diff(p - pk)));
            }
            if !simple_exact || matches!(fld.pred, Pred::Derived(..)) {
                if let Some(d) = derived(&args[j], fields, &real, v, s, fld.pred) {
                    errs.push((d.1, d.0));
                }
            }
            let fld = &mut self.fields[f];
            for sc in fld.scores.iter_mut() {
                sc.1 -= sc.1 / 4;
                sc.1 += errs
                    .iter()
                    .find(|e| e.0 == sc.0)
                    .map_or(MISSING_COST, |e| error_cost(e.1));
            }
            for &(pr, e) in &errs {
                if !fld.scores.iter().any(|sc| sc.0 == pr) {
                    fld.scores.push((pr, 4 * error_cost(e)));
                }
            }
            let cur_score = fld.scores.iter().find(|sc| sc.0 == fld.pred).map(|sc| sc.1);
            let mut best = (u32::MAX, Pred::Prev);
            for &(pr, _) in &errs {
                let sc = fld.scores.iter().find(|sc| sc.0 == pr).map_or(u32::MAX, |sc| sc.1);
                if sc < best.0 {
                    best = (sc, pr);
                }
            }
            if cur_score.is_some_and(|c| c <= best.0) && errs.iter().any(|e| e.0 == fld.pred) {
                best.1 = fld.pred;
            }
            let e = errs.iter().find(|e| e.0 == best.1).map_or(1, |e| e.1);
            choice.push(Some((best.1, e == 0)));
            self.errs = errs;
        }
        for (j, &f) in fields.iter().enumerate() {
            let delta = match (choice[j], cur[j]) {
                (Some((Pred::Partner(g), _)), Some((v, s))) => fields
                    .iter()
                    .position(|&x| x == g)
                    .and_then(|k| cur[k])
                    .filter(|c| c.1 == s)
                    .map(|c| v - c.0),
                (Some((Pred::Linear, _)), Some((v, s))) => self.fields[f].prev.filter(|p| p.1 == s).map(|p| v - p.0),
                _ => None,
            };
            let fld = &mut self.fields[f];
            fld.delta = delta;
            if let Some((c, exact)) = choice[j] {
                fld.pred = c;
                fld.exact = exact;
            }
            if let Some(v) = cur[j] {
                if let Some(p) = fld.prev.filter(|p| p.1 == v.1) {
                    note_step(&mut fld.steps, &mut fld.step_seen, v.0.saturating_sub(p.0));
                }
                fld.prev2 = fld.prev;
                fld.prev = Some(v);
                fld.max_scale = fld.max_scale.max(Some(v.1));
            }
        }
    }

    fn predict(&self, f: usize, scale: u8, cur: &[Option<(i128, u8)>], slot: &Slots) -> i128 {
        let fld = &self.fields[f];
        // The last difference a warm start gave, at this scale.
        let warm_delta = fld
            .warm_pred
            .as_ref()
            .filter(|w| w.scale == scale)
            .and_then(|w| w.delta);
        let Some((p, ps)) = fld.prev else {
            // A period's first value: only a warm relation or partner predicts it.
            return match fld.pred {
                Pred::Derived(rel, a, b) if fld.warm_first() => {
                    let arg = |g: usize| slot.get(g).and_then(|k| cur[k]).and_then(|(m, s)| num_f64(m, s));
                    let x = arg(a).zip(arg(b)).and_then(|(a, b)| rel.eval(a, b));
                    x.and_then(|x| f64_mantissa(x, scale)).unwrap_or(0)
                }
                Pred::Partner(g) if fld.warm_first() => match slot.get(g).and_then(|k| cur[k]) {
                    Some((vk, sk)) if sk == scale => vk.saturating_add(warm_delta.unwrap_or(0)),
                    _ => 0,
                },
                _ => 0,
            };
        };
        let rescale = |v: i128, from: u8| rescale(v, from, scale);
        match fld.pred {
            Pred::Linear => match fld.prev2 {
                Some((p2, s2)) if s2 == ps && ps == scale => (2 * p).saturating_sub(p2),
                // The period's second value: the last difference of earlier periods.
                None if ps == scale => p.saturating_add(warm_delta.unwrap_or(0)),
                _ => rescale(p, ps),
            },
            Pred::Partner(g) => match (slot.get(g).and_then(|k| cur[k]), self.fields[g].prev) {
                (Some((vk, sk)), Some((pk, pks))) if sk == scale && pks == scale && ps == scale => {
                    vk.saturating_add(p - pk)
                }
                _ => rescale(p, ps),
            },
            // Coded with its index in `mantissa`; here only when the scale changed.
            Pred::Step => rescale(p, ps),
            Pred::Derived(rel, a, b) => {
                let arg = |g: usize| slot.get(g).and_then(|k| cur[k]).and_then(|(m, s)| num_f64(m, s));
                let x = arg(a).zip(arg(b)).and_then(|(a, b)| rel.eval(a, b));
                x.and_then(|x| f64_mantissa(x, scale)).unwrap_or_else(|| rescale(p, ps))
            }
            Pred::Prev => {
                // The value this field last had with the leaf's key in this period (a gateway's
                // last RSSI) when there is one: closer than the last record's (another gateway).
                let by_key = self.leaf_key.as_ref().and_then(|k| fld.key_prev.get(k));
                match by_key {
                    Some(&(v, s)) => rescale(v, s),
                    None => rescale(p, ps),
                }
            }
        }
    }

    fn number(
        &mut self,
        io: &mut dyn Io,
        f: usize,
        text: &[u8],
        cur: &[Option<(i128, u8)>],
        slot: &Slots,
        keyed: Option<Option<KnownValue<'_>>>,
    ) -> Result<Leaf, CodecError> {
        let known = keyed.flatten();
        // A field whose predictor was exact last time: first, whether it is again.
        let fld = &self.fields[f];
        let last = match (fld.prev, &fld.warm_pred) {
            (Some((pm, ps)), _) => Some((ps, trims_zeros(pm, ps))),
            (None, Some(w)) if fld.warm_first() => Some((w.scale, w.trim)),
            _ => None,
        };
        if let Some((ps, trim)) = last.filter(|_| fld.exact && fld.pred != Pred::Step && fld.tolerance.is_none()) {
            let (mut p, mut ps) = (self.predict(f, ps, cur, slot), ps);
            // Without trailing zeros (`-111.7` after `-111.94`) unless the last value kept one.
            if trim {
                while ps > 0 && p % 10 == 0 {
                    p /= 10;
                    ps -= 1;
                }
            }
            let t = format_decimal(p, ps).into_bytes();
            if io.bit(&mut self.fields[f].hit, !io.decoding() && t == text)? {
                let out = (t, Some((p, ps)));
                self.fields[f].remember_num(&out);
                return Ok(out);
            }
        }
        // The known value as its f32 spelling, when that is how this one is written.
        let widened = |k: &Leaf| k.1.and_then(|(m, s)| f32_text(m, s)).map(String::into_bytes);
        let (class, value) = if io.decoding() {
            (0, None)
        } else if let Some((_, changed, _)) =
            known.filter(|(k, ..)| k.0 == text || widened(k).is_some_and(|w| w == text))
        {
            (
                if changed.is_some() {
                    NUM_KEYED_CHANGED
                } else {
                    NUM_KEYED
                },
                None,
            )
        } else {
            let mtf = self.fields[f].num_mtf.iter().position(|(t, _)| t == text);
            match (self.dict_class(f, text, mtf, keyed.is_some(), NUM_DICT), mtf) {
                (Some(c), _) => (c, None),
                (None, Some(i)) => (i, None),
                (None, None) => self.num_value(f, text),
            }
        };
        let fld = &mut self.fields[f];
        let table = if keyed.is_some() {
            &mut fld.num_class_keyed
        } else {
            &mut fld.num_class
        };
        let class = io.symbol(table, class)?;
        let out = if class < MTF {
            self.fields[f]
                .num_mtf
                .get(class)
                .cloned()
                .ok_or_else(|| desync("number refers to a value this decoder has not seen"))?
        } else if class == NUM_KEYED || class == NUM_KEYED_CHANGED {
            let k = self.keyed_value(io, f, known, class == NUM_KEYED_CHANGED)?;
            let as_f32 = !io.decoding() && k.0 != text;
            // In the spelling of the field's last number when it has one.
            let ctx = self.fields[f].num_mtf.first().map_or(0, |l| {
                // `868.0999755859375`, not `868.5` (which both spellings write alike).
                let f32ish = f32_widened(&l.0).is_some_and(|d| format_decimal(d.0, d.1).as_bytes() != &l.0[..]);
                1 + usize::from(f32ish)
            });
            if io.bit(&mut self.fields[f].keyed_f32[ctx], as_f32)? {
                let w = widened(k).ok_or_else(|| CodecError::Payload("keyed f32 number out of range".into()))?;
                (w, k.1)
            } else {
                k.clone()
            }
        } else if class == NUM_RAW {
            (self.prior_string(io, f, text, TAG_STRING)?, None)
        } else if class == NUM_DICT {
            let t = self.dict_value(io, f, text)?;
            let (c, v) = self.num_value(f, &t);
            if c == NUM_F32 {
                self.fields[f].f32_scale = v.map(|v| v.1);
            }
            (t, v)
        } else {
            let (m, scale) = value.unwrap_or((0, 0));
            let scale = io.symbol(&mut self.fields[f].scale, usize::from(scale))? as u8;
            let (m, text) = self.mantissa(io, f, m, scale, class == NUM_DEC, cur, slot)?;
            if class == NUM_F32 {
                self.fields[f].f32_scale = Some(scale);
                let t = f32_text(m, scale).ok_or_else(|| CodecError::Payload("f32 number out of range".into()))?;
                (t.into_bytes(), Some((m, scale)))
            } else {
                (text, Some((m, scale)))
            }
        };
        self.fields[f].remember_num(&out);
        Ok(out)
    }

    /// A number's class and value when coded as a new value (not a reference): a decimal, an
    /// `f32` value printed as `f64`, or neither.
    fn num_value(&self, f: usize, text: &[u8]) -> (usize, Option<Num>) {
        let dec = parse_decimal(text);
        // An f32 reading only wins over a decimal with three more decimals (below).
        let f32w = if dec.is_some_and(|d| d.1 < 3) {
            None
        } else {
            f32_widened(text)
        };
        // A short decimal that is also the f32 spelling of a value at the scale of the
        // field's last f32 number (`-21.5`, `-16` among `-16.799999237060547`) is that f32
        // value: the field keeps one class and one scale.
        let same_f32 = self.fields[f].f32_scale.zip(dec).and_then(|(sf, (m, s))| {
            let m = m.checked_mul(10i128.checked_pow(u32::from(sf.checked_sub(s)?))?)?;
            (f32_text(m, sf)?.as_bytes() == text).then_some((m, sf))
        });
        match (dec, f32w.or(same_f32)) {
            (Some(_), Some(w)) if same_f32 == Some(w) => (NUM_F32, Some(w)),
            (Some(d), Some(w)) if w.1 + 3 <= d.1 => (NUM_F32, Some(w)),
            (Some(d), _) => (NUM_DEC, Some(d)),
            (None, Some(w)) => (NUM_F32, Some(w)),
            (None, None) => (NUM_RAW, None),
        }
    }

    /// The encoder's choice between a value's place in the field's recent values (`mtf`) and
    /// its dictionary entry, by their cost under the tables as they stand: `class` (the
    /// dictionary class) or the recent value's index, or none when the dictionary lacks it.
    fn dict_class(&self, f: usize, text: &[u8], mtf: Option<usize>, keyed: bool, class: usize) -> Option<usize> {
        let fld = &self.fields[f];
        let i = self.dict_of[f]?.find(text)?;
        let tab = fld.dict_tab.as_ref()?;
        let classes = match (class == NUM_DICT, keyed) {
            (true, false) => &fld.num_class,
            (true, true) => &fld.num_class_keyed,
            (false, false) => &fld.str_class,
            (false, true) => &fld.str_class_keyed,
        };
        let cost = match self.leaf_row {
            Some(row) => (row.iter().map(|&w| f64::from(w)).sum::<f64>() / f64::from(row[i].max(1))).log2(),
            None => tab.cost(i),
        };
        Some(match mtf {
            Some(m) if classes.cost(m) <= classes.cost(class) + cost => m,
            _ => class,
        })
    }

    /// A value of the field's dictionary table: its index under the period's table.
    fn dict_value(&mut self, io: &mut dyn Io, f: usize, text: &[u8]) -> Result<Vec<u8>, CodecError> {
        let t =
            self.dict_of[f].ok_or_else(|| CodecError::Payload("dictionary value for a field without one".into()))?;
        let i = if io.decoding() { 0 } else { t.find(text).unwrap_or(0) };
        if let Some(row) = self.leaf_row {
            let i = io.symbol(&mut Adaptive::with(row, 0), i)?;
            return Ok(t.values[i].clone());
        }
        let tab = self.fields[f]
            .dict_tab
            .as_mut()
            .ok_or_else(|| CodecError::Payload("dictionary value for a field without one".into()))?;
        let i = io.symbol(tab, i)?;
        Ok(t.values[i].clone())
    }

    /// The keyed value a reference names: one that never changed at the encoder, or
    /// (`changed`) one that did. A decoder's records are a subset of the encoder's, so for a key
    /// that never changed it holds the encoder's value or none. A changed value is only used once
    /// it went out in [`USABLE`] periods and more than [`CHANGE_SETTLE`] periods after it changed,
    /// and the reference says how long ago the change was ([`Core::change_since`]): a decoder that
    /// saw the key since then holds the encoder's value. One that did not holds an older value
    /// only if it also lost records in [`USABLE`] periods since it last saw the key: it refuses
    /// the reference then (a desync, never a wrong record), and relearns the key where the
    /// encoder sends it in full (every [`REFRESH`]th period refers to no changed value).
    fn keyed_value<'k>(
        &mut self,
        io: &mut dyn Io,
        f: usize,
        known: Option<KnownValue<'k>>,
        changed: bool,
    ) -> Result<&'k Leaf, CodecError> {
        if !changed || self.reliable() {
            return known
                .map(|k| k.0)
                .ok_or_else(|| desync("a keyed value this decoder has not seen"));
        }
        let since = self.change_since(io, f, known.and_then(|k| k.1))?;
        let lost_since = |seen: u64| self.incomplete.iter().all(|e| e.is_some_and(|e| e >= seen));
        match known {
            Some((k, _, seen)) if seen >= since || !lost_since(seen) => Ok(k),
            Some(_) => Err(desync("a changed keyed value this decoder may hold an older one of")),
            None => Err(desync("a keyed value this decoder has not seen")),
        }
    }

    /// For a reference to a changed keyed value of field `f` (the leaf's key): a period `since`
    /// after `changed_at`, the one the encoder's value last changed in, so that a decoder that saw
    /// the key in period `since` or later holds the encoder's value. The first such reference of
    /// the field and key in a period codes the age, `epoch + 1 - since`, as its power of two and
    /// the [`AGE_BITS`] bits below it, rounded down from `epoch - changed_at` (the exact age
    /// would cost about twice its bit length); later ones in the period reuse it. Per field, not
    /// per key: one `since` for all the fields of a gateway, from the latest change of any of
    /// them, made decoders refuse more (76 failures more than 16 records after a loss instead of
    /// none, `semcom eval telemetry --loss 1`) for 0.05 bytes per record less.
    fn change_since(&mut self, io: &mut dyn Io, f: usize, changed_at: Option<u64>) -> Result<u64, CodecError> {
        let key = (f, self.leaf_key.unwrap_or(0));
        if let Some(&t) = self.change_since.get(&key) {
            return Ok(t);
        }
        let age = if io.decoding() {
            1
        } else {
            let c = changed_at.ok_or_else(|| CodecError::Input("a changed keyed value without its change".into()))?;
            self.epoch.saturating_sub(c).clamp(1, (1 << AGE_EXPONENTS) - 1)
        };
        let e = io.symbol(&mut self.tables.age, 63 - age.leading_zeros() as usize)? as u32;
        let m = e.min(AGE_BITS);
        let below = io.bits(((age >> (e - m)) & ((1 << m) - 1)) as u32, m)?;
        // v ≤ age, so since > the change.
        let v = ((1u64 << m) | u64::from(below)) << (e - m);
        let since = (self.epoch + 1).saturating_sub(v);
        self.change_since.insert(key, since);
        Ok(since)
    }

    /// Codes a mantissa at `scale` against the field's prediction (quantised when the field has
    /// a tolerance and `lossy_ok`), returning the reconstruction and its decimal text.
    #[allow(clippy::too_many_arguments)]
    fn mantissa(
        &mut self,
        io: &mut dyn Io,
        f: usize,
        m: i128,
        scale: u8,
        lossy_ok: bool,
        cur: &[Option<(i128, u8)>],
        slot: &Slots,
    ) -> Result<(i128, Vec<u8>), CodecError> {
        let fld = &self.fields[f];
        let p = match fld.prev {
            None if fld.warm_first() => self.predict(f, scale, cur, slot),
            None => self.first_prediction(io, m, scale, cur)?,
            Some((p, ps)) if fld.pred == Pred::Step && ps == scale && !fld.steps.is_empty() => {
                let best = if io.decoding() {
                    0
                } else {
                    (0..fld.steps.len())
                        .min_by_key(|&i| m.abs_diff(p.saturating_add(fld.steps[i])))
                        .unwrap_or(0)
                };
                let fld = &mut self.fields[f];
                let i = io.symbol(&mut fld.step_idx, best)?;
                let d = fld
                    .steps
                    .get(i)
                    .ok_or_else(|| CodecError::Payload("number refers to a step this decoder has not seen".into()))?;
                p.saturating_add(*d)
            }
            Some(_) => self.predict(f, scale, cur, slot),
        };
        let q = match self.fields[f].tolerance {
            Some(t) if lossy_ok => ((t * 10f64.powi(i32::from(scale))) * (1.0 - 1e-12)).floor().min(1e15) as i128,
            _ => 0,
        };
        let step = 2 * q + 1;
        let r = m - p;
        let k = if step > 1 { div_round(r, step) } else { r };
        let k = residual(io, &mut self.fields[f].res, k)?;
        let m = p
            .checked_add(k.checked_mul(step).ok_or_else(overflow)?)
            .ok_or_else(overflow)?;
        if m.unsigned_abs() >= 10u128.pow(36) {
            return Err(overflow());
        }
        Ok((m, format_decimal(m, scale).into_bytes()))
    }

    /// A field's first number in a resync period has no past: it is predicted from one of the
    /// last 7 large numbers of the record at the same scale (a copy of a timestamp, say), or from 0.
    fn first_prediction(
        &mut self,
        io: &mut dyn Io,
        m: i128,
        scale: u8,
        cur: &[Option<(i128, u8)>],
    ) -> Result<i128, CodecError> {
        let cands: Vec<i128> = cur
            .iter()
            .rev()
            .filter_map(|c| {
                c.filter(|c| c.1 == scale && c.0.unsigned_abs() >= FIRST_MAGNITUDE)
                    .map(|c| c.0)
            })
            .take(FIRST_CANDIDATES - 1)
            .collect();
        if cands.is_empty() {
            return Ok(0);
        }
        let best = if io.decoding() {
            0
        } else {
            let mut best = (m.unsigned_abs(), 0);
            for (i, &c) in cands.iter().enumerate() {
                let e = m.abs_diff(c);
                if e < best.0 {
                    best = (e, i + 1);
                }
            }
            best.1
        };
        let s = io.symbol(&mut self.tables.first, best)?;
        match s {
            0 => Ok(0),
            s => cands
                .get(s - 1)
                .copied()
                .ok_or_else(|| CodecError::Payload("prediction from a number the record does not have".into())),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn string(
        &mut self,
        io: &mut dyn Io,
        f: usize,
        text: &[u8],
        cur: &[Option<(i128, u8)>],
        slot: &Slots,
        keyed: Option<Option<KnownValue<'_>>>,
        pending: &mut Pending,
    ) -> Result<Leaf, CodecError> {
        let known = keyed.flatten();
        // A timestamp whose predictor (a copy of a numeric timestamp) was exact last time, in the
        // same format: first, whether it is again.
        let fld = &self.fields[f];
        if let Some(fmt) = fld.last_time_fmt.filter(|_| fld.exact && fld.pred != Pred::Step) {
            let ms = self.predict(f, 0, cur, slot);
            if let Some(t) = format_time(ms, fmt).map(String::into_bytes) {
                if io.bit(&mut self.fields[f].hit, !io.decoding() && t == text)? {
                    self.fields[f].remember(&t);
                    return Ok((t, Some((ms, 0))));
                }
            }
        }
        let class = if io.decoding() {
            0
        } else if let Some((_, changed, _)) = known.filter(|(k, ..)| k.0 == text) {
            if changed.is_some() {
                S_KEYED_CHANGED
            } else {
                S_KEYED
            }
        } else {
            self.string_class(f, text, keyed.is_some())
        };
        let fld = &mut self.fields[f];
        let table = if keyed.is_some() {
            &mut fld.str_class_keyed
        } else {
            &mut fld.str_class
        };
        let class = io.symbol(table, class)?;
        let (out, num) = match class {
            c if c < MTF => {
                let v = self.fields[f]
                    .mtf
                    .get(c)
                    .cloned()
                    .ok_or_else(|| desync("string refers to a value this decoder has not seen"))?;
                pending.strings.push(v.clone());
                (v, None)
            }
            S_MEMORY => (self.memory.reference(io, text)?, None),
            S_DICT => (self.dict_value(io, f, text)?, None),
            S_FIELD_MEMORY => (self.field_memory[self.general[f] as usize].reference(io, text)?, None),
            S_KEYED | S_KEYED_CHANGED => self.keyed_value(io, f, known, class == S_KEYED_CHANGED)?.clone(),
            S_TIME => {
                let (ms, fmt) = if io.decoding() {
                    (0, 0)
                } else {
                    parse_time(text).unwrap_or((0, 0))
                };
                let fmt = io.symbol(&mut self.fields[f].time_fmt, fmt)?;
                self.fields[f].last_time_fmt = Some(fmt);
                let (m, _) = self.mantissa(io, f, ms, 0, false, cur, slot)?;
                let t = format_time(m, fmt).ok_or_else(|| CodecError::Payload("timestamp out of range".into()))?;
                (t.into_bytes(), Some((m, 0)))
            }
            S_BYTES => {
                let bytes = self.byte_string(io, f, text, cur, slot)?;
                if std::str::from_utf8(&bytes).is_err() {
                    return Err(CodecError::Payload("string is not UTF-8".into()));
                }
                (bytes, None)
            }
            S_BASE58CHECK => {
                let raw = if io.decoding() {
                    Vec::new()
                } else {
                    from_base58check(text).unwrap_or_default()
                };
                let bytes = self.byte_string(io, f, &raw, cur, slot)?;
                if bytes.len() > BASE58_MAX {
                    return Err(CodecError::Payload("base58check string too long".into()));
                }
                (to_base58check(&bytes), None)
            }
            S_HEX_LOWER | S_HEX_UPPER | S_BASE64 => {
                let raw = if io.decoding() {
                    Vec::new()
                } else {
                    from_binary_text(text, class).unwrap_or_default()
                };
                let bytes = self.byte_string(io, f, &raw, cur, slot)?;
                (to_binary_text(&bytes, class), None)
            }
            S_PRIOR => {
                let v = self.prior_string(io, f, text, TAG_STRING)?;
                if v.len() <= 40 {
                    pending.strings.push(v.clone());
                }
                (v, None)
            }
            _ => return Err(CodecError::Payload("unknown string class".into())),
        };
        if num.is_none() && out.len() <= FIELD_MEMORY_LEN {
            pending.field_strings.push((self.general[f], out.clone()));
        }
        self.fields[f].remember(&out);
        Ok((out, num))
    }

    /// The encoder's choice of string class.
    fn string_class(&self, f: usize, text: &[u8], keyed: bool) -> usize {
        let mtf = self.fields[f].mtf.iter().position(|v| v == text);
        if let Some(c) = self.dict_class(f, text, mtf, keyed, S_DICT) {
            return c;
        }
        if let Some(i) = mtf {
            return i;
        }
        if self.field_memory[self.general[f] as usize].usable(text, self.referable()) {
            return S_FIELD_MEMORY;
        }
        if self.memory.usable(text, self.referable()) {
            return S_MEMORY;
        }
        if parse_time(text).is_some() {
            return S_TIME;
        }
        if from_base58check(text).is_some() {
            return S_BASE58CHECK;
        }
        for c in [S_HEX_LOWER, S_HEX_UPPER, S_BASE64] {
            if text.len() >= 8 && from_binary_text(text, c).is_some() {
                return c;
            }
        }
        if text.len() >= 12 && !text.contains(&b' ') && self.prior.bpe().encode(text).len() * 3 > text.len() {
            return S_BYTES;
        }
        S_PRIOR
    }

    /// A byte string, each byte predicted from the same position of the field's last one.
    fn byte_string(
        &mut self,
        io: &mut dyn Io,
        f: usize,
        raw: &[u8],
        cur: &[Option<(i128, u8)>],
        slot: &Slots,
    ) -> Result<Vec<u8>, CodecError> {
        // The record's numbers (both ends know them before its byte strings), by field.
        let mut nums: Vec<(usize, i128, u8)> = slot
            .iter()
            .filter_map(|(g, k)| cur[k].map(|(v, s)| (g, v, s)))
            .collect();
        nums.sort_unstable_by_key(|x| x.0);
        // The layout: one of this period's, or a new one, which may start from a template of
        // earlier periods (constant bytes and mantissa bytes of numbers known, ciphertext not).
        let fld = &mut self.fields[f];
        let have = fld.layouts.iter().position(|l| l.value.len() == raw.len());
        let at = if fld.layouts.is_empty() {
            None
        } else {
            let k = io.symbol(&mut fld.layout, have.unwrap_or(LAYOUTS))?;
            (k < fld.layouts.len()).then_some(k)
        };
        let mut template = None;
        if at.is_none() && !self.reliable() {
            let gid = self.general[f] as usize;
            // A refresh period uses only the dictionary's templates, which no decoder lacks.
            let choice = if io.decoding() {
                None
            } else {
                self.best_template(gid, raw, &nums, self.refresh())
            };
            if io.bit(&mut self.fields[f].use_template, choice.is_some())? {
                let t = self.templates[gid].reference(io, choice.as_deref().unwrap_or(&[]))?;
                template = Some(self.template_layout(&parse_template(&t)?, &nums));
            }
        }
        let Field {
            layouts,
            len,
            near_delta,
            far_delta,
            ..
        } = &mut self.fields[f];
        let n = match (at, &template) {
            (Some(k), _) => layouts[k].value.len(),
            (None, Some(t)) => t.value.len(),
            (None, None) => length(io, len, raw.len(), MAX_STRING)?,
        };
        // A new layout without a template starts from the last value of another.
        let fresh = match (template, layouts.first()) {
            (Some(t), _) => t,
            (None, Some(l)) => Layout {
                value: l.value.clone(),
                nums: l.nums.clone(),
                from_template: l.from_template,
                ..Layout::default()
            },
            (None, None) => Layout::default(),
        };
        move_to_front(layouts, at, || fresh);
        let lay = &mut layouts[0];
        // Numbers now and with the reference value (same scale), and how much those that changed
        // changed (mod 256), by field.
        let pairs: Vec<(usize, i128, i128, u8)> = nums
            .iter()
            .filter_map(|&(g, v, s)| num_of(&lay.nums, g).filter(|p| p.1 == s).map(|p| (g, v, p.0, s)))
            .collect();
        let changes: Vec<(usize, u8)> = pairs
            .iter()
            .filter(|x| x.1 != x.2)
            .map(|&(g, v, p, _)| (g, (v - p).rem_euclid(256) as u8))
            .collect();
        let change = |g: usize| changes.binary_search_by_key(&g, |c| c.0).ok().map(|i| changes[i].1);
        let source = |src: Option<(usize, u8)>| {
            let (g, k) = src?;
            num_of(&nums, g).map(|(v, s)| source_byte(v, s, k))
        };
        let predicted: Vec<Option<u8>> = (0..n)
            .map(|i| {
                let from_source = lay.source.get(i).copied().and_then(source);
                if lay.unknown.get(i) == Some(&true) || lay.cipher.get(i) == Some(&true) {
                    return None;
                }
                from_source.or_else(|| {
                    let partner = lay.partner.get(i).copied().flatten().filter(|p| p.1);
                    let partner = partner.and_then(|p| change(p.0));
                    lay.value.get(i).map(|&pb| pb.wrapping_add(partner.unwrap_or(0)))
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for (i, &prev) in predicted.iter().enumerate() {
            let b = raw.get(i).copied().unwrap_or(0);
            let Some(pb) = prev else {
                out.push(io.bits(u32::from(b), 8)? as u8);
                continue;
            };
            let pos = i.min(BYTE_POSITIONS - 1);
            if lay.same.len() <= pos {
                lay.same.resize(pos + 1, Bit::new(2048));
            }
            if lay.near.len() <= pos {
                lay.near.resize(pos + 1, Bit::new(2048));
            }
            if io.bit(&mut lay.same[pos], b == pb)? {
                out.push(pb);
                continue;
            }
            // The change as a signed distance: ±1..=NEAR are near, the rest (far) uniform.
            let d = i16::from(b.wrapping_sub(pb) as i8);
            let near = NEAR as i16;
            let is_near = io.bit(&mut lay.near[pos], d != 0 && d.abs() <= near)?;
            let d = if is_near {
                let s = if d < 0 { d + near } else { d + near - 1 };
                let s = io.symbol(near_delta, s.clamp(0, 2 * near - 1) as usize)? as i16;
                if s < near {
                    s - near
                } else {
                    s - near + 1
                }
            } else {
                // Far distances NEAR+1 ..= 256-NEAR-1 (as u8), in order.
                let s = i16::from(b.wrapping_sub(pb)) - (near + 1);
                let s = io.symbol(far_delta, s.clamp(0, 255 - 2 * near - 1) as usize)? as i16;
                s + near + 1
            };
            out.push(pb.wrapping_add(d as u8));
        }
        let reference = std::mem::take(&mut lay.value);
        // Which bytes changed in this period, against the last value of this layout.
        if !lay.from_template && reference.len() == out.len() {
            lay.varied.resize(out.len(), false);
            lay.far.resize(out.len(), 0);
            for ((v, far), (a, b)) in lay.varied.iter_mut().zip(&mut lay.far).zip(reference.iter().zip(&out)) {
                *v |= a != b;
                let d = i16::from(b.wrapping_sub(*a) as i8);
                *far = far.saturating_add(u8::from(d.abs() > NEAR as i16));
            }
            lay.compared += 1;
        }
        // Learn which numeric field each changed byte follows (both ends see the same values).
        let n_prev = reference.len().min(out.len()).min(BYTE_POSITIONS);
        let mut partner = std::mem::take(&mut lay.partner);
        partner.resize(n_prev.max(partner.len()), None);
        for i in 0..n_prev {
            let d = out[i].wrapping_sub(reference[i]);
            if d == 0 {
                continue;
            }
            if let Some((g, _)) = partner[i].filter(|p| change(p.0) == Some(d)) {
                partner[i] = Some((g, true));
                continue;
            }
            partner[i] = changes.iter().find(|c| c.1 == d).map(|c| (c.0, false));
        }
        // Learn which mantissa byte each changed byte carries: one that held the reference's byte
        // then and holds the new one now.
        let mut src = std::mem::take(&mut lay.source);
        let n_src = out.len().min(BYTE_POSITIONS);
        src.resize(n_src.max(src.len()), None);
        for i in 0..n_src {
            if src[i].and_then(|s| source(Some(s))) == Some(out[i]) {
                continue;
            }
            src[i] = reference.get(i).filter(|&&r| r != out[i]).and_then(|&r| {
                pairs.iter().filter(|x| x.3 < 64).find_map(|&(g, v, p, s)| {
                    (0..4u8)
                        .find(|&k| mantissa_byte(v, k) == out[i] && mantissa_byte(p, k) == r)
                        .map(|k| (g, k | (s << 2)))
                })
            });
        }
        lay.partner = partner;
        lay.source = src;
        lay.value.clone_from(&out);
        lay.nums = nums;
        lay.from_template = false;
        lay.unknown.clear();
        layouts.truncate(LAYOUTS);
        Ok(out)
    }

    /// Text through the prior, tagged as a key or a string value, ended by EOS.
    fn prior_string(&mut self, io: &mut dyn Io, _f: usize, text: &[u8], tag: u32) -> Result<Vec<u8>, CodecError> {
        let mut coder = self.strings.coder(&[BOS, tag]);
        if io.decoding() {
            let mut toks = Vec::new();
            let mut n = 0;
            loop {
                let t = io.token(&mut coder, 0)?;
                if t == EOS {
                    break;
                }
                n += self.prior.bpe().piece(t).len();
                if n > MAX_STRING {
                    return Err(CodecError::Payload(format!("string longer than {MAX_STRING} bytes")));
                }
                toks.push(t);
            }
            return Ok(self.prior.bpe().decode(&toks));
        }
        if text.len() > MAX_STRING {
            return Err(CodecError::Input(format!(
                "string of {} bytes (at most {MAX_STRING})",
                text.len()
            )));
        }
        for t in self.prior.bpe().encode(text).into_iter().chain([EOS]) {
            io.token(&mut coder, t)?;
        }
        Ok(text.to_vec())
    }

    /// A schema in full: shape symbols, counts, and keys (as strings of the key field).
    fn spell(
        &mut self,
        io: &mut dyn Io,
        shape: Option<Vec<Shape>>,
        pending: &mut Pending,
    ) -> Result<Vec<Shape>, CodecError> {
        let input = shape.unwrap_or_default();
        let mut out = Vec::with_capacity(input.len());
        let kf = self.key_field;
        self.fields[kf].reset(self.epoch);
        // A stack of remaining children: (members left, whether they have keys).
        let mut stack: Vec<(u32, bool)> = Vec::new();
        let mut i = 0;
        loop {
            // A key first, when inside an object or a row.
            if let Some(&(_, true)) = stack.last() {
                let k = match input.get(i) {
                    Some(Shape::Key(k)) => {
                        i += 1;
                        k.as_slice()
                    }
                    _ => &[],
                };
                let (k, _) = self.key(io, kf, k, pending)?;
                out.push(Shape::Key(k));
            }
            let sym = match input.get(i) {
                Some(Shape::Obj(_)) => SH_OBJ,
                Some(Shape::Arr(_)) => SH_ARR,
                Some(Shape::Num) => SH_NUM,
                Some(Shape::Str) => SH_STR,
                Some(Shape::Lit(0)) => SH_TRUE,
                Some(Shape::Lit(1)) => SH_FALSE,
                Some(Shape::Lit(_)) => SH_NULL,
                Some(Shape::Row(_)) => SH_ROW,
                _ => SH_EMPTY,
            };
            let n_in = match input.get(i) {
                Some(Shape::Obj(n) | Shape::Arr(n) | Shape::Row(n)) => *n,
                _ => 0,
            };
            i += 1;
            let sym = io.symbol(&mut self.tables.shape, sym)?;
            let is_row = matches!(out.first(), Some(Shape::Row(_)));
            if out.is_empty() && !matches!(sym, SH_OBJ | SH_ROW) {
                return Err(CodecError::Payload("a record is an object or a row".into()));
            }
            if (sym == SH_ROW && !out.is_empty()) || (sym == SH_EMPTY && !is_row) {
                return Err(CodecError::Payload("malformed record shape".into()));
            }
            match sym {
                SH_OBJ | SH_ARR | SH_ROW => {
                    let n = length(io, &mut self.tables.count, n_in as usize, 1 << 16)? as u32;
                    out.push(match sym {
                        SH_OBJ => Shape::Obj(n),
                        SH_ARR => Shape::Arr(n),
                        _ => Shape::Row(n),
                    });
                    if stack.len() > 32 {
                        return Err(CodecError::Payload("record nests too deep".into()));
                    }
                    if n > 0 {
                        stack.push((n, sym != SH_ARR));
                        continue;
                    }
                }
                SH_NUM => out.push(Shape::Num),
                SH_STR => out.push(Shape::Str),
                SH_TRUE => out.push(Shape::Lit(0)),
                SH_FALSE => out.push(Shape::Lit(1)),
                SH_NULL => out.push(Shape::Lit(2)),
                _ => out.push(Shape::Empty),
            }
            if out.len() > 1 << 16 {
                return Err(CodecError::Payload("record shape too long".into()));
            }
            // Close finished containers.
            loop {
                match stack.last_mut() {
                    None => return Ok(out),
                    Some((left, _)) => {
                        // The container whose child just finished has one child fewer to go.
                        *left -= 1;
                        if *left == 0 {
                            stack.pop();
                        } else {
                            break;
                        }
                    }
                }
            }
        }
    }

    fn key(
        &mut self,
        io: &mut dyn Io,
        kf: usize,
        k: &[u8],
        pending: &mut Pending,
    ) -> Result<(Vec<u8>, ()), CodecError> {
        let class = if io.decoding() {
            0
        } else if let Some(i) = self.fields[kf].mtf.iter().position(|v| v == k) {
            i
        } else if self.memory.usable(k, self.referable()) {
            S_MEMORY
        } else {
            S_PRIOR
        };
        let class = io.symbol(&mut self.fields[kf].str_class, class)?;
        let v = match class {
            c if c < MTF => self.fields[kf]
                .mtf
                .get(c)
                .cloned()
                .ok_or_else(|| desync("key refers to a key this decoder has not seen"))?,
            S_MEMORY => self.memory.reference(io, k)?,
            S_PRIOR => self.prior_string(io, kf, k, TAG_KEY)?,
            _ => return Err(CodecError::Payload("unknown key class".into())),
        };
        pending.strings.push(v.clone());
        self.fields[kf].remember(&v);
        Ok((v, ()))
    }
}

/// What the walk is given.
enum Input<'a> {
    Record(&'a Parsed),
    Verbatim(Vec<u8>),
    Decode,
}

/// What the walk produced.
enum Output {
    /// The leaves of a record of this schema.
    Record(Vec<Vec<u8>>, usize),
    Verbatim(Vec<u8>),
}

/// A predictor's cost for one value it missed by `e`: its bit length, in sixteenths.
fn error_cost(e: u128) -> u32 {
    16 * (128 - e.leading_zeros())
}

/// A predictor's cost for a value it could not predict.
const MISSING_COST: u32 = 16 * 64;

/// For a warm start in period `epoch` from what the last [`WARM_PERIODS`] complete periods left
/// (`of` a period: its entry, none if it was not complete here): whether all of them left the
/// same one (the encoder's test), and the latest one this end holds (a decoder's, equal to the
/// encoder's if it holds any).
fn warm_from<'h, T: PartialEq>(epoch: u64, of: impl Fn(u64) -> Option<&'h T>) -> (bool, Option<&'h T>) {
    let n = WARM_PERIODS as u64;
    let last = of(epoch - 1);
    let same = last.is_some() && (2..=n).all(|d| of(epoch - d) == last);
    (same, (1..=n).find_map(|d| of(epoch - d)))
}

/// Whether difference `d` is step `e` again: the same sign, within 1/16 of it.
fn same_step(d: i128, e: i128) -> bool {
    (e < 0) == (d < 0) && d.abs_diff(e) <= e.unsigned_abs() / 16
}

/// Appends a period's entry to a field's history, keeping the last [`WARM_PERIODS`].
fn keep_last_periods<T>(hist: &mut Vec<(u64, T)>, entry: (u64, T)) {
    hist.push(entry);
    if hist.len() > WARM_PERIODS {
        hist.remove(0);
    }
}

/// Whether a number's decimal keeps no trailing zero to copy: a prediction at its scale is
/// written without trailing zeros (`-111.7` after `-111.94`) unless it kept one.
fn trims_zeros(m: i128, scale: u8) -> bool {
    m % 10 != 0 || scale == 0
}

/// `d` rounded to its `bits` leading bits (the nearest multiple of a power of two).
fn round_to_bits(d: i128, bits: u32) -> i128 {
    let b = 128 - d.unsigned_abs().leading_zeros();
    if b <= bits {
        return d;
    }
    let q = 1i128 << (b - bits);
    div_round(d, q).saturating_mul(q)
}

/// Notes step `d` in a field's recent distinct steps (see [`Pred::Step`]).
fn note_step(steps: &mut Vec<i128>, seen: &mut Vec<u16>, d: i128) {
    if d.unsigned_abs() < STEP_MAGNITUDE {
        return;
    }
    seen.resize(steps.len(), 0);
    let at = steps.iter().position(|&e| same_step(d, e));
    move_to_front(steps, at, || d);
    move_to_front(seen, at, || 0);
    steps[0] = d;
    seen[0] = seen[0].saturating_add(1);
    steps.truncate(STEPS);
    seen.truncate(STEPS);
}

/// One byte of a template (see [`Core::templates_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TByte {
    Free,
    Cipher,
    Const(u8),
    /// A mantissa byte of the number at the path with this hash (see [`source_byte`]).
    Source(u64, u8),
}

/// A template's predicted byte and, for a sourced one, its (field, mantissa byte).
type TPred = (Option<u8>, Option<(usize, u8)>);

/// Reads a template made by [`Core::templates_of`]: its bytes (as many as the length it starts with).
fn parse_template(t: &[u8]) -> Result<Vec<TByte>, CodecError> {
    let bad = || CodecError::Payload("malformed byte template".into());
    let n = u32::from_le_bytes(t.get(..4).ok_or_else(bad)?.try_into().map_err(|_| bad())?) as usize;
    let mut out = Vec::with_capacity(n.min(TEMPLATE_MAX));
    let mut i = 4;
    while i < t.len() {
        let e = match t[i] {
            T_FREE => TByte::Free,
            T_CIPHER => TByte::Cipher,
            T_CONST => TByte::Const(*t.get(i + 1).ok_or_else(bad)?),
            T_SOURCE => {
                let h = t.get(i + 1..i + 9).ok_or_else(bad)?;
                TByte::Source(
                    u64::from_le_bytes(h.try_into().map_err(|_| bad())?),
                    *t.get(i + 9).ok_or_else(bad)?,
                )
            }
            _ => return Err(bad()),
        };
        i += match e {
            TByte::Free | TByte::Cipher => 1,
            TByte::Const(_) => 2,
            TByte::Source(..) => 10,
        };
        out.push(e);
    }
    if out.len() != n {
        return Err(bad());
    }
    Ok(out)
}

/// The best standard relation of two numbers among `args` (leaf indices, `cur` their values) for
/// value `v` at scale `s` that reproduces it to within one unit of its last digit: the error and
/// the predictor (the one in use, `current`, wins ties).
fn derived(args: &[u32], fields: &[usize], cur: &[Option<f64>], v: i128, s: u8, current: Pred) -> Option<(u128, Pred)> {
    let vf = num_f64(v, s)?;
    let vals = || {
        args.iter()
            .filter_map(|&k| cur[k as usize].map(|x| (fields[k as usize], x)))
    };
    let mut best: Option<(u128, Pred)> = None;
    // The relation in use first: another one as good (a distance and a near-equal one) does not
    // replace it.
    if let Pred::Derived(rel, ga, gb) = current {
        let arg = |g: usize| vals().find(|x| x.0 == g).map(|x| x.1);
        let m = arg(ga).zip(arg(gb)).and_then(|(a, b)| rel.eval(a, b));
        best = m.and_then(|x| f64_mantissa(x, s)).map(|m| (m.abs_diff(v), current));
    }
    for rel in RELATIONS {
        let Some(prepared) = rel.prepare(vf) else {
            continue;
        };
        for (ga, a) in vals() {
            for (gb, b) in vals() {
                if ga == gb || !rel.plausible(a, b, prepared) {
                    continue;
                }
                let Some(m) = rel.eval(a, b).and_then(|x| f64_mantissa(x, s)) else {
                    continue;
                };
                let e = m.abs_diff(v);
                if best.is_none_or(|b| e < b.0) {
                    best = Some((e, Pred::Derived(rel, ga, gb)));
                }
            }
        }
    }
    // A relation holds to the last digit or not at all: a near fit among many pairs is chance.
    best.filter(|b| b.0 <= 1)
}

/// A leaf path's object (`hotspots.0` for `hotspots.0.rssi`; empty at the top level).
fn parent(p: &[u8]) -> &[u8] {
    p.iter().rposition(|&c| c == b'.').map_or(&[][..], |i| &p[..i])
}

/// Exact powers of ten as `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A decimal (mantissa, scale) as `f64` (the same bits everywhere: one rounding division).
fn num_f64(m: i128, scale: u8) -> Option<f64> {
    POW10.get(usize::from(scale)).map(|&p| m as f64 / p)
}

/// The mantissa at `scale` nearest to `x`.
fn f64_mantissa(x: f64, scale: u8) -> Option<i128> {
    let v = (x * POW10.get(usize::from(scale))?).round();
    (v.is_finite() && v.abs() < 1e30).then_some(v as i128)
}

fn desync(what: &str) -> CodecError {
    CodecError::Desync(what.to_string())
}

fn overflow() -> CodecError {
    CodecError::Payload("number out of range".into())
}

fn div_round(r: i128, step: i128) -> i128 {
    if r >= 0 {
        (r + step / 2) / step
    } else {
        -((-r + step / 2) / step)
    }
}

/// FNV-1a folded to 16 bits.
fn hash16(b: &[u8]) -> u16 {
    let h = hash64(b);
    (h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48)) as u16
}

/// FNV-1a, 64 bits.
fn hash64(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// [`hash16`] folded to 8 bits.
fn hash8(b: &[u8]) -> u8 {
    let h = hash16(b);
    (h ^ (h >> 8)) as u8
}

fn shape_bytes(shape: &[Shape]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in shape {
        match s {
            Shape::Obj(n) => out.extend_from_slice(format!("{{{n}").as_bytes()),
            Shape::Arr(n) => out.extend_from_slice(format!("[{n}").as_bytes()),
            Shape::Row(n) => out.extend_from_slice(format!("R{n}").as_bytes()),
            Shape::Key(k) => {
                out.push(b'"');
                put_varint(&mut out, k.len() as u64);
                out.extend_from_slice(k);
            }
            Shape::Num => out.push(b'N'),
            Shape::Str => out.push(b'S'),
            Shape::Lit(l) => out.extend_from_slice(&[b'L', *l]),
            Shape::Empty => out.push(b'E'),
        }
    }
    out
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with at most 36 digits → (mantissa, scale), only when
/// [`format_decimal`] gives the text back.
pub fn parse_decimal(t: &[u8]) -> Option<(i128, u8)> {
    let s = std::str::from_utf8(t).ok()?;
    let (neg, body) = s.strip_prefix('-').map_or((false, s), |b| (true, b));
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty()
        || int.len() + frac.len() > 36
        || frac.len() > 19
        || !int.bytes().chain(frac.bytes()).all(|c| c.is_ascii_digit())
    {
        return None;
    }
    if body.contains('.') && frac.is_empty() {
        return None;
    }
    let mut m: i128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        m = m * 10 + i128::from(c - b'0');
    }
    let v = (if neg { -m } else { m }, frac.len() as u8);
    (format_decimal(v.0, v.1).as_bytes() == t).then_some(v)
}

/// The decimal text of `m × 10^-scale`.
pub fn format_decimal(m: i128, scale: u8) -> String {
    let digits = m.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let mut s = String::with_capacity(digits.len() + 3);
    if m < 0 {
        s.push('-');
    }
    if scale == 0 {
        s.push_str(&digits);
    } else {
        let padded = if digits.len() <= scale {
            format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
        } else {
            digits
        };
        let (a, b) = padded.split_at(padded.len() - scale);
        s.push_str(a);
        s.push('.');
        s.push_str(b);
    }
    s
}

/// A number that is an `f32` printed as the shortest `f64`: the shortest `f32` decimal.
fn f32_widened(t: &[u8]) -> Option<(i128, u8)> {
    let v: f64 = std::str::from_utf8(t).ok()?.parse().ok()?;
    let f = v as f32;
    if !f.is_finite() || f64::from(f) != v {
        return None;
    }
    let d = parse_decimal(format!("{f}").as_bytes())?;
    (f32_text(d.0, d.1)?.as_bytes() == t).then_some(d)
}

fn f32_text(m: i128, scale: u8) -> Option<String> {
    let f: f32 = format_decimal(m, scale).parse().ok()?;
    f.is_finite().then(|| format!("{}", f64::from(f)))
}

/// ISO-8601 formats understood: `YYYY-MM-DD[T| ]HH:MM:SS[.f{1..9}][Z|+00:00|]`.
const TIME_FORMATS: usize = 2 * 10 * 3;

/// (value in units of the fraction's last digit, format id).
fn parse_time(t: &[u8]) -> Option<(i128, usize)> {
    if t.len() < 19 || t.len() > 35 {
        return None;
    }
    let num = |a: usize, b: usize| -> Option<i64> {
        let s = t.get(a..b)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0i64, |v, &c| v * 10 + i64::from(c - b'0')))
    };
    if t[4] != b'-' || t[7] != b'-' || t[13] != b':' || t[16] != b':' {
        return None;
    }
    let sep = match t[10] {
        b'T' => 0,
        b' ' => 1,
        _ => return None,
    };
    let (y, mo, d, h, mi, s) = (
        num(0, 4)?,
        num(5, 7)?,
        num(8, 10)?,
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
    );
    let mut i = 19;
    let mut digits = 0usize;
    let mut frac = 0i64;
    if t.get(i) == Some(&b'.') {
        i += 1;
        while let Some(c) = t.get(i).filter(|c| c.is_ascii_digit()) {
            frac = frac * 10 + i64::from(c - b'0');
            digits += 1;
            i += 1;
        }
        if digits == 0 || digits > 9 {
            return None;
        }
    }
    let zone = match &t[i..] {
        b"" => 0,
        b"Z" => 1,
        b"+00:00" => 2,
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    let v = i128::from(secs) * 10i128.pow(digits as u32) + i128::from(frac);
    let fmt = (sep * 10 + digits) * 3 + zone;
    (format_time(v, fmt)?.as_bytes() == t).then_some((v, fmt))
}

fn format_time(v: i128, fmt: usize) -> Option<String> {
    if fmt >= TIME_FORMATS {
        return None;
    }
    let (zone, rest) = (fmt % 3, fmt / 3);
    let (digits, sep) = (rest % 10, rest / 10);
    let unit = 10i128.pow(digits as u32);
    let (secs, frac) = (v.div_euclid(unit), v.rem_euclid(unit));
    let secs = i64::try_from(secs).ok()?;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}{}{:02}:{:02}:{:02}",
        if sep == 0 { 'T' } else { ' ' },
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    if digits > 0 {
        s.push_str(&format!(".{frac:0digits$}"));
    }
    s.push_str(["", "Z", "+00:00"][zone]);
    Some(s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

const B58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// The base58check checksum of `payload`: the first 4 bytes of its double SHA-256.
fn base58_checksum(payload: &[u8]) -> [u8; 4] {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(Sha256::digest(payload));
    [h[0], h[1], h[2], h[3]]
}

/// Base58check text → its bytes without the checksum, only when the checksum holds and the
/// bytes give the text back.
fn from_base58check(t: &[u8]) -> Option<Vec<u8>> {
    if !(8..=BASE58_MAX).contains(&t.len()) {
        return None;
    }
    let zeros = t.iter().take_while(|&&c| c == b'1').count();
    // Big-endian base 256, one base-58 digit at a time.
    let mut num: Vec<u8> = Vec::with_capacity(t.len());
    for &c in &t[zeros..] {
        let mut carry = B58.iter().position(|&a| a == c)? as u32;
        for d in num.iter_mut().rev() {
            carry += u32::from(*d) * 58;
            *d = carry as u8;
            carry >>= 8;
        }
        while carry > 0 {
            num.insert(0, carry as u8);
            carry >>= 8;
        }
    }
    let mut b = vec![0; zeros];
    b.extend(num);
    let (payload, check) = b.split_at(b.len().checked_sub(4).filter(|&n| n > 0)?);
    (base58_checksum(payload) == check && to_base58check(payload) == t).then(|| payload.to_vec())
}

/// Bytes → base58check text (leading zero bytes as `1`s).
fn to_base58check(payload: &[u8]) -> Vec<u8> {
    let mut b = payload.to_vec();
    b.extend_from_slice(&base58_checksum(payload));
    let zeros = b.iter().take_while(|&&x| x == 0).count();
    // Little-endian base 58.
    let mut digits: Vec<u8> = Vec::with_capacity(b.len() * 138 / 100 + 1);
    for &x in &b[zeros..] {
        let mut carry = u32::from(x);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = vec![b'1'; zeros];
    out.extend(digits.iter().rev().map(|&d| B58[usize::from(d)]));
    out
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Hex (lower or upper case) or standard base64 text → bytes, only when the bytes give the
/// text back.
fn from_binary_text(t: &[u8], class: usize) -> Option<Vec<u8>> {
    let out = match class {
        S_HEX_LOWER | S_HEX_UPPER => {
            if !t.len().is_multiple_of(2) {
                return None;
            }
            let nib = |c: u8| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' if class == S_HEX_LOWER => Some(c - b'a' + 10),
                b'A'..=b'F' if class == S_HEX_UPPER => Some(c - b'A' + 10),
                _ => None,
            };
            t.chunks(2)
                .map(|p| Some(nib(p[0])? << 4 | nib(p[1])?))
                .collect::<Option<Vec<u8>>>()?
        }
        _ => {
            if !t.len().is_multiple_of(4) {
                return None;
            }
            let val = |c: u8| B64.iter().position(|&x| x == c).map(|p| p as u32);
            let mut out = Vec::with_capacity(t.len() / 4 * 3);
            for q in t.chunks(4) {
                let pad = q.iter().rev().take_while(|&&c| c == b'=').count();
                if pad > 2 {
                    return None;
                }
                let mut acc = 0u32;
                for &c in &q[..4 - pad] {
                    acc = acc << 6 | val(c)?;
                }
                acc <<= 6 * pad as u32;
                let b = acc.to_be_bytes();
                out.extend_from_slice(&b[1..4 - pad]);
            }
            out
        }
    };
    (to_binary_text(&out, class) == t).then_some(out)
}

fn to_binary_text(b: &[u8], class: usize) -> Vec<u8> {
    match class {
        S_HEX_LOWER | S_HEX_UPPER => {
            let digits: &[u8; 16] = if class == S_HEX_LOWER {
                b"0123456789abcdef"
            } else {
                b"0123456789ABCDEF"
            };
            b.iter()
                .flat_map(|&x| [digits[usize::from(x >> 4)], digits[usize::from(x & 15)]])
                .collect()
        }
        _ => {
            let mut out = Vec::with_capacity(b.len().div_ceil(3) * 4);
            for c in b.chunks(3) {
                let acc = c.iter().fold(0u32, |a, &x| a << 8 | u32::from(x)) << (8 * (3 - c.len()));
                for k in 0..4 {
                    out.push(if k <= c.len() {
                        B64[((acc >> (18 - 6 * k)) & 63) as usize]
                    } else {
                        b'='
                    });
                }
            }
            out
        }
    }
}

/// Encodes records of one stream.
#[derive(Debug)]
pub struct TelemetryEncoder<'p> {
    core: Core<'p>,
    seq: u64,
    last: Vec<u8>,
}

impl<'p> TelemetryEncoder<'p> {
    /// A new stream.
    pub fn new(prior: &'p Prior, opts: TelemetryOptions) -> Self {
        Self::with_dictionary(prior, opts, None)
    }

    /// A new stream coded with a dictionary (see [`dict`]) that its decoder must hold too; the
    /// options name it ([`TelemetryOptions::dictionary`]).
    pub fn with_dictionary(
        prior: &'p Prior,
        mut opts: TelemetryOptions,
        dict: Option<&'p TelemetryDictionary>,
    ) -> Self {
        opts.dictionary = dict.map(TelemetryDictionary::id);
        Self {
            core: Core::new(prior, opts, dict),
            seq: 0,
            last: Vec::new(),
        }
    }

    /// The model the stream is coded with.
    pub fn model(&self) -> ModelId {
        self.core.prior.id()
    }

    /// The options of the stream.
    pub fn options(&self) -> &TelemetryOptions {
        &self.core.opts
    }

    /// Codes the next record (a JSON object, a CSV row, or any line: the first CSV line that is
    /// not a record is taken as the header). Returns its sequence number and payload.
    pub fn encode(&mut self, record: &[u8]) -> Result<(u64, Vec<u8>), CodecError> {
        if record.len() > MAX_RECORD {
            return Err(CodecError::Input(format!(
                "record of {} bytes (at most {MAX_RECORD})",
                record.len()
            )));
        }
        let parsed = record::parse_json(record).or_else(|| {
            if is_header(&self.core, record) {
                None
            } else {
                record::parse_csv(record, &self.core.header)
            }
        });
        let input = match &parsed {
            Some(p) => Input::Record(p),
            None => Input::Verbatim(record.to_vec()),
        };
        let seq = self.seq;
        let intra = self.core.start(seq);
        let mut enc = RangeEncoder::new();
        let (out, pending) = self.core.code(&mut Enc(&mut enc), &input, intra)?;
        let schema = match &out {
            Output::Record(leaves, s) => {
                self.last.clear();
                record::write_parts(&self.core.schemas[*s].shape, leaves, &mut self.last);
                Some(*s)
            }
            Output::Verbatim(v) => {
                self.last.clone_from(v);
                take_header(&mut self.core, v);
                None
            }
        };
        self.core.commit(pending, schema);
        self.seq += 1;
        Ok((seq, enc.finish()))
    }

    /// Starts keeping accounts of the bits each field costs (see [`TelemetryEncoder::costs`]).
    pub fn keep_costs(&mut self) {
        self.core.costs.get_or_insert_with(HashMap::new);
    }

    /// Bits per field path since [`TelemetryEncoder::keep_costs`], most expensive first.
    pub fn costs(&self) -> Vec<(String, FieldCost)> {
        let mut v: Vec<(String, FieldCost)> = self
            .core
            .costs
            .iter()
            .flatten()
            .map(|(k, c)| (String::from_utf8_lossy(k).into_owned(), *c))
            .collect();
        v.sort_by(|a, b| b.1.bits.total_cmp(&a.1.bits));
        v
    }

    /// The record as the decoder will rebuild it (differs from the input only in lossy mode).
    pub fn last_reconstruction(&self) -> &[u8] {
        &self.last
    }
}

/// Whether a line is a CSV header: the first line of several cells with no number, before any
/// header is known. It is sent verbatim and names the columns.
fn is_header(core: &Core<'_>, line: &[u8]) -> bool {
    core.header.is_empty()
        && line.first() != Some(&b'{')
        && record::split_csv(line)
            .is_some_and(|cells| cells.len() > 1 && cells.iter().all(|c| !c.is_empty() && parse_decimal(c).is_none()))
}

fn take_header(core: &mut Core<'_>, line: &[u8]) {
    if is_header(core, line) {
        core.header = record::split_csv(line).unwrap_or_default();
    }
}

/// Whether a decoder holds the dictionary a stream's options name.
fn dictionary_matches(opts: &TelemetryOptions, dict: Option<&TelemetryDictionary>) -> Result<(), CodecError> {
    let held = dict.map(TelemetryDictionary::id);
    if held == opts.dictionary {
        return Ok(());
    }
    let name = |d: Option<ModelId>| d.map_or("none".to_string(), |d| d.to_string());
    Err(CodecError::DictionaryMismatch {
        stream: name(opts.dictionary),
        decoder: name(held),
    })
}

/// Decodes the records of one stream, in order, possibly with gaps.
#[derive(Debug)]
pub struct TelemetryDecoder<'p> {
    core: Core<'p>,
    next: Option<u64>,
    valid: bool,
}

impl<'p> TelemetryDecoder<'p> {
    /// A new stream with the encoder's options.
    /// A new stream with the encoder's options; if they name a dictionary, every record fails
    /// with [`CodecError::DictionaryMismatch`] (see [`TelemetryDecoder::with_dictionary`]).
    pub fn new(prior: &'p Prior, opts: TelemetryOptions) -> Self {
        Self {
            core: Core::new(prior, opts, None),
            next: None,
            valid: false,
        }
    }

    /// A new stream with the encoder's options and the dictionary they name; a dictionary other
    /// than the one named, or none where one is named, is refused with both ids.
    pub fn with_dictionary(
        prior: &'p Prior,
        opts: TelemetryOptions,
        dict: Option<&'p TelemetryDictionary>,
    ) -> Result<Self, CodecError> {
        dictionary_matches(&opts, dict)?;
        Ok(Self {
            core: Core::new(prior, opts, dict),
            next: None,
            valid: false,
        })
    }

    /// Decodes record `seq`. After a gap or a failed record, records before the next intra one
    /// give [`CodecError::Desync`] and decoding resumes there.
    pub fn decode(&mut self, seq: u64, payload: &[u8]) -> Result<Vec<u8>, CodecError> {
        dictionary_matches(&self.core.opts, self.core.dict)?;
        let expected = self.next;
        self.next = Some(seq + 1);
        let intra = self.core.start(seq);
        if !intra && (!self.valid || expected != Some(seq)) {
            self.valid = false;
            return Err(desync(&format!(
                "record {seq} depends on earlier records that were lost or failed; decoding resumes at the next resync point"
            )));
        }
        let mut dec = RangeDecoder::new(payload);
        let res = self.core.code(&mut Dec(&mut dec), &Input::Decode, intra);
        let (out, pending) = match res {
            Ok(x) if !dec.overran() => x,
            Ok(_) => {
                self.valid = false;
                return Err(CodecError::Payload("payload ends before the record does".into()));
            }
            Err(e) => {
                self.valid = false;
                return Err(e);
            }
        };
        self.valid = true;
        let mut bytes = Vec::new();
        let schema = match out {
            Output::Record(leaves, s) => {
                record::write_parts(&self.core.schemas[s].shape, &leaves, &mut bytes);
                Some(s)
            }
            Output::Verbatim(v) => {
                take_header(&mut self.core, &v);
                bytes = v;
                None
            }
        };
        self.core.commit(pending, schema);
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_and_f32_widening() {
        for t in ["0", "7.0", "-3", "0.05", "-0.5", "123456789012345678", "868.3"] {
            let (m, s) = parse_decimal(t.as_bytes()).unwrap();
            assert_eq!(format_decimal(m, s), t);
        }
        for t in ["-0", "01", "1.", ".5", "1e5", "+1", ""] {
            assert!(parse_decimal(t.as_bytes()).is_none(), "{t}");
        }
        assert_eq!(f32_widened(b"-3.799999952316284"), Some((-38, 1)));
        assert_eq!(f32_widened(b"868.2999877929688"), Some((8683, 1)));
        assert_eq!(f32_text(8683, 1).unwrap(), "868.2999877929688");
        assert!(f32_widened(b"0.1").is_none());
    }

    #[test]
    fn timestamps_round_trip() {
        for t in [
            "2023-01-04T21:31:22.173Z",
            "1999-12-31 23:59:59",
            "2024-02-29T00:00:00.000000001+00:00",
            "1970-01-01T00:00:00Z",
        ] {
            let (v, f) = parse_time(t.as_bytes()).unwrap();
            assert_eq!(format_time(v, f).unwrap(), t);
        }
        let (v, _) = parse_time(b"2023-01-04T21:31:22.173Z").unwrap();
        assert_eq!(v, 1_672_867_882_173);
        assert!(parse_time(b"2023-02-30T00:00:00Z").is_none());
    }

    #[test]
    fn base58check_round_trips_and_checks() {
        // A Helium hotspot id: version and key type bytes (0, 0), an ed25519 key, the checksum.
        let id = b"11U5mKzFAHC4vxEM6x28vFTwupiHiWe6jU7UqJZrCv4yqy5w4fo";
        let b = from_base58check(id).unwrap();
        assert_eq!((b.len(), &b[..2]), (34, &[0u8, 0][..]));
        assert_eq!(to_base58check(&b), id);
        // Bitcoin's genesis address (the textbook base58check example).
        let g = b"1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa";
        let b = from_base58check(g).unwrap();
        assert_eq!(b[0], 0);
        assert_eq!(to_base58check(&b), g);
        // One character changed: the checksum fails; not base58; too short.
        assert!(from_base58check(b"11U5mKzFAHC4vxEM6x28vFTwupiHiWe6jU7UqJZrCv4yqy5w4fp").is_none());
        assert!(from_base58check(b"11U5mKzFAHC4vxEM6x28vFTwupiHiWe6jU7UqJZrCv4yqy5w4f0").is_none());
        assert!(from_base58check(b"1111").is_none());
        for n in [3usize, 5, 33, 90] {
            let p: Vec<u8> = (0..n).map(|i| (i * 37 % 7) as u8).collect();
            assert_eq!(from_base58check(&to_base58check(&p)).as_deref(), Some(&p[..]));
        }
    }

    #[test]
    fn binary_text_round_trips() {
        assert_eq!(
            from_binary_text(b"0100460253", S_HEX_LOWER),
            Some(vec![1, 0, 0x46, 2, 0x53])
        );
        assert!(from_binary_text(b"0A", S_HEX_LOWER).is_none());
        let b = from_binary_text(b"AQBGAlMDOw/9Bw4gCwAAAAANAA8AEgA=", S_BASE64).unwrap();
        assert_eq!(b.len(), 23);
        assert!(
            from_binary_text(b"AQ==AQ==", S_BASE64).is_none()
                || to_binary_text(&from_binary_text(b"AQ==AQ==", S_BASE64).unwrap(), S_BASE64) == b"AQ==AQ=="
        );
    }

    #[test]
    fn options_round_trip_and_reject_garbage() {
        let o = TelemetryOptions {
            resync: 8,
            tolerances: vec![("temperature".into(), 0.1), ("a.b".into(), 2.0)],
            dictionary: Some(ModelId(0xdead_beef)),
        };
        let b = o.to_bytes();
        assert_eq!(TelemetryOptions::from_bytes(&b).unwrap(), (o, b.len()));
        for cut in 0..b.len() {
            let _ = TelemetryOptions::from_bytes(&b[..cut]);
        }
    }
}
