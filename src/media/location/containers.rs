//! Where JPEG, PNG and WebP keep EXIF and XMP, and the patches that blank their
//! location.

use std::ops::Range;

use md5::{Digest, Md5};

use super::bytes::{be16, be32, edit, find, le32, Patch, PNG_SIGNATURE};
use super::{tiff, xmp};

/// What precedes a TIFF block in JPEG APP1 (and, against their specs, in some PNG
/// `eXIf` and WebP `EXIF` chunks).
const EXIF_HEADER: &[u8] = b"Exif\0\0";
const XMP_NS: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
const XMP_EXTENSION_NS: &[u8] = b"http://ns.adobe.com/xmp/extension/\0";
/// An extended-XMP chunk's header: the GUID (32 hex digits), the full length and
/// this chunk's offset (u32 BE each).
const GUID_LEN: usize = 32;
const EXTENSION_HEADER_LEN: usize = GUID_LEN + 8;
const PNG_XMP_KEYWORD: &[u8] = b"XML:com.adobe.xmp";

/// JPEG: the APP1 segments of the image, and of every image that follows it (a
/// multi-picture file's other views and gain maps carry EXIF of their own).
pub(super) fn jpeg(b: &[u8]) -> Vec<Patch> {
    let mut patches = Vec::new();
    let mut soi = Some(0);
    while let Some(start) = soi {
        let stop = jpeg_image(b, start, &mut patches);
        // Entropy-coded data cannot hold FF D8 (an FF there is followed by 00 or a
        // restart marker), so the next SOI after a scan starts another image.
        soi = find(b, stop.max(start + 3), &[0xFF, 0xD8, 0xFF]);
    }
    patches
}

/// An extended-XMP chunk: its GUID, the whole extension's length, and where its part
/// goes in the whole and sits in the file.
struct Chunk {
    guid_at: usize,
    total: usize,
    offset: usize,
    text: Range<usize>,
}

/// Walks the segments of the image whose SOI is at `soi`, up to its first scan (the
/// metadata precedes it); returns where the walk stopped.
fn jpeg_image(b: &[u8], soi: usize, patches: &mut Vec<Patch>) -> usize {
    let mut packets = Vec::new();
    let mut chunks = Vec::new();
    let mut at = soi + 2;
    let stop = loop {
        if b.get(at) != Some(&0xFF) {
            break at;
        }
        let mut m = at + 1;
        while b.get(m) == Some(&0xFF) {
            m += 1; // fill bytes
        }
        let Some(&marker) = b.get(m) else {
            break m;
        };
        let segment = m + 1;
        match marker {
            0xD9 | 0xDA | 0xD8 | 0x00 => break segment,
            0x01 | 0xD0..=0xD7 => {
                at = segment; // no length
                continue;
            }
            _ => {}
        }
        let Some(len) = be16(b, segment).map(usize::from).filter(|&l| l >= 2) else {
            break segment;
        };
        let Some(payload) = b.get(segment + 2..segment + len) else {
            break segment;
        };
        let payload_at = segment + 2;
        if marker == 0xE1 {
            if let Some(tiff) = payload.strip_prefix(EXIF_HEADER) {
                patches.extend(edit(tiff, payload_at + EXIF_HEADER.len(), tiff::blank_gps));
            } else if payload.starts_with(XMP_NS) {
                packets.push(payload_at + XMP_NS.len()..payload_at + payload.len());
            } else if let Some(rest) = payload.strip_prefix(XMP_EXTENSION_NS) {
                let guid_at = payload_at + XMP_EXTENSION_NS.len();
                if let (Some(total), Some(offset)) =
                    (be32(rest, GUID_LEN), be32(rest, GUID_LEN + 4))
                {
                    chunks.push(Chunk {
                        guid_at,
                        total: total as usize,
                        offset: offset as usize,
                        text: guid_at + EXTENSION_HEADER_LEN..payload_at + payload.len(),
                    });
                }
            }
        }
        at = segment + len;
    };
    let renamed = extended_xmp(b, &mut chunks, patches);
    for packet in packets {
        let Some(text) = b.get(packet.clone()) else {
            continue;
        };
        patches.extend(edit(text, packet.start, |x| {
            let mut changed = xmp::blank_location(x);
            // The main packet names the extension by its GUID (xmpNote:HasExtendedXMP).
            for (old, new) in &renamed {
                let mut from = 0;
                while let Some(i) = find(x, from, old) {
                    x[i..i + GUID_LEN].copy_from_slice(new);
                    changed = true;
                    from = i + GUID_LEN;
                }
            }
            changed
        }));
    }
    stop
}

