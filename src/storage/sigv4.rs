//! AWS Signature V4 for the S3 dialect, through the well-kept `aws-sigv4` crate:
//! presigned URLs (GET/PUT), signed request headers, the browser-POST signature, and
//! verification of presigned URLs (the embedded store answers them).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use subtle::ConstantTimeEq;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::config::Secret;
use crate::storage::DownloadView;

/// `X-Amz-Date` format.
const AMZ_DATE: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
/// Credential-scope date format.
const AMZ_DAY: &[FormatItem<'static>] = format_description!("[year][month][day]");

/// Longest presigned lifetime S3 allows.
pub const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// What signing produced: headers (header signing) or query parameters (presigning).
struct Signed {
    headers: Vec<(String, String)>,
    params: Vec<(String, String)>,
}

/// An S3 key pair and the region it signs for.
#[derive(Clone)]
pub struct S3Signer {
    access_key_id: String,
    secret: Secret,
    region: String,
}

impl std::fmt::Debug for S3Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Signer({}, {})", self.access_key_id, self.region)
    }
}

/// Formats `X-Amz-Date`.
pub fn amz_date(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(AMZ_DATE).unwrap_or_default()
}

/// Formats the credential-scope day.
pub fn amz_day(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(AMZ_DAY).unwrap_or_default()
}

/// Parses `X-Amz-Date`: exactly `yyyymmddThhmmssZ` (no sign, no other spelling of
/// the same time).
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let t = PrimitiveDateTime::parse(s, AMZ_DATE).ok()?.assume_utc();
    (t.format(AMZ_DATE).ok()? == s).then(|| t.into())
}

/// The URL a request to the embedded store is verified as: `http://<host><path>`.
/// `host` (the `Host` header) must be a bare authority: a `/`, `?` or `#` in it would
/// move part of the request's path out of the URL that is checked, and a URL
/// presigned for one key would verify for another.
pub fn request_url(host: &str, path_and_query: &str) -> Result<String, PresignError> {
    let authority: http::uri::Authority = host.parse().map_err(|_| PresignError::Malformed)?;
    if !path_and_query.starts_with('/') || path_and_query.contains('#') {
        return Err(PresignError::Malformed);
    }
    Ok(format!("http://{authority}{path_and_query}"))
}

