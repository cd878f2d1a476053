//! Repairs of HEIF files that cameras write and libheif 1.15 (Debian 12's) misreads,
//! each the same bytes in the same length, so every offset holds.
//!
//! **Property order.** [`normalise_property_order`] puts a HEIF file's item properties
//! in the order the format requires before libheif reads it. HEIF (ISO/IEC 23008-12 §6.5.1) wants an item's descriptive properties
//! (`ispe`, `colr`, `hvcC`, ...) associated before its transformative ones (`clap`,
//! `irot`, `imir`). Some cameras (Sony's `.HIF`, seen on an ILCE-7M4) list `irot`
//! first; libheif 1.15 (Debian 12's) then reports the unrotated size while it decodes
//! the rotated picture, and libvips refuses the mismatch ("bad image dimensions on
//! decode"; libheif fixed it in 1.18). The fix is a permutation of the association
//! entries inside `ipma`; a conforming file is left as it is.
//!
//! **Thumbnails.** The same Sony files carry preview items whose `ispe` (1616x1080)
//! is not the size their HEVC stream decodes to; libvips' thumbnail takes a preview
//! when it is large enough and fails on it. [`without_thumbnails`] renames the `thmb`
//! references, so libheif sees no previews and libvips decodes the primary image: the
//! retry after such a failure (a preview saves a whole decode on files whose previews
//! work, so it is not done up front).
//!
//! **Video range.** libheif 1.15 turns 10-bit YCbCr of limited ("video") range into
//! RGB as if it were full range: the Sony 10-bit file of the tests decodes with its
//! blacks at 16 and whites at 235 (filegate's pixels = 0.86 x the reference's + 15,
//! fitted over the picture). [`high_depth_video_range`] says when a file is such;
//! the caller stretches the decoded 8-bit pixels back ([`crate::media::vips::Image::expand_video_range`]).
//! 8-bit files are not touched: none of limited range was seen misread.

use std::borrow::Cow;

use crate::media::isobmff::{be32, boxes, child, meta_children, BoxRef};

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

/// The rewritten association lists: (offset, new bytes) for each item whose order
/// is wrong. `None`: no `meta/iprp` to read.
fn fixes(bytes: &[u8]) -> Option<Vec<(usize, Vec<u8>)>> {
    let properties: Vec<[u8; 4]> = property_boxes(bytes)?.iter().map(|b| b.kind).collect();
    let in_meta = meta_children(bytes)?;
    let iprp = child(&in_meta, b"iprp")?;
    let in_iprp = boxes(bytes, iprp.body, iprp.end);
    let mut out = Vec::new();
    for ipma in in_iprp.iter().filter(|b| &b.kind == b"ipma") {
        read_ipma(bytes, ipma, &properties, &mut out)?;
    }
    Some(out)
}

