//! Transform limits and the pool that runs them (`media:`, SPEC §7).

use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

use super::error::ConfigError;

/// Limits of the media transforms and the pool that runs them (SPEC §7).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// Transforms running at once; 0 means one per core.
    pub workers: usize,
    /// Transforms that may wait for a worker; past it, 503 with `Retry-After`.
    pub queue: usize,
    /// `Retry-After` of that 503.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
    /// Box edge of a thumbnail when neither `w` nor `h` is given.
    pub default_size: u32,
    /// Largest `w` / `h`; larger values are clamped to it.
    pub max_size: u32,
    /// Longest side of a rendition (`format=jpg|png|webp|avif|auto`, SPEC §11); a
    /// larger picture is shrunk to it, a smaller one is never enlarged.
    pub max_display: u32,
    /// Largest image or voice source read for a transform.
    pub max_source_bytes: ByteSize,
    /// Largest video source read for a cover (held in memory while it is made).
    pub max_video_bytes: ByteSize,
    /// Largest source picture (width × height, from the header before decoding).
    pub max_pixels: u64,
    /// Most frames (pages) of an animated source.
    pub max_frames: u32,
    /// Longest voice source transcoded to MP3.
    #[serde(with = "humantime_serde")]
    pub max_audio_duration: Duration,
    /// Largest derived result.
    pub max_output_bytes: ByteSize,
    /// Longest a transform may take; longer → 422.
    #[serde(with = "humantime_serde")]
    pub transform_timeout: Duration,
    /// Video covers: the first keyframe at or after this offset (frame 0 when the
    /// clip is shorter).
    #[serde(with = "humantime_serde")]
    pub cover_offset: Duration,
    /// JPEG quality (1-100) of thumbnails and covers.
    pub jpeg_quality: u8,
    /// WebP quality (1-100).
    pub webp_quality: u8,
    /// AVIF quality (1-100).
    pub avif_quality: u8,
    /// Offer AVIF to clients that accept it, when this libvips can encode it.
    pub avif: bool,
    /// Uploads waiting for their eager results (`apps.<id>.eager`); past it, an upload's
    /// eager results are dropped (counted), never queued without bound.
    pub eager_queue: usize,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            workers: 0,
            queue: 64,
            retry_after: Duration::from_secs(2),
            default_size: 200,
            max_size: 2048,
            max_display: 4096,
            max_source_bytes: ByteSize::mib(32),
            max_video_bytes: ByteSize::mib(128),
            max_pixels: 50_000_000,
            max_frames: 1000,
            max_audio_duration: Duration::from_secs(5 * 60),
            max_output_bytes: ByteSize::mib(8),
            transform_timeout: Duration::from_secs(20),
            cover_offset: Duration::from_secs(1),
            jpeg_quality: 82,
            webp_quality: 80,
            avif_quality: 55,
            avif: true,
            eager_queue: 256,
        }
    }
}

impl MediaConfig {
    /// Workers after the "0 = one per core, plus one" default: a job spends part of
    /// its time off the CPU (reading its source, handing its result back), and the
    /// extra worker fills those gaps (measured on 2 cores: cold thumbnails 571 -> 678
    /// req/s with 3 workers; more added nothing). See docs/decisions.md.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get() + 1)
                .unwrap_or(3)
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.workers > 256 {
            return Err(ConfigError::new("media.workers", "at most 256"));
        }
        if self.queue > 100_000 {
            return Err(ConfigError::new("media.queue", "at most 100000"));
        }
        if !(1..=100_000).contains(&self.eager_queue) {
            return Err(ConfigError::new(
                "media.eager_queue",
                "between 1 and 100000",
            ));
        }
        if !(1..=10_000).contains(&self.max_size) {
            return Err(ConfigError::new("media.max_size", "between 1 and 10000"));
        }
        if !(16..=16_384).contains(&self.max_display) {
            return Err(ConfigError::new(
                "media.max_display",
                "between 16 and 16384",
            ));
        }
        if self.default_size == 0 || self.default_size > self.max_size {
            return Err(ConfigError::new(
                "media.default_size",
                "between 1 and media.max_size",
            ));
        }
        let sizes = [
            ("media.max_source_bytes", self.max_source_bytes),
            ("media.max_video_bytes", self.max_video_bytes),
            ("media.max_output_bytes", self.max_output_bytes),
        ];
        for (key, size) in sizes {
            if size.as_u64() == 0 || size.as_u64() > 4 * 1024 * 1024 * 1024 {
                return Err(ConfigError::new(key, "between 1 byte and 4 GiB"));
            }
        }
        if self.max_output_bytes.as_u64() > u64::from(u32::MAX) {
            return Err(ConfigError::new("media.max_output_bytes", "below 4 GiB"));
        }
        if self.max_pixels == 0 || self.max_pixels > 1_000_000_000 {
            return Err(ConfigError::new(
                "media.max_pixels",
                "between 1 and 1000000000",
            ));
        }
        if self.max_frames == 0 {
            return Err(ConfigError::new("media.max_frames", "at least 1"));
        }
        if self.max_audio_duration.is_zero() {
            return Err(ConfigError::new(
                "media.max_audio_duration",
                "must be above 0",
            ));
        }
        if self.transform_timeout.is_zero() {
            return Err(ConfigError::new(
                "media.transform_timeout",
                "must be above 0",
            ));
        }
        let qualities = [
            ("media.jpeg_quality", self.jpeg_quality),
            ("media.webp_quality", self.webp_quality),
            ("media.avif_quality", self.avif_quality),
        ];
        for (key, q) in qualities {
            if !(1..=100).contains(&q) {
                return Err(ConfigError::new(key, "between 1 and 100"));
            }
        }
        Ok(())
    }
}
