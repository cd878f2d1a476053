//! HTTP header values shared by every layer (a leaf module): the request headers a
//! handler reads, `If-None-Match` matching, and the RFC 6266 form of a
//! `Content-Disposition` (which types may render inline is the type table's,
//! [`crate::file_type::renders_safely_inline`]; when each is used,
//! [`crate::http::presentation`]'s).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// The few request headers handlers read, copied out of the session so a handler can
/// write to it while holding them.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders {
    /// `Range`.
    pub range: Option<String>,
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
    /// `Accept`.
    pub accept: Option<String>,
}

impl RequestHeaders {
    /// Copies the headers out of a request.
    pub fn from_map(headers: &http::HeaderMap) -> Self {
        let text = |name: http::header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        RequestHeaders {
            range: text(http::header::RANGE),
            if_none_match: text(http::header::IF_NONE_MATCH),
            accept: text(http::header::ACCEPT),
        }
    }
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, RFC 9110 §13.1.2).
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = bare(etag);
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || bare(t) == want)
}

/// RFC 5987 `attr-char`: what may stand unencoded in `filename*`.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` per RFC 6266: an ASCII `filename` fallback and the exact
/// UTF-8 name in `filename*`.
pub fn content_disposition(inline: bool, name: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "{kind}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR_CHAR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_encodes_utf8_and_quotes() {
        assert_eq!(
            content_disposition(false, "報告 \"v2\".pdf"),
            "attachment; filename=\"__ _v2_.pdf\"; filename*=UTF-8''%E5%A0%B1%E5%91%8A%20%22v2%22.pdf"
        );
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"x\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }
}
