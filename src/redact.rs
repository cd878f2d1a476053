//! Credential redaction for every line filegate (or pingora, or any library) logs.
//!
//! Requests carry credentials in their query (`access-token=`, `sdk_sign=`,
//! `X-Amz-Signature=`...) and headers, and pingora prints request summaries and, at
//! debug and trace level, whole request heads. [`redact`] replaces the value of every
//! credential-bearing name, and anything shaped like a JWT, with `[redacted]`, whatever
//! the line's layout: `name=value` (queries, form bodies), `"name": "value"` (a header
//! map's `Debug`), `name: value` (header lines).

use std::borrow::Cow;

/// Names whose values are credentials, lower case. Matching is case-insensitive.
const CREDENTIAL_NAMES: [&str; 19] = [
    "access-token",
    "store_token",
    "sdk_sign",
    "file_sign",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "signature",
    "ossaccesskeyid",
    "policy",
    "authorization",
    "security-token",
    "x-oss-signature",
    "x-oss-credential",
    "awsaccesskeyid",
    "proxy-authorization",
    "x-filegate-peer",
    "access_key_id",
    "secret_access_key",
];

/// What replaces a value.
pub const REDACTED: &str = "[redacted]";

/// `text` with every credential value replaced; borrowed when there is none.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !might_hold_credentials(text) {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(value_start) = credential_value_at(bytes, i) {
            let value_end = value_end(bytes, value_start);
            if value_end > value_start {
                out.push_str(&text[copied..value_start]);
                out.push_str(REDACTED);
                copied = value_end;
                i = value_end;
                continue;
            }
        }
        if let Some(end) = jwt_at(bytes, i) {
            out.push_str(&text[copied..i]);
            out.push_str(REDACTED);
            copied = end;
            i = end;
            continue;
        }
        i += 1;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// A cheap pre-check: every credential name and a JWT contain one of these.
fn might_hold_credentials(text: &str) -> bool {
    let lower = |b: u8| b.to_ascii_lowercase();
    text.as_bytes().windows(3).any(|w| {
        let w = [lower(w[0]), lower(w[1]), lower(w[2])];
        matches!(
            &w,
            b"tok" | b"sig" | b"pol" | b"aut" | b"cre" | b"key" | b"eyj" | b"pee"
        )
    })
}

/// When a credential name (not part of a longer name) starts at `i` and is followed by
/// a separator, where its value starts. Names and separators are found literal and
/// percent-encoded once or twice (`%26X-Amz-Signature%3D`, `%2526...%253D`): a
/// presigned URL inside another URL (a processor's `{source_url}`) is still a
/// credential.
fn credential_value_at(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_name_byte(bytes[i - 1]) && escape_ending_at(bytes, i).is_none() {
        return None;
    }
    let name = CREDENTIAL_NAMES.iter().find(|name| {
        let n = name.len();
        bytes.len() >= i + n && bytes[i..i + n].eq_ignore_ascii_case(name.as_bytes())
    })?;
    let mut j = i + name.len();
    if j < bytes.len() && is_name_byte(bytes[j]) {
        return None;
    }
    // Separators: `=`, `: `, `": "`, `=>`, with optional quotes and spaces, any of
    // them percent-encoded.
    let mut separated = false;
    while j < bytes.len() {
        let (byte, len) = match escape_at(bytes, j) {
            Some(escaped) => escaped,
            None => (bytes[j], 1),
        };
        if !matches!(byte, b'"' | b'\'' | b' ' | b':' | b'=' | b'>' | b'+') {
            break;
        }
        separated |= matches!(byte, b'=' | b':');
        j += len;
    }
    separated.then_some(j)
}

/// Where a value ends: at a delimiter of queries, headers or `Debug` output, literal
/// or percent-encoded. An `Authorization` value runs on through its comma-separated
/// parameters.
fn value_end(bytes: &[u8], start: usize) -> usize {
    let mut j = start;
    while j < bytes.len() && !matches!(bytes[j], b'&' | b'"' | b'\'' | b'\r' | b'\n' | b'}' | b']')
    {
        if let Some((b'&' | b'"' | b'\'', _)) = escape_at(bytes, j) {
            break;
        }
        // A space ends a query value but not an `Authorization: AWS4-HMAC-SHA256 ...`
        // or `Bearer ...` value, which runs to the end of its quoted or header value.
        if bytes[j] == b' ' && !starts_scheme(&bytes[start..j]) {
            break;
        }
        if bytes[j] == b',' && !starts_scheme(&bytes[start..j]) {
            break;
        }
        j += 1;
    }
    j
}

/// The byte a percent escape at `i` stands for (`%3D`, or `%253D` encoded twice) and
/// the escape's length.
fn escape_at(bytes: &[u8], i: usize) -> Option<(u8, usize)> {
    let hex = |at: usize| -> Option<u8> {
        let pair = bytes.get(at..at + 2)?;
        u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()
    };
    if bytes.get(i) != Some(&b'%') {
        return None;
    }
    match hex(i + 1)? {
        0x25 if bytes.get(i + 3).is_some_and(|b| b.is_ascii_hexdigit()) => Some((hex(i + 3)?, 5)),
        byte => Some((byte, 3)),
    }
}

