//! ISO-BMFF boxes (the container of HEIF, AVIF and MP4): a bounds-checked walk of the
//! boxes between two offsets, shared by the HEIF repairs and the location stripper.
//! Every read is checked: a malformed box ends the walk, it never panics.

/// A box: where it starts, its type, where its payload starts and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxRef {
    /// Where its header starts (the 32-bit size; the type follows it).
    pub start: usize,
    /// The four-character type.
    pub kind: [u8; 4],
    /// Where its payload starts (after an 8- or 16-byte header).
    pub body: usize,
    /// One past its last byte.
    pub end: usize,
}

/// The boxes in `bytes[start..end]`, up to the first malformed one. A size of 0 means
/// "to the end", 1 a 64-bit size after the type.
pub fn boxes(bytes: &[u8], start: usize, end: usize) -> Vec<BoxRef> {
    let mut found = Vec::new();
    let end = end.min(bytes.len());
    let mut at = start;
    while at.checked_add(8).is_some_and(|h| h <= end) {
        let Some(size) = be32(bytes, at) else { break };
        let Some(kind) = bytes
            .get(at + 4..at + 8)
            .and_then(|k| <[u8; 4]>::try_from(k).ok())
        else {
            break;
        };
        let (size, header) = match size {
            0 => ((end - at) as u64, 8),
            1 => match bytes
                .get(at + 8..at + 16)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
            {
                Some(large) => (u64::from_be_bytes(large), 16),
                None => break,
            },
            n => (u64::from(n), 8),
        };
        let Some(box_end) = usize::try_from(size).ok().and_then(|s| at.checked_add(s)) else {
            break;
        };
        if size < header || box_end > end {
            break;
        }
        found.push(BoxRef {
            start: at,
            kind,
            body: at + header as usize,
            end: box_end,
        });
        at = box_end;
    }
    found
}

/// The first box of `kind` in `list`.
pub fn child<'a>(list: &'a [BoxRef], kind: &[u8; 4]) -> Option<&'a BoxRef> {
    list.iter().find(|b| &b.kind == kind)
}

/// The boxes inside `meta` (a full box: its 4 bytes of version and flags skipped) of
/// a file's top level.
pub fn meta_children(bytes: &[u8]) -> Option<Vec<BoxRef>> {
    let top = boxes(bytes, 0, bytes.len());
    let meta = child(&top, b"meta")?;
    Some(boxes(bytes, meta.body.checked_add(4)?, meta.end))
}

/// The big-endian 32-bit integer at `at`, if the bytes reach that far.
pub fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let s = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(s.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_walked_and_malformed_ones_end_the_walk() {
        let mut file = Vec::new();
        file.extend_from_slice(&12u32.to_be_bytes());
        file.extend_from_slice(b"ftypheic");
        file.extend_from_slice(&1u32.to_be_bytes());
        file.extend_from_slice(b"mdat");
        file.extend_from_slice(&20u64.to_be_bytes());
        file.extend_from_slice(&[7; 4]);
        file.extend_from_slice(&99u32.to_be_bytes());
        file.extend_from_slice(b"free");
        let found = boxes(&file, 0, file.len());
        assert_eq!(found.len(), 2, "the box claiming 99 bytes ends the walk");
        assert_eq!(found[0].kind, *b"ftyp");
        assert_eq!((found[1].start, found[1].body, found[1].end), (12, 28, 32));
        assert!(child(&found, b"mdat").is_some());
        for n in 0..file.len() {
            let _ = boxes(&file, 0, n);
            let _ = boxes(&file, n, file.len() + 10);
        }
    }
}
