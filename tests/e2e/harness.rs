//! Starting filegate (the real binary) on free loopback ports with a config made for
//! the test, and the helpers the tests share: tokens, uploads, metrics.

#![allow(dead_code)]

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use filegate::claims::{TokenClaims, TokenKind};
use filegate::config::Secret;
use reqwest::blocking::{multipart, Client, Response};
use serde_json::Value;

/// The demo app's current secret in tests (first: signs what filegate mints).
pub const DEMO_SECRET: &str = "new-secret-0123456789";
/// A rotated secret still listed (verifies).
pub const DEMO_OLD_SECRET: &str = "old-secret-0123456789";
/// A secret rotated out (no longer listed).
pub const DEMO_GONE_SECRET: &str = "gone-secret-0123456789";
/// The other app's secret.
pub const OTHER_SECRET: &str = "other-secret-0123456789";

/// Apps every test filegate has.
pub const TEST_APPS: &str = r#"
apps:
  demo:
    secrets: ["new-secret-0123456789", "old-secret-0123456789"]
  other:
    secrets: ["other-secret-0123456789"]
  redirect:
    secrets: ["redirect-secret-0123456789"]
    download_mode: redirect
  legacy:
    secrets: ["legacy-secret-0123456789"]
    errors_as_http_200: true
  putapp:
    secrets: ["putapp-secret-0123456789"]
    upload_method: PUT
  big:
    secrets: ["big-secret-0123456789"]
    max_upload:
      file: 300 MiB
  tiny:
    secrets: ["tiny-secret-0123456789"]
    max_upload:
      avatar: 1 KiB
      file: 2 KiB
"#;

/// The secret of a test app.
pub fn secret_of(app: &str) -> &'static str {
    match app {
        "demo" => DEMO_SECRET,
        "other" => OTHER_SECRET,
        "redirect" => "redirect-secret-0123456789",
        "legacy" => "legacy-secret-0123456789",
        "putapp" => "putapp-secret-0123456789",
        "tiny" => "tiny-secret-0123456789",
        "big" => "big-secret-0123456789",
        _ => panic!("no test app {app}"),
    }
}

/// `read()` again every 50 ms until `done` holds for what it read, for at most 10 s;
/// the last read either way (the caller's assertion says what was missing).
pub fn read_until<T>(read: impl Fn() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = read();
        if done(&got) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lowest port the tests hand out.
const FIRST_TEST_PORT: u32 = 10_000;

/// The ports the tests hand out: from [`FIRST_TEST_PORT`] to just below the kernel's
/// ephemeral range (`net.ipv4.ip_local_port_range`, 32768-60999 by default). `bind(0)`
/// and every outgoing connection's source port come from that range, so a port picked
/// there and released could be taken by some connection before the server meant for
/// it bound it (a cluster test's node failed so in CI: "Address already in use").
/// `None` when the ephemeral range leaves too few below it. Read once a run.
fn test_ports() -> Option<(u32, u32)> {
    static RANGE: OnceLock<Option<(u32, u32)>> = OnceLock::new();
    *RANGE.get_or_init(|| {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
        let low: u32 = range.split_whitespace().next()?.parse().ok()?;
        (low > FIRST_TEST_PORT + 2_000).then_some((FIRST_TEST_PORT, low))
    })
}

/// Test ports handed out so far in this process.
static PORTS_HANDED: AtomicU32 = AtomicU32::new(0);

/// A free loopback port, never handed out before in this run: the next of
/// [`test_ports`] that nothing listens on (each process starts at its own place in
/// the range, so that two test runs at once seldom meet), or one the OS picks if there
/// is no such range. Nothing holds it: the caller binds it (or leaves it closed).
pub fn free_port() -> u16 {
    if let Some((low, high)) = test_ports() {
        let span = high - low;
        let start = std::process::id().wrapping_mul(2_654_435_761) % span;
        for _ in 0..span {
            let n = PORTS_HANDED.fetch_add(1, Ordering::Relaxed);
            let port = low + (start + n) % span;
            let port = u16::try_from(port).expect("a port number");
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `n` distinct free loopback ports ([`free_port`]).
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| free_port()).collect()
}

/// Path of a binary cargo built beside the tests. Examples (`cargo test` builds them
/// in test mode only) are built on first use with the same cargo.
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test exe path");
    let deps = exe.parent().expect("deps dir");
    let profile = deps.parent().expect("profile dir");
    let bin = profile.join(name);
    if bin.exists() {
        return bin;
    }
    let example = profile.join("examples").join(name);
    // Built once per test run, so a stale example never answers.
    static BUILT: std::sync::Mutex<bool> = std::sync::Mutex::new(false);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--example", name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cargo build --example {name} failed");
        *built = true;
    }
    example
}

