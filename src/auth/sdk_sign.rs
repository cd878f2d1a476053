//! sdk_sign: a signed-URL credential for download routes, minted by the app's server
//! (SPEC §3). `sdk_sign = "<expires>.<sig>"`, sig = base64url-nopad HMAC-SHA256 of
//!
//! ```text
//! GET\n<path>\n<app_id>\n<canonical query>\n<expires>
//! ```
//!
//! where the canonical query is every parameter but `sdk_sign`, `app_id` and
//! `access-token`, decoded, sorted by name then value, RFC 3986-encoded (upper-case
//! hex, unreserved characters kept) and joined as `name=value` with `&`.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha2::Sha256;

use crate::auth::jwt::LEEWAY_SECS;
use crate::config::Secret;
use crate::error::ApiError;
use crate::query::Query;

type HmacSha256 = Hmac<Sha256>;

/// RFC 3986: everything but the unreserved `A-Z a-z 0-9 - . _ ~` is encoded.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Parameters left out of the canonical query.
const EXCLUDED: [&str; 3] = ["sdk_sign", "app_id", "access-token"];

/// The canonical query of a request.
pub fn canonical_query(query: &Query) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .pairs()
        .iter()
        .filter(|(k, _)| !EXCLUDED.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(utf8_percent_encode(k, RFC3986));
        out.push('=');
        out.extend(utf8_percent_encode(v, RFC3986));
    }
    out
}

/// The string that is signed.
pub fn canonical_string(path: &str, app_id: &str, query: &Query, expires: u64) -> String {
    format!(
        "GET\n{path}\n{app_id}\n{}\n{expires}",
        canonical_query(query)
    )
}

fn mac(secret: &Secret, canonical: &str) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret.expose()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(canonical.as_bytes());
    mac
}

/// The `sdk_sign` value for a request, signed with `secret`.
pub fn sign(path: &str, app_id: &str, query: &Query, expires: u64, secret: &Secret) -> String {
    let canonical = canonical_string(path, app_id, query, expires);
    let sig = mac(secret, &canonical).finalize().into_bytes();
    format!("{expires}.{}", B64.encode(sig))
}

/// Verifies `value` against the request at `now` (Unix seconds); any secret of the
/// app may have signed it. The MAC comparison is constant-time. An expiry more than
/// `max_ttl_secs` ahead (the app's `max_sign_ttl`) is refused: a leaked URL must not
/// work for years.
pub fn verify_sdk_sign(
    value: &str,
    path: &str,
    app_id: &str,
    query: &Query,
    secrets: &[Secret],
    now: u64,
    max_ttl_secs: u64,
) -> Result<(), ApiError> {
    let malformed = || ApiError::invalid_credential("sdk_sign is malformed (<expires>.<sig>)");
    let (expires, sig) = value.split_once('.').ok_or_else(malformed)?;
    let expires: u64 = expires.parse().map_err(|_| malformed())?;
    let sig = B64.decode(sig).map_err(|_| malformed())?;
    let canonical = canonical_string(path, app_id, query, expires);
    let valid = secrets
        .iter()
        .any(|s| mac(s, &canonical).verify_slice(&sig).is_ok());
    if !valid {
        return Err(ApiError::invalid_credential(
            "sdk_sign signature is invalid",
        ));
    }
    if now > expires.saturating_add(LEEWAY_SECS) {
        return Err(ApiError::invalid_credential("sdk_sign has expired"));
    }
    if expires > now.saturating_add(max_ttl_secs).saturating_add(LEEWAY_SECS) {
        return Err(ApiError::invalid_credential(format!(
            "sdk_sign expires further ahead than this app's max_sign_ttl ({max_ttl_secs} s) allows"
        )));
    }
    Ok(())
}

/// Refuses to mint an sdk_sign the server would refuse: one living longer than the
/// app's `max_sign_ttl` (the rule [`verify_sdk_sign`] applies).
pub fn check_mint_ttl(app_id: &str, max_sign_ttl: Duration, ttl: Duration) -> Result<(), String> {
    if ttl > max_sign_ttl {
        return Err(format!(
            "--ttl {} is longer than apps.{app_id}.max_sign_ttl ({}): the server would refuse it",
            humantime::format_duration(ttl),
            humantime::format_duration(max_sign_ttl)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example() {
        let q = Query::parse("object_name=avatar/user/42/a.jpg&w=200&app_id=demo&access-token=x");
        assert_eq!(
            canonical_string("/file/download/avatar", "demo", &q, 1767225600),
            "GET\n/file/download/avatar\ndemo\nobject_name=avatar%2Fuser%2F42%2Fa.jpg&w=200\n1767225600"
        );
    }

    #[test]
    fn sorting_and_encoding() {
        let q = Query::parse("b=2&a=z&a=y&c=%E4%BD%A0+~*");
        assert_eq!(canonical_query(&q), "a=y&a=z&b=2&c=%E4%BD%A0%20~%2A");
    }

    #[test]
    fn verify_rotation_expiry_tamper() {
        let old = Secret::new("old-secret-0123456789");
        let new = Secret::new("new-secret-0123456789");
        let q = Query::parse("object_name=avatar/user/42/a.jpg");
        let s = sign("/file/download/avatar", "demo", &q, 2000, &old);
        let both = [new.clone(), old.clone()];
        assert!(
            verify_sdk_sign(&s, "/file/download/avatar", "demo", &q, &both, 1000, 86400).is_ok()
        );
        assert!(
            verify_sdk_sign(&s, "/file/download/avatar", "demo", &q, &[new], 1000, 86400).is_err()
        );
        let e = verify_sdk_sign(&s, "/file/download/avatar", "demo", &q, &both, 3000, 86400)
            .unwrap_err();
        assert_eq!(e.message(), "sdk_sign has expired");
        let far =
            verify_sdk_sign(&s, "/file/download/avatar", "demo", &q, &both, 1000, 500).unwrap_err();
        assert!(far.message().contains("max_sign_ttl"));
        let q2 = Query::parse("object_name=avatar/user/43/a.jpg");
        assert!(
            verify_sdk_sign(&s, "/file/download/avatar", "demo", &q2, &both, 1000, 86400).is_err()
        );
        assert!(verify_sdk_sign("nonsense", "/p", "demo", &q, &both, 1000, 86400).is_err());
    }
}
