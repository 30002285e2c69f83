//! The prior: a small causal transformer over the shared token space whose next-token
//! distribution drives the range coder.
//!
//! A model file is one safetensors file: the weights (candle's names), plus metadata holding the
//! [`Config`] and the BPE merges. Its [`ModelId`] is the hash of the file, and every frame coded
//! with it carries that id.

pub mod engine;
pub mod model;
pub mod ngram;

use crate::bpe::Bpe;
use crate::frame::ModelId;
use crate::rangecoder::{RangeDecoder, RangeEncoder};
use crate::vocab::{BOS, EOS, FIRST_MERGE, N_BYTES};
use crate::CodecError;
use engine::{exp, Engine, State};
pub use model::{Config, Model};
use ngram::{NGram, StreamMemory};
use std::collections::HashMap;
use std::path::Path;

/// Metadata keys of a model file.
const META_KIND: &str = "semcom.kind";
const META_CONFIG: &str = "semcom.config";
const META_MERGES: &str = "semcom.merges";
/// Metadata key of the engine's arithmetic: `int8` (see [`Engine::quantise`]) or absent (f32).
const META_ENGINE: &str = "semcom.engine";
/// Name of the (optional) U8 tensor holding the n-gram memory.
const NGRAM_TENSOR: &str = "ngram.table";

/// A loaded prior: tokenizer, deterministic engine, id.
#[derive(Debug)]
pub struct Prior {
    engine: Engine,
    bpe: Bpe,
    id: ModelId,
    /// Tokens a text coder may emit: bytes, merges and EOS.
    text_allowed: Vec<bool>,
    /// The n-gram memory of the training text, when the file has one.
    ngram: Option<NGram>,
}

