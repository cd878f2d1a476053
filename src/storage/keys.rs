//! Object keys: made by filegate only, with a strict grammar, always inside the app's
//! own prefix (SPEC §5). A name that fails here never reaches storage.
//!
//! - user avatar:  `<app>/avatar/user/<user_id>/<id>.<ext>`
//! - group avatar: `<app>/avatar/group/<group_id>/<id>.<ext>`
//! - chat file:    `<app>/chat/<to_type>/<to_id>/<yyyymmdd>/<id>.<ext>`
//! - derived:      `<app>/_derived/<hash>.<ext>`

use std::fmt;

use crate::error::ApiError;

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 512;
/// Longest segment accepted.
const MAX_SEGMENT_LEN: usize = 128;

/// A key that passed the grammar.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

/// Why a name is not a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Breaks the grammar (`..`, `%`, control characters, empty segments...).
    Grammar,
    /// Well-formed, but outside the prefix this request may touch.
    OutsidePrefix,
}

impl ObjectKey {
    /// Checks the grammar: `/`-separated segments of `A-Z a-z 0-9 . _ -`, none empty,
    /// none `.`, no `..` anywhere (SPEC §5), no leading `/`, at most 512 bytes.
    pub fn parse(name: &str) -> Result<ObjectKey, KeyError> {
        if name.is_empty() || name.len() > MAX_KEY_LEN || name.contains("..") {
            return Err(KeyError::Grammar);
        }
        for segment in name.split('/') {
            let ok = !segment.is_empty()
                && segment.len() <= MAX_SEGMENT_LEN
                && segment != "."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(KeyError::Grammar);
            }
        }
        Ok(ObjectKey(name.to_string()))
    }

    /// The key of a user's avatar.
    pub fn user_avatar(app: &str, user_id: i64, id: &str, ext: &str) -> ObjectKey {
        ObjectKey(format!("{app}/avatar/user/{user_id}/{id}.{ext}"))
    }

    /// The key of a group's avatar.
    pub fn group_avatar(app: &str, group_id: i64, id: &str, ext: &str) -> ObjectKey {
        ObjectKey(format!("{app}/avatar/group/{group_id}/{id}.{ext}"))
    }

    /// The key of a chat file.
    pub fn chat(
        app: &str,
        to_type: u8,
        to_id: i64,
        yyyymmdd: &str,
        id: &str,
        ext: &str,
    ) -> ObjectKey {
        ObjectKey(format!(
            "{app}/chat/{to_type}/{to_id}/{yyyymmdd}/{id}.{ext}"
        ))
    }

    /// The key of a derived result (thumbnail, cover, transcode).
    pub fn derived(app: &str, digest_hex: &str, ext: &str) -> ObjectKey {
        ObjectKey(format!("{app}/_derived/{digest_hex}.{ext}"))
    }

    /// The key named by an avatar route's `object_name` (the key without `<app>/`):
    /// grammar failures (non-canonical ids included) are 400, names outside the avatar
    /// prefix 403.
    pub fn from_avatar_object_name(app: &str, object_name: &str) -> Result<ObjectKey, ApiError> {
        let key = ObjectKey::parse(&format!("{app}/{object_name}"))
            .map_err(|_| ApiError::bad_param("object_name", "not a valid object name"))?;
        if key.is_avatar_of(app) {
            return Ok(key);
        }
        let parts: Vec<&str> = key.0.split('/').collect();
        if parts.len() == 5 && parts[1] == "avatar" && matches!(parts[2], "user" | "group") {
            return Err(ApiError::bad_param(
                "object_name",
                "ids in object names are canonical decimal (no sign, no leading zero)",
            ));
        }
        Err(ApiError::forbidden(
            "object_name: only avatar objects (avatar/user/... or avatar/group/...) may be read here",
        ))
    }

    /// Whether this is `<app>/avatar/{user|group}/<id>/<file>`.
    pub fn is_avatar_of(&self, app: &str) -> bool {
        let parts: Vec<&str> = self.0.split('/').collect();
        parts.len() == 5
            && parts[0] == app
            && parts[1] == "avatar"
            && (parts[2] == "user" || parts[2] == "group")
            && is_canonical_id(parts[3])
    }

    /// Whether this is `<app>/chat/<to_type>/<to_id>/<yyyymmdd>/<file>`.
    pub fn is_chat_of(&self, app: &str) -> bool {
        let parts: Vec<&str> = self.0.split('/').collect();
        parts.len() == 6
            && parts[0] == app
            && parts[1] == "chat"
            && matches!(parts[2], "1" | "2")
            && is_canonical_id(parts[3])
            && parts[4].len() == 8
            && parts[4].bytes().all(|b| b.is_ascii_digit())
    }

    /// The app the key belongs to: its first segment (every key filegate makes is
    /// inside its app's prefix).
    pub fn app(&self) -> &str {
        self.as_str().split('/').next().unwrap_or("")
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment (`<id>.<ext>`).
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The extension of the last segment, lower-cased, if any.
    pub fn extension(&self) -> Option<String> {
        let name = self.file_name();
        name.rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `segment` is an id as filegate writes it into keys: the canonical decimal
/// of a non-negative int64 (`0`, or no leading zero; no sign). Store-token scopes
/// compare keys as strings, so one id has exactly one spelling.
pub fn is_canonical_id(segment: &str) -> bool {
    let canonical_digits = segment == "0"
        || (segment.len() <= 19
            && segment
                .bytes()
                .next()
                .is_some_and(|b| (b'1'..=b'9').contains(&b))
            && segment.bytes().all(|b| b.is_ascii_digit()));
    canonical_digits && segment.parse::<i64>().is_ok()
}

/// An id that may name a key: non-negative, else 400 naming `param`.
pub fn key_id(param: &str, id: i64) -> Result<i64, ApiError> {
    if id < 0 {
        return Err(ApiError::bad_param(
            param,
            "must be a non-negative int64 to name an object",
        ));
    }
    Ok(id)
}

/// A fresh object id: milliseconds since the epoch then 64 random bits, in hex, so
/// keys sort by upload time and never collide in practice.
pub fn new_object_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    format!("{millis:011x}{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert!(ObjectKey::parse("demo/avatar/user/42/a.jpg").is_ok());
        for bad in [
            "",
            "/demo/a",
            "demo//a",
            "demo/../a",
            "demo/./a",
            "demo/%2e%2e/a",
            "demo/a b",
            "demo/a\u{0}",
            "demo/a\n",
            "demo/é",
            "demo/a/",
        ] {
            assert_eq!(ObjectKey::parse(bad), Err(KeyError::Grammar), "{bad:?}");
        }
        assert!(ObjectKey::parse(&"a".repeat(600)).is_err());
    }

    // Found by the `object_key` fuzz target: `..` inside a segment (`a..b`, `...`)
    // passed, though SPEC §5 says a key has no `..` at all. Harmless as a path
    // component, but the grammar now says exactly what the spec does.
    #[test]
    fn no_double_dot_anywhere() {
        for bad in [
            "demo/a..b",
            "demo/...",
            "demo/avatar/user/1/x..jpg",
            "..a/b",
        ] {
            assert_eq!(ObjectKey::parse(bad), Err(KeyError::Grammar), "{bad:?}");
        }
        assert!(ObjectKey::parse("demo/a.b.c").is_ok());
        assert_eq!(
            ObjectKey::from_avatar_object_name("demo", "avatar/user/1/a..jpg")
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn avatar_names() {
        let k = ObjectKey::from_avatar_object_name("demo", "avatar/user/42/a.jpg").unwrap();
        assert_eq!(k.as_str(), "demo/avatar/user/42/a.jpg");
        assert_eq!(
            ObjectKey::from_avatar_object_name("demo", "../x")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            ObjectKey::from_avatar_object_name("demo", "/avatar/user/1/a")
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            ObjectKey::from_avatar_object_name("demo", "chat/1/2/20260101/a.jpg")
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            ObjectKey::from_avatar_object_name("demo", "other/avatar/user/1/a.jpg")
                .unwrap_err()
                .status(),
            403
        );
        // Ids have one spelling: canonical decimal, no sign, no leading zero.
        for bad in ["x", "042", "-0", "+42", "-1", "00", "99999999999999999999"] {
            assert_eq!(
                ObjectKey::from_avatar_object_name("demo", &format!("avatar/user/{bad}/a.jpg"))
                    .unwrap_err()
                    .status(),
                400,
                "{bad}"
            );
        }
        for good in ["0", "7", "9223372036854775807"] {
            assert!(
                ObjectKey::from_avatar_object_name("demo", &format!("avatar/user/{good}/a.jpg"))
                    .is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn chat_keys() {
        let k = ObjectKey::chat("demo", 1, 42, "20261125", "abc", "jpg");
        assert!(k.is_chat_of("demo"));
        assert!(!k.is_chat_of("other"));
        assert_eq!(k.extension().as_deref(), Some("jpg"));
        assert!(ObjectKey::parse(k.as_str()).is_ok());
        assert!(ObjectKey::parse(&new_object_id()).is_ok());
    }
}
