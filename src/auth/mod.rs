//! Credentials (SPEC §2-3): where they are read from, which one a route takes, and
//! the acting-identity rules. One file per credential:
//! [`access_token`], [`store_token`], [`file_sign`], [`sdk_sign`]; [`acting`] holds
//! the `user_id` / `group_id` rules and [`jwt`] the shared HS256 verifier.

pub mod access_token;
pub mod acting;
pub mod claims;
pub mod file_sign;
pub mod jwt;
pub mod sdk_sign;
pub mod store_token;
pub mod verified;

use http::HeaderMap;

use crate::config::AppConfig;
use crate::error::ApiError;
use crate::query::Query;
pub use acting::Actor;
use verified::{TokenUse, VerifiedTokens};

/// A verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Access token of a user.
    User {
        /// The user id.
        sub: i64,
    },
    /// Access token of an admin.
    Admin {
        /// The admin's id.
        sub: i64,
        /// Groups administered; `None` = all groups of the app.
        groups: Option<Vec<i64>>,
    },
    /// Store token: downloads only.
    Store {
        /// The user id.
        sub: i64,
        /// Object key or prefix the token is limited to.
        obj: Option<String>,
    },
    /// A valid sdk_sign: this exact URL, no identity.
    SignedUrl,
}

impl Principal {
    /// The token's `sub`, if it has one.
    pub fn sub(&self) -> Option<i64> {
        match self {
            Principal::User { sub }
            | Principal::Admin { sub, .. }
            | Principal::Store { sub, .. } => Some(*sub),
            Principal::SignedUrl => None,
        }
    }
}

/// Which credentials a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Upload routes: an access token only.
    AccessToken,
    /// Download routes: an access token, a store token or an sdk_sign.
    Download,
}

/// The credential-bearing parts of a request, from headers or the query.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `access-token`.
    pub access_token: Option<String>,
    /// `store_token`.
    pub store_token: Option<String>,
    /// `sdk_sign`.
    pub sdk_sign: Option<String>,
    /// `user_id` header.
    pub user_id: Option<i64>,
    /// `group_id` header.
    pub group_id: Option<i64>,
}

/// A parameter taken from the header or the query parameter of the same name; where
/// both are given they must agree (SPEC §2).
pub fn header_or_query(
    headers: &HeaderMap,
    query: &Query,
    name: &str,
) -> Result<Option<String>, ApiError> {
    let header = match headers.get(name) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_param(name, "header is not valid text"))?
                .trim()
                .to_string(),
        ),
        None => None,
    }
    .filter(|v| !v.is_empty());
    let query = query
        .get(name)?
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    match (header, query) {
        (Some(h), Some(q)) if h != q => Err(ApiError::bad_param(
            name,
            "header and query parameter disagree",
        )),
        (h, q) => Ok(h.or(q)),
    }
}

/// An int64 identity header; present but empty or repeated is malformed.
fn int64_header(headers: &HeaderMap, name: &str) -> Result<Option<i64>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_param(name, "given more than once"));
    }
    v.to_str()
        .unwrap_or("")
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| ApiError::bad_param(name, "must be an int64"))
}

impl Credentials {
    /// Reads every credential of a request.
    pub fn extract(headers: &HeaderMap, query: &Query) -> Result<Credentials, ApiError> {
        Ok(Credentials {
            access_token: header_or_query(headers, query, "access-token")?,
            store_token: header_or_query(headers, query, "store_token")?,
            sdk_sign: header_or_query(headers, query, "sdk_sign")?,
            user_id: int64_header(headers, "user_id")?,
            group_id: int64_header(headers, "group_id")?,
        })
    }
}

/// What a request is checked against for an sdk_sign.
pub struct SignedRequest<'a> {
    /// The request path.
    pub path: &'a str,
    /// The decoded query.
    pub query: &'a Query,
}

/// A token's principal: remembered from an earlier verification, else verified now
/// (and remembered when valid).
fn remembered(
    verified: &VerifiedTokens,
    token: &str,
    app_id: &str,
    used_as: TokenUse,
    verify: impl FnOnce() -> Result<(Principal, u64), ApiError>,
) -> Result<Principal, ApiError> {
    if let Some(principal) = verified.get(token, app_id, used_as) {
        return Ok(principal);
    }
    let (principal, exp) = verify()?;
    verified.insert(token, app_id, used_as, principal.clone(), exp);
    Ok(principal)
}

/// Verifies the credential a route takes and applies the acting-identity rules.
/// Where several credentials are sent, the first of access token, store token and
/// sdk_sign decides; an invalid one is never skipped for the next.
pub fn authenticate(
    app_id: &str,
    app: &AppConfig,
    creds: &Credentials,
    access: Access,
    request: SignedRequest<'_>,
    verified: &VerifiedTokens,
) -> Result<Actor, ApiError> {
    let principal = if let Some(token) = &creds.access_token {
        remembered(verified, token, app_id, TokenUse::Access, || {
            access_token::verify_access_token_claims(token, app_id, &app.secrets)
        })?
    } else if access == Access::AccessToken {
        return Err(ApiError::no_credential(
            "access-token is required (header or query parameter)",
        ));
    } else if let Some(token) = &creds.store_token {
        remembered(verified, token, app_id, TokenUse::Store, || {
            store_token::verify_store_token_claims(token, app_id, &app.secrets)
        })?
    } else if let Some(sign) = &creds.sdk_sign {
        sdk_sign::verify_sdk_sign(
            sign,
            request.path,
            app_id,
            request.query,
            &app.secrets,
            jwt::now_secs(),
            app.max_sign_ttl.as_secs(),
        )?;
        Principal::SignedUrl
    } else {
        return Err(ApiError::no_credential(
            "a credential is required: access-token, store_token or sdk_sign",
        ));
    };
    acting::resolve_actor(principal, creds.user_id, creds.group_id)
}
