//! Where credentials are read from (SPEC §2-3): a header or the query parameter of the
//! same name (they must agree), and the acting-identity headers.

use http::HeaderMap;

use crate::error::ApiError;
use crate::query::Query;

/// The credential-bearing parts of a request, from headers or the query.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// `access-token`.
    pub access_token: Option<String>,
    /// `store_token`.
    pub store_token: Option<String>,
    /// `sdk_sign`.
    pub sdk_sign: Option<String>,
    /// `user_id` header.
    pub user_id: Option<i64>,
    /// `group_id` header.
    pub group_id: Option<i64>,
}

/// A parameter taken from the header or the query parameter of the same name; where
/// both are given they must agree (SPEC §2).
pub fn header_or_query(
    headers: &HeaderMap,
    query: &Query,
    name: &str,
) -> Result<Option<String>, ApiError> {
    let header = match headers.get(name) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::bad_param(name, "header is not valid text"))?
                .trim()
                .to_string(),
        ),
        None => None,
    }
    .filter(|v| !v.is_empty());
    let query = query
        .get(name)?
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    match (header, query) {
        (Some(h), Some(q)) if h != q => Err(ApiError::bad_param(
            name,
            "header and query parameter disagree",
        )),
        (h, q) => Ok(h.or(q)),
    }
}

/// An int64 identity header; present but empty or repeated is malformed.
fn int64_header(headers: &HeaderMap, name: &str) -> Result<Option<i64>, ApiError> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::bad_param(name, "given more than once"));
    }
    v.to_str()
        .unwrap_or("")
        .trim()
        .parse()
        .map(Some)
        .map_err(|_| ApiError::bad_param(name, "must be an int64"))
}

impl Credentials {
    /// Reads every credential of a request.
    pub fn extract(headers: &HeaderMap, query: &Query) -> Result<Credentials, ApiError> {
        Ok(Credentials {
            access_token: header_or_query(headers, query, "access-token")?,
            store_token: header_or_query(headers, query, "store_token")?,
            sdk_sign: header_or_query(headers, query, "sdk_sign")?,
            user_id: int64_header(headers, "user_id")?,
            group_id: int64_header(headers, "group_id")?,
        })
    }
}
