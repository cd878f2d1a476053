//! `info=1` (SPEC §11): what a chat client needs to draw a message bubble before the
//! file arrives. Dimensions as displayed (EXIF orientation, a video's display matrix),
//! frames, duration and alpha come from headers (libvips' header read, FFmpeg's stream
//! information: nothing is decoded for them); the ThumbHash and the average colour
//! from one small decode (libvips' shrink-on-load thumbnail of at most 100x100, or a
//! video's cover frame). The limits of §7 hold before anything is decoded.

use base64::Engine;
use bytes::Bytes;
use ffmpeg::media::Type;
use ffmpeg_next as ffmpeg;
use serde::Serialize;

use crate::error::ApiError;
use crate::file_type::Family;
use crate::media::av::open_input;
use crate::media::cover::{display_quarter_turns, render_cover};
use crate::media::limits::{undecodable, Deadline, Limits};
use crate::media::sniff::{heif_mime, sniff, Sniffed};
use crate::media::thumbnail::{heif_video_range, retrying_without_previews};
use crate::media::transform::{Fit, Qualities, Rendered, INFO_TYPE};
use crate::media::vips::{vips, Image};

/// ThumbHash inputs are at most 100x100.
const HASH_SIDE: i32 = 100;

/// The answer's `data`.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct MediaInfo {
    /// What the bytes are (sniffed), else what the uploader said.
    pub mime: String,
    /// Stored size.
    pub bytes: u64,
    /// Width as displayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height as displayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// EXIF orientation (1-8) of an image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orientation: Option<u8>,
    /// Frames of an animation or a video (when the container says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<u64>,
    /// Duration of a video or a voice message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Whether an image has an alpha channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_alpha: Option<bool>,
    /// Standard base64 of the ThumbHash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumbhash: Option<String>,
    /// The average colour, `#rrggbb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

impl MediaInfo {
    /// As the stored result: JSON.
    pub fn rendered(&self) -> Result<Rendered, ApiError> {
        let bytes = serde_json::to_vec(self).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(Rendered {
            bytes,
            content_type: INFO_TYPE,
        })
    }
}

/// The info of a file that is not media (or whose family reads no header): its type
/// as stored and its size.
pub fn plain_info(stored_type: &str, size: u64) -> MediaInfo {
    MediaInfo {
        mime: if stored_type.is_empty() {
            "application/octet-stream".to_string()
        } else {
            stored_type.to_string()
        },
        bytes: size,
        ..MediaInfo::default()
    }
}

/// Reads the info of `source`, a file of `family` stored as `stored_type`.
pub fn read_info(
    source: Bytes,
    family: Family,
    stored_type: &str,
    cover_offset: std::time::Duration,
    qualities: Qualities,
    limits: &Limits,
    deadline: Deadline,
) -> Result<MediaInfo, ApiError> {
    let mut info = plain_info(stored_type, source.len() as u64);
    let found = sniff(&source);
    match (family, found) {
        (_, Sniffed::Jpeg | Sniffed::Png | Sniffed::Webp | Sniffed::Gif)
        | (Family::Image, Sniffed::IsoBmff { image: true }) => {
            let source = crate::media::thumbnail::readable(&source, found);
            image_info(&source, found, &mut info, limits, deadline)?;
        }
        (Family::Video | Family::Image, Sniffed::IsoBmff { image: false } | Sniffed::Matroska) => {
            video_info(
                source,
                found,
                &mut info,
                cover_offset,
                qualities,
                limits,
                deadline,
            )?;
        }
        (Family::VoiceAmr, Sniffed::AmrNb | Sniffed::AmrWb) => {
            info.mime = "audio/amr".into();
            info.duration_ms = Some(duration_ms(source, "amr")?);
        }
        (Family::VoiceMp3, _) if looks_like_mp3(&source) => {
            info.mime = "audio/mpeg".into();
            info.duration_ms = Some(duration_ms(source, "mp3")?);
        }
        (Family::Image | Family::Video | Family::VoiceAmr | Family::VoiceMp3, _) => {
            return Err(undecodable(format!(
                "the file is not {} in a known format",
                match family {
                    Family::Image => "an image",
                    Family::Video => "a video",
                    _ => "a voice message",
                }
            )))
        }
        _ => {}
    }
    Ok(info)
}

fn mime_of(found: Sniffed) -> &'static str {
    match found {
        Sniffed::Jpeg => "image/jpeg",
        Sniffed::Png => "image/png",
        Sniffed::Webp => "image/webp",
        Sniffed::Gif => "image/gif",
        Sniffed::IsoBmff { image: true } => "image/heif",
        Sniffed::Matroska => "video/webm",
        _ => "video/mp4",
    }
}

