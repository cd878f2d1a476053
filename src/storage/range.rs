//! Byte ranges (RFC 9110 §14): one range is served as 206; a header that does not
//! parse, or asks for several ranges, is ignored and the whole object served (a
//! server may ignore `Range`), which also keeps absurd range lists cheap.

use http_range_header::{parse_range_header, EndPosition, StartPosition};

/// Most ranges parsed from one header before it is ignored outright.
const MAX_RANGES_PARSED: usize = 16;

/// One requested byte range, before the object's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=a-b` (inclusive).
    Bounded(u64, u64),
    /// `bytes=a-`.
    From(u64),
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Parses a `Range` header; `None` when it should be ignored.
    pub fn parse_header(value: &str) -> Option<ByteRange> {
        if value.matches(',').count() >= MAX_RANGES_PARSED {
            return None;
        }
        let parsed = parse_range_header(value).ok()?;
        if parsed.ranges.len() != 1 {
            return None;
        }
        let r = parsed.ranges[0];
        match (r.start, r.end) {
            (StartPosition::Index(a), EndPosition::Index(b)) if a <= b => {
                Some(ByteRange::Bounded(a, b))
            }
            (StartPosition::Index(a), EndPosition::LastByte) => Some(ByteRange::From(a)),
            (StartPosition::FromLast(n), _) => Some(ByteRange::Suffix(n)),
            _ => None,
        }
    }

    /// The inclusive (first, last) within an object of `size` bytes, or `None` when
    /// unsatisfiable (416). Always `first <= last < size`, whatever the range holds
    /// (a reversed `Bounded` is unsatisfiable, not a negative length).
    pub fn resolve(self, size: u64) -> Option<(u64, u64)> {
        if size == 0 {
            return None;
        }
        match self {
            ByteRange::Bounded(a, b) if a < size && a <= b => Some((a, b.min(size - 1))),
            ByteRange::From(a) if a < size => Some((a, size - 1)),
            ByteRange::Suffix(n) if n > 0 => Some((size.saturating_sub(n), size - 1)),
            _ => None,
        }
    }

    /// The header value that asks a store for this range.
    pub fn to_header(self) -> String {
        match self {
            ByteRange::Bounded(a, b) => format!("bytes={a}-{b}"),
            ByteRange::From(a) => format!("bytes={a}-"),
            ByteRange::Suffix(n) => format!("bytes=-{n}"),
        }
    }
}

/// Parses a `Content-Range: bytes a-b/size` answer; `None` unless `a <= b < size`, so
/// the length served (`b - a + 1`) is never negative and never past the object.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b, size): (u64, u64, u64) = (a.parse().ok()?, b.parse().ok()?, size.parse().ok()?);
    (a <= b && b < size).then_some((a, b, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_resolve() {
        assert_eq!(
            ByteRange::parse_header("bytes=0-99"),
            Some(ByteRange::Bounded(0, 99))
        );
        assert_eq!(
            ByteRange::parse_header("bytes=100-"),
            Some(ByteRange::From(100))
        );
        assert_eq!(
            ByteRange::parse_header("bytes=-5"),
            Some(ByteRange::Suffix(5))
        );
        assert_eq!(ByteRange::parse_header("bytes=0-1,5-6"), None);
        assert_eq!(ByteRange::parse_header("items=0-1"), None);
        assert_eq!(ByteRange::parse_header(&"bytes=0-1,".repeat(100)), None);
        assert_eq!(ByteRange::Bounded(0, 99).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::From(10).resolve(10), None);
        assert_eq!(ByteRange::Suffix(500).resolve(10), Some((0, 9)));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, 100)));
    }

    // Found by the `range` fuzz target: a reversed range resolved to first > last,
    // and the embedded store then computed its length as `last - first + 1`.
    #[test]
    fn reversed_range_is_unsatisfiable() {
        assert_eq!(ByteRange::Bounded(5, 2).resolve(10), None);
        assert_eq!(
            ByteRange::Bounded(u64::MAX - 216, u64::MAX >> 8).resolve(u64::MAX),
            None
        );
        assert_eq!(ByteRange::Bounded(5, 5).resolve(10), Some((5, 5)));
    }

    // Found by the `range` fuzz target: a store's 206 answer with `bytes 5-2/10` (or a
    // last byte at or past the size) was taken as is, and delivery computed the length
    // as `last - first + 1`: an overflow panic in debug builds, a wrong length else.
    #[test]
    fn content_range_must_lie_within_the_object() {
        assert_eq!(parse_content_range("bytes 5-2/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(
            parse_content_range(&format!("bytes 0-{}/{}", u64::MAX, u64::MAX)),
            None
        );
        assert_eq!(parse_content_range("bytes 9-9/10"), Some((9, 9, 10)));
        assert_eq!(parse_content_range(" bytes 0-0/1 "), Some((0, 0, 1)));
    }
}
