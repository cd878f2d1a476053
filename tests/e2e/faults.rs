//! Store faults against a real store process (s3s-fs): refused connections, a store
//! that accepts and never answers, a store that drips its body, the store coming
//! back; and clients that disconnect mid-download or mid-upload.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;

use crate::harness::*;

fn s3_setup(s3: &S3Server, read_timeout: &str) -> Setup {
    Setup {
        store: Some(s3.store_yaml().replace(
            "read_timeout: 10s",
            &format!("read_timeout: {read_timeout}"),
        )),
        ..Setup::default()
    }
}

/// Uploads `bytes` as a chat file of `app`; returns (file_sign, presigned store URL).
fn upload(fg: &Filegate, app: &str, bytes: Vec<u8>) -> String {
    let t = token(app, 7, TokenKind::User);
    let g = grant(fg, app, &t, "/file/upload/chat?file_type=100&to_id=1");
    let (status, body) = post_upload(&g, "f.bin", "application/octet-stream", bytes);
    assert_eq!(status, 200, "{body}");
    g["file_sign"].as_str().unwrap().to_string()
}

fn download(fg: &Filegate, app: &str, sign: &str) -> reqwest::blocking::Response {
    client()
        .get(fg.url(&format!(
            "/file/download/chat?app_id={app}&file_sign={sign}"
        )))
        .header("access-token", token(app, 7, TokenKind::User))
        .send()
        .expect("download")
}

/// The presigned URL of a redirect-mode download, as a path sent to filegate
/// (pass-through).
fn passthrough_path(fg: &Filegate, sign: &str) -> String {
    let resp = download(fg, "redirect", sign);
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    path_and_query_of(&location).to_string()
}