fn image_info(
    source: &[u8],
    found: Sniffed,
    info: &mut MediaInfo,
    limits: &Limits,
    deadline: Deadline,
) -> Result<(), ApiError> {
    vips()?;
    let bad = |e: String| undecodable("the image cannot be decoded").with_detail(e);
    let header = Image::header(source).map_err(bad)?;
    let width = u64::try_from(header.width()).unwrap_or(0);
    let page_height = u64::try_from(header.page_height()).unwrap_or(0);
    let height = if page_height > 0 {
        page_height
    } else {
        u64::try_from(header.height()).unwrap_or(0)
    };
    let pages = u64::try_from(header.pages()).unwrap_or(1).max(1);
    limits.check_pixels(width, height)?;
    limits.check_frames(pages)?;
    let orientation = u8::try_from(header.orientation().clamp(1, 8)).unwrap_or(1);
    let turned = orientation >= 5;
    let (w, h) = if turned {
        (height, width)
    } else {
        (width, height)
    };
    info.mime = match found {
        Sniffed::IsoBmff { .. } => heif_mime(source).into(),
        other => mime_of(other).into(),
    };
    info.width = u32::try_from(w).ok();
    info.height = u32::try_from(h).ok();
    info.orientation = Some(orientation);
    info.frames = Some(pages);
    info.has_alpha = Some(matches!(header.bands(), 2 | 4));
    let to_srgb = header.needs_colour_management();
    drop(header);
    deadline.check()?;
    // libvips' thumbnail turns the picture upright, so the hash has the displayed
    // aspect.
    let video_range = heif_video_range(source, found);
    let (sw, sh, bands, pixels) = retrying_without_previews(source, found, |source| {
        let mut small = Image::thumbnail(source, HASH_SIDE, HASH_SIDE, to_srgb).map_err(bad)?;
        if video_range {
            small = small.expand_video_range().map_err(bad)?;
        }
        let pixels = small.to_pixels().map_err(bad)?;
        Ok((small.width(), small.height(), small.bands(), pixels))
    })?;
    let rgba = to_rgba(&pixels, bands)
        .ok_or_else(|| ApiError::internal(format!("a thumbnail with {bands} bands")))?;
    set_hash(info, sw as usize, sh as usize, &rgba);
    Ok(())
}

/// Packed RGBA of 8-bit pixels with 1-4 bands.
fn to_rgba(pixels: &[u8], bands: i64) -> Option<Vec<u8>> {
    let n = usize::try_from(bands)
        .ok()
        .filter(|b| (1..=4).contains(b))?;
    let mut rgba = Vec::with_capacity(pixels.len() / n * 4);
    for p in pixels.chunks_exact(n) {
        let (rgb, a) = match n {
            1 => ([p[0], p[0], p[0]], 255),
            2 => ([p[0], p[0], p[0]], p[1]),
            3 => ([p[0], p[1], p[2]], 255),
            _ => ([p[0], p[1], p[2]], p[3]),
        };
        rgba.extend_from_slice(&[rgb[0], rgb[1], rgb[2], a]);
    }
    Some(rgba)
}

/// The ThumbHash and the alpha-weighted average colour of small RGBA pixels.
fn set_hash(info: &mut MediaInfo, width: usize, height: usize, rgba: &[u8]) {
    if width == 0 || height == 0 || width > 100 || height > 100 {
        return;
    }
    let hash = thumbhash::rgba_to_thumb_hash(width, height, rgba);
    info.thumbhash = Some(base64::engine::general_purpose::STANDARD.encode(hash));
    let (mut sum, mut weight) = ([0f64; 3], 0f64);
    for p in rgba.chunks_exact(4) {
        let a = f64::from(p[3]) / 255.0;
        for (s, c) in sum.iter_mut().zip(p) {
            *s += f64::from(*c) * a;
        }
        weight += a;
    }
    if weight > 0.0 {
        let c = |i: usize| (sum[i] / weight).round().clamp(0.0, 255.0) as u8;
        info.color = Some(format!("#{:02x}{:02x}{:02x}", c(0), c(1), c(2)));
    }
}

