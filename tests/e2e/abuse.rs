//! Protocol abuse: slowloris heads, oversized headers and query strings, request
//! smuggling shapes, absurd Range lists, a presigned URL moved to another key. Each is
//! closed or refused cleanly, within the configured limits, while other clients are
//! served; every case runs over the embedded store and over a real S3 server.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;

use crate::harness::*;
use crate::storage_suite::{Backend, Env};

both_stores!(
    slowloris_heads_are_cut_off_and_others_are_served,
    oversized_headers_and_queries_are_refused,
    smuggling_shapes_get_one_answer_then_close,
    absurd_range_lists_are_served_whole,
    a_presigned_put_cannot_be_moved_to_another_key_through_the_host_header,
    requests_on_one_connection_are_answered_in_order_whoever_answers_them,
);

fn fast_limits(setup: &mut Setup) {
    setup.extra = "limits:\n  header_timeout: 1s\n  keepalive_timeout: 5s\n".into();
}

fn connect(fg: &Filegate) -> TcpStream {
    let s = TcpStream::connect(fg.base.trim_start_matches("http://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

/// Reads until the server closes (or 20 s pass).
fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends raw bytes and returns everything the server answers before closing.
fn exchange(fg: &Filegate, raw: &[u8]) -> String {
    let mut s = connect(fg);
    s.write_all(raw).unwrap();
    read_to_close(&mut s)
}

fn slowloris_heads_are_cut_off_and_others_are_served(backend: Backend) {
    let env = Env::new(backend, fast_limits);
    let fg = &env.fg;
    let mut slow = connect(fg);
    let started = Instant::now();
    slow.write_all(b"GET /file/nope HTTP/1.1\r\n").unwrap();
    // A header byte every 200 ms: each read is quick, the head never completes.
    let mut cut_off = false;
    for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
        if slow.write_all(&[*b]).is_err() {
            cut_off = true;
            break;
        }
        // Meanwhile a normal client is served.
        let ok = client().get(fg.url("/file/nope")).send().unwrap();
        assert_eq!(ok.status(), 404);
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    let answer = read_to_close(&mut slow);
    assert!(
        cut_off || answer.starts_with("HTTP/1.1 408"),
        "slow head answered: {answer:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "not cut off in time"
    );
    assert!(fg.metric(r#"filegate_connections_closed_total{reason="slow_head"}"#) >= 1.0);

    // The same on the second request of a keep-alive connection.
    let mut s = connect(fg);
    s.write_all(b"GET /file/nope HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 12];
    s.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 404");
    std::thread::sleep(Duration::from_millis(200));
    let mut buf = [0u8; 4096];
    let _ = s.read(&mut buf); // the rest of the first answer
    s.write_all(b"GET /file/nope HTTP/1.1\r\nX-Slow: a")
        .unwrap();
    let started = Instant::now();
    let answer = read_to_close(&mut s);
    assert!(answer.contains("408"), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(8));
}

fn oversized_headers_and_queries_are_refused(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let big_header = format!(
        "GET /file/nope HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let answer = exchange(fg, big_header.as_bytes());
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    assert!(answer.contains(r#""code":431"#));
    let long_query = format!(
        "/file/download/avatar?app_id=demo&object_name={}",
        "a".repeat(9 * 1024)
    );
    let resp = client().get(fg.url(&long_query)).send().unwrap();
    expect_envelope(resp, 414, 414);
    // Within limits, the same route answers normally.
    let resp = client()
        .get(fg.url("/file/download/avatar?app_id=demo&object_name=a"))
        .send()
        .unwrap();
    expect_envelope(resp, 401, 10003);
}

fn smuggling_shapes_get_one_answer_then_close(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let shapes: &[&[u8]] = &[
        // Content-Length and Transfer-Encoding together, a request hidden after.
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /file/demo HTTP/1.1\r\nHost: a\r\n\r\n",
        // Two different Content-Lengths.
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /file/demo HTTP/1.1\r\nHost: a\r\n\r\n",
        // A bad chunk size.
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /file/demo HTTP/1.1\r\nHost: a\r\n\r\n",
        // A negative length.
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\nGET /file/demo HTTP/1.1\r\nHost: a\r\n\r\n",
        // A GET whose body is a request.
        b"GET /file/nope HTTP/1.1\r\nHost: a\r\nContent-Length: 37\r\n\r\nGET /file/demo HTTP/1.1\r\nHost: a\r\n\r\n",
    ];
    for raw in shapes {
        let answer = exchange(fg, raw);
        let shown = String::from_utf8_lossy(&raw[..raw.len().min(60)]).to_string();
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{shown:?} got: {answer:?}"
        );
        assert!(
            !answer.contains("filegate demo"),
            "a smuggled request was served: {shown:?}"
        );
        let status: u16 = answer[9..12].parse().unwrap();
        assert!((400..500).contains(&status), "{shown:?} -> {status}");
    }
    // filegate is still fine.
    assert_eq!(
        client().get(fg.url("/file/demo")).send().unwrap().status(),
        200
    );
}

fn absurd_range_lists_are_served_whole(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let name = upload_avatar(fg, "demo", 5);
    let t = token("demo", 5, TokenKind::User);
    let url = fg.url(&format!(
        "/file/download/avatar?app_id=demo&object_name={name}"
    ));
    let many: Vec<String> = (0..2000).map(|i| format!("{i}-{i}")).collect();
    let header = format!("bytes={}", many.join(","));
    // 2000 ranges do not fit the header limit: refused.
    let resp = client()
        .get(&url)
        .header("access-token", &t)
        .header("range", &header)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 431);
    // 500 small overlapping ranges fit: ignored, the whole object is served once.
    let some: Vec<String> = (0..500)
        .map(|i| format!("{}-{}", i % 7, i % 7 + 3))
        .collect();
    let resp = client()
        .get(&url)
        .header("access-token", &t)
        .header("range", format!("bytes={}", some.join(",")))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), small_jpeg().as_slice());
    // Nonsense ranges are ignored too.
    for junk in [
        "bytes=abc",
        "bytes=5-1",
        "pages=1-2",
        "bytes=-",
        "bytes=99999999999999999999-",
    ] {
        let resp = client()
            .get(&url)
            .header("access-token", &t)
            .header("range", junk)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "{junk}");
    }
}

// Found by the `sigv4` fuzz target: the embedded store verified presigned URLs rebuilt
// from the Host header, so a Host carrying the signed key's path and a `#` made a URL
// presigned for one key write another.
fn a_presigned_put_cannot_be_moved_to_another_key_through_the_host_header(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let t = token("putapp", 42, TokenKind::User);
    let bytes = b"twelve bytes".to_vec();
    let g = grant(
        fg,
        "putapp",
        &t,
        &format!(
            "/file/upload/chat?file_type=100&to_id=3&size={}",
            bytes.len()
        ),
    );
    let url = g["upload_url"].as_str().unwrap();
    let (signed, query) = url.split_once('?').unwrap();
    let host = fg.base.trim_start_matches("http://");
    // The signed path (S3: `/<bucket>/<key>` of the store; embedded: `/<key>`).
    let signed_path = path_and_query_of(signed);
    let bucket = if env.s3.is_some() { "/filegate" } else { "" };
    let mut head = String::new();
    for (k, v) in g["oss_body_param"].as_object().unwrap() {
        if !k.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{k}: {}\r\n", v.as_str().unwrap()));
        }
    }
    for forged_host in [format!("{host}{signed_path}#"), format!("{host}/putapp")] {
        let target = format!("{bucket}/putapp/avatar/user/1/evil.bin");
        let mut raw = format!(
            "PUT {target}?{query} HTTP/1.1\r\nHost: {forged_host}\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
            bytes.len()
        )
        .into_bytes();
        raw.extend_from_slice(&bytes);
        let answer = exchange(fg, &raw);
        let status = answer.split(' ').nth(1).unwrap_or("");
        assert!(status.starts_with('4'), "{forged_host}: {answer}");
        assert!(!env.stored("putapp/avatar/user/1/evil.bin"));
    }
}

/// One answer read off a connection: status, head (lowercased), body (none after a
/// `HEAD`; else `Content-Length` bytes).
fn read_answer(r: &mut BufReader<TcpStream>, head_request: bool) -> (u16, String, Vec<u8>) {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        assert!(
            r.read_line(&mut line).unwrap() > 0,
            "closed mid-answer: {head}"
        );
        if line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0; if head_request { 0 } else { length }];
    r.read_exact(&mut body).unwrap();
    (status, head, body)
}

/// Requests pipelined in one write, and requests for filegate's `/file` routes and
/// for the store side by side on one keep-alive connection: each gets its own answer
/// in order, framed (no body after `HEAD`), and the connection closes when asked.
fn requests_on_one_connection_are_answered_in_order_whoever_answers_them(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    let name = upload_avatar(fg, "demo", 5);
    let t = token("demo", 5, TokenKind::User);
    let jpeg = small_jpeg();
    let target = format!("/file/download/avatar?app_id=demo&object_name={name}");
    let head = |method: &str, extra: &str| {
        format!("{method} {target} HTTP/1.1\r\nHost: a\r\naccess-token: {t}\r\n{extra}\r\n")
    };

    // Pipelined: a download, its HEAD, the download asking to close.
    let mut s = connect(fg);
    let raw = head("GET", "") + &head("HEAD", "") + &head("GET", "Connection: close\r\n");
    s.write_all(raw.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    for (i, is_head) in [false, true, false].into_iter().enumerate() {
        let (status, answer, body) = read_answer(&mut r, is_head);
        assert_eq!(status, 200, "answer {i}: {answer}");
        assert!(
            answer.contains(&format!("content-length: {}", jpeg.len())),
            "{answer}"
        );
        assert_eq!(
            body,
            if is_head { vec![] } else { jpeg.clone() },
            "answer {i}"
        );
        let closing = if i == 2 { "close" } else { "keep-alive" };
        assert!(
            answer.contains(&format!("connection: {closing}")),
            "answer {i}: {answer}"
        );
    }
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "nothing after the last answer, then the close: {rest:?}"
    );

    // One after another: filegate, the store side, filegate again.
    let s = connect(fg);
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    w.write_all(head("GET", "").as_bytes()).unwrap();
    let (status, _, body) = read_answer(&mut r, false);
    assert_eq!((status, body == jpeg), (200, true));
    w.write_all(b"GET /no-such-bucket/key HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    // The store's front (pingora's session) answers it: a refusal.
    let (status, answer, _) = read_answer(&mut r, false);
    assert!((400..500).contains(&status), "{status} {answer}");
    w.write_all(head("GET", "").as_bytes()).unwrap();
    let (status, _, body) = read_answer(&mut r, false);
    assert_eq!((status, body == jpeg), (200, true));

    // HTTP/1.0 without keep-alive: one answer, then the close.
    let answer = exchange(fg, b"GET /file/demo HTTP/1.0\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}
