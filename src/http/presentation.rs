//! How a body is presented to a browser: the one disposition policy of every path
//! (filegate's downloads, the embedded store's and the pass-through's presigned GETs,
//! the store's answers through the pass-through, the presigned URLs of redirect mode).
//!
//! - Only media types of the type table render inline
//!   ([`crate::file_type::renders_safely_inline`]); anything else is an attachment, so
//!   an uploaded HTML or SVG file can never run on this origin.
//! - A signed `response-content-disposition` is honoured, but never makes such a type
//!   render inline.
//! - Every answer carries a sandboxing CSP and `nosniff`.
//! - Plain files presigned for the store (redirect mode) are attachments of a type no
//!   browser runs, whatever type they were stored with: the store adds no CSP.

use crate::file_type::{renders_safely_inline, Family};
use crate::headers::content_disposition;
use crate::query::Query;
use crate::storage::keys::ObjectKey;
use crate::storage::{DownloadView, ObjectMeta};

/// The CSP every download carries: nothing runs, even if opened directly.
pub const SANDBOX_CSP: &str = "default-src 'none'; sandbox";

/// Cache policy of downloads: keys are immutable (a new upload is a new key), but the
/// URLs carry credentials, so only the client's own cache may keep them.
pub const DOWNLOAD_CACHE_CONTROL: &str = "private, max-age=86400";

/// Cache policy of presigned GETs served from the edge cache.
pub const PRESIGNED_CACHE_CONTROL: &str = "private, max-age=3600";

/// How the browser should treat the bytes.
#[derive(Debug, Clone)]
pub struct Presentation {
    /// The name offered for saving, if any (beats the store's original name).
    pub file_name: Option<String>,
    /// The name used when neither the caller nor the store knows one.
    pub default_name: Option<String>,
    /// A whole `Content-Disposition` value to send as is (a presigned URL's signed
    /// `response-content-disposition`), unless it would render an unsafe type inline.
    pub disposition: Option<String>,
    /// A `Content-Type` to answer instead of the stored one (a presigned URL's signed
    /// `response-content-type`).
    pub content_type: Option<String>,
    /// `Cache-Control` of a successful answer.
    pub cache_control: &'static str,
}

/// The headers that present a body: its `Content-Type` and `Content-Disposition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentHeaders<'a> {
    /// `Content-Type`.
    pub content_type: &'a str,
    /// `Content-Disposition`, when one is sent.
    pub disposition: Option<String>,
}

impl Presentation {
    /// A download of `key` through the `/file` routes, offered as `name` (a
    /// file_sign's) when there is one.
    pub fn download(name: Option<String>, key: &ObjectKey) -> Presentation {
        Presentation {
            file_name: name,
            default_name: Some(key.file_name().to_string()),
            disposition: None,
            content_type: None,
            cache_control: DOWNLOAD_CACHE_CONTROL,
        }
    }

    /// A presigned GET of `key` (the embedded store's, or the pass-through's served
    /// from the cache): the `response-*` overrides its signature covers.
    pub fn presigned(query: &Query, key: &ObjectKey) -> Presentation {
        let signed = |name: &str| query.get(name).ok().flatten().map(str::to_string);
        Presentation {
            file_name: None,
            default_name: Some(key.file_name().to_string()),
            disposition: signed("response-content-disposition"),
            content_type: signed("response-content-type"),
            cache_control: PRESIGNED_CACHE_CONTROL,
        }
    }

    /// The same presentation for a result of `extension` made from the object
    /// (`voice.amr` is offered as `voice.mp3`).
    pub fn for_result(&self, extension: &str) -> Presentation {
        Presentation {
            file_name: self.file_name.as_deref().map(|n| renamed(n, extension)),
            default_name: self.default_name.as_deref().map(|n| renamed(n, extension)),
            ..self.clone()
        }
    }

    /// The `Content-Type` and `Content-Disposition` of a body described by `meta`.
    pub fn content_headers<'a>(&'a self, meta: &'a ObjectMeta) -> ContentHeaders<'a> {
        let content_type = match self.content_type.as_deref() {
            Some(t) => t,
            None if meta.content_type.is_empty() => "application/octet-stream",
            None => &meta.content_type,
        };
        let inline = renders_safely_inline(content_type);
        let name = self.file_name.as_deref().or(meta.original_name.as_deref());
        let fallback = || name.or(self.default_name.as_deref()).unwrap_or("download");
        let disposition = match (&self.disposition, name) {
            // A signed disposition is honoured unless it would render an unsafe type
            // inline.
            (Some(d), _) if inline || is_attachment(d) => Some(d.clone()),
            (Some(_), _) => Some(content_disposition(false, fallback())),
            (None, Some(n)) => Some(content_disposition(inline, n)),
            (None, None) if !inline => Some(content_disposition(false, fallback())),
            (None, None) => None,
        };
        ContentHeaders {
            content_type,
            disposition,
        }
    }
}

