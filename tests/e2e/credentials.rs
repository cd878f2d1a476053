//! Every credential, over real HTTP: valid, missing, malformed, forged, expired, wrong
//! app, rotated-out vs still-listed secret, header vs query form, `alg: none`; and
//! every acting-identity rule, with the exact status and body code.

use base64::Engine;
use filegate::claims::{TokenClaims, TokenKind};
use filegate::config::Secret;
use filegate::query::Query;
use filegate::sdk_sign;

use crate::harness::*;

const UPLOAD: &str = "/file/upload/avatar/user";

fn mint(app: &str, sub: i64, kind: TokenKind, ttl_secs: i64, secret: &str) -> String {
    let mut c = TokenClaims::new(app, sub, kind, 0);
    c.exp = (c.exp as i64 + ttl_secs).max(0) as u64;
    c.mint(&Secret::new(secret)).expect("mint")
}

fn alg_none(app: &str, sub: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = TokenClaims::new(app, sub, TokenKind::User, 3600);
    format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(serde_json::to_vec(&claims).expect("json"))
    )
}

/// How the credential travels.
#[derive(Clone, Copy, Debug)]
enum Form {
    Header,
    Query,
}

fn call_upload(
    fg: &Filegate,
    app: &str,
    token: Option<&str>,
    form: Form,
) -> reqwest::blocking::Response {
    let mut url = fg.url(&format!("{UPLOAD}?app_id={app}"));
    let mut req = client().get(&url);
    if let Some(t) = token {
        match form {
            Form::Header => req = req.header("access-token", t),
            Form::Query => {
                url.push_str(&format!("&access-token={t}"));
                req = client().get(&url);
            }
        }
    }
    req.send().expect("request")
}

#[test]
fn access_token_table() {
    let fg = Filegate::start();
    let valid = mint("demo", 7, TokenKind::User, 3600, DEMO_SECRET);
    let old = mint("demo", 7, TokenKind::User, 3600, DEMO_OLD_SECRET);
    let gone = mint("demo", 7, TokenKind::User, 3600, DEMO_GONE_SECRET);
    let expired = mint("demo", 7, TokenKind::User, -120, DEMO_SECRET);
    let within_leeway = mint("demo", 7, TokenKind::User, -10, DEMO_SECRET);
    let forged = mint(
        "demo",
        7,
        TokenKind::User,
        3600,
        "attacker-secret-0123456789",
    );
    let other_app = mint("other", 7, TokenKind::User, 3600, OTHER_SECRET);
    let claims_other_app = mint("other", 7, TokenKind::User, 3600, DEMO_SECRET);
    let store_kind = mint("demo", 7, TokenKind::Store, 3600, DEMO_SECRET);
    // Change the payload (sub 7 → another value) keeping the signature.
    let parts: Vec<&str> = valid.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = serde_json::json!("8");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(payload.to_string()),
        parts[2]
    );

    let cases: Vec<(&str, &str, Option<String>, u16, u64)> = vec![
        ("valid", "demo", Some(valid.clone()), 200, 200),
        ("still-listed old secret", "demo", Some(old), 200, 200),
        ("within 30 s leeway", "demo", Some(within_leeway), 200, 200),
        ("missing", "demo", None, 401, 10003),
        ("malformed", "demo", Some("not.a.jwt".into()), 401, 10008),
        ("garbage", "demo", Some("garbage".into()), 401, 10008),
        ("forged signature", "demo", Some(forged), 401, 10008),
        ("tampered payload", "demo", Some(tampered), 401, 10008),
        ("expired", "demo", Some(expired), 401, 10008),
        ("rotated-out secret", "demo", Some(gone), 401, 10008),
        ("another app's token", "demo", Some(other_app), 401, 10008),
        (
            "app claim of another app",
            "demo",
            Some(claims_other_app),
            401,
            10008,
        ),
        (
            "store token as access-token",
            "demo",
            Some(store_kind),
            401,
            10008,
        ),
        ("alg none", "demo", Some(alg_none("demo", 7)), 401, 10008),
        ("unknown app_id", "nosuchapp", Some(valid), 401, 40000),
    ];
    for form in [Form::Header, Form::Query] {
        for (name, app, token, status, code) in &cases {
            let resp = call_upload(&fg, app, token.as_deref(), form);
            let got = (resp.status().as_u16(), resp.text().unwrap_or_default());
            let v: serde_json::Value = serde_json::from_str(&got.1).unwrap_or_default();
            assert_eq!(
                (got.0, v["code"].as_u64().unwrap_or(0)),
                (*status, *code),
                "case `{name}` ({form:?}): {}",
                got.1
            );
        }
    }
}

