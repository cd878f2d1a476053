//! Graceful shutdown (SIGTERM drains in-flight requests) and pingora's zero-downtime
//! upgrade (a new process started with `-u` takes the listeners over when the old
//! one gets SIGQUIT): a download in flight completes either way. The upgrade is also
//! how a TLS certificate is replaced: the new process loads the new one.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use filegate::claims::TokenKind;
use sha2::{Digest, Sha256};

use crate::harness::*;
use crate::tls_kit::{https_client, TestCa};

const SIZE: usize = 24 * 1024 * 1024;

/// Uploads a big file and starts a slow download of it on another thread; returns the
/// expected digest and the thread (which yields the digest it read).
fn slow_download(fg: &Filegate) -> (Vec<u8>, std::thread::JoinHandle<Result<Vec<u8>, String>>) {
    slow_download_with(fg, client(), &fg.base)
}

/// The same through `http` at `base` (the TLS listener, with a client trusting its CA).
fn slow_download_with(
    fg: &Filegate,
    http: reqwest::blocking::Client,
    base: &str,
) -> (Vec<u8>, std::thread::JoinHandle<Result<Vec<u8>, String>>) {
    let t = token("big", 7, TokenKind::User);
    let resp = http
        .get(format!(
            "{base}/file/upload/chat?file_type=100&to_id=1&app_id=big"
        ))
        .header("access-token", &t)
        .send()
        .expect("grant");
    let g = expect_envelope(resp, 200, 200)["data"].clone();
    let _ = fg;
    let bytes: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let digest = Sha256::digest(&bytes).to_vec();
    assert_eq!(
        post_upload_via(&http, &g, "b.bin", "application/octet-stream", bytes).0,
        200
    );
    let url = format!(
        "{base}/file/download/chat?app_id=big&file_sign={}",
        g["file_sign"].as_str().unwrap()
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut resp = http
            .get(&url)
            .header("access-token", t)
            .send()
            .map_err(|e| e.to_string())?;
        if resp.status() != 200 {
            return Err(format!("status {}", resp.status()));
        }
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0;
        let mut signalled = false;
        loop {
            let n = resp
                .read(&mut buf)
                .map_err(|e| format!("after {total} bytes: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            total += n;
            if !signalled && total > 1024 * 1024 {
                signalled = true;
                let _ = tx.send(());
            }
            // A slow reader: about 4 s for the whole file.
            std::thread::sleep(Duration::from_millis(40));
        }
        if total != SIZE {
            return Err(format!("short body: {total}"));
        }
        Ok(hasher.finalize().to_vec())
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("download started");
    (digest, handle)
}

#[test]
fn sigterm_drains_in_flight_downloads() {
    let mut fg = Filegate::start_with(Setup {
        extra: String::new(),
        ..Setup::default()
    });
    let (digest, download) = slow_download(&fg);
    fg.signal("TERM");
    // New connections are refused once the listeners close.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        client().get(fg.url("/file/nope")).send().is_err(),
        "still accepting after SIGTERM"
    );
    let read = download.join().unwrap();
    assert_eq!(
        read.as_deref(),
        Ok(digest.as_slice()),
        "the in-flight download did not complete:\n{}",
        fg.log()
            .lines()
            .filter(|l| !l.starts_with('{'))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let status = fg
        .wait_exit(Duration::from_secs(20))
        .expect("filegate did not exit after draining");
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn upgrade_hands_listeners_over_without_dropping_a_download() {
    let mut old = Filegate::start();
    let (digest, download) = slow_download(&old);

    // The new process waits on the upgrade socket for the listeners.
    let log = std::fs::File::create(old.dir.path().join("new.log")).unwrap();
    let mut new = KillOnDrop(
        Command::new(built_binary("filegate"))
            .args(["serve", "-u", "-c"])
            .arg(&old.config_path)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    old.signal("QUIT");

    // New requests are answered (by the new process) while the old one drains: every
    // one of them, none refused or failed.
    let mut answers = Vec::new();
    for _ in 0..40 {
        answers.push(
            client()
                .get(old.url("/file/nope"))
                .send()
                .map(|r| r.status().as_u16())
                .map_err(|e| e.to_string()),
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let failed: Vec<_> = answers.iter().filter(|a| *a != &Ok(404)).collect();
    assert!(
        failed.is_empty(),
        "requests failed during the upgrade: {failed:?}"
    );
    let read = download.join().unwrap();
    assert_eq!(
        read.as_deref(),
        Ok(digest.as_slice()),
        "the in-flight download broke in the upgrade"
    );
    assert!(
        old.wait_exit(Duration::from_secs(30)).is_some(),
        "the old process did not exit"
    );
    // Only the new process is left, and it serves.
    let resp = client()
        .get(format!("{}/healthz", old.admin))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(new.0.try_wait().unwrap().is_none(), "the new process died");
}

#[test]
fn upgrade_replaces_the_tls_certificate_without_dropping_a_download() {
    let (old_ca, new_ca) = (TestCa::new("old CA"), TestCa::new("new CA"));
    let (old_leaf, new_leaf) = (old_ca.leaf("old"), new_ca.leaf("new"));
    let mut old = Filegate::start_with(Setup {
        tls: Some(old_leaf.setup(true, "")),
        ..Setup::default()
    });
    let tls_base = old.tls_base.clone().unwrap();
    let (digest, download) = slow_download_with(&old, https_client(&old_ca), &tls_base);

    // The new process: the same config, but the new certificate's files.
    let config = std::fs::read_to_string(&old.config_path)
        .unwrap()
        .replace(
            &old_leaf.cert.display().to_string(),
            &new_leaf.cert.display().to_string(),
        )
        .replace(
            &old_leaf.key.display().to_string(),
            &new_leaf.key.display().to_string(),
        );
    assert!(config.contains(&new_leaf.cert.display().to_string()));
    let new_config = old.dir.path().join("new.yaml");
    std::fs::write(&new_config, config).unwrap();
    let log = std::fs::File::create(old.dir.path().join("new.log")).unwrap();
    let mut new = KillOnDrop(
        Command::new(built_binary("filegate"))
            .args(["serve", "-u", "-c"])
            .arg(&new_config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(500));
    old.signal("QUIT");

    // During the hand-over every new TLS connection is answered (by one process or
    // the other, so the client trusts both CAs).
    let both = {
        let mut b = reqwest::blocking::Client::builder()
            .tls_built_in_root_certs(false)
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10));
        for ca in [&old_ca, &new_ca] {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(&ca.pem()).unwrap());
        }
        b.build().unwrap()
    };
    let failed: Vec<String> = (0..20)
        .filter_map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            match both.get(format!("{tls_base}/file/nope")).send() {
                Ok(r) if r.status() == 404 => None,
                Ok(r) => Some(format!("status {}", r.status())),
                Err(e) => Some(e.to_string()),
            }
        })
        .collect();
    assert!(
        failed.is_empty(),
        "TLS requests failed during the upgrade: {failed:?}"
    );
    // Then, once the old process stops accepting (pingora keeps both accepting for 5 s
    // after handing the sockets over), new connections see the new certificate only.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !old.log().contains("Graceful shutdown started") {
        assert!(
            std::time::Instant::now() < deadline,
            "the old process never stopped accepting:\n{}",
            old.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for _ in 0..5 {
        let resp = https_client(&new_ca)
            .get(format!("{tls_base}/file/nope"))
            .send()
            .expect("the new certificate");
        assert_eq!(resp.status(), 404);
        assert!(
            https_client(&old_ca)
                .get(format!("{tls_base}/file/nope"))
                .send()
                .is_err(),
            "a new connection still got the old certificate"
        );
    }
    // The download that began on the old certificate completed.
    let read = download.join().unwrap();
    assert_eq!(
        read.as_deref(),
        Ok(digest.as_slice()),
        "the in-flight TLS download broke in the upgrade"
    );
    assert!(
        old.wait_exit(Duration::from_secs(30)).is_some(),
        "the old process did not exit"
    );
    assert!(new.0.try_wait().unwrap().is_none(), "the new process died");
}

/// A child this test started, killed (by PID) however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
