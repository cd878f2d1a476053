//! Bounds-checked reads of big- and little-endian integers, a substring search, and
//! the same-length patch every container walk produces.

/// A same-length replacement: `bytes` go at offset `at` of the file.
pub(super) struct Patch {
    pub(super) at: usize,
    pub(super) bytes: Vec<u8>,
}

/// `blank` run on a copy of `block` (which sits at `at` in the file): the patch, if
/// it changed anything. Working on copies keeps the input borrowed until an edit is
/// certain, so a file without location is never copied whole.
pub(super) fn edit(
    block: &[u8],
    at: usize,
    blank: impl FnOnce(&mut [u8]) -> bool,
) -> Option<Patch> {
    let mut copy = block.to_vec();
    blank(&mut copy).then_some(Patch { at, bytes: copy })
}

/// PNG's eight-byte signature.
pub(super) const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

pub(super) fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(s.try_into().ok()?))
}

pub(super) use crate::media::isobmff::be32;

pub(super) fn le32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// The first `needle` in `hay` at or after `from`.
pub(super) fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay.get(from..)?, needle).map(|i| i + from)
}
