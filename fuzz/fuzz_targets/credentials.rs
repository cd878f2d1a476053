//! Where credentials are read from and which one decides (`auth::Credentials::extract`,
//! `auth::header_or_query`, `auth::authenticate`, `auth::acting`).
//!
//! Asserts, beyond "no panic":
//! - a credential read from both a header and the query is only accepted when the two
//!   agree, and the value read is one of them;
//! - upload routes never authenticate without an access token (401/10003), and never
//!   as a store token or an sdk_sign;
//! - an accepted actor obeys the acting-identity rules: only an admin acts for a group
//!   (one it administers), a user or store token sets `user_id` only to its own `sub`,
//!   an sdk_sign carries no identity;
//! - every refusal is a 400, 401 or 403;
//! - the verified-token cache changes no answer: a repeated request, tokens swapped
//!   between `access-token` and `store_token`, or sent for another app.
#![no_main]

use filegate::claims::{TokenClaims, TokenKind};
use filegate::config::{AppConfig, Secret};
use filegate::error::ApiError;
use filegate::now_secs;
use filegate::query::Query;
use filegate::route_table::Access;
use filegate::verified::VerifiedTokens;
use filegate::{authenticate, sdk_sign, Actor, Credentials, Principal, SignedRequest};
use filegate_fuzz::{rotated, SECRET_A};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const APP: &str = "demo";
const PATH: &str = "/file/download/avatar";

#[derive(Debug, Arbitrary)]
enum Token {
    /// Whatever the fuzzer wrote.
    Raw,
    /// A valid access or store token.
    Minted {
        kind: u8,
        sub: i64,
        groups: Option<Vec<i64>>,
    },
    /// A valid sdk_sign for this request, as `sdk_sign`.
    SdkSign { expires_in: u16 },
}

#[derive(Debug, Arbitrary)]
struct Input {
    headers: Vec<(String, Vec<u8>)>,
    query: String,
    upload_route: bool,
    token: Token,
    /// Where a minted credential goes: header (false) or query (true).
    in_query: bool,
}

const NAMES: [&str; 3] = ["access-token", "store_token", "sdk_sign"];

fn header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fuzz_target!(|input: Input| {
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        headers.append(n, v);
    }
    let credential: Option<(&str, String)> = match &input.token {
        Token::Raw => None,
        Token::Minted { kind, sub, groups } => {
            let kind = match kind % 3 {
                0 => TokenKind::User,
                1 => TokenKind::Admin,
                _ => TokenKind::Store,
            };
            let mut claims = TokenClaims::new(APP, *sub, kind, 600);
            claims.groups = groups.clone();
            let name = if kind == TokenKind::Store {
                "store_token"
            } else {
                "access-token"
            };
            claims.mint(&Secret::new(SECRET_A)).ok().map(|t| (name, t))
        }
        Token::SdkSign { expires_in } => {
            // Signed over the query as it stands; the sign itself is left out of it.
            let q = Query::parse(&input.query);
            let expires = now_secs() + u64::from(*expires_in);
            let s = sdk_sign::sign(PATH, APP, &q, expires, &Secret::new(SECRET_A));
            Some(("sdk_sign", s))
        }
    };
    let mut raw_query = input.query.clone();
    if let Some((name, value)) = &credential {
        if input.in_query {
            let encoded: String = form_urlencoded::Serializer::new(String::new())
                .append_pair(name, value)
                .finish();
            raw_query = format!("{raw_query}&{encoded}");
        } else if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    let query = Query::parse(&raw_query);

    let creds = match Credentials::extract(&headers, &query) {
        Ok(c) => c,
        Err(e) => {
            assert_eq!(e.status(), 400, "{}", e.message());
            return;
        }
    };
    for (name, got) in NAMES
        .iter()
        .zip([&creds.access_token, &creds.store_token, &creds.sdk_sign])
    {
        let from_header = header_value(&headers, name);
        let from_query = query
            .get(name)
            .ok()
            .flatten()
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        if let (Some(h), Some(q)) = (&from_header, &from_query) {
            assert_eq!(h, q, "{name}: header and query disagree but were accepted");
        }
        match got {
            Some(v) => {
                assert!(!v.is_empty());
                assert!(Some(v) == from_header.as_ref() || Some(v) == from_query.as_ref());
            }
            None => assert!(from_header.is_none() && from_query.is_none()),
        }
    }

    let app = AppConfig {
        secrets: rotated(),
        ..AppConfig::default()
    };
    let access = if input.upload_route {
        Access::AccessToken
    } else {
        Access::Download
    };
    let run = |app_id: &str, creds: &Credentials, verified: &VerifiedTokens| {
        let request = SignedRequest {
            path: PATH,
            query: &query,
        };
        authenticate(app_id, &app, creds, access, request, verified)
    };
    let verified = VerifiedTokens::new();
    let result = run(APP, &creds, &verified);
    // The verified-token cache changes nothing: the same request again (a hit when it
    // passed), the tokens swapped between access-token and store_token, or sent for
    // another app with the same secrets, answer as without the cache.
    assert_eq!(outcome(&run(APP, &creds, &verified)), outcome(&result));
    let swapped = Credentials {
        access_token: creds.store_token.clone(),
        store_token: creds.access_token.clone(),
        ..creds.clone()
    };
    assert_eq!(
        outcome(&run(APP, &swapped, &verified)),
        outcome(&run(APP, &swapped, &VerifiedTokens::new()))
    );
    assert_eq!(
        outcome(&run("other", &creds, &verified)),
        outcome(&run("other", &creds, &VerifiedTokens::new()))
    );
    match result {
        Ok(actor) => {
            match &actor.principal {
                Principal::Admin { groups, .. } => {
                    if let (Some(g), Some(allowed)) = (actor.group_id, groups) {
                        assert!(allowed.contains(&g));
                    }
                }
                Principal::User { sub } | Principal::Store { sub, .. } => {
                    assert!(actor.user_id.is_none_or(|u| u == *sub));
                    assert!(actor.group_id.is_none());
                }
                Principal::SignedUrl => {
                    assert!(actor.user_id.is_none() && actor.group_id.is_none());
                }
            }
            if input.upload_route {
                assert!(creds.access_token.is_some());
                assert!(matches!(
                    actor.principal,
                    Principal::User { .. } | Principal::Admin { .. }
                ));
            }
            let _ = actor.describe();
        }
        Err(e) => {
            assert!(
                matches!(e.status().as_u16(), 400 | 401 | 403),
                "{}: {}",
                e.status(),
                e.message()
            );
            if input.upload_route && creds.access_token.is_none() {
                assert_eq!(e.code(), 10003);
            }
        }
    }
});

/// What a client sees of an answer: the actor, or the status and body code.
fn outcome(r: &Result<Actor, ApiError>) -> Result<Actor, (u16, u32)> {
    match r {
        Ok(a) => Ok(a.clone()),
        Err(e) => Err((e.status().as_u16(), e.code())),
    }
}
