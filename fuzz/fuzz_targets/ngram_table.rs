//! `NGram::from_bytes` (the n-gram memory inside a model file) on arbitrary bytes, both as given
//! and as the compressed body of a table with a valid header, so the fuzzer reaches the parser
//! behind zstd.
//!
//! Checks: never panics; a parsed table serialises and re-parses to the same number of contexts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_codec::prior::ngram::NGram;

fuzz_target!(|data: &[u8]| {
    let _ = NGram::from_bytes(data, 4096);
    let mut framed = b"SCNG\x01".to_vec();
    framed.extend(zstd::bulk::compress(data, 1).expect("zstd compresses anything"));
    if let Ok(t) = NGram::from_bytes(&framed, 4096) {
        let back = NGram::from_bytes(&t.to_bytes().expect("serialises"), 4096).expect("re-parses");
        assert_eq!(back.contexts(), t.contexts());
        assert_eq!(back.order(), t.order());
    }
});
