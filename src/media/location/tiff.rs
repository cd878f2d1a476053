//! The GPS IFD of an EXIF block, blanked in place. EXIF is a TIFF structure: a header
//! (byte order, offset of IFD0), then IFDs (a u16 entry count, 12-byte entries of tag,
//! type, count and value-or-offset, the u32 offset of the next IFD). Tag 0x8825 in
//! IFD0 points to the GPS IFD. Offsets count from the TIFF header, so the block is
//! edited the same wherever its container put it.

/// The GPSInfo IFD pointer.
const GPS_POINTER: u16 = 0x8825;
const ENTRY_LEN: usize = 12;
/// The header's length: no IFD can start inside it.
const HEADER_LEN: usize = 8;

#[derive(Clone, Copy)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn of(tiff: &[u8]) -> Option<Order> {
        match tiff.get(..4)? {
            b"II*\0" => Some(Order::Little),
            b"MM\0*" => Some(Order::Big),
            _ => None,
        }
    }

    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let s: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Order::Little => u16::from_le_bytes(s),
            Order::Big => u16::from_be_bytes(s),
        })
    }

    fn u32(self, b: &[u8], at: usize) -> Option<usize> {
        let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        let v = match self {
            Order::Little => u32::from_le_bytes(s),
            Order::Big => u32::from_be_bytes(s),
        };
        usize::try_from(v).ok()
    }
}

/// Whether `b` starts with a TIFF header.
pub(super) fn is_tiff(b: &[u8]) -> bool {
    Order::of(b).is_some()
}

/// Empties the GPS IFD of the TIFF block `tiff`: its values and entries zeroed, its
/// entry count 0. False when there was nothing to blank (no GPS pointer, an empty GPS
/// IFD, not a TIFF block).
///
/// The pointer in IFD0 is kept, aimed at the now empty IFD: changing the tag would
/// break the sorted order IFDs require, and exiftool, Pillow and libexif all read an
/// empty IFD as "no GPS".
pub(super) fn blank_gps(tiff: &mut [u8]) -> bool {
    let Some(order) = Order::of(tiff) else {
        return false;
    };
    let mut changed = false;
    let mut ifd = order.u32(tiff, 4);
    // IFD0 is where EXIF puts the pointer; IFD1 (the thumbnail's) is read too, as a
    // few writers repeat it there.
    for _ in 0..2 {
        let Some(at) = ifd.filter(|&at| at >= HEADER_LEN) else {
            break;
        };
        let Some(count) = order.u16(tiff, at) else {
            break;
        };
        let entries = at + 2;
        for i in 0..usize::from(count) {
            let entry = entries + i * ENTRY_LEN;
            if order.u16(tiff, entry) != Some(GPS_POINTER) {
                continue;
            }
            if let Some(gps) = order.u32(tiff, entry + 8).filter(|&g| g >= HEADER_LEN) {
                changed |= blank_ifd(tiff, gps, order);
            }
        }
        ifd = order.u32(tiff, entries + usize::from(count) * ENTRY_LEN);
    }
    changed
}

/// Zeroes the IFD at `at`: the out-of-line values its entries point to, the entries,
/// the count and the next-IFD offset. False if it was already empty.
fn blank_ifd(tiff: &mut [u8], at: usize, order: Order) -> bool {
    let count = match order.u16(tiff, at) {
        Some(n) if n > 0 => usize::from(n),
        _ => return false,
    };
    let entries = at + 2;
    for i in 0..count {
        let e = entries + i * ENTRY_LEN;
        let Some(entry) = tiff.get(e..e + ENTRY_LEN) else {
            // A truncated table: blank what is there.
            zero(tiff, e, ENTRY_LEN);
            break;
        };
        // A value longer than 4 bytes is stored elsewhere, at the offset the entry
        // holds; one of an unknown type cannot be found, only its entry blanked.
        let len = order
            .u16(entry, 2)
            .and_then(type_size)
            .zip(order.u32(entry, 4))
            .and_then(|(size, n)| size.checked_mul(n));
        if let (Some(len), Some(offset)) = (len.filter(|&l| l > 4), order.u32(entry, 8)) {
            zero(tiff, offset, len);
        }
        zero(tiff, e, ENTRY_LEN);
    }
    zero(tiff, at, 2);
    // The next-IFD offset: where an empty IFD has it, and where this one had it.
    zero(tiff, entries, 4);
    zero(tiff, entries + count * ENTRY_LEN, 4);
    true
}

/// The size of one value of a TIFF field type (BigTIFF's 8-byte types included).
fn type_size(kind: u16) -> Option<usize> {
    match kind {
        1 | 2 | 6 | 7 => Some(1),
        3 | 8 => Some(2),
        4 | 9 | 11 | 13 => Some(4),
        5 | 10 | 12 | 16..=18 => Some(8),
        _ => None,
    }
}

/// Zeroes what of `b[at..at + len]` lies inside `b`.
fn zero(b: &mut [u8], at: usize, len: usize) {
    let end = at.saturating_add(len).min(b.len());
    if let Some(s) = b.get_mut(at..end) {
        s.fill(0);
    }
}

#[cfg(test)]
mod tests {
    use super::super::samples::tiff;
    use super::*;

    #[test]
    fn the_gps_ifd_is_emptied_and_nothing_else_changes() {
        for big_endian in [false, true] {
            let (input, at) = tiff(big_endian, true);
            let mut out = input.clone();
            assert!(blank_gps(&mut out));
            assert_eq!(out.len(), input.len());
            // Header, IFD0 (Orientation 6, the GPS pointer) and the Make string.
            assert_eq!(out[..at.gps_ifd], input[..at.gps_ifd]);
            assert_eq!(&out[at.make..at.make + 6], b"Canon\0");
            // The GPS IFD: count, entries, next offset and the rationals, all zero.
            assert!(out[at.gps_ifd..].iter().all(|&b| b == 0));
            assert!(input[at.latitude..at.latitude + 24].iter().any(|&b| b != 0));
            // Already empty: nothing more to do.
            assert!(!blank_gps(&mut out));
        }
    }

    #[test]
    fn a_tiff_without_gps_is_left_alone() {
        let (input, _) = tiff(false, false);
        let mut out = input.clone();
        assert!(!blank_gps(&mut out));
        assert_eq!(out, input);
        assert!(!blank_gps(&mut b"not a tiff at all".to_vec()));
    }

    #[test]
    fn hostile_offsets_stay_in_bounds() {
        let (input, at) = tiff(true, true);
        // GPS entries claiming huge counts and far offsets, an IFD running off the end.
        let mut bad = input.clone();
        bad[at.gps_ifd..at.gps_ifd + 2].copy_from_slice(&0xFFFFu16.to_be_bytes());
        bad[at.gps_ifd + 6..at.gps_ifd + 10].copy_from_slice(&u32::MAX.to_be_bytes());
        bad[at.gps_ifd + 10..at.gps_ifd + 14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(blank_gps(&mut bad));
        // A GPS pointer at the header itself is ignored.
        let mut bad = input.clone();
        let pointer = at.gps_pointer_entry + 8;
        bad[pointer..pointer + 4].copy_from_slice(&0u32.to_be_bytes());
        assert!(!blank_gps(&mut bad));
        for n in 0..input.len() {
            blank_gps(&mut input[..n].to_vec());
        }
    }
}
