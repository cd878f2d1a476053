//! The limits every transform checks as early as the data allows (SPEC §7): the
//! source size before and while reading it, pixels and frames from the header before
//! decoding, audio duration before decoding, output size and transform time after.
//! A limit hit is an error envelope with the honest status, never a crash.

use std::time::{Duration, Instant};

use http::StatusCode;

use crate::config::MediaConfig;
use crate::error::ApiError;

/// The limits of one transform, copied out of the config.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest source picture, width × height.
    pub max_pixels: u64,
    /// Most frames of an animated source.
    pub max_frames: u32,
    /// Longest voice source.
    pub max_audio: Duration,
    /// Largest result.
    pub max_output_bytes: u64,
}

impl Limits {
    /// The limits in `config`.
    pub fn from_config(config: &MediaConfig) -> Limits {
        Limits {
            max_pixels: config.max_pixels,
            max_frames: config.max_frames,
            max_audio: config.max_audio_duration,
            max_output_bytes: config.max_output_bytes.as_u64(),
        }
    }

    /// 413 unless `width × height` is within the pixel limit.
    pub fn check_pixels(&self, width: u64, height: u64) -> Result<(), ApiError> {
        let pixels = width.saturating_mul(height);
        if width == 0 || height == 0 {
            return Err(undecodable("the image has no pixels"));
        }
        if pixels > self.max_pixels {
            return Err(too_large(format!(
                "source is {width}x{height} ({pixels} pixels); the limit is {} pixels",
                self.max_pixels
            )));
        }
        Ok(())
    }

    /// 413 unless an animation's frame count is within the limit.
    pub fn check_frames(&self, frames: u64) -> Result<(), ApiError> {
        if frames > u64::from(self.max_frames) {
            return Err(too_large(format!(
                "source has {frames} frames; the limit is {}",
                self.max_frames
            )));
        }
        Ok(())
    }

    /// 413 unless an audio duration is within the limit.
    pub fn check_audio(&self, duration: Duration) -> Result<(), ApiError> {
        if duration > self.max_audio {
            return Err(too_large(format!(
                "audio lasts {:.1} s; the limit is {} s",
                duration.as_secs_f64(),
                self.max_audio.as_secs()
            )));
        }
        Ok(())
    }

    /// 413 unless a result is within the output limit.
    pub fn check_output(&self, len: usize) -> Result<(), ApiError> {
        if len as u64 > self.max_output_bytes {
            return Err(too_large(format!(
                "the result would be {len} bytes; the limit is {}",
                self.max_output_bytes
            )));
        }
        Ok(())
    }
}

/// When a transform must give up: work loops (demuxing, decoding) poll it so a
/// slow transform stops on its own and frees its worker.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// 422 once the deadline has passed.
    pub fn check(&self) -> Result<(), ApiError> {
        if Instant::now() >= self.0 {
            Err(too_slow())
        } else {
            Ok(())
        }
    }

    /// Whether the deadline has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }
}

/// 413: the source or the result is too large.
pub fn too_large(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::too_large(message)
}

/// 415: a format this transform does not take.
pub fn unsupported(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message)
}

/// 422: the source cannot be decoded.
pub fn undecodable(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// 422: the transform ran past `media.transform_timeout`. Retrying the same media
/// would take as long again, so this is not a 503.
pub fn too_slow() -> ApiError {
    undecodable("the media took too long to transform (media.transform_timeout)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        let limits = Limits::from_config(&MediaConfig::default());
        assert_eq!(
            limits.check_pixels(100_000, 100_000).unwrap_err().status(),
            413
        );
        assert_eq!(limits.check_pixels(0, 10).unwrap_err().status(), 422);
        assert!(limits.check_pixels(4000, 3000).is_ok());
        assert_eq!(limits.check_frames(5000).unwrap_err().status(), 413);
        assert_eq!(
            limits
                .check_audio(Duration::from_secs(3600))
                .unwrap_err()
                .status(),
            413
        );
        assert_eq!(limits.check_output(usize::MAX).unwrap_err().status(), 413);
        let past = Deadline(Instant::now() - Duration::from_millis(1));
        assert_eq!(past.check().unwrap_err().status(), 422);
    }
}
