//! file_sign: names one chat file (SPEC §3). Minted by filegate on upload/chat and
//! upload/forward, verified on every use; HS256 over the app's secrets, no expiry.

use serde::{Deserialize, Serialize};

use crate::auth::jwt::{self, Expiry};
use crate::config::Secret;
use crate::error::ApiError;
use crate::storage::keys::ObjectKey;

/// The claims of a file_sign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSign {
    /// The app_id.
    pub app: String,
    /// The object key (`<app>/chat/...`).
    pub key: String,
    /// file_type (100-104, 200-203).
    pub ft: u16,
    /// to_type: 1 user, 2 group.
    pub tt: u8,
    /// to_id: the conversation.
    pub ti: i64,
    /// The uploader's user id.
    pub fr: i64,
    /// Original file name, when the client told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Size in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Content type, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime: Option<String>,
    /// Issued at, Unix seconds.
    pub iat: u64,
}

impl FileSign {
    /// Signs with the app's first secret.
    pub fn mint(&self, secret: &Secret) -> Result<String, ApiError> {
        jwt::mint(self, secret).map_err(ApiError::internal)
    }

    /// The object key, re-checked against the grammar and the app's chat prefix.
    pub fn object_key(&self) -> Result<ObjectKey, ApiError> {
        match ObjectKey::parse(&self.key) {
            Ok(k) if k.is_chat_of(&self.app) => Ok(k),
            _ => Err(ApiError::invalid_credential("file_sign names no chat file")),
        }
    }
}

/// Verifies a file_sign for `app_id`; forged, altered or foreign ones are 401/10008.
pub fn verify_file_sign(
    token: &str,
    app_id: &str,
    secrets: &[Secret],
) -> Result<FileSign, ApiError> {
    let sign: FileSign = jwt::verify(token, secrets, Expiry::None)
        .map_err(|e| ApiError::invalid_credential(e.describe("file_sign")))?;
    if sign.app != app_id {
        return Err(ApiError::invalid_credential(
            "file_sign was issued for another app",
        ));
    }
    sign.object_key()?;
    Ok(sign)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileSign {
        FileSign {
            app: "demo".into(),
            key: "demo/chat/1/42/20261125/abc.jpg".into(),
            ft: 102,
            tt: 1,
            ti: 42,
            fr: 7,
            name: Some("photo.jpg".into()),
            size: None,
            mime: None,
            iat: 1,
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let secrets = vec![Secret::new("demo-secret-change-me")];
        let t = sample().mint(&secrets[0]).unwrap();
        assert_eq!(verify_file_sign(&t, "demo", &secrets).unwrap(), sample());
        assert_eq!(
            verify_file_sign(&t, "other", &secrets).unwrap_err().code(),
            10008
        );
        // Flip one character of the payload: the signature no longer matches.
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        let mut payload = parts[1].clone().into_bytes();
        payload[5] = if payload[5] == b'A' { b'B' } else { b'A' };
        parts[1] = String::from_utf8(payload).unwrap();
        assert_eq!(
            verify_file_sign(&parts.join("."), "demo", &secrets)
                .unwrap_err()
                .code(),
            10008
        );
    }

    #[test]
    fn key_outside_chat_is_refused() {
        let secrets = vec![Secret::new("demo-secret-change-me")];
        let mut s = sample();
        s.key = "demo/avatar/user/1/a.jpg".into();
        let t = s.mint(&secrets[0]).unwrap();
        assert!(verify_file_sign(&t, "demo", &secrets).is_err());
    }
}
