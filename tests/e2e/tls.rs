//! TLS and HTTP/2 (issue 10): filegate's TLS listener with a certificate from a test CA
//! made at test time, reached by reqwest and curl trusting that CA; h2 downloads
//! behaving as HTTP/1.1 ones; an https store (nginx terminating TLS in front of s3s-fs)
//! on every path; hostile inputs on the TLS port; `filegate check` of the TLS files.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;
use reqwest::blocking::Client;
use serde_json::Value;

use crate::harness::*;
use crate::storage_suite::pseudo_random;
use crate::tls_kit::*;

/// filegate with a TLS listener (public_url on it) and a client trusting its CA.
struct TlsEnv {
    ca: TestCa,
    fg: Filegate,
    https: Client,
}

impl TlsEnv {
    /// `tls_keys`: more `tls:` keys (two-space indented lines).
    fn start(tls_keys: &str) -> TlsEnv {
        TlsEnv::start_with(tls_keys, Setup::default())
    }

    fn start_with(tls_keys: &str, setup: Setup) -> TlsEnv {
        let ca = TestCa::new("filegate test CA");
        let leaf = ca.leaf("filegate-test");
        let fg = Filegate::start_with(Setup {
            tls: Some(leaf.setup(true, tls_keys)),
            ..setup
        });
        let https = https_client(&ca);
        TlsEnv { ca, fg, https }
    }

    /// Asks for a grant over HTTPS; returns `data`.
    fn grant(&self, app: &str, token: &str, path_and_query: &str) -> Value {
        let sep = if path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        let resp = self
            .https
            .get(
                self.fg
                    .tls_url(&format!("{path_and_query}{sep}app_id={app}")),
            )
            .header("access-token", token)
            .send()
            .expect("grant over https");
        expect_envelope(resp, 200, 200)["data"].clone()
    }

    /// Uploads `bytes` as a chat file of `app` over HTTPS; returns its download URL
    /// (https) and the token that may read it.
    fn chat_file(&self, app: &str, bytes: &[u8]) -> (String, String) {
        let t = token(app, 7, TokenKind::User);
        let g = self.grant(app, &t, "/file/upload/chat?file_type=100&to_id=9&to_type=1");
        let (status, body) = post_upload_via(
            &self.https,
            &g,
            "f.bin",
            "application/octet-stream",
            bytes.to_vec(),
        );
        assert_eq!(status, 200, "upload over https: {body}");
        let url = g["download_url"]
            .as_str()
            .expect("download_url")
            .to_string();
        (url, t)
    }
}

fn run_filegate(args: &[&str]) -> std::process::Output {
    std::process::Command::new(built_binary("filegate"))
        .args(args)
        .output()
        .expect("run filegate")
}

/// Splits curl's `-w '%{http_version} %{http_code} %{num_connects}'` line.
fn curl_summary(out: &std::process::Output) -> Vec<(String, u16, u32)> {
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut f = l.split_whitespace();
            let version = f.next().unwrap_or("").to_string();
            let code = f.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            let connects = f.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            (version, code, connects)
        })
        .collect()
}

