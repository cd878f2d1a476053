//! A short H.264 clip in MP4, encoded in process by FFmpeg's `libx264` (Debian's
//! FFmpeg 5.1 build has it) into memory: moving diagonal bands and a bouncing
//! square, 25 frames a second, a keyframe every second (so a cover is found at
//! `media.cover_offset`), no audio track. One encoder thread: the output is the same
//! for the same seed.

use ffmpeg::format::Pixel;
use ffmpeg::{codec, frame, Dictionary, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::media::av::{init, MemoryOutput};
use crate::seed::plan::Rng;

/// Frames a second.
const FPS: i32 = 25;
/// Largest clip accepted in memory.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// A `w`×`h` H.264 MP4 of `seconds`.
pub fn h264_mp4(w: u32, h: u32, seconds: u32, rng: &mut Rng) -> Result<Vec<u8>, String> {
    init().map_err(|e| e.detail().unwrap_or(e.message()).to_string())?;
    let ff = |what: &'static str| move |e: ffmpeg::Error| format!("{what}: {e}");
    let codec = ffmpeg::encoder::find_by_name("libx264")
        .ok_or("this FFmpeg has no libx264 encoder (Debian's ffmpeg build has it)")?;
    let output = MemoryOutput::new(MAX_BYTES);
    let io =
        ffmpeg::format::context::StreamIo::from_write_seek(output.clone()).map_err(ff("mp4 io"))?;
    let mut muxer =
        ffmpeg::format::output_to_stream(io, None, Some("mp4")).map_err(ff("mp4 muxer"))?;
    let global_header = muxer
        .format()
        .flags()
        .contains(ffmpeg::format::Flags::GLOBAL_HEADER);

    let mut settings = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(ff("h264 encoder"))?;
    settings.set_width(w);
    settings.set_height(h);
    settings.set_format(Pixel::YUV420P);
    settings.set_time_base(Rational::new(1, FPS));
    settings.set_frame_rate(Some(Rational::new(FPS, 1)));
    settings.set_gop(FPS as u32);
    if global_header {
        settings.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    let mut options = Dictionary::new();
    options.set("preset", "veryfast");
    options.set("crf", "26");
    options.set("threads", "1");
    let mut encoder = settings
        .open_as_with(codec, options)
        .map_err(ff("opening libx264"))?;
    {
        let mut stream = muxer.add_stream(codec).map_err(ff("mp4 stream"))?;
        stream.set_parameters(&encoder);
        stream.set_time_base(Rational::new(1, FPS));
    }
    muxer.write_header().map_err(ff("mp4 header"))?;
    let stream_tb = muxer
        .stream(0)
        .map(|s| s.time_base())
        .unwrap_or(Rational::new(1, FPS));

    let speed = rng.range(2.0, 6.0);
    let tint = (rng.below(200) as u8 + 28, rng.below(200) as u8 + 28);
    let side = (w.min(h) / 5).max(8);
    let frames = seconds * FPS as u32;
    let drain = |encoder: &mut ffmpeg::encoder::Video,
                 muxer: &mut ffmpeg::format::context::Output|
     -> Result<(), String> {
        let mut packet = Packet::empty();
        while encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            packet.rescale_ts(Rational::new(1, FPS), stream_tb);
            packet.write_interleaved(muxer).map_err(ff("writing mp4"))?;
        }
        Ok(())
    };
    for i in 0..frames {
        let mut picture = frame::Video::new(Pixel::YUV420P, w, h);
        paint(&mut picture, i, speed, tint, side);
        picture.set_pts(Some(i64::from(i)));
        encoder.send_frame(&picture).map_err(ff("encoding h264"))?;
        drain(&mut encoder, &mut muxer)?;
    }
    encoder.send_eof().map_err(ff("flushing h264"))?;
    drain(&mut encoder, &mut muxer)?;
    if let Err(e) = muxer.write_trailer() {
        return Err(match output.limit_error() {
            Some(_) => format!("the clip is larger than {MAX_BYTES} bytes"),
            None => format!("mp4 trailer: {e}"),
        });
    }
    drop(muxer);
    Ok(output.take())
}

/// Frame `i`: diagonal luma bands moving by `speed` pixels a frame, a bright square
/// bouncing across, a slowly turning tint in the chroma planes.
fn paint(picture: &mut frame::Video, i: u32, speed: f64, tint: (u8, u8), side: u32) {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    let shift = (f64::from(i) * speed) as usize;
    let travel = (w - side as usize).max(1);
    let pos = (i as usize * 7) % (2 * travel);
    let sx = if pos < travel { pos } else { 2 * travel - pos };
    let sy = (h - side as usize) / 2;
    let stride = picture.stride(0);
    let luma = picture.data_mut(0);
    for y in 0..h {
        let row = &mut luma[y * stride..y * stride + w];
        for (x, px) in row.iter_mut().enumerate() {
            let in_square =
                (sx..sx + side as usize).contains(&x) && (sy..sy + side as usize).contains(&y);
            *px = if in_square {
                235
            } else {
                (16 + ((x + y + shift) / 3) % 200) as u8
            };
        }
    }
    let turn = (i % 50) as u8;
    for (plane, base) in [(1, tint.0), (2, tint.1)] {
        let stride = picture.stride(plane);
        let data = picture.data_mut(plane);
        let value = base.wrapping_add(turn);
        for y in 0..h.div_ceil(2) {
            data[y * stride..y * stride + w.div_ceil(2)].fill(value);
        }
    }
}
