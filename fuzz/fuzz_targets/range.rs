//! `Range` headers and the store's `Content-Range` answers (`storage::range`).
//!
//! Asserts, beyond "no panic":
//! - a range resolved against an object of `size` bytes is `first <= last < size`,
//!   for any range value, parsed or not; a suffix covers min(n, size) bytes, an open
//!   range starts where asked, a bounded one ends at min(b, size - 1);
//! - a parsed header prints back to a header that parses to the same range;
//! - a `Content-Range` that parses is `first <= last < size` (the length served is
//!   `last - first + 1`), and prints back to itself.
#![no_main]

use filegate::parse_content_range;
use filegate::ByteRange;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    header: String,
    size: u64,
    any_range: (u8, u64, u64),
    content_range: String,
}

fn check_resolve(r: ByteRange, size: u64) {
    let Some((first, last)) = r.resolve(size) else {
        return;
    };
    assert!(
        first <= last && last < size,
        "{r:?} in {size}: {first}-{last}"
    );
    match r {
        ByteRange::Bounded(a, b) => assert_eq!((first, last), (a, b.min(size - 1))),
        ByteRange::From(a) => assert_eq!((first, last), (a, size - 1)),
        ByteRange::Suffix(n) => {
            assert_eq!(last, size - 1);
            assert_eq!(last - first + 1, n.min(size));
        }
    }
}

fuzz_target!(|input: Input| {
    if let Some(r) = ByteRange::parse_header(&input.header) {
        if let ByteRange::Bounded(a, b) = r {
            assert!(a <= b);
        }
        assert_eq!(ByteRange::parse_header(&r.to_header()), Some(r));
        check_resolve(r, input.size);
        check_resolve(r, 1);
    }
    let (kind, a, b) = input.any_range;
    let r = match kind % 3 {
        0 => ByteRange::Bounded(a, b),
        1 => ByteRange::From(a),
        _ => ByteRange::Suffix(a),
    };
    check_resolve(r, input.size);

    if let Some((first, last, size)) = parse_content_range(&input.content_range) {
        assert!(first <= last && last < size, "{:?}", input.content_range);
        let printed = format!("bytes {first}-{last}/{size}");
        assert_eq!(parse_content_range(&printed), Some((first, last, size)));
    }
});
