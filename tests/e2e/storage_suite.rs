//! The shared storage suite: every case runs against the embedded store and against a
//! real S3 server (s3s-fs). Uploads go exactly where the grant says (the store for S3,
//! filegate for the embedded store), downloads through filegate.

use std::time::{Duration, SystemTime};

use filegate::claims::TokenKind;
use filegate::config::{PostDialect, Secret, UploadMethod};
use filegate::keys::ObjectKey;
use filegate::post_policy::form_fields;
use filegate::sigv4::S3Signer;
use filegate::{TypeRule, UploadRequest};
use reqwest::blocking::multipart;
use serde_json::Value;

use crate::harness::*;

/// Which store backs filegate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    S3,
}

/// filegate over a store; the S3 server (if any) outlives filegate.
pub struct Env {
    pub fg: Filegate,
    pub s3: Option<S3Server>,
}

impl Env {
    pub fn new(backend: Backend, tweak: impl FnOnce(&mut Setup)) -> Env {
        let mut setup = Setup::default();
        let s3 = match backend {
            Backend::Embedded => None,
            Backend::S3 => Some(S3Server::start()),
        };
        if let Some(s3) = &s3 {
            setup.store = Some(s3.store_yaml());
        }
        tweak(&mut setup);
        Env {
            fg: Filegate::start_with(setup),
            s3,
        }
    }

    /// Whether the store holds `key`.
    pub fn stored(&self, key: &str) -> bool {
        match &self.s3 {
            Some(s3) => s3.has(key),
            None => self.fg.data_dir().join("objects").join(key).exists(),
        }
    }

    /// The signer the store verifies (to forge expired or tampered forms).
    pub fn signer(&self) -> S3Signer {
        match &self.s3 {
            Some(_) => S3Signer::new(S3_ACCESS_KEY, Secret::new(S3_SECRET_KEY), "us-east-1"),
            None => {
                let key = std::fs::read_to_string(self.fg.data_dir().join(".store-key"))
                    .expect("store key");
                S3Signer::new("filegate-embedded", Secret::new(key.trim()), "us-east-1")
            }
        }
    }