impl Prior {
    /// Loads a model file.
    pub fn load(path: &Path) -> Result<Self, CodecError> {
        let bytes = std::fs::read(path).map_err(|e| CodecError::Io {
            path: path.display().to_string(),
            source: e,
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            CodecError::Model { reason, .. } => CodecError::Model {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Loads a model from a file's contents.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        let bad = |reason: String| CodecError::Model {
            path: String::new(),
            reason,
        };
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        if meta.get(META_KIND).map(String::as_str) != Some("prior") {
            return Err(bad(format!(
                "not a semcom prior (metadata `{META_KIND}` is {:?})",
                meta.get(META_KIND)
            )));
        }
        let cfg: Config = serde_json::from_str(
            meta.get(META_CONFIG)
                .ok_or_else(|| bad("no config in metadata".into()))?,
        )
        .map_err(|e| bad(format!("config: {e}")))?;
        cfg.validate().map_err(bad)?;
        let merges: Vec<(u32, u32)> = serde_json::from_str(
            meta.get(META_MERGES)
                .ok_or_else(|| bad("no merges in metadata".into()))?,
        )
        .map_err(|e| bad(format!("merges: {e}")))?;
        let n_text = FIRST_MERGE as usize + merges.len();
        if merges
            .iter()
            .enumerate()
            .any(|(i, &(a, b))| a as usize >= FIRST_MERGE as usize + i || b as usize >= FIRST_MERGE as usize + i)
            || n_text > cfg.vocab_size
        {
            return Err(bad(
                "merges refer to tokens that do not exist yet, or exceed the vocabulary".into(),
            ));
        }
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(format!("tensors: {e}")))?;
        let get = |name: &str, len: usize| -> Result<Vec<f32>, CodecError> {
            let t = st.tensor(name).map_err(|e| bad(format!("tensor {name}: {e}")))?;
            if t.dtype() != safetensors::Dtype::F32 {
                return Err(bad(format!("tensor {name} is {:?}, not F32", t.dtype())));
            }
            let data = t.data();
            if data.len() != 4 * len {
                return Err(bad(format!(
                    "tensor {name} holds {} values, {len} expected",
                    data.len() / 4
                )));
            }
            let v: Vec<f32> = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if v.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!("tensor {name} holds non-finite values")));
            }
            Ok(v)
        };
        let mut engine = Engine::from_tensors(cfg.clone(), &get)?;
        match meta.get(META_ENGINE).map(String::as_str) {
            None | Some("f32") => {}
            Some("int8") => engine.quantise(),
            Some(other) => return Err(bad(format!("unknown engine arithmetic `{other}`"))),
        }
        let ngram = match st.tensor(NGRAM_TENSOR) {
            Ok(t) if t.dtype() == safetensors::Dtype::U8 => Some(NGram::from_bytes(t.data(), cfg.vocab_size)?),
            Ok(t) => return Err(bad(format!("tensor {NGRAM_TENSOR} is {:?}, not U8", t.dtype()))),
            Err(_) => None,
        };
        let mut text_allowed = vec![false; cfg.vocab_size];
        for a in text_allowed.iter_mut().take(N_BYTES) {
            *a = true;
        }
        for a in text_allowed.iter_mut().take(n_text).skip(FIRST_MERGE as usize) {
            *a = true;
        }
        text_allowed[EOS as usize] = true;
        Ok(Self {
            engine,
            bpe: Bpe::from_merges(merges),
            id: ModelId::of_bytes(bytes),
            text_allowed,
            ngram,
        })
    }

    /// A model file's bytes with its n-gram memory replaced by `ngram` (removed when `None`)
    /// and the engine's arithmetic set (8-bit when `int8`): same weights, same other metadata.
    pub fn file_with_ngram(file: &[u8], ngram: Option<&NGram>, int8: bool) -> Result<Vec<u8>, CodecError> {
        let bad = |reason: String| CodecError::Model {
            path: String::new(),
            reason,
        };
        let (_, meta) =
            safetensors::SafeTensors::read_metadata(file).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let mut meta = meta.metadata().clone().unwrap_or_default();
        if int8 {
            meta.insert(META_ENGINE.to_string(), "int8".to_string());
        } else {
            meta.remove(META_ENGINE);
        }
        let meta = Some(meta);
        let st = safetensors::SafeTensors::deserialize(file).map_err(|e| bad(format!("tensors: {e}")))?;
        let table = ngram.map(NGram::to_bytes).transpose()?;
        let mut views: Vec<(String, safetensors::tensor::TensorView<'_>)> =
            st.tensors().into_iter().filter(|(n, _)| n != NGRAM_TENSOR).collect();
        if let Some(table) = &table {
            views.push((
                NGRAM_TENSOR.to_string(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![table.len()], table)
                    .map_err(|e| CodecError::Backend(e.to_string()))?,
            ));
        }
        views.sort_by(|a, b| a.0.cmp(&b.0));
        safetensors::serialize(views, meta).map_err(|e| CodecError::Backend(e.to_string()))
    }

    /// The n-gram memory, if the model has one.
    pub fn ngram(&self) -> Option<&NGram> {
        self.ngram.as_ref()
    }

    /// Integer frequencies (total ≤ 2¹⁶) of the token after `history`, given the transformer's
    /// `logits` there: [`Engine::frequencies`], with the n-gram memory of the training text and
    /// then a stream's memory `mem` blended in when there are. A deterministic function of its
    /// inputs.
    pub fn frequencies(
        &self,
        logits: &[f32],
        history: &[u32],
        allowed: &[bool],
        out: &mut [u32],
        s: &mut Scratch,
        mem: Option<&StreamMemory>,
    ) {
        if self.ngram.is_none() && mem.is_none() {
            return Engine::frequencies(logits, allowed, out);
        }
        let mx = logits
            .iter()
            .zip(allowed)
            .filter(|(_, &a)| a)
            .fold(f32::NEG_INFINITY, |m, (&l, _)| if l > m { l } else { m });
        s.p.clear();
        let mut sum = 0f32;
        for (&l, &a) in logits.iter().zip(allowed) {
            let e = if a { exp(l - mx) } else { 0.0 };
            s.p.push(f64::from(e));
            sum += e;
        }
        let inv = 1.0 / f64::from(sum);
        for v in &mut s.p {
            *v *= inv;
        }
        let mut found = false;
        if let Some(ng) = &self.ngram {
            found |= ng.blend(history, allowed, &mut s.p, &mut s.hashes, &mut s.extra);
        }
        if let Some(m) = mem {
            found |= m.blend(history, allowed, &mut s.p, &mut s.hashes, &mut s.extra);
        }
        if !found {
            return Engine::frequencies(logits, allowed, out);
        }
        let total = crate::rangecoder::MAX_TOTAL;
        let n_allowed = allowed.iter().filter(|&&a| a).count() as u32;
        let norm: f64 = s.p.iter().zip(allowed).filter(|(_, &a)| a).map(|(&v, _)| v).sum();
        let spare = f64::from(total - n_allowed) / norm;
        for ((o, &v), &a) in out.iter_mut().zip(&s.p).zip(allowed) {
            *o = if a {
                1 + ((v * spare) as u32).min(total - n_allowed)
            } else {
                0
            };
        }
    }

    /// Serialises tensors and tokenizer into a model file's bytes.
    pub fn file_bytes(
        tensors: &HashMap<String, candle_core::Tensor>,
        cfg: &Config,
        bpe: &Bpe,
    ) -> Result<Vec<u8>, CodecError> {
        let mut meta = HashMap::new();
        meta.insert(META_KIND.to_string(), "prior".to_string());
        meta.insert(
            META_CONFIG.to_string(),
            serde_json::to_string(cfg).map_err(|e| CodecError::Backend(e.to_string()))?,
        );
        meta.insert(
            META_MERGES.to_string(),
            serde_json::to_string(bpe.merges()).map_err(|e| CodecError::Backend(e.to_string()))?,
        );
        let mut sorted: Vec<(&String, &candle_core::Tensor)> = tensors.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        safetensors::serialize(sorted, Some(meta)).map_err(|e| CodecError::Backend(e.to_string()))
    }

    /// The model id (hash of the file).
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// The tokenizer.
    pub fn bpe(&self) -> &Bpe {
        &self.bpe
    }

    /// The inference engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Which tokens a text coder may emit.
    pub fn text_allowed(&self) -> &[bool] {
        &self.text_allowed
    }
}

