// Scratch probe (not committed): per-image cost of the thumbnail path.
use filegate::config::MediaConfig;
use filegate::media::limits::{Deadline, Limits};
use filegate::media::{Fit, ImageFormat, Qualities};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = &args[1];
    let n: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(100);
    let src = std::fs::read(path).unwrap();
    let limits = Limits::from_config(&MediaConfig::default());
    let q = Qualities {
        jpeg: 82,
        webp: 80,
        avif: 55,
    };
    let cpu = || {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let f: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 * 10.0
    };
    let cpu0 = cpu();
    let mut total = Duration::ZERO;
    let mut size = 0;
    for i in 0..n {
        let w = 100 + (i as u32 * 7) % 150;
        let fit = if std::env::var_os("BOX").is_some() {
            Fit {
                w: Some(150),
                h: Some(150),
            }
        } else {
            Fit {
                w: Some(w),
                h: Some(400 + (i as u32 * 37) % 1600),
            }
        };
        let t = Instant::now();
        let r = filegate::media::thumbnail::render_thumbnail(
            &src,
            fit,
            ImageFormat::Jpeg,
            q,
            &limits,
            Deadline(Instant::now() + Duration::from_secs(60)),
        )
        .unwrap();
        total += t.elapsed();
        size += r.bytes.len();
        if i == 0 {
            std::fs::write("/tmp/probe/out.jpg", &r.bytes).unwrap();
        }
    }
    println!(
        "{path}: {:.2} ms/image wall, {:.2} ms/image CPU, {} bytes avg",
        total.as_secs_f64() * 1000.0 / n as f64,
        (cpu() - cpu0) / n as f64,
        size / n
    );
}
