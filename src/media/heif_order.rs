//! Puts a HEIF file's item properties in the order the format requires before libheif
//! reads it. HEIF (ISO/IEC 23008-12 §6.5.1) wants an item's descriptive properties
//! (`ispe`, `colr`, `hvcC`, ...) associated before its transformative ones (`clap`,
//! `irot`, `imir`). Some cameras (Sony's `.HIF`, seen on an ILCE-7M4) list `irot`
//! first; libheif 1.15 (Debian 12's) then reports the unrotated size while it decodes
//! the rotated picture, and libvips refuses the mismatch ("bad image dimensions on
//! decode"; libheif fixed it in 1.18). The fix is a permutation of the association
//! entries inside `ipma`: the same bytes in the same length, so every offset holds,
//! and a conforming file is left as it is.

use std::borrow::Cow;

/// Transformative properties, which must follow the descriptive ones.
const TRANSFORMATIVE: [&[u8; 4]; 3] = [b"clap", b"irot", b"imir"];

/// `bytes` with every item's property associations in the required order; borrowed
/// when they already are (or the file cannot be read that far: the decoder then says
/// what is wrong).
pub fn normalise_property_order(bytes: &[u8]) -> Cow<'_, [u8]> {
    match fixes(bytes) {
        Some(fixes) if !fixes.is_empty() => {
            let mut out = bytes.to_vec();
            for (at, entry) in fixes {
                if let Some(dst) = out.get_mut(at..at + entry.len()) {
                    dst.copy_from_slice(&entry);
                }
            }
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(bytes),
    }
}

/// A box: its type, where its payload starts and where it ends.
struct Box4 {
    kind: [u8; 4],
    body: usize,
    end: usize,
}

/// The boxes in `bytes[start..end]`, stopping at the first malformed one.
fn boxes(bytes: &[u8], start: usize, end: usize) -> Vec<Box4> {
    let mut found = Vec::new();
    let mut at = start;
    while at.checked_add(8).is_some_and(|h| h <= end) {
        let size = u32_at(bytes, at).unwrap_or(0) as u64;
        let kind: [u8; 4] = match bytes.get(at + 4..at + 8).and_then(|k| k.try_into().ok()) {
            Some(k) => k,
            None => break,
        };
        let (size, header) = match size {
            0 => ((end - at) as u64, 8),
            1 => match bytes.get(at + 8..at + 16) {
                Some(b) => (u64::from_be_bytes(b.try_into().unwrap_or([0; 8])), 16),
                None => break,
            },
            n => (n, 8),
        };
        let Some(box_end) = usize::try_from(size).ok().and_then(|s| at.checked_add(s)) else {
            break;
        };
        if size < header || box_end > end {
            break;
        }
        found.push(Box4 {
            kind,
            body: at + header as usize,
            end: box_end,
        });
        at = box_end;
    }
    found
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    bytes
        .get(at..at.checked_add(4)?)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn child<'a>(list: &'a [Box4], kind: &[u8; 4]) -> Option<&'a Box4> {
    list.iter().find(|b| &b.kind == kind)
}

/// The rewritten association lists: (offset, new bytes) for each item whose order
/// is wrong. `None`: no `meta/iprp` to read.
fn fixes(bytes: &[u8]) -> Option<Vec<(usize, Vec<u8>)>> {
    let top = boxes(bytes, 0, bytes.len());
    let meta = child(&top, b"meta")?;
    // `meta` is a full box: 4 bytes of version and flags.
    let in_meta = boxes(bytes, meta.body.checked_add(4)?, meta.end);
    let iprp = child(&in_meta, b"iprp")?;
    let in_iprp = boxes(bytes, iprp.body, iprp.end);
    let ipco = child(&in_iprp, b"ipco")?;
    let properties: Vec<[u8; 4]> = boxes(bytes, ipco.body, ipco.end)
        .iter()
        .map(|b| b.kind)
        .collect();
    let mut out = Vec::new();
    for ipma in in_iprp.iter().filter(|b| &b.kind == b"ipma") {
        read_ipma(bytes, ipma, &properties, &mut out)?;
    }
    Some(out)
}

