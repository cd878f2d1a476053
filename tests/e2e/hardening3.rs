//! Hardening 3 (issue 18): what a security read of the edge cache, the cluster and the
//! pass-through found, each with the end-to-end test that would have caught it.
//! (Takedowns, item 3, are tested in `cluster_purge.rs`; the seed kit's file modes in
//! `seed.rs`.)

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;

use crate::harness::*;
use crate::storage_suite::{pseudo_random, uploaded, user_token, Backend, Env};

both_stores!(a_failing_processor_leaks_no_store_signature);

/// Sends `request` as is on a new connection and reads the answer until the server
/// closes it (the request says `Connection: close`).
fn raw_exchange(base: &str, request: &[u8]) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request).expect("send");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status of a raw HTTP/1.1 answer.
fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

/// Every value in `log` that follows a signature-bearing name and a separator (literal
/// or percent-encoded once or twice) and is not `[redacted]`.
fn credential_values(log: &str) -> Vec<String> {
    let lower = log.to_ascii_lowercase();
    let mut leaks = Vec::new();
    for name in [
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "signature",
    ] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(name) {
            let mut rest = &lower[from + at + name.len()..];
            from += at + name.len();
            let mut separated = false;
            loop {
                let skipped = ["%253d", "%3d", "=", ": ", "\": \""]
                    .iter()
                    .find(|s| rest.starts_with(**s));
                match skipped {
                    Some(s) => {
                        rest = &rest[s.len()..];
                        separated = true;
                    }
                    None => break,
                }
            }
            let value: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '%' | '/' | '-' | '_'))
                .collect();
            if separated && !rest.starts_with("[redacted]") && value.len() >= 4 {
                leaks.push(format!("{name}={value}"));
            }
        }
    }
    leaks
}

/// A thumbnail processor the test controls: `0` hangs up at once, `1` never answers,
/// `2` promises a body and breaks it off.
fn start_processor(mode: Arc<AtomicU8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = [0u8; 4096];
            let _ = stream.read(&mut head);
            match mode.load(Ordering::SeqCst) {
                0 => drop(stream),
                1 => held.push(stream),
                _ => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n\xff\xd8\xff\xe0",
                    );
                    drop(stream);
                }
            }
        }
    });
    port
}

/// A processor whose URL carries the presigned source URL in its path: refused,
/// timed out, broken off. The log (at trace level, pingora's included) holds the
/// failures but no signature or credential of the store, encoded or not.
fn a_failing_processor_leaks_no_store_signature(backend: Backend) {
    let mode = Arc::new(AtomicU8::new(0));
    let listening = start_processor(mode.clone());
    let closed = free_port();
    let apps = format!(
        "apps:\n  demo:\n    secrets: [\"{DEMO_SECRET}\"]\n    thumbnail_processor:\n      url: http://127.0.0.1:{listening}/unsafe/fit-in/{{w}}x{{h}}/{{source_url}}\n      timeout: 1s\n  other:\n    secrets: [\"{OTHER_SECRET}\"]\n    thumbnail_processor:\n      url: http://127.0.0.1:{closed}/insecure/rs:fit:{{w}}:{{h}}/plain/{{source_url}}?x={{source_url}}\n      timeout: 1s\n"
    );
    let env = Env::new(backend, |s| {
        s.apps = apps;
        s.env.push(("RUST_LOG".into(), "trace".into()));
    });
    let fg = &env.fg;
    let ask = |app: &str, object: &str, w: u32| {
        client()
            .get(fg.url(&format!(
                "/file/download/avatar?app_id={app}&object_name={object}&image_type=2&w={w}&thumbnail_strategy=1"
            )))
            .header("access-token", token(app, 1, TokenKind::User))
            .send()
            .expect("download")
    };
    let demo = upload_avatar(fg, "demo", 1);
    let other = upload_avatar(fg, "other", 1);
    // Refused (no one listens), hung up on, timed out, broken off.
    let mut statuses = vec![ask("other", &other, 40).status().as_u16()];
    for (m, w) in [(0, 41), (1, 42), (2, 43)] {
        mode.store(m, Ordering::SeqCst);
        statuses.push(ask("demo", &demo, w).status().as_u16());
    }
    let failures = ["unreachable", "timed out", "broke off"];
    let log = fg.log_when(|log| failures.iter().all(|what| log.contains(what)));
    let leaks = credential_values(&log);
    assert!(leaks.is_empty(), "credentials in the log: {leaks:?}\n{log}");
    for what in failures {
        assert!(
            log.contains("thumbnail processor") && log.contains(what),
            "the log says nothing of the processor being {what}:\n{log}"
        );
    }
    // The processor's origin is named, none of its path.
    assert!(log.contains(&format!("127.0.0.1:{closed}")), "{log}");
    assert!(!log.contains("%2Fdemo%2Favatar"), "{log}");
    assert_eq!(
        statuses,
        [502, 502, 504, 502],
        "refused, hung up, silent, broken"
    );
}

