//! Renditions (issue 20, SPEC §11): `format=` on an image original answers the whole
//! picture in that format, at most `media.max_display` on its long side; `format=auto`
//! picks by `Accept` with `Vary: Accept`. A rendition is cached (a `HIT` the second
//! time, no second transform), made once under concurrent requests, and eager-able.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::fixtures::{vips_gradient, vipsheader};
use crate::harness::*;
use crate::storage_suite::uploaded;

const RENDITIONS_MADE: &str = r#"filegate_transforms_total{kind="rendition",result="ok"}"#;

const APPS: &str = r#"
apps:
  demo:
    secrets: ["new-secret-0123456789"]
    eager:
      - {format: webp}
  other:
    secrets: ["other-secret-0123456789"]
"#;

fn upload(fg: &Filegate, app: &str, name: &str, mime: &str, bytes: &[u8]) -> String {
    let token = token(app, 7, filegate::claims::TokenKind::User);
    let g = uploaded(
        fg,
        app,
        &token,
        &format!("/file/upload/chat?file_type=102&to_id=1&file_name={name}&content_type={mime}"),
        name,
        mime,
        bytes,
    );
    format!(
        "/file/download/chat?app_id={app}&file_sign={}",
        g["file_sign"].as_str().unwrap()
    )
}

fn get(fg: &Filegate, app: &str, path: &str, accept: Option<&str>) -> reqwest::blocking::Response {
    let mut req = client().get(fg.url(path)).header(
        "access-token",
        token(app, 7, filegate::claims::TokenKind::User),
    );
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    req.send().unwrap()
}

#[test]
fn renditions_are_sized_cached_made_once_and_eager() {
    let fg = Filegate::start_with(Setup {
        apps: APPS.to_string(),
        extra: "media:\n  max_display: 1000\n".to_string(),
        ..Setup::default()
    });
    let picture = vips_gradient("rendition-1600.jpg", 1600, 1200);
    let path = upload(&fg, "other", "p.jpg", "image/jpeg", &picture);

    // PNG of the picture, its long side at max_display; then a hit, made no more.
    let resp = get(&fg, "other", &format!("{path}&format=png"), None);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["x-cache-status"], "MISS");
    let (w, h, loader) = vipsheader(&resp.bytes().unwrap());
    assert_eq!((w, h, loader.as_str()), (1000, 750, "pngload"));
    let made = fg.metric(RENDITIONS_MADE);
    let resp = get(&fg, "other", &format!("{path}&format=png"), None);
    assert_eq!(resp.headers()["x-cache-status"], "HIT");
    assert_eq!(fg.metric(RENDITIONS_MADE), made);

    // Eight clients at once ask for a rendition nobody made yet: one transform.
    let before = fg.metric(RENDITIONS_MADE);
    std::thread::scope(|s| {
        let answers: Vec<_> = (0..8)
            .map(|_| s.spawn(|| get(&fg, "other", &format!("{path}&format=webp"), None)))
            .collect();
        for a in answers {
            let resp = a.join().unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.headers()["content-type"], "image/webp");
        }
    });
    assert_eq!(fg.metric(RENDITIONS_MADE) - before, 1.0);

    // auto: a JPEG is the original for anyone, with Vary: Accept.
    let resp = get(
        &fg,
        "other",
        &format!("{path}&format=auto"),
        Some("image/webp,*/*"),
    );
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert!(resp.headers()["vary"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("accept"));
    assert_eq!(resp.bytes().unwrap().as_ref(), picture.as_slice());

    // A plain file has no rendition: 415 in the envelope.
    let g = uploaded(
        &fg,
        "other",
        &token("other", 7, filegate::claims::TokenKind::User),
        "/file/upload/chat?file_type=100&to_id=1&file_name=n.txt&content_type=text/plain",
        "n.txt",
        "text/plain",
        b"not a picture",
    );
    let resp = get(
        &fg,
        "other",
        &format!(
            "/file/download/chat?app_id=other&file_sign={}&format=jpg",
            g["file_sign"].as_str().unwrap()
        ),
        None,
    );
    let v: Value = resp.json().unwrap();
    assert_eq!(v["code"], 415, "{v}");

    // The demo app lists {format: webp} as eager: after an upload it is made without
    // being asked, and the first request for it is a hit.
    let eager_path = upload(
        &fg,
        "demo",
        "e.jpg",
        "image/jpeg",
        &vips_gradient("rendition-800.jpg", 800, 600),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while fg.metric(r#"filegate_eager_total{result="made"}"#) < 1.0 {
        assert!(
            Instant::now() < deadline,
            "no eager rendition: {}",
            fg.metrics()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let resp = get(&fg, "demo", &format!("{eager_path}&format=webp"), None);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-cache-status"], "HIT");
    assert_eq!(vipsheader(&resp.bytes().unwrap()).0, 800);
}
