//! [`FileGate`]: the `/file` component. A host pingora service calls
//! [`FileGate::request_filter`] from its own `request_filter`; it answers the `/file`
//! routes and returns `Ok(false)` ("not mine") for everything else, which the host
//! proxies as it likes. [`FileGate::logging`] from the host's `logging` phase records
//! metrics and the access log line for every request, filegate's or not.

use std::sync::Arc;
use std::time::Instant;

use crate::http::exchange::Exchange;
use bytes::Bytes;
use http::{Method, StatusCode};
use pingora_http::{RequestHeader, ResponseHeader};

use crate::auth::{self, Credentials, SignedRequest};
use crate::config::{AppConfig, Config};
use crate::error::ApiError;
use crate::headers::RequestHeaders;
use crate::http::delivery::Failure;
use crate::http::envelope::{success_body, write_error, write_json, write_small};
use crate::metrics::Metrics;
use crate::query::Query;
use crate::rate_limit::UserKey;
use crate::route_table::RouteId;
use crate::routes::call::Call;
use crate::routes::{self, Route};
use crate::services::Services;
use crate::storage::ObjectStore;

/// Per-request state of the component; the host keeps one in its `CTX`
/// (made by [`FileGate::new_ctx`]).
#[derive(Debug)]
pub struct GateCtx {
    started: Instant,
    route: &'static str,
    app: Option<String>,
    /// Who called, formatted for the access log only when it is written.
    principal: Option<crate::auth::Actor>,
    status: u16,
    answered: bool,
    _in_flight: InFlight,
}

/// Counts a request in `filegate_requests_in_flight` for as long as its context
/// lives, so an aborted request can never leave the gauge up.
#[derive(Debug)]
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn new(gauge: &prometheus::IntGauge) -> Self {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl GateCtx {
    /// A context for a request that starts now, counted in flight by `in_flight`.
    fn starting(in_flight: InFlight) -> Self {
        GateCtx {
            started: Instant::now(),
            route: "passthrough",
            app: None,
            principal: None,
            status: 0,
            answered: false,
            _in_flight: in_flight,
        }
    }

    /// Whether filegate (or the host through [`GateCtx::record_answer`]) answered locally.
    pub fn answered(&self) -> bool {
        self.answered
    }

    /// Lets the host label a request it answered itself (e.g. the embedded store).
    pub fn record_answer(&mut self, route: &'static str, status: u16) {
        self.route = route;
        self.status = status;
        self.answered = true;
    }

    /// The route label of this request.
    pub fn route(&self) -> &'static str {
        self.route
    }
}

/// The `/file` component: the shared [`Services`] and the credentials already
/// verified.
pub struct FileGate {
    services: Arc<Services>,
    verified: crate::auth::verified::VerifiedTokens,
}

