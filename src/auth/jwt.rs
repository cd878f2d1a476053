//! HS256 JWTs signed with one of an app's secrets (SPEC §3): the shared verifier and
//! minter behind access tokens, store tokens and file_signs.
//!
//! Only HS256 is accepted (`alg: none` and every other algorithm fail to verify);
//! the signature is checked before any claim, and the MAC comparison inside
//! `jsonwebtoken`'s HMAC backend is constant-time.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::Secret;

/// Clock leeway when checking `exp` (SPEC §3: at most 30 s).
pub const LEEWAY_SECS: u64 = 30;

/// Why a token failed. Each maps to 401/10008 with its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a JWT, bad base64/JSON, or not HS256.
    Malformed,
    /// No secret of the app verifies the signature.
    BadSignature,
    /// Past `exp` (plus leeway).
    Expired,
    /// Before `nbf` (less leeway).
    NotYetValid,
    /// A required claim is missing or has the wrong type.
    BadClaims,
}

impl TokenError {
    /// A message a client developer can act on.
    pub fn describe(self, what: &str) -> String {
        match self {
            TokenError::Malformed => format!("{what} is malformed (an HS256 JWT is expected)"),
            TokenError::BadSignature => format!("{what} signature is invalid"),
            TokenError::Expired => format!("{what} has expired"),
            TokenError::NotYetValid => format!("{what} is not valid yet (nbf is in the future)"),
            TokenError::BadClaims => format!("{what} has missing or invalid claims"),
        }
    }
}

/// How strictly to check registered claims.
#[derive(Debug, Clone, Copy)]
pub enum Expiry {
    /// `exp` is required and checked (access and store tokens).
    Required,
    /// No `exp` (file_sign).
    None,
}

fn validation(expiry: Expiry) -> Validation {
    let mut v = Validation::new(Algorithm::HS256);
    v.leeway = LEEWAY_SECS;
    v.validate_aud = false;
    // `nbf`, when present, is honoured with the same leeway (SPEC §3).
    v.validate_nbf = true;
    match expiry {
        Expiry::Required => {
            v.validate_exp = true;
            v.set_required_spec_claims(&["exp"]);
        }
        Expiry::None => {
            v.validate_exp = false;
            v.required_spec_claims.clear();
        }
    }
    v
}

/// Verifies `token` against each of `secrets` in turn (rotation: all verify) and
/// returns its claims.
pub fn verify<C: DeserializeOwned>(
    token: &str,
    secrets: &[Secret],
    expiry: Expiry,
) -> Result<C, TokenError> {
    // The header decides malformed vs bad claims: `alg: none` and other algorithms
    // fail here, before any key is tried.
    match jsonwebtoken::decode_header(token) {
        Ok(h) if h.alg == Algorithm::HS256 => {}
        _ => return Err(TokenError::Malformed),
    }
    let validation = validation(expiry);
    let mut last = TokenError::BadSignature;
    for secret in secrets {
        let key = DecodingKey::from_secret(secret.expose());
        match jsonwebtoken::decode::<C>(token, &key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) => match e.kind() {
                ErrorKind::InvalidSignature => last = TokenError::BadSignature,
                ErrorKind::ExpiredSignature => return Err(TokenError::Expired),
                ErrorKind::ImmatureSignature => return Err(TokenError::NotYetValid),
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => {
                    return Err(TokenError::BadClaims)
                }
                _ => return Err(TokenError::Malformed),
            },
        }
    }
    Err(last)
}

/// Signs `claims` with HS256 and the app's first secret.
pub fn mint<C: Serialize>(
    claims: &C,
    secret: &Secret,
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.expose()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::now_secs;
    use base64::Engine;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct C {
        app: String,
        exp: u64,
    }

    fn secrets() -> Vec<Secret> {
        vec![
            Secret::new("new-secret-0123456789"),
            Secret::new("old-secret-0123456789"),
        ]
    }

    #[test]
    fn rotation_and_forgery() {
        let c = C {
            app: "a".into(),
            exp: now_secs() + 60,
        };
        let old = mint(&c, &secrets()[1]).unwrap();
        assert_eq!(verify::<C>(&old, &secrets(), Expiry::Required).unwrap(), c);
        let gone = mint(&c, &Secret::new("gone-secret-0123456789")).unwrap();
        assert_eq!(
            verify::<C>(&gone, &secrets(), Expiry::Required).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn expiry_with_leeway() {
        let fresh = C {
            app: "a".into(),
            exp: now_secs() - 10,
        };
        let t = mint(&fresh, &secrets()[0]).unwrap();
        assert!(verify::<C>(&t, &secrets(), Expiry::Required).is_ok());
        let stale = C {
            app: "a".into(),
            exp: now_secs() - 120,
        };
        let t = mint(&stale, &secrets()[0]).unwrap();
        assert_eq!(
            verify::<C>(&t, &secrets(), Expiry::Required).unwrap_err(),
            TokenError::Expired
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_fail() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let claims = b64.encode(format!(r#"{{"app":"a","exp":{}}}"#, now_secs() + 60));
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            claims
        );
        assert_eq!(
            verify::<C>(&none, &secrets(), Expiry::Required).unwrap_err(),
            TokenError::Malformed
        );
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &C {
                app: "a".into(),
                exp: now_secs() + 60,
            },
            &EncodingKey::from_secret(secrets()[0].expose()),
        )
        .unwrap();
        assert_eq!(
            verify::<C>(&hs512, &secrets(), Expiry::Required).unwrap_err(),
            TokenError::Malformed
        );
        assert_eq!(
            verify::<C>("garbage", &secrets(), Expiry::Required).unwrap_err(),
            TokenError::Malformed
        );
    }
}
