//! The text decoder (`TextCodec::decode_payload`) fed a hostile payload, with the shipped prior
//! (`models/text-prior.safetensors`, loaded once), on its own and in a stream whose n-gram memory
//! already holds three real messages.
//!
//! Input: byte 0, bit 0: decode in the stream; bit 7: edit mode, the rest being pairs (position,
//! byte) XORed into the real payload of message `byte 0 >> 1 & 7` (mod 6) at that position (255
//! cuts the payload to the pair's byte, mod its length + 1; 254 appends the byte), so that mutations
//! reach deep into real messages instead of failing on their first token. Without bit 7 the rest
//! of the input is the payload. Checks: never panics; a decoded message is within `MAX_MESSAGE`
//! and codes back to a payload that decodes to it (in the same stream state); the real payload
//! decodes to its message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_codec::text::{TextCodec, TextKind, TextStream, MAX_MESSAGE};
use std::sync::OnceLock;

#[path = "shipped.rs"]
mod shipped;
use shipped::prior;

const HISTORY: [&str; 3] = [
    "081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_-1608999687919862906 src: /10.250.19.102:54106 dest: /10.250.19.102:50010",
    "081109 203518 35 INFO dfs.FSNamesystem: BLOCK* NameSystem.allocateBlock: /mnt/hadoop/mapred/system/job_200811092030_0001/job.jar. blk_-1608999687919862906",
    "Resumption of the session",
];

const MESSAGES: [(&str, TextKind); 6] = [
    ("081109 203519 143 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block blk_-1608999687919862906 terminating", TextKind::Log),
    ("2015-10-18 18:01:47,978 INFO [main] org.apache.hadoop.mapreduce.v2.app.MRAppMaster: Created MRAppMaster for application appattempt_1445144423722_0020_000001", TextKind::Log),
    ("I declare resumed the session of the European Parliament adjourned on Friday 17 December 1999.", TextKind::Text),
    ("Please rise, then, for this minute' s silence.", TextKind::Text),
    ("", TextKind::Text),
    ("\u{1f600} naïve café 0xff\u{0}\t", TextKind::Text),
];

/// The stream after the history, and each message's payload alone and in that stream.
fn fixtures() -> &'static (TextStream, Vec<(Vec<u8>, Vec<u8>)>) {
    static F: OnceLock<(TextStream, Vec<(Vec<u8>, Vec<u8>)>)> = OnceLock::new();
    F.get_or_init(|| {
        let codec = TextCodec::new(prior());
        let mut stream = TextStream::new();
        for h in HISTORY {
            codec.encode_payload(h.as_bytes(), TextKind::Log, Some(&mut stream)).unwrap();
        }
        let payloads = MESSAGES
            .iter()
            .map(|&(m, k)| {
                let alone = codec.encode_payload(m.as_bytes(), k, None).unwrap();
                let streamed = codec.encode_payload(m.as_bytes(), k, Some(&mut stream.clone())).unwrap();
                (alone, streamed)
            })
            .collect();
        (stream, payloads)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let in_stream = mode & 1 != 0;
    let (history, payloads) = fixtures();
    let codec = TextCodec::new(prior());
    let pick = usize::from(mode >> 1 & 7) % MESSAGES.len();
    let payload = if mode & 0x80 != 0 {
        let real = &payloads[pick];
        let mut p = if in_stream { real.1.clone() } else { real.0.clone() };
        for pair in rest.chunks_exact(2) {
            match pair[0] {
                255 => p.truncate(usize::from(pair[1]) % (p.len() + 1)),
                254 => p.push(pair[1]),
                at => {
                    if let Some(b) = p.get_mut(usize::from(at)) {
                        *b ^= pair[1];
                    }
                }
            }
        }
        p
    } else {
        rest.to_vec()
    };
    let mut stream = history.clone();
    let got = codec.decode_payload(&payload, in_stream.then_some(&mut stream));
    let real = &payloads[pick];
    if mode & 0x80 != 0 && payload == if in_stream { real.1.clone() } else { real.0.clone() } {
        assert_eq!(got.as_deref().ok(), Some(MESSAGES[pick].0.as_bytes()), "the real payload");
    }
    let Ok(msg) = got else {
        return;
    };
    assert!(msg.len() <= MAX_MESSAGE);
    // What was decoded codes back (as either kind) to a payload that decodes to it.
    let mut s1 = history.clone();
    let again = codec
        .encode_payload(&msg, TextKind::guess(&msg), in_stream.then_some(&mut s1))
        .expect("a decoded message encodes");
    let mut s2 = history.clone();
    let back = codec
        .decode_payload(&again, in_stream.then_some(&mut s2))
        .expect("its payload decodes");
    assert_eq!(back, msg);
});
