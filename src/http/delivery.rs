//! Writing an object to the client: `200`/`206`/`304` with exact headers and a
//! streamed body, or a `302` to the store (SPEC §4), each with `X-Cache-Status`; a
//! `Range` beyond the object is an error (416) the caller's envelope writer answers. Used
//! for originals and derived results alike, from the edge cache ([`serve_found`]) or
//! straight from the store ([`serve_object`]).

use crate::http::exchange::Exchange;
use bytes::Bytes;
use futures::StreamExt;
use http::StatusCode;
use pingora_http::ResponseHeader;

use crate::cache::{CacheStatus, Found};
use crate::error::ApiError;
use crate::headers::etag_matches;
use crate::http::envelope::{add_common_headers, write_small};
use crate::http::presentation::{Presentation, SANDBOX_CSP};
use crate::storage::keys::ObjectKey;
use crate::storage::ByteRange;
use crate::storage::{GetOutcome, GetRequest, ObjectMeta, ObjectStore};

/// A handler failure: either an error envelope can still be written, or the response
/// has started and the connection must be dropped.
#[derive(Debug)]
pub enum Failure {
    /// Nothing written yet: answer the envelope.
    Api(ApiError),
    /// Headers already sent (or the client is gone): abort.
    Aborted(Box<pingora_error::Error>),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Api(e)
    }
}

impl From<Box<pingora_error::Error>> for Failure {
    fn from(e: Box<pingora_error::Error>) -> Self {
        Failure::Aborted(e)
    }
}

fn object_headers(
    status: StatusCode,
    meta: &ObjectMeta,
    presentation: &Presentation,
    cache: CacheStatus,
) -> pingora_core::Result<ResponseHeader> {
    let mut resp = ResponseHeader::build_no_case(status, Some(14))?;
    resp.insert_header("X-Cache-Status", cache.as_str())?;
    resp.insert_header("ETag", &meta.etag)?;
    resp.insert_header("Cache-Control", presentation.cache_control)?;
    resp.insert_header("Accept-Ranges", "bytes")?;
    resp.insert_header("Vary", "Accept")?;
    if let Some(lm) = &meta.last_modified {
        resp.insert_header("Last-Modified", lm)?;
    }
    if status == StatusCode::NOT_MODIFIED {
        return Ok(resp);
    }
    let content = presentation.content_headers(meta);
    resp.insert_header("Content-Type", content.content_type)?;
    resp.insert_header("Content-Security-Policy", SANDBOX_CSP)?;
    if let Some(d) = content.disposition {
        resp.insert_header("Content-Disposition", d)?;
    }
    Ok(resp)
}

/// Serves an object straight from the store (uncached: `cache` is `BYPASS`): HEAD,
/// `If-None-Match`, one `Range`, streamed body. Returns the status written.
pub async fn serve_object(
    session: &mut dyn Exchange,
    store: &dyn ObjectStore,
    key: &ObjectKey,
    req_range: Option<&str>,
    if_none_match: Option<&str>,
    presentation: &Presentation,
    cache: CacheStatus,
) -> Result<u16, Failure> {
    let is_head = session.req_header().method == http::Method::HEAD;
    if is_head {
        let meta = store.head(key).await.map_err(ApiError::from)?;
        if if_none_match.is_some_and(|inm| etag_matches(inm, &meta.etag)) {
            let resp = object_headers(StatusCode::NOT_MODIFIED, &meta, presentation, cache)?;
            write_header_only(session, resp).await?;
            return Ok(304);
        }
        let mut resp = object_headers(StatusCode::OK, &meta, presentation, cache)?;
        resp.insert_header("Content-Length", meta.size.to_string())?;
        write_header_only(session, resp).await?;
        return Ok(200);
    }

    let request = GetRequest {
        range: req_range.and_then(ByteRange::parse_header),
        if_none_match: if_none_match.map(str::to_string),
    };
    let outcome = match store.get(key, request).await {
        Ok(o) => o,
        Err(crate::storage::StoreError::RangeNotSatisfiable { size }) => {
            return Err(ApiError::range_not_satisfiable(size).into());
        }
        Err(e) => return Err(ApiError::from(e).into()),
    };
    match outcome {
        GetOutcome::NotModified(meta) => {
            let resp = object_headers(StatusCode::NOT_MODIFIED, &meta, presentation, cache)?;
            write_header_only(session, resp).await?;
            Ok(304)
        }
        GetOutcome::Body(body) => {
            let (status, length) = match body.range {
                Some((first, last)) => (StatusCode::PARTIAL_CONTENT, last - first + 1),
                None => (StatusCode::OK, body.meta.size),
            };
            let mut resp = object_headers(status, &body.meta, presentation, cache)?;
            resp.insert_header("Content-Length", length.to_string())?;
            if let Some((first, last)) = body.range {
                resp.insert_header(
                    "Content-Range",
                    format!("bytes {first}-{last}/{}", body.meta.size),
                )?;
            }
            stream_body(session, resp, length, body.stream).await?;
            Ok(status.as_u16())
        }
    }
}