    /// Total store operations so far.
    pub fn store_operations(&self) -> f64 {
        self.fg
            .metrics()
            .lines()
            .filter(|l| l.starts_with("filegate_store_operations_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

both_stores!(
    post_upload_round_trip,
    put_upload_round_trip,
    refused_uploads_store_nothing,
    download_semantics,
    redirect_mode,
    forward_reuses_the_object,
    bad_object_names_never_reach_storage,
    passthrough_serves_a_presigned_get,
);

pub fn user_token(app: &str) -> String {
    token(app, 7, TokenKind::User)
}

pub fn chat_download(fg: &Filegate, app: &str, sign: &str) -> reqwest::blocking::Response {
    client()
        .get(fg.url(&format!(
            "/file/download/chat?app_id={app}&file_sign={sign}"
        )))
        .header("access-token", user_token(app))
        .send()
        .expect("download")
}

/// A presigned-PUT grant for `bytes.len()` bytes (`query` without `size`); the app
/// must upload by PUT.
pub fn put_grant(fg: &Filegate, app: &str, token: &str, query: &str, len: usize) -> Value {
    let g = grant(fg, app, token, &format!("{query}&size={len}"));
    assert_eq!(g["upload_method"], "PUT", "{g}");
    g
}

/// Asks for a grant and uploads `bytes` with it (HTTP 200 expected); returns the grant.
pub fn uploaded(
    fg: &Filegate,
    app: &str,
    token: &str,
    query: &str,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> Value {
    let g = grant(fg, app, token, query);
    let (status, body) = post_upload(&g, name, content_type, bytes.to_vec());
    assert_eq!(status, 200, "upload: {body}");
    g
}

pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn post_upload_round_trip(backend: Backend) {
    let dialects: &[Option<&str>] = match backend {
        Backend::Embedded => &[None, Some("s3")],
        Backend::S3 => &[None],
    };
    for dialect in dialects {
        let env = Env::new(backend, |s| {
            s.embedded_dialect = dialect.map(str::to_string)
        });
        let fg = &env.fg;
        let t = user_token("demo");
        let g = grant(
            fg,
            "demo",
            &t,
            "/file/upload/chat?file_type=100&to_id=9&file_name=%E6%8A%A5%E5%91%8A%20v2.pdf&content_type=application/pdf",
        );
        let fields = g["oss_body_param"].as_object().unwrap();
        match (backend, dialect) {
            (Backend::Embedded, None) => {
                for f in [
                    "OSSAccessKeyId",
                    "policy",
                    "signature",
                    "key",
                    "success_action_status",
                ] {
                    assert!(fields.contains_key(f), "oss dialect lacks {f}: {g}");
                }
            }
            _ => {
                for f in [
                    "key",
                    "policy",
                    "x-amz-algorithm",
                    "x-amz-credential",
                    "x-amz-date",
                    "x-amz-signature",
                    "Content-Type",
                ] {
                    assert!(fields.contains_key(f), "s3 dialect lacks {f}: {g}");
                }
            }
        }
        let bytes = pseudo_random(300_000, 1);
        let (status, body) = post_upload(&g, "报告 v2.pdf", "application/pdf", bytes.clone());
        assert_eq!(status, 200, "{backend:?}/{dialect:?}: {body}");
        let key = fields["key"].as_str().unwrap();
        assert!(env.stored(key));
        let resp = chat_download(fg, "demo", g["file_sign"].as_str().unwrap());
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "application/pdf");
        let cd = resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(cd.starts_with("attachment;"), "{cd}");
        assert!(
            cd.contains("filename*=UTF-8''%E6%8A%A5%E5%91%8A%20v2.pdf"),
            "{cd}"
        );
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert!(resp.headers()["etag"].to_str().unwrap().starts_with('"'));
        assert_eq!(resp.bytes().unwrap().as_ref(), bytes.as_slice());

        // A picture by the product's own client shape: the part's type decides.
        let g = grant(
            fg,
            "demo",
            &t,
            "/file/upload/chat?file_type=102&to_id=9&to_type=2",
        );
        let jpeg = small_jpeg();
        let (status, body) = post_upload(&g, "p.jpg", "image/jpeg", jpeg.clone());
        assert_eq!(status, 200, "{body}");
        let resp = chat_download(fg, "demo", g["file_sign"].as_str().unwrap());
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(resp.bytes().unwrap().as_ref(), jpeg.as_slice());
    }
}

fn put_upload_round_trip(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let t = user_token("putapp");
    // PUT needs the size (the presigned URL signs the length).
    let resp = client()
        .get(fg.url("/file/upload/chat?app_id=putapp&file_type=100&to_id=3"))
        .header("access-token", &t)
        .send()
        .unwrap();
    let v = expect_envelope(resp, 400, 400);
    assert!(v["message"].as_str().unwrap().starts_with("size"));
    let bytes = pseudo_random(123_457, 2);
    let g = grant(
        fg,
        "putapp",
        &t,
        &format!(
            "/file/upload/chat?file_type=100&to_id=3&size={}",
            bytes.len()
        ),
    );
    assert_eq!(g["upload_method"], "PUT");
    // A body of another length breaks the signed Content-Length.
    let (status, _) = put_upload(&g, pseudo_random(123_458, 2));
    assert!(
        (400..500).contains(&status),
        "longer body accepted: {status}"
    );
    let key = url_key(g["upload_url"].as_str().unwrap());
    assert!(!env.stored(&key));
    let (status, body) = put_upload(&g, bytes.clone());
    assert_eq!(status, 200, "{body}");
    let resp = chat_download(fg, "putapp", g["file_sign"].as_str().unwrap());
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), bytes.as_slice());
}

/// The object key of a presigned store URL.
fn url_key(url: &str) -> String {
    let path = url.split('?').next().unwrap();
    let after_host = path.splitn(4, '/').nth(3).unwrap();
    after_host
        .strip_prefix(&format!("{S3_BUCKET}/"))
        .unwrap_or(after_host)
        .to_string()
}

/// Posts `fields` then a file part.
fn post_form(url: &str, fields: &[(String, String)], file_type: &str, bytes: Vec<u8>) -> u16 {
    let mut form = multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.clone(), v.clone());
    }
    form = form.part(
        "file",
        multipart::Part::bytes(bytes)
            .file_name("f")
            .mime_str(file_type)
            .unwrap(),
    );
    client()
        .post(url)
        .multipart(form)
        .send()
        .expect("post")
        .status()
        .as_u16()
}

