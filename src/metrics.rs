//! Prometheus metrics, kept in filegate's own registry so a host that mounts the
//! component can expose them wherever it likes.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// `op` labels of `filegate_store_operations_total`.
pub const STORE_OPS: [&str; 5] = ["head", "get", "put", "presign_get", "upload_grant"];
/// `result` labels of `filegate_store_operations_total`.
pub const STORE_RESULTS: [&str; 6] = ["ok", "not_found", "exists", "range", "timeout", "error"];
/// `kind` labels of `filegate_transforms_total`.
pub const TRANSFORM_KINDS: [&str; 5] = ["thumbnail", "cover", "mp3", "processor", "info"];
/// `result` labels of `filegate_transforms_total`.
pub const TRANSFORM_RESULTS: [&str; 4] = ["ok", "busy", "rejected", "failed"];

/// `reason` labels of `filegate_connections_closed_total`.
pub const CLOSE_REASONS: [&str; 6] = [
    "slow_head",
    "head_too_large",
    "tls_handshake_timeout",
    "tls_handshake_failed",
    "h2_preface_timeout",
    "plain_http_on_tls",
];
/// `reason` labels of `filegate_cache_dropped_total`.
pub const CACHE_DROP_REASONS: [&str; 4] = ["queue_full", "buffer_full", "read_error", "closed"];
/// `result` labels of `filegate_eager_total`.
pub const EAGER_RESULTS: [&str; 5] = ["made", "cached", "dropped", "failed", "skipped"];