/// Walks one `ipma`, noting each item list whose transformative entries come first.
fn read_ipma(
    bytes: &[u8],
    ipma: &Box4,
    properties: &[[u8; 4]],
    out: &mut Vec<(usize, Vec<u8>)>,
) -> Option<()> {
    let version = *bytes.get(ipma.body)?;
    let flags = u32_at(bytes, ipma.body)? & 0x00FF_FFFF;
    let entry_size = if flags & 1 == 1 { 2 } else { 1 };
    let id_size = if version < 1 { 2 } else { 4 };
    let mut at = ipma.body + 4;
    let count = u32_at(bytes, at)?;
    at += 4;
    for _ in 0..count {
        at = at.checked_add(id_size)?;
        let n = usize::from(*bytes.get(at)?);
        at += 1;
        let list_end = at.checked_add(n.checked_mul(entry_size)?)?;
        if list_end > ipma.end {
            return None;
        }
        let entries: Vec<&[u8]> = bytes[at..list_end].chunks(entry_size).collect();
        let transformative = |entry: &[u8]| {
            // The high bit marks an essential property; the rest is a 1-based index.
            let index = if entry_size == 2 {
                usize::from(u16::from_be_bytes([entry[0], entry[1]]) & 0x7FFF)
            } else {
                usize::from(entry[0] & 0x7F)
            };
            index
                .checked_sub(1)
                .and_then(|i| properties.get(i))
                .is_some_and(|kind| TRANSFORMATIVE.contains(&kind))
        };
        let first_descriptive_after = entries
            .iter()
            .skip_while(|e| !transformative(e))
            .any(|e| !transformative(e));
        if first_descriptive_after {
            // Descriptive first, then transformative, each group in its own order
            // (the order of transforms is meaningful).
            let mut reordered: Vec<u8> = Vec::with_capacity(list_end - at);
            for e in entries.iter().filter(|e| !transformative(e)) {
                reordered.extend_from_slice(e);
            }
            for e in entries.iter().filter(|e| transformative(e)) {
                reordered.extend_from_slice(e);
            }
            out.push((at, reordered));
        }
        at = list_end;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    /// A HEIF skeleton: ftyp, then meta/iprp with properties `props` and one item
    /// associated with `order` (1-based property indices).
    fn heif(props: &[&[u8; 4]], order: &[u8]) -> Vec<u8> {
        let ipco: Vec<u8> = props.iter().flat_map(|p| boxed(p, &[0; 4])).collect();
        let mut ipma = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 7, order.len() as u8];
        ipma.extend_from_slice(order);
        let iprp = [boxed(b"ipco", &ipco), boxed(b"ipma", &ipma)].concat();
        let mut meta = vec![0; 4];
        meta.extend(boxed(b"iprp", &iprp));
        [boxed(b"ftyp", b"heic\0\0\0\0mif1"), boxed(b"meta", &meta)].concat()
    }

    #[test]
    fn transforms_listed_first_are_moved_after_the_descriptions() {
        // irot (1), pixi (2), ispe (3); the irot is essential (0x81).
        let props: [&[u8; 4]; 3] = [b"irot", b"pixi", b"ispe"];
        let file = heif(&props, &[0x81, 2, 3]);
        let fixed = normalise_property_order(&file);
        assert_eq!(fixed.len(), file.len());
        assert_eq!(&fixed[fixed.len() - 3..], &[2, 3, 0x81]);
        assert_eq!(&fixed[..fixed.len() - 3], &file[..file.len() - 3]);
        // Already in order: untouched, and not copied.
        let good = heif(&props, &[2, 3, 0x81]);
        assert!(matches!(normalise_property_order(&good), Cow::Borrowed(_)));
    }

    #[test]
    fn hostile_input_is_left_alone() {
        let file = heif(&[b"irot", b"ispe"], &[1, 2]);
        for n in 0..file.len() {
            let _ = normalise_property_order(&file[..n]);
        }
        assert!(matches!(
            normalise_property_order(b"\0\0\0\x01ftyp\xff\xff\xff\xff\xff\xff\xff\xff"),
            Cow::Borrowed(_)
        ));
    }
}