fn video_info(
    source: Bytes,
    found: Sniffed,
    info: &mut MediaInfo,
    cover_offset: std::time::Duration,
    qualities: Qualities,
    limits: &Limits,
    deadline: Deadline,
) -> Result<(), ApiError> {
    let demuxer = if found == Sniffed::Matroska {
        "matroska"
    } else {
        "mov"
    };
    let input = open_input(source.clone(), demuxer)?;
    let stream = input
        .streams()
        .best(Type::Video)
        .ok_or_else(|| undecodable("the file has no video stream"))?;
    let turns = display_quarter_turns(&stream);
    let frames = u64::try_from(stream.frames()).ok().filter(|f| *f > 0);
    let (width, height) = {
        let decoder = ffmpeg::codec::context::Context::from_parameters(stream.parameters())
            .and_then(|c| c.decoder().video())
            .map_err(|e| undecodable("the video cannot be read").with_detail(e))?;
        (decoder.width(), decoder.height())
    };
    limits.check_pixels(u64::from(width), u64::from(height))?;
    let (w, h) = if turns % 2 == 1 {
        (height, width)
    } else {
        (width, height)
    };
    info.mime = if found == Sniffed::Matroska {
        "video/webm".into()
    } else {
        mime_of(found).into()
    };
    info.width = Some(w).filter(|v| *v > 0);
    info.height = Some(h).filter(|v| *v > 0);
    info.frames = frames;
    info.duration_ms = u64::try_from(input.duration()).ok().map(|us| us / 1000);
    drop(input);
    deadline.check()?;
    // The placeholder is the cover's: the frame a client shows first, upright.
    let fit = Fit {
        w: Some(HASH_SIDE as u32),
        h: Some(HASH_SIDE as u32),
    };
    let cover = render_cover(source, fit, cover_offset, qualities, limits, deadline)?;
    let bad = |e: String| undecodable("the video's frame cannot be read").with_detail(e);
    let small = Image::header(&cover.bytes).map_err(bad)?;
    let (sw, sh, bands) = (small.width(), small.height(), small.bands());
    let pixels = small.to_pixels().map_err(bad)?;
    if let Some(rgba) = to_rgba(&pixels, bands) {
        set_hash(info, sw as usize, sh as usize, &rgba);
    }
    Ok(())
}

/// A voice message's duration from its container.
fn duration_ms(source: Bytes, demuxer: &str) -> Result<u64, ApiError> {
    let input = open_input(source, demuxer)?;
    let us = input.duration();
    if us > 0 {
        return Ok(u64::try_from(us).unwrap_or(0) / 1000);
    }
    // No container duration: the audio stream's.
    let stream = input
        .streams()
        .best(Type::Audio)
        .ok_or_else(|| undecodable("the file has no audio stream"))?;
    let tb = stream.time_base();
    let d = stream.duration();
    if d <= 0 || tb.denominator() == 0 {
        return Err(undecodable("the voice message has no duration"));
    }
    Ok(
        u64::try_from(d * 1000 * i64::from(tb.numerator()) / i64::from(tb.denominator()))
            .unwrap_or(0),
    )
}

/// An ID3 tag or an MPEG audio frame sync at the start.
fn looks_like_mp3(bytes: &[u8]) -> bool {
    bytes.starts_with(b"ID3") || (bytes.len() > 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgba_from_any_band_count() {
        assert_eq!(
            to_rgba(&[10, 20], 1),
            Some(vec![10, 10, 10, 255, 20, 20, 20, 255])
        );
        assert_eq!(to_rgba(&[10, 128], 2), Some(vec![10, 10, 10, 128]));
        assert_eq!(to_rgba(&[1, 2, 3], 3), Some(vec![1, 2, 3, 255]));
        assert_eq!(to_rgba(&[1, 2, 3, 4], 4), Some(vec![1, 2, 3, 4]));
        assert_eq!(to_rgba(&[1, 2, 3, 4, 5], 5), None);
    }

    #[test]
    fn a_flat_picture_hashes_to_its_colour() {
        let mut info = MediaInfo::default();
        let rgba: Vec<u8> = std::iter::repeat_n([200u8, 40, 10, 255], 16 * 8)
            .flatten()
            .collect();
        set_hash(&mut info, 16, 8, &rgba);
        assert_eq!(info.color.as_deref(), Some("#c8280a"));
        let hash = base64::engine::general_purpose::STANDARD
            .decode(info.thumbhash.unwrap())
            .unwrap();
        let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).unwrap();
        assert!((ratio - 2.0).abs() < 0.3, "{ratio}");
    }

    #[test]
    fn plain_files_say_their_type_and_size() {
        let json = serde_json::to_string(&plain_info("application/pdf", 1234)).unwrap();
        assert_eq!(json, r#"{"mime":"application/pdf","bytes":1234}"#);
        assert_eq!(plain_info("", 1).mime, "application/octet-stream");
    }
}
