//! `filegate seed` (issue 14): the real binary seeds a running filegate (embedded
//! store, and s3s-fs), then every URL it wrote answers 200 with no header, wrk
//! replays wrk.lua with no error, k6 runs k6.js, vegeta.txt parses as vegeta reads
//! it; a resumed run uploads only what is missing; bad input fails, naming the
//! cause, and leaves no urls.txt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use filegate::query::Query;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::fixtures::{ffprobe, vipsheader};
use crate::harness::*;
use crate::storage_suite::{Backend, Env};

both_stores!(seed_kit_replays_cleanly);

/// Files the seed test uploads: the opening round of the plan covers every kind
/// and variant (photos up to 4000x3000, GIF, PNG, four voice lengths, two clips).
const COUNT: &str = "18";

fn seed(args: &[&str]) -> Output {
    Command::new(built_binary("filegate"))
        .arg("seed")
        .args(args)
        .output()
        .expect("run filegate seed")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The seed.json entry a URL downloads (by its object_name or file_sign).
fn entry_of<'a>(files: &'a [Value], url: &str) -> &'a Value {
    let query = Query::parse(url.split_once('?').expect("query").1);
    let by = |field: &str| query.get(field).ok().flatten().map(str::to_string);
    let (field, value) = match (by("object_name"), by("file_sign")) {
        (Some(name), _) => ("object_name", name),
        (None, Some(sign)) => ("file_sign", sign),
        _ => panic!("URL names no object: {url}"),
    };
    files
        .iter()
        .find(|f| f[field].as_str() == Some(value.as_str()))
        .unwrap_or_else(|| panic!("no seed.json entry for {url}"))
}

/// Download answers by (status == 200, count) on the download routes.
fn download_statuses(fg: &Filegate) -> (f64, f64) {
    let (mut ok, mut other) = (0.0, 0.0);
    for line in fg.metrics().lines() {
        let Some(rest) = line.strip_prefix("filegate_requests_total{") else {
            continue;
        };
        if !rest.contains("route=\"download_") {
            continue;
        }
        let value: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if rest.contains("status=\"200\"") {
            ok += value;
        } else {
            other += value;
        }
    }
    (ok, other)
}

