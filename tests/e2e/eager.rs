//! Eager derivation (issue 12): the results an app lists in `apps.<id>.eager` are made
//! as soon as an upload completes where filegate sees it (the embedded store; for an
//! S3 store, uploads routed through the pass-through with `store.public_endpoint`), so
//! the first download of each is a `HIT` made by no transform of its own. Asserted on
//! what a client and `/metrics` see; waits poll the metrics with a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;
use reqwest::blocking::Response;
use serde_json::Value;

use crate::fixtures::{vips_gradient, vipsheader};
use crate::harness::*;
use crate::storage_suite::{pseudo_random, Backend, Env};

both_stores!(
    eager_sizes_are_made_after_an_upload,
    a_flood_of_uploads_keeps_the_eager_queue_bounded,
    a_non_image_upload_makes_nothing,
);

/// The test apps: `demo` (POST forms) and `putapp` (presigned PUT) in serve mode,
/// `redirect` in redirect mode, `other` with no eager entries.
const EAGER_APPS: &str = r#"
apps:
  demo:
    secrets: ["new-secret-0123456789"]
    eager:
      - {image_type: 2, w: 200, h: 200}
      - {image_type: 3, w: 64, thumbnail_strategy: 2, accept: image/webp}
  putapp:
    secrets: ["putapp-secret-0123456789"]
    upload_method: PUT
    eager:
      - {image_type: 2, w: 120, h: 90}
  redirect:
    secrets: ["redirect-secret-0123456789"]
    download_mode: redirect
    eager:
      - {image_type: 2, w: 150}
  other:
    secrets: ["other-secret-0123456789"]
"#;

const THUMBS_MADE: &str = r#"filegate_transforms_total{kind="thumbnail",result="ok"}"#;
const QUEUE_DEPTH: &str = "filegate_eager_queue_depth";

