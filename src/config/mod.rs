//! Typed configuration: the YAML file format of SPEC §8, its documented defaults,
//! environment overrides and `validate()`.
//!
//! Precedence, highest first: command line, environment, file, built-in default.
//! The built-in default (no `-c`) is the embedded store in `./data` with the demo
//! app; `conf/filegate.yaml` spells out every key with that same default.

mod apps;
mod cache;
mod cluster;
mod eager;
mod env;
mod error;
mod media;
pub mod pem;
mod rate;
mod server;
mod store;
mod tls;
mod values;
mod yaml;

use std::collections::BTreeMap;

use serde::Deserialize;

use apps::validate_app_id;
pub use apps::{
    app_secrets_env_name, AppConfig, DownloadMode, ProcessorConfig, Secret, UploadMethod,
    UploadSizeLimits, DEMO_SECRET,
};
pub use cache::CacheConfig;
pub use cluster::{node_addr, ClusterConfig};
pub use eager::{EagerEntry, ParamValue, MAX_EAGER_ENTRIES};
pub use env::{Environment, ProcessEnv};
pub use error::ConfigError;
pub use media::MediaConfig;
pub use rate::{rate_policy, Rate, RateLimits, RatePolicy, RateSetting};
pub use server::{RequestLimits, ServerSection};
pub use store::{PostDialect, StoreConfig, StoreKind};
pub use tls::TlsConfig;
use values::{parse_socket_addr, validate_base_url};
use yaml::yaml_error_key;

/// Where the access log goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogTarget {
    /// One JSON line per request on stdout.
    Stdout,
    /// No access log.
    Off,
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the public listener. Env `FILEGATE_LISTEN` overrides.
    pub listen: String,
    /// Address of the admin listener (`/healthz`, `/metrics`).
    pub admin_listen: String,
    /// The TLS listener (HTTPS and HTTP/2) beside the plain one; absent, none.
    pub tls: Option<TlsConfig>,
    /// Base of every URL filegate hands out (download and embedded upload URLs).
    pub public_url: String,
    /// Worker threads of the public listener; 0 means one per core.
    pub threads: usize,
    /// Serve the demo page at `GET /file/demo`.
    pub demo_page: bool,
    /// Where the access log goes: `stdout` (one JSON line per request, buffered) or
    /// `off`.
    pub access_log: AccessLogTarget,
    /// Process-level settings (upgrade socket, pid file, shutdown).
    pub server: ServerSection,
    /// Where objects live.
    pub store: StoreConfig,
    /// The apps this edge serves, by app_id.
    pub apps: BTreeMap<String, AppConfig>,
    /// Request limits.
    pub limits: RequestLimits,
    /// Thumbnails, covers and voice transcodes: limits and the transform pool.
    pub media: MediaConfig,
    /// The edge cache.
    pub cache: CacheConfig,
    /// When set, every admin route but `/healthz` needs `Authorization: Bearer <it>`.
    /// Env `FILEGATE_ADMIN_TOKEN` overrides.
    pub admin_token: Option<Secret>,
    /// The other nodes of a cluster; absent: a single node.
    pub cluster: Option<ClusterConfig>,
}

impl Default for Config {
    fn default() -> Self {
        let mut apps = BTreeMap::new();
        apps.insert("demo".to_string(), AppConfig::demo());
        Config {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9180".into(),
            tls: None,
            public_url: "http://127.0.0.1:8080".into(),
            threads: 0,
            demo_page: true,
            access_log: AccessLogTarget::Stdout,
            server: ServerSection::default(),
            store: StoreConfig::default(),
            apps,
            limits: RequestLimits::default(),
            media: MediaConfig::default(),
            cache: CacheConfig::default(),
            admin_token: None,
            cluster: None,
        }
    }
}

impl Config {
    /// Parses a YAML document. Unknown keys are errors (a typo must not pass silently).
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        serde_yaml::from_str(text).map_err(|e| {
            let location = e
                .location()
                .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                .unwrap_or_default();
            ConfigError::new(yaml_error_key(&e.to_string()), format!("{e}{location}"))
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("-c", format!("cannot read {}: {e}", path.display())))?;
        Config::from_yaml(&text)
    }