fn seed_kit_replays_cleanly(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    // POST forms on the embedded store, presigned PUTs (If-None-Match: * included)
    // on S3.
    let (app, method) = match backend {
        Backend::Embedded => ("demo", "POST"),
        Backend::S3 => ("putapp", "PUT"),
    };
    let work = tempfile::tempdir().expect("tmp");
    let kit = work.path().join("kit");
    let kit_s = kit.to_str().expect("path");
    let conf = fg.config_path.to_str().expect("path");
    let args = [
        "--url", &fg.base, "-c", conf, "--app", app, "--count", COUNT, "--out", kit_s, "--ttl",
        "2h", "--seed", "11",
    ];
    let out = seed(&args);
    assert!(out.status.success(), "seed failed: {}", stderr(&out));
    assert!(
        stderr(&out).contains("18 file(s) uploaded"),
        "{}",
        stderr(&out)
    );

    // seed.json: every kind, every variant of the opening round, all stored.
    // The kit's files hold signed URLs: readable by their owner only.
    for name in ["seed.json", "urls.txt", "vegeta.txt"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(kit.join(name))
            .expect(name)
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} has mode {:o}", mode & 0o777);
    }
    let state = read_json(&kit.join("seed.json"));
    let files = state["files"].as_array().expect("files").clone();
    assert_eq!(files.len(), 18);
    let kinds: BTreeSet<&str> = files.iter().filter_map(|f| f["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["avatar", "picture", "voice", "video", "file"])
    );
    let variants: BTreeSet<&str> = files.iter().filter_map(|f| f["variant"].as_str()).collect();
    for v in [
        "jpeg-4000x3000",
        "jpeg-1600x1200",
        "gif-320x240-12frames",
        "png-alpha-800x600",
        "amr-nb-2s",
        "amr-nb-40s",
        "h264-640x360-3s",
        "group-avatar-jpeg-512x512",
        "pdf-3pages",
    ] {
        assert!(variants.contains(v), "{v} missing from {variants:?}");
    }
    for f in &files {
        assert_eq!(f["upload_method"], method, "{f}");
        let key = f["key"].as_str().expect("key");
        assert!(key.starts_with(&format!("{app}/")), "{key}");
        assert!(env.stored(key), "{key} is not in the store");
    }

    // urls.txt: absolute, signed, the mix (hot avatars repeated), all kinds.
    let urls_text = std::fs::read_to_string(kit.join("urls.txt")).expect("urls.txt");
    let lines: Vec<&str> = urls_text.lines().collect();
    assert!(lines.len() >= 1000, "{} lines", lines.len());
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for line in &lines {
        assert!(
            line.starts_with(&format!("{}/file/download/", fg.base)),
            "{line}"
        );
        assert!(line.contains("&sdk_sign="), "{line}");
        *counts.entry(line).or_default() += 1;
    }
    // The documented mix (README, src/seed/output.rs), here with 3 avatars (all of
    // them hot), 6 pictures, 4 voice messages, 2 clips, 3 plain files.
    let is = |l: &str, route: &str, param: Option<&str>| {
        l.contains(route)
            && match param {
                Some(p) => l.contains(p),
                None => !l.contains("image_type=") && !l.contains("format="),
            }
    };
    let expected = [
        (
            "avatar thumbnails",
            "/avatar?",
            Some("image_type=2"),
            0.30 + 0.10 * 2.0 / 3.0,
        ),
        ("avatar originals", "/avatar?", None, 0.10 / 3.0),
        (
            "hot avatar 120x120",
            "/avatar?",
            Some("w=120"),
            0.20 + 0.10 / 3.0,
        ),
        ("chat thumbnails", "/chat?", Some("image_type=2"), 0.35),
        ("video covers", "/chat?", Some("image_type=3"), 0.05 * 0.8),
        ("voice MP3s", "/chat?", Some("format=mp3"), 0.08 * 0.75),
        (
            "chat originals",
            "/chat?",
            None,
            0.07 + 0.08 * 0.25 + 0.05 * 0.2 + 0.05,
        ),
    ];
    for (name, route, param, want) in expected {
        let got = lines.iter().filter(|l| is(l, route, param)).count() as f64 / lines.len() as f64;
        assert!(
            (got - want).abs() < 0.01,
            "{name}: {got:.4} of urls.txt, expected {want:.4}"
        );
    }

    // Every distinct URL with no header: 200 and the right content.
    let plain = client();
    let mut seen_kinds = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for url in counts.keys() {
        let entry = entry_of(&files, url);
        let kind = entry["kind"].as_str().expect("kind");
        seen_kinds.insert(kind.to_string());
        let resp = plain.get(*url).send().expect("download");
        assert_eq!(resp.status(), 200, "{url}: {:?}", resp.text());
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = resp.bytes().expect("body").to_vec();
        let q = Query::parse(url.split_once('?').expect("query").1);
        let param = |name: &str| q.get(name).ok().flatten().map(str::to_string);
        match (param("image_type").as_deref(), param("format").as_deref()) {
            (Some("2"), _) => {
                seen.insert("thumbnail");
                assert!(ct.starts_with("image/"), "{url}: {ct}");
                let side: u32 = param("w").and_then(|w| w.parse().ok()).expect("w");
                let (w, h, _) = vipsheader(&body);
                assert!(w <= side && h <= side && w.max(h) > 0, "{url}: {w}x{h}");
            }
            (Some("3"), _) => {
                seen.insert("cover");
                assert_eq!(kind, "video", "{url}");
                assert_eq!(ct, "image/jpeg", "{url}");
                let (w, h, loader) = vipsheader(&body);
                assert!(w <= 320 && h <= 320, "{url}: {w}x{h}");
                assert_eq!(loader, "jpegload");
            }
            (None, Some("mp3")) => {
                seen.insert("mp3");
                assert_eq!(ct, "audio/mpeg", "{url}");
                let probe = ffprobe(&body, "stream=codec_name");
                assert_eq!(probe["codec_name"], "mp3", "{url}");
            }
            (None, None) => {
                seen.insert("original");
                assert_eq!(
                    ct.split(';').next().unwrap_or(""),
                    entry["content_type"],
                    "{url}"
                );
                assert_eq!(body.len() as u64, entry["size"].as_u64().expect("size"));
                let sha: String = Sha256::digest(&body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                assert_eq!(sha, entry["sha256"], "{url}");
                check_original(entry, &body);
            }
            other => panic!("unexpected URL parameters {other:?}: {url}"),
        }
    }
    assert_eq!(seen_kinds, kinds.iter().map(|k| k.to_string()).collect());
    assert_eq!(
        seen,
        BTreeSet::from(["thumbnail", "cover", "mp3", "original"])
    );

    // vegeta.txt: vegeta's target format, the same requests as urls.txt.
    let vegeta = std::fs::read_to_string(kit.join("vegeta.txt")).expect("vegeta.txt");
    let targets = parse_vegeta_targets(&vegeta).unwrap_or_else(|e| panic!("vegeta.txt: {e}"));
    assert_eq!(targets.len(), lines.len());
    for (t, line) in targets.iter().zip(&lines) {
        assert_eq!((t.method.as_str(), t.url.as_str()), ("GET", *line));
        assert!(t.headers.is_empty() && t.body.is_none());
    }

    // wrk replays wrk.lua, round robin then Zipf: only 200s.
    let before = download_statuses(fg);
    let wrk_lua = kit.join("wrk.lua");
    let mut requests = 0u64;
    for mode in [vec![], vec!["--", "zipf", "1.1"]] {
        let out = Command::new("wrk")
            .args([
                "-t2",
                "-c8",
                "-d2s",
                "-s",
                wrk_lua.to_str().expect("path"),
                &fg.base,
            ])
            .args(&mode)
            .output()
            .expect("wrk (scripts/setup.sh test installs it)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "wrk {mode:?}: {text}{}", stderr(&out));
        assert!(!text.contains("Non-2xx"), "wrk {mode:?}: {text}");
        let summary = text
            .lines()
            .find_map(|l| l.strip_prefix("filegate-wrk: "))
            .unwrap_or_else(|| panic!("no summary from wrk.lua: {text}"));
        let field = |name: &str| -> u64 {
            summary
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {summary}"))
        };
        for errors in [
            "status_errors",
            "connect_errors",
            "read_errors",
            "write_errors",
            "timeouts",
        ] {
            assert_eq!(field(errors), 0, "wrk {mode:?}: {summary}");
        }
        assert!(field("requests") > 100, "wrk {mode:?}: {summary}");
        requests += field("requests");
    }
    let after = download_statuses(fg);
    assert_eq!(after.1, before.1, "non-200 downloads during the wrk runs");
    assert!(
        after.0 - before.0 >= requests as f64,
        "filegate counted {} 200s for {requests} wrk requests",
        after.0 - before.0
    );

    // k6 runs k6.js (its thresholds fail the run on any non-200).
    let k6 = tool("bin/k6");
    let out = Command::new(&k6)
        .args([
            "run",
            "--no-usage-report",
            "--quiet",
            "-e",
            "VUS=2",
            "-e",
            "DURATION=2s",
        ])
        .arg(kit.join("k6.js"))
        .env("K6_NO_USAGE_REPORT", "true")
        .output()
        .expect("k6");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "k6: {text}{}", stderr(&out));
    assert!(
        text.contains("checks_succeeded") && text.contains("100.00%"),
        "k6: {text}"
    );

    // An interrupted run resumes: forget the last 3 files, run again, and only those
    // are made and uploaded (the others keep their keys).
    let mut state = read_json(&kit.join("seed.json"));
    let kept: Vec<Value> = files[..15].to_vec();
    state["files"] = Value::Array(kept.clone());
    std::fs::write(kit.join("seed.json"), state.to_string()).expect("write");
    let out = seed(&args);
    assert!(out.status.success(), "resume failed: {}", stderr(&out));
    assert!(
        stderr(&out).contains("3 file(s) uploaded") && stderr(&out).contains("15 already there"),
        "{}",
        stderr(&out)
    );
    let resumed = read_json(&kit.join("seed.json"));
    let resumed = resumed["files"].as_array().expect("files");
    assert_eq!(resumed.len(), 18);
    for (old, new) in kept.iter().zip(resumed) {
        assert_eq!(old["key"], new["key"]);
    }
    for (old, new) in files[15..].iter().zip(&resumed[15..]) {
        assert_eq!(
            old["sha256"], new["sha256"],
            "the same seed makes the same file"
        );
        assert_ne!(old["key"], new["key"]);
    }
}

/// What the original of each kind must be, read by real tools.
fn check_original(entry: &Value, body: &[u8]) {
    let variant = entry["variant"].as_str().expect("variant");
    let dims = |v: &str| -> Option<(u32, u32)> {
        let spec = v.split('-').find(|p| p.contains('x'))?;
        let (w, h) = spec.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    };
    match entry["kind"].as_str() {
        Some("avatar" | "picture") => {
            // For the GIF: the first frame's size.
            let (w, h, loader) = vipsheader(body);
            assert_eq!(Some((w, h)), dims(variant), "{variant}");
            let expected = match entry["content_type"].as_str() {
                Some("image/gif") => "gifload",
                Some("image/png") => "pngload",
                _ => "jpegload",
            };
            assert!(loader.starts_with(expected), "{variant}: {loader}");
            if variant.starts_with("gif-") {
                assert_eq!(vips_field(body, "n-pages"), "12", "{variant}");
            }
            if variant.starts_with("png-alpha") {
                assert_eq!(vips_field(body, "bands"), "4", "{variant} has alpha");
            }
        }
        Some("voice") => {
            // Decoded by FFmpeg's own amrnb decoder: one frame per 20 ms.
            let seconds: u64 = variant
                .trim_start_matches("amr-nb-")
                .trim_end_matches('s')
                .parse()
                .expect("seconds");
            let probe = ffprobe_counted(body);
            assert_eq!(probe["codec_name"], "amr_nb", "{variant}");
            assert_eq!(probe["sample_rate"], "8000", "{variant}");
            assert_eq!(
                probe["nb_read_frames"],
                (seconds * 50).to_string(),
                "{variant}"
            );
        }
        Some("video") => {
            let probe = ffprobe(body, "stream=codec_name,width,height");
            assert_eq!(probe["codec_name"], "h264", "{variant}");
            let (w, h) = dims(variant).expect("dims");
            assert_eq!(probe["width"], w.to_string());
            assert_eq!(probe["height"], h.to_string());
        }
        Some("file") => {
            if variant.starts_with("pdf") {
                assert!(body.starts_with(b"%PDF-1.4") && body.ends_with(b"%%EOF\n"));
            }
        }
        other => panic!("unknown kind {other:?}"),
    }
}

/// A temp file holding `body`.
fn tmp_file(body: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(file.path(), body).expect("write");
    file
}

/// One `vipsheader -f` field of an image.
fn vips_field(body: &[u8], field: &str) -> String {
    let file = tmp_file(body);
    let path = file.path().to_str().expect("path");
    crate::fixtures::run("vipsheader", &["-f", field, path])
        .trim()
        .to_string()
}

/// `ffprobe -count_frames`: every frame decoded.
fn ffprobe_counted(body: &[u8]) -> BTreeMap<String, String> {
    let file = tmp_file(body);
    let path = file.path().to_str().expect("path");
    let out = crate::fixtures::run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_name,sample_rate,nb_read_frames",
            "-of",
            "default=noprint_wrappers=1",
            path,
        ],
    );
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One target of vegeta's HTTP format.
#[derive(Debug)]
struct VegetaTarget {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

/// vegeta's documented HTTP target format (`vegeta attack -format=http`, as its
/// lazy targeter reads it): blank lines between targets are skipped; a target is
/// `METHOD URL` (methods HEAD GET PUT POST PATCH OPTIONS DELETE, an absolute URL),
/// then header lines `Name: value` (both sides non-empty) until a blank line or the
/// next `METHOD ` line, and at most one `@file` body line. vegeta reads lines with a
/// 64 KiB limit.
fn parse_vegeta_targets(text: &str) -> Result<Vec<VegetaTarget>, String> {
    const METHODS: [&str; 7] = ["HEAD", "GET", "PUT", "POST", "PATCH", "OPTIONS", "DELETE"];
    let starts_target = |l: &str| METHODS.iter().any(|m| l.starts_with(&format!("{m} ")));
    let mut targets = Vec::new();
    let mut lines = text.lines().map(str::trim).peekable();
    while let Some(line) = lines.next() {
        if line.len() > 64 * 1024 {
            return Err(format!(
                "a line of {} bytes (vegeta reads 64 KiB)",
                line.len()
            ));
        }
        if line.is_empty() {
            continue;
        }
        let (method, url) = line
            .split_once(' ')
            .ok_or_else(|| format!("bad target: {line}"))?;
        if !METHODS.contains(&method) {
            return Err(format!("bad method: {method}"));
        }
        let absolute = (url.starts_with("http://") || url.starts_with("https://"))
            && !url.contains(' ')
            && url
                .split("://")
                .nth(1)
                .is_some_and(|rest| rest.split('/').next().is_some_and(|host| !host.is_empty()));
        if !absolute {
            return Err(format!("bad URL: {url}"));
        }
        let mut target = VegetaTarget {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
        };
        while let Some(next) = lines.peek() {
            if next.is_empty() || starts_target(next) {
                break;
            }
            let next = lines.next().unwrap_or_default();
            if let Some(file) = next.strip_prefix('@') {
                target.body = Some(file.to_string());
                break;
            }
            let (k, v) = next
                .split_once(':')
                .map(|(k, v)| (k.trim(), v.trim()))
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| format!("bad header: {next}"))?;
            target.headers.push((k.to_string(), v.to_string()));
        }
        targets.push(target);
    }
    if targets.is_empty() {
        return Err("no targets to attack".into());
    }
    Ok(targets)
}

