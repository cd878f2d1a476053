//! Peer fills: the wire protocol of a node asking a key's owner for it.
//!
//! `GET /_cluster/fill` with [`SPEC_HEADER`] (what is asked, base64url JSON) and
//! [`AUTH_HEADER`] (its signature). The owner answers from its own cache (filling it
//! from the store, making a derived result once) exactly as for a client of its own,
//! with the body, `X-Cache-Status` and [`META_HEADER`] (the object's metadata); or the
//! error envelope. The asking node has already checked its client's credentials.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::cluster::peer_auth::{AUTH_HEADER, SPEC_HEADER};
use crate::representation::{ThumbnailStrategy, Wanted};
use crate::storage::ObjectMeta;

/// The path of peer fills.
pub const FILL_PATH: &str = "/_cluster/fill";
/// The header carrying the body's metadata (base64url JSON of [`ObjectMeta`]).
pub const META_HEADER: &str = "x-filegate-meta";

pub(crate) const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a node asks of an owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum FillSpec {
    /// An original, whole.
    Original {
        /// The app.
        app: String,
        /// The object key.
        key: String,
    },
    /// A derived result, planned by the owner as for its own client.
    Derived {
        /// The app.
        app: String,
        /// The source's object key.
        key: String,
        /// What the client asked for.
        wanted: Wanted,
        /// `thumbnail_strategy`.
        strategy: ThumbnailStrategy,
        /// The client's `Accept` (format negotiation).
        accept: Option<String>,
        /// Background work (another node's eager derivation): the owner makes it only
        /// once its own pool is idle, else answers 429. Absent on the wire when false,
        /// so a download's spec is what it always was.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        background: bool,
    },
}

impl FillSpec {
    /// The header value.
    pub fn encode(&self) -> String {
        B64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a header value.
    pub fn decode(value: &str) -> Option<FillSpec> {
        let raw = B64.decode(value).ok()?;
        serde_json::from_slice(&raw).ok()
    }

    /// The object key (the ring's key).
    pub fn key(&self) -> &str {
        match self {
            FillSpec::Original { key, .. } | FillSpec::Derived { key, .. } => key,
        }
    }

    /// The app.
    pub fn app(&self) -> &str {
        match self {
            FillSpec::Original { app, .. } | FillSpec::Derived { app, .. } => app,
        }
    }
}

/// Encodes metadata for [`META_HEADER`].
pub fn encode_meta(meta: &ObjectMeta) -> String {
    B64.encode(serde_json::to_vec(meta).unwrap_or_default())
}

/// Decodes [`META_HEADER`].
pub fn decode_meta(value: &str) -> Option<ObjectMeta> {
    let raw = B64.decode(value).ok()?;
    serde_json::from_slice(&raw).ok()
}

/// The headers a fill request carries, besides `Host`.
pub fn request_headers(spec: &str, auth: &str) -> [(&'static str, String); 2] {
    [
        (SPEC_HEADER, spec.to_string()),
        (AUTH_HEADER, auth.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_meta_round_trip() {
        let spec = FillSpec::Derived {
            app: "demo".into(),
            key: "demo/avatar/user/1/a.jpg".into(),
            wanted: Wanted::Thumbnail {
                w: Some(200.0),
                h: None,
            },
            strategy: ThumbnailStrategy::Local,
            accept: Some("image/webp".into()),
            background: false,
        };
        assert_eq!(FillSpec::decode(&spec.encode()), Some(spec.clone()));
        // A download's spec carries no `background` (nodes of an older build decode it).
        let json = String::from_utf8(B64.decode(spec.encode()).unwrap()).unwrap();
        assert!(!json.contains("background"), "{json}");
        let eager = FillSpec::Derived {
            app: "demo".into(),
            key: "demo/avatar/user/1/a.jpg".into(),
            wanted: Wanted::Thumbnail {
                w: Some(200.0),
                h: None,
            },
            strategy: ThumbnailStrategy::Local,
            accept: None,
            background: true,
        };
        assert_eq!(FillSpec::decode(&eager.encode()), Some(eager.clone()));
        assert_eq!(spec.key(), "demo/avatar/user/1/a.jpg");
        assert_eq!(FillSpec::decode("!!"), None);
        let meta = ObjectMeta {
            size: 3,
            etag: "\"e\"".into(),
            content_type: "image/jpeg".into(),
            original_name: Some("報告.jpg".into()),
            last_modified: None,
        };
        assert_eq!(decode_meta(&encode_meta(&meta)), Some(meta));
    }
}