    /// Applies the environment overrides: `FILEGATE_LISTEN`, `FILEGATE_ADMIN_LISTEN`,
    /// `FILEGATE_TLS_LISTEN` (with no `tls` section it starts one, whose `tls.cert` and
    /// `tls.key` are then missing), `FILEGATE_PUBLIC_URL`, `FILEGATE_S3_ACCESS_KEY_ID`,
    /// `FILEGATE_S3_SECRET_ACCESS_KEY`, `FILEGATE_CLUSTER_SECRET` (when `cluster:` is set)
    /// and `FILEGATE_APP_<ID>_SECRETS` (app id upper-cased, `-` as `_`; comma-separated).
    pub fn apply_env(&mut self, env: &dyn Environment) {
        if let Some(v) = env.var("FILEGATE_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env.var("FILEGATE_ADMIN_LISTEN") {
            self.admin_listen = v;
        }
        if let Some(v) = env.var("FILEGATE_TLS_LISTEN") {
            self.tls.get_or_insert_with(TlsConfig::default).listen = v;
        }
        if let Some(v) = env.var("FILEGATE_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = env.var("FILEGATE_ADMIN_TOKEN") {
            self.admin_token = Some(Secret::new(v));
        }
        if let Some(v) = env.var("FILEGATE_S3_ACCESS_KEY_ID") {
            self.store.access_key_id = v;
        }
        if let Some(v) = env.var("FILEGATE_S3_SECRET_ACCESS_KEY") {
            self.store.secret_access_key = v;
        }
        if let (Some(cluster), Some(v)) = (&mut self.cluster, env.var("FILEGATE_CLUSTER_SECRET")) {
            cluster.secret = Secret::new(v);
        }
        for (id, app) in self.apps.iter_mut() {
            if let Some(v) = env.var(&app_secrets_env_name(id)) {
                app.secrets = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(Secret::new)
                    .collect();
            }
        }
    }

