//! Typed configuration: the YAML file format of SPEC §8, its documented defaults,
//! environment overrides and `validate()`.
//!
//! Precedence, highest first: command line, environment, file, built-in default.
//! The built-in default (no `-c`) is the embedded store in `./data` with the demo
//! app; `conf/filegate.yaml` spells out every key with that same default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

/// The demo app's secret. Clearly a demo value: `filegate check` warns when it is
/// used with a listener that is not on loopback.
pub const DEMO_SECRET: &str = "demo-secret-change-me";

/// A configuration problem, naming the key at fault (`apps.demo.secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the key at fault, e.g. `store.endpoint`.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config key `{}`: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the public listener. Env `FILEGATE_LISTEN` overrides.
    pub listen: String,
    /// Address of the admin listener (`/healthz`, `/metrics`).
    pub admin_listen: String,
    /// Base of every URL filegate hands out (download and embedded upload URLs).
    pub public_url: String,
    /// Worker threads of the public listener; 0 means one per core.
    pub threads: usize,
    /// Serve the demo page at `GET /file/demo`.
    pub demo_page: bool,
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
    /// The derived-result cache.
    pub cache: CacheConfig,
}

impl Default for Config {
    fn default() -> Self {
        let mut apps = BTreeMap::new();
        apps.insert("demo".to_string(), AppConfig::demo());
        Config {
            listen: "127.0.0.1:8080".into(),
            admin_listen: "127.0.0.1:9180".into(),
            public_url: "http://127.0.0.1:8080".into(),
            threads: 0,
            demo_page: true,
            server: ServerSection::default(),
            store: StoreConfig::default(),
            apps,
            limits: RequestLimits::default(),
            media: MediaConfig::default(),
            cache: CacheConfig::default(),
        }
    }
}

/// Process-level settings handed to pingora.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Socket through which a new process takes the listeners over (`serve -u`).
    pub upgrade_sock: String,
    /// Pid file written at start.
    pub pid_file: String,
    /// After SIGTERM (or SIGQUIT, once a new process has the listeners), how long
    /// in-flight requests may take to finish; filegate exits as soon as they are done.
    #[serde(with = "humantime_serde")]
    pub grace_period: Duration,
    /// After the grace period, how long blocking work (transforms) may take to stop.
    #[serde(with = "humantime_serde")]
    pub graceful_shutdown_timeout: Duration,
    /// Let the listener's threads steal each other's tasks. Off, each connection
    /// stays on one thread (no cross-thread wake-ups per request), which served
    /// cache hits faster here (BENCHMARKS.md).
    pub work_stealing: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            upgrade_sock: "/tmp/filegate_upgrade.sock".into(),
            pid_file: "/tmp/filegate.pid".into(),
            grace_period: Duration::from_secs(60),
            graceful_shutdown_timeout: Duration::from_secs(5),
            work_stealing: false,
        }
    }
}

/// Which store implementation backs the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A local directory served by filegate itself.
    Embedded,
    /// Any S3-compatible object store.
    S3,
}

/// The form-field dialect handed out for POST uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PostDialect {
    /// Alibaba OSS PostObject V1 (`OSSAccessKeyId`, `policy`, `signature`).
    Oss,
    /// S3 SigV4 browser POST (`x-amz-*`).
    S3,
}