fn eager_series(result: &str) -> String {
    format!(r#"filegate_eager_total{{result="{result}"}}"#)
}

/// filegate with the eager apps over `backend`; for S3, every upload URL it hands out
/// points at filegate itself (`store.public_endpoint`), so uploads go through the
/// pass-through, the way an operator who wants eager results routes them.
fn start(backend: Backend, extra: &str, dialect: Option<&str>) -> Env {
    Env::new(backend, |setup| {
        setup.apps = EAGER_APPS.to_string();
        setup.extra = extra.to_string();
        setup.embedded_dialect = dialect.map(str::to_string);
        if let Some(store) = &mut setup.store {
            let port = free_port();
            setup.port = Some(port);
            store.push_str(&format!("  public_endpoint: http://127.0.0.1:{port}\n"));
        }
    })
}

/// Polls `/metrics` until `done` holds, at most 30 s; the reason is in the panic.
fn wait_until(fg: &Filegate, what: &str, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = fg.metrics();
        if done(&text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}\nfilegate log:\n{}",
            fg.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sum of the eager results that are settled (made, cached, dropped, failed).
fn eager_settled(text: &str) -> f64 {
    ["made", "cached", "dropped", "failed"]
        .iter()
        .map(|r| metric_value(text, &eager_series(r)))
        .sum()
}

fn picture() -> Vec<u8> {
    vips_gradient("eager-640x480.jpg", 640, 480)
}

/// Uploads `bytes` (a JPEG) as a chat picture of `app` by the app's upload method;
/// returns the grant.
fn upload_picture(fg: &Filegate, app: &str, bytes: &[u8]) -> Value {
    let t = token(app, 7, TokenKind::User);
    let g = grant(
        fg,
        app,
        &t,
        &format!(
            "/file/upload/chat?file_type=102&to_id=8&to_type=1&file_name=p.jpg&content_type=image/jpeg&size={}",
            bytes.len()
        ),
    );
    let (status, body) = match g["upload_method"].as_str() {
        Some("PUT") => put_upload(&g, bytes.to_vec()),
        _ => post_upload(&g, "p.jpg", "image/jpeg", bytes.to_vec()),
    };
    assert!(
        (200..300).contains(&status),
        "upload to {app}: {status} {body}"
    );
    g
}

fn download(g: &Value, app: &str, query: &str, headers: &[(&str, &str)]) -> Response {
    let url = format!(
        "{}{query}",
        g["download_url"].as_str().expect("download_url")
    );
    let mut req = client()
        .get(url)
        .header("access-token", token(app, 7, TokenKind::User));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().expect("download")
}

fn cache_status(resp: &Response) -> String {
    resp.headers()
        .get("x-cache-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(none)")
        .to_string()
}

/// Files under `<app>/_derived/` in the store.
fn derived_copies(env: &Env, app: &str) -> usize {
    let dir = match &env.s3 {
        Some(s3) => s3.object_path(&format!("{app}/_derived")),
        None => env.fg.data_dir().join("objects").join(app).join("_derived"),
    };
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Uploads to `app` and waits until its `sizes` eager results are made, asserting
/// the thumbnail count moved by as much before any download is asked.
fn upload_and_wait(fg: &Filegate, app: &str, sizes: f64) -> Value {
    let text = fg.metrics();
    let (thumbs, made) = (
        metric_value(&text, THUMBS_MADE),
        metric_value(&text, &eager_series("made")),
    );
    let g = upload_picture(fg, app, &picture());
    wait_until(fg, &format!("{sizes} eager results of {app}"), |m| {
        metric_value(m, &eager_series("made")) >= made + sizes
    });
    let text = fg.metrics();
    assert_eq!(metric_value(&text, &eager_series("made")), made + sizes);
    assert_eq!(
        metric_value(&text, THUMBS_MADE),
        thumbs + sizes,
        "the transforms ran before any download"
    );
    assert_eq!(metric_value(&text, &eager_series("failed")), 0.0);
    g
}

fn eager_sizes_are_made_after_an_upload(backend: Backend) {
    // Embedded: both POST dialects (the store's own forms); S3: the s3 dialect.
    let dialects: &[Option<&str>] = match backend {
        Backend::Embedded => &[None, Some("s3")],
        Backend::S3 => &[None],
    };
    for dialect in dialects {
        let env = start(backend, "", *dialect);
        let fg = &env.fg;

        // A POST form (demo: two entries).
        let g = upload_and_wait(fg, "demo", 2.0);
        let thumbs = fg.metric(THUMBS_MADE);
        let resp = download(&g, "demo", "&image_type=2&w=200&h=200", &[]);
        assert_eq!(resp.status(), 200);
        assert_eq!(cache_status(&resp), "HIT", "{dialect:?}");
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        // The second entry: a cover of an image is its thumbnail, in the format an
        // `Accept: image/webp` client negotiates.
        let resp = download(
            &g,
            "demo",
            "&image_type=3&w=64&thumbnail_strategy=2",
            &[("accept", "image/webp,*/*")],
        );
        assert_eq!(resp.status(), 200);
        assert_eq!(cache_status(&resp), "HIT");
        assert_eq!(resp.headers()["content-type"], "image/webp");
        // The same result asked as image_type=2: the same cache key.
        let resp = download(
            &g,
            "demo",
            "&image_type=2&w=64.0&thumbnail_strategy=2",
            &[("accept", "image/webp")],
        );
        assert_eq!(cache_status(&resp), "HIT");
        // A size nobody listed is made on demand.
        let resp = download(&g, "demo", "&image_type=2&w=77", &[]);
        assert_eq!(cache_status(&resp), "MISS");
        assert_eq!(
            fg.metric(THUMBS_MADE),
            thumbs + 1.0,
            "only the unlisted size"
        );
        // The original came through the cache when the results were made.
        let resp = download(&g, "demo", "", &[]);
        assert_eq!(cache_status(&resp), "HIT");
        assert_eq!(resp.bytes().unwrap().as_ref(), picture().as_slice());

        if dialect.is_some() {
            continue;
        }
        // A presigned PUT (putapp).
        let g = upload_and_wait(fg, "putapp", 1.0);
        let thumbs = fg.metric(THUMBS_MADE);
        let resp = download(&g, "putapp", "&image_type=2&w=120&h=90", &[]);
        assert_eq!(resp.status(), 200);
        assert_eq!(cache_status(&resp), "HIT");
        let (w, h, _) = vipsheader(&resp.bytes().unwrap());
        assert!(w <= 120 && h <= 90 && (w == 120 || h == 90), "{w}x{h}");
        assert_eq!(fg.metric(THUMBS_MADE), thumbs);

        // Redirect mode: the `_derived/` copy is in the store before the download,
        // which redirects to it without a transform of its own.
        let copies = derived_copies(&env, "redirect");
        let g = upload_and_wait(fg, "redirect", 1.0);
        assert_eq!(derived_copies(&env, "redirect"), copies + 1);
        let thumbs = fg.metric(THUMBS_MADE);
        let resp = download(&g, "redirect", "&image_type=2&w=150", &[]);
        assert_eq!(resp.status(), 302);
        assert_eq!(cache_status(&resp), "HIT");
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        assert!(location.contains("/redirect/_derived/"), "{location}");
        let fetched = client().get(&location).send().unwrap();
        assert_eq!(fetched.status(), 200);
        assert_eq!(vipsheader(&fetched.bytes().unwrap()).0, 150);
        assert_eq!(fg.metric(THUMBS_MADE), thumbs);

        // An app without eager entries: nothing made, nothing counted.
        let text = fg.metrics();
        upload_picture(fg, "other", &picture());
        let after = fg.metrics();
        for result in ["made", "cached", "dropped", "failed", "skipped"] {
            assert_eq!(
                metric_value(&after, &eager_series(result)),
                metric_value(&text, &eager_series(result)),
                "{result}"
            );
        }
        assert_eq!(metric_value(&after, QUEUE_DEPTH), 0.0);
    }
}

fn a_flood_of_uploads_keeps_the_eager_queue_bounded(backend: Backend) {
    const UPLOADS: usize = 200;
    const BOUND: f64 = 4.0;
    let env = start(backend, "media:\n  eager_queue: 4\n", None);
    let fg = &env.fg;
    // A larger picture: its two results take the worker longer than an upload takes.
    let bytes = Arc::new(vips_gradient("eager-flood-1600x1200.jpg", 1600, 1200));
    let t = token("demo", 7, TokenKind::User);
    let grants: Vec<Value> = (0..UPLOADS)
        .map(|_| {
            grant(
                fg,
                "demo",
                &t,
                "/file/upload/chat?file_type=102&to_id=8&to_type=1&file_name=p.jpg&content_type=image/jpeg",
            )
        })
        .collect();
    let grants = Arc::new(Mutex::new(grants));

    // Watches the queue depth while the flood runs.
    let flooding = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (flooding, admin) = (flooding.clone(), fg.admin.clone());
        std::thread::spawn(move || {
            let mut deepest: f64 = 0.0;
            while flooding.load(Ordering::Relaxed) {
                let text = client()
                    .get(format!("{admin}/metrics"))
                    .send()
                    .and_then(|r| r.text())
                    .expect("metrics");
                deepest = deepest.max(metric_value(&text, QUEUE_DEPTH));
                std::thread::sleep(Duration::from_millis(2));
            }
            deepest
        })
    };
    let uploaders: Vec<_> = (0..16)
        .map(|_| {
            let (grants, bytes) = (grants.clone(), bytes.clone());
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                loop {
                    let Some(g) = grants.lock().unwrap().pop() else {
                        return statuses;
                    };
                    statuses.push(post_upload(&g, "p.jpg", "image/jpeg", bytes.to_vec()));
                }
            })
        })
        .collect();
    let mut answered = 0;
    for u in uploaders {
        for (status, body) in u.join().unwrap() {
            assert_eq!(status, 200, "every upload answers: {body}");
            answered += 1;
        }
    }
    flooding.store(false, Ordering::Relaxed);
    let deepest = watcher.join().unwrap();
    assert_eq!(answered, UPLOADS);
    assert!(deepest <= BOUND, "queue depth {deepest} above its bound");

    // Every result is settled once: made, or dropped when the queue was full.
    let expected = (UPLOADS * 2) as f64;
    wait_until(fg, "every eager result settled", |m| {
        eager_settled(m) >= expected && metric_value(m, QUEUE_DEPTH) == 0.0
    });
    let text = fg.metrics();
    assert_eq!(eager_settled(&text), expected);
    let (made, dropped) = (
        metric_value(&text, &eager_series("made")),
        metric_value(&text, &eager_series("dropped")),
    );
    eprintln!("flood of {UPLOADS} uploads: {made} results made, {dropped} dropped, queue depth at most {deepest}");
    assert!(dropped > 0.0, "a flood past the bound drops: {text}");
    assert!(made > 0.0, "{text}");
    assert_eq!(metric_value(&text, &eager_series("failed")), 0.0);
    assert_eq!(
        metric_value(&text, THUMBS_MADE),
        made,
        "one transform per result made"
    );
    // The pool never refused a request meanwhile (none was asked), nor a result.
    assert_eq!(
        metric_value(
            &text,
            r#"filegate_transforms_total{kind="thumbnail",result="busy"}"#
        ),
        0.0
    );
}

