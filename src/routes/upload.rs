//! `GET /file/upload/avatar/user`, `/file/upload/avatar/group`, `/file/upload/chat`:
//! a signed upload of one new key, and the URL that will download it (SPEC §5).
//!
//! Beyond the API, clients may pass `file_name`, `content_type` and `size`: the grant
//! then pins that type (and, for PUT, that size), the key keeps the file's extension,
//! and a chat file's file_sign carries the name for `Content-Disposition`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::auth::file_sign::FileSign;
use crate::clock::now_secs;
use crate::config::UploadMethod;
use crate::error::ApiError;
use crate::file_type::{extension_for, FileType};
use crate::query::{encode_value, Query};
use crate::routes::call::{Call, ToType};
use crate::services::Services;
use crate::storage::keys::{key_id, new_object_id, ObjectKey};
use crate::storage::{TypeRule, UploadRequest};

/// Longest `file_name` hint kept.
const MAX_FILE_NAME: usize = 255;

/// Which object an upload creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadTarget {
    /// The acting user's avatar.
    UserAvatar,
    /// A group's avatar (admin of that group only).
    GroupAvatar {
        /// The group.
        group_id: i64,
    },
    /// A chat file.
    Chat {
        /// file_type.
        file_type: FileType,
        /// The conversation.
        to_id: i64,
        /// Its kind.
        to_type: ToType,
    },
}

/// Parameters of the upload routes.
#[derive(Debug, Clone)]
pub struct UploadParams {
    /// What is uploaded.
    pub target: UploadTarget,
    /// `file_name` hint.
    pub file_name: Option<String>,
    /// `content_type` hint.
    pub content_type: Option<String>,
    /// `size` hint, bytes.
    pub size: Option<u64>,
}

impl UploadParams {
    fn with_hints(target: UploadTarget, query: &Query) -> Result<Self, ApiError> {
        let file_name = query
            .get("file_name")?
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        if let Some(name) = &file_name {
            if name.len() > MAX_FILE_NAME || name.chars().any(char::is_control) {
                return Err(ApiError::bad_param(
                    "file_name",
                    "at most 255 bytes, no control characters",
                ));
            }
        }
        Ok(UploadParams {
            target,
            file_name,
            content_type: query
                .get("content_type")?
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            size: query.parsed("size", "a size in bytes")?,
        })
    }

    /// `/file/upload/avatar/user`.
    pub fn parse_user_avatar(query: &Query) -> Result<Self, ApiError> {
        Self::with_hints(UploadTarget::UserAvatar, query)
    }

    /// `/file/upload/avatar/group?group_id=`.
    pub fn parse_group_avatar(query: &Query) -> Result<Self, ApiError> {
        let group_id = key_id("group_id", query.required_parsed("group_id", "an int64")?)?;
        Self::with_hints(UploadTarget::GroupAvatar { group_id }, query)
    }

    /// `/file/upload/chat?file_type=&to_id=&to_type=`.
    pub fn parse_chat(query: &Query) -> Result<Self, ApiError> {
        let code: u16 = query.required_parsed("file_type", "one of 100-104, 200-203")?;
        let file_type = FileType::from_code(code)
            .ok_or_else(|| ApiError::bad_param("file_type", "must be one of 100-104, 200-203"))?;
        let to_id = key_id("to_id", query.required_parsed("to_id", "an int64")?)?;
        let to_type = ToType::parse(query)?;
        Self::with_hints(
            UploadTarget::Chat {
                file_type,
                to_id,
                to_type,
            },
            query,
        )
    }

    fn file_type(&self) -> FileType {
        match self.target {
            UploadTarget::Chat { file_type, .. } => file_type,
            _ => FileType::Avatar,
        }
    }
}

/// The answer's `data` (API 6.3-6.5, plus `object_name`/`file_sign` for convenience).
#[derive(Debug, Serialize)]
pub struct UploadAnswer {
    /// `POST` or `PUT`.
    pub upload_method: &'static str,
    /// Where to upload.
    pub upload_url: String,
    /// POST: form fields to send before `file`; PUT: headers to send.
    pub oss_body_param: BTreeMap<String, String>,
    /// The filegate URL that downloads the object once uploaded.
    pub download_url: String,
    /// Avatars: the `object_name` for `/file/download/avatar`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_name: Option<String>,
    /// Chat files: the file_sign naming the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_sign: Option<String>,
}

