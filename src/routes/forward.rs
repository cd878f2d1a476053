//! `GET /file/upload/forward`: re-address a chat file to another conversation. The
//! object is not copied; the answer's `data` is a new file_sign naming it.

use crate::auth::file_sign::{verify_file_sign, FileSign};
use crate::clock::now_secs;
use crate::error::ApiError;
use crate::query::Query;
use crate::routes::call::{Call, ToType};

/// Parameters of the forward route.
#[derive(Debug, Clone)]
pub struct ForwardParams {
    /// The file_sign of the file being forwarded.
    pub file_sign: String,
    /// The new conversation.
    pub to_id: i64,
    /// Its kind.
    pub to_type: ToType,
}

impl ForwardParams {
    /// Parses `file_sign`, `to_id`, `to_type`.
    pub fn parse(query: &Query) -> Result<Self, ApiError> {
        Ok(ForwardParams {
            file_sign: query.required("file_sign")?.to_string(),
            to_id: crate::storage::keys::key_id(
                "to_id",
                query.required_parsed("to_id", "an int64")?,
            )?,
            to_type: ToType::parse(query)?,
        })
    }
}

/// Verifies the file_sign and mints the new one.
pub fn forward(call: &Call<'_>, params: &ForwardParams) -> Result<String, ApiError> {
    let original = verify_file_sign(&params.file_sign, call.app_id, &call.app.secrets)?;
    let forwarded = FileSign {
        tt: params.to_type as u8,
        ti: params.to_id,
        iat: now_secs(),
        ..original
    };
    let secret = call
        .app
        .secrets
        .first()
        .ok_or_else(|| ApiError::internal("app has no secret"))?;
    forwarded.mint(secret)
}
