//! `info=1` (SPEC §11, issue 21): dimensions as displayed, frames, durations, alpha, a
//! ThumbHash and the average colour, checked against independent tools (vipsheader,
//! ffprobe, Pillow) and the reference ThumbHash (npm `thumbhash` under node).

use std::time::{Duration, Instant};

use filegate::claims::TokenKind;
use serde_json::Value;

use crate::fixtures::*;
use crate::harness::*;
use crate::storage_suite::{pseudo_random, uploaded, user_token};

const INFO_MADE: &str = r#"filegate_transforms_total{kind="info",result="ok"}"#;

/// Uploads `bytes` as a chat file of `file_type`; the download path (no host).
fn chat_file(
    fg: &Filegate,
    file_type: u16,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> String {
    let g = uploaded(
        fg,
        "demo",
        &user_token("demo"),
        &format!("/file/upload/chat?file_type={file_type}&to_id=1&file_name={name}"),
        name,
        content_type,
        bytes,
    );
    format!(
        "/file/download/chat?app_id=demo&file_sign={}",
        g["file_sign"].as_str().unwrap()
    )
}

/// The `data` of an `info=1` answer, and its `X-Cache-Status`.
fn info(fg: &Filegate, path: &str) -> (Value, String) {
    let resp = client()
        .get(fg.url(&format!("{path}&info=1")))
        .header("access-token", user_token("demo"))
        .send()
        .expect("info");
    let cache = resp
        .headers()
        .get("x-cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (expect_envelope(resp, 200, 200)["data"].clone(), cache)
}

fn num(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

/// What the reference implementation reads of a ThumbHash: (approximate aspect
/// ratio, average r, g, b in 0-255).
fn reference_thumbhash(b64: &str) -> (f64, [f64; 3]) {
    let module = tools_dir().join("node/node_modules/thumbhash/thumbhash.js");
    let script = format!(
        "import * as th from {module:?};\n\
         const hash = Uint8Array.from(Buffer.from({b64:?}, 'base64'));\n\
         const avg = th.thumbHashToAverageRGBA(hash);\n\
         const img = th.thumbHashToRGBA(hash);\n\
         console.log(JSON.stringify({{ratio: th.thumbHashToApproximateAspectRatio(hash), r: avg.r, g: avg.g, b: avg.b, w: img.w, h: img.h}}));\n",
        module = module.to_string_lossy()
    );
    let out = run("node", &["--input-type=module", "-e", &script]);
    let v: Value = serde_json::from_str(out.trim()).expect("node output");
    let f = |k: &str| v[k].as_f64().unwrap_or_else(|| panic!("{k} in {v}"));
    (f("ratio"), [f("r") * 255.0, f("g") * 255.0, f("b") * 255.0])
}

/// The mean colour of a picture as Pillow sees it upright (alpha-weighted).
fn pillow_mean(bytes: &[u8]) -> [f64; 3] {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    let script = format!(
        "from PIL import Image, ImageOps\n\
         im = ImageOps.exif_transpose(Image.open({:?})).convert('RGBA')\n\
         px = list(im.getdata())\n\
         w = sum(p[3] for p in px) or 1\n\
         print(' '.join(str(sum(p[i] * p[3] for p in px) / w) for i in range(3)))\n",
        file.path()
    );
    let out = run(venv_bin("python"), &["-c", &script]);
    let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    [v[0], v[1], v[2]]
}

fn hex_colour(v: &Value) -> [f64; 3] {
    let c = v["color"]
        .as_str()
        .unwrap_or_else(|| panic!("no color in {v}"));
    assert!(c.len() == 7 && c.starts_with('#'), "{c}");
    let at = |i: usize| f64::from(u8::from_str_radix(&c[i..i + 2], 16).unwrap());
    [at(1), at(3), at(5)]
}

fn close(a: [f64; 3], b: [f64; 3], within: f64, what: &str) {
    for i in 0..3 {
        assert!(
            (a[i] - b[i]).abs() <= within,
            "{what}: {a:?} vs {b:?} (channel {i}, within {within})"
        );
    }
}

/// The ThumbHash decodes (by the reference) to the picture's aspect and mean colour,
/// and `color` is that mean too.
fn check_placeholder(v: &Value, bytes: &[u8], aspect: f64) {
    let (ratio, avg) = reference_thumbhash(v["thumbhash"].as_str().expect("thumbhash"));
    assert!(
        (ratio - aspect).abs() / aspect < 0.25,
        "ThumbHash aspect {ratio} vs {aspect}"
    );
    let mean = pillow_mean(bytes);
    close(avg, mean, 20.0, "ThumbHash average vs Pillow's mean");
    close(hex_colour(v), mean, 12.0, "color vs Pillow's mean");
}

#[test]
fn images_say_their_displayed_size_frames_alpha_and_placeholder() {
    let fg = Filegate::start();
    // A JPEG stored 300x200 whose EXIF orientation 6 shows it 200x300.
    let rotated = exif_rotated_jpeg(300, 200);
    let path = chat_file(&fg, 102, "r.jpg", "image/jpeg", &rotated);
    let (v, cache) = info(&fg, &path);
    assert_eq!(cache, "MISS");
    let (w, h, loader) = vipsheader(&rotated);
    assert_eq!(
        (w, h),
        (300, 200),
        "vipsheader of the stored JPEG ({loader})"
    );
    assert_eq!((num(&v, "width"), num(&v, "height")), (200, 300), "{v}");
    assert_eq!(num(&v, "orientation"), 6);
    assert_eq!(v["mime"], "image/jpeg");
    assert_eq!(num(&v, "bytes"), rotated.len() as u64);
    assert_eq!(v["has_alpha"], false);
    assert_eq!(num(&v, "frames"), 1);
    check_placeholder(&v, &rotated, 200.0 / 300.0);
    // Again: a hit, nothing made again.
    let made = fg.metric(INFO_MADE);
    let (again, cache) = info(&fg, &path);
    assert_eq!((again, cache.as_str()), (v, "HIT"));
    assert_eq!(fg.metric(INFO_MADE), made);

    // A PNG with alpha (Pillow), a WebP (libvips), an animated GIF (FFmpeg).
    let png = pillow_picture(
        "info-alpha.png",
        160,
        90,
        "im = im.convert('RGBA'); im.putalpha(Image.linear_gradient('L').resize((w, h)))\nim.save(p)",
    );
    let v = info(&fg, &chat_file(&fg, 102, "a.png", "image/png", &png)).0;
    let (pw, ph, _) = vipsheader(&png);
    assert_eq!(
        (num(&v, "width"), num(&v, "height")),
        (u64::from(pw), u64::from(ph))
    );
    assert_eq!(v["has_alpha"], true, "{v}");
    assert_eq!(v["mime"], "image/png");
    check_placeholder(&v, &png, 160.0 / 90.0);

    let webp = vips_image("info.webp", 120, 80, "");
    let v = info(&fg, &chat_file(&fg, 102, "w.webp", "image/webp", &webp)).0;
    let (ww, wh, _) = vipsheader(&webp);
    assert_eq!(
        (num(&v, "width"), num(&v, "height")),
        (u64::from(ww), u64::from(wh))
    );
    assert_eq!(v["mime"], "image/webp");

    let gif = animated_gif(64, 48);
    let v = info(&fg, &chat_file(&fg, 102, "g.gif", "image/gif", &gif)).0;
    let gif_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(gif_file.path(), &gif).unwrap();
    let probed: std::collections::BTreeMap<String, String> = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=width,height,nb_read_frames",
            "-of",
            "default=noprint_wrappers=1",
            gif_file.path().to_str().unwrap(),
        ],
    )
    .lines()
    .filter_map(|l| l.split_once('='))
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        num(&v, "frames").to_string(),
        probed["nb_read_frames"],
        "{v}"
    );
    assert_eq!(num(&v, "width").to_string(), probed["width"]);
    assert_eq!(num(&v, "height").to_string(), probed["height"]);
    assert_eq!(v["mime"], "image/gif");
}

