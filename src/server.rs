//! Starting filegate: the store, the component, the binary's proxy host and the admin
//! listener, all in one pingora [`Server`] (graceful shutdown and `-u` upgrades come
//! from pingora).

use std::sync::Arc;
use std::time::Duration;

use pingora_core::apps::HttpServerOptions;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig, TcpSocketOptions};
use pingora_core::protocols::http::v2::server::{default_h2_options, H2Options};
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::server::Server;
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;

use crate::admin::AdminApp;
use crate::cluster::Cluster;
use crate::config::{Config, StoreKind};
use crate::eager::worker::EagerWorker;
use crate::front::embedded::EmbeddedStoreServer;
use crate::front::passthrough::PassThrough;
use crate::front::StoreFront;
use crate::gate::FileGate;
use crate::header_deadline::{HeadLimits, HeaderDeadline};
use crate::lane::FileLane;
use crate::metrics::Metrics;
use crate::proxy::FileGateProxy;
use crate::services::Services;
use crate::storage::embedded::EmbeddedStore;
use crate::storage::metered::MeteredStore;
use crate::storage::s3::S3Store;
use crate::storage::tls_roots::StoreRoots;
use crate::storage::ObjectStore;
use crate::tls::accept::TlsEdge;

/// Longest the shutdown waits for running fills, and then for the disk tier's writes.
const CACHE_CLOSE_PATIENCE: Duration = Duration::from_secs(10);

/// Read buffer of downstream connections (pingora's default).
const RESPONSE_READ_BUFFER: usize = 64 * 1024;
/// Write buffer of downstream connections: a head and a small body in one send.
const RESPONSE_WRITE_BUFFER: usize = 16 * 1024;

/// Options of `filegate serve` beyond the config.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Take the listeners over from a running filegate (`-u`).
    pub upgrade: bool,
    /// Run in the background.
    pub daemon: bool,
    /// Whether this is the embedded default (prints the demo banner).
    pub embedded_default: bool,
}

/// The store as requests use it (metered), and, in the embedded shape, the embedded
/// store itself (its HTTP side answers requests outside `/file/`).
pub struct BuiltStore {
    /// The metered store.
    pub store: Arc<dyn ObjectStore>,
    /// The embedded store, in the embedded shape.
    pub embedded: Option<Arc<EmbeddedStore>>,
}

/// The roots trusted for the store, when it is reached over TLS.
pub fn store_roots(config: &Config) -> Result<Option<StoreRoots>, String> {
    if config.store.kind == StoreKind::S3 && config.store.endpoint_is_https() {
        StoreRoots::load(config.store.ca_file())
            .map(Some)
            .map_err(|e| e.to_string())
    } else {
        Ok(None)
    }
}

/// Opens the configured store. An `https://` S3 store trusts `roots` (see
/// [`store_roots`]); given none, it loads them itself.
pub fn build_store(
    config: &Config,
    metrics: &Arc<Metrics>,
    roots: Option<&StoreRoots>,
) -> Result<BuiltStore, String> {
    match config.store.kind {
        StoreKind::Embedded => {
            let store = Arc::new(EmbeddedStore::open(config)?);
            Ok(BuiltStore {
                store: metered(store.clone(), metrics),
                embedded: Some(store),
            })
        }
        StoreKind::S3 => {
            let store = Arc::new(S3Store::new(&config.store, roots)?);
            Ok(BuiltStore {
                store: metered(store, metrics),
                embedded: None,
            })
        }
    }
}

/// What answers requests outside `/file/`: the embedded store's HTTP side, or the
/// pass-through to the S3 store.
pub fn build_front(
    config: &Config,
    embedded: Option<Arc<EmbeddedStore>>,
    services: &Arc<Services>,
) -> Result<StoreFront, String> {
    Ok(match embedded {
        Some(store) => {
            StoreFront::Embedded(Arc::new(EmbeddedStoreServer::new(store, services.clone())))
        }
        None => StoreFront::Upstream(Arc::new(PassThrough::from_store_config(&config.store)?)),
    })
}

fn metered(store: Arc<dyn ObjectStore>, metrics: &Metrics) -> Arc<dyn ObjectStore> {
    Arc::new(MeteredStore::new(store, metrics.store_operations.clone()))
}

