//! `POST /` on the embedded store: a browser form upload in either dialect, checked
//! against its signed policy while the body streams (SPEC §5). The form's fields come
//! first; at the `file` part the signature and every condition are checked, then the
//! bytes stream into an atomic writer that stops at the policy's size limit. A refused
//! or aborted upload leaves nothing behind.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use pingora_proxy::Session;

use crate::file_type::essence;
use crate::front::s3_error::{write_s3_error, S3Refusal};
use crate::media::sniff::SniffHead;
use crate::services::Services;
use crate::storage::embedded::EmbeddedStore;
use crate::storage::keys::ObjectKey;
use crate::storage::post_policy::{verify_form_signature, Policy, PolicyViolation};
use crate::storage::sigv4::S3Signer;
use crate::storage::{ObjectMeta, StoreError};

/// Most form fields before `file`.
const MAX_FIELDS: usize = 64;
/// Largest text field.
const MAX_FIELD_BYTES: usize = 16 * 1024;
/// Largest file when a policy sets no `content-length-range`.
const MAX_UNBOUNDED: u64 = 5 * 1024 * 1024 * 1024;

/// A stored upload.
struct Stored {
    key: ObjectKey,
    meta: ObjectMeta,
    success_status: u16,
    /// The file's first bytes (eager derivation sniffs them).
    head: SniffHead,
}

fn malformed(e: impl std::fmt::Display) -> S3Refusal {
    S3Refusal::new(
        400,
        "MalformedPOSTRequest",
        format!("The body of your POST request is not well-formed multipart/form-data: {e}"),
    )
}

/// Receives a form upload and answers it (success or an S3-style error); a stored
/// upload is handed to eager derivation.
pub async fn receive(
    store: &EmbeddedStore,
    services: &Services,
    session: &mut Session,
) -> pingora_core::Result<u16> {
    let metrics = &services.metrics;
    let content_type = session
        .req_header()
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let boundary = match multer::parse_boundary(&content_type) {
        Ok(b) => b,
        Err(_) => {
            session.set_keepalive(None);
            let refusal = S3Refusal::new(
                400,
                "InvalidArgument",
                "POST requires exactly one file upload per request, as multipart/form-data.",
            );
            return write_s3_error(session, &refusal).await;
        }
    };

    // The body is pumped from the session into a channel that multer reads, so the
    // parser can own its input while this task keeps the session.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let multipart = multer::Multipart::new(body, boundary);

    let (outcome, body_done) = {
        let consume = consume_form(store, multipart);
        tokio::pin!(consume);
        let pump = pump_body(session, tx);
        tokio::pin!(pump);
        let mut pump_finished = false;
        loop {
            tokio::select! {
                out = &mut consume => break (out, pump_finished),
                res = &mut pump, if !pump_finished => {
                    pump_finished = true;
                    if res.is_err() {
                        // The client went away: the parser sees the stream end and fails.
                        log::debug!("form upload: client body ended early");
                    }
                }
            }
        }
    };

    match outcome {
        Ok(stored) => {
            metrics.store_uploads.with_label_values(&["ok"]).inc();
            services
                .eager
                .submit(&services.config, &stored.key, stored.head.bytes());
            if !body_done {
                // Only the closing boundary should be left; read it so the connection
                // can be reused.
                let _ = session.drain_request_body().await;
            }
            write_success(session, &stored).await
        }
        Err(refusal) => {
            metrics.store_uploads.with_label_values(&["refused"]).inc();
            log::info!("form upload refused: {} {}", refusal.code, refusal.message);
            if !body_done {
                crate::front::unread_body::discard_unread_body(session).await;
            }
            write_s3_error(session, &refusal).await
        }
    }
}

async fn pump_body(
    session: &mut Session,
    tx: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> pingora_core::Result<()> {
    loop {
        match session.read_request_body().await {
            Ok(Some(chunk)) => {
                if tx.send(Ok(chunk)).await.is_err() {
                    return Ok(());
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                let _ = tx
                    .send(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        e.to_string(),
                    )))
                    .await;
                return Err(e);
            }
        }
    }
}

