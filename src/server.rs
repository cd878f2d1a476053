//! Starting filegate: the store, the component, the binary's proxy host and the admin
//! listener, all in one pingora [`Server`] (graceful shutdown and `-u` upgrades come
//! from pingora).

use std::sync::Arc;
use std::time::Duration;

use pingora_core::listeners::{L4BufferSettings, ListenerConfig, TcpSocketOptions};
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
use crate::metrics::Metrics;
use crate::proxy::FileGateProxy;
use crate::services::Services;
use crate::storage::embedded::EmbeddedStore;
use crate::storage::metered::MeteredStore;
use crate::storage::s3::S3Store;
use crate::storage::ObjectStore;

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

/// Opens the configured store.
pub fn build_store(config: &Config, metrics: &Arc<Metrics>) -> Result<BuiltStore, String> {
    match config.store.kind {
        StoreKind::Embedded => {
            let store = Arc::new(EmbeddedStore::open(config)?);
            Ok(BuiltStore {
                store: metered(store.clone(), metrics),
                embedded: Some(store),
            })
        }
        StoreKind::S3 => {
            let store = Arc::new(S3Store::new(&config.store)?);
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
    let config = Arc::new(config);
    for key in config.cache.deprecated_keys() {
        log::warn!("config key `{key}` is deprecated and ignored (see conf/filegate.yaml)");
    }
    crate::access_log::init(config.access_log == crate::config::AccessLogTarget::Stdout);
    let metrics = Arc::new(Metrics::new());
    let built = build_store(&config, &metrics)?;
    let mut services = Services::new(config.clone(), built.store, metrics.clone())?;
    let mut cluster_health = None;
    if let Some(cluster) = &config.cluster {
        let (cluster, health) =
            Cluster::new(cluster, config.media.transform_timeout, metrics.clone())?;
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
    let conf = ServerConf {
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
        let proxy = pingora_proxy::http_proxy(
            &server.configuration,
            FileGateProxy::new(gate.clone(), front.clone()),
        );
        let guarded = HeaderDeadline::new(proxy, limits, metrics.connections_closed.clone());
        let mut service = Service::new(format!("filegate {worker}"), guarded);
        if workers > 1 {
            service.threads = Some(1);
        }
        let mut listener = ListenerConfig::tcp(worker_bind_key(&config.listen, worker)).l4_buffer(
            // A write buffer that holds a response head and a small body, so a cache
            // hit leaves in one send (pingora's default of one MSS splits them in two).
            L4BufferSettings::new(RESPONSE_READ_BUFFER, RESPONSE_WRITE_BUFFER),
        );
        if workers > 1 {
            let mut options = TcpSocketOptions::default();
            options.so_reuseport = Some(true);
            listener = listener.tcp_socket_options(options);
        }
        service.add_listener(listener);
        server.add_service(service);
    }
    let mut admin = Service::new(
        "filegate admin".to_string(),
        AdminApp::new(
            metrics,
            services.cache.clone(),
            services.cluster.clone(),
            config.admin_token.clone(),
        ),
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
        // Whatever the disk tier still has queued is written before the process goes.
        let closing = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| {
                rt.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(5), cache.close()).await;
                })
            });
        if let Err(e) = closing {
            log::warn!("shutdown: cannot close the cache: {e}");
        }
        crate::access_log::flush();
    });
    print_banner(&config, &options);
    server.run_forever()
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
    println!(
        "filegate listening on http://{} (public URL {base}); admin on http://{}/healthz and /metrics",
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