    /// Checks every value; the error names the first key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let listen = parse_socket_addr("listen", &self.listen)?;
        parse_socket_addr("admin_listen", &self.admin_listen)?;
        if self.listen == self.admin_listen {
            return Err(ConfigError::new(
                "admin_listen",
                "must differ from `listen`",
            ));
        }
        let tls_listen = match &self.tls {
            Some(tls) => {
                tls.validate(&self.listen, &self.admin_listen)?;
                parse_socket_addr("tls.listen", &tls.listen).ok()
            }
            None => None,
        };
        validate_base_url("public_url", &self.public_url)?;
        if self.threads > 1024 {
            return Err(ConfigError::new("threads", "at most 1024"));
        }
        self.store.validate()?;
        if self.apps.is_empty() {
            return Err(ConfigError::new("apps", "at least one app is needed"));
        }
        for (id, app) in &self.apps {
            validate_app_id(id)?;
            app.validate(&format!("apps.{id}"))?;
            // The demo secret is public: anyone could mint tokens with it.
            let beyond = std::iter::once(listen)
                .chain(tls_listen)
                .find(|a| !a.ip().is_loopback());
            if let (true, Some(addr)) = (app.has_demo_secret(), beyond) {
                return Err(ConfigError::new(
                    format!("apps.{id}.secrets"),
                    format!(
                        "the demo secret `{DEMO_SECRET}` is public; it is refused on a listener beyond loopback ({addr}): set your own secret"
                    ),
                ));
            }
        }
        if self.limits.max_header_bytes.as_u64() < 1024 {
            return Err(ConfigError::new(
                "limits.max_header_bytes",
                "at least 1 KiB",
            ));
        }
        if self.limits.max_query_bytes.as_u64() < 256 {
            return Err(ConfigError::new("limits.max_query_bytes", "at least 256 B"));
        }
        if self.limits.header_timeout.is_zero() {
            return Err(ConfigError::new("limits.header_timeout", "must be above 0"));
        }
        if self.limits.keepalive_timeout.as_secs() == 0 {
            return Err(ConfigError::new("limits.keepalive_timeout", "at least 1s"));
        }
        self.limits.rate_policy()?;
        self.media.validate()?;
        for (id, app) in &self.apps {
            eager::validate_eager(&format!("apps.{id}"), &app.eager, &self.media)?;
        }
        self.cache.validate()?;
        if let Some(c) = &self.cluster {
            c.validate()?;
        }
        if let Some(t) = &self.admin_token {
            if t.expose().len() < 16 {
                return Err(ConfigError::new("admin_token", "at least 16 bytes"));
            }
        }
        for (id, app) in &self.apps {
            if app.download_mode == DownloadMode::Redirect && !self.cache.write_back {
                return Err(ConfigError::new(
                    "cache.write_back",
                    format!("app `{id}` uses redirect mode, which serves derived results from the store: keep write_back on"),
                ));
            }
        }
        Ok(())
    }

    /// Worker threads after the "0 = one per core" default.
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        }
    }

    /// `public_url` without a trailing slash.
    pub fn public_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct MapEnv(Vec<(&'static str, &'static str)>);
    impl Environment for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn embedded_default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_yaml("lisen: 1.2.3.4:5\n").unwrap_err();
        assert_eq!(err.key, "lisen", "{err}");
        let err = Config::from_yaml("apps:\n  demo:\n    secret: [x]\n").unwrap_err();
        assert_eq!(err.key, "apps.demo.secret", "{err}");
    }

    #[test]
    fn validate_names_the_key() {
        let cfg = Config::from_yaml("apps:\n  demo:\n    secrets: [short]\n").unwrap();
        assert_eq!(cfg.validate().unwrap_err().key, "apps.demo.secrets[0]");
        let cfg = Config::from_yaml("listen: nowhere\n").unwrap();
        assert_eq!(cfg.validate().unwrap_err().key, "listen");
        let cfg =
            Config::from_yaml("store:\n  kind: s3\n  endpoint: http://127.0.0.1:9000\n").unwrap();
        assert_eq!(cfg.validate().unwrap_err().key, "store.access_key_id");
        let cfg = Config::from_yaml("apps:\n  file:\n    secrets: [0123456789abcdef]\n").unwrap();
        assert_eq!(cfg.validate().unwrap_err().key, "apps.file");
    }

    #[test]
    fn media_cache_and_processor_keys_are_named() {
        let cases = [
            ("media:\n  max_size: 0\n", "media.max_size"),
            ("media:\n  default_size: 5000\n", "media.default_size"),
            ("media:\n  jpeg_quality: 0\n", "media.jpeg_quality"),
            ("media:\n  transform_timeout: 0s\n", "media.transform_timeout"),
            ("cache:\n  fresh_for: 0s\n", "cache.fresh_for"),
            ("cache:\n  disk: 1 MiB\n", "cache.disk"),
            ("cache:\n  memory: 64 MiB\n  max_object: 64 MiB\n", "cache.max_object"),
            (
                "cache:\n  write_back: false\napps:\n  demo:\n    secrets: [0123456789abcdef]\n    download_mode: redirect\n",
                "cache.write_back",
            ),
            (
                "apps:\n  demo:\n    secrets: [0123456789abcdef]\n    thumbnail_processor:\n      url: http://t/{width}/{source_url}\n",
                "apps.demo.thumbnail_processor.url",
            ),
            (
                "apps:\n  demo:\n    secrets: [0123456789abcdef]\n    thumbnail_processor:\n      url: http://t/fit-in/{w}x{h}/\n",
                "apps.demo.thumbnail_processor.url",
            ),
            (
                "apps:\n  demo:\n    secrets: [0123456789abcdef]\n    thumbnail_processor:\n      url: ftp://t/{source_url}\n",
                "apps.demo.thumbnail_processor.url",
            ),
        ];
        for (yaml, key) in cases {
            let cfg = Config::from_yaml(yaml).unwrap();
            assert_eq!(cfg.validate().unwrap_err().key, key, "{yaml}");
        }
        let ok = Config::from_yaml(
            "apps:\n  demo:\n    secrets: [0123456789abcdef]\n    thumbnail_processor:\n      url: https://cdn/{key}?x-oss-process=image/resize,m_lfit,w_{w},h_{h}\n",
        )
        .unwrap();
        ok.validate().unwrap();
    }

    fn demo_with_eager(eager: &str) -> String {
        format!("apps:\n  demo:\n    secrets: [0123456789abcdef]\n    eager:\n{eager}")
    }

    #[test]
    fn eager_entries_name_the_key_at_fault() {
        let ok = "      - {image_type: 2, w: 200, h: 200}\n";
        let cases = [
            ("      - {image_type: 2, w: 0}\n", "apps.demo.eager[1].w"),
            ("      - {image_type: 2, h: NaN}\n", "apps.demo.eager[1].h"),
            ("      - {image_type: 4}\n", "apps.demo.eager[1].image_type"),
            (
                "      - {image_type: 1, w: 10}\n",
                "apps.demo.eager[1].image_type",
            ),
            ("      - {w: 10}\n", "apps.demo.eager[1].image_type"),
            (
                "      - {image_type: 2, thumbnail_strategy: 3}\n",
                "apps.demo.eager[1].thumbnail_strategy",
            ),
            (
                "      - {image_type: 2, format: mp3}\n",
                "apps.demo.eager[1].format",
            ),
            (
                "      - {image_type: 2, format: ogg}\n",
                "apps.demo.eager[1].format",
            ),
            (
                "      - {image_type: 2, source: miniprogram}\n",
                "apps.demo.eager[1].source",
            ),
            ("      - {image_type: 2, w: 5000}\n", "apps.demo.eager[1].w"),
            (
                "      - {image_type: 2, accept: \"\"}\n",
                "apps.demo.eager[1].accept",
            ),
        ];
        for (bad, key) in cases {
            let cfg = Config::from_yaml(&demo_with_eager(&format!("{ok}{bad}"))).unwrap();
            assert_eq!(cfg.validate().unwrap_err().key, key, "{bad}");
        }
        // What the YAML cannot even parse is named by the parser's path.
        let err =
            Config::from_yaml(&demo_with_eager("      - {image_type: 2, wdth: 10}\n")).unwrap_err();
        assert_eq!(err.key, "apps.demo.eager[0].wdth", "{err}");
        let err =
            Config::from_yaml(&demo_with_eager("      - {image_type: 2, w: [1]}\n")).unwrap_err();
        assert!(err.key.starts_with("apps.demo.eager[0]"), "{err}");
        let many = "      - {image_type: 2}\n".repeat(MAX_EAGER_ENTRIES + 1);
        let cfg = Config::from_yaml(&demo_with_eager(&many)).unwrap();
        assert_eq!(cfg.validate().unwrap_err().key, "apps.demo.eager");
        let cfg = Config::from_yaml("media:\n  eager_queue: 0\n").unwrap();
        assert_eq!(cfg.validate().unwrap_err().key, "media.eager_queue");
    }

    #[test]
    fn eager_entries_parse_as_the_download_query_they_stand_for() {
        use crate::query::Query;
        use crate::representation::Representation;
        let cfg = Config::from_yaml(&demo_with_eager(
            "      - {image_type: 2, w: 200, h: 200}\n      - {image_type: 3, w: \"120.5\", thumbnail_strategy: 2, accept: image/webp}\n",
        ))
        .unwrap();
        cfg.validate().unwrap();
        let eager = &cfg.apps["demo"].eager;
        let download = |q: &str| Representation::parse(&Query::parse(q)).unwrap();
        assert_eq!(
            eager[0].representation().unwrap(),
            download("image_type=2&w=200&h=200")
        );
        assert_eq!(
            eager[1].representation().unwrap(),
            download("image_type=3&w=120.5&thumbnail_strategy=2")
        );
        assert_eq!(eager[1].accept.as_deref(), Some("image/webp"));
        // None by default, the demo app included.
        assert!(Config::default().apps["demo"].eager.is_empty());
    }

    #[test]
    fn env_overrides_listen_and_secrets() {
        let mut cfg = Config::default();
        cfg.apps.insert("my-app".into(), AppConfig::demo());
        cfg.apply_env(&MapEnv(vec![
            ("FILEGATE_LISTEN", "127.0.0.1:9999"),
            (
                "FILEGATE_APP_MY_APP_SECRETS",
                "new-secret-0123456789, old-secret-0123456789",
            ),
        ]));
        assert_eq!(cfg.listen, "127.0.0.1:9999");
        let secrets = &cfg.apps["my-app"].secrets;
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[1].expose(), b"old-secret-0123456789");
    }

    #[test]
    fn env_overrides_the_cluster_secret() {
        let mut cfg = Config::from_yaml(
            "cluster:\n  self: http://127.0.0.1:8081\n  peers: [http://127.0.0.1:8081]\n  secret: from-the-file-0123456789\n",
        )
        .unwrap();
        cfg.apply_env(&MapEnv(vec![(
            "FILEGATE_CLUSTER_SECRET",
            "from-the-env-0123456789",
        )]));
        let cluster = cfg.cluster.as_ref().unwrap();
        assert_eq!(cluster.secret.expose(), b"from-the-env-0123456789");
    }

    #[test]
    fn the_documented_tls_section_parses_with_its_defaults() {
        // The commented-out `tls:` block of conf/filegate.yaml, uncommented.
        let shipped = include_str!("../../conf/filegate.yaml");
        let mut block = String::new();
        let mut inside = false;
        for line in shipped.lines() {
            if line == "# tls:" {
                inside = true;
            } else if inside && !line.starts_with("#   ") {
                break;
            }
            if inside {
                let text = &line[2..];
                if !text.trim_start().starts_with('#') {
                    block.push_str(text);
                    block.push('\n');
                }
            }
        }
        let cfg = Config::from_yaml(&block).unwrap();
        let tls = cfg.tls.clone().expect("a tls section");
        let default = TlsConfig::default();
        assert_eq!(tls.listen, default.listen);
        assert_eq!(tls.http2, default.http2);
        assert_eq!(tls.handshake_timeout, default.handshake_timeout);
        assert_eq!(tls.max_concurrent_streams, default.max_concurrent_streams);
        cfg.validate().unwrap();
    }

    #[test]
    fn env_overrides_tls_listen() {
        let mut cfg =
            Config::from_yaml("tls:\n  cert: c.pem\n  key: k.pem\n  listen: 127.0.0.1:8443\n")
                .unwrap();
        cfg.apply_env(&MapEnv(vec![("FILEGATE_TLS_LISTEN", "127.0.0.1:9443")]));
        assert_eq!(cfg.tls.as_ref().unwrap().listen, "127.0.0.1:9443");
        cfg.validate().unwrap();
        // With no tls section, the variable starts one whose files are missing.
        let mut cfg = Config::default();
        cfg.apply_env(&MapEnv(vec![("FILEGATE_TLS_LISTEN", "127.0.0.1:9443")]));
        assert_eq!(cfg.validate().unwrap_err().key, "tls.cert");
        // The demo secret is refused on a TLS listener beyond loopback too.
        let cfg = Config::from_yaml("tls:\n  cert: c.pem\n  key: k.pem\n  listen: 0.0.0.0:8443\n")
            .unwrap();
        assert_eq!(cfg.validate().unwrap_err().key, "apps.demo.secrets");
    }

    #[test]
    fn sizes_and_durations_parse() {
        let cfg = Config::from_yaml(
            "apps:\n  demo:\n    secrets: [0123456789abcdef]\n    upload_expiry: 5m\n    max_upload:\n      file: 200 MiB\n",
        )
        .unwrap();
        let app = &cfg.apps["demo"];
        assert_eq!(app.upload_expiry, Duration::from_secs(300));
        assert_eq!(app.max_upload.file.as_u64(), 200 * 1024 * 1024);
    }
}