/// The byte of a percent escape (once or twice encoded) that ends right before `i`.
fn escape_ending_at(bytes: &[u8], i: usize) -> Option<u8> {
    [5, 3].into_iter().find_map(|len| {
        let at = i.checked_sub(len)?;
        escape_at(bytes, at).and_then(|(byte, l)| (l == len).then_some(byte))
    })
}

fn starts_scheme(value: &[u8]) -> bool {
    let v = String::from_utf8_lossy(value).to_ascii_lowercase();
    v.starts_with("aws4-")
        || v.starts_with("bearer")
        || v.starts_with("basic")
        || v.starts_with("aws ")
        || v == "aws"
        || v.starts_with("oss ")
        || v == "oss"
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A JWT (`eyJ` + base64url `.` base64url `.` base64url) starting at `i`: its end.
fn jwt_at(bytes: &[u8], i: usize) -> Option<usize> {
    if !bytes[i..].starts_with(b"eyJ") || (i > 0 && is_b64(bytes[i - 1])) {
        return None;
    }
    let mut j = i;
    let mut dots = 0;
    while j < bytes.len() && (is_b64(bytes[j]) || bytes[j] == b'.') {
        if bytes[j] == b'.' {
            dots += 1;
        }
        j += 1;
    }
    (dots >= 2 && j - i >= 20).then_some(j)
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_redacted() {
        let line = "Fail to filter request: GET /file/download/chat?app_id=demo&file_sign=abc.def&access-token=xyz&w=2, Host: a";
        assert_eq!(
            redact(line),
            "Fail to filter request: GET /file/download/chat?app_id=demo&file_sign=[redacted]&access-token=[redacted]&w=2, Host: a"
        );
        let s3 = "GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F2026&X-Amz-Signature=00ff&x-id=GetObject";
        assert_eq!(
            redact(s3),
            "GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]&x-id=GetObject"
        );
        assert_eq!(
            redact("?OSSAccessKeyId=k&Signature=s%3D&Expires=1"),
            "?OSSAccessKeyId=[redacted]&Signature=[redacted]&Expires=1"
        );
    }

    #[test]
    fn encoded_credentials_are_redacted() {
        // A presigned URL percent-encoded into a processor URL's path.
        let once = "http://127.0.0.1:9/unsafe/300x0/http%3A%2F%2Fs%2Fb%2Fa.jpg%3FX-Amz-Algorithm%3DAWS4-HMAC-SHA256%26X-Amz-Credential%3DAK%252F2026%26X-Amz-Signature%3D00ff%26x-id%3DGetObject";
        assert_eq!(
            redact(once),
            "http://127.0.0.1:9/unsafe/300x0/http%3A%2F%2Fs%2Fb%2Fa.jpg%3FX-Amz-Algorithm%3DAWS4-HMAC-SHA256%26X-Amz-Credential%3D[redacted]%26X-Amz-Signature%3D[redacted]%26x-id%3DGetObject"
        );
        let twice = "u=http%253A%252F%252Fs%252Fa%253FSignature%253Ds%252B1%2526Expires%253D9%2526OSSAccessKeyId%253Dk";
        assert_eq!(
            redact(twice),
            "u=http%253A%252F%252Fs%252Fa%253FSignature%253D[redacted]%2526Expires%253D9%2526OSSAccessKeyId%253D[redacted]"
        );
        // A form body: `+` for spaces, `%3D` inside the value.
        assert_eq!(
            redact("a=1&authorization=AWS4-HMAC-SHA256+Credential%3DAK%2F1&b=2"),
            "a=1&authorization=[redacted]&b=2"
        );
        assert_eq!(
            redact("x-filegate-peer: 1700000000.n0nce.abcdef\r\n"),
            "x-filegate-peer: [redacted]\r\n"
        );
        // Any escape before a name counts as a delimiter: erring on the side of
        // redacting.
        assert_eq!(redact("%41policy=1"), "%41policy=[redacted]");
        assert_eq!(redact("100%25"), "100%25");
    }

    #[test]
    fn header_maps_and_lines_are_redacted() {
        let debug = r#"headers: {"access-token": "tok.en.x", "authorization": "AWS4-HMAC-SHA256 Credential=AK/1, SignedHeaders=host, Signature=ab", "accept": "*/*"}"#;
        assert_eq!(
            redact(debug),
            r#"headers: {"access-token": "[redacted]", "authorization": "[redacted]", "accept": "*/*"}"#
        );
        assert_eq!(
            redact("Authorization: Bearer s3cr3t\r\n"),
            "Authorization: [redacted]\r\n"
        );
    }

    #[test]
    fn jwts_anywhere_and_innocent_lines() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_eq!(
            redact(&format!("bad token {jwt} seen")),
            "bad token [redacted] seen"
        );
        assert!(matches!(redact("no credentials here"), Cow::Borrowed(_)));
        // Longer names that merely contain a credential name are left alone.
        assert_eq!(
            redact("sdk_signature_ok=1 xpolicy=2"),
            "sdk_signature_ok=1 xpolicy=2"
        );
        assert_eq!(redact("policy"), "policy");
    }
}