/// Logits after every token of `seq` (row i: the distribution of the token after `seq[i]`),
/// computed in windows the way [`TokenCoder`] feeds them one by one: when the context is full,
/// both keep its last half and go on. Parallel over `threads` threads, bit-identical to the
/// incremental path whatever the thread count.
pub fn sequence_logits(engine: &Engine, seq: &[u32], threads: usize) -> Result<Vec<f32>, CodecError> {
    let (v, max) = (engine.config().vocab_size, engine.config().max_len);
    let keep = max / 2;
    let mut out = vec![0f32; seq.len() * v];
    let mut start = 0;
    let mut first_used = 0;
    let mut buf = Vec::new();
    while first_used < seq.len() {
        let end = (start + max).min(seq.len());
        buf.resize((end - start) * v, 0.0);
        let mut st = engine.new_state();
        if !engine.prefill(&mut st, &seq[start..end], threads, &mut buf) {
            return Err(CodecError::Input("token outside the model's vocabulary".into()));
        }
        out[first_used * v..end * v].copy_from_slice(&buf[(first_used - start) * v..]);
        if end == seq.len() {
            break;
        }
        // The token at `end` overflows: the window restarts with the last `keep` tokens up to it.
        first_used = end;
        start = end + 1 - keep;
    }
    Ok(out)
}

/// Scratch space of [`Prior::frequencies`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    p: Vec<f64>,
    hashes: Vec<u64>,
    extra: Vec<(u32, f64)>,
}

/// Codes one token sequence with the prior: the shared loop of encoder and decoder, so both
/// feed the engine the same tokens in the same order.
#[derive(Debug)]
pub struct TokenCoder<'p> {
    prior: &'p Prior,
    state: State,
    /// Every token fed so far (to refill the context when it is full).
    history: Vec<u32>,
    logits: Vec<f32>,
    freqs: Vec<u32>,
    scratch: Scratch,
    mem: Option<&'p StreamMemory>,
}

impl<'p> TokenCoder<'p> {
    /// Starts a sequence with `context` (e.g. BOS, a tag, earlier messages).
    pub fn new(prior: &'p Prior, context: &[u32]) -> Self {
        let v = prior.engine.config().vocab_size;
        let mut c = Self {
            prior,
            state: prior.engine.new_state(),
            history: Vec::new(),
            logits: vec![0.0; v],
            freqs: vec![0; v],
            scratch: Scratch::default(),
            mem: None,
        };
        for &t in if context.is_empty() { &[BOS][..] } else { context } {
            c.feed(t);
        }
        c
    }

