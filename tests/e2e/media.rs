//! Thumbnails, covers and MP3s over real HTTP, from real media made by real tools
//! (see `fixtures.rs`); outputs decoded by `vipsheader` / `ffprobe`, as a client
//! would see them. Also: single flight, `_derived/` reuse across a restart, hostile
//! media, the pool's queue bound, and a real thumbor as third-party processor.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;
use reqwest::blocking::Response;

use crate::fixtures::*;
use crate::harness::*;

/// Uploads a chat file and returns its download URL (with app_id and file_sign).
fn upload_chat(fg: &Filegate, file_type: u16, name: &str, mime: &str, bytes: Vec<u8>) -> String {
    let t = token("demo", 7, TokenKind::User);
    let g = grant(
        fg,
        "demo",
        &t,
        &format!("/file/upload/chat?file_type={file_type}&to_id=8&to_type=1&file_name={name}&content_type={mime}"),
    );
    let (status, body) = post_upload(&g, name, mime, bytes);
    assert_eq!(status, 200, "upload {name}: {body}");
    g["download_url"]
        .as_str()
        .expect("download_url")
        .to_string()
}

fn get(url: &str, extra: &str, headers: &[(&str, &str)]) -> Response {
    let mut req = client()
        .get(format!("{url}{extra}"))
        .header("access-token", token("demo", 7, TokenKind::User));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().expect("download")
}

fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Asserts a 200 image and returns (width, height, loader, bytes).
fn image(resp: Response, content_type: &str) -> (u32, u32, String, Vec<u8>) {
    let status = resp.status().as_u16();
    let ct = header(&resp, "content-type");
    let vary = header(&resp, "vary");
    let bytes = resp.bytes().expect("body").to_vec();
    assert_eq!(
        status,
        200,
        "{}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
    );
    assert_eq!(ct, content_type);
    assert!(vary.to_ascii_lowercase().contains("accept"), "Vary: {vary}");
    let (w, h, loader) = vipsheader(&bytes);
    (w, h, loader, bytes)
}

fn near(got: u32, want: u32) -> bool {
    got.abs_diff(want) <= 1
}

/// A source image and what its thumbnails must be.
struct ImageCase {
    name: &'static str,
    mime: &'static str,
    bytes: Vec<u8>,
    /// Displayed size (after EXIF orientation).
    shown: (u32, u32),
    out_type: &'static str,
    loader: &'static str,
}

fn image_case(
    (name, mime, bytes, shown, out_type, loader): (
        &'static str,
        &'static str,
        Vec<u8>,
        (u32, u32),
        &'static str,
        &'static str,
    ),
) -> ImageCase {
    ImageCase {
        name,
        mime,
        bytes,
        shown,
        out_type,
        loader,
    }
}