fn a_non_image_upload_makes_nothing(backend: Backend) {
    let env = start(backend, "", None);
    let fg = &env.fg;
    let text = fg.metrics();
    let skipped = metric_value(&text, &eager_series("skipped"));
    let thumbs = metric_value(&text, THUMBS_MADE);
    let t = token("demo", 7, TokenKind::User);
    // A plain file, and a "picture" whose bytes are no image (sniffed, not believed).
    let g = grant(
        fg,
        "demo",
        &t,
        "/file/upload/chat?file_type=100&to_id=8&to_type=1&file_name=notes.txt&content_type=text/plain",
    );
    let (status, body) = post_upload(&g, "notes.txt", "text/plain", b"not a picture".to_vec());
    assert_eq!(status, 200, "{body}");
    let g = grant(
        fg,
        "putapp",
        &token("putapp", 7, TokenKind::User),
        "/file/upload/chat?file_type=102&to_id=8&to_type=1&file_name=p.jpg&content_type=image/jpeg&size=5000",
    );
    let (status, body) = put_upload(&g, pseudo_random(5000, 3));
    assert_eq!(status, 200, "{body}");
    // Skipped at once (two demo entries, one putapp entry), nothing queued or made.
    let text = fg.metrics();
    assert_eq!(metric_value(&text, &eager_series("skipped")), skipped + 3.0);
    assert_eq!(metric_value(&text, QUEUE_DEPTH), 0.0);
    for result in ["made", "cached", "dropped", "failed"] {
        assert_eq!(metric_value(&text, &eager_series(result)), 0.0, "{result}");
    }
    assert_eq!(metric_value(&text, THUMBS_MADE), thumbs);
    // A later image upload is still made: the worker is alive and skipped nothing.
    upload_and_wait(fg, "demo", 2.0);
}

