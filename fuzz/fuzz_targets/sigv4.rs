//! Presigned URLs as the embedded store verifies them (`storage::sigv4`): the query's
//! `X-Amz-*` parameters, the signed headers, the expiry.
//!
//! Asserts, beyond "no panic":
//! - a URL filegate presigns (any host, any signed headers) verifies within its
//!   lifetime and is `Expired` after it;
//! - the same URL fails for another method, another key, one more query parameter, or
//!   a signed header with another value;
//! - any other request is refused (a forged signature never verifies).
#![no_main]

use std::time::{Duration, SystemTime};

use filegate::config::Secret;
use filegate::sigv4::{request_url, PresignError, S3Signer};
use filegate_fuzz::segment;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any request.
    Raw {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        at: i32,
    },
    /// A URL filegate presigned.
    Presigned {
        put: bool,
        host: Option<String>,
        key: (String, String),
        query: Option<(String, String)>,
        content_type: Option<String>,
        headers: Vec<(String, String)>,
        ttl: u32,
        after: u32,
    },
}

fn signer() -> S3Signer {
    S3Signer::new("fuzz-key-id", Secret::new("fuzz-store-secret"), "us-east-1")
}

fuzz_target!(|input: Input| match input {
    Input::Raw {
        method,
        url,
        headers,
        at,
    } => {
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let now = if at < 0 {
            SystemTime::now() - Duration::from_secs(u64::from(at.unsigned_abs()))
        } else {
            SystemTime::now() + Duration::from_secs(u64::from(at.unsigned_abs()))
        };
        assert!(signer()
            .verify_presigned(&method, &url, &lookup, now)
            .is_err());
    }
    Input::Presigned {
        put,
        host,
        key,
        query,
        content_type,
        headers,
        ttl,
        after,
    } => {
        let method = if put { "PUT" } else { "GET" };
        let path = format!(
            "/demo/{}/{}.jpg",
            segment(&key.0, "a"),
            segment(&key.1, "b")
        );
        let host = host.unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let mut path_and_query = path.clone();
        if let Some((k, v)) = &query {
            let pair: String = form_urlencoded::Serializer::new(String::new())
                .append_pair(&format!("q{}", segment(k, "k")), v)
                .finish();
            path_and_query = format!("{path}?{}", pair.replace('+', "%20"));
        }
        // As the store builds it from the Host header and the request target.
        let Ok(base) = request_url(&host, &path_and_query) else {
            return;
        };
        // One value per signed header name, as the store looks them up.
        let mut signed: Vec<(&str, &str)> = Vec::new();
        for (k, v) in content_type
            .as_deref()
            .map(|t| ("content-type", t))
            .into_iter()
            .chain(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        {
            let taken = signed.iter().any(|(n, _)| n.eq_ignore_ascii_case(k));
            if !taken && !k.eq_ignore_ascii_case("host") {
                signed.push((k, v));
            }
        }
        let ttl = Duration::from_secs(u64::from(ttl % (7 * 24 * 3600)) + 1);
        let now = SystemTime::now();
        let Ok(url) = signer().presign(method, &base, &signed, ttl, now) else {
            return;
        };
        let lookup = |name: &str| {
            signed
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        };
        let headers = &lookup;
        let verify = |m: &str, u: &str, h: &dyn Fn(&str) -> Option<String>, at: SystemTime| {
            signer().verify_presigned(m, u, h, at)
        };
        let after = Duration::from_secs(u64::from(after) % (ttl.as_secs() + 3600));
        let result = verify(method, &url, headers, now + after);
        // X-Amz-Date has whole seconds: the last second of the lifetime may go either way.
        if after + Duration::from_secs(1) < ttl {
            assert_eq!(result, Ok(()), "{url}");
        } else if after > ttl {
            assert_eq!(result, Err(PresignError::Expired), "{url}");
        }
        let other_method = if put { "GET" } else { "PUT" };
        assert!(verify(other_method, &url, headers, now).is_err());
        let other_key = url.replacen(&path, &format!("{path}x"), 1);
        assert!(verify(method, &other_key, headers, now).is_err());
        assert!(verify(method, &format!("{url}&extra=1"), headers, now).is_err());
        // The same query under another path, sent with any Host: never valid.
        let query_part = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let moved = format!("{host}{path}#");
        let forged = format!("http://{moved}/demo/other.jpg?{query_part}");
        assert!(verify(method, &forged, headers, now).is_err());
        assert!(request_url(&moved, "/demo/other.jpg").is_err());
        if let Some(t) = &content_type {
            let wrong = |name: &str| match name {
                "content-type" => Some(format!("{t}x")),
                _ => lookup(name),
            };
            assert!(verify(method, &url, &wrong, now).is_err());
        }
    }
});
