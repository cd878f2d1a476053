//! Makes the bytes of a planned file. CPU-bound (libvips, FFmpeg, the AMR encoder):
//! called on the seed's generator thread, never on an async runtime.

use sha2::{Digest, Sha256};

use crate::seed::plan::{Planned, Rng, Variant};
use crate::seed::{documents, images, video, voice};

/// A generated file.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
}

/// The bytes of `planned`, the same for the same plan entry.
pub fn generate(planned: &Planned) -> Result<Generated, String> {
    let mut rng = Rng::new(planned.content_seed, 0xF11E);
    let bytes = match planned.variant {
        Variant::UserAvatar { side } | Variant::GroupAvatar { side } => {
            images::photo_jpeg(side, side, &mut rng)?
        }
        Variant::Photo { w, h } => images::photo_jpeg(w, h, &mut rng)?,
        Variant::AnimatedGif { w, h, frames } => images::animated_gif(w, h, frames, &mut rng)?,
        Variant::AlphaPng { w, h } => images::alpha_png(w, h, &mut rng)?,
        Variant::Voice { seconds } => voice::amr_voice(seconds, &mut rng)?,
        Variant::Video { w, h, seconds } => video::h264_mp4(w, h, seconds, &mut rng)?,
        Variant::Pdf { pages } => documents::pdf(pages, &mut rng),
        Variant::Text { kib } => documents::text(kib, &mut rng),
        Variant::Binary { kib } => documents::binary(kib, &mut rng),
    };
    let sha256 = hex(&Sha256::digest(&bytes));
    Ok(Generated { bytes, sha256 })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
