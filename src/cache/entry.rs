//! What the cache stores, and its on-disk form.
//!
//! Four kinds of entries share one engine: the version record of an object (its
//! metadata and when the store last vouched for it), the head of a body (its metadata
//! and first piece), the further pieces of a large body, and the list of results made
//! from an object (so a purge finds them after a restart). On disk each entry is
//! `magic | kind | fields | CRC-32`; the checksum is checked on every read (on top of
//! the disk engine's own), and an entry that fails it is dropped and fetched again,
//! never served.

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::Bytes;

use crate::storage::ObjectMeta;

/// Bytes of a body per entry: a large body is stored as several entries, so the disk
/// tier's blocks stay small and a range reads only the pieces it needs.
pub const PART_BYTES: usize = 1 << 20;

const MAGIC: &[u8; 4] = b"FGC1";
/// Longest string field accepted on decode (keys, ETags, types, names).
const MAX_FIELD: usize = 4096;

/// The last version seen of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// The object key, checked against the key asked for.
    pub object_key: String,
    /// Its metadata (size, ETag, type, name).
    pub meta: ObjectMeta,
    /// When the store last vouched for this version (fill, revalidation), Unix ms.
    pub validated_at_ms: u64,
    /// When this record was written, Unix ms (purges compare it).
    pub stored_at_ms: u64,
}

/// The head of a body: its metadata and first piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyHead {
    /// The object key (for a derived result, its source's).
    pub object_key: String,
    /// What a client is told of the body.
    pub meta: ObjectMeta,
    /// When it was written, Unix ms (purges compare it).
    pub stored_at_ms: u64,
    /// How many pieces the body has (1 for bodies up to [`PART_BYTES`]).
    pub parts: u32,
    /// The first piece.
    pub first: Bytes,
}

/// A derived result made from an object: its head's key and how many pieces it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derivation {
    /// The digest of its head's key ([`crate::cache::key::CacheKey::digest`]).
    pub digest: [u8; 32],
    /// Its pieces (the head included).
    pub parts: u32,
}

/// Most derived results listed per object (sizes × formats); past it the oldest are
/// forgotten by the list (a purge's rule still covers them).
pub const MAX_DERIVATIONS: usize = 256;

/// One cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheValue {
    /// A version record (shared with the requests reading it).
    Version(Arc<VersionRecord>),
    /// The head of a body (shared with the requests serving it).
    BodyHead(Arc<BodyHead>),
    /// A further piece of a body.
    Part(Bytes),
    /// The derived results made from an object.
    Derivations(Arc<Vec<Derivation>>),
}

/// Bytes an entry costs besides its body and the lengths of its strings: the key,
/// foyer's record and index, the `Arc`s, the allocator's rounding. Measured, not
/// guessed: filling the tier with 150,000 thumbnails of ~1.1 KB grew the process by
/// ~300 bytes an entry more than the tier counted at 256 (BENCHMARKS.md, "Memory").
const ENTRY_OVERHEAD: usize = 560;

impl CacheValue {
    /// Its weight against `cache.memory`.
    pub fn weight(&self) -> usize {
        ENTRY_OVERHEAD
            + match self {
                CacheValue::Version(v) => v.object_key.len() + meta_len(&v.meta),
                CacheValue::BodyHead(h) => h.object_key.len() + meta_len(&h.meta) + h.first.len(),
                CacheValue::Part(b) => b.len(),
                CacheValue::Derivations(d) => d.len() * 36,
            }
    }
}

fn meta_len(m: &ObjectMeta) -> usize {
    m.etag.len()
        + m.content_type.len()
        + m.original_name.as_ref().map_or(0, String::len)
        + m.last_modified.as_ref().map_or(0, String::len)
}

