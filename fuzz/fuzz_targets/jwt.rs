//! JWTs and the three JWT credentials: access tokens, store tokens, file_signs
//! (`auth::jwt`, `auth::claims`, `auth::access_token`, `auth::store_token`,
//! `auth::file_sign`).
//!
//! Asserts, beyond "no panic":
//! - a token signed with secret A never verifies under secret B alone, and verifies
//!   the same under `[B, A]` (rotation) as under `[A]`;
//! - changing any one byte of a token that verifies makes it fail;
//! - minted access/store tokens verify as their kind only, as the app they name only,
//!   and expire (with the 30 s leeway);
//! - a minted file_sign verifies exactly when its key is a chat key of its app, and
//!   round-trips unchanged.
#![no_main]

use filegate::access_token::verify_access_token;
use filegate::claims::{TokenClaims, TokenKind};
use filegate::config::Secret;
use filegate::file_sign::{verify_file_sign, FileSign};
use filegate::jwt::{self, Expiry, TokenError};
use filegate::keys::ObjectKey;
use filegate::now_secs;
use filegate::store_token::verify_store_token;
use filegate::Principal;
use filegate_fuzz::{craft_jwt, only_a, only_b, rotated, SECRET_A, SECRET_B};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any text as each credential.
    Raw { token: String, app: String },
    /// A token of fuzzed header and claims JSON, signed with A or B.
    Crafted {
        header: Vec<u8>,
        claims: Vec<u8>,
        sign_with_b: bool,
        app: String,
        flip: Option<(u16, u8)>,
    },
    /// Claims in the documented layout, minted normally.
    Minted {
        app: String,
        other_app: String,
        sub: i64,
        kind: u8,
        ttl: i16,
        groups: Option<Vec<i64>>,
        obj: Option<String>,
        flip: Option<(u16, u8)>,
    },
    /// A file_sign with any key.
    FileSign {
        app: String,
        key: String,
        ft: u16,
        tt: u8,
        ti: i64,
        fr: i64,
        name: Option<String>,
        size: Option<u64>,
        mime: Option<String>,
        iat: u64,
    },
}

/// Every verifier on one token: (access, store, file_sign) succeeded.
fn verify_all(token: &str, app: &str, secrets: &[Secret]) -> (bool, bool, bool) {
    (
        verify_access_token(token, app, secrets).is_ok(),
        verify_store_token(token, app, secrets).is_ok(),
        verify_file_sign(token, app, secrets).is_ok(),
    )
}

/// `token` with byte `at` (modulo its length) replaced, if that changes it.
fn flipped(token: &str, (at, with): (u16, u8)) -> Option<String> {
    let mut bytes = token.as_bytes().to_vec();
    if bytes.is_empty() {
        return None;
    }
    let i = at as usize % bytes.len();
    if bytes[i] == with {
        return None;
    }
    bytes[i] = with;
    String::from_utf8(bytes).ok()
}

fn check_flip(token: &str, app: &str, flip: Option<(u16, u8)>) {
    if let Some(t) = flip.and_then(|f| flipped(token, f)) {
        assert_eq!(
            verify_all(&t, app, &rotated()),
            (false, false, false),
            "a one-byte change to a valid token still verifies: {t:?}"
        );
    }
}

fn kind_of(k: u8) -> TokenKind {
    match k % 3 {
        0 => TokenKind::User,
        1 => TokenKind::Admin,
        _ => TokenKind::Store,
    }
}

