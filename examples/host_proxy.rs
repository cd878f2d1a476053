//! A host pingora proxy that mounts filegate as a component: it answers its own
//! `/hello`, lets filegate answer `/file/...`, and proxies everything else to an
//! origin of its choosing (here: a second local service, or 502 without one).
//!
//! ```text
//! cargo run --example host_proxy -- 127.0.0.1:6190 conf/filegate.yaml
//! curl 127.0.0.1:6190/hello
//! TOKEN=$(cargo run -q -- token --app demo --sub 1 --kind user)
//! curl -H "access-token: $TOKEN" '127.0.0.1:6190/file/upload/avatar/user?app_id=demo'
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use filegate::{FileGate, GateCtx};
use pingora_core::server::configuration::Opt;
use pingora_core::server::Server;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_http::ResponseHeader;
use pingora_proxy::{ProxyHttp, Session};

/// The host: its own routes first, then filegate, then its origin.
struct Host {
    files: Arc<FileGate>,
    origin: Option<std::net::SocketAddr>,
}

#[async_trait]
impl ProxyHttp for Host {
    type CTX = GateCtx;

    fn new_ctx(&self) -> GateCtx {
        self.files.new_ctx()
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut GateCtx,
    ) -> pingora_core::Result<bool> {
        if session.req_header().uri.path() == "/hello" {
            let body = Bytes::from_static(b"hello from the host\n");
            let mut resp = ResponseHeader::build(200, Some(2))?;
            resp.insert_header("Content-Length", body.len().to_string())?;
            session.write_response_header(Box::new(resp), false).await?;
            session.write_response_body(Some(body), true).await?;
            ctx.record_answer("host_hello", 200);
            return Ok(true);
        }
        // filegate answers /file/... and says "not mine" for the rest.
        if self.files.request_filter(session, ctx).await? {
            return Ok(true);
        }
        if self.origin.is_none() {
            let body = Bytes::from_static(b"not on this host\n");
            let mut resp = ResponseHeader::build(404, Some(2))?;
            resp.insert_header("Content-Length", body.len().to_string())?;
            session.write_response_header(Box::new(resp), false).await?;
            session.write_response_body(Some(body), true).await?;
            ctx.record_answer("host_404", 404);
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut GateCtx,
    ) -> pingora_core::Result<Box<HttpPeer>> {
        match self.origin {
            Some(addr) => Ok(Box::new(HttpPeer::new(addr, false, String::new()))),
            None => Err(pingora_error::Error::explain(
                pingora_error::ErrorType::ConnectNoRoute,
                "this example host has no origin",
            )),
        }
    }

    async fn logging(
        &self,
        session: &mut Session,
        e: Option<&pingora_error::Error>,
        ctx: &mut GateCtx,
    ) {
        self.files.logging(session, e, ctx);
    }
}

fn main() {
    filegate::init_logging();
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:6190".to_string());
    let config_path = args.next();
    let origin = args.next().and_then(|a| a.parse().ok());
    let config = match filegate::cli::load_config(config_path.as_deref().map(std::path::Path::new))
    {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("host_proxy: {e}");
            std::process::exit(2);
        }
    };
    let metrics = Arc::new(filegate::Metrics::new());
    let store = match filegate::build_store(&config, &metrics, None) {
        Ok(built) => built.store,
        Err(e) => {
            eprintln!("host_proxy: {e}");
            std::process::exit(1);
        }
    };
    let files = match FileGate::new(config, store, metrics) {
        Ok(gate) => Arc::new(gate),
        Err(e) => {
            eprintln!("host_proxy: {e}");
            std::process::exit(1);
        }
    };

    let mut server = match Server::new(Some(Opt::default())) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("host_proxy: {e}");
            std::process::exit(1);
        }
    };
    server.bootstrap();
    let mut proxy =
        pingora_proxy::http_proxy_service(&server.configuration, Host { files, origin });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    println!("host_proxy listening on http://{listen}");
    server.run_forever();
}
