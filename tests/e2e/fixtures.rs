//! Real media for the media tests, made by real tools: libvips' CLI (`vips`),
//! `ffmpeg`, `espeak-ng`, and PyAV (the tools' `venv`, installed by scripts/setup.sh;
//! its bundled FFmpeg has the AMR-NB encoder Debian's lacks). Each maker writes into
//! one directory shared by the test process, so a fixture is made once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Bumped when a maker changes what it makes: fixtures are kept between runs.
const FIXTURES_VERSION: u32 = 2;

/// The directory fixtures are made in: under cargo's target tmp dir, kept between runs
/// (each is made once a machine, not once a run, and nothing piles up in /tmp).
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("e2e-fixtures-v{FIXTURES_VERSION}"));
        std::fs::create_dir_all(&dir).expect("fixture dir");
        dir
    })
}

/// A program of the tools' venv (PyAV, Pillow, thumbor).
pub fn venv_bin(name: &str) -> PathBuf {
    crate::harness::tools_dir().join("venv/bin").join(name)
}

/// Runs a command, panicking with its stderr when it fails.
pub fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    let program = program.as_ref();
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program:?} (run scripts/setup.sh): {e}"));
    assert!(
        out.status.success(),
        "{program:?} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes `name` once with `make(path)`, then returns its bytes. Made in a scratch
/// directory of this process and renamed into place, so an interrupted run leaves no
/// half-made fixture behind.
fn made(name: &str, make: impl FnOnce(&str)) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir().join(name);
    if !path.exists() {
        let scratch = tempfile::tempdir_in(dir()).expect("scratch dir");
        let partial = scratch.path().join(name);
        make(partial.to_str().expect("utf-8 path"));
        std::fs::rename(&partial, &path).expect("fixture into place");
    }
    std::fs::read(&path).expect("fixture")
}

/// A path in the fixture directory.
pub fn path(name: &str) -> String {
    dir().join(name).to_string_lossy().into_owned()
}

/// A noise image of `w`×`h` saved by libvips in the format of `name`'s extension
/// (`[Q=..]` options allowed after the name).
pub fn vips_image(name: &str, w: u32, h: u32, options: &str) -> Vec<u8> {
    made(name, |p| {
        let colour = format!("{p}.v");
        // Three noise bands: a real colour photo's worth of entropy.
        run(
            "vips",
            &["gaussnoise", &colour, &w.to_string(), &h.to_string()],
        );
        let rgb = format!("{p}.rgb.v");
        run(
            "vips",
            &["bandjoin", &format!("{colour} {colour} {colour}"), &rgb],
        );
        let uchar = format!("{p}.u.v");
        run("vips", &["cast", &rgb, &uchar, "uchar"]);
        run("vips", &["copy", &uchar, &format!("{p}{options}")]);
    })
}

/// A smooth gradient (compresses well, decodes slowly when large).
pub fn vips_gradient(name: &str, w: u32, h: u32) -> Vec<u8> {
    made(name, |p| {
        let xyz = format!("{p}.xyz.v");
        run("vips", &["xyz", &xyz, &w.to_string(), &h.to_string()]);
        let band = format!("{p}.b.v");
        run("vips", &["extract_band", &xyz, &band, "0"]);
        let scaled = format!("{p}.s.v");
        run(
            "vips",
            &[
                "linear",
                &band,
                &scaled,
                &format!("{}", 255.0 / w as f64),
                "0",
                "--uchar",
            ],
        );
        let rgb = format!("{p}.rgb.v");
        run(
            "vips",
            &["bandjoin", &format!("{scaled} {scaled} {scaled}"), &rgb],
        );
        run("vips", &["copy", &rgb, p]);
    })
}

/// An animated GIF (10 frames of FFmpeg's test pattern).
pub fn animated_gif(w: u32, h: u32) -> Vec<u8> {
    made(&format!("anim-{w}x{h}.gif"), |p| {
        run(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc=size={w}x{h}:rate=10"),
                "-t",
                "1",
                p,
            ],
        );
    })
}

/// A JPEG stored `w`×`h` whose EXIF orientation is 6 (display rotated 90° clockwise:
/// it shows as `h`×`w`). Written by Pillow from the venv.
pub fn exif_rotated_jpeg(w: u32, h: u32) -> Vec<u8> {
    made(&format!("exif6-{w}x{h}.jpg"), |p| {
        let script = format!(
            "from PIL import Image\nim = Image.radial_gradient('L').resize(({w}, {h})).convert('RGB')\nexif = im.getexif()\nexif[0x0112] = 6\nim.save({p:?}, exif=exif, quality=90)\n"
        );
        run(venv_bin("python"), &["-c", &script]);
    })
}

