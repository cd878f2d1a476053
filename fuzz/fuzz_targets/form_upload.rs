//! The embedded store's POST form upload (`front::form_upload`): the
//! `Content-Type` boundary, multer over a body streamed in chunks, the text fields, the
//! signature and policy at the `file` part, then the file kept within the policy's
//! size. Everything but the disk write, which `check_form` leaves to its caller.
//!
//! Asserts, beyond "no panic":
//! - any body is refused with a 400 or 403 (a form that is not signed never passes);
//! - the form filegate hands out (either dialect), with any file in the allowed size
//!   and any `x-ignore-` fields, is accepted for exactly its key, with a type the grant
//!   allows and every byte of the file handed out; whatever is changed, an accepted
//!   form never writes another key, more than the policy's size or an empty file;
//! - a form missing its key, policy or signature is refused.
#![no_main]

use std::time::SystemTime;

use bytes::Bytes;
use filegate::check_form;
use filegate::config::{PostDialect, Secret, UploadMethod};
use filegate::keys::ObjectKey;
use filegate::post_policy::form_fields;
use filegate::sigv4::S3Signer;
use filegate::S3Refusal;
use filegate::{TypeRule, UploadRequest};
use filegate_fuzz::{multipart_body, segment, Part};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

const BOUNDARY: &str = "fuzzBoundary7MA4YWxkTrZu0gW";

#[derive(Debug, Arbitrary)]
enum Input {
    /// Any `Content-Type` and body.
    Raw {
        content_type: String,
        body: Vec<u8>,
        chunk: u8,
    },
    /// The form of a grant filegate makes, then the file and a few changes.
    Built {
        key: (String, String),
        content_type: (String, String),
        rule: u8,
        max_size: u16,
        s3: bool,
        extra: Vec<(String, String)>,
        raw_extra: Option<(String, Vec<u8>)>,
        drop_field: Option<u8>,
        part_type: Option<String>,
        file_name: Option<String>,
        file: Vec<u8>,
        chunk: u8,
    },
}

fn signer() -> S3Signer {
    S3Signer::new("fuzz-key-id", Secret::new("fuzz-store-secret"), "us-east-1")
}

/// What the store would write: the key, the content type and the file's size.
struct Accepted {
    key: ObjectKey,
    content_type: String,
    size: u64,
}

fn run(boundary: String, body: Vec<u8>, chunk: u8) -> Result<Accepted, S3Refusal> {
    let step = usize::from(chunk % 64) + 1;
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(step)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let multipart = multer::Multipart::new(futures::stream::iter(chunks), boundary);
    let s = signer();
    futures::executor::block_on(async {
        let now = SystemTime::now();
        let mut form = check_form(multipart, &s, || now).await?;
        let mut size = 0u64;
        while let Some(c) = form.next_chunk().await? {
            size += c.len() as u64;
        }
        assert_eq!(size, form.received());
        form.check_size()?;
        Ok(Accepted {
            key: form.key,
            content_type: form.content_type,
            size,
        })
    })
}

fn check_refusal(r: &S3Refusal) {
    assert!(
        matches!(r.status, 400 | 403),
        "{} {} {}",
        r.status,
        r.code,
        r.message
    );
}

fuzz_target!(|input: Input| match input {
    Input::Raw {
        content_type,
        body,
        chunk,
    } => {
        let Ok(boundary) = multer::parse_boundary(&content_type) else {
            return;
        };
        match run(boundary, body, chunk) {
            Ok(a) => panic!("an unsigned form was accepted for {}", a.key),
            Err(r) => check_refusal(&r),
        }
    }
    Input::Built {
        key,
        content_type,
        rule,
        max_size,
        s3,
        extra,
        raw_extra,
        drop_field,
        part_type,
        file_name,
        file,
        chunk,
    } => {
        let name = format!(
            "demo/chat/1/{}/20260101/{}.bin",
            segment(&key.0, "42"),
            segment(&key.1, "id")
        );
        let Ok(key) = ObjectKey::parse(&name) else {
            panic!("a made key fails the grammar: {name:?}");
        };
        let granted = format!(
            "{}/{}",
            segment(&content_type.0, "image"),
            segment(&content_type.1, "jpeg")
        )
        .to_ascii_lowercase();
        let type_rule = match rule % 3 {
            0 => TypeRule::Exact(granted.clone()),
            1 => TypeRule::OneOf(vec!["image/png".into(), granted.clone()]),
            _ => TypeRule::Any,
        };
        let max = u64::from(max_size).max(1);
        let req = UploadRequest {
            key: key.clone(),
            method: UploadMethod::Post,
            content_type: granted.clone(),
            type_rule: type_rule.clone(),
            max_size: max,
            size: None,
            expires_in: std::time::Duration::from_secs(900),
        };
        let dialect = if s3 {
            PostDialect::S3
        } else {
            PostDialect::Oss
        };
        let mut fields: Vec<(String, String)> =
            form_fields(&req, dialect, &signer(), None, SystemTime::now())
                .into_iter()
                .collect();
        let mut clean = true;
        let mut must_refuse = false;
        if let Some(i) = drop_field {
            let i = usize::from(i) % fields.len();
            let (dropped, _) = fields.remove(i);
            clean = false;
            must_refuse = ["key", "policy", "signature", "x-amz-signature"]
                .contains(&dropped.to_ascii_lowercase().as_str());
        }
        for (k, v) in extra.iter().take(8) {
            fields.push((format!("x-ignore-{}", segment(k, "f")), v.clone()));
        }
        let mut parts: Vec<Part<'_>> = fields
            .iter()
            .map(|(k, v)| Part {
                name: k,
                file_name: None,
                content_type: None,
                body: v.as_bytes(),
            })
            .collect();
        if let Some((k, v)) = &raw_extra {
            clean = false;
            parts.push(Part {
                name: k,
                file_name: None,
                content_type: None,
                body: v,
            });
        }
        let part_type = match &part_type {
            Some(t) => {
                clean = false;
                t.clone()
            }
            None => granted.clone(),
        };
        let file_name = file_name.map(|n| segment(&n, "f"));
        parts.push(Part {
            name: "file",
            file_name: file_name.as_deref(),
            content_type: Some(&part_type),
            body: &file,
        });
        let body = multipart_body(BOUNDARY, &parts);
        let file_ok = !file.is_empty() && file.len() as u64 <= max;
        let has_boundary = |b: &[u8]| b.windows(BOUNDARY.len()).any(|w| w == BOUNDARY.as_bytes());
        clean &= !has_boundary(&file) && !fields.iter().any(|(_, v)| has_boundary(v.as_bytes()));

        match run(BOUNDARY.to_string(), body, chunk) {
            Ok(a) => {
                assert!(
                    !must_refuse,
                    "accepted without its key, policy or signature"
                );
                assert_eq!(a.key, key, "accepted for another key");
                assert!(a.size >= 1 && a.size <= max, "size {} of {max}", a.size);
                let admitted = match &type_rule {
                    _ if s3 => a.content_type == granted,
                    TypeRule::Exact(t) => &a.content_type == t,
                    TypeRule::OneOf(ts) => ts.contains(&a.content_type),
                    TypeRule::Any => true,
                };
                assert!(admitted, "type {:?} outside the grant", a.content_type);
                if clean {
                    assert_eq!(a.size, file.len() as u64);
                }
            }
            Err(r) => {
                check_refusal(&r);
                assert!(
                    !(clean && file_ok),
                    "filegate's own form was refused: {} {}",
                    r.code,
                    r.message
                );
            }
        }
    }
});
