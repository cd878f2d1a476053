//! The API's `file_type` codes and what each allows: content types, size limit,
//! default extension, and which transforms apply.

use crate::config::UploadSizeLimits;

/// A chat `file_type` (API 6.5), or an avatar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    /// User or group avatar (not an API code).
    Avatar,
    /// 100 plain chat file / 200 shared plain file.
    File(u16),
    /// 101 voice (AMR) / 201 shared voice.
    VoiceAmr(u16),
    /// 102 picture / 202 shared picture.
    Picture(u16),
    /// 103 video / 203 shared video.
    Video(u16),
    /// 104 voice in MP3.
    VoiceMp3,
}

/// The broad kind of a file, which decides limits and transforms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Images: avatars and pictures.
    Image,
    /// AMR voice.
    VoiceAmr,
    /// MP3 voice.
    VoiceMp3,
    /// Video.
    Video,
    /// Anything else.
    File,
}

const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/gif"];
const VIDEO_TYPES: &[&str] = &["video/mp4", "video/quicktime", "video/webm", "video/3gpp"];
const AMR_TYPES: &[&str] = &["audio/amr"];
const MP3_TYPES: &[&str] = &["audio/mpeg"];

impl FileType {
    /// Parses an API `file_type` code.
    pub fn from_code(code: u16) -> Option<FileType> {
        match code {
            100 | 200 => Some(FileType::File(code)),
            101 | 201 => Some(FileType::VoiceAmr(code)),
            102 | 202 => Some(FileType::Picture(code)),
            103 | 203 => Some(FileType::Video(code)),
            104 => Some(FileType::VoiceMp3),
            _ => None,
        }
    }

    /// The API code (avatars have none: 0).
    pub fn code(self) -> u16 {
        match self {
            FileType::Avatar => 0,
            FileType::File(c)
            | FileType::VoiceAmr(c)
            | FileType::Picture(c)
            | FileType::Video(c) => c,
            FileType::VoiceMp3 => 104,
        }
    }

    /// The family.
    pub fn family(self) -> Family {
        match self {
            FileType::Avatar | FileType::Picture(_) => Family::Image,
            FileType::VoiceAmr(_) => Family::VoiceAmr,
            FileType::VoiceMp3 => Family::VoiceMp3,
            FileType::Video(_) => Family::Video,
            FileType::File(_) => Family::File,
        }
    }

    /// Content types an upload of this type may have; empty = any.
    pub fn allowed_content_types(self) -> &'static [&'static str] {
        match self.family() {
            Family::Image => IMAGE_TYPES,
            Family::VoiceAmr => AMR_TYPES,
            Family::VoiceMp3 => MP3_TYPES,
            Family::Video => VIDEO_TYPES,
            Family::File => &[],
        }
    }

    /// Whether `content_type` (parameters ignored, case-insensitive) fits this type.
    pub fn allows_content_type(self, content_type: &str) -> bool {
        let essence = essence(content_type);
        let allowed = self.allowed_content_types();
        if allowed.is_empty() {
            return !essence.is_empty() && is_token_type(&essence);
        }
        allowed.contains(&essence.as_str())
    }

    /// The content type used when the client names none.
    pub fn default_content_type(self) -> &'static str {
        match self.family() {
            Family::Image => "image/jpeg",
            Family::VoiceAmr => "audio/amr",
            Family::VoiceMp3 => "audio/mpeg",
            Family::Video => "video/mp4",
            Family::File => "application/octet-stream",
        }
    }

    /// Largest upload of this type under `limits`.
    pub fn max_upload(self, limits: &UploadSizeLimits) -> u64 {
        match self {
            FileType::Avatar => limits.avatar.as_u64(),
            FileType::Picture(_) => limits.picture.as_u64(),
            FileType::VoiceAmr(_) | FileType::VoiceMp3 => limits.voice.as_u64(),
            FileType::Video(_) => limits.video.as_u64(),
            FileType::File(_) => limits.file.as_u64(),
        }
    }
}

/// `type/subtype`, lower-cased, without parameters.
pub fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_token_type(essence: &str) -> bool {
    let mut parts = essence.splitn(2, '/');
    let ok = |s: Option<&str>| {
        s.is_some_and(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
        })
    };
    ok(parts.next()) && ok(parts.next())
}

/// The extension for a stored object: from the client's file name when it has a safe
/// one, else from the content type.
pub fn extension_for(file_name: Option<&str>, content_type: &str) -> String {
    if let Some(ext) = file_name.and_then(|n| n.rsplit_once('.')).map(|(_, e)| e) {
        let ext = ext.to_ascii_lowercase();
        if (1..=10).contains(&ext.len()) && ext.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return ext;
        }
    }
    match essence(content_type).as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "audio/amr" => "amr",
        "audio/mpeg" => "mp3",
        "video/mp4" => "mp4",
        "video/quicktime" => "mov",
        "video/webm" => "webm",
        "video/3gpp" => "3gp",
        _ => "bin",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_types() {
        assert_eq!(FileType::from_code(102), Some(FileType::Picture(102)));
        assert_eq!(FileType::from_code(105), None);
        assert!(FileType::Picture(102).allows_content_type("image/PNG"));
        assert!(!FileType::Picture(102).allows_content_type("text/html"));
        assert!(FileType::File(100).allows_content_type("application/pdf"));
        assert!(!FileType::File(100).allows_content_type("garbage"));
        assert_eq!(extension_for(Some("My Photo.JPEG"), "image/jpeg"), "jpeg");
        assert_eq!(extension_for(Some("../../x"), "image/png"), "png");
        assert_eq!(extension_for(None, "audio/amr"), "amr");
    }
}
