//! The `/file` routes (API §6) as a table: which route a path names, its metric label,
//! the method it takes and the credentials it accepts. The one place that decides
//! them: the gate dispatches by it, metrics label by it, the contract test reads it.

use http::Method;

use crate::error::ApiError;

/// Which credentials a route takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Upload routes: an access token only.
    AccessToken,
    /// Download routes: an access token, a store token or an sdk_sign.
    Download,
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

    /// Every route is `GET` (and so `HEAD`; `OPTIONS` is the preflight, answered
    /// before this check); anything else is 405 with `Allow`.
    pub fn check_method(self, method: &Method) -> Result<(), ApiError> {
        if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(ALLOWED_METHODS))
        }
    }
}

/// Methods every route answers: all six are GET (and so HEAD), and every route
/// answers a CORS preflight (`OPTIONS`). The `Allow` of a 405 and the preflight's
/// `Access-Control-Allow-Methods` both say this.
pub const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_methods_and_names() {
        assert_eq!(
            RouteId::from_path("/file/download/chat").unwrap(),
            RouteId::DownloadChat
        );
        assert_eq!(RouteId::from_path("/file/nope").unwrap_err().status(), 404);
        let e = RouteId::UploadChat.check_method(&Method::POST).unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(e.allow(), Some("GET, HEAD, OPTIONS"));
        assert!(RouteId::UploadChat.check_method(&Method::HEAD).is_ok());
        let names: std::collections::HashSet<_> =
            RouteId::ALL.iter().map(|(_, id)| id.name()).collect();
        assert_eq!(names.len(), RouteId::ALL.len(), "one name per route");
        assert_eq!(RouteId::Demo.access(), None);
        assert_eq!(RouteId::DownloadAvatar.access(), Some(Access::Download));
    }
}
