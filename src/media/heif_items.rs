//! The item table of a HEIF/AVIF file's top-level `meta`: item types (`iinf`), where
//! each item's bytes are (`iloc`, in the file or in `idat`), references between items
//! (`iref`), their properties (`ipco` and `ipma`) and the primary item (`pitm`). Read by
//! the HEVC decoder and the location stripper; every read bounds-checked.

use std::ops::Range;

use crate::media::isobmff::{boxes, BoxRef};

/// A bounds-checked cursor over `b[at..end]`.
pub struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8], at: usize, end: usize) -> Self {
        Reader {
            b,
            at,
            end: end.min(b.len()),
        }
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let next = self.at.checked_add(n).filter(|&next| next <= self.end)?;
        let s = self.b.get(self.at..next)?;
        self.at = next;
        Some(s)
    }

    pub fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    /// An unsigned integer of `size` bytes, as `iloc` sizes them (0, 4 or 8).
    pub fn uint(&mut self, size: u8) -> Option<u64> {
        match size {
            0 => Some(0),
            4 => self.u32().map(u64::from),
            8 => Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
            _ => None,
        }
    }

    /// A NUL-terminated string (or the rest of the box, unterminated).
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.at..self.end)?;
        if rest.is_empty() {
            return None;
        }
        let len = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        self.at += (len + 1).min(rest.len());
        rest.get(..len)
    }
}

/// One `infe`: an item's ID, its type, and for a `mime` item its content type and
/// content encoding (empty when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemInfo {
    /// The item's ID.
    pub id: u32,
    /// Its four-character type (`hvc1`, `grid`, `Exif`, `mime`...); `mime` for the
    /// typeless versions 0 and 1.
    pub kind: [u8; 4],
    /// A `mime` item's content type.
    pub content_type: Vec<u8>,
    /// A `mime` item's content encoding (`deflate`...), empty when none.
    pub encoding: Vec<u8>,
}

/// Every item `iinf` declares (those it can read).
pub fn item_infos(b: &[u8], iinf: &BoxRef) -> Vec<ItemInfo> {
    let count_len = match b.get(iinf.body) {
        Some(0) => 2,
        Some(_) => 4,
        None => return Vec::new(),
    };
    boxes(b, iinf.body + 4 + count_len, iinf.end)
        .iter()
        .filter(|e| &e.kind == b"infe")
        .filter_map(|e| item_info(b, e))
        .collect()
}

fn item_info(b: &[u8], infe: &BoxRef) -> Option<ItemInfo> {
    let mut r = Reader::new(b, infe.body, infe.end);
    let version = r.u8()?;
    r.take(3)?;
    let (id, kind) = match version {
        // Versions 0 and 1 have no item type: a MIME item, content type after the name.
        0 | 1 => {
            let id = u32::from(r.u16()?);
            r.u16()?; // protection index
            r.cstr()?; // name
            (id, *b"mime")
        }
        2 | 3 => {
            let id = if version == 2 {
                u32::from(r.u16()?)
            } else {
                r.u32()?
            };
            r.u16()?;
            let kind: [u8; 4] = r.take(4)?.try_into().ok()?;
            if &kind != b"mime" {
                return Some(ItemInfo {
                    id,
                    kind,
                    content_type: Vec::new(),
                    encoding: Vec::new(),
                });
            }
            r.cstr()?;
            (id, kind)
        }
        _ => return None,
    };
    let content_type = r.cstr()?.to_vec();
    let encoding = r.cstr().unwrap_or(&[]).to_vec();
    Some(ItemInfo {
        id,
        kind,
        content_type,
        encoding,
    })
}

/// Where an item is: construction method, base offset, (offset, length) extents.
pub struct Location {
    /// The item's ID.
    pub id: u32,
    /// 0: in the file; 1: in `idat`; 2: in another item.
    pub method: u16,
    /// Added to every extent's offset.
    pub base: u64,
    /// (offset, length) of each extent; a length of 0 is "to the end".
    pub extents: Vec<(u64, u64)>,
}

/// The `iloc` entries of the `wanted` items (data in this file only).
pub fn locations(b: &[u8], iloc: &BoxRef, wanted: &[u32]) -> Option<Vec<Location>> {
    let mut r = Reader::new(b, iloc.body, iloc.end);
    let version = r.u8()?;
    r.take(3)?;
    if version > 2 {
        return None;
    }
    let sizes = r.u8()?;
    let (offset_size, length_size) = (sizes >> 4, sizes & 0xF);
    let sizes = r.u8()?;
    let base_size = sizes >> 4;
    let index_size = if version > 0 { sizes & 0xF } else { 0 };
    let count = if version < 2 {
        u32::from(r.u16()?)
    } else {
        r.u32()?
    };
    let mut found = Vec::new();
    for _ in 0..count {
        let id = if version < 2 {
            u32::from(r.u16()?)
        } else {
            r.u32()?
        };
        let method = if version > 0 { r.u16()? & 0xF } else { 0 };
        let data_reference = r.u16()?;
        let base = r.uint(base_size)?;
        let extent_count = r.u16()?;
        let keep = data_reference == 0 && wanted.contains(&id);
        let mut extents = Vec::new();
        // Extents of zero-sized fields take no bytes: one stands for them all, so a
        // hostile count cannot make this loop long.
        let record_len = u16::from(offset_size) + u16::from(length_size) + u16::from(index_size);
        let n = if record_len == 0 {
            extent_count.min(1)
        } else {
            extent_count
        };
        for _ in 0..n {
            r.uint(index_size)?;
            let offset = r.uint(offset_size)?;
            let length = r.uint(length_size)?;
            if keep {
                extents.push((offset, length));
            }
        }
        if keep {
            found.push(Location {
                id,
                method,
                base,
                extents,
            });
        }
    }
    Some(found)
}