/// Storage settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `embedded` or `s3`.
    pub kind: StoreKind,
    /// Embedded only: the directory that holds the objects.
    pub dir: PathBuf,
    /// Form fields handed out for POST uploads. Default: `oss` for the embedded
    /// store (the product's clients speak it), `s3` for an S3 store.
    pub dialect: Option<PostDialect>,
    /// S3 only: the store's endpoint as filegate reaches it.
    pub endpoint: String,
    /// S3 only: the endpoint clients use for uploads and presigned downloads,
    /// when it differs from `endpoint` (default: `endpoint`).
    pub public_endpoint: Option<String>,
    /// S3 only: signing region.
    pub region: String,
    /// S3 only: the bucket.
    pub bucket: String,
    /// S3 access key id (env `FILEGATE_S3_ACCESS_KEY_ID` overrides). The embedded
    /// store signs its own URLs with this pair too; unset, it uses a random key
    /// kept in `<dir>/.store-key`.
    pub access_key_id: String,
    /// S3 secret (env `FILEGATE_S3_SECRET_ACCESS_KEY` overrides).
    pub secret_access_key: String,
    /// S3 only: `https://endpoint/bucket/key` (true) or `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// Upstream connect timeout.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Upstream read timeout (time to first byte and between body chunks).
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Slowest body a store may send while filegate waits on it (averaged over the
    /// waiting time, checked once that exceeds `read_timeout`); slower is cut off
    /// as a timeout, so a dripping store cannot hold a download open forever.
    pub min_transfer_rate: ByteSize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Embedded,
            dir: PathBuf::from("./data"),
            dialect: None,
            endpoint: String::new(),
            public_endpoint: None,
            region: "us-east-1".into(),
            bucket: "filegate".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            path_style: true,
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(30),
            min_transfer_rate: ByteSize::kib(16),
        }
    }
}

impl StoreConfig {
    /// The POST dialect in effect, after the per-kind default.
    pub fn post_dialect(&self) -> PostDialect {
        self.dialect.unwrap_or(match self.kind {
            StoreKind::Embedded => PostDialect::Oss,
            StoreKind::S3 => PostDialect::S3,
        })
    }
}

/// How download routes answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownloadMode {
    /// The bytes themselves.
    Serve,
    /// 302 to a short-lived presigned store URL.
    Redirect,
}

/// How clients upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum UploadMethod {
    /// Multipart browser form (`oss_body_param` holds the fields).
    #[serde(rename = "POST", alias = "post")]
    Post,
    /// Presigned PUT (`oss_body_param` holds the headers to send).
    #[serde(rename = "PUT", alias = "put")]
    Put,
}

impl UploadMethod {
    /// `POST` or `PUT`, as handed to clients.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadMethod::Post => "POST",
            UploadMethod::Put => "PUT",
        }
    }
}

/// One app.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppConfig {
    /// HMAC keys: the first signs what filegate mints, all verify.
    /// Env `FILEGATE_APP_<ID>_SECRETS` (comma-separated) overrides.
    pub secrets: Vec<Secret>,
    /// `serve` or `redirect`.
    pub download_mode: DownloadMode,
    /// `POST` or `PUT`.
    pub upload_method: UploadMethod,
    /// Answer every error with HTTP 200 and the code in the body.
    pub errors_as_http_200: bool,
    /// Lifetime of a signed upload.
    #[serde(with = "humantime_serde")]
    pub upload_expiry: Duration,
    /// Lifetime of a presigned download URL in `redirect` mode.
    #[serde(with = "humantime_serde")]
    pub redirect_ttl: Duration,
    /// Largest upload per kind of file.
    pub max_upload: UploadSizeLimits,
    /// The third-party image processor used for `thumbnail_strategy=1`; none: filegate
    /// makes those thumbnails itself.
    pub thumbnail_processor: Option<ProcessorConfig>,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            secrets: Vec::new(),
            download_mode: DownloadMode::Serve,
            upload_method: UploadMethod::Post,
            errors_as_http_200: false,
            upload_expiry: Duration::from_secs(15 * 60),
            redirect_ttl: Duration::from_secs(30 * 60),
            max_upload: UploadSizeLimits::default(),
            thumbnail_processor: None,
        }
    }
}

impl AppConfig {
    /// The demo app of the embedded default.
    pub fn demo() -> Self {
        AppConfig {
            secrets: vec![Secret::new(DEMO_SECRET)],
            ..AppConfig::default()
        }
    }
}

