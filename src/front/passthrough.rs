//! Pass-through (SPEC §1): every request not under `/file/` that reaches an object of
//! the configured bucket ([`crate::front::bucket_scope`]) goes to the upstream store
//! through pingora's upstream path, unchanged in method, path, query and body (streamed
//! both ways, connections reused), with `Host` rewritten and hop-by-hop headers
//! dropped. Answers of a type a browser could execute come back as attachments, with
//! `nosniff` and a sandboxing CSP, exactly as filegate's own downloads.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType};
use pingora_http::{RequestHeader, ResponseHeader};

use crate::config::{Secret, StoreConfig};
use crate::error::ApiError;
use crate::file_type::renders_safely_inline;
use crate::front::bucket_scope::{self, Reach};
use crate::http::presentation::{forced_attachment, SANDBOX_CSP};
use crate::storage::sigv4::{request_url, S3Signer};

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded. `Transfer-Encoding` is left
/// to pingora, which re-frames bodies itself.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// Where pass-through requests go.
#[derive(Debug, Clone)]
pub struct PassThrough {
    addr: SocketAddr,
    host: String,
    tls: bool,
    sni: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    bucket: String,
    path_style: bool,
    /// The store's key pair: presigned GETs filegate handed out are checked here, and
    /// those that verify are served from the edge cache.
    signer: S3Signer,
}

impl PassThrough {
    /// Resolves the store's endpoint once, at start.
    pub fn from_store_config(store: &StoreConfig) -> Result<PassThrough, String> {
        let endpoint = store.public_endpoint.as_deref().unwrap_or(&store.endpoint);
        let (tls, rest) = if let Some(rest) = store.endpoint.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = store.endpoint.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "store.endpoint `{}` is not an http(s) URL",
                store.endpoint
            ));
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let default_port = if tls { 443 } else { 80 };
        let with_port = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
            && !authority.ends_with(']')
        {
            authority.to_string()
        } else {
            format!("{authority}:{default_port}")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve store.endpoint `{authority}`: {e}"))?
            .next()
            .ok_or_else(|| format!("store.endpoint `{authority}` resolves to nothing"))?;
        // The Host the store expects: the one presigned URLs were made for.
        let public_authority = endpoint
            .split_once("://")
            .map(|(_, r)| r.split('/').next().unwrap_or(r))
            .unwrap_or(authority);
        let host = if store.path_style {
            public_authority.to_string()
        } else {
            format!("{}.{public_authority}", store.bucket)
        };
        // SNI (and the name the certificate must carry) is the endpoint's host.
        let sni = host_of(authority).to_string();
        Ok(PassThrough {
            addr,
            host,
            tls,
            sni,
            connect_timeout: store.connect_timeout,
            read_timeout: store.read_timeout,
            bucket: store.bucket.clone(),
            path_style: store.path_style,
            signer: S3Signer::new(
                &store.access_key_id,
                Secret::new(store.secret_access_key.clone()),
                &store.region,
            ),
        })
    }

    /// The upstream peer, with the store's timeouts. Over TLS it verifies the store's
    /// certificate and host name against the roots pingora's connector was built with
    /// (the system roots plus `store.ca_file`, see [`crate::storage::tls_roots`]).
    pub fn peer(&self) -> HttpPeer {
        let mut peer = HttpPeer::new(self.addr, self.tls, self.sni.clone());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.total_connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        peer.options.write_timeout = Some(self.read_timeout);
        peer.options.idle_timeout = Some(Duration::from_secs(60));
        peer.options.verify_cert = true;
        peer.options.verify_hostname = true;
        peer
    }

    /// Sends the store the origin-form target [`Self::reach`] checked, rewrites
    /// `Host`, drops hop-by-hop headers, and on an upload (PUT) every `x-amz-*`
    /// header its presigned URL did not sign (`x-amz-copy-source` would turn a granted
    /// upload into a copy of another object).
    pub fn rewrite_request(&self, req: &mut RequestHeader) -> pingora_core::Result<()> {
        for name in hop_by_hop_names(&req.headers) {
            req.remove_header(&name);
        }
        let target = bucket_scope::origin_form(req.raw_path())
            .map(str::to_string)
            .map_err(|e| Error::explain(ErrorType::InvalidHTTPHeader, e.message().to_string()))?;
        req.set_raw_path(target.as_bytes())?;
        if req.method == http::Method::PUT {
            let query = target.split_once('?').map_or("", |(_, q)| q);
            for name in unsigned_amz_headers(&req.headers, query) {
                req.remove_header(&name);
            }
        }
        req.insert_header("Host", &self.host)?;
        Ok(())
    }

    /// What the request reaches in the bucket, judged on the raw target (the bytes
    /// that are forwarded); a 403 for anything else.
    pub fn reach(&self, req: &RequestHeader) -> Result<Reach, ApiError> {
        bucket_scope::check_target(&req.method, req.raw_path(), &self.bucket, self.path_style)
            .map(|(_, reach)| reach)
    }

    /// Whether the request is a GET or HEAD of an object with a presigned URL this
    /// store's key pair signed (the URLs filegate hands out): such a read is answered
    /// from the edge cache, exactly as the store would answer it
    /// ([`crate::front::presigned_get`]). Anything else (other credentials, a
    /// signature that fails) is forwarded, and the store judges it.
    pub fn serves_from_cache(&self, req: &RequestHeader) -> bool {
        if req.method != http::Method::GET && req.method != http::Method::HEAD {
            return false;
        }
        let Ok(path_and_query) = bucket_scope::origin_form(req.raw_path()) else {
            return false;
        };
        let Ok(url) = request_url(&self.host, path_and_query) else {
            return false;
        };
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let now = std::time::SystemTime::now();
        self.signer
            .verify_presigned(req.method.as_str(), &url, &header, now)
            .or_else(|_| self.signer.verify_presigned("GET", &url, &header, now))
            .is_ok()
    }

    /// Drops hop-by-hop headers of the store's answer, and makes a type a browser
    /// could execute an attachment that cannot run on this origin.
    pub fn rewrite_response(&self, resp: &mut ResponseHeader) -> pingora_core::Result<()> {
        for name in hop_by_hop_names(&resp.headers) {
            resp.remove_header(&name);
        }
        resp.insert_header("X-Content-Type-Options", "nosniff")?;
        let header = |name: http::header::HeaderName| {
            resp.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let content_type = header(http::header::CONTENT_TYPE);
        // Error bodies of the store (XML) are answers, not objects.
        if resp.status.is_success() && !renders_safely_inline(&content_type) {
            let disposition = header(http::header::CONTENT_DISPOSITION);
            resp.insert_header("Content-Security-Policy", SANDBOX_CSP)?;
            if let Some(forced) = forced_attachment(&content_type, &disposition) {
                resp.insert_header("Content-Disposition", forced)?;
            }
        }
        Ok(())
    }
}