/// A rotated phone-style MP4 (display matrix), a MOV, AMR and MP3 voice, a plain file.
#[test]
fn videos_voice_and_files_say_what_ffprobe_says() {
    let fg = Filegate::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.mp4");
    std::fs::write(&src, h264_mp4(320, 180, 2.0)).unwrap();
    let at = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    // Portrait, as phones record it: stored 320x180, shown 180x320.
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            &at("src.mp4"),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            &at("rot.mp4"),
        ],
    );
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            &at("src.mp4"),
            "-c",
            "copy",
            "-f",
            "mov",
            &at("clip.mov"),
        ],
    );
    let rotated = std::fs::read(at("rot.mp4")).unwrap();
    let side = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream_side_data=rotation",
            "-of",
            "default=noprint_wrappers=1",
            &at("rot.mp4"),
        ],
    );
    assert!(
        side.contains("rotation=-90") || side.contains("rotation=90"),
        "the fixture has no display matrix: {side}"
    );
    let v = info(&fg, &chat_file(&fg, 103, "v.mp4", "video/mp4", &rotated)).0;
    let probed = ffprobe(&rotated, "stream=width,height,nb_frames:format=duration");
    assert_eq!(
        num(&v, "width").to_string(),
        probed["height"],
        "{v} vs {probed:?}"
    );
    assert_eq!(num(&v, "height").to_string(), probed["width"]);
    assert_eq!(num(&v, "frames").to_string(), probed["nb_frames"]);
    let ffprobe_ms = probed["duration"].parse::<f64>().unwrap() * 1000.0;
    assert!(
        (num(&v, "duration_ms") as f64 - ffprobe_ms).abs() <= 50.0,
        "{v} vs {probed:?}"
    );
    assert_eq!(v["mime"], "video/mp4");
    let (ratio, _) = reference_thumbhash(v["thumbhash"].as_str().expect("a video's placeholder"));
    assert!(
        (ratio - 180.0 / 320.0).abs() < 0.2,
        "the placeholder is upright: {ratio}"
    );

    let mov = std::fs::read(at("clip.mov")).unwrap();
    let v = info(&fg, &chat_file(&fg, 103, "c.mov", "video/quicktime", &mov)).0;
    assert_eq!((num(&v, "width"), num(&v, "height")), (320, 180), "{v}");

    let amr = amr_voice(3);
    let v = info(&fg, &chat_file(&fg, 101, "a.amr", "audio/amr", &amr)).0;
    let probed = ffprobe(&amr, "format=duration");
    let ffprobe_ms = probed["duration"].parse::<f64>().unwrap() * 1000.0;
    assert!(
        (num(&v, "duration_ms") as f64 - ffprobe_ms).abs() <= 100.0,
        "{v} vs {probed:?}"
    );
    assert_eq!(v["mime"], "audio/amr");
    assert!(v.get("width").is_none(), "{v}");

    std::fs::write(at("a.amr"), &amr).unwrap();
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            &at("a.amr"),
            "-c:a",
            "libmp3lame",
            "-b:a",
            "32k",
            &at("a.mp3"),
        ],
    );
    let mp3 = std::fs::read(at("a.mp3")).unwrap();
    let v = info(&fg, &chat_file(&fg, 104, "a.mp3", "audio/mpeg", &mp3)).0;
    let probed = ffprobe(&mp3, "format=duration");
    let ffprobe_ms = probed["duration"].parse::<f64>().unwrap() * 1000.0;
    assert!(
        (num(&v, "duration_ms") as f64 - ffprobe_ms).abs() <= 100.0,
        "{v} vs {probed:?}"
    );

    let plain = pseudo_random(5000, 3);
    let v = info(
        &fg,
        &chat_file(&fg, 100, "x.bin", "application/pdf", &plain),
    )
    .0;
    assert_eq!(
        v,
        serde_json::json!({"mime": "application/pdf", "bytes": 5000}),
        "a plain file: its type and size only"
    );
}