    /// Blends a stream's memory into every distribution (see [`StreamMemory`]).
    pub fn with_memory(mut self, mem: &'p StreamMemory) -> Self {
        self.mem = Some(mem);
        self
    }

    /// Encodes `tokens` after `context` in one pass (the encoder knows them all): the logits of
    /// every position come from [`sequence_logits`] over `threads` threads. `allowed(i)` is the
    /// mask for token i. Decodes with [`TokenCoder::decode`] token by token.
    pub fn encode_all<'a>(
        prior: &Prior,
        context: &[u32],
        tokens: &[u32],
        allowed: impl Fn(usize) -> &'a [bool],
        enc: &mut RangeEncoder,
        threads: usize,
        mem: Option<&StreamMemory>,
    ) -> Result<(), CodecError> {
        let context = if context.is_empty() { &[BOS][..] } else { context };
        let seq: Vec<u32> = context.iter().chain(tokens).copied().collect();
        let v = prior.engine.config().vocab_size;
        let logits = sequence_logits(&prior.engine, &seq[..seq.len() - 1], threads)?;
        let mut freqs = vec![0u32; v];
        let mut scratch = Scratch::default();
        for (i, &t) in tokens.iter().enumerate() {
            let at = context.len() + i;
            let row = &logits[(at - 1) * v..][..v];
            prior.frequencies(row, &seq[..at], allowed(i), &mut freqs, &mut scratch, mem);
            code_with(enc, &freqs, t)?;
        }
        Ok(())
    }

    fn feed(&mut self, t: u32) {
        self.history.push(t);
        if !self.prior.engine.step(&mut self.state, t, &mut self.logits) {
            // Context full: keep the last half and continue (both sides do the same).
            let max = self.prior.engine.config().max_len;
            let keep: Vec<u32> = self.history[self.history.len() - max / 2..].to_vec();
            self.state = self.prior.engine.new_state();
            self.history.clear();
            for k in keep {
                self.history.push(k);
                self.prior.engine.step(&mut self.state, k, &mut self.logits);
            }
        }
    }

    /// Codes `t` (which must be allowed) and feeds it.
    pub fn encode(&mut self, enc: &mut RangeEncoder, t: u32, allowed: &[bool]) -> Result<(), CodecError> {
        self.next_frequencies(allowed);
        code_with(enc, &self.freqs, t)?;
        self.feed(t);
        Ok(())
    }

    /// The frequencies of the next token into `self.freqs`.
    fn next_frequencies(&mut self, allowed: &[bool]) {
        self.prior.frequencies(
            &self.logits,
            &self.history,
            allowed,
            &mut self.freqs,
            &mut self.scratch,
            self.mem,
        );
    }

    /// Decodes the next token and feeds it.
    pub fn decode(&mut self, dec: &mut RangeDecoder<'_>, allowed: &[bool]) -> Result<u32, CodecError> {
        self.next_frequencies(allowed);
        let total: u32 = self.freqs.iter().sum();
        let target = dec
            .target(total)
            .ok_or_else(|| CodecError::Payload("code value outside the distribution".into()))?;
        let mut cum = 0u32;
        for (t, &f) in self.freqs.iter().enumerate() {
            if target < cum + f {
                dec.consume(cum, f, total);
                self.feed(t as u32);
                return Ok(t as u32);
            }
            cum += f;
        }
        Err(CodecError::Payload("code value outside the distribution".into()))
    }

    /// Bits the coder spends on token `t` next (for reports).
    pub fn cost_bits(&mut self, t: u32, allowed: &[bool]) -> f64 {
        self.next_frequencies(allowed);
        let total: u32 = self.freqs.iter().sum();
        -(f64::from(self.freqs[t as usize]) / f64::from(total)).log2()
    }
}

fn code_with(enc: &mut RangeEncoder, freqs: &[u32], t: u32) -> Result<(), CodecError> {
    let f = *freqs.get(t as usize).unwrap_or(&0);
    if f == 0 {
        return Err(CodecError::Input(format!("token {t} is not codable in this context")));
    }
    let cum: u32 = freqs[..t as usize].iter().sum();
    let total: u32 = freqs.iter().sum();
    enc.encode(cum, f, total);
    Ok(())
}

