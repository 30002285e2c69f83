//! The 802.11 frame check sequence (CRC-32, IEEE 802.3 polynomial), sent least significant
//! octet first in the last four PSDU octets.

/// CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// True when the last four octets of `psdu` are the CRC-32 of the rest.
pub fn fcs_ok(psdu: &[u8]) -> bool {
    if psdu.len() < 4 {
        return false;
    }
    let (body, fcs) = psdu.split_at(psdu.len() - 4);
    crc32(body).to_le_bytes() == fcs
}

/// Appends the FCS of `body` to it.
pub fn append_fcs(body: &mut Vec<u8>) {
    let c = crc32(body);
    body.extend_from_slice(&c.to_le_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_answer() {
        // The CRC-32 check value.
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
        let mut v = b"semcom".to_vec();
        super::append_fcs(&mut v);
        assert!(super::fcs_ok(&v));
        v[0] ^= 1;
        assert!(!super::fcs_ok(&v));
        assert!(!super::fcs_ok(&[1, 2, 3]));
    }
}
