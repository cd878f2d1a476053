//! What the pass-through may reach (SPEC §1): the objects of the configured bucket,
//! as the URLs filegate hands out use them, and nothing else. Listings, other
//! buckets, bucket operations and object sub-resources (`?acl`, `?uploads`,
//! `?tagging`...) are refused by filegate itself, before the store sees them.

use http::Method;

use crate::error::ApiError;
use crate::storage::keys::ObjectKey;

/// A request the pass-through forwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// One object of the bucket: GET, HEAD, PUT (presigned uploads) or a preflight.
    Object(ObjectKey),
    /// The bucket itself: a browser form upload (POST) or a preflight.
    FormUpload,
}

/// Query parameters an object request may carry: presigned-URL signatures of the S3
/// and OSS dialects, and the `response-*` overrides they sign.
fn allowed_parameter(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("x-amz-")
        || lower.starts_with("response-")
        || matches!(
            lower.as_str(),
            "x-id"
                | "awsaccesskeyid"
                | "ossaccesskeyid"
                | "expires"
                | "signature"
                | "security-token"
        )
}

fn refused(what: &str) -> ApiError {
    ApiError::forbidden(format!(
        "the pass-through reaches only the objects of the configured bucket: {what} is refused"
    ))
}

/// The request target as the store is sent it, in origin form (`/path?query`): the
/// target itself when it is in origin form, the path and query of an absolute-form
/// target (`http://host/path?query`; its scheme and authority are dropped, the store
/// is always the configured one). Any other form (`*`, `host:port`, a bare name) and a
/// path whose first segment is empty (`//bucket/key`, which stores read differently)
/// are refused: what is checked is exactly what is forwarded.
pub fn origin_form(raw_target: &[u8]) -> Result<&str, ApiError> {
    let target = std::str::from_utf8(raw_target)
        .map_err(|_| refused("a request target that is not UTF-8"))?;
    let lower_starts = |prefix: &str| {
        target
            .get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    let path_and_query = if target.starts_with('/') {
        target
    } else if let Some(scheme) = ["http://", "https://"]
        .into_iter()
        .find(|s| lower_starts(s))
    {
        let rest = &target[scheme.len()..];
        match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => return Err(refused("an absolute target without a path")),
        }
    } else {
        return Err(refused(
            "a request target in neither origin nor absolute form",
        ));
    };
    if path_and_query.starts_with("//") {
        return Err(refused("a path whose first segment is empty"));
    }
    Ok(path_and_query)
}

/// Checks a request target (raw, as received) against the bucket; the origin-form
/// target to forward, and what it reaches.
pub fn check_target<'t>(
    method: &Method,
    raw_target: &'t [u8],
    bucket: &str,
    path_style: bool,
) -> Result<(&'t str, Reach), ApiError> {
    let target = origin_form(raw_target)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let reach = check(method, path, query, bucket, path_style)?;
    Ok((target, reach))
}

