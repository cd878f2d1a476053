//! Cache keys (SPEC §6): scoped by app and object key, plus the source's version
//! (ETag) and the normalised transform for derived results. A key is a SHA-256 over
//! its kind and parts, so no two kinds or inputs can collide, and a part number for
//! bodies stored in more than one piece.

use sha2::{Digest, Sha256};

use crate::storage::keys::ObjectKey;

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The last version seen of an object (its metadata and when it was validated).
    Version,
    /// An original's body, for one version.
    Original,
    /// A derived result (thumbnail, cover, MP3) of one version of its source.
    Derived,
    /// The list of derived results made from an object (what a purge removes).
    Derivations,
    /// A node's short-lived copy of what another node (the owner) answered a fill.
    PeerCopy,
}

impl KeyKind {
    fn tag(self) -> &'static [u8] {
        match self {
            KeyKind::Version => b"version",
            KeyKind::Original => b"original",
            KeyKind::Derived => b"derived",
            KeyKind::Derivations => b"derivations",
            KeyKind::PeerCopy => b"peer-copy",
        }
    }
}

/// A cache key: a digest of what the entry is, and which piece of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// SHA-256 of the kind and its inputs.
    pub digest: [u8; 32],
    /// 0 for the head entry (metadata and the first piece), then 1, 2, ... for the
    /// further pieces of a large body.
    pub part: u32,
}

fn digest(kind: KeyKind, parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(kind.tag());
    for p in parts {
        // Length-prefixed, so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

impl CacheKey {
    /// The version record of `key`.
    pub fn version(app: &str, key: &ObjectKey) -> CacheKey {
        CacheKey {
            digest: digest(KeyKind::Version, &[app, key.as_str()]),
            part: 0,
        }
    }

    /// The head of an original's body at version `etag`, as served with or without
    /// its location metadata (`stripped`): a config change never serves the other.
    pub fn original(app: &str, key: &ObjectKey, etag: &str, stripped: bool) -> CacheKey {
        let view = if stripped { "no-location" } else { "as-stored" };
        CacheKey {
            digest: digest(KeyKind::Original, &[app, key.as_str(), etag, view]),
            part: 0,
        }
    }

    /// The heads of both views of an original at `etag` (what a purge removes).
    pub fn originals(app: &str, key: &ObjectKey, etag: &str) -> [CacheKey; 2] {
        [false, true].map(|stripped| CacheKey::original(app, key, etag, stripped))
    }

    /// The head of a derived result: source `key` at `etag`, made by the transform
    /// whose canonical form is `canonical`.
    pub fn derived(app: &str, key: &ObjectKey, etag: &str, canonical: &str) -> CacheKey {
        CacheKey {
            digest: digest(KeyKind::Derived, &[app, key.as_str(), etag, canonical]),
            part: 0,
        }
    }

    /// The list of derived results made from `key` (any version).
    pub fn derivations(app: &str, key: &ObjectKey) -> CacheKey {
        CacheKey {
            digest: digest(KeyKind::Derivations, &[app, key.as_str()]),
            part: 0,
        }
    }

    /// A copy of an owner's answer to the fill `spec` (its wire form): a node that
    /// does not own an object cannot know its version, so the fill names the copy.
    pub fn peer_copy(spec: &str) -> CacheKey {
        CacheKey {
            digest: digest(KeyKind::PeerCopy, &[spec]),
            part: 0,
        }
    }

    /// The head of a derived result named by its digest (from a derivation list).
    pub fn from_digest(digest: [u8; 32]) -> CacheKey {
        CacheKey { digest, part: 0 }
    }

    /// Piece `part` of the body this head starts.
    pub fn part(self, part: u32) -> CacheKey {
        CacheKey {
            digest: self.digest,
            part,
        }
    }

    /// Lower-case hex of the digest (names `_derived/` copies, ETags).
    pub fn hex(&self) -> String {
        hex(&self.digest)
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

impl foyer::Code for CacheKey {
    fn encode(&self, writer: &mut impl std::io::Write) -> foyer::Result<()> {
        writer
            .write_all(&self.digest)
            .and_then(|_| writer.write_all(&self.part.to_le_bytes()))
            .map_err(foyer::Error::io_error)
    }

    fn decode(reader: &mut impl std::io::Read) -> foyer::Result<Self> {
        let mut digest = [0u8; 32];
        let mut part = [0u8; 4];
        reader
            .read_exact(&mut digest)
            .and_then(|_| reader.read_exact(&mut part))
            .map_err(foyer::Error::io_error)?;
        Ok(CacheKey {
            digest,
            part: u32::from_le_bytes(part),
        })
    }

    fn estimated_size(&self) -> usize {
        36
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_inputs_never_collide() {
        let k = ObjectKey::parse("demo/avatar/user/1/a.jpg").unwrap();
        let v = CacheKey::version("demo", &k);
        let o = CacheKey::original("demo", &k, "\"e\"", false);
        assert_ne!(o, CacheKey::original("demo", &k, "\"e\"", true));
        let d = CacheKey::derived("demo", &k, "\"e\"", "thumb:200x200:jpeg");
        assert_ne!(v, o);
        assert_ne!(o, d);
        assert_ne!(v, CacheKey::derivations("demo", &k));
        assert_ne!(o, CacheKey::original("demo", &k, "\"f\"", false));
        assert_ne!(
            d,
            CacheKey::derived("demo", &k, "\"e\"", "thumb:100x100:jpeg")
        );
        assert_ne!(o.part(1), o);
        assert_eq!(o.part(1).digest, o.digest);
        assert_eq!(hex(&[0x0f, 0xa0]), "0fa0");
    }
}