/// CPU seconds (user + system) the process has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name, which is in parentheses.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A form of `pad` bytes of padding before the grant's fields and a small file, sent
/// to the pass-through in `piece`-byte writes a moment apart (so that filegate reads
/// it in as many pieces); the CPU filegate spent on it.
fn trickled_form_cpu(env: &Env, grant: &serde_json::Value, pad: usize, piece: usize) -> f64 {
    let mut body = Vec::new();
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!("--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    };
    field("x-ignore-pad", &"p".repeat(pad));
    for (k, v) in grant["oss_body_param"].as_object().expect("fields") {
        field(k, v.as_str().unwrap_or(""));
    }
    body.extend_from_slice(
        b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n",
    );
    body.extend_from_slice(&pseudo_random(2000, 5));
    body.extend_from_slice(b"\r\n--XyZ--\r\n");
    let url = grant["upload_url"].as_str().expect("upload_url");
    let path = path_and_query_of(url);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let addr = env.fg.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let before = cpu_seconds(env.fg.pid());
    stream.write_all(head.as_bytes()).expect("head");
    for chunk in body.chunks(piece) {
        stream.write_all(chunk).expect("body");
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let spent = cpu_seconds(env.fg.pid()) - before;
    let answer = String::from_utf8_lossy(&answer);
    // The store read the whole form and judged it (the padding field is not in the
    // policy): its answer came back through filegate.
    let status = status_of(&answer);
    assert!(
        status < 500,
        "the store's answer to a trickled form: {answer}"
    );
    spent
}

/// filegate over s3s-fs with upload URLs pointing at itself (the pass-through), the
/// `demo` app making eager thumbnails or not (only then are forms watched).
fn passthrough_env(eager: bool) -> (Env, serde_json::Value) {
    let env = Env::new(Backend::S3, |setup| {
        setup.apps = format!(
            "apps:\n  demo:\n    secrets: [\"new-secret-0123456789\"]\n{}",
            if eager {
                "    eager:\n      - {image_type: 2, w: 200, h: 200}\n"
            } else {
                ""
            }
        );
        let port = free_port();
        setup.port = Some(port);
        if let Some(store) = &mut setup.store {
            store.push_str(&format!("  public_endpoint: http://127.0.0.1:{port}\n"));
        }
    });
    let g = grant(
        &env.fg,
        "demo",
        &user_token("demo"),
        "/file/upload/chat?file_type=100&to_id=1&file_name=a.bin",
    );
    (env, g)
}

/// Watching a pass-through form for eager derivation costs next to nothing however
/// finely the form arrives: a form whose 60 KiB beginning is read in 64-byte pieces
/// costs filegate about the CPU it costs a filegate that does not watch forms (it was
/// quadratic: every piece re-searched everything buffered so far).
#[test]
fn a_trickled_form_costs_no_more_to_watch_than_to_forward() {
    let (watching, g_watching) = passthrough_env(true);
    let (forwarding, g_forwarding) = passthrough_env(false);
    // Warm-up (connections, allocator), then the two interleaved.
    trickled_form_cpu(&watching, &g_watching, 1024, 64);
    trickled_form_cpu(&forwarding, &g_forwarding, 1024, 64);
    let (mut watched, mut forwarded) = (0.0, 0.0);
    for _ in 0..2 {
        watched += trickled_form_cpu(&watching, &g_watching, 60 * 1024, 64);
        forwarded += trickled_form_cpu(&forwarding, &g_forwarding, 60 * 1024, 64);
    }
    eprintln!(
        "a 60 KiB form in 64-byte pieces: {:.2} ms CPU per KiB watched, {:.2} ms forwarded only",
        watched * 1000.0 / 120.0,
        forwarded * 1000.0 / 120.0
    );
    assert!(
        watched < 2.0 * forwarded + 0.05,
        "watching two trickled forms cost {watched:.2} s of CPU, forwarding them {forwarded:.2} s"
    );
}

/// The headers of the first fill request a node sent to a fake peer.
type Captured = Arc<Mutex<Option<(String, String)>>>;

/// A fake third node: it passes the health checks and keeps the first signed fill it
/// is sent (answering 503, so the asking node serves from the store).
fn start_fake_peer(listener: TcpListener, captured: Captured) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let captured = captured.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let header = |name: &str| {
                    text.lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                        })
                        .unwrap_or_default()
                };
                if text.starts_with("GET /_cluster/fill") {
                    let mut slot = captured.lock().unwrap();
                    if slot.is_none() {
                        *slot = Some((
                            header(filegate::peer_auth::SPEC_HEADER),
                            header(filegate::peer_auth::AUTH_HEADER),
                        ));
                    }
                    let _ = stream.write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                } else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                }
            });
        }
    });
}