/// Runs filegate until it is stopped; returns only on a start-up error.
pub fn serve(config: Config, options: ServeOptions) -> Result<(), String> {
    if !options.upgrade {
        addresses_free(&config)?;
    }
    let config = Arc::new(config);
    for key in config.cache.deprecated_keys() {
        log::warn!("config key `{key}` is deprecated and ignored (see conf/filegate.yaml)");
    }
    let metrics = Arc::new(Metrics::new());
    crate::access_log::init(
        config.access_log == crate::config::AccessLogTarget::Stdout,
        metrics.access_log_dropped.clone(),
    );
    let roots = store_roots(&config)?;
    let built = build_store(&config, &metrics, roots.as_ref())?;
    let mut services = Services::new(config.clone(), built.store, metrics.clone())?;
    let mut cluster_health = None;
    if let Some(cluster) = &config.cluster {
        let (cluster, health) = Cluster::new(
            cluster,
            config.media.transform_timeout,
            config.cache.fresh_for,
            metrics.clone(),
        )?;
        services = services.in_cluster(Arc::new(cluster));
        cluster_health = Some(health);
    }
    let services = Arc::new(services);
    let front = build_front(&config, built.embedded, &services)?;
    let gate = Arc::new(FileGate::with_services(services.clone()));

    let opt = Opt {
        upgrade: options.upgrade,
        daemon: options.daemon,
        ..Opt::default()
    };
    // pingora's connector (the pass-through) reads its trust store from a file when
    // it is built: the same roots as the S3 client, as a bundle kept until then.
    let bundle = roots.as_ref().map(StoreRoots::write_bundle).transpose()?;
    let conf = ServerConf {
        ca_file: bundle.as_ref().map(|b| b.path().display().to_string()),
        threads: config.worker_threads(),
        work_stealing: config.server.work_stealing,
        daemon: options.daemon,
        upgrade_sock: config.server.upgrade_sock.clone(),
        pid_file: config.server.pid_file.clone(),
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(config.server.graceful_shutdown_timeout.as_secs()),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let limits = HeadLimits {
        idle_timeout: config.limits.keepalive_timeout,
        header_timeout: config.limits.header_timeout,
        max_head: config.limits.max_header_bytes.as_u64() as usize,
    };
    let in_flight = metrics.requests_in_flight.clone();
    let tls_edge = match &config.tls {
        Some(tls) => {
            let (server_config, summary) =
                crate::tls::settings::server_config(tls).map_err(|e| e.to_string())?;
            if summary.days_left < 14 {
                log::warn!(
                    "tls.cert expires in {} day(s) ({}): renew it and upgrade (serve -u)",
                    summary.days_left,
                    summary.not_after
                );
            }
            let port = tls
                .port()
                .ok_or_else(|| format!("tls.listen `{}` has no port", tls.listen))?;
            Some(Arc::new(TlsEdge::new(
                server_config,
                port,
                tls.handshake_timeout,
                metrics.connections_closed.clone(),
                metrics.tls_connections.clone(),
            )))
        }
        None => None,
    };
    // One single-threaded service per worker, each accepting on its own socket of one
    // SO_REUSEPORT group: a connection then lives on the thread that accepted it, so
    // its readiness never needs a wake-up across threads (BENCHMARKS.md, "what
    // profiling changed").
    let workers = if config.server.work_stealing {
        1
    } else {
        config.worker_threads()
    };
    for worker in 0..workers {
        let mut proxy = pingora_proxy::http_proxy(
            &server.configuration,
            FileGateProxy::new(gate.clone(), front.clone()),
        );
        if let Some(tls) = &config.tls {
            proxy.h2_options = Some(h2_options(tls.max_concurrent_streams, limits.max_head));
            let mut options = HttpServerOptions::default();
            options.h2_idle_timeout = Some(limits.idle_timeout);
            proxy.server_options = Some(options);
        }
        let guarded = HeaderDeadline::new(proxy, limits, metrics.connections_closed.clone())
            .with_lane(FileLane::new(gate.clone()));
        let guarded = match &tls_edge {
            Some(edge) => guarded.with_tls(edge.clone()),
            None => guarded,
        };
        let mut service = Service::new(format!("filegate {worker}"), guarded);
        if workers > 1 {
            service.threads = Some(1);
        }
        service.add_listener(worker_listener(&config.listen, worker, workers));
        if let Some(tls) = &config.tls {
            // TLS is terminated by the app (see tls::accept): to pingora this is one
            // more TCP socket of the worker, with its own upgrade key.
            service.add_listener(worker_listener(&tls.listen, worker, workers));
        }
        server.add_service(service);
    }
    // Every connector is built: the bundle is no longer needed.
    drop(bundle);
    let mut admin = Service::new(
        "filegate admin".to_string(),
        AdminApp::new(services.clone(), config.admin_token.clone()),
    );
    admin.add_tcp(&config.admin_listen);
    server.add_service(admin);
    if let Some(health) = cluster_health {
        server.add_service(health);
    }
    server.add_service(background_service(
        "eager derivation",
        EagerWorker::new(services.clone()),
    ));

    let cache = services.cache.clone();
    crate::drain::exit_when_drained(server.watch_execution_phase(), in_flight, move || {
        // The fills still running are stored, and whatever the disk tier has queued is
        // written, before the process goes (each step bounded; what is lost is logged).
        let closing = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| rt.block_on(cache.close(CACHE_CLOSE_PATIENCE)));
        match closing {
            Ok(report) if report.unfinished == 0 && report.flushed => {
                log::info!("shutdown: the cache is closed, everything written")
            }
            Ok(_) => {}
            Err(e) => log::warn!("shutdown: cannot close the cache: {e}"),
        }
        crate::access_log::flush();
    });
    print_banner(&config, &options);
    server.run_forever()
}

