//! What a `/file` handler knows of an authenticated request ([`Call`]), and the
//! conversation parameter the upload and forward routes share ([`ToType`]).

use crate::error::ApiError;
use crate::query::Query;

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
    /// The request headers a handler may read.
    pub headers: &'a crate::headers::RequestHeaders,
}
