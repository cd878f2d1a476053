//! The CPU time one thumbnail costs filegate in process, without HTTP, the pool or the
//! cache: what the benchmark's floor row sets beside the scaled decode alone.
//!
//! `cargo run --release --example thumbnail_cost -- FILE [COUNT [BOX]]` prints one JSON line:
//! the mean process CPU milliseconds per thumbnail over COUNT (default 200) boxes,
//! walked as the benchmark's cold rows walk them (100-199 px wide, 200-1999 high), or
//! all BOX x BOX (a rendition's `max_display`: the whole picture).

use std::time::{Duration, Instant};

use filegate::config::MediaConfig;
use filegate::render_thumbnail;
use filegate::{Deadline, Limits};
use filegate::{Fit, ImageFormat, Qualities};

#[path = "shared/cpu.rs"]
mod cpu;
use cpu::cpu_ms;

/// The allocators as the `filegate` binary sets them up (mimalloc for Rust, glibc's
/// limits for the C libraries), so that the figure is the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), String> {
    filegate::tune_malloc();
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .ok_or("usage: thumbnail_cost FILE [COUNT [BOX]]")?;
    let count: u32 = match args.get(2) {
        Some(n) => n.parse().map_err(|e| format!("COUNT: {e}"))?,
        None => 200,
    };
    // BOX: every result fits BOX x BOX (a rendition's max_display), not a new box each.
    let fixed: Option<u32> = match args.get(3) {
        Some(n) => Some(n.parse().map_err(|e| format!("BOX: {e}"))?),
        None => None,
    };
    let source = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let limits = Limits::from_config(&MediaConfig::default());
    let qualities = Qualities {
        jpeg: 82,
        webp: 80,
        avif: 55,
    };
    let render = |i: u32| {
        let fit = match fixed {
            Some(side) => Fit {
                w: Some(side),
                h: Some(side),
            },
            None => Fit {
                w: Some(100 + i % 100),
                h: Some(200 + (i * 37) % 1800),
            },
        };
        let deadline = Deadline(Instant::now() + Duration::from_secs(60));
        render_thumbnail(
            &source,
            fit,
            ImageFormat::Jpeg,
            qualities,
            &limits,
            deadline,
        )
        .map_err(|e| format!("{path}: {e}"))
    };
    // One first, so libvips' start-up is not counted.
    render(0)?;
    let (cpu0, wall0) = (cpu_ms()?, Instant::now());
    let mut bytes = 0;
    for i in 1..=count {
        bytes += render(i)?.bytes.len();
    }
    let cpu = (cpu_ms()? - cpu0) / f64::from(count);
    let wall = wall0.elapsed().as_secs_f64() * 1000.0 / f64::from(count);
    println!(
        "{{\"file\": {path:?}, \"count\": {count}, \"cpu_ms\": {cpu:.3}, \"wall_ms\": {wall:.3}, \"bytes\": {}}}",
        bytes / count as usize
    );
    Ok(())
}