/// Bytes a [`PrefixCache`] may hold (distributions and engine caches of its nodes); past it,
/// sequences are coded by a plain [`TokenCoder`] and nothing new is kept.
const PREFIX_CACHE_BYTES: usize = 8 << 20;
/// Deepest node a [`PrefixCache`] keeps (context plus tokens), well inside the context window.
const PREFIX_CACHE_DEPTH: usize = 24;

/// The next-token distributions of the token sequences a stream has coded after fixed contexts
/// (a trie), so that a sequence coded again, or sharing a beginning with an earlier one, costs no
/// transformer step for the part already seen.
///
/// A node holds exactly the frequencies [`TokenCoder`] computes after the same tokens (the
/// engine is a deterministic function of them), so coding through the cache gives the same bits
/// as coding with a fresh [`TokenCoder`] every time; the cache only saves time. The telemetry
/// codec codes keys and short strings this way: they recur in every resync period.
#[derive(Debug)]
pub struct PrefixCache<'p> {
    prior: &'p Prior,
    allowed: Vec<bool>,
    nodes: Vec<PrefixNode>,
    roots: Vec<(Vec<u32>, usize)>,
    bytes: usize,
    logits: Vec<f32>,
    freqs: Vec<u32>,
    scratch: Scratch,
}

/// One sequence seen: its next-token distribution and what extends it.
#[derive(Debug)]
struct PrefixNode {
    /// Cumulative frequencies: token t's interval is `cum[t]..cum[t + 1]`, the total `cum[v]`.
    cum: Vec<u32>,
    children: Vec<(u32, usize)>,
    /// The node one token shorter (none for a context).
    parent: Option<usize>,
    /// The engine's keys and values of this node's own positions ([`State::rows_from`]): the
    /// whole context for a root, its last token otherwise. A node's state is its chain's rows.
    rows: Vec<f32>,
    /// Context and tokens.
    history: Vec<u32>,
}

impl<'p> PrefixCache<'p> {
    /// An empty cache for sequences whose every token is coded under `allowed`.
    pub fn new(prior: &'p Prior, allowed: &[bool]) -> Self {
        let v = prior.engine.config().vocab_size;
        Self {
            prior,
            allowed: allowed.to_vec(),
            nodes: Vec::new(),
            roots: Vec::new(),
            bytes: 0,
            logits: vec![0.0; v],
            freqs: vec![0; v],
            scratch: Scratch::default(),
        }
    }

    /// Starts a sequence after `context` (as [`TokenCoder::new`]).
    pub fn coder(&mut self, context: &[u32]) -> CachedCoder<'_, 'p> {
        let context = if context.is_empty() { &[BOS][..] } else { context };
        if let Some(&(_, n)) = self.roots.iter().find(|(c, _)| c == context) {
            return CachedCoder {
                cache: self,
                at: At::Node(n),
            };
        }
        let coder = TokenCoder::new(self.prior, context);
        let at = if context.len() <= PREFIX_CACHE_DEPTH && coder.history == context {
            let n = self.insert(None, coder.state.rows_from(0), coder.history, &coder.logits);
            self.roots.push((context.to_vec(), n));
            At::Node(n)
        } else {
            At::Live(Box::new(coder))
        };
        CachedCoder { cache: self, at }
    }

    /// Nodes held.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when nothing is held yet.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The engine's state after node `n`'s tokens.
    fn state(&self, n: usize) -> State {
        let mut chain = vec![n];
        while let Some(p) = self.nodes[chain[chain.len() - 1]].parent {
            chain.push(p);
        }
        let mut st = self.prior.engine.state_with_capacity(self.nodes[n].history.len() + 1);
        for &c in chain.iter().rev() {
            let node = &self.nodes[c];
            let own = if node.parent.is_some() { 1 } else { node.history.len() };
            st.push_rows(&node.rows, own);
        }
        st
    }

    /// Adds the node after `history` (child of `parent`, with its own keys and values `rows`)
    /// whose logits are `logits`; returns its index.
    fn insert(&mut self, parent: Option<usize>, rows: Vec<f32>, history: Vec<u32>, logits: &[f32]) -> usize {
        self.prior.frequencies(
            logits,
            &history,
            &self.allowed,
            &mut self.freqs,
            &mut self.scratch,
            None,
        );
        let mut cum = Vec::with_capacity(self.freqs.len() + 1);
        let mut total = 0u32;
        cum.push(0);
        for &f in &self.freqs {
            total += f;
            cum.push(total);
        }
        self.bytes += 4 * (cum.len() + rows.len() + history.len()) + 96;
        self.nodes.push(PrefixNode {
            cum,
            children: Vec::new(),
            parent,
            rows,
            history,
        });
        self.nodes.len() - 1
    }
}