impl S3Signer {
    /// A signer for `access_key_id`/`secret` in `region`.
    pub fn new(access_key_id: &str, secret: Secret, region: &str) -> Self {
        S3Signer {
            access_key_id: access_key_id.to_string(),
            secret,
            region: region.to_string(),
        }
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The secret (for the OSS dialect's HMAC-SHA1, which shares the key pair).
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    fn secret_str(&self) -> &str {
        std::str::from_utf8(self.secret.expose()).unwrap_or("")
    }

    fn settings(location: SignatureLocation, expires_in: Option<Duration>) -> SigningSettings {
        let mut settings = SigningSettings::default();
        // S3 signs the path as sent: no double encoding, no normalization.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.signature_location = location;
        settings.expires_in = expires_in;
        settings
    }

    fn run(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: SignableBody<'_>,
        settings: SigningSettings,
        time: SystemTime,
    ) -> Result<Signed, String> {
        let identity = Credentials::new(
            &self.access_key_id,
            self.secret_str(),
            None,
            None,
            "filegate",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .map_err(|e| format!("signing params: {e}"))?
            .into();
        let request = SignableRequest::new(method, url, headers.iter().copied(), body)
            .map_err(|e| format!("signable request: {e}"))?;
        let (instructions, _signature) = sign(request, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        let (out_headers, out_params) = instructions.into_parts();
        let out_headers = out_headers
            .into_iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        let out_params = out_params
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect();
        Ok(Signed {
            headers: out_headers,
            params: out_params,
        })
    }

    /// A presigned URL for `method` on `url` (already encoded), valid `ttl` from `now`;
    /// `headers` are signed too and must be sent as given.
    pub fn presign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        ttl: Duration,
        now: SystemTime,
    ) -> Result<String, String> {
        let settings = Self::settings(SignatureLocation::QueryParams, Some(ttl.min(MAX_PRESIGN)));
        let params = self
            .run(
                method,
                url,
                headers,
                SignableBody::UnsignedPayload,
                settings,
                now,
            )?
            .params;
        let mut out = url.to_string();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        for (k, v) in params {
            out.push(sep);
            sep = '&';
            out.push_str(&k);
            out.push('=');
            out.extend(
                form_urlencoded::byte_serialize(v.as_bytes()).map(|s| s.replace('+', "%20")),
            );
        }
        Ok(out)
    }

    /// A presigned GET of `object_url` for `ttl`, asking the store (with
    /// `response-content-disposition` and `response-content-type`, signed too) to
    /// answer as `view` says.
    pub fn presign_download(
        &self,
        object_url: &str,
        ttl: Duration,
        view: &DownloadView<'_>,
    ) -> Result<String, String> {
        let mut url = object_url.to_string();
        let mut separator = '?';
        let mut add = |name: &str, value: &str| {
            url.push(separator);
            separator = '&';
            url.push_str(name);
            url.push('=');
            url.extend(
                form_urlencoded::byte_serialize(value.as_bytes()).map(|s| s.replace('+', "%20")),
            );
        };
        match (view.file_name, view.attachment) {
            (Some(name), _) => add(
                "response-content-disposition",
                &crate::headers::content_disposition(false, name),
            ),
            (None, true) => add("response-content-disposition", "attachment"),
            (None, false) => {}
        }
        if let Some(content_type) = view.content_type {
            add("response-content-type", content_type);
        }
        self.presign("GET", &url, &[], ttl, SystemTime::now())
    }

    /// Headers (`authorization`, `x-amz-date`, `x-amz-content-sha256`) that sign a
    /// request whose payload hash is `payload_sha256_hex` (or UNSIGNED-PAYLOAD).
    pub fn sign_headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        payload_sha256_hex: Option<&str>,
        now: SystemTime,
    ) -> Result<Vec<(String, String)>, String> {
        let mut settings = Self::settings(SignatureLocation::Headers, None);
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        let body = match payload_sha256_hex {
            Some(h) => SignableBody::Precomputed(h.to_string()),
            None => SignableBody::UnsignedPayload,
        };
        Ok(self.run(method, url, headers, body, settings, now)?.headers)
    }

    /// The `x-amz-credential` of a browser POST made at `now`.
    pub fn post_credential(&self, now: SystemTime) -> String {
        format!(
            "{}/{}/{}/s3/aws4_request",
            self.access_key_id,
            amz_day(now),
            self.region
        )
    }

    /// The browser-POST signature: hex HMAC-SHA256 of the base64 policy under the
    /// day's SigV4 signing key.
    pub fn post_signature(&self, policy_b64: &str, day: SystemTime) -> String {
        let key = v4::generate_signing_key(self.secret_str(), day, &self.region, "s3");
        v4::calculate_signature(key, policy_b64.as_bytes())
    }

    /// Verifies a presigned request: `url` is the request as received (scheme, `Host`,
    /// path and query; see [`request_url`]), `header` looks up request headers by
    /// lower-case name. A URL with a fragment is refused: no request has one, and the
    /// signature would not cover what follows the `#`.
    pub fn verify_presigned(
        &self,
        method: &str,
        url: &str,
        header: &dyn Fn(&str) -> Option<String>,
        now: SystemTime,
    ) -> Result<(), PresignError> {
        if url.contains('#') {
            return Err(PresignError::Malformed);
        }
        let (base, raw_query) = url.split_once('?').ok_or(PresignError::Missing)?;
        let mut kept = Vec::new();
        let mut amz = std::collections::HashMap::new();
        for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
            let name = pair.split('=').next().unwrap_or("");
            if name.starts_with("X-Amz-") {
                let (k, v) = form_urlencoded::parse(pair.as_bytes())
                    .next()
                    .ok_or(PresignError::Malformed)?;
                amz.insert(k.into_owned(), v.into_owned());
            } else {
                kept.push(pair);
            }
        }
        let get = |k: &str| amz.get(k).map(String::as_str).ok_or(PresignError::Missing);
        if get("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
            return Err(PresignError::Malformed);
        }
        let credential = get("X-Amz-Credential")?;
        let mut scope = credential.split('/');
        if scope.next() != Some(self.access_key_id.as_str()) {
            return Err(PresignError::BadSignature);
        }
        let signed_at = parse_amz_date(get("X-Amz-Date")?).ok_or(PresignError::Malformed)?;
        let expires: u64 = get("X-Amz-Expires")?
            .parse()
            .map_err(|_| PresignError::Malformed)?;
        let expires = Duration::from_secs(expires);
        if expires > MAX_PRESIGN {
            return Err(PresignError::Malformed);
        }
        if now > signed_at + expires {
            return Err(PresignError::Expired);
        }
        if signed_at > now + Duration::from_secs(15 * 60) {
            return Err(PresignError::Malformed);
        }
        let signed_headers = get("X-Amz-SignedHeaders")?;
        let mut values = Vec::new();
        for name in signed_headers.split(';').filter(|n| *n != "host") {
            values.push((
                name.to_string(),
                header(name).ok_or(PresignError::BadSignature)?,
            ));
        }
        let header_refs: Vec<(&str, &str)> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let unsigned_url = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let settings = Self::settings(SignatureLocation::QueryParams, Some(expires));
        let params = self
            .run(
                method,
                &unsigned_url,
                &header_refs,
                SignableBody::UnsignedPayload,
                settings,
                signed_at,
            )
            .map_err(|_| PresignError::Malformed)?
            .params;
        let expected = params
            .iter()
            .find(|(k, _)| k == "X-Amz-Signature")
            .map(|(_, v)| v.as_str())
            .ok_or(PresignError::Malformed)?;
        let given = get("X-Amz-Signature")?;
        if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            Ok(())
        } else {
            Err(PresignError::BadSignature)
        }
    }
}