#[test]
fn vegeta_parser_accepts_and_refuses_what_vegeta_does() {
    let ok = "GET http://a:1/x?y=1\nGET http://a:1/z\n\nPOST http://a:1/p\nX-A: 1\n@body.json\n";
    let t = parse_vegeta_targets(ok).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t[2].headers, vec![("X-A".to_string(), "1".to_string())]);
    assert_eq!(t[2].body.as_deref(), Some("body.json"));
    for bad in [
        "FETCH http://a/",
        "GET /relative",
        "GET http://a/\nnot a header",
        "",
    ] {
        assert!(parse_vegeta_targets(bad).is_err(), "{bad:?} should fail");
    }
}

/// `seed` against a filegate that refuses its credentials: non-zero, the cause
/// named, nothing written.
#[test]
fn seed_with_another_secret_is_refused() {
    let fg = Filegate::start();
    let work = tempfile::tempdir().expect("tmp");
    let conf = work.path().join("wrong.yaml");
    std::fs::write(
        &conf,
        "apps:\n  demo:\n    secrets: [\"not-the-server-secret-0123\"]\n",
    )
    .expect("write");
    let kit = work.path().join("kit");
    let out = seed(&[
        "--url",
        &fg.base,
        "-c",
        conf.to_str().expect("path"),
        "--app",
        "demo",
        "--count",
        "5",
        "--out",
        kit.to_str().expect("path"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refused the access token")
            && err.contains("HTTP 401, code 10008")
            && err.contains("secret"),
        "{err}"
    );
    assert!(!kit.join("urls.txt").exists());
    assert!(
        !kit.exists(),
        "nothing is written before the server accepts"
    );
}

/// A wrong `--url`: nothing listening, or the admin listener. Non-zero, the cause
/// named, no urls.txt.
#[test]
fn seed_with_a_wrong_url_says_why() {
    let work = tempfile::tempdir().expect("tmp");
    let kit = work.path().join("kit");
    let nobody = format!("http://127.0.0.1:{}", free_port());
    let out = seed(&[
        "--url",
        &nobody,
        "--app",
        "demo",
        "--count",
        "5",
        "--out",
        kit.to_str().expect("path"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot reach filegate at {nobody}"))
            && err.contains("Connection refused"),
        "{err}"
    );
    assert!(!kit.join("urls.txt").exists());

    let fg = Filegate::start();
    let conf = fg.config_path.to_str().expect("path");
    let out = seed(&[
        "--url",
        &fg.admin,
        "-c",
        conf,
        "--app",
        "demo",
        "--count",
        "5",
        "--out",
        kit.to_str().expect("path"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no upload route") && err.contains("public listener"),
        "{err}"
    );
    assert!(!kit.join("urls.txt").exists());

    let out = seed(&[
        "--url",
        "127.0.0.1:8080",
        "--app",
        "demo",
        "--count",
        "5",
        "--out",
        kit.to_str().expect("path"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--url 127.0.0.1:8080"),
        "{}",
        stderr(&out)
    );
}

/// Input refused before anything is sent: a `--ttl` above the app's max_sign_ttl,
/// an unknown app, too small a count.
#[test]
fn seed_refuses_bad_arguments() {
    let work = tempfile::tempdir().expect("tmp");
    let kit = work.path().join("kit");
    let kit_s = kit.to_str().expect("path");
    let url = format!("http://127.0.0.1:{}", free_port());
    let cases: [(&[&str], &str); 4] = [
        (
            &["--ttl", "8d"],
            "longer than apps.demo.max_sign_ttl (7days)",
        ),
        (
            &["--app", "nope"],
            "no app `nope` in the embedded default config",
        ),
        (&["--count", "3"], "--count 3: between 5"),
        (&["--kinds", "voice,sticker"], "sticker"),
    ];
    for (extra, message) in cases {
        let mut args = vec!["--url", url.as_str(), "--out", kit_s];
        if !extra.contains(&"--app") {
            args.extend(["--app", "demo"]);
        }
        if !extra.contains(&"--count") {
            args.extend(["--count", "5"]);
        }
        args.extend(extra);
        let out = seed(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(message),
            "{extra:?}: {}",
            stderr(&out)
        );
        assert!(!kit.exists(), "{extra:?} wrote something");
    }
}

/// An upload that fails names the file and the answer; seed.json keeps what was
/// done, and no urls.txt appears.
#[test]
fn seed_names_the_file_that_failed() {
    let fg = Filegate::start();
    let work = tempfile::tempdir().expect("tmp");
    let kit = work.path().join("kit");
    // The `tiny` app takes avatars up to 1 KiB: the first avatar is refused.
    let out = seed(&[
        "--url",
        &fg.base,
        "-c",
        fg.config_path.to_str().expect("path"),
        "--app",
        "tiny",
        "--kinds",
        "avatar",
        "--count",
        "1",
        "--out",
        kit.to_str().expect("path"),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("avatar_00000.jpg (avatar user-avatar-jpeg-640x640")
            && err.contains("GET /file/upload/avatar/user answered HTTP 413, code 413")
            && err.contains("above this file_type's limit"),
        "{err}"
    );
    assert!(!kit.join("urls.txt").exists());
    let state = read_json(&kit.join("seed.json"));
    assert_eq!(state["files"].as_array().map(Vec::len), Some(0));
}
