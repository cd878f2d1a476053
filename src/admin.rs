//! The admin listener: `GET /healthz` and `GET /metrics` (Prometheus text format).
//! It listens apart from the public listener (default 127.0.0.1:9180).

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;

use crate::metrics::Metrics;

/// The admin HTTP app.
pub struct AdminApp {
    metrics: Arc<Metrics>,
}

impl AdminApp {
    /// An admin app exposing `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        AdminApp { metrics }
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

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "application/json",
                br#"{"code":405,"data":null,"message":"use GET"}"#.to_vec(),
            );
        }
        match req.uri.path() {
            "/healthz" => respond(
                StatusCode::OK,
                "application/json",
                br#"{"code":200,"data":{"status":"ok"},"message":null}"#.to_vec(),
            ),
            "/metrics" => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                self.metrics.render().into_bytes(),
            ),
            _ => respond(
                StatusCode::NOT_FOUND,
                "application/json",
                br#"{"code":404,"data":null,"message":"admin routes: /healthz, /metrics"}"#
                    .to_vec(),
            ),
        }
    }
}