async fn consume_form(
    store: &EmbeddedStore,
    multipart: multer::Multipart<'static>,
) -> Result<Stored, S3Refusal> {
    let mut form = check_form(multipart, store.signer(), SystemTime::now).await?;
    if store.exists(&form.key).await {
        return Err(S3Refusal::from_store(&StoreError::Exists));
    }
    let mut writer = store
        .begin_write(&form.key)
        .await
        .map_err(|e| S3Refusal::from_store(&e))?;
    let mut head = SniffHead::default();
    while let Some(chunk) = form.next_chunk().await? {
        if chunk.is_empty() {
            continue;
        }
        head.feed(&chunk);
        writer
            .write(&chunk)
            .await
            .map_err(|e| S3Refusal::new(500, "InternalError", e.to_string()))?;
    }
    form.check_size()?;
    let meta = writer
        .commit(&form.content_type, form.file_name.take())
        .await
        .map_err(|e| S3Refusal::from_store(&e))?;
    Ok(Stored {
        key: form.key,
        meta,
        success_status: form.success_status,
        head,
    })
}

/// A form whose fields passed its signed policy, positioned at its `file` part: what
/// is left is to stream the file, which [`CheckedForm::next_chunk`] keeps within the
/// policy's size limit. Parsing stops here, so it can be exercised without a disk
/// (the `form_upload` fuzz target does).
pub struct CheckedForm {
    /// The key the form may write.
    pub key: ObjectKey,
    /// The stored content type (form field, else part type, else sniffed).
    pub content_type: String,
    /// The file part's file name, if it has one.
    pub file_name: Option<String>,
    /// The status a success answers: 200 unless the form asks for 201 or 204.
    pub success_status: u16,
    policy: Policy,
    max: u64,
    received: u64,
    first: Option<Bytes>,
    field: multer::Field<'static>,
    // Kept alive while the file streams, as the parser's owner.
    _multipart: multer::Multipart<'static>,
}

/// Reads a form's text fields up to its `file` part, then checks the signature (either
/// dialect), the key's grammar and every policy condition at `now()` (read when the
/// `file` part begins).
pub async fn check_form(
    mut multipart: multer::Multipart<'static>,
    signer: &S3Signer,
    now: impl Fn() -> SystemTime,
) -> Result<CheckedForm, S3Refusal> {
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or("").to_ascii_lowercase();
        if name != "file" {
            if fields.len() >= MAX_FIELDS {
                return Err(malformed("too many form fields"));
            }
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                value.extend_from_slice(&chunk);
                if value.len() > MAX_FIELD_BYTES {
                    return Err(S3Refusal::new(
                        400,
                        "MaxPostPreDataLengthExceeded",
                        format!("field {name} is too long"),
                    ));
                }
            }
            let value = String::from_utf8(value)
                .map_err(|_| malformed(format!("field {name} is not UTF-8")))?;
            fields.insert(name, value);
            continue;
        }

        let policy = verify_form_signature(&fields, signer)?;
        let key = fields.get("key").ok_or_else(|| {
            S3Refusal::new(
                400,
                "InvalidArgument",
                "Bucket POST must contain a field named 'key'.",
            )
        })?;
        let key = ObjectKey::parse(key)
            .map_err(|_| S3Refusal::new(400, "InvalidArgument", "invalid key"))?;
        let part_type = field.content_type().map(|m| m.to_string());
        let file_name = field
            .file_name()
            .map(str::to_string)
            .filter(|n| !n.is_empty());
        let first = field.chunk().await.map_err(malformed)?.unwrap_or_default();
        let content_type = resolve_content_type(
            fields.get("content-type").map(String::as_str),
            part_type.as_deref(),
            &first,
        );
        let mut checked = fields.clone();
        checked.insert("content-type".into(), content_type.clone());
        policy.check_fields(&checked, now())?;

        let max = policy.max_size().unwrap_or(MAX_UNBOUNDED);
        // OSS and S3 answer 204 by default; the product's server-side client sends no
        // success_action_status and checks for 200, so 200 is this store's default.
        let success_status = match fields.get("success_action_status").map(String::as_str) {
            Some("201") => 201,
            Some("204") => 204,
            _ => 200,
        };
        return Ok(CheckedForm {
            key,
            content_type,
            file_name,
            success_status,
            policy,
            max,
            received: 0,
            first: Some(first),
            field,
            _multipart: multipart,
        });
    }
    Err(S3Refusal::new(
        400,
        "InvalidArgument",
        "POST requires exactly one file upload per request.",
    ))
}

impl CheckedForm {
    /// The file's next chunk (`None` at its end); `EntityTooLarge` as soon as the bytes
    /// so far pass the policy's limit.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, S3Refusal> {
        let chunk = match self.first.take() {
            Some(first) => first,
            None => match self.field.chunk().await.map_err(malformed)? {
                Some(next) => next,
                None => return Ok(None),
            },
        };
        if self.received + chunk.len() as u64 > self.max {
            return Err(PolicyViolation::TooLarge.into());
        }
        self.received += chunk.len() as u64;
        Ok(Some(chunk))
    }

    /// Bytes of the file handed out so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Once the file has ended: its size against `content-length-range`.
    pub fn check_size(&self) -> Result<(), S3Refusal> {
        Ok(self.policy.check_size(self.received)?)
    }
}

