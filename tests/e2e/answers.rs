//! Answers written in one place (issue 17): every error of the download routes,
//! the 416 of a `Range` beyond the object included, goes through the one envelope
//! writer, so it honours an app's `errors_as_http_200` and never lets a cache keep it;
//! and config defaults that follow each other (`cache.max_object` from
//! `cache.memory`), with the counters operators watch registered from the start.

use std::process::Command;

use crate::harness::*;
use crate::storage_suite::{pseudo_random, uploaded, user_token};

fn chat_file(fg: &Filegate, app: &str, bytes: &[u8]) -> String {
    let g = uploaded(
        fg,
        app,
        &user_token(app),
        "/file/upload/chat?file_type=100&to_id=1&file_name=f.bin",
        "f.bin",
        "application/octet-stream",
        bytes,
    );
    fg.url(&format!(
        "/file/download/chat?app_id={app}&file_sign={}",
        g["file_sign"].as_str().expect("file_sign")
    ))
}

#[test]
fn an_unsatisfiable_range_is_the_envelope_of_the_one_writer() {
    let fg = Filegate::start();
    let bytes = pseudo_random(5_000, 3);
    for (app, http_status) in [("demo", 416), ("legacy", 200)] {
        let url = chat_file(&fg, app, &bytes);
        for _ in 0..2 {
            // A miss (the fill) and then a hit answer the same.
            let resp = client()
                .get(&url)
                .header("access-token", user_token(app))
                .header("range", "bytes=9999999-")
                .send()
                .expect("download");
            assert_eq!(resp.status(), http_status, "{app}");
            assert_eq!(resp.headers()["content-range"], "bytes */5000", "{app}");
            assert_eq!(resp.headers()["cache-control"], "no-store", "{app}");
            assert_eq!(
                resp.headers()["content-type"],
                "application/json; charset=utf-8"
            );
            let v: serde_json::Value = resp.json().expect("envelope");
            assert_eq!(v["code"], 416, "{app}: {v}");
            assert!(v["data"].is_null());
            assert!(
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("5000 bytes")),
                "{v}"
            );
        }
    }
    let metrics = fg.metrics();
    for series in [
        "filegate_access_log_dropped_total 0",
        r#"filegate_cache_dropped_total{reason="buffer_full"} 0"#,
        r#"filegate_cache_dropped_total{reason="queue_full"} 0"#,
        r#"filegate_cache_dropped_total{reason="closed"} 0"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} in:\n{metrics}"
        );
    }
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("foyer_hybrid_op_total{")),
        "foyer's own metrics are exported"
    );
}

#[test]
fn max_object_follows_the_memory_tier_unless_set() {
    let dir = tempfile::tempdir().expect("dir");
    let check = |yaml: &str| {
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).expect("config");
        Command::new(built_binary("filegate"))
            .args(["check", "-c", path.to_str().expect("path")])
            .output()
            .expect("check")
    };
    // Only `cache.memory` set (what `make soak` does): valid.
    let out = check("cache:\n  memory: 32 MiB\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An explicit max_object above half of memory: refused, naming the key.
    let out = check("cache:\n  memory: 32 MiB\n  max_object: 20 MiB\n");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`cache.max_object`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And a node with a small memory tier streams what it cannot hold.
    let fg = Filegate::start_with(Setup {
        extra: "cache:\n  memory: 8 MiB\n".into(),
        ..Setup::default()
    });
    let big = pseudo_random(5 << 20, 4);
    let url = chat_file(&fg, "demo", &big);
    for _ in 0..2 {
        let resp = client()
            .get(&url)
            .header("access-token", user_token("demo"))
            .send()
            .expect("download");
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["x-cache-status"],
            "BYPASS",
            "5 MiB > 8 MiB / 2"
        );
        assert_eq!(resp.bytes().expect("body").len(), big.len());
    }
}
