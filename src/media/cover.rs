//! Video covers: the first keyframe at or after `media.cover_offset` (frame 0 when
//! the clip is shorter or has no keyframe there), turned upright by the stream's
//! display matrix, scaled like a thumbnail and encoded as JPEG. Only the MOV/MP4 and
//! Matroska/WebM demuxers run, on the bytes in memory.

use std::time::Duration;

use bytes::Bytes;
use ffmpeg::format::Pixel;
use ffmpeg::media::Type;
use ffmpeg::software::scaling;
use ffmpeg::{codec, frame, Packet};
use ffmpeg_next as ffmpeg;

use crate::error::ApiError;
use crate::media::av::open_input;
use crate::media::limits::{undecodable, unsupported, Deadline, Limits};
use crate::media::sniff::{sniff, Sniffed};
use crate::media::thumbnail::encode_rgb_frame;
use crate::media::transform::{Fit, Qualities, Rendered};

/// Packets read while looking for one decodable frame before giving up.
const MAX_PACKETS: usize = 5_000;

/// Makes the cover of the video in `source`.
pub fn render_cover(
    source: Bytes,
    fit: Fit,
    offset: Duration,
    qualities: Qualities,
    limits: &Limits,
    deadline: Deadline,
) -> Result<Rendered, ApiError> {
    let demuxer = match sniff(&source) {
        Sniffed::IsoBmff { image: false } => "mov",
        Sniffed::Matroska => "matroska",
        Sniffed::Unknown => return Err(undecodable("the file is not a video in a known format")),
        other => {
            return Err(unsupported(format!(
                "covers are made of MP4, MOV, 3GP, WebM and Matroska videos, not {}",
                other.name()
            )))
        }
    };
    let mut input = open_input(source, demuxer)?;
    let (index, parameters, quarter_turns) = {
        let stream = input
            .streams()
            .best(Type::Video)
            .ok_or_else(|| undecodable("the file has no video stream"))?;
        (
            stream.index(),
            stream.parameters(),
            display_quarter_turns(&stream),
        )
    };
    let mut context = codec::context::Context::from_parameters(parameters)
        .map_err(|e| undecodable("the video cannot be decoded").with_detail(e))?;
    // One thread: the pool already runs one transform per core.
    context.set_threading(codec::threading::Config {
        kind: codec::threading::Type::None,
        count: 1,
        ..Default::default()
    });
    let mut decoder = context
        .decoder()
        .video()
        .map_err(|e| unsupported("the video's codec is not supported").with_detail(e))?;
    limits.check_pixels(u64::from(decoder.width()), u64::from(decoder.height()))?;

    let duration_us = input.duration();
    let offset_us = i64::try_from(offset.as_micros()).unwrap_or(i64::MAX);
    let mut picture = None;
    if offset_us > 0 && duration_us > offset_us && input.seek(offset_us, offset_us..).is_ok() {
        picture = first_frame(&mut input, index, &mut decoder, deadline)?;
    }
    if picture.is_none() {
        // A short clip, no keyframe after the offset, or no seeking: frame 0.
        if input.seek(0, ..).is_err() {
            // Already at the start when no seek happened; a failed rewind after one
            // leaves nothing to decode, which `first_frame` reports.
        }
        decoder.flush();
        picture = first_frame(&mut input, index, &mut decoder, deadline)?;
    }
    let picture = picture.ok_or_else(|| undecodable("the video has no decodable frame"))?;
    deadline.check()?;
    let (rgb, width, height) = to_rgb(&picture)?;
    encode_rgb_frame(&rgb, width, height, quarter_turns, fit, qualities, limits)
}

/// Decodes packets of stream `index` until one frame comes out (None at the end).
fn first_frame(
    input: &mut ffmpeg::format::context::Input,
    index: usize,
    decoder: &mut ffmpeg::decoder::Video,
    deadline: Deadline,
) -> Result<Option<frame::Video>, ApiError> {
    let mut picture = frame::Video::empty();
    let mut sent_eof = false;
    for _ in 0..MAX_PACKETS {
        deadline.check()?;
        if decoder.receive_frame(&mut picture).is_ok() {
            return Ok(Some(picture));
        }
        if sent_eof {
            return Ok(None);
        }
        let mut packet = Packet::empty();
        match packet.read(input) {
            Ok(()) => {
                if packet.stream() == index {
                    // A corrupt packet is skipped; the next keyframe may decode.
                    let _ = decoder.send_packet(&packet);
                }
            }
            Err(ffmpeg::Error::Eof) => {
                let _ = decoder.send_eof();
                sent_eof = true;
            }
            Err(ffmpeg::Error::InvalidData) => {}
            Err(e) => {
                return Err(undecodable("the video cannot be read").with_detail(e));
            }
        }
    }
    Ok(None)
}

/// Quarter turns clockwise that make the picture upright, from the display matrix
/// phones write for portrait recordings.
pub(crate) fn display_quarter_turns(stream: &ffmpeg::format::stream::Stream<'_>) -> u8 {
    for side in stream.side_data() {
        if side.kind() != codec::packet::side_data::Type::DisplayMatrix {
            continue;
        }
        let data = side.data();
        if data.len() < 9 * 4 {
            continue;
        }
        // SAFETY: the display matrix is nine native-endian i32 values (checked
        // length above); av_display_rotation_get only reads them.
        let degrees = unsafe { ffmpeg::ffi::av_display_rotation_get(data.as_ptr() as *const i32) };
        if !degrees.is_finite() {
            return 0;
        }
        // FFmpeg reports the counter-clockwise rotation the player must undo.
        let clockwise = (-degrees).rem_euclid(360.0);
        return ((clockwise / 90.0).round() as i64).rem_euclid(4) as u8;
    }
    0
}

/// The frame as tightly packed RGB24.
fn to_rgb(picture: &frame::Video) -> Result<(Vec<u8>, u32, u32), ApiError> {
    let (width, height) = (picture.width(), picture.height());
    let mut scaler = scaling::Context::get(
        picture.format(),
        width,
        height,
        Pixel::RGB24,
        width,
        height,
        scaling::Flags::BILINEAR,
    )
    .map_err(|e| undecodable("the video's pixel format is not supported").with_detail(e))?;
    let mut rgb = frame::Video::empty();
    scaler
        .run(picture, &mut rgb)
        .map_err(|e| ApiError::internal(format!("converting a frame: {e}")))?;
    let row = width as usize * 3;
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let mut packed = Vec::with_capacity(row * height as usize);
    for y in 0..height as usize {
        let start = y * stride;
        let line = data
            .get(start..start + row)
            .ok_or_else(|| ApiError::internal("converted frame shorter than its size"))?;
        packed.extend_from_slice(line);
    }
    Ok((packed, width, height))
}
