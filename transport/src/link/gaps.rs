//! Where the bytes of a partly received item were: the fragment layout that
//! [`super::frame::fragment`] makes, and the item's bytes with the lost fragments' byte ranges,
//! for a decoder that conceals them.
//!
//! The receiver of an [`super::Outcome::Partial`] semantic item does:
//!
//! ```text
//! let layout = fragment_ranges(&runs, max_fragment);          // the sender's class runs
//! let (bytes, lost) = with_gaps(&fragments, &layout)?;         // frame bytes, lost frame ranges
//! let (frame, lost) = SemanticFrame::from_bytes_with_gaps(&bytes, &lost)?;  // payload ranges
//! let code = DigitalCode::from_parts(&frame.params, &frame.payload, max_pixels)?;
//! let (picture, report) = model.decode_concealed(&code, &lost, Conceal::Prior, max_pixels)?;
//! ```
//!
//! The runs must be those the sender gave [`super::Item::with_classes`]; for an item of one
//! class ([`super::Item::new`]) use [`uniform_layout`], which needs only the fragment count.

use super::LinkError;
use std::ops::Range;

/// The byte range of each fragment that [`super::frame::fragment`] cuts from an item with these
/// (class, bytes) runs: at most `max_data` bytes each, never across two runs.
pub fn fragment_ranges(runs: &[(u8, usize)], max_data: usize) -> Vec<Range<usize>> {
    let max_data = max_data.max(1);
    let mut out = Vec::new();
    let mut at = 0;
    for &(_, len) in runs {
        let end = at + len;
        while at < end {
            let e = end.min(at + max_data);
            out.push(at..e);
            at = e;
        }
    }
    if out.is_empty() {
        out.push(0..0);
    }
    out
}

/// The layout of an item of one importance class in `count` fragments: every fragment holds
/// `max_data` bytes but the last, whose end is unknown to the receiver (open: `usize::MAX`).
pub fn uniform_layout(count: usize, max_data: usize) -> Vec<Range<usize>> {
    (0..count)
        .map(|i| {
            let start = i.saturating_mul(max_data);
            start..if i + 1 == count { usize::MAX } else { start + max_data }
        })
        .collect()
}

/// The item's bytes, lost fragments zero-filled (a lost last fragment of open length is left
/// out: the bytes then end early), and the byte ranges of the lost fragments. Refuses
/// fragments that do not match the layout (count, or a received fragment's length).
pub fn with_gaps(
    fragments: &[Option<Vec<u8>>],
    layout: &[Range<usize>],
) -> Result<(Vec<u8>, Vec<Range<usize>>), LinkError> {
    if fragments.len() != layout.len() {
        return Err(LinkError::Malformed(format!(
            "{} fragments for a layout of {}",
            fragments.len(),
            layout.len()
        )));
    }
    let mut bytes = Vec::new();
    let mut lost = Vec::new();
    for (i, (f, r)) in fragments.iter().zip(layout).enumerate() {
        if r.start != bytes.len() {
            return Err(LinkError::Malformed(format!(
                "fragment {i} does not follow the one before"
            )));
        }
        match f {
            Some(d) if r.end == usize::MAX || d.len() == r.len() => bytes.extend_from_slice(d),
            Some(d) => {
                return Err(LinkError::Malformed(format!(
                    "fragment {i} holds {} bytes, the layout {}",
                    d.len(),
                    r.len()
                )))
            }
            None => {
                lost.push(r.clone());
                if r.end != usize::MAX {
                    bytes.resize(r.end, 0);
                }
            }
        }
    }
    Ok((bytes, lost))
}

#[cfg(test)]
mod tests {
    use super::super::frame::fragment;
    use super::super::{Item, ItemKind};
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn the_layout_is_that_of_the_fragmenter() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        for _ in 0..200 {
            let len = rng.random_range(0..3000);
            let runs: Vec<(u8, usize)> = (0..rng.random_range(1..4))
                .map(|_| (rng.random_range(0..4), rng.random_range(0..1200)))
                .collect();
            let max = rng.random_range(1..600);
            let item = Item::new(ItemKind::Semantic, (0..len).map(|_| rng.random()).collect()).with_classes(runs);
            let frags = fragment(&item, 1, max).unwrap_or_default();
            if frags.is_empty() {
                continue;
            }
            let layout = fragment_ranges(item.class_runs(), max);
            assert_eq!(layout.len(), frags.len());
            for (f, r) in frags.iter().zip(&layout) {
                assert_eq!(f.data, item.bytes[r.clone()]);
            }
            // Drop every third fragment: the gaps are where they were, the rest intact.
            let got: Vec<Option<Vec<u8>>> = frags
                .iter()
                .enumerate()
                .map(|(i, f)| (i % 3 != 1).then(|| f.data.clone()))
                .collect();
            let (bytes, lost) = with_gaps(&got, &layout).unwrap();
            assert_eq!(bytes.len(), item.bytes.len());
            for (i, r) in layout.iter().enumerate() {
                if i % 3 == 1 {
                    assert!(lost.contains(r));
                    assert!(bytes[r.clone()].iter().all(|&b| b == 0));
                } else {
                    assert_eq!(bytes[r.clone()], item.bytes[r.clone()]);
                }
            }
        }
    }

    #[test]
    fn a_uniform_item_with_its_last_fragment_lost_ends_early() {
        let item = Item::new(ItemKind::Semantic, (0..1300u32).map(|i| i as u8).collect());
        let frags = fragment(&item, 1, 512).unwrap();
        let mut got: Vec<Option<Vec<u8>>> = frags.iter().map(|f| Some(f.data.clone())).collect();
        got[2] = None;
        let (bytes, lost) = with_gaps(&got, &uniform_layout(3, 512)).unwrap();
        assert_eq!(bytes, item.bytes[..1024]);
        assert_eq!(lost, vec![1024..usize::MAX]);
        got[0] = Some(vec![1, 2, 3]);
        assert!(with_gaps(&got, &uniform_layout(3, 512)).is_err());
        assert!(with_gaps(&got[..2], &uniform_layout(3, 512)).is_err());
    }
}
