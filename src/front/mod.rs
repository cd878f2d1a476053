//! What answers requests outside `/file/` (SPEC §1): in the embedded shape the
//! embedded store's own HTTP side ([`embedded`], with its POST form uploads in
//! [`form_upload`]); with an S3 store, the pass-through to it ([`passthrough`]),
//! limited to the bucket's objects ([`bucket_scope`]), which watches the uploads it
//! forwards for eager derivation ([`upload_watch`]). A refused upload's unread body is
//! read before the answer ([`unread_body`]).

pub mod bucket_scope;
pub mod embedded;
pub mod form_upload;
pub mod passthrough;
pub mod presigned_get;
pub mod s3_error;
pub mod unread_body;
pub mod upload_watch;

use std::sync::Arc;

use http::Method;
use pingora_proxy::Session;

use crate::http::envelope::write_error;
use crate::services::Services;
use bucket_scope::Reach;
use embedded::EmbeddedStoreServer;
use passthrough::PassThrough;
use upload_watch::UploadWatch;

/// What answers requests outside `/file/`.
#[derive(Clone)]
pub enum StoreFront {
    /// The embedded store answers them itself.
    Embedded(Arc<EmbeddedStoreServer>),
    /// They are proxied to the S3 store.
    Upstream(Arc<PassThrough>),
}

/// What becomes of a request outside `/file/`.
pub enum Outside {
    /// Answered here (the embedded store, a refusal, a presigned GET from the cache).
    Answered {
        /// The route label.
        route: &'static str,
        /// The status written.
        status: u16,
    },
    /// Forwarded to the store, watched (an upload) or not.
    Forward(UploadWatch),
}

impl StoreFront {
    /// Answers a request outside `/file/`, or says to forward it; `watch_uploads`:
    /// whether uploads are watched for eager derivation.
    pub async fn take(
        &self,
        services: &Services,
        session: &mut Session,
        watch_uploads: bool,
    ) -> pingora_core::Result<Outside> {
        let pass = match self {
            StoreFront::Embedded(store) => {
                let status = store.handle(session).await?;
                return Ok(Outside::Answered {
                    route: "store",
                    status,
                });
            }
            StoreFront::Upstream(pass) => pass,
        };
        let req = session.req_header();
        match pass.reach(req) {
            Ok(Reach::Object(key)) => {
                if !pass.serves_from_cache(req) {
                    let watch = if req.method == Method::PUT && watch_uploads {
                        UploadWatch::put(key)
                    } else {
                        UploadWatch::Nothing
                    };
                    return Ok(Outside::Forward(watch));
                }
                let status = presigned_get::serve(services, session, &key).await?;
                Ok(Outside::Answered {
                    route: "passthrough",
                    status,
                })
            }
            Ok(Reach::FormUpload) => {
                let watch = if req.method == Method::POST && watch_uploads {
                    let content_type = req
                        .headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    UploadWatch::form(content_type)
                } else {
                    UploadWatch::Nothing
                };
                Ok(Outside::Forward(watch))
            }
            Err(refusal) => {
                let status = write_error(session, &refusal, false).await?;
                Ok(Outside::Answered {
                    route: "passthrough",
                    status,
                })
            }
        }
    }
}