#[test]
fn app_id_and_credentials_header_vs_query_must_agree() {
    let fg = Filegate::start();
    let t = token("demo", 7, TokenKind::User);
    // app_id only as a header.
    let resp = client()
        .get(fg.url(UPLOAD))
        .header("app_id", "demo")
        .header("access-token", &t)
        .send()
        .unwrap();
    expect_envelope(resp, 200, 200);
    // No app_id at all.
    let resp = client()
        .get(fg.url(UPLOAD))
        .header("access-token", &t)
        .send()
        .unwrap();
    let v = expect_envelope(resp, 400, 400);
    assert!(v["message"].as_str().unwrap().contains("app_id"));
    // Header and query disagree.
    let resp = client()
        .get(fg.url(&format!("{UPLOAD}?app_id=demo")))
        .header("app_id", "other")
        .header("access-token", &t)
        .send()
        .unwrap();
    expect_envelope(resp, 400, 400);
    let resp = client()
        .get(fg.url(&format!("{UPLOAD}?app_id=demo&access-token={t}")))
        .header("access-token", "something-else")
        .send()
        .unwrap();
    expect_envelope(resp, 400, 400);
}

#[test]
fn errors_as_http_200_switch() {
    let fg = Filegate::start();
    let resp = client()
        .get(fg.url(&format!("{UPLOAD}?app_id=legacy")))
        .send()
        .unwrap();
    expect_envelope(resp, 200, 10003);
    let resp = client()
        .get(fg.url(&format!("{UPLOAD}?app_id=demo")))
        .send()
        .unwrap();
    expect_envelope(resp, 401, 10003);
}

#[test]
fn download_credentials_store_token_and_sdk_sign() {
    let fg = Filegate::start();
    let name = upload_avatar(&fg, "demo", 42);
    let other_name = upload_avatar(&fg, "demo", 43);
    let path = "/file/download/avatar";
    let query = format!("object_name={name}&app_id=demo");
    let get = |q: &str, headers: &[(&str, &str)]| {
        let mut req = client().get(fg.url(&format!("{path}?{q}")));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().expect("download")
    };
    let ok = |resp: reqwest::blocking::Response| {
        assert_eq!(resp.status(), 200, "{:?}", resp.text());
    };

    // Store tokens: header and query, scoped and unscoped.
    let store = token("demo", 42, TokenKind::Store);
    ok(get(&query, &[("store_token", &store)]));
    ok(get(&format!("{query}&store_token={store}"), &[]));
    let mut scoped = TokenClaims::new("demo", 42, TokenKind::Store, 3600);
    scoped.obj = Some(format!("demo/{name}"));
    let scoped = scoped.mint(&Secret::new(DEMO_SECRET)).unwrap();
    ok(get(&query, &[("store_token", &scoped)]));
    let other_query = format!("object_name={other_name}&app_id=demo");
    expect_envelope(get(&other_query, &[("store_token", &scoped)]), 403, 10010);
    let mut prefix = TokenClaims::new("demo", 42, TokenKind::Store, 3600);
    prefix.obj = Some("demo/avatar/user/42/".into());
    let prefix = prefix.mint(&Secret::new(DEMO_SECRET)).unwrap();
    ok(get(&query, &[("store_token", &prefix)]));
    expect_envelope(get(&other_query, &[("store_token", &prefix)]), 403, 10010);
    let expired_store = mint("demo", 42, TokenKind::Store, -120, DEMO_SECRET);
    expect_envelope(get(&query, &[("store_token", &expired_store)]), 401, 10008);
    let user_as_store = token("demo", 42, TokenKind::User);
    expect_envelope(get(&query, &[("store_token", &user_as_store)]), 401, 10008);
    // Store tokens do not open upload routes.
    let resp = client()
        .get(fg.url(&format!("{UPLOAD}?app_id=demo")))
        .header("store_token", &store)
        .send()
        .unwrap();
    expect_envelope(resp, 401, 10003);

    // sdk_sign over the exact URL.
    let sign_with = |secret: &str, q: &str, expires: u64| {
        sdk_sign::sign(
            path,
            "demo",
            &Query::parse(q),
            expires,
            &Secret::new(secret),
        )
    };
    let now = filegate::now_secs();
    let q = format!("object_name={name}&w=100");
    let s = sign_with(DEMO_SECRET, &q, now + 600);
    ok(get(&format!("{q}&app_id=demo&sdk_sign={s}"), &[]));
    ok(get(&format!("{q}&app_id=demo"), &[("sdk_sign", &s)]));
    let s_old = sign_with(DEMO_OLD_SECRET, &q, now + 600);
    ok(get(&format!("{q}&app_id=demo&sdk_sign={s_old}"), &[]));
    let s_gone = sign_with(DEMO_GONE_SECRET, &q, now + 600);
    expect_envelope(
        get(&format!("{q}&app_id=demo&sdk_sign={s_gone}"), &[]),
        401,
        10008,
    );
    let s_expired = sign_with(DEMO_SECRET, &q, now - 120);
    expect_envelope(
        get(&format!("{q}&app_id=demo&sdk_sign={s_expired}"), &[]),
        401,
        10008,
    );
    // The same signature on another URL (w changed) is refused.
    expect_envelope(
        get(
            &format!("object_name={name}&w=200&app_id=demo&sdk_sign={s}"),
            &[],
        ),
        401,
        10008,
    );
    expect_envelope(
        get(&format!("{q}&app_id=demo&sdk_sign=123.abc"), &[]),
        401,
        10008,
    );
    expect_envelope(
        get(&format!("{q}&app_id=demo&sdk_sign=nonsense"), &[]),
        401,
        10008,
    );
    // An sdk_sign carries no identity.
    expect_envelope(
        get(
            &format!("{q}&app_id=demo&sdk_sign={s}"),
            &[("user_id", "42")],
        ),
        403,
        10010,
    );
    // Nothing at all.
    expect_envelope(get(&query, &[]), 401, 10003);
}