/// A writer that checksums what passes through it.
struct Checked<'a, W: Write> {
    inner: &'a mut W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Checked<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.crc.update(bytes);
        self.inner.write_all(bytes)
    }
    fn u8(&mut self, v: u8) -> std::io::Result<()> {
        self.put(&[v])
    }
    fn u32(&mut self, v: u32) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> std::io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    fn text(&mut self, s: &str) -> std::io::Result<()> {
        self.u32(s.len() as u32)?;
        self.put(s.as_bytes())
    }
    fn optional(&mut self, s: Option<&str>) -> std::io::Result<()> {
        match s {
            Some(s) => {
                self.u8(1)?;
                self.text(s)
            }
            None => self.u8(0),
        }
    }
    fn meta(&mut self, m: &ObjectMeta) -> std::io::Result<()> {
        self.u64(m.size)?;
        self.text(&m.etag)?;
        self.text(&m.content_type)?;
        self.optional(m.original_name.as_deref())?;
        self.optional(m.last_modified.as_deref())
    }
    fn body(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.u32(b.len() as u32)?;
        self.put(b)
    }
}

/// A reader that checksums what it reads and refuses implausible lengths.
struct Verified<'a, R: Read> {
    inner: &'a mut R,
    crc: crc32fast::Hasher,
}

fn corrupt(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("damaged cache entry: {what}"),
    )
}

impl<R: Read> Verified<'_, R> {
    fn take(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; n];
        self.inner.read_exact(&mut buf)?;
        self.crc.update(&buf);
        Ok(buf)
    }
    fn array<const N: usize>(&mut self) -> std::io::Result<[u8; N]> {
        let mut buf = [0u8; N];
        self.inner.read_exact(&mut buf)?;
        self.crc.update(&buf);
        Ok(buf)
    }
    fn u8(&mut self) -> std::io::Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> std::io::Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> std::io::Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn text(&mut self) -> std::io::Result<String> {
        let len = self.u32()? as usize;
        if len > MAX_FIELD {
            return Err(corrupt("field length"));
        }
        String::from_utf8(self.take(len)?).map_err(|_| corrupt("text"))
    }
    fn optional(&mut self) -> std::io::Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.text().map(Some),
            _ => Err(corrupt("option tag")),
        }
    }
    fn meta(&mut self) -> std::io::Result<ObjectMeta> {
        Ok(ObjectMeta {
            size: self.u64()?,
            etag: self.text()?,
            content_type: self.text()?,
            original_name: self.optional()?,
            last_modified: self.optional()?,
        })
    }
    fn body(&mut self) -> std::io::Result<Bytes> {
        let len = self.u32()? as usize;
        if len > PART_BYTES {
            return Err(corrupt("body length"));
        }
        Ok(Bytes::from(self.take(len)?))
    }
}

impl CacheValue {
    fn write_to(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut c = Checked {
            inner: w,
            crc: crc32fast::Hasher::new(),
        };
        c.put(MAGIC)?;
        match self {
            CacheValue::Version(v) => {
                c.u8(1)?;
                c.text(&v.object_key)?;
                c.meta(&v.meta)?;
                c.u64(v.validated_at_ms)?;
                c.u64(v.stored_at_ms)?;
            }
            CacheValue::BodyHead(h) => {
                c.u8(2)?;
                c.text(&h.object_key)?;
                c.meta(&h.meta)?;
                c.u64(h.stored_at_ms)?;
                c.u32(h.parts)?;
                c.body(&h.first)?;
            }
            CacheValue::Part(b) => {
                c.u8(3)?;
                c.body(b)?;
            }
            CacheValue::Derivations(list) => {
                c.u8(4)?;
                c.u32(list.len() as u32)?;
                for d in list.iter() {
                    c.put(&d.digest)?;
                    c.u32(d.parts)?;
                }
            }
        }
        let crc = c.crc.finalize();
        c.inner.write_all(&crc.to_le_bytes())
    }

