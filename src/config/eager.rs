//! `apps.<id>.eager`: the results an app's clients always ask for, made as soon as an
//! upload completes (src/eager/). Each entry is the query of the download that will
//! ask for it, parsed by the download routes' own parser
//! ([`crate::representation::Representation::parse`]), so the result made ahead has
//! exactly the cache key that download computes.

use serde::Deserialize;

use super::error::ConfigError;
use super::media::MediaConfig;
use crate::query::Query;
use crate::representation::{ImageType, RenditionFormat, Representation};

/// Most eager entries per app: each upload of the app costs that many transforms.
pub const MAX_EAGER_ENTRIES: usize = 16;
/// Longest `accept` value.
const MAX_ACCEPT_BYTES: usize = 256;

/// A query parameter's value as YAML writes it (`w: 200`, `w: 200.5`, `w: "200"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// An integer.
    Int(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text.
    Text(String),
}

impl ParamValue {
    /// The value as it would appear, decoded, in a download's query.
    pub fn as_query_value(&self) -> String {
        match self {
            ParamValue::Int(v) => v.to_string(),
            ParamValue::Float(v) => v.to_string(),
            ParamValue::Text(v) => v.clone(),
        }
    }
}

/// One result made ahead: the download parameters that will ask for it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EagerEntry {
    /// `image_type`: 2 (thumbnail) or 3 (cover, which for an image is its thumbnail).
    pub image_type: Option<ParamValue>,
    /// `w`.
    pub w: Option<ParamValue>,
    /// `h`.
    pub h: Option<ParamValue>,
    /// `thumbnail_strategy` (1, the API's default: the app's processor when it has one).
    pub thumbnail_strategy: Option<ParamValue>,
    /// `format` (downloads take `amr` or `mp3`; only `amr`, the default, applies here).
    pub format: Option<ParamValue>,
    /// `source` (`miniprogram` implies mp3: not for images).
    pub source: Option<ParamValue>,
    /// `info` (1: the upload's info, SPEC §11).
    pub info: Option<ParamValue>,
    /// The `Accept` header the clients send, when it picks the format (e.g.
    /// `image/webp`); absent: the source's own format, as for a client that names none.
    pub accept: Option<String>,
}

impl EagerEntry {
    /// The query parameters this entry stands for, as (name, value).
    pub fn pairs(&self) -> Vec<(String, String)> {
        let fields = [
            ("image_type", &self.image_type),
            ("w", &self.w),
            ("h", &self.h),
            ("thumbnail_strategy", &self.thumbnail_strategy),
            ("format", &self.format),
            ("source", &self.source),
            ("info", &self.info),
        ];
        fields
            .into_iter()
            .filter_map(|(name, value)| {
                value
                    .as_ref()
                    .map(|v| (name.to_string(), v.as_query_value()))
            })
            .collect()
    }

    /// The representation, as the download routes parse it (valid once the config
    /// has passed `validate`).
    pub fn representation(&self) -> Result<Representation, crate::error::ApiError> {
        Representation::parse(&Query::from_pairs(self.pairs()))
    }
}

/// Checks `entries` of the app at `key` (`apps.<id>`); the error names the entry and
/// field at fault (`apps.demo.eager[1].w`).
pub(super) fn validate_eager(
    key: &str,
    entries: &[EagerEntry],
    media: &MediaConfig,
) -> Result<(), ConfigError> {
    if entries.len() > MAX_EAGER_ENTRIES {
        return Err(ConfigError::new(
            format!("{key}.eager"),
            format!(
                "at most {MAX_EAGER_ENTRIES} entries (each upload costs one transform per entry)"
            ),
        ));
    }
    for (i, entry) in entries.iter().enumerate() {
        let at = |field: &str| format!("{key}.eager[{i}].{field}");
        // Each parameter alone first, so the error names the one at fault.
        for (name, value) in entry.pairs() {
            Representation::parse(&Query::from_pairs(vec![(name.clone(), value)]))
                .map_err(|e| ConfigError::new(at(&name), e.message().to_string()))?;
        }
        let repr = entry
            .representation()
            .map_err(|e| ConfigError::new(format!("{key}.eager[{i}]"), e.message().to_string()))?;
        if repr.rendition == Some(RenditionFormat::Auto) {
            return Err(ConfigError::new(
                at("format"),
                "format: auto depends on each client's Accept; name jpg, png, webp or avif",
            ));
        }
        if repr.image_type == ImageType::Original && !repr.info && repr.rendition.is_none() {
            return Err(ConfigError::new(
                at("image_type"),
                "an eager result is a thumbnail, a cover (image_type 2 or 3), a rendition (format: jpg, png, webp or avif) or info: 1 (the original needs no making)",
            ));
        }
        if repr.want_mp3 {
            let field = if entry.source.is_some() && entry.format.is_none() {
                "source"
            } else {
                "format"
            };
            return Err(ConfigError::new(
                at(field),
                "eager results are made of images; mp3 applies to voice",
            ));
        }
        for (field, value) in [("w", repr.w), ("h", repr.h)] {
            if value.is_some_and(|v| v.round() > f64::from(media.max_size)) {
                return Err(ConfigError::new(
                    at(field),
                    format!(
                        "above media.max_size ({}): downloads clamp it, so ask for at most that",
                        media.max_size
                    ),
                ));
            }
        }
        if let Some(accept) = &entry.accept {
            let printable = accept.bytes().all(|b| (0x20..0x7f).contains(&b));
            if accept.trim().is_empty() || accept.len() > MAX_ACCEPT_BYTES || !printable {
                return Err(ConfigError::new(
                    at("accept"),
                    format!(
                        "an Accept header value: 1-{MAX_ACCEPT_BYTES} printable ASCII characters"
                    ),
                ));
            }
        }
    }
    Ok(())
}
