//! The apps this edge serves (`apps:`): secrets, download and upload modes, limits,
//! the third-party processor.

use std::fmt;
use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use super::eager::EagerEntry;
use super::error::ConfigError;
use super::values::validate_base_url;
use crate::file_type::FileType;

/// The demo app's secret. Clearly a demo value: `filegate check` warns when it is
/// used with a listener that is not on loopback.
pub const DEMO_SECRET: &str = "demo-secret-change-me";

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
    /// Longest an `sdk_sign` may be valid: one expiring further ahead is refused.
    #[serde(with = "humantime_serde")]
    pub max_sign_ttl: Duration,
    /// Largest upload per kind of file.
    pub max_upload: UploadSizeLimits,
    /// The third-party image processor used for `thumbnail_strategy=1`; none: filegate
    /// makes those thumbnails itself.
    pub thumbnail_processor: Option<ProcessorConfig>,
    /// Results made as soon as an upload of an image completes, each given as the
    /// download parameters that will ask for it (default: none).
    pub eager: Vec<EagerEntry>,
    /// Served originals of JPEG, PNG, WebP and HEIF carry no GPS metadata (SPEC §11):
    /// it is blanked in place, every other byte kept. Default true.
    pub strip_location: bool,
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
            max_sign_ttl: Duration::from_secs(7 * 24 * 3600),
            max_upload: UploadSizeLimits::default(),
            thumbnail_processor: None,
            eager: Vec::new(),
            strip_location: true,
        }
    }
}

impl AppConfig {
    /// Whether one of the secrets is the public demo secret.
    pub fn has_demo_secret(&self) -> bool {
        self.secrets
            .iter()
            .any(|s| s.expose() == DEMO_SECRET.as_bytes())
    }

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

impl UploadSizeLimits {
    /// The largest upload of `file_type`.
    pub fn for_type(&self, file_type: FileType) -> u64 {
        match file_type {
            FileType::Avatar => self.avatar.as_u64(),
            FileType::Picture(_) => self.picture.as_u64(),
            FileType::VoiceAmr(_) | FileType::VoiceMp3 => self.voice.as_u64(),
            FileType::Video(_) => self.video.as_u64(),
            FileType::File(_) => self.file.as_u64(),
        }
    }
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

impl AppConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
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
        let max_sign = self.max_sign_ttl.as_secs();
        if !(60..=366 * 24 * 3600).contains(&max_sign) {
            return Err(ConfigError::new(
                format!("{key}.max_sign_ttl"),
                "between 1 minute and 366 days",
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

pub(super) fn validate_processor(key: &str, p: &ProcessorConfig) -> Result<(), ConfigError> {
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
pub(super) fn validate_app_id(id: &str) -> Result<(), ConfigError> {
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