/// A fill a node sent to its peer (captured by a fake peer), replayed to another node
/// within the signature window: refused, since the signature names the node it is
/// for. Nor does any log print the peer signature.
#[test]
fn a_captured_peer_request_replays_to_no_other_node() {
    let s3 = S3Server::start();
    let fake = TcpListener::bind("127.0.0.1:0").expect("bind");
    let fake_url = format!("http://{}", fake.local_addr().expect("addr"));
    let captured: Captured = Arc::new(Mutex::new(None));
    start_fake_peer(fake, captured.clone());
    // Two real nodes and the fake one: start_nodes_with's three ports, the third
    // replaced by the fake (it never starts a process there).
    let nodes = crate::cluster::start_two_nodes_beside(&s3.store_yaml(), &fake_url, TEST_APPS);
    let t = user_token("demo");
    let started = Instant::now();
    let mut files = 0;
    while captured.lock().unwrap().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60) && files < 60,
            "no fill reached the fake peer"
        );
        let bytes = pseudo_random(3000, files + 1);
        let g = uploaded(
            &nodes[0],
            "demo",
            &t,
            "/file/upload/chat?file_type=100&to_id=1&file_name=x.bin",
            "x.bin",
            "application/octet-stream",
            &bytes,
        );
        let resp = client()
            .get(nodes[0].url(&format!(
                "/file/download/chat?app_id=demo&file_sign={}",
                g["file_sign"].as_str().unwrap()
            )))
            .header("access-token", &t)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        files += 1;
    }
    let (spec, auth) = captured.lock().unwrap().clone().unwrap();
    assert!(!spec.is_empty() && !auth.is_empty());
    // Replayed to the other real node (and to the sender) at once, well within the
    // signature window.
    for node in &nodes {
        let resp = client()
            .get(node.url(filegate::fill::FILL_PATH))
            .header(filegate::peer_auth::SPEC_HEADER, &spec)
            .header(filegate::peer_auth::AUTH_HEADER, &auth)
            .send()
            .unwrap();
        expect_envelope(resp, 401, 10008);
    }
    let signature = auth.rsplit('.').next().unwrap().to_string();
    for node in &nodes {
        assert!(
            !node.log().contains(&signature),
            "a peer signature in the log"
        );
    }
    drop(s3);
}