/// Every metric filegate exports.
pub struct Metrics {
    registry: Registry,
    /// Tells registries apart in per-thread lookups.
    id: u64,
    /// `filegate_requests_total{route,status}`.
    pub requests_total: IntCounterVec,
    /// `filegate_request_duration_seconds{route}`.
    pub request_duration: HistogramVec,
    /// `filegate_origin_fetches_total`: objects read whole from the store to fill the
    /// edge cache (originals, and the sources of transforms).
    pub origin_fetches: IntCounter,
    /// `filegate_transforms_total{kind,result}`.
    pub transforms_total: IntCounterVec,
    /// `filegate_transform_seconds{kind}`.
    pub transform_seconds: HistogramVec,
    /// `filegate_cache_requests_total{kind,tier,result}`: what the edge cache did per
    /// download and pass-through GET.
    pub cache_requests: IntCounterVec,
    /// `filegate_cache_bytes{tier}`: bytes held in memory, and on disk.
    pub cache_bytes: IntGaugeVec,
    /// `filegate_transform_queue_depth`: transforms waiting for the pool.
    pub transform_queue_depth: IntGauge,
    /// `filegate_store_uploads_total{result}`: uploads the embedded store took.
    pub store_uploads: IntCounterVec,
    /// `filegate_store_operations_total{op,result}`: calls to the store.
    pub store_operations: IntCounterVec,
    /// `filegate_requests_in_flight`: requests begun and not finished.
    pub requests_in_flight: IntGauge,
    /// `filegate_connections_closed_total{reason}`: connections cut before a request
    /// (slow or oversized heads, TLS handshakes that failed or took too long).
    pub connections_closed: IntCounterVec,
    /// `filegate_cluster_requests_total{role,result}`: fills asked of other nodes
    /// (`asked`: ok, local_copy, fallback, refused) and answered for them (`answered`:
    /// ok, refused, error).
    pub cluster_requests: IntCounterVec,
    /// `filegate_cluster_nodes_live`: nodes this node sees live (itself included; 1
    /// without a cluster).
    pub cluster_nodes_live: IntGauge,
    /// `filegate_tls_connections_total{protocol}`: TLS handshakes completed on the TLS
    /// listener, by the protocol ALPN chose (`h2`, `http/1.1`).
    pub tls_connections: IntCounterVec,
    /// `filegate_eager_total{result}`: eager results (one per upload and entry of
    /// `apps.<id>.eager`): made, cached (already there), dropped (queue full, or no
    /// idle pool in time), failed, skipped (not an image).
    pub eager_total: IntCounterVec,
    /// `filegate_eager_queue_depth`: uploads waiting for their eager results.
    pub eager_queue_depth: IntGauge,
    /// `filegate_cache_dropped_total{reason}`: entries the disk tier did not write
    /// (a full write queue or flush buffer, a cache closed under a write) or could not
    /// read back (a failed disk read): each is a miss later, never a wrong body.
    pub cache_dropped: IntCounterVec,
    /// `filegate_access_log_dropped_total`: access log lines dropped because the
    /// writer fell too far behind (a stuck stdout).
    pub access_log_dropped: IntCounter,
    /// `filegate_rate_limited_total{by,route}`: requests answered 429 (SPEC §12).
    pub rate_limited_total: IntCounterVec,
    /// foyer's metrics facade over this registry (made once: mixtrics refuses to
    /// register a name twice).
    foyer: mixtrics::registry::prometheus_0_13::PrometheusMetricsRegistry,
}

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests_total = IntCounterVec::new(
            Opts::new(
                "filegate_requests_total",
                "Requests answered, by route and HTTP status.",
            ),
            &["route", "status"],
        )
        .expect("static metric definition");
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "filegate_request_duration_seconds",
                "Time from request to the last byte written, by route.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["route"],
        )
        .expect("static metric definition");
        let origin_fetches = IntCounter::new(
            "filegate_origin_fetches_total",
            "Source objects read from the store to make a derived result.",
        )
        .expect("static metric definition");
        let transforms_total = IntCounterVec::new(
            Opts::new(
                "filegate_transforms_total",
                "Transforms run, by kind and result.",
            ),
            &["kind", "result"],
        )
        .expect("static metric definition");
        let transform_seconds = HistogramVec::new(
            HistogramOpts::new("filegate_transform_seconds", "Transform CPU time, by kind.")
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            &["kind"],
        )
        .expect("static metric definition");
        let cache_requests = IntCounterVec::new(
            Opts::new(
                "filegate_cache_requests_total",
                "Downloads and pass-through GETs by what the edge cache did: kind original|derived, tier memory|disk|none, result hit|miss|stale|revalidated|bypass.",
            ),
            &["kind", "tier", "result"],
        )
        .expect("static metric definition");
        let cache_bytes = IntGaugeVec::new(
            Opts::new(
                "filegate_cache_bytes",
                "Bytes the edge cache holds, by tier (disk: blocks allocated).",
            ),
            &["tier"],
        )
        .expect("static metric definition");
        let transform_queue_depth = IntGauge::new(
            "filegate_transform_queue_depth",
            "Transforms waiting for a worker of the pool.",
        )
        .expect("static metric definition");
        let store_uploads = IntCounterVec::new(
            Opts::new(
                "filegate_store_uploads_total",
                "Uploads received by the embedded store, by result.",
            ),
            &["result"],
        )
        .expect("static metric definition");
        let store_operations = IntCounterVec::new(
            Opts::new(
                "filegate_store_operations_total",
                "Store operations, by operation and result.",
            ),
            &["op", "result"],
        )
        .expect("static metric definition");
        let requests_in_flight = IntGauge::new(
            "filegate_requests_in_flight",
            "Requests begun and not yet finished (all routes, pass-through included).",
        )
        .expect("static metric definition");
        let connections_closed = IntCounterVec::new(
            Opts::new(
                "filegate_connections_closed_total",
                "Connections closed before a request was read, by reason.",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let cluster_requests = IntCounterVec::new(
            Opts::new(
                "filegate_cluster_requests_total",
                "Fills between the nodes of a cluster, by role (asked, answered) and result.",
            ),
            &["role", "result"],
        )
        .expect("static metric definition");
        let cluster_nodes_live = IntGauge::new(
            "filegate_cluster_nodes_live",
            "Nodes of the cluster this node sees live, itself included (1 without a cluster).",
        )
        .expect("static metric definition");
        cluster_nodes_live.set(1);
        let tls_connections = IntCounterVec::new(
            Opts::new(
                "filegate_tls_connections_total",
                "TLS handshakes completed on the TLS listener, by negotiated protocol.",
            ),
            &["protocol"],
        )
        .expect("static metric definition");
        let eager_total = IntCounterVec::new(
            Opts::new(
                "filegate_eager_total",
                "Eager results (apps.<id>.eager), one per upload and entry, by result: made, cached, dropped, failed, skipped.",
            ),
            &["result"],
        )
        .expect("static metric definition");
        let eager_queue_depth = IntGauge::new(
            "filegate_eager_queue_depth",
            "Uploads waiting for their eager results (bounded by media.eager_queue).",
        )
        .expect("static metric definition");
        let cache_dropped = IntCounterVec::new(
            Opts::new(
                "filegate_cache_dropped_total",
                "Cache entries the disk tier did not write or could not read back, by reason (queue_full, buffer_full, read_error, closed).",
            ),
            &["reason"],
        )
        .expect("static metric definition");
        let access_log_dropped = IntCounter::new(
            "filegate_access_log_dropped_total",
            "Access log lines dropped because the writer fell behind (stdout not read).",
        )
        .expect("static metric definition");
        let rate_limited_total = IntCounterVec::new(
            Opts::new(
                "filegate_rate_limited_total",
                "Requests answered 429 for being over a rate limit, by limit (ip, user) and route.",
            ),
            &["by", "route"],
        )
        .expect("static metric definition");
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(rate_limited_total.clone()),
            Box::new(cache_dropped.clone()),
            Box::new(access_log_dropped.clone()),
            Box::new(cluster_requests.clone()),
            Box::new(cluster_nodes_live.clone()),
            Box::new(requests_total.clone()),
            Box::new(request_duration.clone()),
            Box::new(origin_fetches.clone()),
            Box::new(transforms_total.clone()),
            Box::new(transform_seconds.clone()),
            Box::new(cache_requests.clone()),
            Box::new(cache_bytes.clone()),
            Box::new(transform_queue_depth.clone()),
            Box::new(store_uploads.clone()),
            Box::new(store_operations.clone()),
            Box::new(requests_in_flight.clone()),
            Box::new(connections_closed.clone()),
            Box::new(tls_connections.clone()),
            Box::new(eager_total.clone()),
            Box::new(eager_queue_depth.clone()),
        ];
        for c in collectors {
            registry.register(c).expect("metric names are unique");
        }
        // Every series filegate counts exists from the start (at 0): a dashboard or a
        // test reading one never mistakes "not counted yet" for "not there".
        for op in STORE_OPS {
            for result in STORE_RESULTS {
                store_operations.with_label_values(&[op, result]);
            }
        }
        for kind in TRANSFORM_KINDS {
            for result in TRANSFORM_RESULTS {
                transforms_total.with_label_values(&[kind, result]);
            }
        }
        for kind in ["original", "derived"] {
            for tier in ["memory", "disk", "none"] {
                for result in ["hit", "miss", "stale", "revalidated", "bypass"] {
                    cache_requests.with_label_values(&[kind, tier, result]);
                }
            }
        }
        for tier in ["memory", "disk"] {
            cache_bytes.with_label_values(&[tier]);
        }
        for result in ["ok", "refused", "aborted"] {
            store_uploads.with_label_values(&[result]);
        }
        for (_, route) in crate::route_table::RouteId::ALL {
            requests_total.with_label_values(&[route.name(), "200"]);
            for by in ["ip", "user"] {
                rate_limited_total.with_label_values(&[by, route.name()]);
            }
        }
        for route in ["not_found", "store", "passthrough"] {
            rate_limited_total.with_label_values(&["ip", route]);
        }
        for (role, results) in [
            ("asked", &["ok", "local_copy", "fallback", "refused"][..]),
            ("answered", &["ok", "refused", "error"][..]),
        ] {
            for result in results {
                cluster_requests.with_label_values(&[role, result]);
            }
        }
        for reason in CLOSE_REASONS {
            connections_closed.with_label_values(&[reason]);
        }
        for protocol in ["h2", "http/1.1"] {
            tls_connections.with_label_values(&[protocol]);
        }
        for result in EAGER_RESULTS {
            eager_total.with_label_values(&[result]);
        }
        for reason in CACHE_DROP_REASONS {
            cache_dropped.with_label_values(&[reason]);
        }
        let foyer =
            mixtrics::registry::prometheus_0_13::PrometheusMetricsRegistry::new(registry.clone());
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Metrics {
            registry,
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            requests_total,
            request_duration,
            origin_fetches,
            transforms_total,
            transform_seconds,
            cache_requests,
            cache_bytes,
            transform_queue_depth,
            store_uploads,
            store_operations,
            requests_in_flight,
            connections_closed,
            cluster_requests,
            cluster_nodes_live,
            tls_connections,
            eager_total,
            eager_queue_depth,
            cache_dropped,
            access_log_dropped,
            rate_limited_total,
            foyer,
        }
    }

    /// foyer's metrics facade over this registry (`foyer_*` series).
    pub fn foyer_facade(&self) -> mixtrics::registry::prometheus_0_13::PrometheusMetricsRegistry {
        self.foyer.clone()
    }

    /// Counts one answered request. The labelled series are looked up once per
    /// thread and route/status (a label lookup hashes its values: not per request).
    pub fn observe_request(&self, route: &'static str, status: u16, seconds: f64) {
        type Series = (prometheus::IntCounter, prometheus::Histogram);
        thread_local! {
            static SERIES: std::cell::RefCell<std::collections::HashMap<(u64, usize, u16), Series>> =
                std::cell::RefCell::new(std::collections::HashMap::new());
        }
        // Keyed by this registry and the route's address: one process may hold several
        // registries (tests), and routes are static names.
        let key = (self.id, route.as_ptr() as usize, status);
        SERIES.with(|series| {
            let mut series = series.borrow_mut();
            let (count, duration) = series.entry(key).or_insert_with(|| {
                (
                    self.requests_total
                        .with_label_values(&[route, status_label(status)]),
                    self.request_duration.with_label_values(&[route]),
                )
            });
            count.inc();
            duration.observe(seconds);
        });
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding our own registry into a Vec cannot fail.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Status labels without allocating per request.
fn status_label(status: u16) -> &'static str {
    match status {
        0 => "0",
        200 => "200",
        204 => "204",
        206 => "206",
        302 => "302",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        414 => "414",
        415 => "415",
        416 => "416",
        422 => "422",
        429 => "429",
        431 => "431",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}