fuzz_target!(|input: Input| match input {
    Input::Raw { token, app } => {
        let _ = verify_all(&token, &app, &rotated());
        let _ = jwt::verify::<serde_json::Value>(&token, &rotated(), Expiry::Required);
        let _ = token.parse::<TokenKind>();
        assert_eq!(verify_all(&token, &app, &[]), (false, false, false));
    }
    Input::Crafted {
        header,
        claims,
        sign_with_b,
        app,
        flip,
    } => {
        let secret = if sign_with_b { SECRET_B } else { SECRET_A };
        let token = craft_jwt(&header, &claims, secret.as_bytes());
        let under_a = verify_all(&token, &app, &only_a());
        let under_b = verify_all(&token, &app, &only_b());
        let under_both = verify_all(&token, &app, &rotated());
        if sign_with_b {
            assert_eq!(under_a, (false, false, false), "B's token verified under A");
            assert_eq!(under_b, under_both);
        } else {
            assert_eq!(under_b, (false, false, false), "A's token verified under B");
            assert_eq!(under_a, under_both);
        }
        let generic = jwt::verify::<serde_json::Value>(&token, &only_b(), Expiry::None);
        if !sign_with_b {
            assert!(matches!(
                generic,
                Err(TokenError::Malformed | TokenError::BadSignature)
            ));
        }
        if under_both != (false, false, false) {
            check_flip(&token, &app, flip);
        }
    }
    Input::Minted {
        app,
        other_app,
        sub,
        kind,
        ttl,
        groups,
        obj,
        flip,
    } => {
        let kind = kind_of(kind);
        let now = now_secs();
        let claims = TokenClaims {
            app: app.clone(),
            sub,
            kind,
            exp: now.saturating_add_signed(i64::from(ttl)),
            iat: Some(now),
            groups: groups.clone(),
            obj: obj.clone(),
        };
        let Ok(token) = claims.mint(&Secret::new(SECRET_A)) else {
            return;
        };
        assert_eq!(verify_all(&token, &app, &only_b()), (false, false, false));
        let access = verify_access_token(&token, &app, &rotated());
        let store = verify_store_token(&token, &app, &rotated());
        assert!(verify_file_sign(&token, &app, &rotated()).is_err());
        // Expiry, away from the edges the clock may cross while this runs.
        let ttl = i64::from(ttl);
        if ttl < -(jwt::LEEWAY_SECS as i64) - 5 {
            assert!(
                access.is_err() && store.is_err(),
                "an expired token verified"
            );
            return;
        }
        if ttl <= -(jwt::LEEWAY_SECS as i64) + 5 {
            return;
        }
        match kind {
            TokenKind::User => {
                assert_eq!(access.ok(), Some(Principal::User { sub }));
                assert!(store.is_err());
            }
            TokenKind::Admin => {
                assert_eq!(access.ok(), Some(Principal::Admin { sub, groups }));
                assert!(store.is_err());
            }
            TokenKind::Store => {
                assert!(access.is_err());
                assert_eq!(store.ok(), Some(Principal::Store { sub, obj }));
            }
        }
        if other_app != app {
            assert_eq!(
                verify_all(&token, &other_app, &rotated()),
                (false, false, false)
            );
        }
        check_flip(&token, &app, flip);
    }
    Input::FileSign {
        app,
        key,
        ft,
        tt,
        ti,
        fr,
        name,
        size,
        mime,
        iat,
    } => {
        let sign = FileSign {
            app: app.clone(),
            key: key.clone(),
            ft,
            tt,
            ti,
            fr,
            name,
            size,
            mime,
            iat,
        };
        let Ok(token) = sign.mint(&Secret::new(SECRET_A)) else {
            return;
        };
        let is_chat = ObjectKey::parse(&key).is_ok_and(|k| k.is_chat_of(&app));
        match verify_file_sign(&token, &app, &rotated()) {
            Ok(back) => {
                assert!(is_chat, "a file_sign for a non-chat key verified: {key:?}");
                assert_eq!(back, sign);
            }
            Err(e) => {
                assert!(!is_chat, "a valid file_sign was refused: {}", e.message());
                assert_eq!(e.code(), 10008);
            }
        }
        assert!(verify_file_sign(&token, &app, &only_b()).is_err());
        // A file_sign is no access or store token.
        assert!(verify_access_token(&token, &app, &rotated()).is_err());
        assert!(verify_store_token(&token, &app, &rotated()).is_err());
    }
});
