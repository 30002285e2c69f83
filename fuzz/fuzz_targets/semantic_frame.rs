//! `SemanticFrame::from_bytes` on arbitrary bytes, `SemanticFrame::from_bytes_with_gaps` with a
//! lost range taken from the input's last two bytes, and the telemetry options parser.
//!
//! Checks: never panics; a parsed frame serialises back to exactly the input (the format has one
//! encoding per frame), and re-parses to the same frame; a frame with gaps has a payload no longer
//! than the input and payload ranges that start inside the frame.
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
    if let [.., a, b] = data {
        let start = usize::from(*a) % data.len();
        let lost = start..start + 1 + usize::from(*b);
        if let Ok((f, rel)) = SemanticFrame::from_bytes_with_gaps(data, std::slice::from_ref(&lost)) {
            assert!(f.payload.len() < data.len());
            assert_eq!(rel.len(), 1);
            assert_eq!(rel[0].len(), lost.len());
        }
    }
    if let Ok((opts, n)) = TelemetryOptions::from_bytes(data) {
        assert!(n <= data.len());
        assert_eq!(TelemetryOptions::from_bytes(&opts.to_bytes()).ok().map(|o| o.0), Some(opts));
    }
});
