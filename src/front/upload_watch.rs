//! What the pass-through learns of an upload it forwards to the S3 store, so that the
//! store's 2xx can start eager derivation ([`crate::eager`]): the object key and the
//! file's first bytes. A presigned PUT names its key in the path and its body is the
//! file. A POST form names it in its `key` field, which comes before the `file` part
//! (S3 and OSS ignore fields after it): the form's beginning is read as it streams by,
//! at most [`MAX_FORM_PREFIX`] bytes, and never held back from the store.

use bytes::Bytes;

use crate::media::sniff::{SniffHead, SNIFF_BYTES};
use crate::storage::keys::ObjectKey;

/// Most bytes of a form read for its `key` field and the file's first bytes.
pub const MAX_FORM_PREFIX: usize = 64 * 1024;

/// An upload on its way to the store.
#[derive(Debug, Default)]
pub enum UploadWatch {
    /// Not an upload eager derivation needs to know of.
    #[default]
    Nothing,
    /// A presigned PUT of `key`.
    Put {
        /// The object.
        key: ObjectKey,
        /// The body's first bytes.
        head: SniffHead,
    },
    /// A browser form (POST), read up to its file's first bytes.
    Form(FormPrefix),
}

impl UploadWatch {
    /// Watches a presigned PUT of `key`.
    pub fn put(key: ObjectKey) -> Self {
        UploadWatch::Put {
            key,
            head: SniffHead::default(),
        }
    }

    /// Watches a POST form with this `Content-Type`; nothing when it is not multipart.
    pub fn form(content_type: &str) -> Self {
        match multer::parse_boundary(content_type) {
            Ok(boundary) => UploadWatch::Form(FormPrefix {
                delimiter: format!("--{boundary}").into_bytes(),
                buf: Vec::new(),
                scan_at: FIRST_SCAN,
                scan: Scan::Pending,
            }),
            Err(_) => UploadWatch::Nothing,
        }
    }

    /// A piece of the request body on its way to the store.
    pub fn feed(&mut self, chunk: Option<&Bytes>, end_of_stream: bool) {
        match self {
            UploadWatch::Nothing => {}
            UploadWatch::Put { head, .. } => {
                if let Some(chunk) = chunk {
                    head.feed(chunk);
                }
            }
            UploadWatch::Form(form) => form.feed(chunk.map(|c| c.as_ref()), end_of_stream),
        }
    }

    /// Once the store answered 2xx: the stored key and the file's first bytes, if
    /// this was an upload whose key is known (taken once).
    pub fn completed(&mut self) -> Option<(ObjectKey, Vec<u8>)> {
        match std::mem::take(self) {
            UploadWatch::Nothing => None,
            UploadWatch::Put { key, head } => Some((key, head.bytes().to_vec())),
            UploadWatch::Form(mut form) => {
                form.feed(None, true);
                match form.scan {
                    Scan::Found { key, head } => Some((key, head)),
                    Scan::Pending | Scan::Failed => None,
                }
            }
        }
    }
}

/// The beginning of a multipart form.
#[derive(Debug)]
pub struct FormPrefix {
    /// `--` and the boundary.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    /// The buffer's length at which it is read next.
    scan_at: usize,
    scan: Scan,
}

/// The first read of a form's beginning waits for this many bytes; each further read
/// waits for twice as many as the last. A form trickled in tiny pieces is then read
/// a handful of times in all, not once a piece (which was quadratic in its length).
const FIRST_SCAN: usize = 1024;

/// What the form's beginning told so far.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scan {
    /// More bytes are needed.
    Pending,
    /// The `key` field, and the file's first bytes.
    Found { key: ObjectKey, head: Vec<u8> },
    /// No single valid key before the file part within [`MAX_FORM_PREFIX`].
    Failed,
}

