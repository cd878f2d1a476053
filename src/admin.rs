//! The admin listener (default 127.0.0.1:9180), apart from the public one:
//! `GET /healthz`, `GET /metrics` (Prometheus text format) and
//! `POST /cache/purge?key=KEY` or `?prefix=PREFIX` (SPEC §6), which in a cluster
//! purges every node (SPEC §13). With `admin_token` set, every route but `/healthz`
//! needs `Authorization: Bearer <admin_token>`.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use subtle::ConstantTimeEq;

use crate::cache::purge::PurgeTarget;
use crate::cluster::purge::PeerPurge;
use crate::config::Secret;
use crate::error::ApiError;
use crate::http::envelope::{error_body, health_body, success_body};
use crate::query::Query;
use crate::services::Services;

/// The admin HTTP app.
pub struct AdminApp {
    services: Arc<Services>,
    token: Option<Secret>,
}

impl AdminApp {
    /// An admin app over `services` (their metrics, their cache to purge), guarded by
    /// `token`.
    pub fn new(services: Arc<Services>, token: Option<Secret>) -> Self {
        AdminApp { services, token }
    }

    fn authorized(&self, req: &pingora_http::RequestHeader) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let sent = req
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(sent.as_bytes().ct_eq(token.expose()))
    }

    /// Purges `?key=` or `?prefix=` here and, in a cluster, on every other node:
    /// the envelope's `data` is `{"purged": N}`, and in a cluster `nodes` with each
    /// node's count or `"unreachable"`.
    async fn purge(&self, query: &Query) -> Result<serde_json::Value, ApiError> {
        let target = PurgeTarget::parse(query.get("key")?, query.get("prefix")?)?;
        let services = &self.services;
        let here = services.purge_here(&target).await;
        let (name, value) = target.as_param();
        let Some(cluster) = &services.cluster else {
            log::info!("cache purge: {name}={value}: {here} entries");
            return Ok(serde_json::json!({ "purged": here }));
        };
        let mut total = here;
        let mut nodes = serde_json::Map::new();
        nodes.insert(cluster.self_url().to_string(), here.into());
        for (url, outcome) in cluster.purge_peers(&target).await {
            let value = match outcome {
                PeerPurge::Purged(n) => {
                    total += n;
                    n.into()
                }
                PeerPurge::Unreachable => "unreachable".into(),
            };
            nodes.insert(url, value);
        }
        log::info!("cache purge: {name}={value}: {total} entries on the cluster");
        Ok(serde_json::json!({ "purged": total, "nodes": nodes }))
    }
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(v) = content_type.parse() {
        headers.insert(http::header::CONTENT_TYPE, v);
    }
    headers.insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    let len = resp.body().len();
    resp.headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
    resp
}

fn envelope_error(err: &ApiError) -> Response<Vec<u8>> {
    let mut resp = respond(err.status(), "application/json", error_body(err).to_vec());
    if let Some(allow) = err.allow() {
        if let Ok(v) = allow.parse() {
            resp.headers_mut().insert(http::header::ALLOW, v);
        }
    }
    if err.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer"),
        );
    }
    resp
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let path = req.uri.path();
        if path == "/healthz" {
            if req.method != Method::GET && req.method != Method::HEAD {
                return envelope_error(&ApiError::method_not_allowed("GET, HEAD"));
            }
            return respond(StatusCode::OK, "application/json", health_body().to_vec());
        }
        if !self.authorized(req) {
            return envelope_error(
                &ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "admin routes need Authorization: Bearer <admin_token>",
                )
                .with_code(crate::error::codes::NO_CREDENTIAL),
            );
        }
        match path {
            "/metrics" if req.method == Method::GET || req.method == Method::HEAD => {
                let metrics = &self.services.metrics;
                let (memory, disk) = self.services.cache.bytes();
                metrics
                    .cache_bytes
                    .with_label_values(&["memory"])
                    .set(memory as i64);
                metrics
                    .cache_bytes
                    .with_label_values(&["disk"])
                    .set(disk as i64);
                if let Some(cluster) = &self.services.cluster {
                    metrics.cluster_nodes_live.set(cluster.live_nodes() as i64);
                }
                respond(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics.render().into_bytes(),
                )
            }
            "/metrics" => envelope_error(&ApiError::method_not_allowed("GET, HEAD")),
            "/cache/purge" if req.method == Method::POST => {
                let query = Query::parse(req.uri.query().unwrap_or(""));
                match self.purge(&query).await {
                    Ok(data) => respond(
                        StatusCode::OK,
                        "application/json",
                        success_body(&data).to_vec(),
                    ),
                    Err(e) => envelope_error(&e),
                }
            }
            "/cache/purge" => envelope_error(&ApiError::method_not_allowed("POST")),
            _ => envelope_error(&ApiError::not_found(
                "admin routes: /healthz, /metrics, POST /cache/purge",
            )),
        }
    }
}
