//! A presigned GET of an object the store's key pair signed (the embedded store's,
//! and the pass-through's for the URLs filegate hands out), answered from the edge
//! cache exactly as the store would answer it: the bytes with the `response-*`
//! overrides the signature covers; a missing object S3's `NoSuchKey`; any other
//! failure filegate's envelope (a 416 with its `Content-Range`, a failing store 502).

use pingora_proxy::Session;

use crate::fetch::original::serve_original;
use crate::front::s3_error::{write_s3_error, S3Refusal};
use crate::headers::RequestHeaders;
use crate::http::delivery::Failure;
use crate::http::envelope::write_error;
use crate::http::presentation::Presentation;
use crate::query::Query;
use crate::services::Services;
use crate::storage::keys::ObjectKey;

/// Answers a verified presigned GET (or HEAD) of `key`; returns the status written.
pub async fn serve(
    services: &Services,
    session: &mut Session,
    key: &ObjectKey,
) -> pingora_core::Result<u16> {
    let req = session.req_header();
    let presentation = Presentation::presigned(&Query::parse(req.uri.query().unwrap_or("")), key);
    let headers = RequestHeaders::from_map(&req.headers);
    match serve_original(services, session, key, &headers, &presentation).await {
        Ok(status) => Ok(status),
        Err(Failure::Aborted(e)) => Err(e),
        Err(Failure::Api(e)) if e.status() == http::StatusCode::NOT_FOUND => {
            let refusal = S3Refusal::new(404, "NoSuchKey", "The specified key does not exist.");
            write_s3_error(session, &refusal).await
        }
        Err(Failure::Api(e)) => {
            if e.status().is_server_error() {
                log::warn!("presigned GET of {key}: {e}");
            }
            write_error(session, &e, false).await
        }
    }
}
