//! Voice: AMR-NB → MP3, in memory. The frame table is checked and the duration
//! measured before anything is decoded; then the forced `amr` demuxer, FFmpeg's
//! `amrnb` decoder, a resample to 16 kHz mono and `libmp3lame` at 32 kbit/s CBR.
//! 16 kHz makes MPEG-2 Layer III, which every browser and mini-program plays (8 kHz
//! would be MPEG-2.5); the muxer's Xing/LAME header makes durations exact.

use std::time::Duration;

use bytes::Bytes;
use ffmpeg::format::context::{Output, StreamIo};
use ffmpeg::format::Sample;
use ffmpeg::media::Type;
use ffmpeg::software::resampling;
use ffmpeg::{codec, frame, ChannelLayout, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::error::ApiError;
use crate::media::av::{open_input, MemoryOutput};
use crate::media::limits::{undecodable, unsupported, Deadline, Limits};
use crate::media::sniff::{sniff, Sniffed};
use crate::media::transform::Rendered;

/// Output sample rate: the lowest MPEG-2 rate (MPEG-2.5 rates do not play everywhere).
const OUT_RATE: u32 = 16_000;
/// Output bit rate, CBR.
const OUT_BIT_RATE: usize = 32_000;
/// LAME's algorithm quality (0 best and slowest .. 9 fastest). FFmpeg's default
/// spends 1.7x the time of 7 on a 60 s voice message for no audible gain at
/// 16 kHz/32 kbit/s speech (benches/micro.rs: 119 ms vs 70 ms).
const LAME_QUALITY: usize = 7;
/// Bytes of an AMR-NB storage frame by frame type, header byte included (RFC 4867
/// §5.3); `None` for types that never occur in a voice message.
const AMR_NB_FRAME_BYTES: [Option<usize>; 16] = [
    Some(13),
    Some(14),
    Some(16),
    Some(18),
    Some(20),
    Some(21),
    Some(27),
    Some(32),
    Some(6),
    None,
    None,
    None,
    None,
    None,
    None,
    Some(1),
];
/// Every AMR frame is 20 ms.
const AMR_FRAME: Duration = Duration::from_millis(20);

/// Checks the AMR-NB frame table and returns the duration, without decoding: a
/// frame header whose padding bits are set or whose type is reserved is not AMR.
pub fn amr_nb_duration(source: &[u8]) -> Result<Duration, ApiError> {
    let body = source
        .strip_prefix(b"#!AMR\n".as_slice())
        .ok_or_else(|| undecodable("the file is not AMR-NB audio"))?;
    let mut at = 0usize;
    let mut frames = 0u32;
    while at < body.len() {
        let header = body[at];
        let kind = usize::from((header >> 3) & 0x0F);
        let size = match AMR_NB_FRAME_BYTES[kind] {
            Some(size) if header & 0x83 == 0 => size,
            _ => {
                return Err(undecodable(format!(
                    "the AMR data is damaged (bad frame header at byte {})",
                    at + 6
                )))
            }
        };
        if at + size > body.len() {
            // A recording cut short mid-frame: the complete frames still play.
            break;
        }
        at += size;
        frames += 1;
    }
    if frames == 0 {
        return Err(undecodable("the AMR file has no audio frames"));
    }
    Ok(AMR_FRAME * frames)
}

/// Transcodes the AMR-NB voice in `source` to MP3.
pub fn render_mp3(
    source: Bytes,
    limits: &Limits,
    deadline: Deadline,
) -> Result<Rendered, ApiError> {
    match sniff(&source) {
        Sniffed::AmrNb => {}
        Sniffed::Unknown => return Err(undecodable("the file is not AMR-NB audio")),
        other => {
            return Err(unsupported(format!(
                "MP3 is made of AMR-NB voice, not {}",
                other.name()
            )))
        }
    }
    limits.check_audio(amr_nb_duration(&source)?)?;
    let mut input = open_input(source, "amr")?;
    let (index, parameters) = {
        let stream = input
            .streams()
            .best(Type::Audio)
            .ok_or_else(|| undecodable("the file has no audio stream"))?;
        (stream.index(), stream.parameters())
    };
    let mut decoder = codec::context::Context::from_parameters(parameters)
        .and_then(|c| c.decoder().audio())
        .map_err(|e| undecodable("the AMR audio cannot be decoded").with_detail(e))?;

    let output = MemoryOutput::new(limits.max_output_bytes);
    let mut mp3 = Mp3Writer::open(output.clone())?;
    let result =
        transcode(&mut input, index, &mut decoder, &mut mp3, deadline).and_then(|()| mp3.finish());
    if let Err(e) = result {
        return Err(output.limit_error().unwrap_or(e));
    }
    drop(mp3);
    let bytes = output.take();
    limits.check_output(bytes.len())?;
    Ok(Rendered {
        bytes,
        content_type: "audio/mpeg",
    })
}

fn transcode(
    input: &mut ffmpeg::format::context::Input,
    index: usize,
    decoder: &mut ffmpeg::decoder::Audio,
    mp3: &mut Mp3Writer,
    deadline: Deadline,
) -> Result<(), ApiError> {
    let mut resampler: Option<resampling::Context> = None;
    let mut decoded = frame::Audio::empty();
    let mut eof = false;
    while !eof {
        deadline.check()?;
        let mut packet = Packet::empty();
        match packet.read(input) {
            Ok(()) if packet.stream() == index => decoder
                .send_packet(&packet)
                .map_err(|e| undecodable("the AMR audio is damaged").with_detail(e))?,
            Ok(()) => continue,
            Err(ffmpeg::Error::Eof) => {
                decoder
                    .send_eof()
                    .map_err(|e| ApiError::internal(format!("amr decoder eof: {e}")))?;
                eof = true;
            }
            Err(e) => return Err(undecodable("the AMR audio is damaged").with_detail(e)),
        }
        while decoder.receive_frame(&mut decoded).is_ok() {
            if decoded.channel_layout().is_empty() {
                decoded.set_channel_layout(ChannelLayout::MONO);
            }
            let swr = match resampler.as_mut() {
                Some(r) => r,
                None => resampler.insert(
                    resampling::Context::get(
                        decoded.format(),
                        decoded.channel_layout(),
                        decoded.rate(),
                        Sample::F32(ffmpeg::format::sample::Type::Planar),
                        ChannelLayout::MONO,
                        OUT_RATE,
                    )
                    .map_err(|e| ApiError::internal(format!("resampler: {e}")))?,
                ),
            };
            // Room for every output sample: an output frame allocated by the
            // resampler itself would hold only as many samples as the input and
            // leave the rest buffered inside it.
            let capacity =
                decoded.samples() * OUT_RATE as usize / decoded.rate().max(1) as usize + 256;
            let mut out = frame::Audio::new(
                Sample::F32(ffmpeg::format::sample::Type::Planar),
                capacity,
                ChannelLayout::MONO,
            );
            swr.run(&decoded, &mut out)
                .map_err(|e| ApiError::internal(format!("resampling: {e}")))?;
            mp3.push(&out)?;
        }
    }
    if let Some(swr) = resampler.as_mut() {
        loop {
            let mut out = frame::Audio::new(
                Sample::F32(ffmpeg::format::sample::Type::Planar),
                4096,
                ChannelLayout::MONO,
            );
            match swr.flush(&mut out) {
                Ok(_) if out.samples() > 0 => mp3.push(&out)?,
                _ => break,
            }
        }
    }
    Ok(())
}

/// The MP3 encoder and muxer, fed with 16 kHz mono float samples of any count.
struct Mp3Writer {
    muxer: Output,
    encoder: ffmpeg::encoder::Audio,
    pending: Vec<f32>,
    frame_size: usize,
    pts: i64,
}

impl Mp3Writer {
    fn open(output: MemoryOutput) -> Result<Mp3Writer, ApiError> {
        let internal = |what: &str, e: ffmpeg::Error| ApiError::internal(format!("{what}: {e}"));
        let codec = ffmpeg::encoder::find_by_name("libmp3lame")
            .ok_or_else(|| ApiError::internal("this FFmpeg has no libmp3lame encoder"))?;
        let io = StreamIo::from_write_seek(output).map_err(|e| internal("mp3 io", e))?;
        let mut muxer = ffmpeg::format::output_to_stream(io, None, Some("mp3"))
            .map_err(|e| internal("mp3 muxer", e))?;
        let mut settings = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| internal("mp3 encoder", e))?;
        settings.set_rate(OUT_RATE as i32);
        settings.set_channel_layout(ChannelLayout::MONO);
        settings.set_channels(1);
        settings.set_format(Sample::F32(ffmpeg::format::sample::Type::Planar));
        settings.set_bit_rate(OUT_BIT_RATE);
        settings.set_compression(Some(LAME_QUALITY));
        settings.set_time_base(Rational::new(1, OUT_RATE as i32));
        let encoder = settings
            .open_as(codec)
            .map_err(|e| internal("opening libmp3lame", e))?;
        {
            let mut stream = muxer
                .add_stream(codec)
                .map_err(|e| internal("mp3 stream", e))?;
            stream.set_parameters(&encoder);
            stream.set_time_base(Rational::new(1, OUT_RATE as i32));
        }
        muxer
            .write_header()
            .map_err(|e| internal("mp3 header", e))?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        Ok(Mp3Writer {
            muxer,
            encoder,
            pending: Vec::new(),
            frame_size,
            pts: 0,
        })
    }

    fn push(&mut self, resampled: &frame::Audio) -> Result<(), ApiError> {
        let samples = resampled.samples();
        if samples == 0 {
            return Ok(());
        }
        let plane = resampled.plane::<f32>(0);
        self.pending
            .extend_from_slice(&plane[..samples.min(plane.len())]);
        while self.pending.len() >= self.frame_size {
            let chunk: Vec<f32> = self.pending.drain(..self.frame_size).collect();
            self.encode(Some(&chunk))?;
        }
        Ok(())
    }

    fn encode(&mut self, samples: Option<&[f32]>) -> Result<(), ApiError> {
        let failed = |e: ffmpeg::Error| ApiError::internal(format!("mp3 encoding: {e}"));
        match samples {
            Some(samples) => {
                let mut frame = frame::Audio::new(
                    Sample::F32(ffmpeg::format::sample::Type::Planar),
                    samples.len(),
                    ChannelLayout::MONO,
                );
                frame.set_rate(OUT_RATE);
                frame.plane_mut::<f32>(0)[..samples.len()].copy_from_slice(samples);
                frame.set_pts(Some(self.pts));
                self.pts += samples.len() as i64;
                self.encoder.send_frame(&frame).map_err(failed)?;
            }
            None => self.encoder.send_eof().map_err(failed)?,
        }
        let to = self
            .muxer
            .stream(0)
            .map(|s| s.time_base())
            .unwrap_or(Rational::new(1, OUT_RATE as i32));
        let mut packet = Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            packet.rescale_ts(Rational::new(1, OUT_RATE as i32), to);
            packet.write_interleaved(&mut self.muxer).map_err(failed)?;
        }
        Ok(())
    }

    /// Encodes what is left, flushes the encoder and writes the trailer (the muxer
    /// seeks back to complete the Xing/LAME frame).
    fn finish(&mut self) -> Result<(), ApiError> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.encode(Some(&rest))?;
        }
        self.encode(None)?;
        self.muxer
            .write_trailer()
            .map_err(|e| ApiError::internal(format!("mp3 trailer: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_table() {
        let mut amr = b"#!AMR\n".to_vec();
        for _ in 0..50 {
            amr.push(0x3C); // mode 7 (12.2 kbit/s), quality bit set
            amr.extend_from_slice(&[0u8; 31]);
        }
        assert_eq!(amr_nb_duration(&amr).unwrap(), Duration::from_secs(1));
        amr.extend_from_slice(&[0xFF, 0x13, 0x37]);
        assert_eq!(amr_nb_duration(&amr).unwrap_err().status(), 422);
        assert_eq!(amr_nb_duration(b"#!AMR\n").unwrap_err().status(), 422);
        assert_eq!(amr_nb_duration(b"RIFF").unwrap_err().status(), 422);
    }
}
