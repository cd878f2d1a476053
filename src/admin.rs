//! The admin listener (default 127.0.0.1:9180), apart from the public one:
//! `GET /healthz`, `GET /metrics` (Prometheus text format) and
//! `POST /cache/purge?key=KEY` or `?prefix=PREFIX` (SPEC §6). With `admin_token` set,
//! every route but `/healthz` needs `Authorization: Bearer <admin_token>`.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Method, Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use subtle::ConstantTimeEq;

use crate::cache::EdgeCache;
use crate::cluster::Cluster;
use crate::config::Secret;
use crate::envelope::{error_body, success_body};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::query::Query;
use crate::storage::keys::ObjectKey;

/// The admin HTTP app.
pub struct AdminApp {
    metrics: Arc<Metrics>,
    cache: EdgeCache,
    cluster: Option<Arc<Cluster>>,
    token: Option<Secret>,
}

impl AdminApp {
    /// An admin app exposing `metrics` and purging `cache`, guarded by `token`.
    pub fn new(
        metrics: Arc<Metrics>,
        cache: EdgeCache,
        cluster: Option<Arc<Cluster>>,
        token: Option<Secret>,
    ) -> Self {
        AdminApp {
            metrics,
            cache,
            cluster,
            token,
        }
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

    fn purge(&self, query: &Query) -> Result<usize, ApiError> {
        let purged = self.purge_cache(query)?;
        // Copies of what owners sent are short-lived and keyed by fill, not by object:
        // dropping them all is cheaper than indexing them.
        if let Some(cluster) = &self.cluster {
            cluster.drop_local_copies();
        }
        Ok(purged)
    }

    fn purge_cache(&self, query: &Query) -> Result<usize, ApiError> {
        match (query.get("key")?, query.get("prefix")?) {
            (Some(key), None) => {
                let key = ObjectKey::parse(key)
                    .map_err(|_| ApiError::bad_param("key", "not an object key (<app>/...)"))?;
                Ok(self.cache.purge_key(key.as_str()))
            }
            (None, Some(prefix)) => {
                let valid =
                    prefix.ends_with('/') && ObjectKey::parse(prefix.trim_end_matches('/')).is_ok();
                if !valid {
                    return Err(ApiError::bad_param(
                        "prefix",
                        "a key prefix ending in `/`, e.g. demo/chat/",
                    ));
                }
                Ok(self.cache.purge_prefix(prefix))
            }
            (Some(_), Some(_)) => Err(ApiError::bad_param("key", "give key or prefix, not both")),
            (None, None) => Err(ApiError::bad_param("key", "key or prefix is required")),
        }
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
            return respond(
                StatusCode::OK,
                "application/json",
                br#"{"code":200,"data":{"status":"ok"},"message":null}"#.to_vec(),
            );
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
                let (memory, disk) = self.cache.bytes();
                self.metrics
                    .cache_bytes
                    .with_label_values(&["memory"])
                    .set(memory as i64);
                self.metrics
                    .cache_bytes
                    .with_label_values(&["disk"])
                    .set(disk as i64);
                if let Some(cluster) = &self.cluster {
                    self.metrics
                        .cluster_nodes_live
                        .set(cluster.live_nodes() as i64);
                }
                respond(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render().into_bytes(),
                )
            }
            "/metrics" => envelope_error(&ApiError::method_not_allowed("GET, HEAD")),
            "/cache/purge" if req.method == Method::POST => {
                let query = Query::parse(req.uri.query().unwrap_or(""));
                match self.purge(&query) {
                    Ok(purged) => {
                        log::info!("cache purge: {purged} entries");
                        respond(
                            StatusCode::OK,
                            "application/json",
                            success_body(&serde_json::json!({ "purged": purged })).to_vec(),
                        )
                    }
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
