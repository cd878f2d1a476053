//! What the TLS tests share: a test CA made at test time with Debian's `openssl` CLI,
//! clients that trust it (reqwest, curl), nginx terminating TLS in front of a real S3
//! server, and a raw h2 client over rustls for frames no polite client sends.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;

use crate::harness::{free_port, read_until, TlsSetup};

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI (Debian package openssl) is needed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority made for one test.
pub struct TestCa {
    dir: tempfile::TempDir,
    /// The CA certificate (PEM).
    pub cert: PathBuf,
    key: PathBuf,
    serial: std::cell::Cell<u32>,
}

/// A certificate the CA issued, and its key.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The PEM certificate (alone; see [`TestCa::chain`] for leaf + CA).
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

impl TestCa {
    /// A fresh CA (EC P-256, valid two days) named `name`.
    pub fn new(name: &str) -> TestCa {
        let dir = tempfile::tempdir().expect("ca dir");
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir.path(),
        );
        TestCa {
            cert: dir.path().join("ca.pem"),
            key: dir.path().join("ca.key"),
            dir,
            serial: std::cell::Cell::new(1),
        }
    }

    /// A server certificate for `127.0.0.1` and `localhost` (CA:FALSE, serverAuth),
    /// valid for two days.
    pub fn leaf(&self, name: &str) -> Leaf {
        self.leaf_for_days(name, 2)
    }

    /// The same, valid for `days` (negative: already expired).
    pub fn leaf_for_days(&self, name: &str, days: i64) -> Leaf {
        let n = self.serial.get();
        self.serial.set(n + 1);
        let dir = self.dir.path();
        let (key, csr, ext, cert) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.ext"),
            format!("{name}.pem"),
        );
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
            dir,
        );
        std::fs::write(
            dir.join(&ext),
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("ext file");
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &n.to_string(),
                "-out",
                &cert,
                "-days",
                &days.to_string(),
                "-extfile",
                &ext,
            ],
            dir,
        );
        Leaf {
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }

    /// A PEM file holding the leaf, then this CA (a chain, leaf first).
    pub fn chain(&self, leaf: &Leaf, name: &str) -> PathBuf {
        let mut pem = std::fs::read(&leaf.cert).expect("leaf");
        pem.extend(std::fs::read(&self.cert).expect("ca"));
        let path = self.dir.path().join(name);
        std::fs::write(&path, pem).expect("chain");
        path
    }

    /// The CA certificate's PEM bytes.
    pub fn pem(&self) -> Vec<u8> {
        std::fs::read(&self.cert).expect("ca pem")
    }

    /// A path in the CA's directory (for files a test writes).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Leaf {
    /// The TLS listener of a test server with this certificate.
    pub fn setup(&self, public: bool, keys: &str) -> TlsSetup {
        TlsSetup {
            cert: self.cert.clone(),
            key: self.key.clone(),
            keys: keys.to_string(),
            public,
        }
    }

    /// base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo (what
    /// Chromium's `--ignore-certificate-errors-spki-list` takes).
    pub fn spki_sha256(&self) -> String {
        let script = format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64",
            self.cert.display()
        );
        let out = Command::new("sh")
            .args(["-c", &script])
            .output()
            .expect("sh");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// A blocking client that trusts only `ca` (never the built-in roots) and does not
/// follow redirects.
pub fn https_client(ca: &TestCa) -> Client {
    let cert = reqwest::Certificate::from_pem(&ca.pem()).expect("CA pem");
    Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("https client")
}

/// Runs `curl -sS` trusting `ca` with `args`.
pub fn curl(ca: &TestCa, args: &[&str]) -> Output {
    Command::new("curl")
        .arg("-sS")
        .arg("--cacert")
        .arg(&ca.cert)
        .args(args)
        .output()
        .expect("curl (Debian package curl) is needed")
}

/// nginx (Debian's) terminating TLS with `leaf` in front of an HTTP server on
/// `upstream` (a real S3 server), stopped by PID when dropped.
pub struct NginxTls {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub endpoint: String,
    dir: tempfile::TempDir,
}

