//! `POST /_cluster/purge` from another node (SPEC §13): its signature checked, the
//! purge it names done on this node only (never sent on), and the entries removed
//! answered in the envelope (`data: {"purged": n}`).

use std::sync::Arc;

use http::StatusCode;
use pingora_proxy::Session;

use crate::cluster::peer_auth::Purpose;
use crate::cluster::purge::PurgeSpec;
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::http::envelope::{success_body, write_error, write_json};
use crate::services::Services;

/// Answers one purge from another node; returns the status written.
pub async fn answer(
    services: &Arc<Services>,
    cluster: &Cluster,
    session: &mut Session,
) -> pingora_core::Result<u16> {
    let purged = async {
        if session.req_header().method != http::Method::POST {
            return Err(ApiError::method_not_allowed("POST"));
        }
        let spec = cluster.verified_spec(Purpose::Purge, &session.req_header().headers)?;
        let target = PurgeSpec::decode(&spec)
            .ok_or_else(|| ApiError::bad_param("x-filegate-fill", "not a purge spec"))?;
        let purged = services.purge_here(&target).await;
        let (name, value) = target.as_param();
        log::info!("cache purge from a peer: {name}={value}: {purged} entries");
        Ok(purged)
    }
    .await;
    match purged {
        Ok(purged) => {
            let body = success_body(&serde_json::json!({ "purged": purged }));
            write_json(session, StatusCode::OK, body).await?;
            Ok(200)
        }
        Err(e) => write_error(session, &e, false).await,
    }
}