/// Worker `n`'s socket on `listen` (of `workers`, sharing it by SO_REUSEPORT).
fn worker_listener(listen: &str, n: usize, workers: usize) -> ListenerConfig {
    let mut listener = ListenerConfig::tcp(worker_bind_key(listen, n)).l4_buffer(
        // A write buffer that holds a response head and a small body, so a cache
        // hit leaves in one send (pingora's default of one MSS splits them in two).
        L4BufferSettings::new(RESPONSE_READ_BUFFER, RESPONSE_WRITE_BUFFER),
    );
    if workers > 1 {
        let mut options = TcpSocketOptions::default();
        options.so_reuseport = Some(true);
        listener = listener.tcp_socket_options(options);
    }
    listener
}

/// The h2 settings of the TLS listener: pingora's bounded defaults (64 KiB header
/// list, 100 streams), the configured stream limit, and the header list no larger
/// than an HTTP/1 head may be. Resets and pings are bounded by the h2 crate itself
/// (GOAWAY past 20 client-reset streams pending accept or 1,024 streams reset for the
/// client's errors; each PING or SETTINGS acknowledged before the next frame is read,
/// so a flood from a client that does not read is back-pressured by TCP).
fn h2_options(max_concurrent_streams: u32, max_head: usize) -> H2Options {
    let mut options = default_h2_options();
    options.max_concurrent_streams(max_concurrent_streams);
    options.max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX));
    options
}

/// Fails the start when an address filegate listens on is taken (another process on
/// the port). pingora would retry its bind for 30 s and then stop that listener alone,
/// while the admin listener answered `/healthz` as healthy. Not checked on `-u`, where
/// the old process still holds the sockets it hands over.
fn addresses_free(config: &Config) -> Result<(), String> {
    let mut addresses = vec![
        ("listen", config.listen.as_str()),
        ("admin_listen", config.admin_listen.as_str()),
    ];
    if let Some(tls) = &config.tls {
        addresses.push(("tls.listen", tls.listen.as_str()));
    }
    for (key, address) in addresses {
        // Bound and closed at once: pingora binds it again (in its SO_REUSEPORT group).
        std::net::TcpListener::bind(address)
            .map_err(|e| format!("config key `{key}`: cannot listen on {address}: {e}"))?;
    }
    Ok(())
}

/// The bind string of worker `n`'s socket: the listen address with `n` leading zeros
/// on its port (`127.0.0.1:08080` is `127.0.0.1:8080`). pingora keys the listening
/// sockets it hands to a new process on upgrade by this string, so each worker's
/// socket gets its own key and is owned (and closed) by exactly one listener.
fn worker_bind_key(listen: &str, n: usize) -> String {
    match listen.rsplit_once(':') {
        Some((host, port)) => format!("{host}:{}{port}", "0".repeat(n)),
        None => listen.to_string(),
    }
}

fn print_banner(config: &Config, options: &ServeOptions) {
    let base = config.public_base();
    let tls = config
        .tls
        .as_ref()
        .map(|t| {
            let alpn = if t.http2 { "h2, http/1.1" } else { "http/1.1" };
            format!(" and https://{} ({alpn})", t.listen)
        })
        .unwrap_or_default();
    println!(
        "filegate listening on http://{}{tls} (public URL {base}); admin on http://{}/healthz and /metrics",
        config.listen, config.admin_listen
    );
    if options.embedded_default {
        println!(
            "embedded store in {}; demo app `demo` (demo secret: never use it in production)",
            config.store.dir.display()
        );
        println!("mint a token:   TOKEN=$(./target/release/filegate token --app demo --sub 1 --kind user)");
        println!("first call:     curl -s -H \"access-token: $TOKEN\" '{base}/file/upload/avatar/user?app_id=demo'");
        println!("try it in a browser: {base}/file/demo");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_keys_are_distinct_spellings_of_one_address() {
        for listen in ["127.0.0.1:8080", "[::1]:8080", "0.0.0.0:443"] {
            let want: std::net::SocketAddr = listen.parse().unwrap();
            let keys: Vec<String> = (0..4).map(|n| worker_bind_key(listen, n)).collect();
            assert_eq!(keys[0], listen);
            for k in &keys {
                assert_eq!(k.parse::<std::net::SocketAddr>().unwrap(), want, "{k}");
            }
            let distinct: std::collections::HashSet<_> = keys.iter().collect();
            assert_eq!(distinct.len(), 4);
        }
    }
}
