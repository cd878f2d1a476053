//! HEIF in (SPEC §11): HEIC and AVIF pictures accepted by the image grants (a POST form
//! in either dialect, and a presigned PUT), thumbnailed (JPEG by default, WebP by
//! `Accept`) and described by `info=1`. The files here are made by libvips' own
//! `heifsave` (libheif with x265 and aom); real phone and camera files are in
//! `heif_corpus.rs`.

use crate::fixtures::*;
use crate::harness::*;
use crate::storage_suite::{put_grant, uploaded, user_token, Backend, Env};
use filegate::claims::TokenKind;

both_stores!(
    heic_and_avif_pictures_are_taken_and_thumbnailed,
    heic_is_taken_by_a_presigned_put,
);

/// A colourful picture (a gradient a channel, a white block top left) saved by libvips
/// as `name` (its extension picks HEIC or AVIF).
fn heif_picture(name: &str, w: u32, h: u32) -> Vec<u8> {
    let png = pillow_picture(&format!("{name}.png"), w, h, "im.save(p)");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.png");
    std::fs::write(&src, png).unwrap();
    let out = dir.path().join(name);
    run(
        "vips",
        &[
            "copy",
            src.to_str().unwrap(),
            &format!("{}[Q=80]", out.to_str().unwrap()),
        ],
    );
    std::fs::read(out).unwrap()
}

/// The mean colour of an image file (decoded by the `vips` CLI, to PNG, then Pillow).
fn mean_of(bytes: &[u8], ext: &str) -> [f64; 3] {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join(format!("in.{ext}"));
    std::fs::write(&src, bytes).unwrap();
    let png = dir.path().join("out.png");
    run(
        "vips",
        &["copy", src.to_str().unwrap(), png.to_str().unwrap()],
    );
    let out = run(
        venv_bin("python"),
        &[
            "-c",
            &format!(
                "from PIL import Image, ImageStat\nprint(*ImageStat.Stat(Image.open({:?}).convert('RGB')).mean)",
                png
            ),
        ],
    );
    let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    [v[0], v[1], v[2]]
}

fn heic_and_avif_pictures_are_taken_and_thumbnailed(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    for (name, mime) in [("p.heic", "image/heic"), ("p.avif", "image/avif")] {
        let bytes = heif_picture(name, 640, 480);
        let g = uploaded(
            fg,
            "demo",
            &user_token("demo"),
            &format!(
                "/file/upload/chat?file_type=102&to_id=1&file_name={name}&content_type={mime}"
            ),
            name,
            mime,
            &bytes,
        );
        let path = format!(
            "/file/download/chat?app_id=demo&file_sign={}",
            g["file_sign"].as_str().unwrap()
        );
        let get = |query: &str, accept: Option<&str>| {
            let mut req = client()
                .get(fg.url(&format!("{path}{query}")))
                .header("access-token", user_token("demo"));
            if let Some(a) = accept {
                req = req.header("accept", a);
            }
            req.send().unwrap()
        };
        // The original as stored.
        let resp = get("", None);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.bytes().unwrap().as_ref(), bytes.as_slice());
        // A JPEG thumbnail by default, WebP when accepted: the exact size, the
        // picture's colours.
        let resp = get("&image_type=2&w=200&thumbnail_strategy=2", None);
        assert_eq!(resp.status(), 200, "{name}");
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        let thumb = resp.bytes().unwrap().to_vec();
        let (w, h, loader) = vipsheader(&thumb);
        assert_eq!((w, h), (200, 150), "{name} thumbnail ({loader})");
        let want = mean_of(&bytes, name.rsplit('.').next().unwrap());
        let got = mean_of(&thumb, "jpg");
        for i in 0..3 {
            assert!(
                (want[i] - got[i]).abs() < 8.0,
                "{name}: thumbnail mean {got:?} vs the picture's {want:?}"
            );
        }
        let resp = get(
            "&image_type=2&w=100&thumbnail_strategy=2",
            Some("image/webp,*/*"),
        );
        assert_eq!(resp.headers()["content-type"], "image/webp");
        assert_eq!(vipsheader(&resp.bytes().unwrap()).0, 100);
        // A cover of a picture is its thumbnail.
        let resp = get("&image_type=3&w=64&thumbnail_strategy=2", None);
        assert_eq!(resp.status(), 200);
        // Its info says what it is.
        let resp = get("&info=1", None);
        let v = expect_envelope(resp, 200, 200)["data"].clone();
        assert_eq!(v["mime"], mime, "{v}");
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(640), Some(480))
        );
        assert!(v["thumbhash"].is_string(), "{v}");
    }
}

/// The PUT grant (app `putapp`, `upload_method: PUT`) takes a HEIC picture too: the
/// presigned PUT stores it, and its thumbnail is made.
fn heic_is_taken_by_a_presigned_put(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let bytes = heif_picture("put.heic", 320, 240);
    let t = token("putapp", 7, TokenKind::User);
    let g = put_grant(
        fg,
        "putapp",
        &t,
        "/file/upload/chat?file_type=102&to_id=1&file_name=p.heic&content_type=image/heic",
        bytes.len(),
    );
    let (status, body) = put_upload(&g, bytes.clone());
    assert_eq!(status, 200, "PUT: {body}");
    let resp = client()
        .get(fg.url(&format!(
            "/file/download/chat?app_id=putapp&file_sign={}&image_type=2&w=100&thumbnail_strategy=2",
            g["file_sign"].as_str().unwrap()
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(vipsheader(&resp.bytes().unwrap()).0, 100);
}
