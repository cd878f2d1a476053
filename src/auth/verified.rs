//! Credentials that already verified. An SDK sends the same access or store token
//! with every request until it expires, and a chat picture is downloaded with the
//! same file_sign by every member of the conversation; checking an HS256 signature
//! (and parsing its JSON) each time costs more than the rest of a cache hit
//! (benches/micro.rs). Entries are keyed by the whole credential (never a hash alone,
//! so nothing forged can collide into a valid entry), remember the app they were
//! verified for, end at a token's own `exp` (plus leeway) and hold only successes.

use std::time::Duration;

use moka::sync::Cache;

use crate::auth::jwt::LEEWAY_SECS;
use crate::auth::principal::Principal;
use crate::clock::now_secs;

/// Most tokens remembered (each a few hundred bytes).
const CAPACITY: u64 = 20_000;
/// Longest a verification is reused, whatever the token's `exp`.
const REUSE: Duration = Duration::from_secs(300);

/// Which header the token came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// `access-token`.
    Access,
    /// `store_token`.
    Store,
}

#[derive(Clone)]
struct Verified {
    app: String,
    used_as: TokenUse,
    principal: Principal,
    valid_until: u64,
}

/// Verified access and store tokens.
pub struct VerifiedTokens {
    cache: Cache<String, Verified, ahash::RandomState>,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        VerifiedTokens::new()
    }
}

impl VerifiedTokens {
    /// An empty cache.
    pub fn new() -> Self {
        VerifiedTokens {
            cache: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(REUSE)
                .build_with_hasher(ahash::RandomState::new()),
        }
    }

    /// The principal of `token` if it verified for `app` as `used_as` and has not
    /// expired since.
    pub fn get(&self, token: &str, app: &str, used_as: TokenUse) -> Option<Principal> {
        let hit = self.cache.get(token)?;
        (hit.app == app && hit.used_as == used_as && now_secs() <= hit.valid_until)
            .then_some(hit.principal)
    }

    /// Remembers a token that just verified, until `exp`.
    pub fn insert(
        &self,
        token: &str,
        app: &str,
        used_as: TokenUse,
        principal: Principal,
        exp: u64,
    ) {
        self.cache.insert(
            token.to_string(),
            Verified {
                app: app.to_string(),
                used_as,
                principal,
                valid_until: exp.saturating_add(LEEWAY_SECS),
            },
        );
    }
}

/// Most file_signs remembered (each a few hundred bytes).
const FILE_SIGNS: u64 = 50_000;

/// Verified file_signs (they carry no expiry; kept at most [`REUSE`]).
pub struct VerifiedFileSigns {
    cache: Cache<
        String,
        (String, std::sync::Arc<crate::auth::file_sign::FileSign>),
        ahash::RandomState,
    >,
}

impl Default for VerifiedFileSigns {
    fn default() -> Self {
        VerifiedFileSigns {
            cache: Cache::builder()
                .max_capacity(FILE_SIGNS)
                .time_to_live(REUSE)
                .build_with_hasher(ahash::RandomState::new()),
        }
    }
}

impl VerifiedFileSigns {
    /// The claims of `sign` for `app`: remembered, else verified now (and remembered
    /// when valid).
    pub fn verify(
        &self,
        sign: &str,
        app: &str,
        secrets: &[crate::config::Secret],
    ) -> Result<std::sync::Arc<crate::auth::file_sign::FileSign>, crate::error::ApiError> {
        if let Some((verified_for, claims)) = self.cache.get(sign) {
            if verified_for == app {
                return Ok(claims);
            }
        }
        let claims = std::sync::Arc::new(crate::auth::file_sign::verify_file_sign(
            sign, app, secrets,
        )?);
        self.cache
            .insert(sign.to_string(), (app.to_string(), claims.clone()));
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_to_app_use_and_expiry() {
        let v = VerifiedTokens::new();
        let p = Principal::User { sub: 1 };
        v.insert("t1", "demo", TokenUse::Access, p.clone(), now_secs() + 60);
        assert_eq!(v.get("t1", "demo", TokenUse::Access), Some(p.clone()));
        assert_eq!(v.get("t1", "other", TokenUse::Access), None);
        assert_eq!(v.get("t1", "demo", TokenUse::Store), None);
        assert_eq!(v.get("t2", "demo", TokenUse::Access), None);
        v.insert(
            "t3",
            "demo",
            TokenUse::Access,
            p,
            now_secs() - LEEWAY_SECS - 1,
        );
        assert_eq!(v.get("t3", "demo", TokenUse::Access), None);
    }
}