/// Largest upload per kind of file (SPEC §5: "a size within the file_type's limit").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadSizeLimits {
    /// User and group avatars.
    pub avatar: ByteSize,
    /// Pictures (file_type 102, 202).
    pub picture: ByteSize,
    /// Voice (101, 104, 201).
    pub voice: ByteSize,
    /// Video (103, 203).
    pub video: ByteSize,
    /// Plain files (100, 200).
    pub file: ByteSize,
}

impl Default for UploadSizeLimits {
    fn default() -> Self {
        UploadSizeLimits {
            avatar: ByteSize::mib(5),
            picture: ByteSize::mib(30),
            voice: ByteSize::mib(10),
            video: ByteSize::mib(512),
            file: ByteSize::mib(512),
        }
    }
}

/// Limits on what a request may carry.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestLimits {
    /// Total size of the request line and headers; larger → 431.
    pub max_header_bytes: ByteSize,
    /// Size of the query string; larger → 414.
    pub max_query_bytes: ByteSize,
    /// Longest time from a request's first byte to the end of its head; slower
    /// clients (slowloris) get a 408 and are disconnected.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// How long an idle keep-alive connection waits for its next request.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_header_bytes: ByteSize::kib(16),
            max_query_bytes: ByteSize::kib(8),
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
        }
    }
}

/// A third-party image processor (imgproxy, thumbor, an OSS-style image service).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProcessorConfig {
    /// URL template. `{w}` and `{h}`: the box (0 when absent); `{source_url}`: a
    /// short-lived presigned URL of the original, percent-encoded; `{source_url_raw}`:
    /// the same URL as is; `{key}`: the object key.
    pub url: String,
    /// Whole-request timeout of one fetch from the processor.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Lifetime of the presigned source URL handed to the processor.
    #[serde(with = "humantime_serde")]
    pub source_url_ttl: Duration,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            url: String::new(),
            timeout: Duration::from_secs(10),
            source_url_ttl: Duration::from_secs(5 * 60),
        }
    }
}

/// Limits of the media transforms and the pool that runs them (SPEC §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Transforms running at once; 0 means one per core.
    pub workers: usize,
    /// Transforms that may wait for a worker; past it, 503 with `Retry-After`.
    pub queue: usize,
    /// `Retry-After` of that 503.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Box edge of a thumbnail when neither `w` nor `h` is given.
    pub default_size: u32,
    /// Largest `w` / `h`; larger values are clamped to it.
    pub max_size: u32,
    /// Largest image or voice source read for a transform.
    pub max_source_bytes: ByteSize,
    /// Largest video source read for a cover (held in memory while it is made).
    pub max_video_bytes: ByteSize,
    /// Largest source picture (width × height, from the header before decoding).
    pub max_pixels: u64,
    /// Most frames (pages) of an animated source.
    pub max_frames: u32,
    /// Longest voice source transcoded to MP3.
    #[serde(with = "humantime_serde")]
    pub max_audio_duration: Duration,
    /// Largest derived result.
    pub max_output_bytes: ByteSize,
    /// Longest a transform may take; longer → 422.
    #[serde(with = "humantime_serde")]
    pub transform_timeout: Duration,
    /// Video covers: the first keyframe at or after this offset (frame 0 when the
    /// clip is shorter).
    #[serde(with = "humantime_serde")]
    pub cover_offset: Duration,
    /// JPEG quality (1-100) of thumbnails and covers.
    pub jpeg_quality: u8,
    /// WebP quality (1-100).
    pub webp_quality: u8,
    /// AVIF quality (1-100).
    pub avif_quality: u8,
    /// Offer AVIF to clients that accept it, when this libvips can encode it.
    pub avif: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            workers: 0,
            queue: 64,
            retry_after: Duration::from_secs(2),
            default_size: 200,
            max_size: 2048,
            max_source_bytes: ByteSize::mib(32),
            max_video_bytes: ByteSize::mib(128),
            max_pixels: 50_000_000,
            max_frames: 1000,
            max_audio_duration: Duration::from_secs(5 * 60),
            max_output_bytes: ByteSize::mib(8),
            transform_timeout: Duration::from_secs(20),
            cover_offset: Duration::from_secs(1),
            jpeg_quality: 82,
            webp_quality: 80,
            avif_quality: 55,
            avif: true,
        }
    }
}

