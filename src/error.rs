//! The one error type of the `/file` boundary: every failure knows its HTTP status,
//! its body code (SPEC §4) and a public message; internal detail goes to the log only.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;

/// Business codes of the product (SPEC §4). Other errors use the HTTP status as code.
pub mod codes {
    /// Unknown `app_id`.
    pub const UNKNOWN_APP: u32 = 40000;
    /// No credential at all.
    pub const NO_CREDENTIAL: u32 = 10003;
    /// Credential invalid, forged or expired.
    pub const INVALID_CREDENTIAL: u32 = 10008;
    /// The store failed or was too slow.
    pub const STORAGE_ERROR: u32 = 10009;
    /// Not allowed (acting-identity rules, token scope).
    pub const NO_PERMISSION: u32 = 10010;
}

/// A failure answered to the client as the JSON envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: u32,
    message: Cow<'static, str>,
    retry_after: Option<u32>,
    allow: Option<&'static str>,
    /// For a 416: the size the `Content-Range: bytes */size` header names.
    unsatisfiable_size: Option<u64>,
    detail: Option<String>,
}

impl ApiError {
    /// An error whose body code is its HTTP status.
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            code: u32::from(status.as_u16()),
            message: message.into(),
            retry_after: None,
            allow: None,
            unsatisfiable_size: None,
            detail: None,
        }
    }

    /// Replaces the body code with a business code.
    pub fn with_code(mut self, code: u32) -> Self {
        self.code = code;
        self
    }

    /// Internal detail for the log; never sent to the client.
    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// 400: a parameter is missing or malformed; the message names it.
    pub fn bad_param(name: &str, problem: &str) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, format!("{name}: {problem}"))
    }

    /// 401/40000: the app_id names no configured app.
    pub fn unknown_app() -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unknown app_id").with_code(codes::UNKNOWN_APP)
    }

    /// 401/10003: no credential was given.
    pub fn no_credential(what: &'static str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, what).with_code(codes::NO_CREDENTIAL)
    }

    /// 401/10008: the credential is invalid, forged, expired or for another app.
    pub fn invalid_credential(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message).with_code(codes::INVALID_CREDENTIAL)
    }

    /// 403/10010: the caller may not do this; the message names the rule.
    pub fn forbidden(rule: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, rule).with_code(codes::NO_PERMISSION)
    }

    /// 404: no such route or object.
    pub fn not_found(what: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, what)
    }

    /// 405 with the `Allow` header.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method not allowed; use {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    /// 413: the request or the source is too large.
    pub fn too_large(message: impl Into<Cow<'static, str>>) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 416 with `Content-Range: bytes */size`: the `Range` asked for lies beyond an
    /// object of `size` bytes.
    pub fn range_not_satisfiable(size: u64) -> Self {
        let mut e = ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            format!("range not satisfiable: the object is {size} bytes"),
        );
        e.unsatisfiable_size = Some(size);
        e
    }

    /// 502/10009: the store failed.
    pub fn store_failed(detail: impl fmt::Display) -> Self {
        ApiError::new(StatusCode::BAD_GATEWAY, "storage error")
            .with_code(codes::STORAGE_ERROR)
            .with_detail(detail)
    }

    /// 502/10009: the store's TLS certificate did not verify (the connection was
    /// refused before any request was sent; there is no plaintext fallback).
    pub fn store_untrusted(detail: impl fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "storage error: the store's TLS certificate did not verify",
        )
        .with_code(codes::STORAGE_ERROR)
        .with_detail(detail)
    }

    /// 504/10009: the store did not answer in time.
    pub fn store_timeout(detail: impl fmt::Display) -> Self {
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "storage timeout")
            .with_code(codes::STORAGE_ERROR)
            .with_detail(detail)
    }

    /// 503 with `Retry-After`: overloaded, try again.
    pub fn overloaded(retry_after_secs: u32) -> Self {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy: too many transforms in flight, retry later",
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// 429 with `Retry-After`: over a rate limit (`by`: `ip` or `user`).
    pub fn rate_limited(retry_after_secs: u32, by: &str) -> Self {
        let message = match by {
            "user" => "too many requests for this user: slow down",
            _ => "too many requests from this address: slow down",
        };
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, message);
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// 500: a bug or an unexpected local failure; the detail is logged.
    pub fn internal(detail: impl fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error").with_detail(detail)
    }

    /// The honest HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body code.
    pub fn code(&self) -> u32 {
        self.code
    }

    /// The public message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Seconds for `Retry-After`, if any.
    pub fn retry_after(&self) -> Option<u32> {
        self.retry_after
    }

    /// Methods for `Allow`, if any.
    pub fn allow(&self) -> Option<&'static str> {
        self.allow
    }

    /// For a 416, the object's size (for `Content-Range`).
    pub fn unsatisfiable_size(&self) -> Option<u64> {
        self.unsatisfiable_size
    }

    /// Internal detail for the log.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}
