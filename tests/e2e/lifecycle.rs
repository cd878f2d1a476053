//! Graceful shutdown (SIGTERM drains in-flight requests) and pingora's zero-downtime
//! upgrade (a new process started with `-u` takes the listeners over when the old
//! one gets SIGQUIT): a download in flight completes either way.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use filegate::auth::claims::TokenKind;
use sha2::{Digest, Sha256};

use crate::harness::*;

const SIZE: usize = 24 * 1024 * 1024;

/// Uploads a big file and starts a slow download of it on another thread; returns the
/// expected digest and the thread (which yields the digest it read).
fn slow_download(fg: &Filegate) -> (Vec<u8>, std::thread::JoinHandle<Result<Vec<u8>, String>>) {
    let t = token("big", 7, TokenKind::User);
    let g = grant(fg, "big", &t, "/file/upload/chat?file_type=100&to_id=1");
    let bytes: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
    let digest = Sha256::digest(&bytes).to_vec();
    assert_eq!(
        post_upload(&g, "b.bin", "application/octet-stream", bytes).0,
        200
    );
    let url = fg.url(&format!(
        "/file/download/chat?app_id=big&file_sign={}",
        g["file_sign"].as_str().unwrap()
    ));
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let mut resp = client()
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

/// A child this test started, killed (by PID) however the test ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
