//! Access tokens (`access-token`): a user's or an admin's identity on every route.

use crate::auth::claims::{TokenClaims, TokenKind};
use crate::auth::jwt::{self, Expiry};
use crate::auth::principal::Principal;
use crate::config::Secret;
use crate::error::ApiError;

/// Verifies an access token for `app_id` and returns its principal.
pub fn verify_access_token(
    token: &str,
    app_id: &str,
    secrets: &[Secret],
) -> Result<Principal, ApiError> {
    verify_access_token_claims(token, app_id, secrets).map(|(p, _)| p)
}

/// Like [`verify_access_token`], also returning the token's `exp`.
pub fn verify_access_token_claims(
    token: &str,
    app_id: &str,
    secrets: &[Secret],
) -> Result<(Principal, u64), ApiError> {
    let claims: TokenClaims = jwt::verify(token, secrets, Expiry::Required)
        .map_err(|e| ApiError::invalid_credential(e.describe("access-token")))?;
    if claims.app != app_id {
        return Err(ApiError::invalid_credential(
            "access-token was issued for another app",
        ));
    }
    match claims.kind {
        TokenKind::User => Ok((Principal::User { sub: claims.sub }, claims.exp)),
        TokenKind::Admin => Ok((
            Principal::Admin {
                sub: claims.sub,
                groups: claims.groups,
            },
            claims.exp,
        )),
        TokenKind::Store => Err(ApiError::invalid_credential(
            "access-token holds a store token; send it as store_token",
        )),
    }
}
