//! Credentials (SPEC §2-3): where they are read from, which one a route takes, and
//! the acting-identity rules. One file per credential:
//! [`access_token`], [`store_token`], [`file_sign`], [`sdk_sign`]; [`acting`] holds
//! the `user_id` / `group_id` rules and [`jwt`] the shared HS256 verifier.

pub mod access_token;
pub mod acting;
pub mod claims;
pub mod credentials;
pub mod file_sign;
pub mod jwt;
pub mod principal;
pub mod sdk_sign;
pub mod store_token;
pub mod verified;

use crate::config::AppConfig;
use crate::error::ApiError;
use crate::query::Query;
use crate::route_table::Access;
pub use acting::Actor;
pub use credentials::{header_or_query, Credentials};
pub use principal::Principal;
use verified::{TokenUse, VerifiedTokens};

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
            crate::clock::now_secs(),
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