/// Blanks the extended XMP of one image. A whole extension is reassembled from its
/// chunks, so a property split across two chunks is found, and its GUID, the MD5 of
/// its content, is recomputed (in every chunk; the GUID pairs returned, old → new,
/// are for the main packet). An extension with chunks missing is blanked chunk by
/// chunk, and its GUID kept.
fn extended_xmp(
    b: &[u8],
    chunks: &mut [Chunk],
    patches: &mut Vec<Patch>,
) -> Vec<([u8; 32], [u8; 32])> {
    let mut renamed = Vec::new();
    let guid = |c: &Chunk| b.get(c.guid_at..c.guid_at + GUID_LEN).unwrap_or(&[]);
    chunks.sort_by(|x, y| guid(x).cmp(guid(y)).then(x.offset.cmp(&y.offset)));
    for group in chunks.chunk_by(|x, y| guid(x) == guid(y)) {
        let Some(whole) = reassemble(b, group) else {
            for c in group {
                if let Some(text) = b.get(c.text.clone()) {
                    patches.extend(edit(text, c.text.start, xmp::blank_location));
                }
            }
            continue;
        };
        let mut whole = whole;
        if !xmp::blank_location(&mut whole) {
            continue;
        }
        let Ok(old) = <[u8; 32]>::try_from(guid(&group[0])) else {
            continue;
        };
        let mut new = [0u8; GUID_LEN];
        let hex = format!("{:X}", Md5::digest(&whole));
        new.copy_from_slice(hex.as_bytes());
        if old.iter().any(u8::is_ascii_lowercase) {
            new.make_ascii_lowercase();
        }
        for c in group {
            let mut bytes = new.to_vec();
            bytes.extend_from_slice(b.get(c.guid_at + GUID_LEN..c.text.start).unwrap_or(&[]));
            bytes.extend_from_slice(whole.get(c.offset..c.offset + c.text.len()).unwrap_or(&[]));
            if bytes.len() == c.text.end - c.guid_at {
                patches.push(Patch {
                    at: c.guid_at,
                    bytes,
                });
            }
        }
        renamed.push((old, new));
    }
    renamed
}

/// The whole extension from chunks sorted by offset, if they cover it exactly.
fn reassemble(b: &[u8], group: &[Chunk]) -> Option<Vec<u8>> {
    let total = group.first()?.total;
    if total > b.len() {
        return None;
    }
    let mut whole = Vec::with_capacity(total);
    for c in group {
        if c.total != total || c.offset != whole.len() {
            return None;
        }
        whole.extend_from_slice(b.get(c.text.clone())?);
    }
    (whole.len() == total).then_some(whole)
}

/// PNG: `eXIf`, and XMP in an uncompressed `iTXt` (or, from old writers, `tEXt`)
/// under the keyword `XML:com.adobe.xmp`. A changed chunk gets its CRC recomputed.
pub(super) fn png(b: &[u8]) -> Vec<Patch> {
    let mut patches = Vec::new();
    let mut at = PNG_SIGNATURE.len();
    while let (Some(len), Some(kind)) = (be32(b, at), b.get(at + 4..at + 8)) {
        let data_at = at + 8;
        let Some(data_end) = data_at
            .checked_add(len as usize)
            .filter(|&end| end.checked_add(4).is_some_and(|crc_end| crc_end <= b.len()))
        else {
            break;
        };
        let data = b.get(data_at..data_end).unwrap_or(&[]);
        let edited = match kind {
            b"eXIf" => {
                let skip = if data.starts_with(EXIF_HEADER) {
                    EXIF_HEADER.len()
                } else {
                    0
                };
                blank_from(data, skip, tiff::blank_gps)
            }
            b"iTXt" | b"tEXt" => {
                png_xmp(kind, data).and_then(|text| blank_from(data, text, xmp::blank_location))
            }
            _ => None,
        };
        if let Some(data) = edited {
            let mut crc = crc32fast::Hasher::new();
            crc.update(kind);
            crc.update(&data);
            patches.push(Patch {
                at: data_at,
                bytes: data,
            });
            patches.push(Patch {
                at: data_end,
                bytes: crc.finalize().to_be_bytes().to_vec(),
            });
        }
        if kind == b"IEND" {
            break;
        }
        at = data_end + 4;
    }
    patches
}

/// Where the XMP text of a PNG text chunk starts, if it holds uncompressed XMP.
fn png_xmp(kind: &[u8], data: &[u8]) -> Option<usize> {
    let keyword_end = data.iter().position(|&b| b == 0)?;
    if &data[..keyword_end] != PNG_XMP_KEYWORD {
        return None;
    }
    if kind == b"tEXt" {
        return Some(keyword_end + 1);
    }
    // iTXt: compression flag and method, then the language tag and the translated
    // keyword (each NUL-terminated). Compressed XMP (flag 1) is left as it is.
    if data.get(keyword_end + 1) != Some(&0) {
        return None;
    }
    let language = keyword_end + 3;
    let language_end = language + data.get(language..)?.iter().position(|&b| b == 0)?;
    let translated_end =
        language_end + 1 + data.get(language_end + 1..)?.iter().position(|&b| b == 0)?;
    Some(translated_end + 1)
}

