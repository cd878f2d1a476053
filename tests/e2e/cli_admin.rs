//! The command line (`check`, `token`, `sign`), the admin listener, the access log,
//! and the shipped config.

use std::process::Command;

use filegate::claims::TokenKind;

use crate::harness::*;

fn filegate(args: &[&str]) -> std::process::Output {
    Command::new(built_binary("filegate"))
        .args(args)
        .output()
        .expect("run filegate")
}

#[test]
fn check_names_the_key_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("listen: nowhere\n", "listen"),
        (
            "apps:\n  demo:\n    secrets: [short]\n",
            "apps.demo.secrets[0]",
        ),
        (
            "apps:\n  demo:\n    secret: [0123456789abcdef0]\n",
            "apps.demo.secret",
        ),
        (
            "store:\n  kind: s3\n  endpoint: http://127.0.0.1:9\n",
            "store.access_key_id",
        ),
        ("store:\n  kind: tape\n", "store.kind"),
        (
            "apps:\n  demo:\n    secrets: [0123456789abcdef0]\n    download_mode: stream\n",
            "apps.demo.download_mode",
        ),
        ("apps: {}\n", "apps"),
    ];
    for (yaml, key) in cases {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = filegate(&["check", "-c", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{yaml} should fail");
        assert!(
            stderr.contains(&format!("`{key}`")),
            "{yaml}: expected key {key} in: {stderr}"
        );
    }
    let out = filegate(&["check", "-c", "conf/filegate.yaml"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `check` says where `strip_location` cannot hold: an app in redirect mode (the
/// store's bytes go out unchanged) and pictures larger than the cache streams whole.
#[test]
fn check_warns_where_location_would_leak() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leaky.yaml");
    std::fs::write(
        &path,
        "cache:\n  memory: 16 MiB\napps:\n  direct:\n    secrets: [0123456789abcdef0]\n    download_mode: redirect\n  plain:\n    secrets: [0123456789abcdef1]\n    strip_location: false\n    download_mode: redirect\n",
    )
    .unwrap();
    let out = filegate(&["check", "-c", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("apps.direct: strip_location does not apply in redirect mode"),
        "{stderr}"
    );
    assert!(
        stderr.contains("apps.direct: pictures up to 31457280 bytes"),
        "{stderr}"
    );
    // An app that keeps location on purpose is not warned about.
    assert!(!stderr.contains("apps.plain"), "{stderr}");
}

#[test]
fn shipped_config_is_the_embedded_default() {
    let shipped =
        filegate::config::Config::load(std::path::Path::new("conf/filegate.yaml")).expect("parses");
    shipped.validate().expect("valid");
    let builtin = filegate::config::Config::default();
    // Debug output covers every field (secrets print as their length only).
    assert_eq!(format!("{shipped:?}"), format!("{builtin:?}"));
}

#[test]
fn token_and_sign_are_accepted_by_the_server() {
    let fg = Filegate::start();
    let conf = fg.config_path.to_str().unwrap().to_string();
    let name = upload_avatar(&fg, "demo", 42);
    for kind in ["user", "admin"] {
        let out = filegate(&[
            "token", "--app", "demo", "--sub", "42", "--kind", kind, "--ttl", "10m", "-c", &conf,
        ]);
        assert!(out.status.success());
        let t = String::from_utf8(out.stdout).unwrap();
        assert_eq!(t.lines().count(), 1, "the token alone on stdout");
        let resp = client()
            .get(fg.url("/file/upload/avatar/user?app_id=demo"))
            .header("access-token", t.trim())
            .send()
            .unwrap();
        expect_envelope(resp, 200, 200);
    }
    let out = filegate(&[
        "token", "--app", "demo", "--sub", "1", "--kind", "admin", "--groups", "3,4", "-c", &conf,
    ]);
    let admin = String::from_utf8(out.stdout).unwrap();
    let resp = client()
        .get(fg.url("/file/upload/avatar/group?app_id=demo&group_id=4"))
        .header("access-token", admin.trim())
        .send()
        .unwrap();
    expect_envelope(resp, 200, 200);
    let resp = client()
        .get(fg.url("/file/upload/avatar/group?app_id=demo&group_id=5"))
        .header("access-token", admin.trim())
        .send()
        .unwrap();
    expect_envelope(resp, 403, 10010);
    let out = filegate(&[
        "token", "--app", "demo", "--sub", "42", "--kind", "store", "-c", &conf,
    ]);
    let store = String::from_utf8(out.stdout).unwrap();
    let resp = client()
        .get(fg.url(&format!(
            "/file/download/avatar?app_id=demo&object_name={name}"
        )))
        .header("store_token", store.trim())
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);

    let url = fg.url(&format!(
        "/file/download/avatar?app_id=demo&object_name={name}&image_type=1"
    ));
    let out = filegate(&["sign", &url, "--ttl", "5m", "-c", &conf]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let signed = String::from_utf8(out.stdout).unwrap();
    assert!(signed.trim().starts_with(&url) && signed.contains("&sdk_sign="));
    let resp = client().get(signed.trim()).send().unwrap();
    assert_eq!(resp.status(), 200);
    // A token for an app the config lacks is refused with a message.
    let out = filegate(&[
        "token", "--app", "nope", "--sub", "1", "--kind", "user", "-c", &conf,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn a_taken_port_stops_the_start_naming_it() {
    // Held by this test for as long as filegate tries.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("its address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(built_binary("filegate"))
        .arg("serve")
        .current_dir(dir.path())
        .env("FILEGATE_LISTEN", &address)
        .env(
            "FILEGATE_ADMIN_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run filegate");
    // At once, not after pingora's 30 s of retries (or never: it kept running).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let status = status.expect("filegate still running 10 s beside a taken port");
    assert!(!status.success(), "filegate served beside a taken port");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(
        stderr.contains("`listen`") && stderr.contains(&address),
        "the message names the key and the address: {stderr}"
    );
    drop(taken);
}

#[test]
fn healthz_metrics_and_access_log() {
    let fg = Filegate::start();
    let health = client()
        .get(format!("{}/healthz", fg.admin))
        .send()
        .unwrap();
    expect_envelope(health, 200, 200);
    let t = token("demo", 9, TokenKind::User);
    let before = fg.metric(r#"filegate_requests_total{route="upload_avatar_user",status="200"}"#);
    for _ in 0..3 {
        let resp = client()
            .get(fg.url(&format!(
                "/file/upload/avatar/user?app_id=demo&access-token={t}"
            )))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = client()
        .get(fg.url("/file/upload/avatar/user?app_id=demo"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    // The logging phase runs just after the answer (metrics, then the access line,
    // flushed within 100 ms): wait for the four lines.
    let access_lines = |log: &str| -> Vec<serde_json::Value> {
        log.lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).expect("access lines are JSON"))
            .filter(|v: &serde_json::Value| v["route"] == "upload_avatar_user")
            .collect()
    };
    let log = fg.log_when(|log| access_lines(log).len() >= 4);
    let text = fg.metrics();
    assert_eq!(
        metric_value(
            &text,
            r#"filegate_requests_total{route="upload_avatar_user",status="200"}"#
        ) - before,
        3.0,
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"filegate_requests_total{route="upload_avatar_user",status="401"}"#
        ),
        1.0
    );
    assert!(text.contains("filegate_request_duration_seconds_bucket{route=\"upload_avatar_user\""));
    // One JSON access line per request, never the credential.
    let lines = access_lines(&log);
    assert_eq!(lines.len(), 4, "{log}");
    assert_eq!(lines[0]["principal"], "user:9");
    assert_eq!(lines[0]["app"], "demo");
    assert!(lines[0]["duration_ms"].as_f64().is_some());
    assert!(!log.contains(&t), "a credential reached the log");
    assert!(
        !log.contains(&t[t.len() - 20..]),
        "part of a credential reached the log"
    );
}