/// The path and query of an absolute URL (a presigned URL or a redirect's
/// `Location`), to send the same signed request to filegate instead.
pub fn path_and_query_of(url: &str) -> &str {
    let rest = &url[url.find("://").expect("an absolute URL") + 3..];
    &rest[rest.find('/').unwrap_or(rest.len())..]
}

/// A running filegate, stopped (by PID) when dropped.
pub struct Filegate {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `http://127.0.0.1:ADMIN_PORT`.
    pub admin: String,
    /// The test's directory (config, data, logs).
    pub dir: tempfile::TempDir,
    /// The config file.
    pub config_path: PathBuf,
    /// `https://127.0.0.1:TLS_PORT` when the setup has a TLS listener.
    pub tls_base: Option<String>,
}

/// A TLS listener for a test server: its files and any further `tls:` keys.
#[derive(Clone)]
pub struct TlsSetup {
    /// The PEM chain.
    pub cert: PathBuf,
    /// The PEM key.
    pub key: PathBuf,
    /// More `tls:` keys, each line indented by two spaces (`  http2: false\n`).
    pub keys: String,
    /// Make `public_url` the TLS listener (handed-out URLs are https).
    pub public: bool,
}

/// What varies between test servers.
#[derive(Clone)]
pub struct Setup {
    /// The `store:` section (None: embedded in the test dir).
    pub store: Option<String>,
    /// The `apps:` section.
    pub apps: String,
    /// Anything else (top-level keys).
    pub extra: String,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Extra arguments after `serve -c FILE`.
    pub args: Vec<String>,
    /// The embedded store's POST dialect (`oss` or `s3`), when not the default.
    pub embedded_dialect: Option<String>,
    /// The public port, when the test must know it before start (cluster peers).
    pub port: Option<u16>,
    /// A TLS listener beside the plain one.
    pub tls: Option<TlsSetup>,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            store: None,
            apps: TEST_APPS.to_string(),
            extra: String::new(),
            env: Vec::new(),
            args: Vec::new(),
            embedded_dialect: None,
            port: None,
            tls: None,
        }
    }
}

impl Filegate {
    /// Starts with the default test setup (embedded store, the test apps).
    pub fn start() -> Filegate {
        Filegate::start_with(Setup::default())
    }

    /// Starts with `setup`, retrying on another port if one was taken meanwhile.
    pub fn start_with(setup: Setup) -> Filegate {
        let dir = tempfile::tempdir().expect("temp dir");
        Filegate::start_in(setup, dir)
    }