/// Where a [`CachedCoder`] stands.
#[derive(Debug)]
enum At<'p> {
    /// After a node's tokens.
    Node(usize),
    /// After a node's tokens and one more, whose node is looked up (or computed) only when the
    /// next token is coded: the last token of a sequence costs no step.
    Fed(usize, u32),
    /// Past what the cache keeps.
    Live(Box<TokenCoder<'p>>),
}

/// Codes one token sequence through a [`PrefixCache`]; the same bits as [`TokenCoder`].
#[derive(Debug)]
pub struct CachedCoder<'c, 'p> {
    cache: &'c mut PrefixCache<'p>,
    at: At<'p>,
}

impl CachedCoder<'_, '_> {
    /// Makes `self.at` a node or a live coder.
    fn resolve(&mut self) {
        let At::Fed(n, t) = self.at else { return };
        let c = &mut *self.cache;
        if let Some(&(_, child)) = c.nodes[n].children.iter().find(|&&(k, _)| k == t) {
            self.at = At::Node(child);
            return;
        }
        let mut state = c.state(n);
        let mut history = c.nodes[n].history.clone();
        let room = history.len() < PREFIX_CACHE_DEPTH && c.bytes < PREFIX_CACHE_BYTES;
        if room && c.prior.engine.step(&mut state, t, &mut c.logits) {
            let rows = state.rows_from(history.len());
            history.push(t);
            let logits = std::mem::take(&mut c.logits);
            let child = c.insert(Some(n), rows, history, &logits);
            c.logits = logits;
            c.nodes[n].children.push((t, child));
            self.at = At::Node(child);
            return;
        }
        // No room (or the step would overflow the context, which `feed` handles): go on
        // without the cache from the node's state (a failed step changed nothing).
        let v = c.prior.engine.config().vocab_size;
        let mut coder = TokenCoder {
            prior: c.prior,
            state,
            history,
            logits: vec![0.0; v],
            freqs: vec![0; v],
            scratch: Scratch::default(),
            mem: None,
        };
        coder.feed(t);
        self.at = At::Live(Box::new(coder));
    }

    /// Codes `t` (which must be allowed) and moves past it.
    pub fn encode(&mut self, enc: &mut RangeEncoder, t: u32) -> Result<(), CodecError> {
        self.resolve();
        match &mut self.at {
            At::Node(n) => {
                let n = *n;
                let cum = &self.cache.nodes[n].cum;
                let (lo, hi) = match (cum.get(t as usize), cum.get(t as usize + 1)) {
                    (Some(&lo), Some(&hi)) if hi > lo => (lo, hi),
                    _ => return Err(CodecError::Input(format!("token {t} is not codable in this context"))),
                };
                enc.encode(lo, hi - lo, cum[cum.len() - 1]);
                self.at = At::Fed(n, t);
                Ok(())
            }
            At::Live(c) => c.encode(enc, t, &self.cache.allowed),
            At::Fed(..) => unreachable!("resolved above"),
        }
    }

    /// Decodes the next token and moves past it.
    pub fn decode(&mut self, dec: &mut RangeDecoder<'_>) -> Result<u32, CodecError> {
        self.resolve();
        match &mut self.at {
            At::Node(n) => {
                let n = *n;
                let cum = &self.cache.nodes[n].cum;
                let total = cum[cum.len() - 1];
                let bad = || CodecError::Payload("code value outside the distribution".into());
                let target = dec.target(total).ok_or_else(bad)?;
                // The token whose interval holds the target (empty intervals hold nothing).
                let t = cum[1..].partition_point(|&c| c <= target);
                if t + 1 >= cum.len() {
                    return Err(bad());
                }
                dec.consume(cum[t], cum[t + 1] - cum[t], total);
                self.at = At::Fed(n, t as u32);
                Ok(t as u32)
            }
            At::Live(c) => c.decode(dec, &self.cache.allowed),
            At::Fed(..) => unreachable!("resolved above"),
        }
    }
}
