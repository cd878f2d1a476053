//! sdk_sign canonicalization, signing and verification (`auth::sdk_sign`), over
//! queries decoded by `query::Query`.
//!
//! Asserts, beyond "no panic":
//! - the canonical query is RFC 3986-encoded (only unreserved characters, `%XX` with
//!   upper-case hex, `=` and `&`), one `name=value` per kept parameter, and does not
//!   depend on the order of the parameters;
//! - `sign` then `verify_sdk_sign` round-trips for any query, path, app and expiry,
//!   under the signing secret alone or among others (rotation), and fails under
//!   another secret, after expiry (plus the leeway), for another path or app, and
//!   with one more parameter (unless it is one of those left out of the signature);
//! - any value at all is either refused or a valid signature.
#![no_main]

use filegate::config::Secret;
use filegate::jwt::LEEWAY_SECS;
use filegate::query::Query;
use filegate::sdk_sign::{canonical_query, sign, verify_sdk_sign};
use filegate_fuzz::{only_b, rotated, SECRET_A};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    query: String,
    path: String,
    app: String,
    expires: u64,
    extra: (String, String),
    value: String,
}

const EXCLUDED: [&str; 3] = ["sdk_sign", "app_id", "access-token"];

fn serialize(pairs: &[(String, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

fn is_canonical(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'=' | b'&' => {
                i += 1
            }
            b'%' => {
                let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                if i + 2 >= b.len() || !(hex(b[i + 1]) && hex(b[i + 2])) {
                    return false;
                }
                i += 3;
            }
            _ => return false,
        }
    }
    true
}

fuzz_target!(|input: Input| {
    let q = Query::parse(&input.query);
    let canonical = canonical_query(&q);
    assert!(is_canonical(&canonical), "not RFC 3986: {canonical:?}");
    let kept = q
        .pairs()
        .iter()
        .filter(|(k, _)| !EXCLUDED.contains(&k.as_str()))
        .count();
    let pieces = if canonical.is_empty() {
        0
    } else {
        canonical.split('&').count()
    };
    assert_eq!(pieces, kept);
    assert!(canonical
        .split('&')
        .all(|p| p.is_empty() || p.matches('=').count() == 1));

    // Order does not matter; the decoded pairs survive re-encoding.
    let mut reversed = q.pairs().to_vec();
    reversed.reverse();
    let q2 = Query::parse(&serialize(&reversed));
    assert_eq!(q2.pairs(), &reversed[..]);
    assert_eq!(canonical_query(&q2), canonical);

    // Any value: refused, unless it happens to be a valid signature.
    let now = input.expires.saturating_sub(1);
    let _ = verify_sdk_sign(
        &input.value,
        &input.path,
        &input.app,
        &q,
        &rotated(),
        now,
        u64::MAX,
    );

    let a = Secret::new(SECRET_A);
    let s = sign(&input.path, &input.app, &q, input.expires, &a);
    let verify = |value: &str, path: &str, app: &str, query: &Query, secrets: &[Secret], now| {
        verify_sdk_sign(value, path, app, query, secrets, now, u64::MAX).is_ok()
    };
    let alone = std::slice::from_ref(&a);
    assert!(verify(&s, &input.path, &input.app, &q, alone, now));
    assert!(verify(&s, &input.path, &input.app, &q, &rotated(), now));
    assert!(verify(&s, &input.path, &input.app, &q2, &rotated(), now));
    assert!(!verify(&s, &input.path, &input.app, &q, &only_b(), now));
    assert!(!verify(&s, &input.path, &input.app, &q, &[], now));
    let edge = input.expires.saturating_add(LEEWAY_SECS);
    assert!(verify(&s, &input.path, &input.app, &q, &rotated(), edge));
    if edge < u64::MAX {
        assert!(!verify(
            &s,
            &input.path,
            &input.app,
            &q,
            &rotated(),
            edge + 1
        ));
    }
    let other_path = format!("{}x", input.path);
    assert!(!verify(&s, &other_path, &input.app, &q, &rotated(), now));
    // path and app are separated by a newline: only apps without one are distinct.
    if !input.app.contains('\n') && !input.path.contains('\n') {
        let other_app = format!("{}x", input.app);
        assert!(!verify(&s, &input.path, &other_app, &q, &rotated(), now));
    }

    let mut more = q.pairs().to_vec();
    more.push(input.extra.clone());
    let q3 = Query::parse(&serialize(&more));
    let still = verify(&s, &input.path, &input.app, &q3, &rotated(), now);
    assert_eq!(
        still,
        EXCLUDED.contains(&input.extra.0.as_str()),
        "one more parameter {:?}",
        input.extra
    );
});
