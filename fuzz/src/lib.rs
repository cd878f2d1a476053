//! Helpers shared by the fuzz targets in `fuzz_targets/`: fixed secrets, crafted
//! JWTs, grammar-valid key segments and a multipart/form-data writer.

use base64::Engine;
use filegate::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The secret that signs what a target mints.
pub const SECRET_A: &str = "fuzz-secret-a-0123456789";
/// Another app secret: verifying with it alone must fail.
pub const SECRET_B: &str = "fuzz-secret-b-0123456789";

/// `[A]`.
pub fn only_a() -> Vec<Secret> {
    vec![Secret::new(SECRET_A)]
}

/// `[B]`.
pub fn only_b() -> Vec<Secret> {
    vec![Secret::new(SECRET_B)]
}

/// `[B, A]`.
pub fn rotated() -> Vec<Secret> {
    vec![Secret::new(SECRET_B), Secret::new(SECRET_A)]
}

/// base64url without padding, as JWTs and sdk_sign use.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// HMAC-SHA256 of `message` under `secret`.
pub fn hs256(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// A JWT of the given header and claims bytes, signed HS256 with `secret`.
pub fn craft_jwt(header: &[u8], claims: &[u8], secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64url(header), b64url(claims));
    let sig = hs256(secret, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&sig))
}

/// A key segment that passes the grammar, made of the allowed bytes of `raw`
/// (`fallback` when none are left).
pub fn segment(raw: &str, fallback: &str) -> String {
    let mut s: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .take(40)
        .collect();
    if s.is_empty() {
        s = fallback.to_string();
    }
    s
}

/// One part of a multipart/form-data body.
pub struct Part<'a> {
    /// The field name.
    pub name: &'a str,
    /// `filename=`, for file parts.
    pub file_name: Option<&'a str>,
    /// The part's `Content-Type`.
    pub content_type: Option<&'a str>,
    /// The value or the file's bytes.
    pub body: &'a [u8],
}

/// Writes a multipart/form-data body with `boundary`.
pub fn multipart_body(boundary: &str, parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{}\"", p.name).as_bytes(),
        );
        if let Some(f) = p.file_name {
            out.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if let Some(t) = p.content_type {
            out.extend_from_slice(format!("Content-Type: {t}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(p.body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}