/// Builds the signed upload.
pub fn grant_upload(
    services: &Services,
    call: &Call<'_>,
    params: &UploadParams,
) -> Result<UploadAnswer, ApiError> {
    let uploader = call
        .actor
        .acting_user()
        .ok_or_else(|| ApiError::forbidden("uploads need an access token"))?;
    // The uploader's id names the avatar key (and is the chat file's `fr`).
    let uploader = key_id("user_id (the acting user)", uploader)?;
    if let UploadTarget::GroupAvatar { group_id } = params.target {
        if !call.actor.administers(group_id) {
            return Err(ApiError::forbidden(format!(
                "group avatars need an admin token for group {group_id}"
            )));
        }
    }

    let file_type = params.file_type();
    let content_type = match &params.content_type {
        Some(t) if file_type.allows_content_type(t) => crate::file_type::essence(t),
        Some(_) => {
            return Err(ApiError::new(
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "content_type: not allowed for this file_type (allowed: {})",
                    allowed_list(file_type)
                ),
            ))
        }
        None => file_type.default_content_type().to_string(),
    };
    let max_size = call.app.max_upload.for_type(file_type);
    if let Some(size) = params.size {
        if size > max_size {
            return Err(ApiError::too_large(format!(
                "size: {size} bytes is above this file_type's limit of {max_size} bytes"
            )));
        }
        if size == 0 {
            return Err(ApiError::bad_param("size", "must be above 0"));
        }
    }
    if call.app.upload_method == UploadMethod::Put && params.size.is_none() {
        return Err(ApiError::bad_param(
            "size",
            "required when the app uploads by PUT (the presigned URL signs the length)",
        ));
    }

    let ext = extension_for(params.file_name.as_deref(), &content_type);
    let id = new_object_id();
    let key = match params.target {
        UploadTarget::UserAvatar => ObjectKey::user_avatar(call.app_id, uploader, &id, &ext),
        UploadTarget::GroupAvatar { group_id } => {
            ObjectKey::group_avatar(call.app_id, group_id, &id, &ext)
        }
        UploadTarget::Chat { to_id, to_type, .. } => ObjectKey::chat(
            call.app_id,
            to_type as u8,
            to_id,
            &today_yyyymmdd(),
            &id,
            &ext,
        ),
    };

    // A client that named its type gets exactly it; otherwise any type the file_type
    // allows is accepted (the store checks the uploaded part, or sniffs it).
    let allowed = file_type.allowed_content_types();
    let type_rule = match &params.content_type {
        Some(_) => TypeRule::Exact(content_type.clone()),
        None if allowed.is_empty() => TypeRule::Any,
        None => TypeRule::OneOf(allowed.iter().map(|s| s.to_string()).collect()),
    };
    let grant = services.store.upload_grant(&UploadRequest {
        key: key.clone(),
        method: call.app.upload_method,
        content_type: content_type.clone(),
        type_rule,
        max_size,
        size: params.size,
        expires_in: call.app.upload_expiry,
    })?;

    let base = services.config.public_base();
    let (download_url, object_name, file_sign) = match params.target {
        UploadTarget::Chat {
            file_type,
            to_id,
            to_type,
        } => {
            let sign = FileSign {
                app: call.app_id.to_string(),
                key: key.as_str().to_string(),
                ft: file_type.code(),
                tt: to_type as u8,
                ti: to_id,
                fr: uploader,
                name: params.file_name.clone(),
                size: params.size,
                mime: Some(content_type.clone()),
                iat: now_secs(),
            };
            let secret = call
                .app
                .secrets
                .first()
                .ok_or_else(|| ApiError::internal("app has no secret"))?;
            let token = sign.mint(secret)?;
            let url = format!(
                "{base}/file/download/chat?app_id={}&file_sign={}",
                encode_value(call.app_id),
                encode_value(&token)
            );
            (url, None, Some(token))
        }
        _ => {
            let name = key.as_str()[call.app_id.len() + 1..].to_string();
            let url = format!(
                "{base}/file/download/avatar?app_id={}&object_name={}",
                encode_value(call.app_id),
                encode_value(&name)
            );
            (url, Some(name), None)
        }
    };

    Ok(UploadAnswer {
        upload_method: call.app.upload_method.as_str(),
        upload_url: grant.url,
        oss_body_param: grant.fields,
        download_url,
        object_name,
        file_sign,
    })
}

fn allowed_list(file_type: FileType) -> String {
    file_type.allowed_content_types().join(", ")
}

/// Today's date (UTC) as `yyyymmdd`, the chat key's day folder.
fn today_yyyymmdd() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}
