//! `thumbnail_strategy=1`: the app's third-party processor (imgproxy, thumbor, an
//! OSS-style image service) makes the thumbnail from a short-lived presigned URL of
//! the original. Its answer is fetched with a timeout and a size limit, and
//! accepted only if its bytes are an image (the content type it claims is ignored).

use std::time::Duration;

use futures::StreamExt;
use http::StatusCode;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::config::ProcessorConfig;
use crate::error::ApiError;
use crate::media::sniff::{sniff, Sniffed};
use crate::media::transform::{Fit, Rendered};
use crate::storage::keys::ObjectKey;

/// Unreserved characters (RFC 3986) stay as they are in `{source_url}`.
const COMPONENT: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The processor URL for `fit` and a source URL.
pub fn processor_url(template: &str, fit: Fit, source_url: &str, key: &ObjectKey) -> String {
    let side = |v: Option<u32>| v.unwrap_or(0).to_string();
    template
        .replace("{w}", &side(fit.w))
        .replace("{h}", &side(fit.h))
        .replace(
            "{source_url}",
            &utf8_percent_encode(source_url, COMPONENT).to_string(),
        )
        .replace("{source_url_raw}", source_url)
        .replace("{key}", key.as_str())
}

/// The processor's scheme, host and port: all an error may say of its URL, whose path
/// and query carry the presigned source URL (a credential for `source_url_ttl`).
fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "the thumbnail processor".to_string(),
    }
}

fn failed(message: &'static str) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, message)
}

/// Fetches the processed image.
pub async fn fetch_processed(
    http: &reqwest::Client,
    config: &ProcessorConfig,
    url: &str,
    limit: u64,
) -> Result<Rendered, ApiError> {
    let timeout = config.timeout;
    tokio::time::timeout(timeout, fetch(http, url, limit, timeout))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the thumbnail processor timed out",
            )
            .with_detail(origin_of(url)))
        })
}

async fn fetch(
    http: &reqwest::Client,
    url: &str,
    limit: u64,
    timeout: Duration,
) -> Result<Rendered, ApiError> {
    let resp = http.get(url).timeout(timeout).send().await.map_err(|e| {
        let error = if e.is_timeout() {
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the thumbnail processor timed out",
            )
        } else {
            failed("the thumbnail processor is unreachable")
        };
        error.with_detail(format!("{}: {}", origin_of(url), e.without_url()))
    })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(failed("the thumbnail processor refused the image")
            .with_detail(format!("processor answered {status}")));
    }
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(failed("the thumbnail processor's answer is too large"));
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            failed("the thumbnail processor's answer broke off").with_detail(e.without_url())
        })?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(failed("the thumbnail processor's answer is too large"));
        }
        body.extend_from_slice(&chunk);
    }
    let content_type = match sniff(&body) {
        Sniffed::Jpeg => "image/jpeg",
        Sniffed::Png => "image/png",
        Sniffed::Webp => "image/webp",
        Sniffed::Gif => "image/gif",
        Sniffed::IsoBmff { image: true } => "image/avif",
        other => {
            return Err(failed("the thumbnail processor did not answer an image")
                .with_detail(format!("got {}", other.name())))
        }
    };
    Ok(Rendered {
        bytes: body,
        content_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_only_the_processor_origin() {
        let url = "http://127.0.0.1:9/x/http%3A%2F%2Fs%2Fa%3FX-Amz-Signature%3Dab?y=1";
        assert_eq!(origin_of(url), "http://127.0.0.1:9");
        assert_eq!(origin_of("not a url"), "the thumbnail processor");
    }

    #[test]
    fn templates() {
        let key = ObjectKey::parse("demo/avatar/user/1/a.jpg").unwrap();
        let src = "http://s/demo/a.jpg?X-Amz-Signature=ab&x=1";
        let fit = Fit {
            w: Some(300),
            h: None,
        };
        assert_eq!(
            processor_url("http://t/unsafe/fit-in/{w}x{h}/{source_url}", fit, src, &key),
            "http://t/unsafe/fit-in/300x0/http%3A%2F%2Fs%2Fdemo%2Fa.jpg%3FX-Amz-Signature%3Dab%26x%3D1"
        );
        assert_eq!(
            processor_url("http://i/insecure/rs:fit:{w}:{h}/plain/{source_url}", fit, src, &key),
            "http://i/insecure/rs:fit:300:0/plain/http%3A%2F%2Fs%2Fdemo%2Fa.jpg%3FX-Amz-Signature%3Dab%26x%3D1"
        );
        assert_eq!(
            processor_url(
                "https://cdn/{key}?x-oss-process=image/resize,m_lfit,w_{w},h_{h}",
                fit,
                src,
                &key
            ),
            "https://cdn/demo/avatar/user/1/a.jpg?x-oss-process=image/resize,m_lfit,w_300,h_0"
        );
    }
}
