//! The wire format shared by access tokens and store tokens (SPEC §3), and minting.
//! Both are HS256 JWTs; `kind` tells them apart. The product's app server mints them
//! too, so this layout is a public contract (README, "Tokens").

use serde::{Deserialize, Deserializer, Serialize};

use crate::auth::jwt;
use crate::config::Secret;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Access token of a user.
    User,
    /// Access token of an app admin.
    Admin,
    /// Store token ("file token"): downloads only.
    Store,
}

impl std::str::FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "user" => Ok(TokenKind::User),
            "admin" => Ok(TokenKind::Admin),
            "store" => Ok(TokenKind::Store),
            other => Err(format!("`{other}` is not user, admin or store")),
        }
    }
}

/// Claims of access and store tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenClaims {
    /// The app_id.
    pub app: String,
    /// The principal: the decimal string of an int64 (a JSON number is accepted too).
    #[serde(
        deserialize_with = "int64_from_string_or_number",
        serialize_with = "int64_as_string"
    )]
    pub sub: i64,
    /// user, admin or store.
    pub kind: TokenKind,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Admin tokens: the groups administered; absent means all groups of the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<i64>>,
    /// Store tokens: one object key, or a key prefix ending in `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obj: Option<String>,
}

impl TokenClaims {
    /// Claims for a new token valid `ttl_secs` from now.
    pub fn new(app: &str, sub: i64, kind: TokenKind, ttl_secs: u64) -> Self {
        let now = crate::clock::now_secs();
        TokenClaims {
            app: app.to_string(),
            sub,
            kind,
            exp: now + ttl_secs,
            iat: Some(now),
            groups: None,
            obj: None,
        }
    }

    /// Signs the claims with the app's first secret.
    pub fn mint(&self, secret: &Secret) -> Result<String, jsonwebtoken::errors::Error> {
        jwt::mint(self, secret)
    }
}

fn int64_from_string_or_number<'de, D: Deserializer<'de>>(de: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(i64),
    }
    match Raw::deserialize(de)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom("sub must be the decimal string of an int64")),
    }
}

fn int64_as_string<S: serde::Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}