/// Serves a body of the edge cache (cached, or arriving from a fill) with the same
/// semantics as [`serve_object`]: `If-None-Match` (304), HEAD, one `Range` (206/416),
/// the body streamed piece by piece. A fill that fails midway cuts the connection,
/// so the client sees a short body against its `Content-Length`, never a whole one.
/// An `info=1` result (its stored JSON) as the success envelope's `data`, with
/// `X-Cache-Status`; private to the caller, like the download it describes.
pub async fn serve_info(session: &mut dyn Exchange, found: Found) -> Result<u16, Failure> {
    let cache = found.status;
    let data = found.body.collect().await?;
    let mut body = Vec::with_capacity(data.len() + 40);
    body.extend_from_slice(br#"{"code":200,"data":"#);
    body.extend_from_slice(&data);
    body.extend_from_slice(br#","message":null}"#);
    let mut resp = ResponseHeader::build_no_case(StatusCode::OK, Some(5))?;
    resp.insert_header("Content-Type", "application/json; charset=utf-8")?;
    resp.insert_header("X-Cache-Status", cache.as_str())?;
    resp.insert_header("Cache-Control", "private, max-age=3600")?;
    crate::http::envelope::write_small(session, resp, bytes::Bytes::from(body)).await?;
    Ok(200)
}

pub async fn serve_found(
    session: &mut dyn Exchange,
    found: Found,
    req_range: Option<&str>,
    if_none_match: Option<&str>,
    presentation: &Presentation,
) -> Result<u16, Failure> {
    let Found {
        mut body,
        status: cache,
    } = found;
    let meta = body.meta();
    if if_none_match.is_some_and(|inm| etag_matches(inm, &meta.etag)) {
        let resp = object_headers(StatusCode::NOT_MODIFIED, meta, presentation, cache)?;
        write_header_only(session, resp).await?;
        return Ok(304);
    }
    let size = meta.size;
    let Span {
        status,
        first,
        last,
        length,
    } = span_of(size, req_range)?;
    let mut resp = object_headers(status, meta, presentation, cache)?;
    if status == StatusCode::PARTIAL_CONTENT {
        resp.insert_header("Content-Range", format!("bytes {first}-{last}/{size}"))?;
    }
    resp.insert_header("Content-Length", length.to_string())?;
    add_common_headers(&mut resp)?;
    if length == 0 || session.req_header().method == http::Method::HEAD {
        session.write_response_header(Box::new(resp), true).await?;
        return Ok(status.as_u16());
    }
    // The common case, a small cached body: its head and bytes in one send.
    let mut index = 0;
    let piece = next_piece(&mut body, &mut index).await?;
    if status == StatusCode::OK && piece.len() as u64 == size {
        session.write_response_header(Box::new(resp), false).await?;
        session.write_response_body(Some(piece), true).await?;
        return Ok(200);
    }
    session.write_response_header(Box::new(resp), false).await?;
    let mut offset = 0u64; // of `piece` in the body
    let mut piece = piece;
    let mut sent = 0u64;
    loop {
        let end = offset + piece.len() as u64; // exclusive
        if let Some(within) = slice_within(offset, piece.len(), first, last) {
            let slice = piece.slice(within);
            sent += slice.len() as u64;
            session.write_response_body(Some(slice), false).await?;
        }
        if end > last {
            break;
        }
        offset = end;
        piece = match body.next_piece(&mut index).await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => return Err(cut(format!("the body failed mid-stream: {e}"))),
        };
    }
    if sent != length {
        return Err(cut(format!(
            "the body ended after {sent} of {length} bytes"
        )));
    }
    session.write_response_body(None, true).await?;
    Ok(status.as_u16())
}

/// What part of a body of `size` bytes an answer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    /// 200, or 206 for a satisfiable `Range`.
    status: StatusCode,
    /// First byte sent.
    first: u64,
    /// Last byte sent (inclusive; meaningless when `length` is 0).
    last: u64,
    /// Bytes sent.
    length: u64,
}