    fn read_from(r: &mut impl Read) -> std::io::Result<CacheValue> {
        let mut v = Verified {
            inner: r,
            crc: crc32fast::Hasher::new(),
        };
        if &v.array::<4>()? != MAGIC {
            return Err(corrupt("magic"));
        }
        let value = match v.u8()? {
            1 => CacheValue::Version(Arc::new(VersionRecord {
                object_key: v.text()?,
                meta: v.meta()?,
                validated_at_ms: v.u64()?,
                stored_at_ms: v.u64()?,
            })),
            2 => {
                let object_key = v.text()?;
                let meta = v.meta()?;
                let stored_at_ms = v.u64()?;
                let parts = v.u32()?;
                let first = v.body()?;
                CacheValue::BodyHead(Arc::new(BodyHead {
                    object_key,
                    meta,
                    stored_at_ms,
                    parts,
                    first,
                }))
            }
            3 => CacheValue::Part(v.body()?),
            4 => {
                let n = v.u32()? as usize;
                if n > MAX_DERIVATIONS {
                    return Err(corrupt("derivation count"));
                }
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push(Derivation {
                        digest: v.array::<32>()?,
                        parts: v.u32()?,
                    });
                }
                CacheValue::Derivations(Arc::new(list))
            }
            _ => return Err(corrupt("kind")),
        };
        let computed = v.crc.finalize();
        let mut stored = [0u8; 4];
        v.inner.read_exact(&mut stored)?;
        if u32::from_le_bytes(stored) != computed {
            return Err(corrupt("checksum"));
        }
        Ok(value)
    }

    fn encoded_len(&self) -> usize {
        let text = |t: &str| 4 + t.len();
        let optional = |t: &Option<String>| 1 + t.as_deref().map_or(0, text);
        let meta = |m: &ObjectMeta| {
            8 + text(&m.etag)
                + text(&m.content_type)
                + optional(&m.original_name)
                + optional(&m.last_modified)
        };
        let fields = match self {
            CacheValue::Version(v) => text(&v.object_key) + meta(&v.meta) + 16,
            CacheValue::BodyHead(h) => {
                text(&h.object_key) + meta(&h.meta) + 8 + 4 + 4 + h.first.len()
            }
            CacheValue::Part(b) => 4 + b.len(),
            CacheValue::Derivations(d) => 4 + d.len() * 36,
        };
        MAGIC.len() + 1 + fields + 4
    }
}

impl foyer::Code for CacheValue {
    fn encode(&self, writer: &mut impl Write) -> foyer::Result<()> {
        self.write_to(writer).map_err(foyer::Error::io_error)
    }

    fn decode(reader: &mut impl Read) -> foyer::Result<Self> {
        CacheValue::read_from(reader).map_err(foyer::Error::io_error)
    }

    fn estimated_size(&self) -> usize {
        self.encoded_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ObjectMeta {
        ObjectMeta {
            size: 5,
            etag: "\"abc\"".into(),
            content_type: "image/jpeg".into(),
            original_name: Some("報告.jpg".into()),
            last_modified: None,
        }
    }

    fn round_trip(v: &CacheValue) -> Vec<u8> {
        let mut buf = Vec::new();
        v.write_to(&mut buf).unwrap();
        assert_eq!(buf.len(), v.encoded_len(), "{v:?}");
        assert_eq!(&CacheValue::read_from(&mut buf.as_slice()).unwrap(), v);
        buf
    }

    #[test]
    fn entries_round_trip_and_damage_is_refused() {
        let head = CacheValue::BodyHead(Arc::new(BodyHead {
            object_key: "demo/avatar/user/1/a.jpg".into(),
            meta: meta(),
            stored_at_ms: 42,
            parts: 1,
            first: Bytes::from_static(b"hello"),
        }));
        let version = CacheValue::Version(Arc::new(VersionRecord {
            object_key: "demo/avatar/user/1/a.jpg".into(),
            meta: meta(),
            validated_at_ms: 7,
            stored_at_ms: 8,
        }));
        let part = CacheValue::Part(Bytes::from(vec![9u8; 1000]));
        let derivations = CacheValue::Derivations(Arc::new(vec![
            Derivation {
                digest: [7; 32],
                parts: 1,
            },
            Derivation {
                digest: [8; 32],
                parts: 3,
            },
        ]));
        for v in [&head, &version, &part, &derivations] {
            let buf = round_trip(v);
            // Every single flipped byte is caught.
            for i in 0..buf.len() {
                let mut bad = buf.clone();
                bad[i] ^= 0x40;
                assert!(
                    CacheValue::read_from(&mut bad.as_slice()).is_err(),
                    "flip at {i} of {v:?}"
                );
            }
            // So is a truncation.
            assert!(CacheValue::read_from(&mut &buf[..buf.len() - 1]).is_err());
        }
    }
}
