//! A 200 MB upload and download through filegate keep its memory flat: bodies are
//! streamed both ways, never held whole (issue 3). Measured as filegate's peak RSS
//! (VmHWM) against its idle RSS, on both stores.

use std::io::Write;

use filegate::claims::TokenKind;
use reqwest::blocking::multipart;
use sha2::{Digest, Sha256};

use crate::harness::*;
use crate::storage_suite::{Backend, Env};

const SIZE: u64 = 200 * 1024 * 1024;
const BUDGET_KIB: u64 = 100 * 1024;

/// Writes `SIZE` pseudo-random bytes to a file, returning its SHA-256.
fn make_file(path: &std::path::Path) -> Vec<u8> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..(SIZE >> 20) {
        for word in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        hasher.update(&chunk);
        f.write_all(&chunk).unwrap();
    }
    f.flush().unwrap();
    hasher.finalize().to_vec()
}

struct HashingSink(Sha256, u64);
impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        self.1 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn big_transfer(backend: Backend) {
    let env = Env::new(backend, |_| {});
    let fg = &env.fg;
    // Embedded: a POST form to filegate itself. S3: a presigned PUT sent through
    // filegate's pass-through (s3s-fs's form parser refuses reads over 64 KiB, which
    // a proxied stream produces; real S3 stores do not care).
    let app = if env.s3.is_some() { "putapp" } else { "big" };
    let t = token(app, 7, TokenKind::User);
    // Warm up (first requests allocate pools and buffers), then take the idle figure.
    let g = grant(
        fg,
        app,
        &t,
        &format!("/file/upload/chat?file_type=100&to_id=1&size={SIZE}"),
    );
    let (idle_rss, _) = rss_kib(fg.pid());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let digest = make_file(&path);

    let resp = match &env.s3 {
        None => {
            let mut form = multipart::Form::new();
            for (k, v) in g["oss_body_param"].as_object().unwrap() {
                form = form.text(k.clone(), v.as_str().unwrap().to_string());
            }
            form = form.part(
                "file",
                multipart::Part::file(&path)
                    .unwrap()
                    .mime_str("application/octet-stream")
                    .unwrap(),
            );
            client()
                .post(g["upload_url"].as_str().unwrap())
                .multipart(form)
                .send()
        }
        Some(s3) => {
            let url = g["upload_url"]
                .as_str()
                .unwrap()
                .replacen(&s3.endpoint, &fg.base, 1);
            let file = std::fs::File::open(&path).unwrap();
            // Exactly the headers the grant says to send (it signs them).
            let mut put = client().put(url);
            for (k, v) in g["oss_body_param"].as_object().unwrap() {
                if !k.eq_ignore_ascii_case("content-length") {
                    put = put.header(k.as_str(), v.as_str().unwrap());
                }
            }
            put.body(reqwest::blocking::Body::sized(file, SIZE)).send()
        }
    };
    let resp = resp.unwrap_or_else(|e| panic!("upload failed: {e}\nfilegate log:\n{}", fg.log()));
    assert_eq!(resp.status(), 200, "{:?}", resp.text());
    let (_, after_upload) = rss_kib(fg.pid());

    let mut resp = client()
        .get(fg.url(&format!(
            "/file/download/chat?app_id={app}&file_sign={}",
            g["file_sign"].as_str().unwrap()
        )))
        .header("access-token", &t)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut sink = HashingSink(Sha256::new(), 0);
    resp.copy_to(&mut sink).unwrap();
    assert_eq!(sink.1, SIZE);
    assert_eq!(
        sink.0.finalize().to_vec(),
        digest,
        "downloaded bytes differ"
    );
    let (_, peak) = rss_kib(fg.pid());

    eprintln!(
        "{backend:?}: filegate idle RSS {} MiB, peak after 200 MiB upload {} MiB, after download {} MiB",
        idle_rss / 1024,
        after_upload / 1024,
        peak / 1024
    );
    assert!(
        peak.saturating_sub(idle_rss) < BUDGET_KIB,
        "filegate grew {} MiB over idle moving 200 MiB",
        peak.saturating_sub(idle_rss) / 1024
    );
}

#[test]
fn upload_and_download_200mb_embedded() {
    big_transfer(Backend::Embedded);
}

#[test]
fn upload_and_download_200mb_s3() {
    big_transfer(Backend::S3);
}