fn target_refusals(path_style: bool) {
    let s3 = S3Server::start();
    let mut store = s3.store_yaml();
    if !path_style {
        store = store.replace("path_style: true", "path_style: false");
    }
    let fg = Filegate::start_with(Setup {
        store: Some(store),
        ..Setup::default()
    });
    let bucket_path = |key: &str| {
        if path_style {
            format!("/{S3_BUCKET}/{key}")
        } else {
            format!("/{key}")
        }
    };
    let key = "demo/chat/1/2/20261201/x.bin";
    std::fs::create_dir_all(s3.object_path(key).parent().unwrap()).unwrap();
    std::fs::write(s3.object_path(key), b"stored").unwrap();
    let targets = [
        ("GET", format!("/{}", bucket_path(key))),
        ("GET", "//".to_string()),
        ("POST", format!("/{}", bucket_path(""))),
        ("POST", "foo:bar".to_string()),
        ("OPTIONS", "*".to_string()),
        ("GET", format!("127.0.0.1:{}", free_port())),
        ("POST", "http://127.0.0.1".to_string()),
        ("GET", format!("http://127.0.0.1/{}", bucket_path(key))),
    ];
    let mut wrong = Vec::new();
    for (method, target) in targets {
        let answer = raw_exchange(
            &fg.base,
            format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        if status_of(&answer) != 403
            || !(answer.contains("\"code\":10010") && answer.contains("refused"))
        {
            wrong.push(format!("{method} {target}: {answer}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "not refused by filegate:\n{}",
        wrong.join("\n")
    );
    // Nothing of it reached the store: no request of the pass-through was forwarded.
    assert_eq!(
        fg.metric(r#"filegate_requests_total{route="passthrough",status="403"}"#),
        8.0,
        "{}",
        fg.metrics()
    );
}

/// Request targets that are not origin form, or whose path begins with an empty
/// segment, are refused before the store sees them (path-style store).
#[test]
fn only_origin_form_targets_reach_a_path_style_store() {
    target_refusals(true);
}

/// The same for a virtual-host-style store, where `//demo/...` was trimmed for the
/// check but forwarded as is.
#[test]
fn only_origin_form_targets_reach_a_virtual_host_store() {
    target_refusals(false);
}

/// A granted PUT that also sends `x-amz-copy-source` (not signed by the grant) stores
/// the bytes it carries: the header is not forwarded, so the upload cannot become a
/// copy of another user's object.
#[test]
fn a_granted_put_cannot_copy_another_object() {
    let s3 = S3Server::start();
    let port = free_port();
    let fg = Filegate::start_with(Setup {
        store: Some(format!(
            "{}  public_endpoint: http://127.0.0.1:{port}\n",
            s3.store_yaml()
        )),
        port: Some(port),
        ..Setup::default()
    });
    // Someone else's file, in the same bucket.
    let victim_bytes = b"another user's private file".to_vec();
    let victim = uploaded(
        &fg,
        "other",
        &token("other", 9, TokenKind::User),
        "/file/upload/chat?file_type=100&to_id=2&file_name=v.bin",
        "v.bin",
        "application/octet-stream",
        &victim_bytes,
    );
    let victim_key = victim["oss_body_param"]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(s3.has(&victim_key));
    let t = user_token("putapp");
    let mine = pseudo_random(1000, 3);
    let g = grant(
        &fg,
        "putapp",
        &t,
        &format!(
            "/file/upload/chat?file_type=100&to_id=1&file_name=m.bin&size={}",
            mine.len()
        ),
    );
    let url = g["upload_url"].as_str().unwrap();
    assert!(url.starts_with(&fg.base), "{url}");
    let mut req = client()
        .put(url)
        .header("x-amz-copy-source", format!("/{S3_BUCKET}/{victim_key}"))
        .header("x-amz-metadata-directive", "REPLACE")
        .body(mine.clone());
    for (k, v) in g["oss_body_param"].as_object().expect("headers") {
        if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k.as_str(), v.as_str().unwrap_or(""));
        }
    }
    let resp = req.send().unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text());
    let key = path_and_query_of(url)
        .split('?')
        .next()
        .unwrap()
        .trim_start_matches(&format!("/{S3_BUCKET}/"))
        .to_string();
    let stored = std::fs::read(s3.object_path(&key)).expect("stored object");
    assert_eq!(
        stored, mine,
        "the granted key holds a copy of another object"
    );
}
