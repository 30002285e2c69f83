//! Lossless text: log lines, alerts, messages, sentences.
//!
//! A message is coded on its own, as a device would send it: the prior sees `BOS`, then the
//! coded tokens `TAG` (log line or free text), the message's BPE tokens and `EOS`. A
//! [`TextStream`] optionally shares context across the messages of a stream (an n-gram memory of
//! the messages so far): encoder and decoder then have to see the same messages in the same order.
//!
//! The encoder knows the whole message, so it computes every position's distribution in one
//! parallel pass; the decoder steps token by token. Both give the same bits (see
//! [`crate::prior::engine`]).

use crate::frame::{Modality, SemanticFrame};
use crate::prior::ngram::StreamMemory;
use crate::prior::{Prior, TokenCoder};
use crate::rangecoder::{RangeDecoder, RangeEncoder};
use crate::vocab::{BOS, EOS, TAG_LOG, TAG_TEXT};
use crate::CodecError;

/// Longest message a decoder will produce (bytes): a corrupt payload cannot make it allocate
/// without bound.
pub const MAX_MESSAGE: usize = 1 << 20;

/// What kind of text a message is (the prior's context tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// Free text: a message, an alert, a sentence.
    Text,
    /// A machine log line.
    Log,
}

impl TextKind {
    /// The context tag.
    pub const fn tag(self) -> u32 {
        match self {
            Self::Text => TAG_TEXT,
            Self::Log => TAG_LOG,
        }
    }

    /// A guess from the message itself: a line with a digit, a bracket or a `key=value` among
    /// its first 24 bytes reads as a log line.
    pub fn guess(msg: &[u8]) -> Self {
        let head = &msg[..msg.len().min(24)];
        if head
            .iter()
            .any(|b| b.is_ascii_digit() || matches!(b, b'[' | b'=' | b'<'))
        {
            Self::Log
        } else {
            Self::Text
        }
    }
}

/// Shared context across the messages of one stream: an n-gram memory of every message so far,
/// blended into the prior's distribution. (The transformer itself still sees each message on its
/// own: given earlier messages as context, the shipped one codes worse, not better.) Encoder and
/// decoder have to see the same messages in the same order.
#[derive(Clone, Debug, Default)]
pub struct TextStream {
    memory: StreamMemory,
    messages: u64,
}

impl TextStream {
    /// A stream with no history yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Messages added so far.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    fn push(&mut self, tag: u32, tokens: &[u32]) {
        let mut seq = Vec::with_capacity(tokens.len() + 3);
        seq.push(BOS);
        seq.push(tag);
        seq.extend_from_slice(tokens);
        seq.push(EOS);
        self.memory.learn(&seq, 1);
        self.messages += 1;
    }
}

/// The text codec: a prior and how many threads the encoder may use.
#[derive(Debug)]
pub struct TextCodec<'p> {
    prior: &'p Prior,
    threads: usize,
    tags: Vec<bool>,
}

impl<'p> TextCodec<'p> {
    /// A codec over `prior`, encoding on one thread.
    pub fn new(prior: &'p Prior) -> Self {
        let mut tags = vec![false; prior.engine().config().vocab_size];
        tags[TAG_TEXT as usize] = true;
        tags[TAG_LOG as usize] = true;
        Self {
            prior,
            threads: 1,
            tags,
        }
    }

    /// Lets the encoder use `threads` threads (the output does not depend on it).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Codes one message into a self-describing frame.
    pub fn encode(&self, msg: &[u8], kind: TextKind) -> Result<SemanticFrame, CodecError> {
        Ok(SemanticFrame::new(
            Modality::Text,
            self.prior.id(),
            self.encode_payload(msg, kind, None)?,
        ))
    }

    /// Decodes a frame from [`TextCodec::encode`], refusing other modalities and other weights.
    pub fn decode(&self, frame: &SemanticFrame) -> Result<Vec<u8>, CodecError> {
        frame.check(Modality::Text, self.prior.id())?;
        self.decode_payload(&frame.payload, None)
    }

    /// Codes one message into range-coder bytes; with a stream, in its context (and adds the
    /// message to it).
    pub fn encode_payload(
        &self,
        msg: &[u8],
        kind: TextKind,
        stream: Option<&mut TextStream>,
    ) -> Result<Vec<u8>, CodecError> {
        let body = self.prior.bpe().encode(msg);
        let mut tokens = Vec::with_capacity(body.len() + 2);
        tokens.push(kind.tag());
        tokens.extend_from_slice(&body);
        tokens.push(EOS);
        let context = [BOS];
        let mut enc = RangeEncoder::new();
        let text = self.prior.text_allowed();
        TokenCoder::encode_all(
            self.prior,
            &context,
            &tokens,
            |i| if i == 0 { &self.tags } else { text },
            &mut enc,
            self.threads,
            stream.as_ref().map(|s| &s.memory),
        )?;
        if let Some(s) = stream {
            s.push(kind.tag(), &body);
        }
        Ok(enc.finish())
    }

    /// Inverse of [`TextCodec::encode_payload`], with the same stream state.
    pub fn decode_payload(&self, payload: &[u8], stream: Option<&mut TextStream>) -> Result<Vec<u8>, CodecError> {
        let context = [BOS];
        let mut coder = TokenCoder::new(self.prior, &context);
        if let Some(s) = stream.as_ref() {
            coder = coder.with_memory(&s.memory);
        }
        let mut dec = RangeDecoder::new(payload);
        let tag = coder.decode(&mut dec, &self.tags)?;
        let mut body = Vec::new();
        let mut bytes = 0usize;
        loop {
            let t = coder.decode(&mut dec, self.prior.text_allowed())?;
            if dec.overran() {
                return Err(CodecError::Payload("payload ends before the message does".into()));
            }
            if t == EOS {
                break;
            }
            bytes += self.prior.bpe().piece(t).len();
            if bytes > MAX_MESSAGE {
                return Err(CodecError::Payload(format!("message longer than {MAX_MESSAGE} bytes")));
            }
            body.push(t);
        }
        if let Some(s) = stream {
            s.push(tag, &body);
        }
        Ok(self.prior.bpe().decode(&body))
    }
}