    /// Starts in an existing directory (restart tests reuse the data directory).
    /// A port taken between picking and binding makes the process exit: it is then
    /// started again on fresh ports.
    pub fn start_in(setup: Setup, dir: tempfile::TempDir) -> Filegate {
        let mut logs = Vec::new();
        for _attempt in 0..3 {
            let (port, admin_port) = (setup.port.unwrap_or_else(free_port), free_port());
            let tls_port = setup.tls.as_ref().map(|_| free_port());
            let config_path = dir.path().join("filegate.yaml");
            std::fs::write(
                &config_path,
                config_yaml(&setup, dir.path(), port, admin_port, tls_port),
            )
            .expect("write config");
            let log = std::fs::File::create(dir.path().join("filegate.log")).expect("log file");
            let mut cmd = Command::new(built_binary("filegate"));
            cmd.arg("serve")
                .arg("-c")
                .arg(&config_path)
                .args(&setup.args);
            cmd.env("RUST_LOG", "info");
            for (k, v) in &setup.env {
                cmd.env(k, v);
            }
            let mut child = cmd
                .stdout(log.try_clone().expect("log clone"))
                .stderr(log)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn filegate");
            let base = format!("http://127.0.0.1:{port}");
            let admin = format!("http://127.0.0.1:{admin_port}");
            let ready = wait_ready(&mut child, &base, &admin, Duration::from_secs(20))
                && tls_port.is_none_or(|p| wait_tcp(&mut child, p, Duration::from_secs(5)));
            if ready {
                return Filegate {
                    child,
                    base,
                    admin,
                    dir,
                    config_path,
                    tls_base: tls_port.map(|p| format!("https://127.0.0.1:{p}")),
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            logs.push(std::fs::read_to_string(dir.path().join("filegate.log")).unwrap_or_default());
        }
        panic!("filegate did not start:\n{}", logs.join("\n---\n"));
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything filegate printed so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("filegate.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// What filegate printed, once `done` holds for it (access lines are flushed every
    /// 100 ms, after the answer), or as it is after 10 s.
    pub fn log_when(&self, done: impl Fn(&str) -> bool) -> String {
        read_until(|| self.log(), |log| done(log))
    }

    /// `base` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// `tls_base` + `path_and_query` (the setup must have a TLS listener).
    pub fn tls_url(&self, path_and_query: &str) -> String {
        let base = self.tls_base.as_deref().expect("a TLS listener");
        format!("{base}{path_and_query}")
    }

    /// The TLS listener's address.
    pub fn tls_addr(&self) -> std::net::SocketAddr {
        let base = self.tls_base.as_deref().expect("a TLS listener");
        base.trim_start_matches("https://")
            .parse()
            .expect("tls address")
    }

    /// The `/metrics` text.
    pub fn metrics(&self) -> String {
        client()
            .get(format!("{}/metrics", self.admin))
            .send()
            .expect("metrics")
            .text()
            .expect("text")
    }

    /// The value of one metric line (exact name with labels); a missing series fails
    /// the test (filegate registers every series it counts at start).
    pub fn metric(&self, series: &str) -> f64 {
        metric_value(&self.metrics(), series)
    }

    /// The sum of every series of a metric family; a missing family fails the test.
    pub fn metric_sum(&self, family: &str) -> f64 {
        metric_family_sum(&self.metrics(), family)
    }

    /// The embedded store's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Stops the process and gives back its directory (restart tests).
    pub fn stop(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let tmp = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, tmp)
    }

    /// Stops the process as an operator would (SIGTERM: drain, flush the cache, exit)
    /// and gives back its directory.
    pub fn stop_gracefully(mut self) -> tempfile::TempDir {
        self.signal("TERM");
        assert!(
            self.wait_exit(Duration::from_secs(20)).is_some(),
            "filegate did not stop on SIGTERM:\n{}",
            self.log()
        );
        let tmp = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, tmp)
    }

    /// Sends a signal (SIGTERM, SIGQUIT...) to the process by PID.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Filegate {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_ready(child: &mut Child, base: &str, admin: &str, timeout: Duration) -> bool {
    let client = Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let admin_ok = client
            .get(format!("{admin}/healthz"))
            .send()
            .is_ok_and(|r| r.status() == 200);
        // filegate's own envelope, not merely an answer: a port taken by another test's
        // server between picking and binding must not pass for this filegate.
        let ours = || {
            client
                .get(format!("{base}/file/nope"))
                .send()
                .ok()
                .and_then(|r| r.text().ok())
                .is_some_and(|body| body.starts_with("{\"code\":"))
        };
        if admin_ok && ours() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Whether a TCP listener accepts on `port` (while `child` runs).
fn wait_tcp(child: &mut Child, port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn config_yaml(
    setup: &Setup,
    dir: &Path,
    port: u16,
    admin_port: u16,
    tls_port: Option<u16>,
) -> String {
    let store = setup.store.clone().unwrap_or_else(|| {
        let dialect = setup
            .embedded_dialect
            .as_ref()
            .map(|d| format!("  dialect: {d}\n"))
            .unwrap_or_default();
        format!(
            "store:\n  kind: embedded\n  dir: {}\n{dialect}",
            dir.join("data").display()
        )
    });
    let (tls, public_url) = match (&setup.tls, tls_port) {
        (Some(t), Some(tls_port)) => (
            format!(
                "tls:\n  listen: 127.0.0.1:{tls_port}\n  cert: {}\n  key: {}\n{}",
                t.cert.display(),
                t.key.display(),
                t.keys
            ),
            if t.public {
                format!("https://127.0.0.1:{tls_port}")
            } else {
                format!("http://127.0.0.1:{port}")
            },
        ),
        _ => (String::new(), format!("http://127.0.0.1:{port}")),
    };
    format!(
        "listen: 127.0.0.1:{port}\nadmin_listen: 127.0.0.1:{admin_port}\npublic_url: {public_url}\n{tls}threads: 2\nserver:\n  upgrade_sock: {}\n  pid_file: {}\n  grace_period: 30s\n  graceful_shutdown_timeout: 5s\n{store}{}\n{}\n",
        dir.join("upgrade.sock").display(),
        dir.join("filegate.pid").display(),
        setup.apps,
        setup.extra
    )
}

/// Parses one series out of Prometheus text; a missing or unparsable series panics,
/// so an assertion can never pass on a metric that does not exist.
pub fn metric_value(text: &str, series: &str) -> f64 {
    let value = text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
    });
    match value.map(|v| v.trim().parse::<f64>()) {
        Some(Ok(v)) => v,
        _ => panic!("metric series `{series}` is missing from /metrics:\n{text}"),
    }
}

/// The sum of every series of `family` (`name{...} v` and `name v` lines); panics when
/// the family has no series at all.
pub fn metric_family_sum(text: &str, family: &str) -> f64 {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(family)?;
            if !(rest.starts_with('{') || rest.starts_with(' ')) {
                return None;
            }
            l.rsplit(' ').next()?.parse().ok()
        })
        .collect();
    assert!(
        !values.is_empty(),
        "metric family `{family}` is missing from /metrics:\n{text}"
    );
    values.iter().sum()
}

