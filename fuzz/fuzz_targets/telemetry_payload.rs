//! The telemetry decoder (`TelemetryDecoder::decode`) fed an arbitrary payload in the middle of a
//! real stream, with the shipped prior (`models/text-prior.safetensors`, loaded once). The stream
//! is 72 gateway records whose per-gateway fields are keyed values and whose gateway ids are in the
//! field memory from record 32 on, so a hostile payload reaches every string and number class.
//!
//! Input: byte 0 picks the record (its low 7 bits, mod 72) whose payload the rest of the input
//! replaces, or, with bit 7 set, edits: pairs (position, byte) XOR the real payload's byte at that
//! position; a position of 255 cuts the payload to the pair's byte (mod its length + 1), 254
//! appends the byte. Random payloads fail early (libFuzzer grows inputs slowly: at a dozen runs a
//! second it tries little beyond 6 bytes in 20 minutes), edits of real ones reach the deeper
//! number, string and byte-string paths. Checks:
//! never panics; records before it decode to the originals; the given payload, when it is the
//! real one, decodes to the original; the decoder keeps going (or refuses with an error) on the
//! records after it, and never returns a record larger than the codec's limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use semcom_codec::telemetry::{TelemetryDecoder, TelemetryEncoder, TelemetryOptions, MAX_RECORD};
use std::sync::OnceLock;

#[path = "shipped.rs"]
mod shipped;
use shipped::prior;

const RECORDS: usize = 72;

/// A gateway record: gateway `g` of 5 (coordinates and name fixed per gateway), a reading.
fn record(i: usize) -> String {
    let g = (i * 7 + i / 3) % 5;
    format!(
        r#"{{"name":"EMS-1","fcnt":{i},"reported_at":{},"payload":"{}","gateways":[{{"channel":{},"id":"gw-{g}-a81758ff","lat":{:.5},"long":{:.5},"rssi":{},"snr":{}.{}}}],"ok":{}}}"#,
        1_685_691_515_976u64 + i as u64 * 600_013,
        ["AQC5AlMDxuvy", "AQC6AlIDxev0", "AQC4AlMDxuvy"][i % 3],
        i % 8,
        45.18 + g as f64 * 0.013,
        5.74 - g as f64 * 0.007,
        -100 - (i * 13 % 17) as i64,
        i % 9,
        i % 10,
        i % 4 != 0,
    )
}

fn stream() -> &'static (Vec<String>, Vec<Vec<u8>>) {
    static S: OnceLock<(Vec<String>, Vec<Vec<u8>>)> = OnceLock::new();
    S.get_or_init(|| {
        let records: Vec<String> = (0..RECORDS).map(record).collect();
        let mut enc = TelemetryEncoder::new(prior(), TelemetryOptions::default());
        let payloads = records
            .iter()
            .map(|r| enc.encode(r.as_bytes()).expect("encodes").1)
            .collect();
        (records, payloads)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    let at = usize::from(head & 0x7f) % RECORDS;
    let (records, payloads) = stream();
    let payload = if head & 0x80 == 0 {
        rest.to_vec()
    } else {
        let mut p = payloads[at].clone();
        for e in rest.chunks_exact(2) {
            match (usize::from(e[0]), e[1]) {
                (255, n) => p.truncate(usize::from(n) % (p.len() + 1)),
                (254, b) => p.push(b),
                (i, x) => {
                    if let Some(b) = p.get_mut(i) {
                        *b ^= x;
                    }
                }
            }
        }
        p
    };
    let payload = payload.as_slice();
    let mut dec = TelemetryDecoder::new(prior(), TelemetryOptions::default());
    for (seq, real) in payloads.iter().enumerate() {
        let given = if seq == at { payload } else { real.as_slice() };
        match dec.decode(seq as u64, given) {
            Ok(out) => {
                assert!(out.len() <= MAX_RECORD);
                if seq < at || given == real.as_slice() && seq == at {
                    assert_eq!(out, records[seq].as_bytes(), "record {seq}");
                }
            }
            Err(_) => assert!(seq >= at, "record {seq} before the replaced one failed"),
        }
    }
});
