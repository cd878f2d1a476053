//! Real media for the media tests, made by real tools: libvips' CLI (`vips`),
//! `ffmpeg`, `espeak-ng`, and PyAV (the tools' `venv`, installed by scripts/setup.sh;
//! its bundled FFmpeg has the AMR-NB encoder Debian's lacks). Each maker writes into
//! one directory shared by the test process, so a fixture is made once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The directory fixtures are made in (lives as long as the test process).
fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("fixture dir"))
        .path()
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

/// Makes `name` once with `make(path)`, then returns its bytes.
fn made(name: &str, make: impl FnOnce(&str)) -> Vec<u8> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir().join(name);
    if !path.exists() {
        make(path.to_str().expect("utf-8 path"));
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
        let colour = path(&format!("{name}.v"));
        // Three noise bands: a real colour photo's worth of entropy.
        run(
            "vips",
            &["gaussnoise", &colour, &w.to_string(), &h.to_string()],
        );
        let rgb = path(&format!("{name}.rgb.v"));
        run(
            "vips",
            &["bandjoin", &format!("{colour} {colour} {colour}"), &rgb],
        );
        let uchar = path(&format!("{name}.u.v"));
        run("vips", &["cast", &rgb, &uchar, "uchar"]);
        run("vips", &["copy", &uchar, &format!("{p}{options}")]);
    })
}

/// A smooth gradient (compresses well, decodes slowly when large).
pub fn vips_gradient(name: &str, w: u32, h: u32) -> Vec<u8> {
    made(name, |p| {
        let xyz = path(&format!("{name}.xyz.v"));
        run("vips", &["xyz", &xyz, &w.to_string(), &h.to_string()]);
        let band = path(&format!("{name}.b.v"));
        run("vips", &["extract_band", &xyz, &band, "0"]);
        let scaled = path(&format!("{name}.s.v"));
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
        let rgb = path(&format!("{name}.rgb.v"));
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
