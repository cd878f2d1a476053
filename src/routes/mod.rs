//! The six `/file` routes (API §6) and the demo page: one typed parse per route
//! ([`Route`], by the table in [`crate::route_table`]), one file per route family
//! ([`upload`], [`forward`], [`download`]), what a handler knows of its request
//! ([`call`]), and the handlers of requests between cluster nodes ([`peer_fill`],
//! [`peer_purge`]).

pub mod call;
pub mod download;
pub mod forward;
pub mod peer_fill;
pub mod peer_purge;
pub mod upload;

use std::sync::Arc;

use http::Method;
use pingora_proxy::Session;

use crate::error::ApiError;
use crate::http::envelope::{health_body, write_json};
use crate::query::Query;
use crate::route_table::RouteId;
use crate::services::Services;

/// Answers a request of another cluster node (`/_cluster/healthz`, `/_cluster/fill`,
/// `/_cluster/purge`) and returns its status; `None` for any other path, or without a
/// cluster.
pub async fn peer_request(
    services: &Arc<Services>,
    session: &mut Session,
) -> pingora_core::Result<Option<u16>> {
    let Some(cluster) = &services.cluster else {
        return Ok(None);
    };
    let status = match session.req_header().uri.path() {
        crate::cluster::HEALTH_PATH => {
            write_json(session, http::StatusCode::OK, health_body()).await?;
            200
        }
        crate::cluster::fill::FILL_PATH => peer_fill::answer(services, cluster, session).await?,
        crate::cluster::purge::PURGE_PATH => peer_purge::answer(services, cluster, session).await?,
        _ => return Ok(None),
    };
    Ok(Some(status))
}

/// A parsed `/file` request.
#[derive(Debug, Clone)]
pub enum Route {
    /// `GET /file/upload/avatar/user`, `/file/upload/avatar/group`, `/file/upload/chat`.
    Upload(upload::UploadParams),
    /// `GET /file/upload/forward`.
    Forward(forward::ForwardParams),
    /// `GET /file/download/avatar`, `/file/download/chat`.
    Download(download::DownloadParams),
    /// `GET /file/demo`: the demo page.
    Demo,
}

impl Route {
    /// Parses path, method and query; 404 for an unknown path, 405 for a wrong method,
    /// 400 naming the parameter at fault.
    pub fn parse(method: &Method, path: &str, query: &Query) -> Result<Route, ApiError> {
        let id = RouteId::from_path(path)?;
        id.check_method(method)?;
        Route::parse_params(id, query)
    }

    /// Parses the query of a route already identified.
    pub fn parse_params(id: RouteId, query: &Query) -> Result<Route, ApiError> {
        Ok(match id {
            RouteId::UploadAvatarUser => {
                Route::Upload(upload::UploadParams::parse_user_avatar(query)?)
            }
            RouteId::UploadAvatarGroup => {
                Route::Upload(upload::UploadParams::parse_group_avatar(query)?)
            }
            RouteId::UploadChat => Route::Upload(upload::UploadParams::parse_chat(query)?),
            RouteId::UploadForward => Route::Forward(forward::ForwardParams::parse(query)?),
            RouteId::DownloadAvatar => {
                Route::Download(download::DownloadParams::parse_avatar(query)?)
            }
            RouteId::DownloadChat => Route::Download(download::DownloadParams::parse_chat(query)?),
            RouteId::Demo => Route::Demo,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_path_and_method() {
        let q = Query::parse("");
        assert_eq!(
            Route::parse(&Method::GET, "/file/nope", &q)
                .unwrap_err()
                .status(),
            404
        );
        let e = Route::parse(&Method::POST, "/file/upload/avatar/user", &q).unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(e.allow(), Some("GET, HEAD, OPTIONS"));
        assert!(Route::parse(&Method::GET, "/file/upload/avatar/user", &q).is_ok());
    }
}
