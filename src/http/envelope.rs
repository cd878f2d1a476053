//! The JSON envelope of SPEC §4 and the one place that writes small answers.

use crate::http::exchange::Exchange;
use bytes::Bytes;
use http::StatusCode;
use pingora_http::ResponseHeader;
use serde::Serialize;

use crate::error::ApiError;

/// `{"code": 200, "data": ..., "message": null}`.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    code: u32,
    data: Option<T>,
    message: Option<&'a str>,
}

/// The success envelope around `data`.
pub fn success_body<T: Serialize>(data: &T) -> Bytes {
    let env = Envelope {
        code: 200,
        data: Some(data),
        message: None,
    };
    // Serializing our own plain structs cannot fail; fall back to an empty object anyway.
    Bytes::from(serde_json::to_vec(&env).unwrap_or_else(|_| b"{}".to_vec()))
}

/// The envelope of a health check that passes (`/healthz`, `/_cluster/healthz`).
pub fn health_body() -> Bytes {
    Bytes::from_static(br#"{"code":200,"data":{"status":"ok"},"message":null}"#)
}

/// The error envelope.
pub fn error_body(err: &ApiError) -> Bytes {
    let env: Envelope<'_, ()> = Envelope {
        code: err.code(),
        data: None,
        message: Some(err.message()),
    };
    Bytes::from(serde_json::to_vec(&env).unwrap_or_else(|_| b"{}".to_vec()))
}

/// Writes the error envelope as a whole HTTP/1.1 answer straight to a transport that
/// pingora has not taken yet (a refused head, plain HTTP on the TLS port), with
/// `Connection: close`; the caller then drops the connection. Write errors are moot.
pub async fn write_refusal<S>(stream: &mut S, err: &ApiError)
where
    S: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    use tokio::io::AsyncWriteExt;
    let body = error_body(err);
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        err.status().as_u16(),
        err.status().canonical_reason().unwrap_or(""),
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&body).await;
    let _ = stream.flush().await;
}

/// Headers every filegate answer carries.
pub fn add_common_headers(resp: &mut ResponseHeader) -> pingora_core::Result<()> {
    resp.insert_header("X-Content-Type-Options", "nosniff")?;
    resp.insert_header("Access-Control-Allow-Origin", "*")?;
    Ok(())
}

/// Writes a complete small answer (header and body, with `Content-Length`). The
/// answer to a `HEAD` is the header alone: pingora's HTTP/1 writer drops such a body
/// itself, but over h2 it would go out as DATA, which clients reject.
pub async fn write_small(
    session: &mut dyn Exchange,
    mut resp: ResponseHeader,
    body: Bytes,
) -> pingora_core::Result<()> {
    resp.insert_header("Content-Length", body.len().to_string())?;
    add_common_headers(&mut resp)?;
    let empty = body.is_empty() || session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(resp), empty).await?;
    if !empty {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Writes a JSON answer with the given status.
pub async fn write_json(
    session: &mut dyn Exchange,
    status: StatusCode,
    body: Bytes,
) -> pingora_core::Result<()> {
    let mut resp = ResponseHeader::build_no_case(status, Some(4))?;
    resp.insert_header("Content-Type", "application/json; charset=utf-8")?;
    resp.insert_header("Cache-Control", "no-store")?;
    write_small(session, resp, body).await
}

/// Writes the error envelope: the one writer of every error answer (with
/// `Retry-After`, `Allow` or `Content-Range` when the error carries one, and
/// `Cache-Control: no-store`). With `as_http_200` (per-app switch) the HTTP status is
/// 200 and the code is in the body only. Returns the HTTP status written.
pub async fn write_error(
    session: &mut dyn Exchange,
    err: &ApiError,
    as_http_200: bool,
) -> pingora_core::Result<u16> {
    let status = if as_http_200 {
        StatusCode::OK
    } else {
        err.status()
    };
    let mut resp = ResponseHeader::build_no_case(status, Some(6))?;
    resp.insert_header("Content-Type", "application/json; charset=utf-8")?;
    resp.insert_header("Cache-Control", "no-store")?;
    if let Some(secs) = err.retry_after() {
        resp.insert_header("Retry-After", secs.to_string())?;
    }
    if let Some(allow) = err.allow() {
        resp.insert_header("Allow", allow)?;
    }
    if let Some(size) = err.unsatisfiable_size() {
        resp.insert_header("Content-Range", format!("bytes */{size}"))?;
    }
    write_small(session, resp, error_body(err)).await?;
    Ok(status.as_u16())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_have_the_three_keys() {
        let ok = success_body(&serde_json::json!({"a": 1}));
        assert_eq!(&ok[..], br#"{"code":200,"data":{"a":1},"message":null}"#);
        let err = error_body(&ApiError::unknown_app());
        assert_eq!(
            &err[..],
            br#"{"code":40000,"data":null,"message":"unknown app_id"}"#
        );
    }
}