fn is_attachment(disposition: &str) -> bool {
    disposition
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("attachment")
}

/// `voice.amr` → `voice.mp3`: the offered name matches what is served.
fn renamed(name: &str, extension: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    format!("{stem}.{extension}")
}

/// The `Content-Disposition` a store's successful answer of `content_type` (through
/// the pass-through) must carry instead of `disposition`, when a browser could
/// execute it: an attachment, keeping the name parameters. `None`: it may stay.
pub fn forced_attachment(content_type: &str, disposition: &str) -> Option<String> {
    if renders_safely_inline(content_type) || is_attachment(disposition) {
        return None;
    }
    let params = disposition.split_once(';').map_or("", |(_, p)| p);
    Some(if params.trim().is_empty() {
        "attachment".to_string()
    } else {
        format!("attachment;{params}")
    })
}

/// How the store should present a presigned URL of an object of `family` named
/// `name` (redirect mode, where the store serves the bytes with no CSP): plain files
/// as an attachment of a type no browser executes; media as stored.
pub fn store_view<'a>(
    family: Family,
    name: Option<&'a str>,
    key: &'a ObjectKey,
) -> DownloadView<'a> {
    if family == Family::File {
        DownloadView {
            file_name: Some(name.unwrap_or(key.file_name())),
            attachment: true,
            content_type: Some(DownloadView::SAFE_ATTACHMENT_TYPE),
        }
    } else {
        DownloadView {
            file_name: name,
            ..DownloadView::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(content_type: &str, name: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            size: 1,
            etag: "\"e\"".into(),
            content_type: content_type.into(),
            original_name: name.map(str::to_string),
            last_modified: None,
        }
    }

    fn key() -> ObjectKey {
        ObjectKey::parse("demo/chat/1/2/20261201/abc.html").unwrap()
    }

    #[test]
    fn only_safe_types_render_inline() {
        let p = Presentation::download(None, &key());
        let m = meta("image/png", None);
        assert_eq!(p.content_headers(&m).disposition, None);
        let m = meta("text/html", None);
        let h = p.content_headers(&m);
        assert_eq!(h.content_type, "text/html");
        assert!(h
            .disposition
            .unwrap()
            .starts_with("attachment; filename=\"abc.html\""));
        let named = Presentation::download(Some("報告.png".into()), &key());
        let m = meta("image/png", None);
        assert!(named
            .content_headers(&m)
            .disposition
            .unwrap()
            .starts_with("inline; filename="));
    }

    #[test]
    fn a_signed_disposition_never_makes_html_inline() {
        let q =
            Query::parse("response-content-disposition=inline&response-content-type=text%2Fhtml");
        let p = Presentation::presigned(&q, &key());
        let m = meta("image/png", None);
        let h = p.content_headers(&m);
        assert_eq!(h.content_type, "text/html", "the signed type");
        assert!(h.disposition.unwrap().starts_with("attachment;"));
        let q = Query::parse("response-content-disposition=inline");
        let p = Presentation::presigned(&q, &key());
        assert_eq!(p.content_headers(&m).disposition.as_deref(), Some("inline"));
        assert_eq!(p.cache_control, PRESIGNED_CACHE_CONTROL);
    }

    #[test]
    fn results_are_renamed_and_store_answers_forced() {
        let p = Presentation::download(Some("voice.amr".into()), &key()).for_result("mp3");
        assert_eq!(p.file_name.as_deref(), Some("voice.mp3"));
        assert_eq!(p.default_name.as_deref(), Some("abc.mp3"));
        assert_eq!(forced_attachment("image/png", "inline"), None);
        assert_eq!(
            forced_attachment("text/html", "inline; filename=x.html").as_deref(),
            Some("attachment; filename=x.html")
        );
        assert_eq!(
            forced_attachment("text/html", "").as_deref(),
            Some("attachment")
        );
        assert_eq!(forced_attachment("text/html", "attachment"), None);
        let k = key();
        let v = store_view(Family::File, None, &k);
        assert!(v.attachment && v.file_name == Some("abc.html"));
        assert_eq!(v.content_type, Some(DownloadView::SAFE_ATTACHMENT_TYPE));
        assert!(!store_view(Family::Image, None, &k).attachment);
    }
}
