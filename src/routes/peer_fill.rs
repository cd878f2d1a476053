//! `GET /_cluster/fill` from another node (SPEC §10): its signature checked, then the
//! original or derived result it names served from this node's own cache (filled or
//! made here, never asked of a third node), with the object's metadata in a header and
//! the body streamed. The asking node checked its client's credential before asking.

use std::sync::Arc;
use std::time::Duration;

use pingora_http::ResponseHeader;
use pingora_proxy::Session;

use crate::cache::{Found, OriginalBody};
use crate::cluster::fill::{encode_meta, FillSpec, META_HEADER};
use crate::cluster::peer_auth::{Purpose, SPEC_HEADER};
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::fetch::derived::{obtain, plan, Ask};
use crate::http::envelope::write_error;
use crate::services::Services;
use crate::storage::keys::ObjectKey;

/// Answers one fill; returns the status written.
pub async fn answer(
    services: &Arc<Services>,
    cluster: &Cluster,
    session: &mut Session,
) -> pingora_core::Result<u16> {
    let found = async {
        let spec = cluster.verified_spec(Purpose::Fill, &session.req_header().headers)?;
        let spec = FillSpec::decode(&spec)
            .ok_or_else(|| ApiError::bad_param(SPEC_HEADER, "not a fill spec"))?;
        serve_here(services, &spec, cluster.peer_timeout()).await
    }
    .await;
    match found {
        Ok(found) => {
            cluster.count_answered("ok");
            write_found(session, found).await
        }
        Err(e) => {
            let result = if e.status().is_server_error() {
                "error"
            } else {
                "refused"
            };
            cluster.count_answered(result);
            write_error(session, &e, false).await
        }
    }
}

/// What this node serves for a fill: its own cache, its own store. Background work
/// waits at most `patience` for this node's pool to be idle (the asking node waits
/// for the answer `peer_timeout` plus a transform's time), else it is a 429 (below
/// 500: the asker drops the work and does not count this node as failing).
async fn serve_here(
    services: &Arc<Services>,
    spec: &FillSpec,
    patience: Duration,
) -> Result<Found, ApiError> {
    let app_id = spec.app();
    let app = services
        .config
        .apps
        .get(app_id)
        .ok_or_else(ApiError::unknown_app)?;
    let key = ObjectKey::parse(spec.key())
        .map_err(|_| ApiError::bad_param("key", "not an object key"))?;
    match spec {
        FillSpec::Original { .. } => match crate::fetch::original::here(services, &key).await? {
            OriginalBody::Found(found) => Ok(found),
            OriginalBody::Bypass => Err(ApiError::too_large(
                "above cache.max_object: read it from the store",
            )),
        },
        FillSpec::Derived {
            wanted,
            strategy,
            accept,
            background,
            ..
        } => {
            // Another node's eager derivation: made here as it would be there, only
            // while this node's pool is idle.
            let _turn = if *background {
                let turn = services.media.idle_turn(patience).await.ok_or_else(|| {
                    ApiError::new(
                        http::StatusCode::TOO_MANY_REQUESTS,
                        "busy: background work waits for an idle transform pool",
                    )
                })?;
                Some(turn)
            } else {
                None
            };
            let ask = Ask {
                app_id,
                app,
                key: &key,
                wanted: *wanted,
                strategy: *strategy,
                accept: accept.as_deref(),
                background: *background,
            };
            let plan = plan(services, &ask).await?;
            obtain(services, &plan).await
        }
    }
}

/// The body and its metadata, as a fill answers them.
async fn write_found(session: &mut Session, found: Found) -> pingora_core::Result<u16> {
    let Found { mut body, status } = found;
    let meta = body.meta().clone();
    let mut resp = ResponseHeader::build_no_case(200, Some(5))?;
    resp.insert_header("Content-Length", meta.size.to_string())?;
    resp.insert_header("Content-Type", meta.content_type.as_str())?;
    resp.insert_header(META_HEADER, encode_meta(&meta))?;
    resp.insert_header("X-Cache-Status", status.as_str())?;
    session
        .write_response_header(Box::new(resp), meta.size == 0)
        .await?;
    let mut index = 0;
    let mut sent = 0u64;
    loop {
        match body.next_piece(&mut index).await {
            Ok(Some(piece)) => {
                sent += piece.len() as u64;
                session.write_response_body(Some(piece), false).await?;
            }
            Ok(None) => break,
            Err(e) => {
                return Err(pingora_error::Error::explain(
                    pingora_error::ErrorType::ReadError,
                    format!("a fill failed mid-body: {e}"),
                ))
            }
        }
    }
    if sent != meta.size {
        return Err(pingora_error::Error::explain(
            pingora_error::ErrorType::ReadError,
            format!("a fill ended after {sent} of {} bytes", meta.size),
        ));
    }
    session.write_response_body(None, true).await?;
    Ok(200)
}