/// Checks a request outside `/file/` against the bucket. `path_style`: paths are
/// `/<bucket>/<key>`; else (virtual-host style) `/<key>`.
pub fn check(
    method: &Method,
    path: &str,
    raw_query: &str,
    bucket: &str,
    path_style: bool,
) -> Result<Reach, ApiError> {
    let rest = if path_style {
        let Some(rest) = path.strip_prefix('/').and_then(|p| p.strip_prefix(bucket)) else {
            return Err(refused("a path outside the bucket"));
        };
        match rest {
            "" | "/" => None,
            r if r.starts_with('/') => Some(&r[1..]),
            // `/<bucket>x/...`: another bucket.
            _ => return Err(refused("another bucket")),
        }
    } else {
        match path {
            "" | "/" => None,
            p => Some(p.strip_prefix('/').unwrap_or(p)),
        }
    };
    let names: Vec<String> = form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    match rest {
        None => {
            let form_upload =
                (method == Method::POST || method == Method::OPTIONS) && names.is_empty();
            if form_upload {
                Ok(Reach::FormUpload)
            } else if method == Method::GET || method == Method::HEAD {
                Err(refused("a bucket listing"))
            } else {
                Err(refused("a bucket operation"))
            }
        }
        Some(key) => {
            if !matches!(
                *method,
                Method::GET | Method::HEAD | Method::PUT | Method::OPTIONS
            ) {
                return Err(refused(&format!("{method} of an object")));
            }
            if let Some(name) = names.iter().find(|n| !allowed_parameter(n)) {
                return Err(refused(&format!("the sub-resource or parameter `{name}`")));
            }
            let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            ObjectKey::parse(&key)
                .map(Reach::Object)
                .map_err(|_| refused("a name that is not an object key"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_style(method: Method, path: &str, query: &str) -> Result<Reach, ApiError> {
        check(&method, path, query, "filegate", true)
    }

    #[test]
    fn objects_of_the_bucket_pass() {
        let presigned = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a&X-Amz-Date=1&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=ff&response-content-disposition=attachment";
        for m in [Method::GET, Method::HEAD, Method::PUT] {
            assert!(matches!(
                path_style(m, "/filegate/demo/chat/1/2/20261201/a.bin", presigned),
                Ok(Reach::Object(_))
            ));
        }
        assert!(matches!(
            path_style(Method::POST, "/filegate", ""),
            Ok(Reach::FormUpload)
        ));
        assert!(matches!(
            check(
                &Method::GET,
                "/demo/avatar/user/1/a.jpg",
                "",
                "filegate",
                false
            ),
            Ok(Reach::Object(_))
        ));
    }

    #[test]
    fn listings_buckets_and_operations_are_refused() {
        let cases = [
            (Method::GET, "/", ""),
            (Method::GET, "/otherbucket/x", ""),
            (Method::GET, "/filegatex/x", ""),
            (Method::GET, "/filegate", "list-type=2"),
            (Method::GET, "/filegate/", ""),
            (Method::PUT, "/filegate", ""),
            (Method::DELETE, "/filegate/demo/a.bin", ""),
            (Method::POST, "/filegate/demo/a.bin", "uploads"),
            (Method::GET, "/filegate/demo/a.bin", "acl"),
            (Method::PUT, "/filegate/demo/a.bin", "tagging"),
            (Method::POST, "/filegate", "delete"),
            (Method::GET, "/filegate/demo/../x", ""),
        ];
        for (m, p, q) in cases {
            let e = path_style(m.clone(), p, q).unwrap_err();
            assert_eq!(e.status(), 403, "{m} {p}?{q}");
        }
        assert!(check(&Method::GET, "/", "list-type=2", "filegate", false).is_err());
    }

    #[test]
    fn the_target_checked_is_the_target_forwarded() {
        let key = "/filegate/demo/chat/1/2/20261201/a.bin";
        for path_style in [true, false] {
            let bucket_path = if path_style {
                key
            } else {
                "/demo/chat/1/2/20261201/a.bin"
            };
            let ok = check_target(&Method::GET, bucket_path.as_bytes(), "filegate", path_style);
            assert_eq!(ok.map(|(t, _)| t).ok(), Some(bucket_path), "{path_style}");
            let absolute = format!("http://elsewhere.example{bucket_path}?X-Amz-Signature=1");
            let (forwarded, _) =
                check_target(&Method::GET, absolute.as_bytes(), "filegate", path_style).unwrap();
            assert_eq!(forwarded, format!("{bucket_path}?X-Amz-Signature=1"));
            for bad in [
                format!("/{bucket_path}"),
                "*".to_string(),
                "foo:bar".to_string(),
                "127.0.0.1:9000".to_string(),
                "http://elsewhere.example".to_string(),
                "http://elsewhere.example?list-type=2".to_string(),
                format!("http://elsewhere.example/{bucket_path}"),
            ] {
                for m in [Method::GET, Method::POST, Method::OPTIONS, Method::PUT] {
                    let e = check_target(&m, bad.as_bytes(), "filegate", path_style).unwrap_err();
                    assert_eq!(e.status(), 403, "{m} {bad} path_style={path_style}");
                }
            }
        }
        assert!(check_target(&Method::GET, b"/filegate/\xff", "filegate", true).is_err());
    }
}
