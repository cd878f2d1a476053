//! The API's `file_type` codes and what each allows (content types, the default type,
//! which transforms apply), and the one table of media types filegate knows: each
//! content type with its extension, its family, and whether a browser may render it
//! inline. Every content type ↔ extension decision reads [`MEDIA_TYPES`].

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

/// A media type filegate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType {
    /// Its content type (`image/jpeg`).
    pub mime: &'static str,
    /// The extension of a file of it (`jpg`).
    pub extension: &'static str,
    /// The family whose uploads may have it.
    pub family: Family,
}

/// Every media type filegate knows, the upload's default of each family first.
pub const MEDIA_TYPES: &[MediaType] = &[
    MediaType {
        mime: "image/jpeg",
        extension: "jpg",
        family: Family::Image,
    },
    MediaType {
        mime: "image/png",
        extension: "png",
        family: Family::Image,
    },
    MediaType {
        mime: "image/webp",
        extension: "webp",
        family: Family::Image,
    },
    MediaType {
        mime: "image/gif",
        extension: "gif",
        family: Family::Image,
    },
    // Phones' photos (SPEC §11): iPhones save HEIC, many Android cameras HEIF.
    MediaType {
        mime: "image/heic",
        extension: "heic",
        family: Family::Image,
    },
    MediaType {
        mime: "image/heif",
        extension: "heif",
        family: Family::Image,
    },
    MediaType {
        mime: "image/avif",
        extension: "avif",
        family: Family::Image,
    },
    MediaType {
        mime: "audio/amr",
        extension: "amr",
        family: Family::VoiceAmr,
    },
    MediaType {
        mime: "audio/mpeg",
        extension: "mp3",
        family: Family::VoiceMp3,
    },
    MediaType {
        mime: "video/mp4",
        extension: "mp4",
        family: Family::Video,
    },
    MediaType {
        mime: "video/quicktime",
        extension: "mov",
        family: Family::Video,
    },
    MediaType {
        mime: "video/webm",
        extension: "webm",
        family: Family::Video,
    },
    MediaType {
        mime: "video/3gpp",
        extension: "3gp",
        family: Family::Video,
    },
];

/// The media type of a content type (parameters and case ignored).
pub fn media_type(content_type: &str) -> Option<&'static MediaType> {
    let essence = essence(content_type);
    MEDIA_TYPES.iter().find(|t| t.mime == essence)
}

/// The extension of a content type filegate knows.
pub fn extension_of(content_type: &str) -> Option<&'static str> {
    media_type(content_type).map(|t| t.extension)
}

/// A content type filegate knows, as a `'static` string.
pub fn known_mime(content_type: &str) -> Option<&'static str> {
    media_type(content_type).map(|t| t.mime)
}

/// Content types a browser may render inline (images, audio, video of the table);
/// anything else (HTML, SVG, XML, scripts, unknown) is served as an attachment so it
/// can never run on this origin.
pub fn renders_safely_inline(content_type: &str) -> bool {
    let essence = essence(content_type);
    MEDIA_TYPES.iter().any(|t| t.mime == essence)
        || essence.starts_with("audio/")
        || essence.starts_with("video/")
}

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

    /// Whether `content_type` (parameters ignored, case-insensitive) fits this type:
    /// one of its family's media types, or, for plain files, any well-formed type.
    pub fn allows_content_type(self, content_type: &str) -> bool {
        let essence = essence(content_type);
        let family = self.family();
        if family == Family::File {
            return !essence.is_empty() && is_token_type(&essence);
        }
        MEDIA_TYPES
            .iter()
            .any(|t| t.family == family && t.mime == essence)
    }

    /// The content types an upload of this type may have (empty: any).
    pub fn allowed_content_types(self) -> Vec<&'static str> {
        let family = self.family();
        if family == Family::File {
            return Vec::new();
        }
        MEDIA_TYPES
            .iter()
            .filter(|t| t.family == family)
            .map(|t| t.mime)
            .collect()
    }

    /// The content type used when the client names none.
    pub fn default_content_type(self) -> &'static str {
        let family = self.family();
        MEDIA_TYPES
            .iter()
            .find(|t| t.family == family && family != Family::File)
            .map_or("application/octet-stream", |t| t.mime)
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
    extension_of(content_type).unwrap_or("bin").to_string()
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
        assert_eq!(extension_for(None, "text/plain"), "bin");
        assert_eq!(FileType::Picture(102).default_content_type(), "image/jpeg");
        assert_eq!(FileType::Video(103).default_content_type(), "video/mp4");
        assert_eq!(
            FileType::File(100).default_content_type(),
            "application/octet-stream"
        );
        assert!(FileType::Picture(102).allows_content_type("image/HEIC"));
        assert_eq!(
            FileType::Avatar.allowed_content_types(),
            vec![
                "image/jpeg",
                "image/png",
                "image/webp",
                "image/gif",
                "image/heic",
                "image/heif",
                "image/avif"
            ]
        );
        assert!(renders_safely_inline("image/AVIF"));
        assert!(renders_safely_inline("audio/ogg"));
        assert!(!renders_safely_inline("image/svg+xml"));
        assert!(!renders_safely_inline("text/html; charset=utf-8"));
    }
}
