//! The six `/file` routes (API §6) and the demo page: one typed parse per route, one
//! file per route family ([`upload`], [`forward`], [`download`]).

pub mod download;
pub mod forward;
pub mod peer_purge;
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

/// Which `/file` route a path names: the one place that decides route, method and
/// the credential a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    /// `/file/upload/avatar/user`.
    UploadAvatarUser,
    /// `/file/upload/avatar/group`.
    UploadAvatarGroup,
    /// `/file/upload/chat`.
    UploadChat,
    /// `/file/upload/forward`.
    UploadForward,
    /// `/file/download/avatar`.
    DownloadAvatar,
    /// `/file/download/chat`.
    DownloadChat,
    /// `/file/demo`.
    Demo,
}

impl RouteId {
    /// Every route, with its path.
    pub const ALL: [(&'static str, RouteId); 7] = [
        ("/file/upload/avatar/user", RouteId::UploadAvatarUser),
        ("/file/upload/avatar/group", RouteId::UploadAvatarGroup),
        ("/file/upload/chat", RouteId::UploadChat),
        ("/file/upload/forward", RouteId::UploadForward),
        ("/file/download/avatar", RouteId::DownloadAvatar),
        ("/file/download/chat", RouteId::DownloadChat),
        ("/file/demo", RouteId::Demo),
    ];

    /// The route a path names; 404 for any other `/file` path.
    pub fn from_path(path: &str) -> Result<RouteId, ApiError> {
        RouteId::ALL
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, id)| *id)
            .ok_or_else(|| ApiError::not_found(format!("no such route: {path}")))
    }

    /// The metric label and log name.
    pub fn name(self) -> &'static str {
        match self {
            RouteId::UploadAvatarUser => "upload_avatar_user",
            RouteId::UploadAvatarGroup => "upload_avatar_group",
            RouteId::UploadChat => "upload_chat",
            RouteId::UploadForward => "upload_forward",
            RouteId::DownloadAvatar => "download_avatar",
            RouteId::DownloadChat => "download_chat",
            RouteId::Demo => "demo",
        }
    }

    /// Which credentials the route takes (`None`: none, the demo page).
    pub fn access(self) -> Option<Access> {
        match self {
            RouteId::DownloadAvatar | RouteId::DownloadChat => Some(Access::Download),
            RouteId::Demo => None,
            _ => Some(Access::AccessToken),
        }
    }

    /// Every route is `GET` (and so `HEAD`); anything else is 405 with `Allow`.
    pub fn check_method(self, method: &Method) -> Result<(), ApiError> {
        if method == Method::GET || method == Method::HEAD {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(ALLOWED_METHODS))
        }
    }
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
    RouteId::from_path(path).ok().map(RouteId::name)
}

/// Methods every route takes: all six are GET (and so HEAD).
pub const ALLOWED_METHODS: &str = "GET, HEAD";

impl Route {
    /// Parses path, method and query; 404 for an unknown path, 405 for a wrong method,
    /// 400 naming the parameter at fault.
    pub fn parse(method: &Method, path: &str, query: &Query) -> Result<Route, ApiError> {
        let id = RouteId::from_path(path)?;
        id.check_method(method)?;
        Route::parse_params(id, query)
    }

    /// Parses the query of a route already identified.
    pub fn parse_params(id: RouteId, query: &Query) -> Result<Route, ApiError> {
        Ok(match id {
            RouteId::UploadAvatarUser => {
                Route::Upload(upload::UploadParams::parse_user_avatar(query)?)
            }
            RouteId::UploadAvatarGroup => {
                Route::Upload(upload::UploadParams::parse_group_avatar(query)?)
            }
            RouteId::UploadChat => Route::Upload(upload::UploadParams::parse_chat(query)?),
            RouteId::UploadForward => Route::Forward(forward::ForwardParams::parse(query)?),
            RouteId::DownloadAvatar => {
                Route::Download(download::DownloadParams::parse_avatar(query)?)
            }
            RouteId::DownloadChat => Route::Download(download::DownloadParams::parse_chat(query)?),
            RouteId::Demo => Route::Demo,
        })
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
    pub headers: &'a crate::headers::RequestHeaders,
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
