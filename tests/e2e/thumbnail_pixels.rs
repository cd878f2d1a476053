//! Thumbnails pixel-checked against libvips' own (`vips thumbnail`, the CLI, as the
//! reference): the direct JPEG path (baseline, progressive from its DC scans, every
//! EXIF orientation, CMYK, an ICC profile, grey) and the libvips path (PNG, WebP,
//! GIF). Sources are made by Pillow; the check is the size, exactly, and the mean
//! error per sample and the worst 8x8-cell mean, not bytes.

use std::time::{Duration, Instant};

use filegate::config::MediaConfig;
use filegate::render_thumbnail;
use filegate::vips::{vips, Image};
use filegate::{Deadline, Limits};
use filegate::{Fit, ImageFormat, Qualities};

use crate::fixtures::{path, pillow_picture, run};

/// Decoded samples, width, height, bands.
fn decoded(bytes: &[u8]) -> (Vec<u8>, i64, i64, i64) {
    let image = Image::header(bytes).expect("decodes");
    let pixels = image.to_pixels().expect("pixels");
    (pixels, image.width(), image.height(), image.bands())
}

/// libvips' thumbnail of the file `name` fitting `w`×`h`, as PNG bytes.
fn reference(name: &str, w: u32, h: u32, srgb: bool) -> Vec<u8> {
    let out = path(&format!("{name}.ref-{w}x{h}.png"));
    let mut args = vec![
        "thumbnail".to_string(),
        path(name),
        out.clone(),
        w.to_string(),
        "--height".into(),
        h.to_string(),
        "--size".into(),
        "down".into(),
    ];
    if srgb {
        args.extend(["--export-profile".into(), "srgb".into()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run("vips", &args);
    std::fs::read(out).expect("reference")
}

/// (mean absolute error per sample, worst mean error of an 8x8 grid cell).
fn errors(a: &(Vec<u8>, i64, i64, i64), b: &(Vec<u8>, i64, i64, i64)) -> (f64, f64) {
    let (w, h, bands) = (a.1 as usize, a.2 as usize, a.3 as usize);
    let total: f64 =
        a.0.iter()
            .zip(&b.0)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>();
    let mut worst: f64 = 0.0;
    for cy in 0..8 {
        for cx in 0..8 {
            let (mut sa, mut sb, mut n) = (0.0, 0.0, 0.0);
            for y in cy * h / 8..((cy + 1) * h / 8).max(cy * h / 8 + 1).min(h) {
                for x in cx * w / 8..((cx + 1) * w / 8).max(cx * w / 8 + 1).min(w) {
                    for c in 0..bands {
                        let i = (y * w + x) * bands + c;
                        sa += f64::from(a.0[i]);
                        sb += f64::from(b.0[i]);
                        n += 1.0;
                    }
                }
            }
            worst = worst.max((sa - sb).abs() / n);
        }
    }
    (total / a.0.len() as f64, worst)
}

fn ours(source: &[u8], w: u32, h: u32) -> Vec<u8> {
    render_thumbnail(
        source,
        Fit {
            w: Some(w),
            h: Some(h),
        },
        ImageFormat::Jpeg,
        Qualities {
            jpeg: 90,
            webp: 90,
            avif: 60,
        },
        &Limits::from_config(&MediaConfig::default()),
        Deadline(Instant::now() + Duration::from_secs(60)),
    )
    .expect("thumbnail")
    .bytes
}

struct Case {
    name: &'static str,
    save: &'static str,
    srgb: bool,
}

fn check(case: &Case, size: (u32, u32), boxes: &[(u32, u32)]) {
    let source = pillow_picture(case.name, size.0, size.1, case.save);
    for &(w, h) in boxes {
        let mine = decoded(&ours(&source, w, h));
        let theirs = decoded(&reference(case.name, w, h, case.srgb));
        assert_eq!(
            (mine.1, mine.2, mine.3),
            (theirs.1, theirs.2, theirs.3),
            "{} in {w}x{h}: size and bands",
            case.name
        );
        let (mean, worst_cell) = errors(&mine, &theirs);
        eprintln!(
            "{} in {w}x{h}: mean error {mean:.2}, worst cell {worst_cell:.2}",
            case.name
        );
        assert!(
            mean <= 4.0,
            "{} in {w}x{h}: mean error {mean:.2}",
            case.name
        );
        assert!(
            worst_cell <= 6.0,
            "{} in {w}x{h}: an 8x8 cell is off by {worst_cell:.2} on average",
            case.name
        );
    }
}

/// Boxes that take each DCT scale from 1600x1200: 1/8 (150, 200 wide), 1/4 (300),
/// 1/2 (500), whole (900), and one that only the height bounds.
const BOXES: [(u32, u32); 6] = [
    (150, 150),
    (200, 2000),
    (300, 300),
    (500, 500),
    (900, 900),
    (2000, 90),
];

#[test]
fn jpeg_thumbnails_match_libvips() {
    vips().expect("libvips");
    let cases = [
        Case { name: "baseline.jpg", save: "im.save(p, quality=92)", srgb: false },
        Case { name: "progressive.jpg", save: "im.save(p, quality=92, progressive=True)", srgb: false },
        Case { name: "grey.jpg", save: "im.convert('L').save(p, quality=92)", srgb: false },
        Case { name: "cmyk.jpg", save: "im.convert('CMYK').save(p, quality=92)", srgb: true },
        Case {
            name: "icc.jpg",
            save: "im.save(p, quality=92, icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes())",
            srgb: true,
        },
    ];
    for case in &cases {
        check(case, (1600, 1200), &BOXES);
    }
}

#[test]
fn every_exif_orientation_is_applied_as_libvips_does() {
    vips().expect("libvips");
    let saves = [
        (
            "orient2.jpg",
            "e = im.getexif(); e[0x0112] = 2; im.save(p, quality=92, exif=e)",
        ),
        (
            "orient3.jpg",
            "e = im.getexif(); e[0x0112] = 3; im.save(p, quality=92, exif=e)",
        ),
        (
            "orient4.jpg",
            "e = im.getexif(); e[0x0112] = 4; im.save(p, quality=92, exif=e)",
        ),
        (
            "orient5.jpg",
            "e = im.getexif(); e[0x0112] = 5; im.save(p, quality=92, exif=e)",
        ),
        (
            "orient6.jpg",
            "e = im.getexif(); e[0x0112] = 6; im.save(p, quality=92, exif=e)",
        ),
        (
            "orient7.jpg",
            "e = im.getexif(); e[0x0112] = 7; im.save(p, quality=92, exif=e)",
        ),
        (
            "orient8.jpg",
            "e = im.getexif(); e[0x0112] = 8; im.save(p, quality=92, exif=e)",
        ),
        (
            "orient6-progressive.jpg",
            "e = im.getexif(); e[0x0112] = 6; im.save(p, quality=92, exif=e, progressive=True)",
        ),
    ];
    for (name, save) in saves {
        let case = Case {
            name,
            save,
            srgb: false,
        };
        // A box narrower than tall: a turn the wrong way fits it differently.
        check(&case, (1600, 1200), &[(120, 300), (300, 120), (700, 700)]);
    }
}

#[test]
fn png_webp_and_gif_thumbnails_match_libvips() {
    vips().expect("libvips");
    let cases = [
        Case {
            name: "picture.png",
            save: "im.save(p)",
            srgb: false,
        },
        Case {
            name: "picture.webp",
            save: "im.save(p, quality=92)",
            srgb: false,
        },
        Case {
            name: "picture.gif",
            save: "im.save(p)",
            srgb: false,
        },
    ];
    for case in &cases {
        check(case, (800, 600), &[(150, 150), (400, 400)]);
    }
}