#[test]
fn the_six_routes_over_https_with_a_client_trusting_the_ca() {
    let env = TlsEnv::start("");
    let fg = &env.fg;
    let tls_base = fg.tls_base.clone().unwrap();
    let get = |url: &str, token: &str| {
        env.https
            .get(url)
            .header("access-token", token)
            .send()
            .expect("https GET")
    };

    // upload/avatar/user, then download/avatar: every handed-out URL is https.
    let user = token("demo", 7, TokenKind::User);
    let g = env.grant("demo", &user, "/file/upload/avatar/user");
    for url in ["upload_url", "download_url"] {
        assert!(
            g[url].as_str().unwrap().starts_with(&tls_base),
            "{url}: {g}"
        );
    }
    let jpeg = small_jpeg();
    let (status, body) = post_upload_via(&env.https, &g, "a.jpg", "image/jpeg", jpeg.clone());
    assert_eq!(status, 200, "{body}");
    let resp = get(g["download_url"].as_str().unwrap(), &user);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), jpeg.as_slice());

    // upload/avatar/group by the group's admin.
    let admin = admin_token_for("demo", 1, &[10]);
    let g = env.grant("demo", &admin, "/file/upload/avatar/group?group_id=10");
    let (status, body) = post_upload_via(&env.https, &g, "g.jpg", "image/jpeg", jpeg.clone());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        get(g["download_url"].as_str().unwrap(), &admin).status(),
        200
    );

    // upload/chat, download/chat, upload/forward and the forwarded download.
    let bytes = pseudo_random(200_000, 3);
    let (url, t) = env.chat_file("demo", &bytes);
    let resp = get(&url, &t);
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), bytes.as_slice());
    let sign = url.split("file_sign=").nth(1).unwrap();
    let resp = get(
        &fg.tls_url(&format!(
            "/file/upload/forward?app_id=demo&to_id=99&to_type=2&file_sign={sign}"
        )),
        &t,
    );
    let forwarded = expect_envelope(resp, 200, 200)["data"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = get(
        &fg.tls_url(&format!(
            "/file/download/chat?app_id=demo&file_sign={forwarded}"
        )),
        &t,
    );
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), bytes.as_slice());

    // Errors are the envelope over TLS too; the plain listener still serves.
    expect_envelope(get(&fg.tls_url("/file/nope"), &t), 404, 404);
    expect_envelope(
        env.https
            .get(fg.tls_url("/file/download/chat?app_id=demo&file_sign=x"))
            .send()
            .unwrap(),
        401,
        10003,
    );
    expect_envelope(client().get(fg.url("/file/nope")).send().unwrap(), 404, 404);
    // A client that does not trust the CA is refused by its own TLS check.
    assert!(client().get(fg.tls_url("/file/nope")).send().is_err());
}

#[test]
fn curl_sees_http2_and_20_parallel_downloads_share_one_connection() {
    let env = TlsEnv::start("");
    let fg = &env.fg;
    let bytes = pseudo_random(300_000, 4);
    let (url, t) = env.chat_file("demo", &bytes);
    let header = format!("access-token: {t}");
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let body_s = body.to_str().unwrap();

    for (flag, want) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = curl(
            &env.ca,
            &[
                flag,
                "-H",
                &header,
                "-o",
                body_s,
                "-w",
                "%{http_version} %{http_code} %{num_connects}\n",
                &url,
            ],
        );
        let lines = curl_summary(&out);
        assert_eq!(lines, vec![(want.to_string(), 200, 1)], "{flag}");
        assert_eq!(std::fs::read(&body).unwrap(), bytes, "{flag} body");
    }

    let h2_before = fg.metric("filegate_tls_connections_total{protocol=\"h2\"}");
    let mut args: Vec<String> = [
        "--http2",
        "--parallel",
        "--parallel-max",
        "20",
        "-H",
        &header,
        "-w",
        "%{http_version} %{http_code} %{num_connects}\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for i in 0..20 {
        args.push("-o".into());
        args.push(dir.path().join(format!("p{i}")).display().to_string());
        // Distinct URLs (an extra parameter the route ignores), one transfer each.
        args.push(format!("{url}&n={i}"));
    }
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = curl(&env.ca, &arg_refs);
    let lines = curl_summary(&out);
    assert_eq!(lines.len(), 20, "{lines:?}");
    assert!(
        lines.iter().all(|(v, c, _)| v == "2" && *c == 200),
        "{lines:?}"
    );
    let connects: u32 = lines.iter().map(|(_, _, n)| n).sum();
    assert_eq!(connects, 1, "20 downloads on one connection: {lines:?}");
    assert_eq!(
        fg.metric("filegate_tls_connections_total{protocol=\"h2\"}") - h2_before,
        1.0,
        "filegate accepted one h2 connection"
    );
    for i in 0..20 {
        assert_eq!(
            std::fs::read(dir.path().join(format!("p{i}"))).unwrap(),
            bytes
        );
    }
}