/// An H.264 MP4 of `seconds` (FFmpeg's test pattern, a keyframe every second).
pub fn h264_mp4(w: u32, h: u32, seconds: f32) -> Vec<u8> {
    made(&format!("clip-{w}x{h}-{seconds}.mp4"), |p| {
        run(
            "ffmpeg",
            &[
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                &format!("testsrc=size={w}x{h}:rate=25"),
                "-t",
                &seconds.to_string(),
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-g",
                "25",
                "-movflags",
                "+faststart",
                p,
            ],
        );
    })
}

/// `seconds` of AMR-NB speech (scripts/make-voice.sh: espeak-ng, ffmpeg, PyAV).
pub fn amr_voice(seconds: u32) -> Vec<u8> {
    made(&format!("voice-{seconds}.amr"), |p| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/make-voice.sh");
        run(&script, &[&seconds.to_string(), p]);
    })
}

/// A PNG whose header claims `w`×`h` pixels, with a few rows of data: a tiny file
/// that would need gigabytes if decoded (a "pixel flood").
pub fn pixel_flood_png(w: u32, h: u32) -> Vec<u8> {
    made(&format!("flood-{w}x{h}.png"), |p| {
        let script = format!(
            r#"
import struct, zlib
def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
w, h = {w}, {h}
ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
rows = zlib.compress(b"\x00" * (1 + 3 * w) * 16, 9)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
open({p:?}, "wb").write(png)
"#
        );
        run("python3", &["-c", &script]);
    })
}

/// What `vipsheader` says of an image: (width, height, loader).
pub fn vipsheader(bytes: &[u8]) -> (u32, u32, String) {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(file.path(), bytes).expect("write");
    let p = file.path().to_str().expect("path");
    let field = |f: &str| run("vipsheader", &["-f", f, p]).trim().to_string();
    (
        field("width").parse().expect("width"),
        field("height").parse().expect("height"),
        field("vips-loader"),
    )
}

/// `ffprobe` fields of the first stream and the format, as `key=value` lines.
pub fn ffprobe(bytes: &[u8], entries: &str) -> std::collections::BTreeMap<String, String> {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(file.path(), bytes).expect("write");
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            entries,
            "-of",
            "default=noprint_wrappers=1",
            file.path().to_str().expect("path"),
        ],
    );
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An asymmetric photo-like picture made by Pillow (a gradient a channel, blurred
/// noise, a white block near the top left and a red disc low right, so a wrong turn or
/// flip shows), saved by `save`: Python using `im` (RGB) and `p` (the path).
pub fn pillow_picture(name: &str, w: u32, h: u32, save: &str) -> Vec<u8> {
    made(name, |p| {
        let script = format!(
            "from PIL import Image, ImageDraw, ImageFilter, ImageCms\n\
             w, h, p = {w}, {h}, {p:?}\n\
             r = Image.linear_gradient('L').resize((w, h))\n\
             g = Image.linear_gradient('L').rotate(90).resize((w, h))\n\
             b = Image.effect_noise((w, h), 64).filter(ImageFilter.GaussianBlur(3))\n\
             im = Image.merge('RGB', (r, g, b))\n\
             d = ImageDraw.Draw(im)\n\
             d.rectangle([w // 10, h // 10, w // 3, h // 4], fill=(255, 255, 255))\n\
             d.ellipse([w // 2, h // 2, w * 9 // 10, h * 9 // 10], fill=(200, 30, 30))\n\
             {save}\n"
        );
        run(venv_bin("python"), &["-c", &script]);
    })
}

/// A ThumbHash decoded by the reference implementation (npm `thumbhash` under node,
/// installed by `setup.sh test`): (width, height, RGBA pixels).
pub fn reference_thumbhash_rgba(b64: &str) -> (u32, u32, Vec<u8>) {
    let module = crate::harness::tools_dir().join("node/node_modules/thumbhash/thumbhash.js");
    let script = format!(
        "import * as th from {module:?};\n\
         const img = th.thumbHashToRGBA(Uint8Array.from(Buffer.from({b64:?}, 'base64')));\n\
         console.log(JSON.stringify([img.w, img.h, Array.from(img.rgba)]));\n",
        module = module.to_string_lossy()
    );
    let out = run("node", &["--input-type=module", "-e", &script]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("node output");
    let n = |i: usize| v[i].as_u64().expect("a size") as u32;
    let rgba = v[2]
        .as_array()
        .expect("pixels")
        .iter()
        .map(|p| p.as_u64().expect("a byte") as u8)
        .collect();
    (n(0), n(1), rgba)
}
