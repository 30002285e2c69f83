//! A telemetry *dictionary*: what a stream's earlier records say about the values of each field,
//! shared by encoder and decoder before the stream starts, the way zstd shares a dictionary
//! trained on sample data. A field whose values recur (a gateway's id, a channel, an RSSI or SNR
//! in whole steps) has a static frequency table of its recurring values; a leaf with such a value
//! may be coded as "dictionary value *i*" under that table (optionally by the value of another
//! field of the record: the SNR given the RSSI), which every resync period starts from unchanged.
//! Being static, it is as safe under losses as the prior is: a decoder holds it whatever it
//! lost.
//!
//! Built by [`TelemetryDictionary::build`] from sample records (the training part of a trace,
//! `semcom train telemetry`), stored with [`TelemetryDictionary::to_bytes`], and named in a
//! stream's options by its [`ModelId`] (a hash of its bytes): a decoder given another one refuses
//! the stream with both ids.

use super::record;
use super::{parent, parse_template, parse_time, TelemetryEncoder, TelemetryOptions, MAX_RECORD, TEMPLATE_MAX};
use crate::frame::{get_varint, put_varint, ModelId};
use crate::prior::Prior;
use crate::CodecError;
use std::collections::HashMap;

/// Values kept per field.
pub const MAX_VALUES: usize = 256;
/// Longest value kept (bytes).
const MAX_VALUE_LEN: usize = 64;
/// A value is kept when sample records had it at least this often.
const MIN_COUNT: u32 = 2;
/// A field gets a table when its kept values cover at least this share (in 1/256) of its
/// occurrences in the sample.
const MIN_COVER: u32 = 128;
/// The table's weights total about this much: how strongly the sample's frequencies hold against
/// a period's own (each of whose values adds [`DICT_INC`]).
const WEIGHT_TOTAL: u64 = 4096;
/// What one value coded in a period adds to its weight.
pub(crate) const DICT_INC: u16 = 64;
/// Most fields with tables.
const MAX_FIELDS: usize = 4096;
/// A template is kept when the codec made it in this many resync periods of the sample.
const TEMPLATE_PERIODS: u8 = 4;
/// Templates kept per field.
const TEMPLATES: usize = 4;
/// Most sample records read.
const MAX_SAMPLES: usize = 1 << 18;
/// A context must save this many bits per value on held-out samples.
const MIN_CONTEXT_GAIN: f64 = 0.25;
/// Weight of the field's own frequencies against a context value's counts (pseudo-counts).
const CONTEXT_PRIOR: f64 = 4.0;
/// A context value gets its own weights when the sample had it this often.
const ROW_MIN: u32 = 4;

const MAGIC: &[u8; 4] = b"SCTD";
const VERSION: u8 = 1;

/// One field's recurring values and their static weights (each ≥ 1), likeliest first; and,
/// where another field of the record tells much about it (the SNR given the RSSI), that field's
/// path and weights per value of it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ValueTable {
    pub values: Vec<Vec<u8>>,
    pub weights: Vec<u16>,
    index: HashMap<Vec<u8>, usize>,
    pub context: Option<Context>,
}

/// Weights of a field's values given the value of another field of the record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Context {
    pub path: Vec<u8>,
    /// Per value of the context field: weights of each of the table's values (each ≥ 1).
    rows: Vec<(Vec<u8>, Vec<u16>)>,
    by_value: HashMap<Vec<u8>, usize>,
}

impl Context {
    fn new(path: Vec<u8>, rows: Vec<(Vec<u8>, Vec<u16>)>) -> Self {
        let by_value = rows.iter().enumerate().map(|(i, r)| (r.0.clone(), i)).collect();
        Self { path, rows, by_value }
    }

    /// The weights given the context field's value, if the sample had it often enough.
    pub fn row(&self, ctx: &[u8]) -> Option<&[u16]> {
        self.by_value.get(ctx).map(|&i| self.rows[i].1.as_slice())
    }
}

impl ValueTable {
    fn new(values: Vec<Vec<u8>>, weights: Vec<u16>) -> Self {
        let index = values.iter().enumerate().map(|(i, v)| (v.clone(), i)).collect();
        Self {
            values,
            weights,
            index,
            context: None,
        }
    }

    /// The index of a value, if the table has it.
    pub fn find(&self, v: &[u8]) -> Option<usize> {
        self.index.get(v).copied()
    }
}