#[test]
fn refused_store_is_502_and_recovery_is_immediate() {
    let mut s3 = S3Server::start();
    let fg = Filegate::start_with(s3_setup(&s3, "5s"));
    let sign = upload(&fg, "demo", b"hello store".to_vec());
    let redirect_sign = upload(&fg, "redirect", b"hello pass-through".to_vec());
    let pass = passthrough_path(&fg, &redirect_sign);
    // Neither was read yet, so neither is in the edge cache: both need the store.
    s3.kill();
    expect_envelope(download(&fg, "demo", &sign), 502, 10009);
    expect_envelope(client().get(fg.url(&pass)).send().unwrap(), 502, 10009);
    // Failures are not cached: asked again, the store is asked again.
    let gets = fg.metric(r#"filegate_store_operations_total{op="get",result="error"}"#);
    expect_envelope(download(&fg, "demo", &sign), 502, 10009);
    assert!(fg.metric(r#"filegate_store_operations_total{op="get",result="error"}"#) > gets);
    // Routes that need no store keep working.
    let t = token("demo", 7, TokenKind::User);
    let resp = client()
        .get(fg.url("/file/upload/avatar/user?app_id=demo"))
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);

    s3.restart();
    let back = Instant::now();
    let mut recovered = None;
    while back.elapsed() < Duration::from_secs(5) {
        let serve = download(&fg, "demo", &sign).status() == 200;
        let through = client().get(fg.url(&pass)).send().unwrap().status() == 200;
        if serve && through {
            recovered = Some(back.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = recovered.expect("requests did not succeed again after the store came back");
    assert!(took < Duration::from_secs(1), "recovery took {took:?}");
    assert_eq!(
        download(&fg, "demo", &sign).bytes().unwrap().as_ref(),
        b"hello store"
    );
}

#[test]
fn silent_store_is_504_at_the_configured_timeout() {
    let s3 = S3Server::start();
    let fg = Filegate::start_with(s3_setup(&s3, "1s"));
    let sign = upload(&fg, "demo", b"frozen".to_vec());
    let redirect_sign = upload(&fg, "redirect", b"frozen too".to_vec());
    let pass = passthrough_path(&fg, &redirect_sign);

    s3.pause();
    let started = Instant::now();
    expect_envelope(download(&fg, "demo", &sign), 504, 10009);
    let took = started.elapsed();
    // It cannot time out before the configured 1 s; the upper bound only catches a hang.
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(20),
        "{took:?}"
    );
    let started = Instant::now();
    expect_envelope(client().get(fg.url(&pass)).send().unwrap(), 504, 10009);
    assert!(started.elapsed() >= Duration::from_millis(950));

    s3.resume();
    assert_eq!(download(&fg, "demo", &sign).status(), 200);
    assert_eq!(client().get(fg.url(&pass)).send().unwrap().status(), 200);
}

#[test]
fn dripping_store_is_cut_off_with_bounded_memory() {
    let s3 = S3Server::start();
    let store_addr: std::net::SocketAddr =
        s3.endpoint.trim_start_matches("http://").parse().unwrap();
    // 512 bytes every 100 ms: 5 KiB/s, below the 16 KiB/s default minimum.
    let relay = DripRelay::start(store_addr, 512, Duration::from_millis(100));
    let store = s3
        .store_yaml()
        .replace(&s3.endpoint, &format!("http://{}", relay.addr))
        .replace("read_timeout: 10s", "read_timeout: 1s")
        + &format!("  public_endpoint: {}\n", s3.endpoint);
    let fg = Filegate::start_with(Setup {
        store: Some(store),
        ..Setup::default()
    });
    // Uploads go straight to the store (public_endpoint); reads come through the drip.
    let sign = upload(&fg, "demo", vec![7u8; 2 * 1024 * 1024]);
    let (idle, _) = rss_kib(fg.pid());
    let started = Instant::now();
    let result = download(&fg, "demo", &sign);
    assert_eq!(result.status(), 200, "headers arrive before the body drips");
    let body = result.bytes();
    let took = started.elapsed();
    assert!(
        body.is_err() || body.as_ref().is_ok_and(|b| b.len() < 2 * 1024 * 1024),
        "a dripped body completed"
    );
    assert!(took < Duration::from_secs(30), "not cut off: {took:?}");
    let (_, peak) = rss_kib(fg.pid());
    assert!(
        peak.saturating_sub(idle) < 50 * 1024,
        "memory grew {} KiB",
        peak - idle
    );
    let log = fg.log_when(|log| log.contains("too slow"));
    assert!(log.contains("too slow"), "{log}");
    assert_eq!(fg.metric("filegate_requests_in_flight"), 0.0);
}

#[test]
fn client_gone_mid_download_leaves_nothing_running() {
    let fg = Filegate::start();
    let t = token("big", 7, TokenKind::User);
    let g = grant(&fg, "big", &t, "/file/upload/chat?file_type=100&to_id=1");
    assert_eq!(
        post_upload(
            &g,
            "b.bin",
            "application/octet-stream",
            vec![1u8; 50 * 1024 * 1024]
        )
        .0,
        200
    );
    std::thread::sleep(Duration::from_millis(200));
    let fds_before = open_fds(fg.pid());
    for _ in 0..5 {
        let mut resp = client()
            .get(fg.url(&format!(
                "/file/download/chat?app_id=big&file_sign={}",
                g["file_sign"].as_str().unwrap()
            )))
            .header("access-token", &t)
            .send()
            .unwrap();
        let mut first = vec![0u8; 1024 * 1024];
        resp.read_exact(&mut first).unwrap();
        drop(resp);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && fg.metric("filegate_requests_in_flight") > 0.0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        fg.metric("filegate_requests_in_flight"),
        0.0,
        "a download task outlived its client"
    );
    assert!(
        open_fds(fg.pid()) <= fds_before + 2,
        "fds {} -> {}",
        fds_before,
        open_fds(fg.pid())
    );
}

#[test]
fn client_gone_mid_upload_stores_nothing() {
    let fg = Filegate::start();
    let t = token("big", 7, TokenKind::User);
    let g = grant(&fg, "big", &t, "/file/upload/chat?file_type=100&to_id=1");
    let key = g["oss_body_param"]["key"].as_str().unwrap().to_string();
    let boundary = "XfilegateX";
    let mut head = String::new();
    for (k, v) in g["oss_body_param"].as_object().unwrap() {
        head.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{}\r\n",
            v.as_str().unwrap()
        ));
    }
    head.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    ));
    let declared = head.len() + 10 * 1024 * 1024;
    let addr = fg.base.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    write!(
        sock,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {declared}\r\n\r\n{head}"
    )
    .unwrap();
    sock.write_all(&vec![9u8; 3 * 1024 * 1024]).unwrap();
    sock.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(sock);

    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && fg.metric("filegate_requests_in_flight") > 0.0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(fg.metric("filegate_requests_in_flight"), 0.0);
    assert!(
        !fg.data_dir().join("objects").join(&key).exists(),
        "a partial upload was stored"
    );
    let leftovers: Vec<_> = std::fs::read_dir(fg.data_dir().join("tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    // The store still takes a complete upload of the same grant.
    assert_eq!(
        post_upload(&g, "x.bin", "application/octet-stream", vec![1u8; 1000]).0,
        200
    );
}

#[test]
fn derived_results_are_served_through_a_store_outage() {
    let mut s3 = S3Server::start();
    let mut setup = s3_setup(&s3, "1s");
    setup.extra = "cache:\n  fresh_for: 1s\n".into();
    let fg = Filegate::start_with(setup);
    let name = upload_avatar(&fg, "demo", 7);
    let never_read = upload_avatar(&fg, "demo", 8);
    let url = fg.url(&format!(
        "/file/download/avatar?app_id=demo&object_name={name}&image_type=2&w=20&thumbnail_strategy=2"
    ));
    let t = token("demo", 7, TokenKind::User);
    let get = |url: &str| client().get(url).header("access-token", &t).send().unwrap();
    let first = get(&url);
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-cache-status"], "MISS");
    let thumb = first.bytes().unwrap();

    // The source's version is now older than fresh_for and the store is gone: the
    // thumbnail made of the version last seen is still served, marked STALE.
    std::thread::sleep(Duration::from_millis(1200));
    s3.kill();
    let during = get(&url);
    assert_eq!(during.status(), 200);
    assert_eq!(during.headers()["x-cache-status"], "STALE");
    assert_eq!(during.bytes().unwrap(), thumb);
    // A size never made is made from the cached source.
    let other = url.replace("w=20", "w=21");
    let made = get(&other);
    assert_eq!(made.status(), 200);
    assert_eq!(made.headers()["x-cache-status"], "MISS");
    // A source never read needs the store: its failure shows.
    let cold = fg.url(&format!(
        "/file/download/avatar?app_id=demo&object_name={never_read}&image_type=2&w=20"
    ));
    expect_envelope(get(&cold), 502, 10009);
    s3.restart();
    assert_eq!(get(&cold).status(), 200);
    // The store vouches for the first source again: no longer stale.
    let again = get(&url);
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["x-cache-status"], "REVALIDATED");
}