impl MediaConfig {
    /// Workers after the "0 = one per core" default.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.workers > 256 {
            return Err(ConfigError::new("media.workers", "at most 256"));
        }
        if self.queue > 100_000 {
            return Err(ConfigError::new("media.queue", "at most 100000"));
        }
        if !(1..=10_000).contains(&self.max_size) {
            return Err(ConfigError::new("media.max_size", "between 1 and 10000"));
        }
        if self.default_size == 0 || self.default_size > self.max_size {
            return Err(ConfigError::new(
                "media.default_size",
                "between 1 and media.max_size",
            ));
        }
        let sizes = [
            ("media.max_source_bytes", self.max_source_bytes),
            ("media.max_video_bytes", self.max_video_bytes),
            ("media.max_output_bytes", self.max_output_bytes),
        ];
        for (key, size) in sizes {
            if size.as_u64() == 0 || size.as_u64() > 4 * 1024 * 1024 * 1024 {
                return Err(ConfigError::new(key, "between 1 byte and 4 GiB"));
            }
        }
        if self.max_output_bytes.as_u64() > u64::from(u32::MAX) {
            return Err(ConfigError::new("media.max_output_bytes", "below 4 GiB"));
        }
        if self.max_pixels == 0 || self.max_pixels > 1_000_000_000 {
            return Err(ConfigError::new(
                "media.max_pixels",
                "between 1 and 1000000000",
            ));
        }
        if self.max_frames == 0 {
            return Err(ConfigError::new("media.max_frames", "at least 1"));
        }
        if self.max_audio_duration.is_zero() {
            return Err(ConfigError::new(
                "media.max_audio_duration",
                "must be above 0",
            ));
        }
        if self.transform_timeout.is_zero() {
            return Err(ConfigError::new(
                "media.transform_timeout",
                "must be above 0",
            ));
        }
        let qualities = [
            ("media.jpeg_quality", self.jpeg_quality),
            ("media.webp_quality", self.webp_quality),
            ("media.avif_quality", self.avif_quality),
        ];
        for (key, q) in qualities {
            if !(1..=100).contains(&q) {
                return Err(ConfigError::new(key, "between 1 and 100"));
            }
        }
        Ok(())
    }
}

/// The derived-result cache (SPEC §6).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes of derived results held in memory.
    pub memory: ByteSize,
    /// Longest an entry stays in memory.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// An entry unused this long leaves memory.
    #[serde(with = "humantime_serde")]
    pub tti: Duration,
    /// Write derived results to the store under `<app>/_derived/` and look there on
    /// a miss, so restarts and other nodes reuse them. `redirect` mode needs it.
    pub write_back: bool,
    /// How long a source's ETag is trusted before the store is asked again. Cache
    /// hits within it need no store round trip; 0 asks every time.
    #[serde(with = "humantime_serde")]
    pub source_ttl: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory: ByteSize::mib(256),
            ttl: Duration::from_secs(24 * 3600),
            tti: Duration::from_secs(3600),
            write_back: true,
            source_ttl: Duration::from_secs(60),
        }
    }
}