#[test]
fn file_sign_forged_or_altered_is_refused() {
    let fg = Filegate::start();
    let t = token("demo", 7, TokenKind::User);
    let g = grant(
        &fg,
        "demo",
        &t,
        "/file/upload/chat?file_type=100&to_id=9&to_type=1",
    );
    let sign = g["file_sign"].as_str().unwrap().to_string();
    let download = |s: &str| {
        client()
            .get(fg.url(&format!("/file/download/chat?app_id=demo&file_sign={s}")))
            .header("access-token", &t)
            .send()
            .unwrap()
    };
    // Not uploaded yet: valid sign, no object.
    expect_envelope(download(&sign), 404, 404);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = sign.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    claims["key"] = serde_json::json!("demo/chat/1/10/20260101/x.jpg");
    let altered = format!(
        "{}.{}.{}",
        parts[0],
        b64.encode(claims.to_string()),
        parts[2]
    );
    expect_envelope(download(&altered), 401, 10008);
    let forged = filegate::jwt::mint(&claims, &Secret::new("attacker-secret-0123456789")).unwrap();
    expect_envelope(download(&forged), 401, 10008);
    // A file_sign of another app.
    let other = grant(
        &fg,
        "other",
        &token("other", 7, TokenKind::User),
        "/file/upload/chat?file_type=100&to_id=9",
    );
    expect_envelope(download(other["file_sign"].as_str().unwrap()), 401, 10008);
    // Forward verifies it too.
    let resp = client()
        .get(fg.url(&format!(
            "/file/upload/forward?app_id=demo&to_id=5&file_sign={altered}"
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    expect_envelope(resp, 401, 10008);
}

#[test]
fn acting_identity_rules() {
    let fg = Filegate::start();
    let admin_all = token("demo", 1, TokenKind::Admin);
    let admin_10 = admin_token_for("demo", 1, &[10]);
    let user = token("demo", 42, TokenKind::User);
    let req = |path: &str, t: &str, headers: &[(&str, &str)]| {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut r = client()
            .get(fg.url(&format!("{path}{sep}app_id=demo")))
            .header("access-token", t);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.send().unwrap()
    };
    // admin + user_id: acts as (uploads for) that user.
    let v = expect_envelope(req(UPLOAD, &admin_all, &[("user_id", "77")]), 200, 200);
    assert!(
        v["data"]["object_name"]
            .as_str()
            .unwrap()
            .starts_with("avatar/user/77/"),
        "{v}"
    );
    // admin + group_id in / out of `groups`; absent groups = all.
    expect_envelope(req(UPLOAD, &admin_10, &[("group_id", "10")]), 200, 200);
    expect_envelope(req(UPLOAD, &admin_10, &[("group_id", "11")]), 403, 10010);
    expect_envelope(req(UPLOAD, &admin_all, &[("group_id", "11")]), 200, 200);
    // Group avatars: the admin of that group only.
    expect_envelope(
        req("/file/upload/avatar/group?group_id=10", &admin_10, &[]),
        200,
        200,
    );
    expect_envelope(
        req("/file/upload/avatar/group?group_id=11", &admin_10, &[]),
        403,
        10010,
    );
    expect_envelope(
        req("/file/upload/avatar/group?group_id=11", &admin_all, &[]),
        200,
        200,
    );
    expect_envelope(
        req("/file/upload/avatar/group?group_id=10", &user, &[]),
        403,
        10010,
    );
    // user + own user_id, other user_id, group_id.
    let v = expect_envelope(req(UPLOAD, &user, &[("user_id", "42")]), 200, 200);
    assert!(v["data"]["object_name"]
        .as_str()
        .unwrap()
        .starts_with("avatar/user/42/"));
    let v = expect_envelope(req(UPLOAD, &user, &[("user_id", "43")]), 403, 10010);
    assert!(v["message"].as_str().unwrap().contains("own id"), "{v}");
    let v = expect_envelope(req(UPLOAD, &user, &[("group_id", "10")]), 403, 10010);
    assert!(v["message"].as_str().unwrap().contains("admin"), "{v}");
    // Malformed identity headers are named.
    let v = expect_envelope(req(UPLOAD, &user, &[("user_id", "abc")]), 400, 400);
    assert!(v["message"].as_str().unwrap().starts_with("user_id"));
    // Chat uploads: the uploader is the acting user.
    let v = expect_envelope(
        req(
            "/file/upload/chat?file_type=102&to_id=5&to_type=2",
            &admin_all,
            &[("user_id", "77")],
        ),
        200,
        200,
    );
    let sign = v["data"]["file_sign"].as_str().unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(sign.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["fr"], 77);
    assert_eq!(claims["tt"], 2);
    assert_eq!(claims["ti"], 5);
}

#[test]
fn unknown_route_wrong_method_bad_params() {
    let fg = Filegate::start();
    let t = token("demo", 7, TokenKind::User);
    expect_envelope(
        client()
            .get(fg.url("/file/nope?app_id=demo"))
            .send()
            .unwrap(),
        404,
        404,
    );
    expect_envelope(client().get(fg.url("/file")).send().unwrap(), 404, 404);
    let resp = client()
        .post(fg.url(&format!("{UPLOAD}?app_id=demo")))
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(resp.headers().get("allow").unwrap(), "GET, HEAD, OPTIONS");
    expect_envelope(resp, 405, 405);
    let resp = client()
        .delete(fg.url("/file/download/chat"))
        .send()
        .unwrap();
    expect_envelope(resp, 405, 405);
    let bad = |q: &str| {
        client()
            .get(fg.url(&format!("/file/upload/chat?app_id=demo&{q}")))
            .header("access-token", &t)
            .send()
            .unwrap()
    };
    for (q, param) in [
        ("to_id=1", "file_type"),
        ("file_type=999&to_id=1", "file_type"),
        ("file_type=100", "to_id"),
        ("file_type=100&to_id=x", "to_id"),
        ("file_type=100&to_id=1&to_type=3", "to_type"),
    ] {
        let v = expect_envelope(bad(q), 400, 400);
        assert!(
            v["message"].as_str().unwrap().starts_with(param),
            "{q}: {v}"
        );
    }
}

/// The README's Python recipes (the public contract app servers copy) run as written
/// and filegate accepts what they make: an access token and an sdk_sign.
#[test]
fn readme_python_recipes_are_accepted() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let blocks: Vec<&str> = readme
        .split("```python\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .collect();
    assert!(
        blocks.len() >= 2,
        "README lost its Python recipes (mint, sdk_sign)"
    );
    let fg = Filegate::start();
    let name = upload_avatar(&fg, "demo", 42);
    let query = format!("object_name={name}&image_type=1");
    let driver = format!(
        "\nprint(mint('demo', 42, 'user', '{DEMO_SECRET}'))\nprint(sdk_sign('/file/download/avatar', '{query}', 'demo', '{DEMO_SECRET}'))\n"
    );
    let program = format!("{}\n{}\n{driver}", blocks[0], blocks[1]);
    let out = std::process::Command::new("python3")
        .args(["-c", &program])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "the README recipe failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let mut lines = printed.lines();
    let (token, sign) = (lines.next().unwrap(), lines.next().unwrap());
    let resp = client()
        .get(fg.url("/file/upload/avatar/user?app_id=demo"))
        .header("access-token", token)
        .send()
        .unwrap();
    expect_envelope(resp, 200, 200);
    let resp = client()
        .get(fg.url(&format!(
            "/file/download/avatar?{query}&app_id=demo&sdk_sign={sign}"
        )))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), small_jpeg().as_slice());
    // One character of the signature changed: refused, so the test can fail.
    let i = sign.find('.').unwrap() + 5;
    let swap = if &sign[i..=i] == "A" { "B" } else { "A" };
    let altered = format!("{}{swap}{}", &sign[..i], &sign[i + 1..]);
    let resp = client()
        .get(fg.url(&format!(
            "/file/download/avatar?{query}&app_id=demo&sdk_sign={altered}"
        )))
        .send()
        .unwrap();
    expect_envelope(resp, 401, 10008);
}