/// The file ranges of an item's extents; `None` for data elsewhere (another item,
/// a missing `idat`) or out of bounds. A length of 0 means "to the end".
pub fn extents(
    loc: &Location,
    file_len: usize,
    idat: Option<(usize, usize)>,
) -> Option<Vec<Range<usize>>> {
    let (start, end) = match loc.method {
        0 => (0, file_len),
        1 => idat?,
        _ => return None,
    };
    let mut ranges = Vec::with_capacity(loc.extents.len());
    let mut total = 0usize;
    for &(offset, length) in &loc.extents {
        let from = (start as u64).checked_add(loc.base)?.checked_add(offset)?;
        let from = usize::try_from(from).ok().filter(|&f| f <= end)?;
        let to = match length {
            0 => end,
            n => from.checked_add(usize::try_from(n).ok()?)?,
        };
        if to > end {
            return None;
        }
        // Overlapping extents could repeat the file many times over.
        total = total.checked_add(to - from).filter(|&t| t <= file_len)?;
        ranges.push(from..to);
    }
    Some(ranges)
}

/// An item's bytes: its extents, concatenated; `None` when they are not all here.
pub fn item_bytes(b: &[u8], loc: &Location, idat: Option<(usize, usize)>) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    for r in extents(loc, b.len(), idat)? {
        data.extend_from_slice(b.get(r)?);
    }
    Some(data)
}

/// The primary item's ID (`pitm`).
pub fn primary_item(b: &[u8], pitm: &BoxRef) -> Option<u32> {
    let mut r = Reader::new(b, pitm.body, pitm.end);
    let version = r.u8()?;
    r.take(3)?;
    if version == 0 {
        r.u16().map(u32::from)
    } else {
        r.u32()
    }
}

/// The references of type `kind` in `iref`: (from, [to...]) in file order.
pub fn references(b: &[u8], iref: &BoxRef, kind: &[u8; 4]) -> Vec<(u32, Vec<u32>)> {
    let Some(&version) = b.get(iref.body) else {
        return Vec::new();
    };
    let id = |r: &mut Reader<'_>| {
        if version == 0 {
            r.u16().map(u32::from)
        } else {
            r.u32()
        }
    };
    let mut found = Vec::new();
    for reference in boxes(b, iref.body + 4, iref.end) {
        if &reference.kind != kind {
            continue;
        }
        let mut r = Reader::new(b, reference.body, reference.end);
        let Some(from) = id(&mut r) else { continue };
        let Some(count) = r.u16() else { continue };
        let to: Option<Vec<u32>> = (0..count).map(|_| id(&mut r)).collect();
        if let Some(to) = to {
            found.push((from, to));
        }
    }
    found
}

/// Each item's property associations: (item ID, 0-based indices into `ipco`, in order).
pub type Associations = Vec<(u32, Vec<usize>)>;

/// The property boxes (`ipco`) and each item's associations (`ipma`).
pub fn properties(b: &[u8], iprp: &BoxRef) -> Option<(Vec<BoxRef>, Associations)> {
    let inside = boxes(b, iprp.body, iprp.end);
    let ipco = inside.iter().find(|x| &x.kind == b"ipco")?;
    let props = boxes(b, ipco.body, ipco.end);
    let mut items = Vec::new();
    for ipma in inside.iter().filter(|x| &x.kind == b"ipma") {
        let mut r = Reader::new(b, ipma.body, ipma.end);
        let version = r.u8()?;
        let flags = r.take(3)?;
        let wide = flags[2] & 1 == 1;
        let count = r.u32()?;
        for _ in 0..count {
            let id = if version < 1 {
                u32::from(r.u16()?)
            } else {
                r.u32()?
            };
            let n = r.u8()?;
            let mut list = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                let index = if wide {
                    usize::from(r.u16()? & 0x7FFF)
                } else {
                    usize::from(r.u8()? & 0x7F)
                };
                // 0 means "no property"; the rest are 1-based.
                if let Some(i) = index.checked_sub(1) {
                    list.push(i);
                }
            }
            items.push((id, list));
        }
    }
    Some((props, items))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_extents_are_refused() {
        let loc = |method, base, extents| Location {
            id: 1,
            method,
            base,
            extents,
        };
        assert!(extents(&loc(0, 0, vec![(0, 10)]), 5, None).is_none());
        assert!(extents(&loc(0, u64::MAX, vec![(1, 1)]), 5, None).is_none());
        assert!(extents(&loc(1, 0, vec![(0, 1)]), 5, None).is_none());
        assert!(extents(&loc(2, 0, vec![(0, 1)]), 5, None).is_none());
        assert!(extents(&loc(0, 0, vec![(0, 0); 3]), 5, None).is_none());
        // In idat (data at 10..20), base 1, offset 1, "to the end".
        let found = extents(&loc(1, 1, vec![(1, 0)]), 50, Some((10, 20)));
        let expected: Range<usize> = 12..20;
        assert_eq!(found, Some(vec![expected]));
    }
}