/// One exchange as curl saw it: version, status, lower-cased headers, body.
struct Exchange {
    version: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Exchange {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn exchange(ca: &TestCa, version_flag: &str, extra: &[&str], url: &str) -> Exchange {
    let dir = tempfile::tempdir().unwrap();
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let mut args = vec![
        version_flag,
        "-D",
        head.to_str().unwrap(),
        "-o",
        body.to_str().unwrap(),
        "-w",
        "%{http_version} %{http_code}",
    ];
    args.extend_from_slice(extra);
    args.push(url);
    let out = curl(ca, &args);
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stdout).to_string();
    let mut f = summary.split_whitespace();
    let version = f.next().unwrap_or("").to_string();
    let status = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = std::fs::read_to_string(&head)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Exchange {
        version,
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

#[test]
fn over_h2_ranges_304_head_and_errors_behave_as_over_http1() {
    let env = TlsEnv::start("");
    let bytes = pseudo_random(150_000, 5);
    let (url, t) = env.chat_file("demo", &bytes);
    let auth = format!("access-token: {t}");
    let etag = env
        .https
        .get(&url)
        .header("access-token", &t)
        .send()
        .unwrap()
        .headers()["etag"]
        .to_str()
        .unwrap()
        .to_string();
    let inm = format!("If-None-Match: {etag}");
    let cases: Vec<(&str, Vec<&str>, String, u16)> = vec![
        ("whole", vec!["-H", &auth], url.clone(), 200),
        (
            "range",
            vec!["-H", &auth, "-H", "Range: bytes=1000-1999"],
            url.clone(),
            206,
        ),
        (
            "suffix range",
            vec!["-H", &auth, "-H", "Range: bytes=-10"],
            url.clone(),
            206,
        ),
        (
            "unsatisfiable",
            vec!["-H", &auth, "-H", "Range: bytes=999999-"],
            url.clone(),
            416,
        ),
        ("304", vec!["-H", &auth, "-H", &inm], url.clone(), 304),
        ("HEAD", vec!["-H", &auth, "-I"], url.clone(), 200),
        ("no credential", vec![], url.clone(), 401),
        (
            "bad credential",
            vec!["-H", "access-token: nope"],
            url.clone(),
            401,
        ),
        (
            "no route",
            vec!["-H", &auth],
            env.fg.tls_url("/file/nope"),
            404,
        ),
        (
            "wrong method",
            vec!["-H", &auth, "-X", "DELETE"],
            url.clone(),
            405,
        ),
    ];
    for (name, extra, target, want) in &cases {
        let h1 = exchange(&env.ca, "--http1.1", extra, target);
        let h2 = exchange(&env.ca, "--http2", extra, target);
        assert_eq!(
            (h1.version.as_str(), h2.version.as_str()),
            ("1.1", "2"),
            "{name}"
        );
        assert_eq!((h1.status, h2.status), (*want, *want), "{name}");
        let head = extra.contains(&"-I");
        if !head {
            assert_eq!(h1.body, h2.body, "{name}: body");
        }
        for header in [
            "content-type",
            "content-length",
            "content-range",
            "etag",
            "accept-ranges",
            "cache-control",
            "content-disposition",
            "x-cache-status",
        ] {
            // The cache status of the first answer may differ (MISS then HIT).
            if header == "x-cache-status" && *want == 200 {
                continue;
            }
            assert_eq!(h1.header(header), h2.header(header), "{name}: {header}");
        }
        match *want {
            // curl -I fails on a HEAD answer that carries DATA; the length is the
            // object's.
            200 if head => assert_eq!(h2.header("content-length"), Some("150000")),
            200 => assert_eq!(h2.body, bytes, "{name}"),
            206 => assert!(h2.header("content-range").is_some(), "{name}"),
            304 => assert!(h2.body.is_empty(), "{name}"),
            _ => {
                let v: Value = serde_json::from_slice(&h2.body)
                    .unwrap_or_else(|e| panic!("{name}: not the envelope ({e})"));
                assert!(
                    v["data"].is_null() && v["message"].is_string(),
                    "{name}: {v}"
                );
            }
        }
    }
    let range = exchange(
        &env.ca,
        "--http2",
        &["-H", &auth, "-H", "Range: bytes=1000-1999"],
        &url,
    );
    assert_eq!(range.body, bytes[1000..2000].to_vec());
}

/// Polls `filegate_requests_in_flight` until it is 0 or `within` passes.
fn wait_no_request_in_flight(fg: &Filegate, within: Duration) -> f64 {
    let deadline = Instant::now() + within;
    loop {
        let n = fg.metric("filegate_requests_in_flight");
        if n == 0.0 || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_h2_stream_reset_mid_download_leaves_no_request_behind() {
    let env = TlsEnv::start("");
    let fg = &env.fg;
    let bytes = pseudo_random(4 * 1024 * 1024, 6);
    let (url, t) = env.chat_file("demo", &bytes);
    let path = &url[url.find("/file/").unwrap()..];
    let authority = fg.tls_addr().to_string();
    // Warm the cache, so every stream below is served from memory at once.
    assert_eq!(
        env.https
            .get(&url)
            .header("access-token", &t)
            .send()
            .unwrap()
            .status(),
        200
    );

    let mut c = RawTls::h2(fg.tls_addr(), &env.ca).expect("h2 connection");
    // A large connection window, the default 64 KiB per stream: each stream gets its
    // first 64 KiB, then waits on flow control.
    c.send(frame::WINDOW_UPDATE, 0, 0, &(64u32 << 20).to_be_bytes())
        .unwrap();
    let block = get_request_block(&authority, path, &[("access-token", &t)]);
    let streams: Vec<u32> = (0..10).map(|i| 1 + 2 * i).collect();
    for s in &streams {
        c.send(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            *s,
            &block,
        )
        .unwrap();
    }
    // Each stream gets its headers and the first window of its body (64 KiB), then
    // waits on flow control: every one of them is in flight.
    let mut started = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while started.len() < streams.len() && Instant::now() < deadline {
        let f = c.read_frame().expect("frame");
        if f.kind == frame::DATA && !f.payload.is_empty() {
            started.insert(f.stream);
        }
        if f.kind == frame::SETTINGS && f.flags & frame::ACK == 0 {
            c.send(frame::SETTINGS, frame::ACK, 0, &[]).unwrap();
        }
    }
    assert_eq!(started.len(), streams.len(), "every stream started");
    assert!(fg.metric("filegate_requests_in_flight") >= 1.0);
    // The client cancels every stream (RST_STREAM CANCEL) and keeps the connection.
    for s in &streams {
        c.send(frame::RST_STREAM, 0, *s, &0x8u32.to_be_bytes())
            .unwrap();
    }
    assert_eq!(
        wait_no_request_in_flight(fg, Duration::from_secs(10)),
        0.0,
        "a reset stream left a request running"
    );
    // The connection still serves a new stream.
    let nope = get_request_block(&authority, "/file/nope", &[]);
    c.send(
        frame::HEADERS,
        frame::END_HEADERS | frame::END_STREAM,
        21,
        &nope,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answered = false;
    while Instant::now() < deadline && !answered {
        let f = c.read_frame().expect("frame");
        answered = f.stream == 21 && f.kind == frame::HEADERS;
    }
    assert!(answered, "the connection serves after the resets");
    // And so does the rest of the server.
    assert_eq!(
        env.https
            .get(&url)
            .header("access-token", &t)
            .send()
            .unwrap()
            .bytes()
            .unwrap()
            .len(),
        bytes.len()
    );
}

/// Sends `payload` on a fresh TCP connection to `addr`; returns how long until the
/// server closed it and what it sent back.
fn until_closed(addr: std::net::SocketAddr, payload: &[u8]) -> (Duration, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let start = Instant::now();
    if !payload.is_empty() {
        s.write_all(payload).unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (start.elapsed(), got)
}

/// curl over TLS (h2) answers a 404 envelope: the TLS port serves.
fn assert_serves(env: &TlsEnv, what: &str) {
    let out = curl(
        &env.ca,
        &[
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code} %{num_connects}\n",
            &env.fg.tls_url("/file/nope"),
        ],
    );
    assert_eq!(
        curl_summary(&out),
        vec![("2".to_string(), 404, 1)],
        "after {what}"
    );
}

#[test]
fn hostile_inputs_on_the_tls_port_keep_it_serving() {
    let env = TlsEnv::start_with(
        "  handshake_timeout: 2s\n",
        Setup {
            extra: "limits:\n  header_timeout: 2s\n".into(),
            ..Setup::default()
        },
    );
    let fg = &env.fg;
    let addr = fg.tls_addr();

    // Plain HTTP: a 400 envelope that says to use https, then the connection closes.
    let (_, got) = until_closed(addr, b"GET /file/nope HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(
        text.contains("\"code\":400") && text.contains("https://"),
        "{text}"
    );
    assert_serves(&env, "plain HTTP");

    // Random bytes: a TLS alert at most, at once.
    let (took, _) = until_closed(addr, &pseudo_random(4096, 7));
    assert!(took < Duration::from_secs(2), "random bytes held {took:?}");
    assert_serves(&env, "random bytes");

    // A truncated ClientHello, and a client that never says anything: closed at the
    // handshake timeout (2 s), not pingora's 60 s; others are served meanwhile.
    let truncated = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x00\x01\x02".to_vec();
    let silent = std::thread::spawn(move || until_closed(addr, b""));
    let half = std::thread::spawn(move || until_closed(addr, &truncated));
    std::thread::sleep(Duration::from_millis(300));
    assert_serves(&env, "a silent connection opened");
    for (what, handle) in [("silent", silent), ("truncated ClientHello", half)] {
        let (took, _) = handle.join().unwrap();
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
            "{what}: closed after {took:?}"
        );
    }
    // A client that finishes TLS with h2 but never sends the h2 preface.
    let start = Instant::now();
    let mut quiet = RawTls::connect(addr, &env.ca, &[b"h2"]).unwrap();
    let mut buf = [0u8; 64];
    let closed = loop {
        match quiet.tls.read(&mut buf) {
            Ok(0) | Err(_) => break start.elapsed(),
            // The server's SETTINGS come only after the preface; anything else: go on.
            Ok(_) => continue,
        }
    };
    assert!(
        closed >= Duration::from_millis(1500) && closed < Duration::from_secs(6),
        "a silent h2 client was closed after {closed:?}"
    );
    let m = fg.metrics();
    assert!(
        metric_value(
            &m,
            "filegate_connections_closed_total{reason=\"tls_handshake_timeout\"}"
        ) >= 2.0,
        "{m}"
    );
    assert!(
        metric_value(
            &m,
            "filegate_connections_closed_total{reason=\"h2_preface_timeout\"}"
        ) >= 1.0
    );
    assert!(
        metric_value(
            &m,
            "filegate_connections_closed_total{reason=\"plain_http_on_tls\"}"
        ) >= 1.0
    );
    assert!(
        metric_value(
            &m,
            "filegate_connections_closed_total{reason=\"tls_handshake_failed\"}"
        ) >= 1.0
    );
    // HTTP/1.1 over TLS keeps the head deadline: a head dripped over TLS is cut.
    let mut slow = RawTls::connect(addr, &env.ca, &[b"http/1.1"]).unwrap();
    slow.tls.write_all(b"GET /file/nope HTTP/1.1\r\n").unwrap();
    slow.tls.flush().unwrap();
    let mut answer = Vec::new();
    let _ = slow.tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert_serves(&env, "every hostile input");
}

#[test]
fn h2_abuse_does_not_stop_filegate() {
    let env = TlsEnv::start("");
    let fg = &env.fg;
    let addr = fg.tls_addr();
    let authority = addr.to_string();
    let bytes = pseudo_random(100_000, 8);
    let (url, t) = env.chat_file("demo", &bytes);
    let path = url[url.find("/file/").unwrap()..].to_string();

    // Rapid reset: thousands of requests, each cancelled as soon as it is sent.
    let mut flood = Vec::new();
    let download = get_request_block(&authority, &path, &[("access-token", &t)]);
    let nope = get_request_block(&authority, "/file/nope", &[]);
    for i in 0..5000u32 {
        let stream = 1 + 2 * i;
        let block = if i % 2 == 0 { &download } else { &nope };
        flood.extend(RawTls::frame_bytes(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            stream,
            block,
        ));
        flood.extend(RawTls::frame_bytes(
            frame::RST_STREAM,
            0,
            stream,
            &0x8u32.to_be_bytes(),
        ));
    }
    let mut c = RawTls::h2(addr, &env.ca).unwrap();
    let reader = drain_in_background(c.tls.sock.try_clone().unwrap());
    // The server may refuse the connection part-way (GOAWAY, close): fine.
    let _ = c.send_raw(&flood);
    assert_serves(&env, "a rapid-reset flood");
    let _ = c.tls.sock.shutdown(std::net::Shutdown::Both);
    drop(c);
    let _ = reader.join();
    assert_eq!(
        wait_no_request_in_flight(fg, Duration::from_secs(10)),
        0.0,
        "rapid resets left requests running"
    );

    // SETTINGS and PING floods from clients that never read what comes back.
    for (what, kind, payload) in [
        ("SETTINGS", frame::SETTINGS, vec![0u8, 3, 0, 0, 0, 100]),
        ("PING", frame::PING, vec![7u8; 8]),
    ] {
        let mut c = RawTls::h2(addr, &env.ca).unwrap();
        let one = RawTls::frame_bytes(kind, 0, 0, &payload);
        let flood: Vec<u8> = one
            .iter()
            .copied()
            .cycle()
            .take(one.len() * 50_000)
            .collect();
        let writer = std::thread::spawn(move || {
            // Blocks once the server stops reading (its acks are not read): the write
            // timeout ends it.
            let _ = c.send_raw(&flood);
            c
        });
        std::thread::sleep(Duration::from_millis(500));
        assert_serves(&env, &format!("a {what} flood (open)"));
        let c = writer.join().unwrap();
        let _ = c.tls.sock.shutdown(std::net::Shutdown::Both);
        drop(c);
        assert_serves(&env, &format!("a {what} flood"));
    }
    // A real download still works, over h2 and HTTP/1.1.
    let resp = env
        .https
        .get(&url)
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(resp.bytes().unwrap().as_ref(), bytes.as_slice());
    let out = curl(
        &env.ca,
        &[
            "--http2",
            "-H",
            &format!("access-token: {t}"),
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code} %{num_connects}\n",
            &url,
        ],
    );
    assert_eq!(curl_summary(&out), vec![("2".to_string(), 200, 1)]);
}

/// Reads (and throws away) what the server sends on a raw TLS socket, so a flood's
/// writer is not stopped by its own full receive buffer; ends at EOF or after 10 s
/// of silence.
fn drain_in_background(mut sock: TcpStream) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let _ = sock.set_read_timeout(Some(Duration::from_secs(10)));
        while let Ok(n) = sock.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    })
}

/// filegate over s3s-fs behind nginx TLS; `trusted`: the store's CA is in
/// `store.ca_file` (else another CA is).
struct HttpsStore {
    _s3: S3Server,
    nginx: NginxTls,
    fg: Filegate,
    ca: TestCa,
}

fn https_store(trusted: bool) -> HttpsStore {
    let s3 = S3Server::start();
    let ca = TestCa::new("store test CA");
    let leaf = ca.leaf("store");
    let nginx = NginxTls::start(&s3.endpoint, &leaf);
    let other = TestCa::new("some other CA");
    let trusted_pem = if trusted {
        ca.cert.clone()
    } else {
        other.cert.clone()
    };
    let store = format!(
        "{}  ca_file: {}\n",
        s3_store_yaml(&nginx.endpoint),
        trusted_pem.display()
    );
    let fg = Filegate::start_with(Setup {
        store: Some(store),
        ..Setup::default()
    });
    drop(other);
    HttpsStore {
        _s3: s3,
        nginx,
        fg,
        ca,
    }
}

#[test]
fn an_https_store_serves_uploads_downloads_and_the_passthrough() {
    let env = https_store(true);
    let fg = &env.fg;
    let to_store = https_client(&env.ca);

    // POST upload: the grant points at the https store; the client trusts its CA.
    let t = token("demo", 7, TokenKind::User);
    let g = grant(fg, "demo", &t, "/file/upload/chat?file_type=100&to_id=1");
    assert!(
        g["upload_url"]
            .as_str()
            .unwrap()
            .starts_with(&env.nginx.endpoint),
        "{g}"
    );
    let bytes = pseudo_random(120_000, 9);
    let (status, body) = post_upload_via(
        &to_store,
        &g,
        "x.bin",
        "application/octet-stream",
        bytes.clone(),
    );
    assert_eq!(status, 200, "{body}");
    // The download goes through filegate's S3 client, over TLS to the store.
    let dl = client()
        .get(fg.url(&format!(
            "/file/download/chat?app_id=demo&file_sign={}",
            g["file_sign"].as_str().unwrap()
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(dl.status(), 200);
    assert_eq!(dl.bytes().unwrap().as_ref(), bytes.as_slice());

    // PUT upload sent to filegate's pass-through (pingora's TLS peer to the store).
    let put_bytes = pseudo_random(50_000, 10);
    let pt = token("putapp", 7, TokenKind::User);
    let g = grant(
        fg,
        "putapp",
        &pt,
        &format!(
            "/file/upload/chat?file_type=100&to_id=1&size={}",
            put_bytes.len()
        ),
    );
    let upload_url = g["upload_url"].as_str().unwrap();
    let path_and_query = &upload_url[env.nginx.endpoint.len()..];
    let mut req = client().put(fg.url(path_and_query));
    for (k, v) in g["oss_body_param"].as_object().unwrap() {
        if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k.as_str(), v.as_str().unwrap());
        }
    }
    let resp = req.body(put_bytes.clone()).send().unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().unwrap_or_default());
    let dl = client()
        .get(fg.url(&format!(
            "/file/download/chat?app_id=putapp&file_sign={}",
            g["file_sign"].as_str().unwrap()
        )))
        .header("access-token", &pt)
        .send()
        .unwrap();
    assert_eq!(dl.bytes().unwrap().as_ref(), put_bytes.as_slice());

    // A pass-through GET filegate cannot verify is forwarded, and the store's own
    // answer (403 over TLS) comes back, not a 502.
    let resp = client()
        .get(fg.url("/filegate/demo/chat/1/1/20200101/nothing.bin"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403, "{}", resp.text().unwrap_or_default());
    // Every one of those reached the store through nginx's TLS listener.
    let log = env.nginx.access_log_with(&[
        "PUT /filegate/putapp/",
        "GET /filegate/demo/chat/1/1/20200101/nothing.bin",
    ]);
    assert!(log.contains("PUT /filegate/putapp/"), "{log}");
    assert!(
        log.contains("GET /filegate/demo/chat/1/1/20200101/nothing.bin"),
        "{log}"
    );
}

#[test]
fn a_store_whose_certificate_does_not_verify_is_a_502_envelope() {
    let env = https_store(false);
    let fg = &env.fg;
    let untrusted = |resp: reqwest::blocking::Response| {
        let v = expect_envelope(resp, 502, 10009);
        let message = v["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("certificate did not verify"),
            "{message}; log:\n{}",
            fg.log()
        );
    };
    // Through the S3 client: a download.
    let t = token("demo", 7, TokenKind::User);
    untrusted(
        client()
            .get(fg.url("/file/download/avatar?app_id=demo&object_name=avatar/user/7/a.jpg"))
            .header("access-token", &t)
            .send()
            .unwrap(),
    );
    // Through the pass-through: a forwarded GET.
    untrusted(
        client()
            .get(fg.url("/filegate/demo/chat/1/1/20200101/nothing.bin"))
            .send()
            .unwrap(),
    );
    // Nothing reached the store: no plaintext fallback, no request past TLS.
    assert_eq!(env.nginx.access_log(), "", "a request reached the store");
}

#[test]
fn check_validates_the_tls_files_and_names_the_key_at_fault() {
    let ca = TestCa::new("check test CA");
    let good = ca.leaf("good");
    let other = ca.leaf("other");
    let expired = ca.leaf_for_days("expired", -1);
    let chain = ca.chain(&good, "chain.pem");
    let reversed = ca.path("reversed.pem");
    let mut pem = std::fs::read(&ca.cert).unwrap();
    pem.extend(std::fs::read(&good.cert).unwrap());
    std::fs::write(&reversed, pem).unwrap();
    let junk = ca.path("junk.pem");
    std::fs::write(
        &junk,
        "-----BEGIN PRIVATE KEY-----\nnot base64 !\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let missing = ca.path("missing.pem");
    let dir = tempfile::tempdir().unwrap();
    let config = |cert: &std::path::Path, key: &std::path::Path, more: &str| {
        format!(
            "listen: 127.0.0.1:18080\nadmin_listen: 127.0.0.1:19180\ntls:\n  listen: 127.0.0.1:18443\n  cert: {}\n  key: {}\n{more}",
            cert.display(),
            key.display()
        )
    };
    let check = |yaml: String| {
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, yaml).unwrap();
        run_filegate(&["check", "-c", path.to_str().unwrap()])
    };
    for (cert, key) in [(&good.cert, &good.key), (&chain, &good.key)] {
        let out = check(config(cert, key, ""));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("tls: CN=good"), "{stdout}");
    }
    let cases = [
        (
            config(&good.cert, &other.key, ""),
            "tls.key",
            "does not match",
        ),
        (
            config(&expired.cert, &expired.key, ""),
            "tls.cert",
            "expired",
        ),
        (
            config(&ca.cert, &ca.path("ca.key"), ""),
            "tls.cert",
            "CA certificate",
        ),
        (
            config(&reversed, &good.key, ""),
            "tls.cert",
            "CA certificate",
        ),
        (config(&missing, &good.key, ""), "tls.cert", "cannot read"),
        (config(&good.cert, &missing, ""), "tls.key", "cannot read"),
        (config(&good.cert, &junk, ""), "tls.key", "private key"),
        (
            config(&good.key, &good.key, ""),
            "tls.cert",
            "no CERTIFICATE",
        ),
        (
            config(
                &good.cert,
                &good.key,
                "store:\n  ca_file: /nonexistent/ca.pem\n",
            ),
            "store.ca_file",
            "cannot read",
        ),
        (
            config(&good.cert, &good.key, "  handshake_timeout: 0s\n"),
            "tls.handshake_timeout",
            "",
        ),
    ];
    for (yaml, key, why) in cases {
        let out = check(yaml.clone());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{yaml} should fail");
        assert!(
            stderr.contains(&format!("`{key}`")) && stderr.contains(why),
            "{yaml}: expected `{key}` ({why}) in: {stderr}"
        );
        assert!(!stderr.contains("BEGIN"), "no key material in: {stderr}");
    }
    // `serve` refuses the same files at start, naming the key.
    let path = dir.path().join("serve.yaml");
    std::fs::write(&path, config(&good.cert, &other.key, "")).unwrap();
    let out = run_filegate(&["serve", "-c", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`tls.key`"));
    // FILEGATE_TLS_LISTEN overrides tls.listen (and alone, asks for the files).
    let out = std::process::Command::new(built_binary("filegate"))
        .args(["check", "-c", "conf/filegate.yaml"])
        .env("FILEGATE_TLS_LISTEN", "127.0.0.1:18443")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`tls.cert`"));
}

/// The protocol `openssl s_client` negotiated with `args` (its `New, TLSv1.3, Cipher
/// is ...` line), or None when no verified session was made.
fn s_client_protocol(ca: &TestCa, addr: std::net::SocketAddr, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", &addr.to_string(), "-CAfile"])
        .arg(&ca.cert)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let protocol = text
        .lines()
        .find_map(|l| l.strip_prefix("New, "))
        .and_then(|rest| rest.split(',').next())
        .map(|p| p.trim().to_string());
    let verified = text.contains("Verify return code: 0 (ok)");
    protocol.filter(|p| verified && p.starts_with("TLS"))
}

#[test]
fn only_tls_1_2_and_1_3_are_spoken() {
    let env = TlsEnv::start("");
    let addr = env.fg.tls_addr();
    assert_eq!(
        s_client_protocol(&env.ca, addr, &["-tls1_3"]).as_deref(),
        Some("TLSv1.3")
    );
    assert_eq!(
        s_client_protocol(&env.ca, addr, &["-tls1_2"]).as_deref(),
        Some("TLSv1.2")
    );
    // A client that offers TLS 1.1 at most (its own floor lowered so it does) is refused.
    assert_eq!(
        s_client_protocol(&env.ca, addr, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]),
        None
    );
    // TLS 1.2 with a CBC suite only: refused (AEAD suites only).
    assert_eq!(
        s_client_protocol(
            &env.ca,
            addr,
            &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]
        ),
        None
    );
    let out = curl(
        &env.ca,
        &[
            "--tlsv1.2",
            "--tls-max",
            "1.2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code} %{num_connects}\n",
            &env.fg.tls_url("/file/nope"),
        ],
    );
    assert_eq!(curl_summary(&out), vec![("2".to_string(), 404, 1)]);
}

#[test]
fn with_http2_off_alpn_offers_http1_1_only() {
    let env = TlsEnv::start("  http2: false\n");
    let out = curl(
        &env.ca,
        &[
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code} %{num_connects}\n",
            &env.fg.tls_url("/file/nope"),
        ],
    );
    assert_eq!(curl_summary(&out), vec![("1.1".to_string(), 404, 1)]);
    let c = RawTls::connect(env.fg.tls_addr(), &env.ca, &[b"h2", b"http/1.1"]).unwrap();
    assert_eq!(c.alpn().as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(
        env.fg
            .metric("filegate_tls_connections_total{protocol=\"h2\"}"),
        0.0
    );
}