/// An HMAC key. Never printed: `Debug` shows its length only.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The key bytes, for signing and verifying only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Where a value of the environment comes from; tests pass their own.
pub trait Environment {
    /// The value of `name`, if set.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
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
    /// `FILEGATE_PUBLIC_URL`, `FILEGATE_S3_ACCESS_KEY_ID`, `FILEGATE_S3_SECRET_ACCESS_KEY`
    /// and `FILEGATE_APP_<ID>_SECRETS` (app id upper-cased, `-` as `_`; comma-separated).
    pub fn apply_env(&mut self, env: &dyn Environment) {
        if let Some(v) = env.var("FILEGATE_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env.var("FILEGATE_ADMIN_LISTEN") {
            self.admin_listen = v;
        }
        if let Some(v) = env.var("FILEGATE_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = env.var("FILEGATE_S3_ACCESS_KEY_ID") {
            self.store.access_key_id = v;
        }
        if let Some(v) = env.var("FILEGATE_S3_SECRET_ACCESS_KEY") {
            self.store.secret_access_key = v;
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
        parse_socket_addr("listen", &self.listen)?;
        parse_socket_addr("admin_listen", &self.admin_listen)?;
        if self.listen == self.admin_listen {
            return Err(ConfigError::new(
                "admin_listen",
                "must differ from `listen`",
            ));
        }
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
        self.media.validate()?;
        if self.cache.ttl.is_zero() {
            return Err(ConfigError::new("cache.ttl", "must be above 0"));
        }
        if self.cache.tti.is_zero() {
            return Err(ConfigError::new("cache.tti", "must be above 0"));
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

impl StoreConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match self.kind {
            StoreKind::Embedded => {
                if self.dir.as_os_str().is_empty() {
                    return Err(ConfigError::new("store.dir", "must not be empty"));
                }
            }
            StoreKind::S3 => {
                validate_base_url("store.endpoint", &self.endpoint)?;
                if let Some(public) = &self.public_endpoint {
                    validate_base_url("store.public_endpoint", public)?;
                }
                if self.region.is_empty() {
                    return Err(ConfigError::new("store.region", "must not be empty"));
                }
                validate_bucket(&self.bucket)?;
                if self.access_key_id.is_empty() {
                    return Err(ConfigError::new(
                        "store.access_key_id",
                        "required for an s3 store (or env FILEGATE_S3_ACCESS_KEY_ID)",
                    ));
                }
                if self.secret_access_key.is_empty() {
                    return Err(ConfigError::new(
                        "store.secret_access_key",
                        "required for an s3 store (or env FILEGATE_S3_SECRET_ACCESS_KEY)",
                    ));
                }
            }
        }
        if self.connect_timeout.is_zero() {
            return Err(ConfigError::new("store.connect_timeout", "must be above 0"));
        }
        if self.read_timeout.is_zero() {
            return Err(ConfigError::new("store.read_timeout", "must be above 0"));
        }
        Ok(())
    }
}

impl AppConfig {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.secrets.is_empty() {
            return Err(ConfigError::new(
                format!("{key}.secrets"),
                "at least one secret is needed",
            ));
        }
        for (i, s) in self.secrets.iter().enumerate() {
            if s.expose().len() < 16 {
                return Err(ConfigError::new(
                    format!("{key}.secrets[{i}]"),
                    "a secret must be at least 16 bytes",
                ));
            }
        }
        let expiry = self.upload_expiry.as_secs();
        if !(60..=7 * 24 * 3600).contains(&expiry) {
            return Err(ConfigError::new(
                format!("{key}.upload_expiry"),
                "between 1 minute and 7 days",
            ));
        }
        let ttl = self.redirect_ttl.as_secs();
        if !(10..=7 * 24 * 3600).contains(&ttl) {
            return Err(ConfigError::new(
                format!("{key}.redirect_ttl"),
                "between 10 seconds and 7 days",
            ));
        }
        if let Some(p) = &self.thumbnail_processor {
            validate_processor(&format!("{key}.thumbnail_processor"), p)?;
        }
        let limits = [
            ("avatar", self.max_upload.avatar),
            ("picture", self.max_upload.picture),
            ("voice", self.max_upload.voice),
            ("video", self.max_upload.video),
            ("file", self.max_upload.file),
        ];
        for (name, size) in limits {
            if size.as_u64() == 0 || size.as_u64() > 5 * 1024 * 1024 * 1024 {
                return Err(ConfigError::new(
                    format!("{key}.max_upload.{name}"),
                    "between 1 byte and 5 GiB",
                ));
            }
        }
        Ok(())
    }
}

fn validate_processor(key: &str, p: &ProcessorConfig) -> Result<(), ConfigError> {
    // The query may hold placeholders and OSS-style processing; the base must be a URL.
    validate_base_url(&format!("{key}.url"), p.url.split('?').next().unwrap_or(""))?;
    let known = ["{w}", "{h}", "{source_url}", "{source_url_raw}", "{key}"];
    let mut rest = p.url.as_str();
    while let Some(start) = rest.find('{') {
        let tail = &rest[start..];
        let end = tail.find('}').ok_or_else(|| {
            ConfigError::new(format!("{key}.url"), "an unclosed `{` in the template")
        })?;
        if !known.contains(&&tail[..=end]) {
            return Err(ConfigError::new(
                format!("{key}.url"),
                format!(
                    "unknown placeholder `{}` (known: {})",
                    &tail[..=end],
                    known.join(" ")
                ),
            ));
        }
        rest = &tail[end + 1..];
    }
    if !p.url.contains("{source_url}")
        && !p.url.contains("{source_url_raw}")
        && !p.url.contains("{key}")
    {
        return Err(ConfigError::new(
            format!("{key}.url"),
            "the template must name the source: {source_url}, {source_url_raw} or {key}",
        ));
    }
    if p.timeout.is_zero() {
        return Err(ConfigError::new(
            format!("{key}.timeout"),
            "must be above 0",
        ));
    }
    let ttl = p.source_url_ttl.as_secs();
    if !(10..=24 * 3600).contains(&ttl) {
        return Err(ConfigError::new(
            format!("{key}.source_url_ttl"),
            "between 10 seconds and 1 day",
        ));
    }
    Ok(())
}

/// The environment variable that overrides an app's secrets.
pub fn app_secrets_env_name(app_id: &str) -> String {
    let id: String = app_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("FILEGATE_APP_{id}_SECRETS")
}

/// App ids appear in object keys and URLs: a strict grammar keeps both safe.
/// `file` is reserved because the embedded store shares the URL space with `/file/`.
fn validate_app_id(id: &str) -> Result<(), ConfigError> {
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let first_ok = id
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !ok_chars || !first_ok || id.len() > 64 {
        return Err(ConfigError::new(
            format!("apps.{id}"),
            "an app id is 1-64 of a-z 0-9 - _, starting with a letter or digit",
        ));
    }
    if id == "file" || id == "_derived" {
        return Err(ConfigError::new(
            format!("apps.{id}"),
            "this app id is reserved",
        ));
    }
    Ok(())
}

fn validate_bucket(bucket: &str) -> Result<(), ConfigError> {
    let ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            "store.bucket",
            "a bucket name is 3-63 of a-z 0-9 - .",
        ))
    }
}