/// Walks one `ipma`, noting each item list whose transformative entries come first.
fn read_ipma(
    bytes: &[u8],
    ipma: &BoxRef,
    properties: &[[u8; 4]],
    out: &mut Vec<(usize, Vec<u8>)>,
) -> Option<()> {
    let version = *bytes.get(ipma.body)?;
    let flags = be32(bytes, ipma.body)? & 0x00FF_FFFF;
    let entry_size = if flags & 1 == 1 { 2 } else { 1 };
    let id_size = if version < 1 { 2 } else { 4 };
    let mut at = ipma.body + 4;
    let count = be32(bytes, at)?;
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

/// `bytes` with its `thmb` item references renamed (`xthm`, a type no reader
/// knows), so no preview image is offered; `None` when it has none.
pub fn without_thumbnails(bytes: &[u8]) -> Option<Vec<u8>> {
    let in_meta = meta_children(bytes)?;
    let iref = child(&in_meta, b"iref")?;
    // `iref` is a full box; its children are single item reference boxes.
    let kinds: Vec<usize> = boxes(bytes, iref.body.checked_add(4)?, iref.end)
        .iter()
        .filter(|b| &b.kind == b"thmb")
        .map(|b| b.start + 4)
        .collect();
    if kinds.is_empty() {
        return None;
    }
    let mut out = bytes.to_vec();
    for at in kinds {
        out[at..at + 4].copy_from_slice(b"xthm");
    }
    Some(out)
}

/// Whether the file declares limited-range YCbCr (an `nclx` colour box with
/// `full_range_flag` 0) at more than 8 bits a channel (a `pixi` box): what libheif 1.15
/// decodes too flat.
pub fn high_depth_video_range(bytes: &[u8]) -> bool {
    let Some(properties) = property_boxes(bytes) else {
        return false;
    };
    let limited = properties.iter().any(|b| {
        // colour_type, then primaries, transfer, matrix (16 bits each), then the flag.
        &b.kind == b"colr"
            && bytes.get(b.body..b.body + 4) == Some(b"nclx")
            && bytes.get(b.body + 10).is_some_and(|flag| flag & 0x80 == 0)
    });
    let deep = properties.iter().any(|b| {
        // A full box: version and flags, the channel count, then bits per channel.
        &b.kind == b"pixi"
            && bytes
                .get(b.body + 4)
                .and_then(|&n| bytes.get(b.body + 5..b.body + 5 + usize::from(n)))
                .is_some_and(|bits| bits.iter().any(|&d| d > 8))
    });
    limited && deep
}

/// The property boxes of `meta/iprp/ipco`.
fn property_boxes(bytes: &[u8]) -> Option<Vec<BoxRef>> {
    let in_meta = meta_children(bytes)?;
    let iprp = child(&in_meta, b"iprp")?;
    let in_iprp = boxes(bytes, iprp.body, iprp.end);
    let ipco = child(&in_iprp, b"ipco")?;
    Some(boxes(bytes, ipco.body, ipco.end))
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
    fn thumbnail_references_are_renamed() {
        let mut iref = vec![0; 4];
        iref.extend(boxed(b"thmb", &[0, 2, 0, 1, 0, 1]));
        iref.extend(boxed(b"cdsc", &[0, 3, 0, 1, 0, 1]));
        let mut meta = vec![0; 4];
        meta.extend(boxed(b"iref", &iref));
        let file = [boxed(b"ftyp", b"heic\0\0\0\0mif1"), boxed(b"meta", &meta)].concat();
        let hidden = without_thumbnails(&file).expect("a thmb reference");
        assert_eq!(hidden.len(), file.len());
        let text = String::from_utf8_lossy(&hidden);
        assert!(text.contains("xthm") && text.contains("cdsc") && !text.contains("thmb"));
        // Nothing to hide, or no box to find it in.
        assert_eq!(without_thumbnails(&heif(&[b"ispe"], &[1])), None);
        for n in 0..file.len() {
            let _ = without_thumbnails(&file[..n]);
        }
    }

    #[test]
    fn limited_range_at_ten_bits_is_found() {
        let colr = |flag: u8| {
            let mut body = b"nclx".to_vec();
            body.extend_from_slice(&[0, 1, 0, 13, 0, 5, flag]);
            body
        };
        let file = |flag: u8, bits: u8| {
            let ipco = [
                boxed(b"colr", &colr(flag)),
                boxed(b"pixi", &[0, 0, 0, 0, 3, bits, bits, bits]),
            ]
            .concat();
            let mut meta = vec![0; 4];
            meta.extend(boxed(b"iprp", &boxed(b"ipco", &ipco)));
            [boxed(b"ftyp", b"heic\0\0\0\0mif1"), boxed(b"meta", &meta)].concat()
        };
        assert!(high_depth_video_range(&file(0x00, 10)));
        assert!(!high_depth_video_range(&file(0x80, 10)), "full range");
        assert!(!high_depth_video_range(&file(0x00, 8)), "8 bits");
        let whole = file(0x00, 10);
        for n in 0..whole.len() {
            let _ = high_depth_video_range(&whole[..n]);
        }
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