/// A client that never follows redirects.
pub fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// A token for a test app.
pub fn token(app: &str, sub: i64, kind: TokenKind) -> String {
    TokenClaims::new(app, sub, kind, 3600)
        .mint(&Secret::new(secret_of(app)))
        .expect("mint")
}

/// An admin token limited to `groups`.
pub fn admin_token_for(app: &str, sub: i64, groups: &[i64]) -> String {
    let mut c = TokenClaims::new(app, sub, TokenKind::Admin, 3600);
    c.groups = Some(groups.to_vec());
    c.mint(&Secret::new(secret_of(app))).expect("mint")
}

/// Reads a JSON envelope, asserting HTTP status and body code.
pub fn expect_envelope(resp: Response, status: u16, code: u64) -> Value {
    let got_status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().expect("body");
    assert_eq!(got_status, status, "status; body: {text}");
    assert!(
        ct.starts_with("application/json"),
        "content-type {ct}; body: {text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(v["code"].as_u64(), Some(code), "body code; body: {text}");
    if code == 200 {
        assert!(v["message"].is_null(), "{text}");
    } else {
        assert!(v["data"].is_null(), "{text}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{text}"
        );
    }
    v
}

/// Asks for an upload grant; returns `data`.
pub fn grant(fg: &Filegate, app: &str, token: &str, path_and_query: &str) -> Value {
    let sep = if path_and_query.contains('?') {
        '&'
    } else {
        '?'
    };
    let resp = client()
        .get(fg.url(&format!("{path_and_query}{sep}app_id={app}")))
        .header("access-token", token)
        .send()
        .expect("grant");
    expect_envelope(resp, 200, 200)["data"].clone()
}

/// Uploads `bytes` with a POST grant the way the product's server-side client does:
/// the handed-out fields (plus `callback`), then `file`. Returns the HTTP status.
pub fn post_upload(
    grant: &Value,
    file_name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (u16, String) {
    post_upload_via(&client(), grant, file_name, content_type, bytes)
}

/// [`post_upload`] with a given client (one that trusts a test CA, for https stores).
pub fn post_upload_via(
    client: &Client,
    grant: &Value,
    file_name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> (u16, String) {
    // s3s-fs, the S3 test server, sometimes fails a form it reads in pieces under load
    // (docs/decisions.md, "Test servers"): that answer, and only that, is sent again;
    // so is a form whose body s3s-fs stopped reading (it answered that error and closed
    // before the body was sent: the client sees the connection go), but only for a
    // form posted straight to the S3 test server (path-style, its bucket), never one
    // posted to filegate.
    let url = grant["upload_url"].as_str().expect("upload_url");
    let to_s3_server = reqwest::Url::parse(url)
        .map(|u| u.path().trim_end_matches('/') == format!("/{S3_BUCKET}"))
        .unwrap_or(false);
    for _ in 0..3 {
        match post_form(client, grant, file_name, content_type, bytes.clone()) {
            Ok((400, body)) if body.contains("failed to read file stream") => {}
            Ok(answer) => return answer,
            Err(e) if to_s3_server && (e.is_body() || e.is_request()) => {}
            Err(e) => panic!("upload: {e:?}"),
        }
    }
    post_form(client, grant, file_name, content_type, bytes).expect("upload")
}

/// One POST of the grant's form with `bytes` as its file: the status and body, or the
/// transport's error.
fn post_form(
    client: &Client,
    grant: &Value,
    file_name: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Result<(u16, String), reqwest::Error> {
    let mut form = multipart::Form::new();
    let fields = grant["oss_body_param"].as_object().expect("fields");
    for (k, v) in fields {
        form = form.text(k.clone(), v.as_str().unwrap_or("").to_string());
    }
    if fields.contains_key("OSSAccessKeyId") && !fields.contains_key("callback") {
        form = form.text("callback", "");
    }
    let part = multipart::Part::bytes(bytes)
        .file_name(file_name.to_string())
        .mime_str(content_type)
        .expect("mime");
    form = form.part("file", part);
    let resp = client
        .post(grant["upload_url"].as_str().expect("upload_url"))
        .multipart(form)
        .send()?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().unwrap_or_default()))
}

/// Uploads with a PUT grant.
pub fn put_upload(grant: &Value, bytes: Vec<u8>) -> (u16, String) {
    let mut req = client().put(grant["upload_url"].as_str().expect("upload_url"));
    for (k, v) in grant["oss_body_param"].as_object().expect("headers") {
        if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k.as_str(), v.as_str().unwrap_or(""));
        }
    }
    let resp = req.body(bytes).send().expect("put");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

/// A small real JPEG made by libvips' own CLI.
pub fn small_jpeg() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("x.jpg");
    let ok = Command::new("vips")
        .args(["black", path.to_str().expect("path"), "64", "48"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "vips CLI (libvips-tools) is needed to make fixtures");
    std::fs::read(path).expect("read jpeg")
}

/// Uploads a small avatar for user `sub` of `app` and returns its object_name.
pub fn upload_avatar(fg: &Filegate, app: &str, sub: i64) -> String {
    let t = token(app, sub, TokenKind::User);
    let g = grant(fg, app, &t, "/file/upload/avatar/user");
    let (status, body) = post_upload(&g, "a.jpg", "image/jpeg", small_jpeg());
    assert_eq!(status, 200, "upload: {body}");
    g["object_name"].as_str().expect("object_name").to_string()
}

/// Where the project's tools live (installed by `scripts/setup.sh test`), outside the
/// clone so every clone on the machine shares them: `$FILEGATE_TOOLS`, else
/// `$XDG_CACHE_HOME/filegate/tools`, else `~/.cache/filegate/tools` (the rule of
/// scripts/tools-dir.sh; an empty variable counts as unset, as in the shell).
pub fn tools_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("FILEGATE_TOOLS") {
        return PathBuf::from(dir);
    }
    let cache = var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME is set");
    cache.join("filegate").join("tools")
}