fn parse_socket_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("`{value}` is not an address like 127.0.0.1:8080 or [::1]:8080"),
        )
    })
}

fn validate_base_url(key: &str, value: &str) -> Result<(), ConfigError> {
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !host.contains(['?', '#']) => {
            Ok(())
        }
        _ => Err(ConfigError::new(
            key,
            format!("`{value}` is not an http:// or https:// URL"),
        )),
    }
}

/// Pulls the field name out of serde's "unknown field `x`" / "missing field `x`".
fn yaml_error_key(message: &str) -> String {
    // serde_yaml prefixes the path of the value at fault: "apps.demo: unknown field ..."
    if let Some((path, _)) = message.split_once(": ") {
        if !path.contains(' ') {
            if let Some(field) = backquoted_after(message, "unknown field ") {
                return format!("{path}.{field}");
            }
            return path.to_string();
        }
    }
    backquoted_after(message, "unknown field ")
        .or_else(|| backquoted_after(message, "missing field "))
        .unwrap_or_else(|| "(document)".to_string())
}

fn backquoted_after(message: &str, marker: &str) -> Option<String> {
    let start = message.find(marker)? + marker.len();
    let rest = message.get(start..)?.strip_prefix('`')?;
    let end = rest.find('`')?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("cache:\n  ttl: 0s\n", "cache.ttl"),
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
