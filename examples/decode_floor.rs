//! The decode floor of a thumbnail with the decoder filegate itself uses: the CPU one
//! decode of FILE costs and nothing else (no resize, colour, encode, HTTP). A JPEG is
//! decoded by libjpeg at the scale filegate's thumbnail path picks for the box (its
//! DCT scaling; a progressive source at 1/8 up to its DC scans), any other format whole
//! by libvips, as filegate's libvips path decodes it.
//!
//! `cargo run --release --example decode_floor -- FILE [COUNT]` prints one JSON line:
//! the mean process CPU milliseconds per decode over COUNT (default 200) boxes, walked
//! as the benchmark's cold rows walk them (100-199 px wide, 200-1999 high).

use std::time::Instant;

use filegate::{decode_jpeg, scale_denominator, stored_target, vips, Fit};

#[path = "shared/cpu.rs"]
mod cpu;
use cpu::cpu_ms;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: decode_floor FILE [COUNT]")?;
    let count: u32 = match args.get(2) {
        Some(n) => n.parse().map_err(|e| format!("COUNT: {e}"))?,
        None => 200,
    };
    let source = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    vips::vips().map_err(|e| e.to_string())?;
    let header = vips::Image::header(&source)?;
    let stored = (header.width().max(1), header.height().max(1));
    let orientation = header.orientation();
    let is_jpeg = source.starts_with(&[0xFF, 0xD8]);
    let decode = |i: u32| -> Result<(u32, u32), String> {
        let fit = Fit {
            w: Some(100 + i % 100),
            h: Some(200 + (i * 37) % 1800),
        };
        if is_jpeg {
            let target = stored_target(stored, orientation, fit);
            let decoded = decode_jpeg(&source, scale_denominator(stored, target), true)?;
            Ok((decoded.width, decoded.height))
        } else {
            let image = vips::Image::header(&source)?;
            image.to_pixels()?;
            Ok((image.width() as u32, image.height() as u32))
        }
    };
    // One first, so start-up is not counted.
    decode(0)?;
    let (cpu0, wall0) = (cpu_ms()?, Instant::now());
    let mut size = (0, 0);
    for i in 1..=count {
        size = decode(i)?;
    }
    let cpu = (cpu_ms()? - cpu0) / f64::from(count);
    let wall = wall0.elapsed().as_secs_f64() * 1000.0 / f64::from(count);
    println!(
        "{{\"file\": {path:?}, \"count\": {count}, \"cpu_ms\": {cpu:.3}, \"wall_ms\": {wall:.3}, \"decoded\": [{}, {}]}}",
        size.0, size.1
    );
    Ok(())
}