/// A tool at `rel` under [`tools_dir`], asserting it is there.
pub fn tool(rel: &str) -> PathBuf {
    let path = tools_dir().join(rel);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh test",
        path.display()
    );
    path
}

/// Credentials the test S3 server is started with.
pub const S3_ACCESS_KEY: &str = "filegate-test-ak";
/// Secret of the test S3 server.
pub const S3_SECRET_KEY: &str = "filegate-test-secret-0123456789";
/// The bucket the tests use.
pub const S3_BUCKET: &str = "filegate";

/// The `store:` section for an S3 store at `endpoint` with the test bucket and key
/// pair (path-style, us-east-1).
pub fn s3_store_yaml(endpoint: &str) -> String {
    format!(
        "store:\n  kind: s3\n  endpoint: {endpoint}\n  region: us-east-1\n  bucket: {S3_BUCKET}\n  access_key_id: {S3_ACCESS_KEY}\n  secret_access_key: {S3_SECRET_KEY}\n  path_style: true\n  connect_timeout: 2s\n  read_timeout: 10s\n"
    )
}

/// A real S3-compatible server (s3s-fs, installed into the tools dir by scripts/setup.sh)
/// on a free port, stopped by PID when dropped.
pub struct S3Server {
    child: Child,
    bin: PathBuf,
    port: u16,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Its data directory (bucket = sub-directory).
    pub root: tempfile::TempDir,
}

