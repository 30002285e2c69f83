//! `SemanticFrame::from_bytes` on arbitrary bytes, and the telemetry options parser.
//!
//! Checks: never panics; a parsed frame serialises back to exactly the input (the format has one
//! encoding per frame), and re-parses to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_codec::telemetry::TelemetryOptions;
use semcom_codec::SemanticFrame;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = SemanticFrame::from_bytes(data) {
        let back = f.to_bytes();
        assert_eq!(back, data, "a parsed frame must serialise to its input");
        assert_eq!(SemanticFrame::from_bytes(&back).ok(), Some(f));
    }
    if let Ok((opts, n)) = TelemetryOptions::from_bytes(data) {
        assert!(n <= data.len());
        assert_eq!(TelemetryOptions::from_bytes(&opts.to_bytes()).ok().map(|o| o.0), Some(opts));
    }
});
