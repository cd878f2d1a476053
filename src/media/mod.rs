//! Media transforms: thumbnails ([`thumbnail`], libvips), video covers ([`cover`],
//! FFmpeg), AMR→MP3 ([`voice`], FFmpeg), media info and placeholders ([`info`]), and
//! third-party processors ([`processor`]), GPS removal from served originals
//! ([`location`]), HEIF repairs before libheif 1.15 ([`heif_repair`]: property order, unreadable thumbnails).
//! [`limits`] holds the checks every transform makes, [`pool`] the
//! bounded CPU pool they run in, [`sniff`] format detection by magic bytes,
//! [`source`] the size-limited source read (the plan → cache → make sequence a
//! download runs is [`crate::fetch::derived`]).
//!
//! Every transform takes bytes and gives bytes: libvips images are not `Send`, so
//! each runs whole on one pool worker.

pub mod av;
pub mod colour;
pub mod cover;
pub mod engine;
pub mod heif_decode;
pub mod heif_items;
pub mod heif_repair;
pub mod info;
pub mod isobmff;
pub mod job_memory;
pub mod jpeg;
pub mod limits;
pub mod location;
pub mod pixels;
pub mod pool;
pub mod processor;
pub mod sniff;
pub mod source;
pub mod thumbnail;
pub mod transform;
pub mod vips;
pub mod voice;
pub mod yuv;

pub use engine::Media;
pub use transform::{Fit, ImageFormat, Qualities, Rendered, Transform};