impl FileGate {
    /// Builds the component over a store (and opens its edge cache).
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn ObjectStore>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        Ok(FileGate::with_services(Arc::new(Services::new(
            config, store, metrics,
        )?)))
    }

    /// Builds the component over services shared with the host.
    pub fn with_services(services: Arc<Services>) -> Self {
        FileGate {
            services,
            verified: crate::auth::verified::VerifiedTokens::new(),
        }
    }

    /// A context for a request that starts now, counted in
    /// `filegate_requests_in_flight` until it is dropped.
    pub fn new_ctx(&self) -> GateCtx {
        GateCtx::starting(InFlight::new(&self.services.metrics.requests_in_flight))
    }

    /// The services shared by every request.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Answers a `/file` request and returns `Ok(true)`, or returns `Ok(false)` for any
    /// other path. An `Err` means the connection broke mid-answer.
    pub async fn request_filter(
        &self,
        session: &mut dyn Exchange,
        ctx: &mut GateCtx,
    ) -> pingora_core::Result<bool> {
        let path = session.req_header().uri.path();
        if path != "/file" && !path.starts_with("/file/") {
            return Ok(false);
        }
        ctx.answered = true;
        let mut as_http_200 = false;
        match self.answer(session, ctx, &mut as_http_200).await {
            Ok(status) => ctx.status = status,
            Err(Failure::Api(err)) => {
                if err.status().is_server_error() || err.detail().is_some() {
                    log::warn!("{} {}: {err}", ctx.route, session.req_header().uri.path());
                }
                ctx.status = write_error(session, &err, as_http_200).await?;
            }
            Err(Failure::Aborted(e)) => {
                ctx.status = session
                    .response_written()
                    .map(|r| r.status.as_u16())
                    .unwrap_or(0);
                return Err(e);
            }
        }
        Ok(true)
    }

    async fn answer(
        &self,
        session: &mut dyn Exchange,
        ctx: &mut GateCtx,
        as_http_200: &mut bool,
    ) -> Result<u16, Failure> {
        let req = session.req_header();
        let method = req.method.clone();
        let path = req.uri.path().to_string();
        let raw_query = req.uri.query().unwrap_or("").to_string();
        check_request_size(req, &self.services.config)?;

        let id = RouteId::from_path(&path);
        ctx.route = id.as_ref().map_or("not_found", |id| id.name());
        // Per address before anything is verified: a flood of bad tokens is cheap.
        let limits = &self.services.rate_limits;
        limits.check_ip(limits.client_ip(peer_ip(session), &req.headers), ctx.route)?;
        let id = id?;
        if method == Method::OPTIONS {
            return Ok(write_preflight(session).await?);
        }
        id.check_method(&method)?;
        let Some(access) = id.access() else {
            return self.demo_page(session).await;
        };
        let query = Query::parse(&raw_query);

        let headers = &session.req_header().headers;
        let app_id = auth::header_or_query(headers, &query, "app_id")?
            .ok_or_else(|| ApiError::bad_param("app_id", "required (header or query parameter)"))?;
        let app: &AppConfig = self
            .services
            .config
            .apps
            .get(&app_id)
            .ok_or_else(ApiError::unknown_app)?;
        ctx.app = Some(app_id.clone());
        *as_http_200 = app.errors_as_http_200;

        let creds = Credentials::extract(headers, &query)?;
        let actor = auth::authenticate(
            &app_id,
            app,
            &creds,
            access,
            SignedRequest {
                path: &path,
                query: &query,
            },
            &self.verified,
        )?;
        ctx.principal = Some(actor.clone());
        let request_headers = RequestHeaders::from_map(headers);

        let route = Route::parse_params(id, &query)?;
        if let Some(user) = self.limited_user(&app_id, app, &actor, &route) {
            self.services.rate_limits.check_user(&user, ctx.route)?;
        }
        let call = Call {
            app_id: &app_id,
            app,
            actor: &actor,
            headers: &request_headers,
        };
        match route {
            Route::Upload(params) => {
                let answer = routes::upload::grant_upload(&self.services, &call, &params)?;
                Ok(write_success(session, &answer).await?)
            }
            Route::Forward(params) => {
                let sign = routes::forward::forward(&call, &params)?;
                Ok(write_success(session, &sign).await?)
            }
            Route::Download(params) => {
                routes::download::download(&self.services, session, &call, &params).await
            }
            Route::Demo => self.demo_page(session).await,
        }
    }

    /// Who a per-user limit counts a request against: the token's `sub`, or for a
    /// signed URL (no identity) the owner of the object it names (the avatar's user
    /// or group, the chat file's uploader).
    fn limited_user(
        &self,
        app_id: &str,
        app: &AppConfig,
        actor: &auth::Actor,
        route: &Route,
    ) -> Option<UserKey> {
        if let Some(sub) = actor.principal.sub() {
            return Some(UserKey::user(app_id, sub));
        }
        let Route::Download(params) = route else {
            return None;
        };
        match &params.target {
            routes::download::DownloadTarget::Avatar { object_name } => {
                let mut parts = object_name.split('/');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some("avatar"), Some("user"), Some(id)) => {
                        Some(UserKey::user(app_id, id.parse().ok()?))
                    }
                    (Some("avatar"), Some("group"), Some(id)) => {
                        Some(UserKey::group(app_id, id.parse().ok()?))
                    }
                    _ => None,
                }
            }
            routes::download::DownloadTarget::Chat { file_sign } => {
                let sign = self
                    .services
                    .file_signs
                    .verify(file_sign, app_id, &app.secrets)
                    .ok()?;
                Some(UserKey::user(app_id, sign.fr))
            }
        }
    }

    async fn demo_page(&self, session: &mut dyn Exchange) -> Result<u16, Failure> {
        if !self.services.config.demo_page {
            return Err(ApiError::not_found("the demo page is off (demo_page: false)").into());
        }
        let mut resp = ResponseHeader::build_no_case(StatusCode::OK, Some(4))?;
        resp.insert_header("Content-Type", "text/html; charset=utf-8")?;
        resp.insert_header("Cache-Control", "no-store")?;
        write_small(
            session,
            resp,
            Bytes::from_static(crate::demo::DEMO_PAGE.as_bytes()),
        )
        .await?;
        Ok(200)
    }

    /// Records metrics and writes the access log line. Call it from the host's
    /// `logging` phase for every request.
    pub fn logging(
        &self,
        session: &dyn Exchange,
        error: Option<&pingora_error::Error>,
        ctx: &GateCtx,
    ) {
        let status = if ctx.answered && ctx.status != 0 {
            ctx.status
        } else {
            session
                .response_written()
                .map(|r| r.status.as_u16())
                .unwrap_or(if error.is_some() { 502 } else { 0 })
        };
        let elapsed = ctx.started.elapsed();
        self.services
            .metrics
            .observe_request(ctx.route, status, elapsed.as_secs_f64());
        if !crate::access_log::enabled() {
            return;
        }
        let req = session.req_header();
        let cache = session
            .response_written()
            .and_then(|r| r.headers.get("x-cache-status"))
            .and_then(|v| v.to_str().ok());
        let client = session.client_addr();
        crate::access_log::write(&crate::access_log::AccessRecord {
            method: req.method.as_str(),
            path: req.uri.path(),
            route: ctx.route,
            status,
            bytes: session.body_bytes_sent() as u64,
            duration: elapsed,
            app: ctx.app.as_deref(),
            principal: ctx.principal.as_ref().map(|a| a as &dyn std::fmt::Display),
            client: client.map(|a| a as &dyn std::fmt::Display),
            cache,
            error: error.map(|e| e.etype().as_str()),
        });
    }
}