fn spawn_s3s(bin: &Path, port: u16, root: &Path) -> Option<Child> {
    let mut child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn s3s-fs");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(child);
        }
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl S3Server {
    /// Starts s3s-fs with the test credentials and an empty `filegate` bucket.
    pub fn start() -> S3Server {
        let bin = match std::env::var("FILEGATE_S3S_FS") {
            Ok(bin) => PathBuf::from(bin),
            Err(_) => tool("bin/s3s-fs"),
        };
        assert!(bin.exists(), "{} is missing", bin.display());
        let root = tempfile::tempdir().expect("s3 root");
        std::fs::create_dir_all(root.path().join(S3_BUCKET)).expect("bucket dir");
        for _ in 0..3 {
            let port = free_port();
            if let Some(child) = spawn_s3s(&bin, port, root.path()) {
                return S3Server {
                    child,
                    bin,
                    port,
                    endpoint: format!("http://127.0.0.1:{port}"),
                    root,
                };
            }
        }
        panic!("s3s-fs did not start");
    }

    /// Kills the store (connections are then refused).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the store again on the same port with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn_s3s(&self.bin, self.port, self.root.path()).expect("s3s-fs restart");
    }

    /// Freezes the store: the kernel still accepts connections, nothing answers.
    pub fn pause(&self) {
        signal_pid(self.child.id(), "STOP");
    }

    /// Thaws a paused store.
    pub fn resume(&self) {
        signal_pid(self.child.id(), "CONT");
    }

    /// The `store:` section that points filegate at this server.
    pub fn store_yaml(&self) -> String {
        s3_store_yaml(&self.endpoint)
    }

    /// Where the server keeps the object at `key` (a file per object).
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.path().join(S3_BUCKET).join(key)
    }

    /// Whether the server holds an object at `key`.
    pub fn has(&self, key: &str) -> bool {
        self.root.path().join(S3_BUCKET).join(key).exists()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal to a process this test started.
pub fn signal_pid(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// A TCP relay in front of a real store that passes requests through untouched and
/// drips the store's answers back (`chunk` bytes every `gap`).
pub struct DripRelay {
    /// `127.0.0.1:PORT` of the relay.
    pub addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl DripRelay {
    /// Starts relaying to `upstream`.
    pub fn start(upstream: std::net::SocketAddr, chunk: usize, gap: Duration) -> DripRelay {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("relay addr");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        std::thread::spawn(move || {
            while !stop_flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(store) = std::net::TcpStream::connect(upstream) else {
                            continue;
                        };
                        let (mut c_read, mut s_write) = (
                            client.try_clone().expect("clone"),
                            store.try_clone().expect("clone"),
                        );
                        std::thread::spawn(move || {
                            let _ = std::io::copy(&mut c_read, &mut s_write);
                        });
                        let (mut s_read, mut c_write) = (store, client);
                        std::thread::spawn(move || {
                            use std::io::Write;
                            let mut buf = vec![0u8; chunk];
                            loop {
                                match s_read.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => {
                                        if c_write.write_all(&buf[..n]).is_err() {
                                            break;
                                        }
                                        std::thread::sleep(gap);
                                    }
                                }
                            }
                            let _ = c_write.shutdown(std::net::Shutdown::Both);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        DripRelay { addr, stop }
    }
}

impl Drop for DripRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Open file descriptors of a process (panics when /proc cannot tell).
pub fn open_fds(pid: u32) -> usize {
    let count = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd unreadable: {e}"))
        .count();
    assert!(count > 0, "/proc/{pid}/fd lists no descriptor");
    count
}

/// Resident memory of a process now and at its peak (VmRSS, VmHWM), in KiB (panics
/// when /proc cannot tell).
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status unreadable: {e}"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    let (rss, hwm) = (field("VmRSS:"), field("VmHWM:"));
    assert!(
        rss > 0 && hwm >= rss,
        "implausible memory of {pid}: {rss} / {hwm}"
    );
    (rss, hwm)
}