/// The host of an authority (`host`, `host:port`, `[v6]`, `[v6]:port`).
fn host_of(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// The `x-amz-*` headers of a request that its presigned query (`X-Amz-SignedHeaders`)
/// does not list. A request signed some other way (OSS, a header signature) signed
/// none.
fn unsigned_amz_headers(headers: &HeaderMap, query: &str) -> Vec<HeaderName> {
    let signed: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-amz-signedheaders"))
        .flat_map(|(_, v)| {
            v.split(';')
                .map(|n| n.trim().to_ascii_lowercase())
                .collect::<Vec<_>>()
        })
        .collect();
    headers
        .keys()
        .filter(|k| k.as_str().starts_with("x-amz-") && !signed.iter().any(|s| s == k.as_str()))
        .cloned()
        .collect()
}

/// The hop-by-hop headers present: the fixed list and any named in `Connection`.
fn hop_by_hop_names(headers: &HeaderMap) -> Vec<HeaderName> {
    let listed: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    headers
        .keys()
        .filter(|k| HOP_BY_HOP.contains(&k.as_str()) || listed.iter().any(|l| l == k.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{host_of, unsigned_amz_headers};

    #[test]
    fn a_put_keeps_only_the_amz_headers_it_signed() {
        let mut headers = http::HeaderMap::new();
        for (k, v) in [
            ("x-amz-copy-source", "other/secret"),
            ("x-amz-meta-a", "1"),
            ("x-amz-acl", "public-read"),
            ("content-type", "image/png"),
        ] {
            headers.insert(k, http::HeaderValue::from_static(v));
        }
        let mut dropped: Vec<String> =
            unsigned_amz_headers(&headers, "X-Amz-SignedHeaders=host%3Bx-amz-meta-a&x=1")
                .iter()
                .map(|h| h.to_string())
                .collect();
        dropped.sort();
        assert_eq!(dropped, ["x-amz-acl", "x-amz-copy-source"]);
        assert_eq!(unsigned_amz_headers(&headers, "Signature=s").len(), 3);
    }

    #[test]
    fn the_sni_is_the_endpoints_host() {
        assert_eq!(host_of("s3.example.com"), "s3.example.com");
        assert_eq!(host_of("s3.example.com:9443"), "s3.example.com");
        assert_eq!(host_of("127.0.0.1:9443"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9443"), "::1");
        assert_eq!(host_of("[::1]"), "::1");
    }
}