#[test]
fn thumbnails_fit_the_box_keep_the_aspect_and_never_upscale() {
    let fg = Filegate::start();
    let cases = [
        (
            "p.jpg",
            "image/jpeg",
            vips_image("p.jpg", 1200, 800, "[Q=90]"),
            (1200, 800),
            "image/jpeg",
            "jpegload",
        ),
        (
            "p.png",
            "image/png",
            vips_image("p.png", 900, 600, ""),
            (900, 600),
            "image/png",
            "pngload",
        ),
        (
            "p.webp",
            "image/webp",
            vips_image("p.webp", 1000, 500, ""),
            (1000, 500),
            "image/webp",
            "webpload",
        ),
        (
            "a.gif",
            "image/gif",
            animated_gif(320, 240),
            (320, 240),
            "image/gif",
            "gifload",
        ),
        // Stored 600×300 with EXIF orientation 6: it displays as 300×600.
        (
            "r.jpg",
            "image/jpeg",
            exif_rotated_jpeg(600, 300),
            (300, 600),
            "image/jpeg",
            "jpegload",
        ),
    ]
    .map(image_case);
    for case in cases {
        let ImageCase {
            name,
            mime,
            bytes,
            shown: (sw, sh),
            out_type,
            loader,
        } = case;
        let url = upload_chat(&fg, 102, name, mime, bytes);
        let boxes: [(Option<u32>, Option<u32>); 5] = [
            (Some(200), Some(200)),
            (Some(150), None),
            (None, Some(100)),
            (Some(5000), Some(5000)),
            (None, None),
        ];
        for (bw, bh) in boxes {
            let mut q = "&image_type=2&thumbnail_strategy=2".to_string();
            if let Some(w) = bw {
                q.push_str(&format!("&w={w}"));
            }
            if let Some(h) = bh {
                q.push_str(&format!("&h={h}"));
            }
            let (w, h, got_loader, _) = image(get(&url, &q, &[]), out_type);
            assert_eq!(got_loader, loader, "{name} {q}");
            // The default box is 200×200; the clamp (2048) is above every source.
            let (bw, bh) = match (bw, bh) {
                (None, None) => (Some(200), Some(200)),
                other => other,
            };
            let scale = [
                bw.map(|b| b as f64 / sw as f64),
                bh.map(|b| b as f64 / sh as f64),
            ]
            .into_iter()
            .flatten()
            .fold(1.0f64, f64::min);
            let (ew, eh) = (
                (sw as f64 * scale).round() as u32,
                (sh as f64 * scale).round() as u32,
            );
            assert!(
                near(w, ew) && near(h, eh),
                "{name} {q}: got {w}x{h}, want {ew}x{eh}"
            );
            assert!(w <= sw && h <= sh, "{name} {q}: upscaled to {w}x{h}");
        }
    }
    // The GIF's thumbnail is its first frame only.
    let url = upload_chat(&fg, 102, "b.gif", "image/gif", animated_gif(320, 240));
    let (_, _, _, gif) = image(
        get(&url, "&image_type=2&w=100&thumbnail_strategy=2", &[]),
        "image/gif",
    );
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &gif).unwrap();
    let pages = run(
        "vipsheader",
        &["-f", "n-pages", file.path().to_str().unwrap()],
    );
    assert_eq!(pages.trim(), "1");
}

#[test]
fn accept_negotiation_picks_webp_or_avif_and_sets_vary() {
    let fg = Filegate::start();
    let url = upload_chat(
        &fg,
        102,
        "n.jpg",
        "image/jpeg",
        vips_image("n.jpg", 800, 600, ""),
    );
    let q = "&image_type=2&w=200&thumbnail_strategy=2";
    let plain = get(&url, q, &[]);
    let plain_etag = header(&plain, "etag");
    let (w, h, loader, _) = image(plain, "image/jpeg");
    assert_eq!((w, h, loader.as_str()), (200, 150, "jpegload"));

    let webp = get(&url, q, &[("accept", "image/webp,*/*")]);
    let webp_etag = header(&webp, "etag");
    let (w, h, loader, _) = image(webp, "image/webp");
    assert_eq!((w, h, loader.as_str()), (200, 150, "webpload"));
    assert_ne!(plain_etag, webp_etag, "each variant has its own ETag");

    // AVIF only where this libvips can encode it (same libvips as the CLI).
    let probe = tempfile::tempdir().unwrap();
    let avif_ok = std::process::Command::new("vips")
        .args([
            "black",
            probe.path().join("x.avif").to_str().unwrap(),
            "8",
            "8",
        ])
        .status()
        .is_ok_and(|s| s.success());
    let avif = get(
        &url,
        q,
        &[("accept", "image/avif,image/webp,image/apng,*/*;q=0.8")],
    );
    if avif_ok {
        let (w, h, loader, _) = image(avif, "image/avif");
        assert_eq!((w, h, loader.as_str()), (200, 150, "heifload"));
    } else {
        image(avif, "image/webp");
    }
    // q=0 refuses a type.
    image(get(&url, q, &[("accept", "image/webp;q=0")]), "image/jpeg");
    // If-None-Match with the variant's ETag: 304 without a body.
    let again = get(
        &url,
        q,
        &[("accept", "image/webp"), ("if-none-match", &webp_etag)],
    );
    assert_eq!(again.status(), 304);
}