#[test]
fn corrupt_media_is_a_4xx_and_info_needs_the_downloads_credentials() {
    let fg = Filegate::start();
    let jpeg = vips_image("info-trunc.jpg", 400, 300, "[Q=90]");
    let truncated = &jpeg[..jpeg.len() / 3];
    let path = chat_file(&fg, 102, "t.jpg", "image/jpeg", truncated);
    let resp = client()
        .get(fg.url(&format!("{path}&info=1")))
        .header("access-token", user_token("demo"))
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().unwrap();
    assert!((400..500).contains(&status), "{status} {body}");
    assert_eq!(body["code"].as_u64(), Some(u64::from(status)), "{body}");
    let garbage = chat_file(&fg, 103, "g.mp4", "video/mp4", &pseudo_random(4000, 1));
    let resp = client()
        .get(fg.url(&format!("{garbage}&info=1")))
        .header("access-token", user_token("demo"))
        .send()
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    // No credential, another app's token.
    let ok = chat_file(&fg, 102, "o.jpg", "image/jpeg", &jpeg);
    let resp = client()
        .get(fg.url(&format!("{ok}&info=1")))
        .send()
        .unwrap();
    expect_envelope(resp, 401, 10003);
    let resp = client()
        .get(fg.url(&format!("{ok}&info=1")))
        .header("access-token", token("other", 7, TokenKind::User))
        .send()
        .unwrap();
    assert!(resp.status().is_client_error());
    let resp = client()
        .get(fg.url(&format!("{ok}&info=2")))
        .header("access-token", user_token("demo"))
        .send()
        .unwrap();
    expect_envelope(resp, 400, 400);
}

#[test]
fn an_eager_info_is_a_hit_on_first_ask() {
    let fg = Filegate::start_with(Setup {
        apps: "apps:\n  demo:\n    secrets: [\"new-secret-0123456789\"]\n    eager:\n      - {info: 1}\n".into(),
        ..Setup::default()
    });
    let jpeg = vips_gradient("info-eager.jpg", 640, 480);
    let path = chat_file(&fg, 102, "e.jpg", "image/jpeg", &jpeg);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fg.metric(INFO_MADE) < 1.0 {
        assert!(Instant::now() < deadline, "the eager info was never made");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (v, cache) = info(&fg, &path);
    assert_eq!(cache, "HIT", "{v}");
    assert_eq!((num(&v, "width"), num(&v, "height")), (640, 480));
    assert_eq!(fg.metric(INFO_MADE), 1.0);
}