/// The stored content type: the form's `Content-Type` field, else the file part's
/// type; a generic or missing one is sniffed from the first bytes.
fn resolve_content_type(form: Option<&str>, part: Option<&str>, first: &[u8]) -> String {
    if let Some(t) = form.map(essence).filter(|t| !t.is_empty()) {
        return t;
    }
    let declared = part.map(essence).unwrap_or_default();
    if declared.is_empty() || declared == "application/octet-stream" {
        if let Some(kind) = infer::get(first) {
            return kind.mime_type().to_string();
        }
        return "application/octet-stream".to_string();
    }
    declared
}

async fn write_success(session: &mut Session, stored: &Stored) -> pingora_core::Result<u16> {
    use pingora_http::ResponseHeader;
    let status = stored.success_status;
    let body = if status == 201 {
        Bytes::from(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Key>{}</Key><ETag>{}</ETag></PostResponse>",
            stored.key,
            stored.meta.etag.replace('"', "&quot;")
        ))
    } else {
        Bytes::new()
    };
    let mut resp = ResponseHeader::build_no_case(status, Some(6))?;
    resp.insert_header("ETag", &stored.meta.etag)?;
    resp.insert_header("Access-Control-Expose-Headers", "ETag")?;
    if status == 201 {
        resp.insert_header("Content-Type", "application/xml")?;
    }
    crate::http::envelope::write_small(session, resp, body).await?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PostDialect, Secret, UploadMethod};
    use crate::storage::post_policy::form_fields;
    use crate::storage::{TypeRule, UploadRequest};

    fn signer() -> S3Signer {
        S3Signer::new("AK", Secret::new("secret-secret-secret"), "us-east-1")
    }

    /// The form filegate hands out for a 10-byte-limit upload, with `file` last.
    fn form(file: &[u8]) -> multer::Multipart<'static> {
        let req = UploadRequest {
            key: ObjectKey::parse("demo/avatar/user/1/a.jpg").unwrap(),
            method: UploadMethod::Post,
            content_type: "image/jpeg".into(),
            type_rule: TypeRule::Exact("image/jpeg".into()),
            max_size: 10,
            size: None,
            expires_in: std::time::Duration::from_secs(60),
        };
        let mut body = Vec::new();
        let fields = form_fields(&req, PostDialect::Oss, &signer(), None, SystemTime::now());
        for (k, v) in fields {
            body.extend_from_slice(
                format!("--B\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                    .as_bytes(),
            );
        }
        body.extend_from_slice(
            b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n",
        );
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n--B--\r\n");
        let stream = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(body))]);
        multer::Multipart::new(stream, "B")
    }

    async fn read_all(file: &[u8]) -> Result<(CheckedForm, Vec<u8>), S3Refusal> {
        let mut checked = check_form(form(file), &signer(), SystemTime::now).await?;
        let mut got = Vec::new();
        while let Some(chunk) = checked.next_chunk().await? {
            got.extend_from_slice(&chunk);
        }
        checked.check_size()?;
        Ok((checked, got))
    }

    #[test]
    fn checked_form_streams_within_the_policy() {
        futures::executor::block_on(async {
            let (checked, got) = read_all(b"0123456789").await.unwrap();
            assert_eq!(checked.key.as_str(), "demo/avatar/user/1/a.jpg");
            assert_eq!(checked.content_type, "image/jpeg");
            assert_eq!(checked.file_name.as_deref(), Some("a.jpg"));
            assert_eq!(checked.success_status, 200);
            assert_eq!(got, b"0123456789");
            let too_large = read_all(b"0123456789a").await.err().unwrap();
            assert_eq!(too_large.code, "EntityTooLarge");
            let empty = read_all(b"").await.err().unwrap();
            assert_eq!(empty.code, "EntityTooSmall");
        });
    }

    #[test]
    fn content_type_resolution() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
        ];
        assert_eq!(
            resolve_content_type(Some("image/jpeg"), Some("image/png"), &png),
            "image/jpeg"
        );
        assert_eq!(
            resolve_content_type(None, Some("image/png; x=y"), &[]),
            "image/png"
        );
        assert_eq!(
            resolve_content_type(None, Some("application/octet-stream"), &png),
            "image/png"
        );
        assert_eq!(
            resolve_content_type(None, None, b"hello"),
            "application/octet-stream"
        );
    }
}
