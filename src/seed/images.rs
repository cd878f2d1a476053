//! Synthetic pictures, encoded by libvips: photos (a soft scene with sensor grain,
//! JPEG), an animated GIF and a PNG sticker with alpha. Runs on the generator thread
//! (libvips images are not `Send`).

use crate::media::vips::{vips, Image};
use crate::seed::plan::Rng;

/// JPEG quality of the photos: what phone cameras and IM clients write (~85).
const PHOTO_QUALITY: u32 = 85;
/// The scene is drawn at 1/`SCENE_SCALE` of the photo and upscaled by libvips.
const SCENE_SCALE: u32 = 8;

fn start() -> Result<(), String> {
    vips().map(|_| ()).map_err(|e| e.message().to_string())
}

/// A `w`×`h` JPEG photo: a sky-to-ground gradient with soft blobs, upscaled smoothly,
/// plus sensor grain, so it compresses like a real photo (a 4000x3000 is a few MB).
pub fn photo_jpeg(w: u32, h: u32, rng: &mut Rng) -> Result<Vec<u8>, String> {
    start()?;
    let (sw, sh) = (w.div_ceil(SCENE_SCALE), h.div_ceil(SCENE_SCALE));
    let scene = scene_rgb(sw, sh, rng);
    let small = Image::from_pixels(&scene, sw, sh, 3)?;
    let full = small.resize(f64::from(w) / f64::from(sw), f64::from(h) / f64::from(sh))?;
    let grain = full.with_noise(rng.range(6.0, 12.0), (rng.next_u64() >> 33) as i32)?;
    if grain.width() != i64::from(w) || grain.height() != i64::from(h) {
        return Err(format!(
            "libvips made a {}x{} photo, not {w}x{h}",
            grain.width(),
            grain.height()
        ));
    }
    grain.save(&format!(".jpg[Q={PHOTO_QUALITY},strip]"))
}

/// A scene: a two-colour vertical gradient, a few soft discs (out-of-focus lights)
/// and hard-edged blocks along the bottom (buildings, furniture) for sharp edges.
fn scene_rgb(w: u32, h: u32, rng: &mut Rng) -> Vec<u8> {
    let top = random_colour(rng);
    let bottom = random_colour(rng);
    let blobs: Vec<(f64, f64, f64, [f64; 3])> = (0..6 + rng.below(7))
        .map(|_| {
            (
                rng.range(0.0, f64::from(w)),
                rng.range(0.0, f64::from(h)),
                rng.range(0.05, 0.3) * f64::from(w.max(h)),
                random_colour(rng),
            )
        })
        .collect();
    let blocks: Vec<(u32, u32, u32, [f64; 3])> = (0..4 + rng.below(8))
        .map(|_| {
            let x0 = rng.below(u64::from(w)) as u32;
            let width = 1 + rng.below(u64::from(w / 4 + 1)) as u32;
            let top = h / 3 + rng.below(u64::from(h / 2 + 1)) as u32;
            (x0, x0 + width, top, random_colour(rng))
        })
        .collect();
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        let t = f64::from(y) / f64::from(h.max(2) - 1);
        for x in 0..w {
            let mut px = [0.0f64; 3];
            for c in 0..3 {
                px[c] = top[c] * (1.0 - t) + bottom[c] * t;
            }
            for (bx, by, r, colour) in &blobs {
                let d2 = (f64::from(x) - bx).powi(2) + (f64::from(y) - by).powi(2);
                let a = (1.0 - d2 / (r * r)).max(0.0);
                if a > 0.0 {
                    for c in 0..3 {
                        px[c] = px[c] * (1.0 - a) + colour[c] * a;
                    }
                }
            }
            for (x0, x1, top, colour) in &blocks {
                if (*x0..*x1).contains(&x) && y >= *top {
                    // Windows: a checker of lighter cells.
                    let lit = (x / 3 + y / 4) % 2 == 0;
                    for c in 0..3 {
                        px[c] = if lit {
                            colour[c] * 0.7 + 70.0
                        } else {
                            colour[c]
                        };
                    }
                }
            }
            out.extend(px.iter().map(|v| v.clamp(0.0, 255.0) as u8));
        }
    }
    out
}

fn random_colour(rng: &mut Rng) -> [f64; 3] {
    [
        rng.range(20.0, 235.0),
        rng.range(20.0, 235.0),
        rng.range(20.0, 235.0),
    ]
}

/// A looping animated GIF of `frames` frames of `w`×`h`, 100 ms each: a ball
/// bouncing over a gradient.
pub fn animated_gif(w: u32, h: u32, frames: u32, rng: &mut Rng) -> Result<Vec<u8>, String> {
    start()?;
    let background = [random_colour(rng), random_colour(rng)];
    let ball = random_colour(rng);
    let radius = f64::from(w.min(h)) * rng.range(0.08, 0.18);
    let mut pixels = Vec::with_capacity((w * h * frames * 3) as usize);
    for f in 0..frames {
        let phase = f64::from(f) / f64::from(frames.max(1));
        let cx = radius + (f64::from(w) - 2.0 * radius) * phase;
        let cy =
            radius + (f64::from(h) - 2.0 * radius) * (phase * std::f64::consts::PI).sin().abs();
        for y in 0..h {
            for x in 0..w {
                let t = f64::from(x) / f64::from(w.max(2) - 1);
                let inside =
                    (f64::from(x) - cx).powi(2) + (f64::from(y) - cy).powi(2) < radius * radius;
                for c in 0..3 {
                    let v = if inside {
                        ball[c]
                    } else {
                        background[0][c] * (1.0 - t) + background[1][c] * t
                    };
                    pixels.push(v as u8);
                }
            }
        }
    }
    let mut image = Image::from_pixels(&pixels, w, h * frames, 3)?;
    image.set_animation(h as i32, &vec![100; frames as usize]);
    image.save(".gif")
}

/// A `w`×`h` PNG sticker: a disc with a soft edge and a ring on a transparent
/// background.
pub fn alpha_png(w: u32, h: u32, rng: &mut Rng) -> Result<Vec<u8>, String> {
    start()?;
    let inner = random_colour(rng);
    let outer = random_colour(rng);
    let (cx, cy) = (f64::from(w) / 2.0, f64::from(h) / 2.0);
    let r = f64::from(w.min(h)) * rng.range(0.35, 0.47);
    let mut pixels = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            let d = ((f64::from(x) - cx).powi(2) + (f64::from(y) - cy).powi(2)).sqrt() / r;
            let t = d.min(1.0);
            for c in 0..3 {
                pixels.push((inner[c] * (1.0 - t) + outer[c] * t) as u8);
            }
            // Opaque inside, a 4% feathered edge, transparent outside.
            let alpha = ((1.0 - d) / 0.04).clamp(0.0, 1.0) * 255.0;
            pixels.push(alpha as u8);
        }
    }
    Image::from_pixels(&pixels, w, h, 4)?.save(".png[strip]")
}