#[test]
fn video_cover_is_a_jpeg_of_the_right_size_and_non_video_is_415() {
    let fg = Filegate::start();
    let url = upload_chat(&fg, 103, "v.mp4", "video/mp4", h264_mp4(640, 360, 3.0));
    let (w, h, loader, _) = image(get(&url, "&image_type=3&w=320", &[]), "image/jpeg");
    assert_eq!((w, h, loader.as_str()), (320, 180, "jpegload"));
    let (w, h, _, _) = image(get(&url, "&image_type=3", &[]), "image/jpeg");
    assert_eq!((w, h), (200, 113), "the default box");
    // Shorter than the cover offset (1 s): frame 0.
    let short = upload_chat(&fg, 103, "s.mp4", "video/mp4", h264_mp4(480, 270, 0.4));
    let (w, h, _, _) = image(get(&short, "&image_type=3&h=135", &[]), "image/jpeg");
    assert_eq!((w, h), (240, 135));
    // A cover of a plain file, or a thumbnail of a video: 415 envelopes.
    let file = upload_chat(
        &fg,
        100,
        "doc.pdf",
        "application/pdf",
        b"%PDF-1.4 not much".to_vec(),
    );
    expect_envelope(get(&file, "&image_type=3", &[]), 415, 415);
    expect_envelope(get(&url, "&image_type=2", &[]), 415, 415);
    // A cover of a picture is its thumbnail.
    let pic = upload_chat(
        &fg,
        102,
        "c.png",
        "image/png",
        vips_image("c.png", 400, 200, ""),
    );
    let (w, h, loader, _) = image(
        get(&pic, "&image_type=3&w=100&thumbnail_strategy=2", &[]),
        "image/png",
    );
    assert_eq!((w, h, loader.as_str()), (100, 50, "pngload"));
}

#[test]
fn voice_amr_becomes_an_exact_mono_mp3_with_working_ranges() {
    let fg = Filegate::start();
    let amr = amr_voice(60);
    let source = {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &amr).unwrap();
        let out = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-count_packets",
                "-select_streams",
                "a:0",
                "-show_entries",
                "stream=nb_read_packets,codec_name",
                "-of",
                "default=noprint_wrappers=1",
                file.path().to_str().unwrap(),
            ],
        );
        assert!(out.contains("codec_name=amr_nb"), "{out}");
        let packets: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("nb_read_packets="))
            .and_then(|v| v.trim().parse().ok())
            .expect("packets");
        packets * 0.020
    };
    assert!((source - 60.0).abs() < 0.1, "fixture lasts {source} s");
    let url = upload_chat(&fg, 101, "hello.amr", "audio/amr", amr);
    let started = Instant::now();
    let resp = get(&url, "&format=mp3", &[]);
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "audio/mpeg");
    assert_eq!(header(&resp, "accept-ranges"), "bytes");
    assert!(header(&resp, "content-disposition").contains("hello.mp3"));
    let etag = header(&resp, "etag");
    let mp3 = resp.bytes().unwrap().to_vec();
    let probe = ffprobe(
        &mp3,
        "format=format_name,duration:stream=codec_name,channels,sample_rate",
    );
    assert_eq!(probe["format_name"], "mp3");
    assert_eq!(probe["codec_name"], "mp3");
    assert_eq!(probe["channels"], "1");
    assert_eq!(probe["sample_rate"], "16000");
    let duration: f64 = probe["duration"].parse().unwrap();
    assert!(
        (duration - source).abs() <= 0.1,
        "mp3 lasts {duration} s, the source {source} s"
    );
    // The Xing/LAME header is there (durations exact without scanning).
    let head = &mp3[..mp3.len().min(4096)];
    assert!(
        head.windows(4).any(|w| w == b"Xing" || w == b"Info"),
        "no Xing/Info frame"
    );
    println!("60 s AMR → MP3 ({} bytes) in {took:?}", mp3.len());

    // `source=miniprogram` implies mp3: the same result.
    let mini = get(&url, "&source=miniprogram", &[]);
    assert_eq!(header(&mini, "etag"), etag);
    assert_eq!(mini.bytes().unwrap().to_vec(), mp3);
    // Ranges.
    let part = get(&url, "&format=mp3", &[("range", "bytes=100-199")]);
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 100-199/{}", mp3.len())
    );
    assert_eq!(part.bytes().unwrap().to_vec(), mp3[100..200].to_vec());
    let tail = get(&url, "&format=mp3", &[("range", "bytes=-50")]);
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.bytes().unwrap().to_vec(),
        mp3[mp3.len() - 50..].to_vec()
    );
    let past = get(
        &url,
        "&format=mp3",
        &[("range", &format!("bytes={}-", mp3.len() + 10))],
    );
    assert_eq!(past.status(), 416);
    // format=amr (the default) is the original.
    let original = get(&url, "", &[]);
    assert_eq!(header(&original, "content-type"), "audio/amr");
}