impl NginxTls {
    /// Starts nginx on a free port.
    pub fn start(upstream: &str, leaf: &Leaf) -> NginxTls {
        let dir = tempfile::tempdir().expect("nginx dir");
        for _ in 0..3 {
            let port = free_port();
            let conf = format!(
                r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
        }}
    }}
}}
"#,
                dir = dir.path().display(),
                cert = leaf.cert.display(),
                key = leaf.key.display(),
            );
            let path = dir.path().join("nginx.conf");
            std::fs::write(&path, conf).expect("nginx conf");
            let mut child = Command::new("nginx")
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(&path)
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nginx (Debian package nginx-light) is needed");
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return NginxTls {
                        child,
                        endpoint: format!("https://127.0.0.1:{port}"),
                        dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("nginx did not start");
    }

    /// Lines nginx logged for requests it passed on.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// The access log once it holds every one of `lines` (nginx writes a request's
    /// line after its answer is sent, so a client can read the log first), or as it
    /// is after 10 s.
    pub fn access_log_with(&self, lines: &[&str]) -> String {
        read_until(
            || self.access_log(),
            |log| lines.iter().all(|l| log.contains(l)),
        )
    }
}

impl Drop for NginxTls {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// h2 frame types.
pub mod frame {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// END_STREAM (DATA, HEADERS).
    pub const END_STREAM: u8 = 0x1;
    /// END_HEADERS (HEADERS).
    pub const END_HEADERS: u8 = 0x4;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
}

/// One h2 frame as read.
#[derive(Debug)]
pub struct Frame {
    /// Its type.
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream.
    pub stream: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A TLS connection (rustls, trusting the test CA) with ALPN as asked, for raw bytes
/// and raw h2 frames.
pub struct RawTls {
    /// The TLS stream.
    pub tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

fn hpack_int(out: &mut Vec<u8>, first: u8, prefix_bits: u32, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

fn hpack_string(out: &mut Vec<u8>, s: &str) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s.as_bytes());
}

/// An HPACK header block (no dynamic table, no Huffman) of a GET of `path`.
pub fn get_request_block(authority: &str, path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut b = vec![0x82, 0x87]; // :method GET, :scheme https (static table)
    hpack_int(&mut b, 0x00, 4, 4); // :path, literal value, not indexed
    hpack_string(&mut b, path);
    hpack_int(&mut b, 0x00, 4, 1); // :authority
    hpack_string(&mut b, authority);
    for (name, value) in headers {
        b.push(0x00);
        hpack_string(&mut b, name);
        hpack_string(&mut b, value);
    }
    b
}

impl RawTls {
    /// Connects to `addr` trusting `ca`, offering `alpn`; reads time out after 10 s.
    pub fn connect(addr: SocketAddr, ca: &TestCa, alpn: &[&[u8]]) -> std::io::Result<RawTls> {
        let mut roots = rustls::RootCertStore::empty();
        let pem = ca.pem();
        for cert in rustls_pemfile_certs(&pem) {
            roots.add(cert).expect("CA into the root store");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client conn");
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock)?;
        }
        Ok(RawTls { tls })
    }

    /// What ALPN chose.
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.tls.conn.alpn_protocol().map(|p| p.to_vec())
    }

    /// Connects with ALPN h2 and sends the preface and an empty SETTINGS.
    pub fn h2(addr: SocketAddr, ca: &TestCa) -> std::io::Result<RawTls> {
        let mut c = RawTls::connect(addr, ca, &[b"h2"])?;
        assert_eq!(c.alpn().as_deref(), Some(&b"h2"[..]), "ALPN chose h2");
        c.tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")?;
        c.send(frame::SETTINGS, 0, 0, &[])?;
        Ok(c)
    }

    /// The bytes of one frame.
    pub fn frame_bytes(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = Vec::with_capacity(9 + payload.len());
        f.extend_from_slice(&len.to_be_bytes()[1..]);
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// Writes one frame.
    pub fn send(
        &mut self,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
    ) -> std::io::Result<()> {
        self.tls
            .write_all(&RawTls::frame_bytes(kind, flags, stream, payload))?;
        self.tls.flush()
    }

    /// Writes many bytes at once (a flood), flushing once.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    /// Reads one frame.
    pub fn read_frame(&mut self) -> std::io::Result<Frame> {
        let mut head = [0u8; 9];
        self.tls.read_exact(&mut head)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        self.tls.read_exact(&mut payload)?;
        Ok(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
            payload,
        })
    }
}

/// The certificates of a PEM text.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .expect("PEM certificates")
}