/// Why a presigned request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresignError {
    /// No signature parameters.
    Missing,
    /// Unparseable parameters.
    Malformed,
    /// The signature does not match.
    BadSignature,
    /// Past `X-Amz-Date + X-Amz-Expires`.
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> S3Signer {
        S3Signer::new(
            "AKIDEXAMPLE",
            Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            "us-east-1",
        )
    }

    #[test]
    fn presign_then_verify() {
        let now = SystemTime::now();
        let url = signer()
            .presign(
                "PUT",
                "http://127.0.0.1:8080/demo/a.jpg",
                &[("content-type", "image/jpeg")],
                Duration::from_secs(60),
                now,
            )
            .unwrap();
        let headers = |name: &str| (name == "content-type").then(|| "image/jpeg".to_string());
        assert_eq!(
            signer().verify_presigned("PUT", &url, &headers, now),
            Ok(())
        );
        let wrong_type = |name: &str| (name == "content-type").then(|| "image/png".to_string());
        assert_eq!(
            signer().verify_presigned("PUT", &url, &wrong_type, now),
            Err(PresignError::BadSignature)
        );
        assert_eq!(
            signer().verify_presigned("GET", &url, &headers, now),
            Err(PresignError::BadSignature)
        );
        let later = now + Duration::from_secs(120);
        assert_eq!(
            signer().verify_presigned("PUT", &url, &headers, later),
            Err(PresignError::Expired)
        );
        let other_key = url.replace("a.jpg", "b.jpg");
        assert_eq!(
            signer().verify_presigned("PUT", &other_key, &headers, now),
            Err(PresignError::BadSignature)
        );
    }

    // Found by the `sigv4` fuzz target: the store builds the URL it verifies from the
    // Host header, and a Host ending in `#` (or holding a path) moved the request's
    // real path out of the signed URL: a URL presigned for one key verified for any.
    #[test]
    fn a_signed_path_cannot_be_moved_into_the_host() {
        let now = SystemTime::now();
        let signed = signer()
            .presign(
                "PUT",
                "http://127.0.0.1:8080/demo/a.jpg",
                &[],
                Duration::from_secs(60),
                now,
            )
            .unwrap();
        let query = signed.split_once('?').unwrap().1;
        let none = |_: &str| None;
        let path = format!("/demo/a.jpg?{query}");
        let url = request_url("127.0.0.1:8080", &path).unwrap();
        assert_eq!(signer().verify_presigned("PUT", &url, &none, now), Ok(()));
        for host in [
            "127.0.0.1:8080/demo/a.jpg#",
            "127.0.0.1:8080/demo",
            "a?",
            "",
        ] {
            let path = format!("/demo/b.jpg?{query}");
            assert_eq!(
                request_url(host, &path),
                Err(PresignError::Malformed),
                "{host}"
            );
            let url = format!("http://{host}{path}");
            assert!(
                signer().verify_presigned("PUT", &url, &none, now).is_err(),
                "{host}"
            );
        }
        assert_eq!(
            request_url("[::1]:8080", "/a").as_deref(),
            Ok("http://[::1]:8080/a")
        );
        assert!(request_url("h", "a").is_err());
    }

    // Found by the `post_policy` fuzz target: `+20260101T000000Z` parsed as the same
    // date (harmless, but a second spelling of a signed value).
    #[test]
    fn amz_date_has_one_spelling() {
        assert!(parse_amz_date("20260101T000000Z").is_some());
        for bad in [
            "+20260101T000000Z",
            "20260101T000000z",
            "2026011T000000Z",
            "",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn post_signature_matches_the_aws_published_example() {
        // AWS's "Example: Browser-Based Upload using HTTP POST (Using AWS Signature
        // Version 4)": its credentials, base64 policy and published signature.
        let aws = S3Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "us-east-1",
        );
        let day = parse_amz_date("20151229T000000Z").unwrap();
        let policy =
            "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6\
             IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRo\
             IiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAg\
             IHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5h\
             bWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwg\
             IiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUx\
             MjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0s\
             DQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16\
             LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3\
             czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwN\
             CiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        assert_eq!(
            aws.post_signature(policy, day),
            "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e"
        );
        assert_eq!(
            aws.post_credential(day),
            "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request"
        );
    }
}
