//! The six `/file` routes (API §6) and the demo page: one typed parse per route, one
//! file per route family ([`upload`], [`forward`], [`download`]).

pub mod download;
pub mod forward;
pub mod upload;

use http::Method;

use crate::auth::Access;
use crate::error::ApiError;
use crate::query::Query;

/// A parsed `/file` request.
#[derive(Debug, Clone)]
pub enum Route {
    /// `GET /file/upload/avatar/user`, `/file/upload/avatar/group`, `/file/upload/chat`.
    Upload(upload::UploadParams),
    /// `GET /file/upload/forward`.
    Forward(forward::ForwardParams),
    /// `GET /file/download/avatar`, `/file/download/chat`.
    Download(download::DownloadParams),
    /// `GET /file/demo`: the demo page.
    Demo,
}

/// Every `/file` path filegate serves, with its metric label and log name.
pub const ROUTE_PATHS: [(&str, &str); 7] = [
    ("/file/upload/avatar/user", "upload_avatar_user"),
    ("/file/upload/avatar/group", "upload_avatar_group"),
    ("/file/upload/chat", "upload_chat"),
    ("/file/upload/forward", "upload_forward"),
    ("/file/download/avatar", "download_avatar"),
    ("/file/download/chat", "download_chat"),
    ("/file/demo", "demo"),
];

/// The metric label and log name of a path, or `None` for an unknown `/file` path.
pub fn route_name(path: &str) -> Option<&'static str> {
    ROUTE_PATHS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, name)| *name)
}

/// Methods every route takes: all six are GET (and so HEAD).
pub const ALLOWED_METHODS: &str = "GET, HEAD";

impl Route {
    /// Parses path, method and query; 404 for an unknown path, 405 for a wrong method,
    /// 400 naming the parameter at fault.
    pub fn parse(method: &Method, path: &str, query: &Query) -> Result<Route, ApiError> {
        let name = route_name(path)
            .ok_or_else(|| ApiError::not_found(format!("no such route: {path}")))?;
        if method != Method::GET && method != Method::HEAD {
            return Err(ApiError::method_not_allowed(ALLOWED_METHODS));
        }
        Ok(match name {
            "upload_avatar_user" => Route::Upload(upload::UploadParams::parse_user_avatar(query)?),
            "upload_avatar_group" => {
                Route::Upload(upload::UploadParams::parse_group_avatar(query)?)
            }
            "upload_chat" => Route::Upload(upload::UploadParams::parse_chat(query)?),
            "upload_forward" => Route::Forward(forward::ForwardParams::parse(query)?),
            "download_avatar" => Route::Download(download::DownloadParams::parse_avatar(query)?),
            "download_chat" => Route::Download(download::DownloadParams::parse_chat(query)?),
            _ => Route::Demo,
        })
    }

    /// Which credentials the route takes (`None`: no credential, the demo page).
    pub fn access(&self) -> Option<Access> {
        match self {
            Route::Upload(_) | Route::Forward(_) => Some(Access::AccessToken),
            Route::Download(_) => Some(Access::Download),
            Route::Demo => None,
        }
    }
}

/// `to_type`: the kind of conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToType {
    /// 1: a user.
    User = 1,
    /// 2: a group.
    Group = 2,
}

impl ToType {
    /// Parses the optional `to_type` (default 1).
    pub fn parse(query: &Query) -> Result<ToType, ApiError> {
        match query.parsed::<u8>("to_type", "1 (user) or 2 (group)")? {
            None | Some(1) => Ok(ToType::User),
            Some(2) => Ok(ToType::Group),
            Some(_) => Err(ApiError::bad_param(
                "to_type",
                "must be 1 (user) or 2 (group)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_path_and_method() {
        let q = Query::parse("");
        assert_eq!(
            Route::parse(&Method::GET, "/file/nope", &q)
                .unwrap_err()
                .status(),
            404
        );
        let e = Route::parse(&Method::POST, "/file/upload/avatar/user", &q).unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(e.allow(), Some("GET, HEAD"));
        assert!(Route::parse(&Method::GET, "/file/upload/avatar/user", &q).is_ok());
    }
}

/// What a handler knows of an authenticated request.
pub struct Call<'a> {
    /// The app_id.
    pub app_id: &'a str,
    /// The app's configuration.
    pub app: &'a crate::config::AppConfig,
    /// Who is calling, after the acting-identity rules.
    pub actor: &'a crate::auth::Actor,
    /// HEAD or GET.
    pub method: &'a Method,
    /// The decoded query.
    pub query: &'a Query,
    /// The request headers a handler may read.
    pub headers: &'a RequestHeaders,
}

/// The few request headers handlers read, copied out of the session so a handler can
/// write to it while holding them.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders {
    /// `Range`.
    pub range: Option<String>,
    /// `If-None-Match`.
    pub if_none_match: Option<String>,
    /// `Accept`.
    pub accept: Option<String>,
}

impl RequestHeaders {
    /// Copies the headers out of a request.
    pub fn from_map(headers: &http::HeaderMap) -> Self {
        let text = |name: http::header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        RequestHeaders {
            range: text(http::header::RANGE),
            if_none_match: text(http::header::IF_NONE_MATCH),
            accept: text(http::header::ACCEPT),
        }
    }
}