/// Static value tables by field path (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetryDictionary {
    tables: HashMap<Vec<u8>, ValueTable>,
    /// Byte-string templates by generalised path (`hotspots.#.raw`), usable in every period.
    templates: HashMap<Vec<u8>, Vec<Vec<u8>>>,
    id: ModelId,
}

impl TelemetryDictionary {
    /// Builds a dictionary from sample records (JSON objects or CSV rows, a CSV header first),
    /// as the codec would take them apart. Records it cannot take apart are skipped.
    ///
    /// A field gets a table of the values it had at least twice (at most
    /// [`MAX_VALUES`], covering at least half its occurrences). Its table is then made
    /// conditional on the field of the record coded before it that predicts it best, when that
    /// saves at least a quarter of a bit per value on the last quarter of the sample with
    /// statistics from the first three quarters (a context that only fits the sample does not
    /// pass).
    ///
    /// Byte-string templates (see the codec's documentation) are those that the codec made, coding
    /// the sample, in at least four resync periods (the four commonest
    /// per field): a period, a refresh period too, may start from them, since no decoder lacks
    /// them.
    pub fn build<'a>(prior: &Prior, records: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let records: Vec<&[u8]> = records.into_iter().take(MAX_SAMPLES).collect();
        let mut ids: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut paths: Vec<Vec<u8>> = Vec::new();
        // Per record: (path id, value, coding rank) of each leaf.
        let mut recs: Vec<Vec<SampleLeaf>> = Vec::new();
        let mut header: Vec<Vec<u8>> = Vec::new();
        for &r in &records {
            if r.len() > MAX_RECORD {
                continue;
            }
            let parsed = record::parse_json(r).or_else(|| {
                if header.is_empty() {
                    header = record::split_csv(r).unwrap_or_default();
                    None
                } else {
                    record::parse_csv(r, &header)
                }
            });
            let Some(p) = parsed else { continue };
            let mut keyed_parents: Vec<Vec<u8>> = Vec::new();
            let mut leaves = Vec::new();
            for (j, ((path, num), text)) in record::leaf_paths(&p.shape).into_iter().zip(p.leaves).enumerate() {
                // The codec codes numbers and each object's first string (its key) first.
                let key = !num && !keyed_parents.iter().any(|k| k == parent(&path));
                if key {
                    keyed_parents.push(parent(&path).to_vec());
                }
                if text.len() > MAX_VALUE_LEN || parse_time(&text).is_some() {
                    continue;
                }
                let next = paths.len() as u32;
                let id = *ids.entry(path.clone()).or_insert(next);
                if id == next {
                    paths.push(path);
                }
                leaves.push((id, text, (!(num || key), j)));
            }
            recs.push(leaves);
        }
        let mut counts: Vec<HashMap<&[u8], u32>> = vec![HashMap::new(); paths.len()];
        for leaves in &recs {
            for (id, text, _) in leaves {
                let per = &mut counts[*id as usize];
                if per.len() < 1 << 16 || per.contains_key(text.as_slice()) {
                    *per.entry(text.as_slice()).or_default() += 1;
                }
            }
        }
        let mut tables: Vec<Option<ValueTable>> = Vec::with_capacity(paths.len());
        for per in &counts {
            let all: u32 = per.values().sum();
            let mut vals: Vec<(&[u8], u32)> = per.iter().map(|(&v, &c)| (v, c)).filter(|v| v.1 >= MIN_COUNT).collect();
            // Likeliest first; ties by value, so a build is reproducible.
            vals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
            vals.truncate(MAX_VALUES);
            let kept: u32 = vals.iter().map(|v| v.1).sum();
            // A constant is the field's last value already; a table helps where values vary.
            if vals.len() < 2 || u64::from(kept) * 256 < u64::from(all) * u64::from(MIN_COVER) {
                tables.push(None);
                continue;
            }
            let weights = vals
                .iter()
                .map(|v| (u64::from(v.1) * WEIGHT_TOTAL / u64::from(kept)).clamp(1, u64::from(u16::MAX)) as u16)
                .collect();
            tables.push(Some(ValueTable::new(
                vals.into_iter().map(|v| v.0.to_vec()).collect(),
                weights,
            )));
        }
        contexts(&recs, &paths, &mut tables);
        let mut out = HashMap::new();
        for (path, t) in paths.into_iter().zip(tables) {
            if let Some(t) = t {
                if out.len() < MAX_FIELDS {
                    out.insert(path, t);
                }
            }
        }
        let mut enc = TelemetryEncoder::new(prior, TelemetryOptions::default());
        for &r in &records {
            // A record the codec refuses leaves nothing to learn from.
            let _ = enc.encode(r);
        }
        let core = &enc.core;
        let mut templates = HashMap::new();
        for (general, &gid) in &core.general_ids {
            let mut ts: Vec<(u8, &Vec<u8>)> = core.templates[gid as usize]
                .seen
                .iter()
                .filter(|(_, m)| m.periods >= TEMPLATE_PERIODS)
                .map(|(t, m)| (m.periods, t))
                .collect();
            ts.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            ts.truncate(TEMPLATES);
            if !ts.is_empty() && templates.len() < MAX_FIELDS {
                templates.insert(general.clone(), ts.into_iter().map(|t| t.1.clone()).collect());
            }
        }
        let mut d = Self {
            tables: out,
            templates,
            id: ModelId(0),
        };
        d.id = ModelId::of_bytes(&d.to_bytes());
        d
    }

    /// The dictionary's id: a hash of [`TelemetryDictionary::to_bytes`].
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// Fields with a value table.
    pub fn fields(&self) -> usize {
        self.tables.len()
    }

    /// The paths with a value table, their numbers of values and the paths of their contexts,
    /// by path.
    pub fn summary(&self) -> Vec<(String, usize, Option<String>)> {
        let mut v: Vec<_> = self
            .tables
            .iter()
            .map(|(p, t)| {
                let ctx = t
                    .context
                    .as_ref()
                    .map(|c| String::from_utf8_lossy(&c.path).into_owned());
                (String::from_utf8_lossy(p).into_owned(), t.values.len(), ctx)
            })
            .collect();
        v.sort();
        v
    }

    pub(crate) fn table(&self, path: &[u8]) -> Option<&ValueTable> {
        self.tables.get(path)
    }

    /// The byte-string templates of a generalised path.
    pub(crate) fn templates(&self, general: &[u8]) -> &[Vec<u8>] {
        self.templates.get(general).map_or(&[], Vec::as_slice)
    }

    /// Serialises (paths in order, so equal dictionaries give equal bytes and ids).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        let mut paths: Vec<_> = self.tables.iter().collect();
        paths.sort_by(|a, b| a.0.cmp(b.0));
        put_varint(&mut out, paths.len() as u64);
        for (path, t) in paths {
            put_bytes(&mut out, path);
            put_varint(&mut out, t.values.len() as u64);
            for (v, &w) in t.values.iter().zip(&t.weights) {
                put_bytes(&mut out, v);
                put_varint(&mut out, u64::from(w));
            }
            match &t.context {
                None => out.push(0),
                Some(c) => {
                    out.push(1);
                    put_bytes(&mut out, &c.path);
                    put_varint(&mut out, c.rows.len() as u64);
                    for (v, w) in &c.rows {
                        put_bytes(&mut out, v);
                        for &x in w {
                            put_varint(&mut out, u64::from(x));
                        }
                    }
                }
            }
        }
        let mut ts: Vec<_> = self.templates.iter().collect();
        ts.sort_by(|a, b| a.0.cmp(b.0));
        put_varint(&mut out, ts.len() as u64);
        for (general, list) in ts {
            put_bytes(&mut out, general);
            put_varint(&mut out, list.len() as u64);
            for t in list {
                put_bytes(&mut out, t);
            }
        }
        out
    }

    /// Inverse of [`TelemetryDictionary::to_bytes`]: any byte string gives a dictionary or a
    /// typed error.
    pub fn from_bytes(b: &[u8]) -> Result<Self, CodecError> {
        let bad = |w: &str| CodecError::Malformed(format!("telemetry dictionary: {w}"));
        if b.len() < 5 || &b[..4] != MAGIC {
            return Err(bad("not a telemetry dictionary (magic SCTD missing)"));
        }
        if b[4] != VERSION {
            return Err(bad(&format!("version {} (this build reads {VERSION})", b[4])));
        }
        let mut i = 5;
        let varint = |i: &mut usize| -> Result<u64, CodecError> {
            let (v, n) = get_varint(b.get(*i..).unwrap_or(&[])).ok_or_else(|| bad("truncated or bad varint"))?;
            *i += n;
            Ok(v)
        };
        let bytes = |i: &mut usize, n: u64, max: usize| -> Result<Vec<u8>, CodecError> {
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= max)
                .ok_or_else(|| bad("string too long"))?;
            let s = b.get(*i..*i + n).ok_or_else(|| bad("truncated"))?.to_vec();
            *i += n;
            Ok(s)
        };
        let n = varint(&mut i)?;
        if n > MAX_FIELDS as u64 {
            return Err(bad("too many fields"));
        }
        let mut tables = HashMap::new();
        let mut last: Option<Vec<u8>> = None;
        for _ in 0..n {
            let len = varint(&mut i)?;
            let path = bytes(&mut i, len, MAX_RECORD)?;
            if last.as_ref().is_some_and(|l| *l >= path) {
                return Err(bad("paths out of order or repeated"));
            }
            let k = varint(&mut i)?;
            if !(2..=MAX_VALUES as u64).contains(&k) {
                return Err(bad("a field's table must have 2 to 256 values"));
            }
            let weight = |i: &mut usize| -> Result<u16, CodecError> {
                u16::try_from(varint(i)?)
                    .ok()
                    .filter(|&w| w >= 1)
                    .ok_or_else(|| bad("weight outside 1..=65535"))
            };
            let (mut values, mut weights) = (Vec::new(), Vec::new());
            for _ in 0..k {
                let len = varint(&mut i)?;
                values.push(bytes(&mut i, len, MAX_VALUE_LEN)?);
                weights.push(weight(&mut i)?);
            }
            let mut t = ValueTable::new(values, weights);
            if t.index.len() != t.values.len() {
                return Err(bad("a value repeated in a field's table"));
            }
            match b.get(i) {
                Some(0) => i += 1,
                Some(1) => {
                    i += 1;
                    let len = varint(&mut i)?;
                    let cpath = bytes(&mut i, len, MAX_RECORD)?;
                    let rows = varint(&mut i)?;
                    if rows == 0 || rows > MAX_VALUES as u64 {
                        return Err(bad("a context must have 1 to 256 rows"));
                    }
                    let mut rs = Vec::new();
                    for _ in 0..rows {
                        let len = varint(&mut i)?;
                        let v = bytes(&mut i, len, MAX_VALUE_LEN)?;
                        let w = (0..k).map(|_| weight(&mut i)).collect::<Result<Vec<u16>, _>>()?;
                        rs.push((v, w));
                    }
                    let c = Context::new(cpath, rs);
                    if c.by_value.len() != c.rows.len() {
                        return Err(bad("a context value repeated"));
                    }
                    t.context = Some(c);
                }
                _ => return Err(bad("bad context flag")),
            }
            last = Some(path.clone());
            tables.insert(path, t);
        }
        let n = varint(&mut i)?;
        if n > MAX_FIELDS as u64 {
            return Err(bad("too many fields with templates"));
        }
        let mut templates = HashMap::new();
        for _ in 0..n {
            let len = varint(&mut i)?;
            let general = bytes(&mut i, len, MAX_RECORD)?;
            let k = varint(&mut i)?;
            if !(1..=TEMPLATES as u64).contains(&k) {
                return Err(bad("a field must have 1 to 4 templates"));
            }
            let mut list = Vec::new();
            for _ in 0..k {
                let len = varint(&mut i)?;
                let t = bytes(&mut i, len, 4 + 10 * TEMPLATE_MAX)?;
                parse_template(&t).map_err(|_| bad("malformed byte template"))?;
                list.push(t);
            }
            if templates.insert(general, list).is_some() {
                return Err(bad("a field's templates repeated"));
            }
        }
        if i != b.len() {
            return Err(bad("bytes after the last template"));
        }
        Ok(Self {
            tables,
            templates,
            id: ModelId::of_bytes(b),
        })
    }
}