/// The span a `Range` header asks of `size` bytes: the whole body without one (or
/// with a malformed or multi-range one, answered whole), 416 beyond the body.
fn span_of(size: u64, range: Option<&str>) -> Result<Span, ApiError> {
    let (status, first, last) = match range.and_then(ByteRange::parse_header) {
        Some(range) => match range.resolve(size) {
            Some((first, last)) => (StatusCode::PARTIAL_CONTENT, first, last),
            None => return Err(ApiError::range_not_satisfiable(size)),
        },
        None => (StatusCode::OK, 0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { last - first + 1 };
    Ok(Span {
        status,
        first,
        last,
        length,
    })
}

/// The part of a piece of `len` bytes at `offset` in the body that falls within
/// `first..=last`, as a range of the piece.
fn slice_within(offset: u64, len: usize, first: u64, last: u64) -> Option<std::ops::Range<usize>> {
    let end = offset + len as u64; // exclusive
    if end <= first || offset > last {
        return None;
    }
    let from = first.saturating_sub(offset) as usize;
    let to = ((last + 1).min(end) - offset) as usize;
    Some(from..to)
}

async fn next_piece(body: &mut crate::cache::Body, index: &mut usize) -> Result<Bytes, Failure> {
    match body.next_piece(index).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Ok(Bytes::new()),
        // Nothing is written yet: an envelope can still be answered.
        Err(e) => Err(Failure::Api(e)),
    }
}

fn cut(why: String) -> Failure {
    Failure::Aborted(pingora_error::Error::explain(
        pingora_error::ErrorType::ReadError,
        why,
    ))
}

/// `304` for an ETag known without the body (a derived result's).
pub async fn not_modified(
    session: &mut dyn Exchange,
    meta: &ObjectMeta,
    presentation: &Presentation,
    cache: CacheStatus,
) -> Result<u16, Failure> {
    let resp = object_headers(StatusCode::NOT_MODIFIED, meta, presentation, cache)?;
    write_header_only(session, resp).await?;
    Ok(304)
}

/// `302` to a presigned URL, with `Content-Length: 0` (pingora does not add framing).
pub async fn redirect(
    session: &mut dyn Exchange,
    location: &str,
    max_age_secs: u64,
    cache: CacheStatus,
) -> Result<u16, Failure> {
    let mut resp = ResponseHeader::build_no_case(StatusCode::FOUND, Some(5))?;
    resp.insert_header("X-Cache-Status", cache.as_str())?;
    resp.insert_header("Location", location)?;
    resp.insert_header("Cache-Control", format!("private, max-age={max_age_secs}"))?;
    write_small(session, resp, Bytes::new()).await?;
    Ok(302)
}

async fn write_header_only(
    session: &mut dyn Exchange,
    mut resp: ResponseHeader,
) -> pingora_core::Result<()> {
    add_common_headers(&mut resp)?;
    session.write_response_header(Box::new(resp), true).await
}

async fn stream_body(
    session: &mut dyn Exchange,
    mut resp: ResponseHeader,
    length: u64,
    mut stream: crate::storage::ByteStream,
) -> Result<(), Failure> {
    add_common_headers(&mut resp)?;
    if length == 0 {
        session.write_response_header(Box::new(resp), true).await?;
        return Ok(());
    }
    session.write_response_header(Box::new(resp), false).await?;
    let mut sent = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            Failure::Aborted(pingora_error::Error::explain(
                pingora_error::ErrorType::ReadError,
                format!("store body failed mid-stream: {e}"),
            ))
        })?;
        sent += chunk.len() as u64;
        session.write_response_body(Some(chunk), false).await?;
    }
    if sent != length {
        return Err(Failure::Aborted(pingora_error::Error::explain(
            pingora_error::ErrorType::ReadError,
            format!("store body ended after {sent} of {length} bytes"),
        )));
    }
    session.write_response_body(None, true).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_to_spans() {
        let span = |range| {
            span_of(1000, range)
                .map(|s| (s.status.as_u16(), s.first, s.last, s.length))
                .ok()
        };
        assert_eq!(span(None), Some((200, 0, 999, 1000)));
        assert_eq!(span(Some("bytes=0-9")), Some((206, 0, 9, 10)));
        assert_eq!(span(Some("bytes=990-")), Some((206, 990, 999, 10)));
        assert_eq!(span(Some("bytes=-5")), Some((206, 995, 999, 5)));
        assert_eq!(span(Some("bytes=500-99999")), Some((206, 500, 999, 500)));
        // Malformed and multi-range requests are answered whole.
        assert_eq!(span(Some("bytes=oops")), Some((200, 0, 999, 1000)));
        assert_eq!(span(Some("bytes=0-1,5-6")), Some((200, 0, 999, 1000)));
        let e = span_of(1000, Some("bytes=1000-")).unwrap_err();
        assert_eq!(
            (e.status().as_u16(), e.unsatisfiable_size()),
            (416, Some(1000))
        );
        assert_eq!(span_of(0, None).unwrap().length, 0);
    }

    #[test]
    fn pieces_are_sliced_to_the_span() {
        // A body of three pieces of 4 bytes, bytes 3..=9 asked.
        let slices: Vec<_> = [0u64, 4, 8]
            .iter()
            .map(|&offset| slice_within(offset, 4, 3, 9))
            .collect();
        assert_eq!(slices, vec![Some(3..4), Some(0..4), Some(0..2)]);
        assert_eq!(slice_within(12, 4, 3, 9), None, "after the span");
        assert_eq!(slice_within(0, 3, 3, 9), None, "before the span");
        // Every byte of the span is sent once, whatever the piece size.
        for piece in 1..=11usize {
            let mut sent = Vec::new();
            let mut offset = 0u64;
            while offset < 20 {
                if let Some(r) = slice_within(offset, piece, 5, 14) {
                    sent.extend((r.start..r.end).map(|i| offset + i as u64));
                }
                offset += piece as u64;
            }
            assert_eq!(sent, (5..=14).collect::<Vec<u64>>(), "pieces of {piece}");
        }
    }
}