/// A copy of `data` with `blank` run on it from `from`, if that changed anything.
fn blank_from(data: &[u8], from: usize, blank: impl FnOnce(&mut [u8]) -> bool) -> Option<Vec<u8>> {
    let mut copy = data.to_vec();
    blank(copy.get_mut(from..)?).then_some(copy)
}

/// WebP: the `EXIF` and `XMP ` chunks of the RIFF container.
pub(super) fn webp(b: &[u8]) -> Vec<Patch> {
    let mut patches = Vec::new();
    // The RIFF size bounds the chunks; a truncated file ends them sooner.
    let riff_end = le32(b, 4)
        .map_or(0, |s| (s as usize).saturating_add(8))
        .min(b.len());
    let mut at = 12;
    while let (Some(kind), Some(size)) = (b.get(at..at + 4), le32(b, at + 4)) {
        let data_at = at + 8;
        let Some(data) = data_at
            .checked_add(size as usize)
            .filter(|&end| end <= riff_end)
            .and_then(|end| b.get(data_at..end))
        else {
            break;
        };
        match kind {
            b"EXIF" => {
                let skip = if data.starts_with(EXIF_HEADER) {
                    EXIF_HEADER.len()
                } else {
                    0
                };
                let tiff = data.get(skip..).unwrap_or(&[]);
                patches.extend(edit(tiff, data_at + skip, tiff::blank_gps));
            }
            b"XMP " => patches.extend(edit(data, data_at, xmp::blank_location)),
            _ => {}
        }
        // Chunks are padded to an even length.
        at = data_at + data.len() + (data.len() & 1);
    }
    patches
}

#[cfg(test)]
mod tests {
    use super::super::samples;
    use super::super::{strip_location, Stripped};
    use super::*;

    fn edited(file: &[u8]) -> Vec<u8> {
        match strip_location(file) {
            Stripped::Edited(out) => out,
            Stripped::Untouched => panic!("not edited"),
        }
    }

    #[test]
    fn png_crcs_stay_valid() {
        let sample = samples::png(false);
        let out = edited(&sample.bytes);
        let mut at = PNG_SIGNATURE.len();
        let mut chunks = 0;
        while let Some(len) = be32(&out, at) {
            let end = at + 8 + len as usize;
            let crc = crc32fast::hash(&out[at + 4..end]);
            assert_eq!(be32(&out, end), Some(crc), "chunk at {at}");
            chunks += 1;
            at = end + 4;
        }
        assert_eq!(at, out.len());
        assert_eq!(chunks, 5);
    }

    #[test]
    fn an_image_after_the_first_is_stripped_too() {
        let first = samples::jpeg(false);
        let second = samples::jpeg(true);
        let both = [first.bytes.clone(), second.bytes.clone()].concat();
        let out = edited(&both);
        first.check(&out[..first.bytes.len()]);
        second.check(&out[first.bytes.len()..]);
    }

    #[test]
    fn extended_xmp_is_reassembled_and_its_guid_renewed() {
        let full = samples::xmp(true);
        let old_guid = format!("{:X}", Md5::digest(&full));
        let main = format!(
            r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:xmpNote="http://ns.adobe.com/xmp/note/" xmpNote:HasExtendedXMP="{old_guid}"/></rdf:RDF></x:xmpmeta>"#
        );
        let mut segments = vec![[XMP_NS, main.as_bytes()].concat()];
        // Split inside a GPS property, chunks stored out of order.
        let split = samples::find_str(&full, "exif:GPSLatitude") + 5;
        for (offset, part) in [(split, &full[split..]), (0, &full[..split])] {
            let mut s = XMP_EXTENSION_NS.to_vec();
            s.extend_from_slice(old_guid.as_bytes());
            s.extend_from_slice(&(full.len() as u32).to_be_bytes());
            s.extend_from_slice(&(offset as u32).to_be_bytes());
            s.extend_from_slice(part);
            segments.push(s);
        }
        let file = samples::jpeg_with(&segments);
        let out = edited(&file);
        assert_eq!(out.len(), file.len());
        // Reassemble the output's extension: blanked, and named by its new MD5.
        let second = samples::find_str(&out, "http://ns.adobe.com/xmp/extension/");
        let first = second
            + 1
            + samples::find_str(&out[second + 1..], "http://ns.adobe.com/xmp/extension/");
        let text = |at: usize| {
            let start = at + XMP_EXTENSION_NS.len() + EXTENSION_HEADER_LEN;
            let len = be16(&out, at - 2).map_or(0, usize::from) - 2 - (start - at);
            out[start..start + len].to_vec()
        };
        let whole = [text(first), text(second)].concat();
        assert_eq!(whole.len(), full.len());
        samples::check_xmp(&whole);
        let new_guid = format!("{:X}", Md5::digest(&whole));
        assert_ne!(new_guid, old_guid);
        let found = String::from_utf8_lossy(&out);
        assert_eq!(found.matches(&new_guid).count(), 3);
        assert!(!found.contains(&old_guid));
    }
}