#[test]
fn concurrent_cold_requests_make_one_fetch_and_one_transform_and_a_restart_reuses_derived() {
    let setup = Setup::default();
    let fg = Filegate::start_with(setup.clone());
    let url = upload_chat(
        &fg,
        102,
        "sf.jpg",
        "image/jpeg",
        vips_image("sf.jpg", 2000, 1500, ""),
    );
    let q = "&image_type=2&w=320&h=320&thumbnail_strategy=2";
    let barrier = Arc::new(Barrier::new(32));
    let handles: Vec<_> = (0..32)
        .map(|_| {
            let (barrier, url) = (barrier.clone(), url.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let resp = get(&url, q, &[]);
                (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let first = results[0].1.clone();
    for (status, body) in &results {
        assert_eq!(*status, 200);
        assert_eq!(body, &first, "every caller gets the same result");
    }
    assert_eq!(vipsheader(&first).0, 320);
    assert_eq!(fg.metric("filegate_origin_fetches_total"), 1.0);
    assert_eq!(
        fg.metric(r#"filegate_transforms_total{kind="thumbnail",result="ok"}"#),
        1.0
    );
    // Every caller was counted once: waiting on the one transform (MISS) or, arriving
    // after it, served from memory (HIT).
    let derived = |fg: &Filegate, tier: &str, result: &str| {
        fg.metric(&format!(
            r#"filegate_cache_requests_total{{kind="derived",result="{result}",tier="{tier}"}}"#
        ))
    };
    let (miss, hit) = (derived(&fg, "none", "miss"), derived(&fg, "memory", "hit"));
    assert!(
        miss >= 1.0 && miss + hit == 32.0,
        "{miss} misses, {hit} hits"
    );
    assert!(fg.metric(r#"filegate_cache_bytes{tier="memory"}"#) >= first.len() as f64);
    assert_eq!(header(&get(&url, q, &[]), "x-cache-status"), "HIT");

    // A restart on the same store: served from <app>/_derived/, nothing made.
    let old_base = fg.base.clone();
    let dir = fg.stop();
    let fg = Filegate::start_in(setup, dir);
    // The restarted process listens on fresh ports.
    let url = url.replace(&old_base, &fg.base);
    let resp = get(&url, q, &[]);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().to_vec(), first);
    assert_eq!(fg.metric("filegate_origin_fetches_total"), 0.0);
    assert_eq!(
        fg.metric(r#"filegate_transforms_total{kind="thumbnail",result="ok"}"#),
        0.0
    );
    // Not in this process's memory: a miss at the edge, answered from the copy.
    assert_eq!(derived(&fg, "none", "miss"), 1.0);
    let derived = fg.data_dir().join("objects/demo/_derived");
    assert_eq!(std::fs::read_dir(derived).unwrap().count(), 1);
}

#[test]
fn redirect_mode_sends_the_client_to_the_derived_copy() {
    let fg = Filegate::start();
    let t = token("redirect", 3, TokenKind::User);
    let g = grant(&fg, "redirect", &t, "/file/upload/avatar/user");
    let (status, _) = post_upload(
        &g,
        "me.jpg",
        "image/jpeg",
        vips_image("me.jpg", 640, 480, ""),
    );
    assert_eq!(status, 200);
    let name = g["object_name"].as_str().unwrap();
    let resp = client()
        .get(fg.url(&format!(
            "/file/download/avatar?app_id=redirect&object_name={name}&image_type=2&w=64&thumbnail_strategy=2"
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(header(&resp, "content-length"), "0");
    let location = header(&resp, "location");
    assert!(location.contains("/redirect/_derived/"), "{location}");
    let thumb = client().get(&location).send().unwrap();
    assert_eq!(thumb.status(), 200);
    let bytes = thumb.bytes().unwrap().to_vec();
    assert_eq!(vipsheader(&bytes), (64, 48, "jpegload".to_string()));
}

/// Peak resident memory of a process, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .expect("VmHWM")
}

both_stores!(hostile_media_is_the_right_envelope_in_under_a_second_with_bounded_memory);

fn hostile_media_is_the_right_envelope_in_under_a_second_with_bounded_memory(
    backend: crate::storage_suite::Backend,
) {
    let env = crate::storage_suite::Env::new(backend, |s| {
        s.extra = "media:\n  max_audio_duration: 30s\n".into();
    });
    let fg = &env.fg;
    // Warm up libvips and FFmpeg, then take the baseline.
    let ok = upload_chat(
        fg,
        102,
        "ok.jpg",
        "image/jpeg",
        vips_image("ok.jpg", 640, 480, ""),
    );
    image(
        get(&ok, "&image_type=2&w=50&thumbnail_strategy=2", &[]),
        "image/jpeg",
    );
    let short = upload_chat(fg, 101, "ok.amr", "audio/amr", amr_voice(5));
    assert_eq!(get(&short, "&format=mp3", &[]).status(), 200);
    let baseline = peak_rss_kib(fg.pid());

    let flood = pixel_flood_png(60_000, 60_000);
    assert!(
        flood.len() < 4096,
        "the flood PNG is tiny ({} bytes)",
        flood.len()
    );
    let jpeg = vips_image("t.jpg", 1600, 1200, "[Q=95]");
    let truncated = jpeg[..jpeg.len() / 2].to_vec();
    let random: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let svg = br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="4000" height="4000"><rect width="100%" height="100%" fill="red"/></svg>"#.to_vec();
    let mut garbage_amr = b"#!AMR\n".to_vec();
    garbage_amr.extend(random.iter().take(8_000));
    // (what, file_type, name, mime, bytes, query, status)
    type Case = (
        &'static str,
        u16,
        &'static str,
        &'static str,
        Vec<u8>,
        &'static str,
        u16,
    );
    let cases: Vec<Case> = vec![
        (
            "pixel flood PNG",
            102,
            "flood.png",
            "image/png",
            flood,
            "&image_type=2&w=100&thumbnail_strategy=2",
            413,
        ),
        (
            "truncated JPEG",
            102,
            "cut.jpg",
            "image/jpeg",
            truncated,
            "&image_type=2&w=100&thumbnail_strategy=2",
            422,
        ),
        (
            "random bytes .jpg",
            102,
            "noise.jpg",
            "image/jpeg",
            random.clone(),
            "&image_type=2&w=100&thumbnail_strategy=2",
            422,
        ),
        (
            "SVG",
            102,
            "vector.png",
            "image/png",
            svg,
            "&image_type=2&w=100&thumbnail_strategy=2",
            415,
        ),
        (
            "AMR header + garbage",
            101,
            "bad.amr",
            "audio/amr",
            garbage_amr,
            "&format=mp3",
            422,
        ),
        (
            "over-long audio",
            101,
            "long.amr",
            "audio/amr",
            amr_voice(60),
            "&format=mp3",
            413,
        ),
        (
            "random bytes as video",
            103,
            "noise.mp4",
            "video/mp4",
            random,
            "&image_type=3",
            422,
        ),
    ];
    let mut urls = Vec::new();
    for (what, file_type, name, mime, bytes, q, status) in cases {
        let url = upload_chat(fg, file_type, name, mime, bytes);
        let started = Instant::now();
        let resp = get(&url, q, &[]);
        let took = started.elapsed();
        let body = expect_envelope(resp, status, u64::from(status));
        println!("{what}: {status} in {took:?}: {}", body["message"]);
        assert!(took < Duration::from_secs(1), "{what} took {took:?}");
        urls.push((what, url, q, status));
    }
    let peak = peak_rss_kib(fg.pid());
    println!("peak RSS: {baseline} KiB before the hostile media, {peak} KiB after");
    assert!(
        peak.saturating_sub(baseline) < 64 * 1024,
        "peak RSS grew by {} KiB",
        peak - baseline
    );
    // Failures are not cached: each request, asked again, is judged again (the
    // transform runs and refuses again) and answers the same error.
    let rejected = |fg: &Filegate| {
        ["thumbnail", "cover", "mp3"]
            .iter()
            .map(|k| {
                fg.metric(&format!(
                    r#"filegate_transforms_total{{kind="{k}",result="rejected"}}"#
                ))
            })
            .sum::<f64>()
    };
    let before = rejected(fg);
    let mut judged_by_a_transform = 0;
    for (what, url, q, status) in &urls {
        let once = rejected(fg);
        expect_envelope(get(url, q, &[]), *status, u64::from(*status));
        if rejected(fg) > once {
            judged_by_a_transform += 1;
        }
        println!("{what}: {status} again");
    }
    assert!(
        judged_by_a_transform >= 3,
        "repeated failures must be judged again, not served from a cache ({judged_by_a_transform})"
    );
    assert!(rejected(fg) >= before + 3.0);
}

#[test]
fn past_the_queue_bound_503_with_retry_after_while_hits_are_served() {
    let fg = Filegate::start_with(Setup {
        extra: "media:\n  workers: 1\n  queue: 1\n  retry_after: 3s\n".into(),
        ..Setup::default()
    });
    let small = upload_chat(
        &fg,
        102,
        "hit.jpg",
        "image/jpeg",
        vips_image("hit.jpg", 320, 240, ""),
    );
    let hit_q = "&image_type=2&w=40&thumbnail_strategy=2";
    image(get(&small, hit_q, &[]), "image/jpeg");
    // A large PNG: no shrink-on-load, so each thumbnail decodes all of it.
    let big = upload_chat(
        &fg,
        102,
        "big.png",
        "image/png",
        vips_gradient("big.png", 7000, 7000),
    );
    let barrier = Arc::new(Barrier::new(8));
    let slow: Vec<_> = (0..8u32)
        .map(|i| {
            let (barrier, url) = (barrier.clone(), big.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let resp = get(
                    &url,
                    &format!("&image_type=2&w={}&thumbnail_strategy=2", 100 + i),
                    &[],
                );
                let retry = header(&resp, "retry-after");
                let status = resp.status().as_u16();
                let body = resp.text().unwrap_or_default();
                (status, retry, body)
            })
        })
        .collect();
    // While the pool is full (one running, one waiting), a cached result is served.
    let deadline = Instant::now() + Duration::from_secs(20);
    while fg.metric("filegate_transform_queue_depth") < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        fg.metric("filegate_transform_queue_depth"),
        1.0,
        "the queue filled up"
    );
    let hit = get(&small, hit_q, &[]);
    assert_eq!(hit.status(), 200, "a cache hit does not wait for the pool");
    let results: Vec<_> = slow.into_iter().map(|h| h.join().unwrap()).collect();
    let busy: Vec<_> = results.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!busy.is_empty(), "{results:?}");
    for (status, retry, body) in &results {
        match status {
            200 => {}
            503 => {
                assert_eq!(retry, "3");
                let v: serde_json::Value = serde_json::from_str(body).unwrap();
                assert_eq!(v["code"], 503);
                assert!(v["data"].is_null());
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(fg.metric(r#"filegate_transforms_total{kind="thumbnail",result="busy"}"#) >= 1.0);
}

/// A real thumbor (PyPI `thumbor`, in the tools' venv) on a free port.
struct Thumbor {
    child: std::process::Child,
    base: String,
}

impl Thumbor {
    fn start() -> Thumbor {
        let port = free_port();
        let child = std::process::Command::new(venv_bin("thumbor"))
            .args(["-p", &port.to_string(), "-i", "127.0.0.1", "-l", "error"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("thumbor (run scripts/setup.sh)");
        // Owned from here on: dropped (killed and reaped) on every path.
        let thumbor = Thumbor {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if client()
                .get(format!("{}/healthcheck", thumbor.base))
                .send()
                .is_ok_and(|r| r.status() == 200)
            {
                return thumbor;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("thumbor did not start");
    }
}

impl Drop for Thumbor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn thumbnail_strategy_1_uses_a_real_thumbor_and_caches_its_answer() {
    let thumbor = Thumbor::start();
    let apps = format!(
        "apps:\n  demo:\n    secrets: [\"{DEMO_SECRET}\"]\n    thumbnail_processor:\n      url: {}/unsafe/fit-in/{{w}}x{{h}}/{{source_url}}\n      timeout: 10s\n  other:\n    secrets: [\"{OTHER_SECRET}\"]\n    thumbnail_processor:\n      url: http://127.0.0.1:{}/unsafe/fit-in/{{w}}x{{h}}/{{source_url}}\n      timeout: 2s\n",
        thumbor.base,
        free_port()
    );
    let fg = Filegate::start_with(Setup {
        apps,
        ..Setup::default()
    });
    let url = upload_chat(
        &fg,
        102,
        "th.jpg",
        "image/jpeg",
        vips_image("th.jpg", 1200, 800, ""),
    );
    // thumbnail_strategy=1 is the API's default.
    let (w, h, loader, first) = image(get(&url, "&image_type=2&w=300&h=300", &[]), "image/jpeg");
    assert_eq!((w, h, loader.as_str()), (300, 200, "jpegload"));
    assert_eq!(
        fg.metric(r#"filegate_transforms_total{kind="processor",result="ok"}"#),
        1.0
    );
    // Cached like filegate's own results: thumbor is not asked again.
    let (_, _, _, again) = image(get(&url, "&image_type=2&w=300&h=300", &[]), "image/jpeg");
    assert_eq!(again, first);
    assert_eq!(
        fg.metric(r#"filegate_transforms_total{kind="processor",result="ok"}"#),
        1.0
    );
    // Strategy 2: filegate makes it itself.
    image(
        get(&url, "&image_type=2&w=300&h=300&thumbnail_strategy=2", &[]),
        "image/jpeg",
    );
    assert_eq!(
        fg.metric(r#"filegate_transforms_total{kind="thumbnail",result="ok"}"#),
        1.0
    );
    // A processor that is down: 502 envelope, nothing cached.
    let t = token("other", 1, TokenKind::User);
    let g = grant(&fg, "other", &t, "/file/upload/avatar/user");
    let (status, _) = post_upload(&g, "o.jpg", "image/jpeg", vips_image("o.jpg", 300, 300, ""));
    assert_eq!(status, 200);
    let resp = client()
        .get(fg.url(&format!(
            "/file/download/avatar?app_id=other&object_name={}&image_type=2&w=50",
            g["object_name"].as_str().unwrap()
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    expect_envelope(resp, 502, 502);
}

/// A real S3-compatible server (s3s-fs, in the tools' bin) on a free port, with one
/// bucket.
struct S3sFs {
    child: std::process::Child,
    endpoint: String,
    _root: tempfile::TempDir,
}

impl S3sFs {
    const KEY: &'static str = "AKIAFILEGATETEST";
    const SECRET: &'static str = "filegate-test-secret-key-0123456789";

    fn start() -> S3sFs {
        let root = tempfile::tempdir().expect("s3 root");
        std::fs::create_dir(root.path().join("filegate")).expect("bucket dir");
        let port = free_port();
        let child = std::process::Command::new(tool("bin/s3s-fs"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                Self::KEY,
                "--secret-key",
                Self::SECRET,
                root.path().to_str().expect("path"),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn s3s-fs");
        let server = S3sFs {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            _root: root,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("s3s-fs did not start");
    }

    fn store_yaml(&self) -> String {
        format!(
            "store:\n  kind: s3\n  endpoint: {}\n  region: us-east-1\n  bucket: filegate\n  access_key_id: {}\n  secret_access_key: {}\n  path_style: true\n",
            self.endpoint,
            Self::KEY,
            Self::SECRET
        )
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn two_nodes_on_one_s3_store_share_derived_results() {
    let s3 = S3sFs::start();
    let setup = Setup {
        store: Some(s3.store_yaml()),
        ..Setup::default()
    };
    let a = Filegate::start_with(setup.clone());
    let b = Filegate::start_with(setup);
    let url = upload_chat(
        &a,
        102,
        "s3.jpg",
        "image/jpeg",
        vips_image("s3.jpg", 1024, 768, ""),
    );
    let q = "&image_type=2&w=256&thumbnail_strategy=2";
    let (w, h, _, made) = image(get(&url, q, &[]), "image/jpeg");
    assert_eq!((w, h), (256, 192));
    assert_eq!(
        a.metric(r#"filegate_transforms_total{kind="thumbnail",result="ok"}"#),
        1.0
    );
    // The other node finds the result under <app>/_derived/ in the shared store.
    let on_b = url.replace(&a.base, &b.base);
    let (_, _, _, reused) = image(get(&on_b, q, &[]), "image/jpeg");
    assert_eq!(reused, made);
    assert_eq!(
        b.metric(r#"filegate_transforms_total{kind="thumbnail",result="ok"}"#),
        0.0
    );
    assert_eq!(b.metric("filegate_origin_fetches_total"), 0.0);
    assert_eq!(
        b.metric(r#"filegate_cache_requests_total{kind="derived",result="miss",tier="none"}"#),
        1.0
    );
    // And an MP3 made on B is reused by A.
    let voice = upload_chat(&b, 101, "v.amr", "audio/amr", amr_voice(5));
    let first = get(&voice, "&format=mp3", &[]).bytes().unwrap().to_vec();
    let on_a = voice.replace(&b.base, &a.base);
    assert_eq!(
        get(&on_a, "&format=mp3", &[]).bytes().unwrap().to_vec(),
        first
    );
    assert_eq!(
        a.metric(r#"filegate_transforms_total{kind="mp3",result="ok"}"#),
        0.0
    );
    // Redirect mode: a presigned URL of the store's _derived/ copy, which the store
    // itself verifies and serves.
    let t = token("redirect", 3, TokenKind::User);
    let g = grant(&a, "redirect", &t, "/file/upload/avatar/user");
    let (status, body) = post_upload(&g, "r.jpg", "image/jpeg", vips_image("r.jpg", 400, 300, ""));
    assert_eq!(status, 200, "{body}");
    let resp = client()
        .get(b.url(&format!(
            "/file/download/avatar?app_id=redirect&object_name={}&image_type=2&w=100&thumbnail_strategy=2",
            g["object_name"].as_str().unwrap()
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 302);
    let location = header(&resp, "location");
    assert!(location.starts_with(&s3.endpoint), "{location}");
    assert!(location.contains("/redirect/_derived/"), "{location}");
    let thumb = client().get(&location).send().unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(vipsheader(&thumb.bytes().unwrap()).0, 100);
}