async fn write_success<T: serde::Serialize>(
    session: &mut dyn Exchange,
    data: &T,
) -> pingora_core::Result<u16> {
    write_json(session, StatusCode::OK, success_body(data)).await?;
    Ok(200)
}

/// CORS preflight of the `/file` routes: the SDKs send credentials as headers from
/// other origins.
async fn write_preflight(session: &mut dyn Exchange) -> pingora_core::Result<u16> {
    let mut resp = ResponseHeader::build_no_case(StatusCode::NO_CONTENT, Some(4))?;
    resp.insert_header(
        "Access-Control-Allow-Methods",
        crate::route_table::ALLOWED_METHODS,
    )?;
    resp.insert_header(
        "Access-Control-Allow-Headers",
        "access-token, app_id, user_id, group_id, store_token, sdk_sign, range, if-none-match, accept",
    )?;
    resp.insert_header("Access-Control-Max-Age", "86400")?;
    write_small(session, resp, Bytes::new()).await?;
    Ok(204)
}

/// 414 for an over-long query, 431 for over-large headers (SPEC §7).
/// The address of the socket's peer (`None` for a Unix socket).
pub(crate) fn peer_ip(session: &dyn Exchange) -> Option<std::net::IpAddr> {
    session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip())
}

fn check_request_size(req: &RequestHeader, config: &Config) -> Result<(), ApiError> {
    let query_len = req.uri.query().map_or(0, str::len) as u64;
    if query_len > config.limits.max_query_bytes.as_u64() {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "query string too long",
        ));
    }
    let header_len: usize = req
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + req.uri.path_and_query().map_or(0, |p| p.as_str().len());
    if header_len as u64 > config.limits.max_header_bytes.as_u64() {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::claims::{TokenClaims, TokenKind};
    use crate::config::Secret;
    use crate::storage::embedded::EmbeddedStore;
    use pingora_proxy::Session;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SECRET: &str = "gate-test-secret-0123456789";

    fn gate(dir: &std::path::Path) -> FileGate {
        let config = Config::from_yaml(&format!(
            "store:\n  kind: embedded\n  dir: {}\napps:\n  demo:\n    secrets: [{SECRET}]\n  legacy:\n    secrets: [{SECRET}]\n    errors_as_http_200: true\n",
            dir.display()
        ))
        .expect("config");
        config.validate().expect("valid");
        let store: Arc<dyn ObjectStore> = Arc::new(EmbeddedStore::open(&config).expect("store"));
        FileGate::new(Arc::new(config), store, Arc::new(Metrics::new())).expect("gate")
    }

    /// Sends one request through the gate's `request_filter`: whether it answered,
    /// the route label, and the raw answer.
    async fn ask(gate: &FileGate, request: &str) -> (bool, &'static str, String) {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        client.write_all(request.as_bytes()).await.expect("write");
        let mut session = Session::new_h1(Box::new(server));
        assert!(session.read_request().await.expect("a request"));
        let mut ctx = gate.new_ctx();
        let answered = gate
            .request_filter(&mut session, &mut ctx)
            .await
            .expect("answered");
        drop(session);
        let mut raw = Vec::new();
        client.read_to_end(&mut raw).await.expect("read");
        (
            answered,
            ctx.route(),
            String::from_utf8_lossy(&raw).into_owned(),
        )
    }

    fn token(app: &str) -> String {
        let claims = TokenClaims::new(app, 42, TokenKind::User, 600);
        crate::auth::jwt::mint(&claims, &Secret::new(SECRET)).expect("mint")
    }

    #[tokio::test]
    async fn each_phase_answers_its_refusal_and_the_rest_is_not_the_gates() {
        let dir = tempfile::tempdir().expect("dir");
        let gate = gate(dir.path());
        let get =
            |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
        // Not under /file: left to the host.
        let (answered, _, raw) = ask(&gate, &get("/bucket/key", "")).await;
        assert!(!answered && raw.is_empty());
        let cases: [(String, &str, &str, &[&str]); 7] = [
            (
                get("/file/nope", ""),
                "not_found",
                "HTTP/1.1 404",
                &[r#""code":404"#],
            ),
            (
                "POST /file/upload/chat HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
                    .to_string(),
                "upload_chat",
                "HTTP/1.1 405",
                &["allow: GET, HEAD, OPTIONS"],
            ),
            (
                "OPTIONS /file/download/chat HTTP/1.1\r\nHost: t\r\n\r\n".to_string(),
                "download_chat",
                "HTTP/1.1 204",
                &["access-control-allow-methods: GET, HEAD, OPTIONS"],
            ),
            (
                get("/file/upload/avatar/user", ""),
                "upload_avatar_user",
                "HTTP/1.1 400",
                &["app_id: required"],
            ),
            (
                get("/file/upload/avatar/user?app_id=nope", ""),
                "upload_avatar_user",
                "HTTP/1.1 401",
                &[r#""code":40000"#],
            ),
            (
                get("/file/upload/avatar/user?app_id=demo", ""),
                "upload_avatar_user",
                "HTTP/1.1 401",
                &[r#""code":10003"#, "cache-control: no-store"],
            ),
            (
                get("/file/upload/avatar/user?app_id=legacy", ""),
                "upload_avatar_user",
                "HTTP/1.1 200",
                &[r#""code":10003"#],
            ),
        ];
        for (request, route, status, contains) in cases {
            let (answered, label, raw) = ask(&gate, &request).await;
            assert!(answered, "{request}");
            assert_eq!(label, route, "{request}");
            assert!(raw.starts_with(status), "{request}: {raw}");
            let lower = raw.to_ascii_lowercase();
            for c in contains {
                assert!(
                    lower.contains(&c.to_ascii_lowercase()),
                    "{request}: {c} in {raw}"
                );
            }
        }
        // A valid token: the grant.
        let (answered, route, raw) = ask(
            &gate,
            &get(
                "/file/upload/avatar/user?app_id=demo",
                &format!("access-token: {}\r\n", token("demo")),
            ),
        )
        .await;
        assert!(answered && route == "upload_avatar_user");
        assert!(
            raw.starts_with("HTTP/1.1 200") && raw.contains("upload_url"),
            "{raw}"
        );
    }
}
