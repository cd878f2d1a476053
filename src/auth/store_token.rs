//! Store tokens (`store_token`, the API's "file token"): downloads only, as a user,
//! optionally limited to one object or one key prefix.

use crate::auth::claims::{TokenClaims, TokenKind};
use crate::auth::jwt::{self, Expiry};
use crate::auth::principal::Principal;
use crate::config::Secret;
use crate::error::ApiError;

/// Verifies a store token for `app_id` and returns its principal.
pub fn verify_store_token(
    token: &str,
    app_id: &str,
    secrets: &[Secret],
) -> Result<Principal, ApiError> {
    verify_store_token_claims(token, app_id, secrets).map(|(p, _)| p)
}

/// Like [`verify_store_token`], also returning the token's `exp`.
pub fn verify_store_token_claims(
    token: &str,
    app_id: &str,
    secrets: &[Secret],
) -> Result<(Principal, u64), ApiError> {
    let claims: TokenClaims = jwt::verify(token, secrets, Expiry::Required)
        .map_err(|e| ApiError::invalid_credential(e.describe("store_token")))?;
    if claims.app != app_id {
        return Err(ApiError::invalid_credential(
            "store_token was issued for another app",
        ));
    }
    if claims.kind != TokenKind::Store {
        return Err(ApiError::invalid_credential(
            "store_token is not a store token (kind must be \"store\")",
        ));
    }
    Ok((
        Principal::Store {
            sub: claims.sub,
            obj: claims.obj,
        },
        claims.exp,
    ))
}

/// Whether a store token's `obj` scope covers `key` (a full object key).
pub fn scope_covers(obj: Option<&str>, key: &str) -> bool {
    match obj {
        None => true,
        Some(prefix) if prefix.ends_with('/') => key.starts_with(prefix),
        Some(exact) => key == exact,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope() {
        assert!(scope_covers(None, "demo/a"));
        assert!(scope_covers(Some("demo/chat/"), "demo/chat/1/2/x.jpg"));
        assert!(!scope_covers(
            Some("demo/chat/"),
            "demo/avatar/user/1/x.jpg"
        ));
        assert!(scope_covers(Some("demo/a.jpg"), "demo/a.jpg"));
        assert!(!scope_covers(Some("demo/a.jpg"), "demo/a.jpg2"));
    }
}