/// In a cluster, the node that sees the upload has each result made by the source's
/// owner (as a download through it would), so every node's first download is a HIT and
/// the cluster made each result once.
#[test]
fn in_a_cluster_the_owner_makes_each_result_once() {
    // Enough that some sources are owned by the other nodes (all twelve on the first
    // node: one chance in 3^12).
    const PICTURES: usize = 12;
    let s3 = S3Server::start();
    let apps = "apps:\n  demo:\n    secrets: [\"new-secret-0123456789\"]\n    eager:\n      - {image_type: 2, w: 120, thumbnail_strategy: 2}\n";
    let nodes = crate::cluster::start_nodes_with(&s3.store_yaml(), "", apps);
    let t = token("demo", 7, TokenKind::User);
    let jpeg = picture();
    // Every upload through the first node's pass-through (the grant's store URL, sent
    // to that node: the pass-through gives the store the Host it was signed for).
    let grants: Vec<Value> = (0..PICTURES)
        .map(|_| {
            let mut g = grant(
                &nodes[0],
                "demo",
                &t,
                "/file/upload/chat?file_type=102&to_id=8&to_type=1&file_name=p.jpg&content_type=image/jpeg",
            );
            let url = g["upload_url"]
                .as_str()
                .unwrap()
                .replacen(&s3.endpoint, &nodes[0].base, 1);
            g["upload_url"] = Value::String(url);
            let (status, body) = post_upload(&g, "p.jpg", "image/jpeg", jpeg.clone());
            assert_eq!(status, 200, "{body}");
            g
        })
        .collect();
    let made = eager_series("made");
    wait_until(&nodes[0], "the eager results of every upload", |m| {
        metric_value(m, &made) >= PICTURES as f64
    });
    let summed = |series: &str| crate::cluster::summed(&nodes, series);
    assert_eq!(
        summed(&made),
        PICTURES as f64,
        "counted by the node that saw the uploads"
    );
    assert_eq!(
        summed(THUMBS_MADE),
        PICTURES as f64,
        "each made once in the cluster"
    );
    assert!(
        nodes[0].metric(THUMBS_MADE) < PICTURES as f64,
        "the other nodes, owners of some sources, made theirs"
    );
    for g in &grants {
        for node in &nodes {
            let resp = client()
                .get(node.url(&format!(
                    "/file/download/chat?app_id=demo&file_sign={}&image_type=2&w=120&thumbnail_strategy=2",
                    g["file_sign"].as_str().unwrap()
                )))
                .header("access-token", &t)
                .send()
                .unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(cache_status(&resp), "HIT", "via {}", node.base);
        }
    }
    assert_eq!(summed(THUMBS_MADE), PICTURES as f64, "no download made one");
    assert_eq!(summed(&eager_series("failed")), 0.0);
}