fn fields_of(g: &Value) -> Vec<(String, String)> {
    g["oss_body_param"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn refused_uploads_store_nothing(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let t = user_token("tiny");
    let fresh = || grant(fg, "tiny", &t, "/file/upload/avatar/user");
    let key_of = |g: &Value| g["oss_body_param"]["key"].as_str().unwrap().to_string();
    let refused = |status: u16, what: &str| {
        assert!((400..500).contains(&status), "{what} accepted: {status}")
    };

    // Over the avatar limit (1 KiB).
    let g = fresh();
    let (status, _) = post_upload(&g, "a.jpg", "image/jpeg", vec![0xFF; 2048]);
    refused(status, "over-size");
    assert!(!env.stored(&key_of(&g)));

    // Another key than the policy allows.
    let g = fresh();
    let other = format!("tiny/avatar/user/7/{}.jpg", "f".repeat(12));
    let fields: Vec<(String, String)> = fields_of(&g)
        .into_iter()
        .map(|(k, v)| {
            if k == "key" {
                (k, other.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    refused(
        post_form(
            g["upload_url"].as_str().unwrap(),
            &fields,
            "image/jpeg",
            small_jpeg(),
        ),
        "wrong key",
    );
    assert!(!env.stored(&other) && !env.stored(&key_of(&g)));

    // A type the file_type does not allow.
    let g = fresh();
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let fields: Vec<(String, String)> = fields_of(&g)
        .into_iter()
        .map(|(k, v)| {
            if k == "Content-Type" {
                (k, "text/html".to_string())
            } else {
                (k, v)
            }
        })
        .collect();
    refused(
        post_form(
            g["upload_url"].as_str().unwrap(),
            &fields,
            "text/html",
            html,
        ),
        "wrong type",
    );
    assert!(!env.stored(&key_of(&g)));

    // Expired: a form the store's own key signed an hour ago with a 15-minute policy.
    let key = ObjectKey::parse("tiny/avatar/user/7/expired.jpg").unwrap();
    let req = UploadRequest {
        key: key.clone(),
        method: UploadMethod::Post,
        content_type: "image/jpeg".into(),
        type_rule: TypeRule::Exact("image/jpeg".into()),
        max_size: 1024,
        size: None,
        expires_in: Duration::from_secs(900),
    };
    let dialect = if backend == Backend::S3 {
        PostDialect::S3
    } else {
        PostDialect::Oss
    };
    let bucket = (backend == Backend::S3).then_some(S3_BUCKET);
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let expired: Vec<(String, String)> =
        form_fields(&req, dialect, &env.signer(), bucket, an_hour_ago)
            .into_iter()
            .collect();
    let url = g["upload_url"].as_str().unwrap();
    refused(
        post_form(url, &expired, "image/jpeg", small_jpeg()),
        "expired",
    );
    assert!(!env.stored(key.as_str()));
    // The same form signed now is accepted: the refusal above was the expiry.
    let fresh_fields: Vec<(String, String)> =
        form_fields(&req, dialect, &env.signer(), bucket, SystemTime::now())
            .into_iter()
            .collect();
    assert_eq!(
        post_form(url, &fresh_fields, "image/jpeg", small_jpeg()),
        200
    );
    assert!(env.stored(key.as_str()));

    // Tampered: a policy with a larger limit, keeping the old signature.
    let g = fresh();
    let fields: Vec<(String, String)> = fields_of(&g)
        .into_iter()
        .map(|(k, v)| {
            if k == "policy" {
                use base64::Engine;
                let b64 = base64::engine::general_purpose::STANDARD;
                let doc = String::from_utf8(b64.decode(&v).unwrap())
                    .unwrap()
                    .replace("1024]", "99999999]");
                (k, b64.encode(doc))
            } else {
                (k, v)
            }
        })
        .collect();
    refused(
        post_form(
            g["upload_url"].as_str().unwrap(),
            &fields,
            "image/jpeg",
            vec![0xFF; 4096],
        ),
        "tampered",
    );
    assert!(!env.stored(&key_of(&g)));
}

fn download_semantics(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let t = user_token("demo");
    let bytes = pseudo_random(100_000, 3);
    let g = uploaded(
        fg,
        "demo",
        &t,
        "/file/upload/chat?file_type=100&to_id=1&file_name=data.bin",
        "data.bin",
        "application/octet-stream",
        &bytes,
    );
    let url = fg.url(&format!(
        "/file/download/chat?app_id=demo&file_sign={}",
        g["file_sign"].as_str().unwrap()
    ));
    let get = |headers: &[(&str, &str)]| {
        let mut r = client().get(&url).header("access-token", &t);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().unwrap()
    };
    let full = get(&[]);
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.headers()["content-length"], "100000");
    let etag = full.headers()["etag"].to_str().unwrap().to_string();
    assert!(full.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("data.bin"));
    assert_eq!(full.bytes().unwrap().as_ref(), bytes.as_slice());

    let r = get(&[("range", "bytes=100-199")]);
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 100-199/100000");
    assert_eq!(r.bytes().unwrap().as_ref(), &bytes[100..200]);
    let r = get(&[("range", "bytes=-10")]);
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().unwrap().as_ref(), &bytes[99_990..]);
    let r = get(&[("range", "bytes=99990-")]);
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().unwrap().len(), 10);
    let r = get(&[("range", "bytes=200000-")]);
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */100000");

    let r = get(&[("if-none-match", &etag)]);
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    let r = get(&[("if-none-match", "\"something-else\"")]);
    assert_eq!(r.status(), 200);

    let head = client()
        .head(&url)
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "100000");
    assert_eq!(head.headers()["etag"].to_str().unwrap(), etag);
    assert!(head.bytes().unwrap().is_empty());

    // A name that was never uploaded is a 404 envelope.
    let missing = client()
        .get(fg.url("/file/download/avatar?app_id=demo&object_name=avatar/user/7/nothing.jpg"))
        .header("access-token", &t)
        .send()
        .unwrap();
    expect_envelope(missing, 404, 404);
}

fn redirect_mode(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let t = user_token("redirect");
    let bytes = pseudo_random(50_000, 4);
    let g = uploaded(
        fg,
        "redirect",
        &t,
        "/file/upload/chat?file_type=100&to_id=1&file_name=r.bin",
        "r.bin",
        "application/octet-stream",
        &bytes,
    );
    let resp = chat_download(fg, "redirect", g["file_sign"].as_str().unwrap());
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["content-length"], "0");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    if let Some(s3) = &env.s3 {
        assert!(location.starts_with(&s3.endpoint), "{location}");
    }
    let fetched = client().get(&location).send().unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().unwrap().as_ref(), bytes.as_slice());
    // The signed URL names exactly that object.
    let tampered = location.replacen(".bin", ".bim", 1);
    assert!((400..500).contains(&client().get(&tampered).send().unwrap().status().as_u16()));
    // Avatars redirect too.
    let name = upload_avatar(fg, "redirect", 7);
    let resp = client()
        .get(fg.url(&format!(
            "/file/download/avatar?app_id=redirect&object_name={name}"
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 302);
    let fetched = client()
        .get(resp.headers()["location"].to_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().unwrap().as_ref(), small_jpeg().as_slice());
}

fn forward_reuses_the_object(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let t = user_token("demo");
    let g = grant(
        fg,
        "demo",
        &t,
        "/file/upload/chat?file_type=100&to_id=1&file_name=f.txt&content_type=text/plain",
    );
    let bytes = b"forward me".to_vec();
    assert_eq!(post_upload(&g, "f.txt", "text/plain", bytes.clone()).0, 200);
    let resp = client()
        .get(fg.url(&format!(
            "/file/upload/forward?app_id=demo&to_id=99&to_type=2&file_sign={}",
            g["file_sign"].as_str().unwrap()
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    let v = expect_envelope(resp, 200, 200);
    let forwarded = v["data"]
        .as_str()
        .expect("data is the new file_sign")
        .to_string();
    assert_ne!(forwarded, g["file_sign"].as_str().unwrap());
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: Value =
        serde_json::from_slice(&b64.decode(forwarded.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(
        (claims["tt"].as_u64(), claims["ti"].as_i64()),
        (Some(2), Some(99))
    );
    assert_eq!(claims["key"], g["oss_body_param"]["key"]);
    let resp = chat_download(fg, "demo", &forwarded);
    assert_eq!(resp.status(), 200);
    // Served with the original name; text is never rendered inline.
    assert!(resp.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"f.txt\""));
    assert_eq!(resp.bytes().unwrap().as_ref(), bytes.as_slice());
}

fn bad_object_names_never_reach_storage(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    upload_avatar(fg, "other", 1);
    let t = user_token("demo");
    let before = env.store_operations();
    let cases = [
        ("../other/avatar/user/1/a.jpg", 400),
        ("avatar/user/1/../../../other/x.jpg", 400),
        ("%2e%2e/other/avatar/user/1/a.jpg", 400),
        ("%252e%252e/x", 400),
        ("/avatar/user/1/a.jpg", 400),
        ("avatar/user/1/a%00.jpg", 400),
        ("avatar//user/1/a.jpg", 400),
        ("other/avatar/user/1/a.jpg", 403),
        ("chat/1/1/20260101/a.jpg", 403),
        ("_derived/abc.jpg", 403),
        ("avatar/user/notanumber/a.jpg", 400),
        ("avatar/user/007/a.jpg", 400),
    ];
    for (name, status) in cases {
        let resp = client()
            .get(fg.url(&format!(
                "/file/download/avatar?app_id=demo&object_name={name}"
            )))
            .header("access-token", &t)
            .send()
            .unwrap();
        let code = if status == 403 { 10010 } else { 400 };
        expect_envelope(resp, status, code);
    }
    assert_eq!(
        env.store_operations(),
        before,
        "a refused name reached the store"
    );
    // A forged or altered file_sign is refused before the store too.
    let g = grant(fg, "demo", &t, "/file/upload/chat?file_type=100&to_id=1");
    let sign = g["file_sign"].as_str().unwrap();
    let before_signs = env.store_operations();
    assert_eq!(
        before_signs - before,
        1.0,
        "only the grant touched the store"
    );
    let forged = filegate::jwt::mint(
        &serde_json::json!({"app": "demo", "key": "demo/chat/1/1/20260101/x.bin", "ft": 100, "tt": 1, "ti": 1, "fr": 7, "iat": 1}),
        &Secret::new("attacker-secret-0123456789"),
    )
    .unwrap();
    // Change one character inside the signature (never the last, whose low bits are padding).
    let i = sign.len() - 5;
    let swap = if &sign[i..=i] == "A" { "B" } else { "A" };
    let altered = format!("{}{swap}{}", &sign[..i], &sign[i + 1..]);
    for s in [forged.as_str(), altered.as_str()] {
        expect_envelope(chat_download(fg, "demo", s), 401, 10008);
    }
    assert_eq!(
        env.store_operations(),
        before_signs,
        "a bad file_sign reached the store"
    );
}

fn passthrough_serves_a_presigned_get(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let t = user_token("redirect");
    let bytes = pseudo_random(70_000, 5);
    let g = uploaded(
        fg,
        "redirect",
        &t,
        "/file/upload/chat?file_type=100&to_id=1",
        "x.bin",
        "application/octet-stream",
        &bytes,
    );
    let resp = chat_download(fg, "redirect", g["file_sign"].as_str().unwrap());
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    // The same signed path and query, sent to filegate instead of the store.
    let path_and_query = path_and_query_of(&location);
    let through = client().get(fg.url(path_and_query)).send().unwrap();
    assert_eq!(through.status(), 200);
    assert_eq!(through.bytes().unwrap().as_ref(), bytes.as_slice());
    // A tampered one (last signature digit changed) is refused by the store, and
    // that answer comes back.
    let last = path_and_query.chars().last().unwrap();
    let flipped = if last == '0' { '1' } else { '0' };
    let tampered = format!("{}{flipped}", &path_and_query[..path_and_query.len() - 1]);
    let resp = client().get(fg.url(&tampered)).send().unwrap();
    assert_eq!(resp.status(), 403);
}

/// The product's own server-side client, exactly: an admin token with a `user_id`
/// header; a multipart POST of `OSSAccessKeyId`, `policy`, `signature`, `callback`, `key`
/// and then `file` (no `success_action_status`), expecting HTTP 200; then a download with
/// redirects disabled, expecting 302 in `redirect` mode.
#[test]
fn product_server_side_client() {
    let fg = Filegate::start();
    let admin = token("redirect", 1, TokenKind::Admin);
    let resp = client()
        .get(fg.url("/file/upload/chat?app_id=redirect&file_type=102&to_id=500&to_type=2"))
        .header("access-token", &admin)
        .header("user_id", "1234")
        .send()
        .unwrap();
    let g = expect_envelope(resp, 200, 200)["data"].clone();
    assert_eq!(g["upload_method"], "POST");
    let p = &g["oss_body_param"];
    let jpeg = small_jpeg();
    let form = multipart::Form::new()
        .text(
            "OSSAccessKeyId",
            p["OSSAccessKeyId"].as_str().unwrap().to_string(),
        )
        .text("policy", p["policy"].as_str().unwrap().to_string())
        .text("signature", p["signature"].as_str().unwrap().to_string())
        .text("callback", "")
        .text("key", p["key"].as_str().unwrap().to_string())
        .part(
            "file",
            multipart::Part::bytes(jpeg.clone())
                .file_name("photo.jpg")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let resp = client()
        .post(g["upload_url"].as_str().unwrap())
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text());
    let resp = client()
        .get(g["download_url"].as_str().unwrap())
        .header("access-token", &admin)
        .header("user_id", "1234")
        .send()
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(resp.headers()["content-length"], "0");
    let fetched = client()
        .get(resp.headers()["location"].to_str().unwrap())
        .send()
        .unwrap();
    assert_eq!(fetched.status(), 200);
    // The part came as octet-stream: the store sniffed the JPEG.
    assert_eq!(fetched.headers()["content-type"], "image/jpeg");
    assert_eq!(fetched.bytes().unwrap().as_ref(), jpeg.as_slice());
}