/// Where the codec codes a leaf: after the numbers and keys (`true`) or among them, then by
/// position in the record.
type Rank = (bool, usize);
/// A sample leaf: path id, value, rank.
type SampleLeaf = (u32, Vec<u8>, Rank);
/// (context value, value) -> counts in the first three quarters and the last quarter of the
/// sample.
type JointCounts = HashMap<(u16, u16), [u32; 2]>;

/// A byte string after its length.
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Chooses each table's context (see [`TelemetryDictionary::build`]) and fills its rows.
fn contexts(recs: &[Vec<SampleLeaf>], paths: &[Vec<u8>], tables: &mut [Option<ValueTable>]) {
    // Per record: (path id, value index, coding rank) of each leaf whose value is in its table.
    let coded: Vec<Vec<(u32, u16, Rank)>> = recs
        .iter()
        .map(|leaves| {
            leaves
                .iter()
                .filter_map(|(id, text, rank)| {
                    let t = tables[*id as usize].as_ref()?;
                    Some((*id, t.find(text)? as u16, *rank))
                })
                .collect()
        })
        .collect();
    let split = recs.len() * 3 / 4;
    let n = tables.len();
    // Own frequencies per field: all samples and the first three quarters.
    let mut own = vec![(Vec::<u32>::new(), Vec::<u32>::new()); n];
    for (i, t) in tables.iter().enumerate() {
        if let Some(t) = t {
            own[i] = (vec![0; t.values.len()], vec![0; t.values.len()]);
        }
    }
    // Joint counts per (field, context field): (context value, value) -> (first 3/4, last 1/4).
    let mut joint: HashMap<(u32, u32), JointCounts> = HashMap::new();
    for (r, leaves) in coded.iter().enumerate() {
        let half = usize::from(r >= split);
        for &(f, v, rf) in leaves {
            own[f as usize].0[usize::from(v)] += 1;
            if half == 0 {
                own[f as usize].1[usize::from(v)] += 1;
            }
            for &(g, gv, rg) in leaves {
                if rg < rf && g != f {
                    joint.entry((f, g)).or_default().entry((gv, v)).or_default()[half] += 1;
                }
            }
        }
    }
    let smoothed = |c: &[u32]| -> Vec<f64> {
        let total: f64 = c.iter().map(|&x| f64::from(x)).sum::<f64>() + 0.5 * c.len() as f64;
        c.iter().map(|&x| (f64::from(x) + 0.5) / total).collect()
    };
    let mut best: HashMap<u32, (f64, u32)> = HashMap::new();
    let mut pairs: Vec<_> = joint.iter().collect();
    pairs.sort_by_key(|p| *p.0);
    for (&(f, g), cells) in pairs {
        let p = smoothed(&own[f as usize].1);
        // In key order: a sum of floats in a map's order differs from run to run, and two
        // contexts that say the same (two distances of one gateway) would then win by chance.
        let mut cells: Vec<_> = cells.iter().collect();
        cells.sort_unstable_by_key(|c| *c.0);
        let mut by_ctx: HashMap<u16, f64> = HashMap::new();
        for &(&(gv, _), c) in &cells {
            *by_ctx.entry(gv).or_default() += f64::from(c[0]);
        }
        let (mut gain, mut held) = (0.0, 0.0);
        for &(&(gv, v), c) in &cells {
            if c[1] == 0 {
                continue;
            }
            let pv = p[usize::from(v)];
            let q = (f64::from(c[0]) + CONTEXT_PRIOR * pv) / (by_ctx[&gv] + CONTEXT_PRIOR);
            gain += f64::from(c[1]) * (q / pv).log2();
            held += f64::from(c[1]);
        }
        let occurrences: f64 = f64::from(own[f as usize].0.iter().sum::<u32>() - own[f as usize].1.iter().sum::<u32>());
        if held == 0.0 || occurrences == 0.0 {
            continue;
        }
        let per = gain / occurrences;
        if per >= MIN_CONTEXT_GAIN && best.get(&f).is_none_or(|b| per > b.0) {
            best.insert(f, (per, g));
        }
    }
    let mut chosen: Vec<_> = best.into_iter().collect();
    chosen.sort_by_key(|c| c.0);
    for (f, (_, g)) in chosen {
        let cells = &joint[&(f, g)];
        let p = smoothed(&own[f as usize].0);
        let k = p.len();
        let mut rows: HashMap<u16, Vec<u32>> = HashMap::new();
        for (&(gv, v), c) in cells {
            rows.entry(gv).or_insert_with(|| vec![0; k])[usize::from(v)] += c[0] + c[1];
        }
        let Some(ctx_table) = tables[g as usize].as_ref() else {
            continue;
        };
        let mut rows: Vec<(Vec<u8>, Vec<u16>)> = rows
            .into_iter()
            .filter(|r| r.1.iter().sum::<u32>() >= ROW_MIN)
            .map(|(gv, c)| {
                let n: f64 = c.iter().map(|&x| f64::from(x)).sum();
                let w = c
                    .iter()
                    .zip(&p)
                    .map(|(&x, &pv)| {
                        let q = (f64::from(x) + CONTEXT_PRIOR * pv) / (n + CONTEXT_PRIOR);
                        ((q * WEIGHT_TOTAL as f64).round() as u64).clamp(1, u64::from(u16::MAX)) as u16
                    })
                    .collect();
                (ctx_table.values[usize::from(gv)].clone(), w)
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(t) = tables[f as usize].as_mut().filter(|_| !rows.is_empty()) {
            t.context = Some(Context::new(paths[g as usize].clone(), rows));
        }
    }
}