impl FormPrefix {
    fn feed(&mut self, chunk: Option<&[u8]>, end_of_stream: bool) {
        if self.scan != Scan::Pending {
            return;
        }
        if let Some(chunk) = chunk {
            let room = MAX_FORM_PREFIX.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
        }
        let at_end = end_of_stream || self.buf.len() >= MAX_FORM_PREFIX;
        if !at_end && self.buf.len() < self.scan_at {
            return;
        }
        self.scan_at = self.buf.len().saturating_mul(2);
        self.scan = scan(&self.buf, &self.delimiter, at_end);
        if self.scan != Scan::Pending {
            // Done with the bytes: the rest of the body streams by untouched.
            self.buf = Vec::new();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(haystack, needle)
}

/// The `name` of a part, from its headers' `Content-Disposition: form-data; name=".."`.
fn part_name(headers: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(headers).ok()?;
    let line = text.split("\r\n").find(|l| {
        l.get(..20)
            .is_some_and(|p| p.eq_ignore_ascii_case("content-disposition:"))
    })?;
    line[20..].split(';').skip(1).find_map(|param| {
        let (name, value) = param.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("name")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// Reads the form in `buf` (all of it when `at_end`) up to the file's first bytes.
fn scan(buf: &[u8], delimiter: &[u8], at_end: bool) -> Scan {
    let pending = if at_end { Scan::Failed } else { Scan::Pending };
    let Some(first) = find(buf, delimiter) else {
        return pending;
    };
    let mut rest = &buf[first + delimiter.len()..];
    let mut key: Option<String> = None;
    let mut next = Vec::with_capacity(delimiter.len() + 2);
    next.extend_from_slice(b"\r\n");
    next.extend_from_slice(delimiter);
    loop {
        // After a delimiter: `--` ends the form, else CRLF and a part's headers.
        if rest.starts_with(b"--") {
            return Scan::Failed;
        }
        let Some(after_crlf) = rest.strip_prefix(b"\r\n") else {
            return if rest.len() < 2 {
                pending
            } else {
                Scan::Failed
            };
        };
        let Some(headers_end) = find(after_crlf, b"\r\n\r\n") else {
            return pending;
        };
        let name = part_name(&after_crlf[..headers_end]);
        let body = &after_crlf[headers_end + 4..];
        match name.as_deref() {
            Some(n) if n.eq_ignore_ascii_case("file") => {
                let Some(key) = key.and_then(|k| ObjectKey::parse(&k).ok()) else {
                    return Scan::Failed;
                };
                let (data, complete) = match find(body, &next) {
                    Some(end) => (&body[..end], true),
                    None => (body, at_end),
                };
                if data.len() < SNIFF_BYTES && !complete {
                    return Scan::Pending;
                }
                return Scan::Found {
                    key,
                    head: data[..data.len().min(SNIFF_BYTES)].to_vec(),
                };
            }
            name => {
                let Some(end) = find(body, &next) else {
                    return pending;
                };
                if name.is_some_and(|n| n.eq_ignore_ascii_case("key")) {
                    if key.is_some() {
                        // Which one would the store take? Not guessed.
                        return Scan::Failed;
                    }
                    match std::str::from_utf8(&body[..end]) {
                        Ok(k) => key = Some(k.to_string()),
                        Err(_) => return Scan::Failed,
                    }
                }
                rest = &body[end + next.len()..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)], file: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in fields {
            body.extend_from_slice(
                format!("--XyZ\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"key.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n",
        );
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n--XyZ--\r\n");
        body
    }

    /// Feeds `body` in pieces of `step` bytes, then takes the result.
    fn watched(body: &[u8], step: usize) -> Option<(ObjectKey, Vec<u8>)> {
        let mut watch = UploadWatch::form("multipart/form-data; boundary=XyZ");
        let pieces: Vec<&[u8]> = body.chunks(step).collect();
        for (i, piece) in pieces.iter().enumerate() {
            let chunk = Bytes::copy_from_slice(piece);
            watch.feed(Some(&chunk), i + 1 == pieces.len());
        }
        watch.completed()
    }

    #[test]
    fn finds_the_key_and_the_files_first_bytes_in_any_pieces() {
        let file: Vec<u8> = (0..200u8).collect();
        let body = form(
            &[
                ("OSSAccessKeyId", "ak"),
                ("policy", "cG9saWN5"),
                ("key", "demo/avatar/user/1/a.jpg"),
                ("callback", ""),
            ],
            &file,
        );
        for step in [1, 7, 64, 100, body.len()] {
            let (key, head) = watched(&body, step).unwrap_or_else(|| panic!("step {step}"));
            assert_eq!(key.as_str(), "demo/avatar/user/1/a.jpg");
            assert_eq!(head, file[..SNIFF_BYTES].to_vec(), "step {step}");
        }
        // A file shorter than the sniffed prefix ends at its part's end.
        let body = form(&[("key", "demo/avatar/user/1/a.jpg")], b"tiny");
        assert_eq!(watched(&body, 3).unwrap().1, b"tiny".to_vec());
    }

    #[test]
    fn no_single_valid_key_is_no_upload_to_watch() {
        let file = [0u8; 100];
        let cases = [
            form(&[("policy", "p")], &file),
            form(&[("key", "a"), ("key", "b")], &file),
            form(&[("key", "../etc/passwd")], &file),
            b"not a form at all".to_vec(),
        ];
        for body in cases {
            assert_eq!(
                watched(&body, 10),
                None,
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        // A key beyond the prefix limit is not looked for.
        let big = "x".repeat(MAX_FORM_PREFIX);
        let body = form(&[("pad", &big), ("key", "demo/avatar/user/1/a.jpg")], &file);
        assert_eq!(watched(&body, 4096), None);
        assert!(matches!(
            UploadWatch::form("text/plain"),
            UploadWatch::Nothing
        ));
    }

    #[test]
    fn a_trickled_form_is_read_a_few_times_not_once_a_byte() {
        let file = [7u8; 300];
        let pad = "p".repeat(40 * 1024);
        let body = form(&[("pad", &pad), ("key", "demo/avatar/user/1/a.jpg")], &file);
        let mut watch = UploadWatch::form("multipart/form-data; boundary=XyZ");
        let mut reads = 0;
        for byte in &body[..body.len() - 1] {
            let before = match &watch {
                UploadWatch::Form(f) => f.scan_at,
                _ => unreachable!(),
            };
            watch.feed(Some(&Bytes::copy_from_slice(&[*byte])), false);
            if let UploadWatch::Form(f) = &watch {
                reads += usize::from(f.scan_at != before);
            }
        }
        assert!(reads <= 8, "{reads} reads of a {}-byte form", body.len());
        let (key, head) = watch.completed().expect("found");
        assert_eq!(key.as_str(), "demo/avatar/user/1/a.jpg");
        assert_eq!(head.len(), SNIFF_BYTES);
    }

    #[test]
    fn a_put_keeps_its_bodys_first_bytes() {
        let key = ObjectKey::parse("demo/chat/1/2/20260101/a.png").unwrap();
        let mut watch = UploadWatch::put(key.clone());
        watch.feed(Some(&Bytes::from_static(b"\x89PNG")), false);
        watch.feed(Some(&Bytes::from_static(b"\r\n\x1a\n")), true);
        assert_eq!(
            watch.completed(),
            Some((key, b"\x89PNG\r\n\x1a\n".to_vec()))
        );
        assert_eq!(watch.completed(), None, "taken once");
    }
}
