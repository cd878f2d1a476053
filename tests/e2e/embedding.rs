//! The embedding example: a host proxy with its own routes serves filegate's `/file`
//! routes through the component.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;

use crate::harness::*;

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn host_proxy_example_mounts_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "store:\n  kind: embedded\n  dir: {}\n{TEST_APPS}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port();
        // Stopped by PID when the guard drops, even if an assertion fails first.
        let mut child = KillOnDrop(
            Command::new(built_binary("host_proxy"))
                .arg(format!("127.0.0.1:{port}"))
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn example"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut up = false;
        while Instant::now() < deadline {
            if client().get(format!("{base}/hello")).send().is_ok() {
                up = true;
                break;
            }
            if let Ok(Some(_)) = child.0.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if !up {
            last = format!("example did not start on {port}");
            continue;
        }
        // The host's own route.
        let hello = client().get(format!("{base}/hello")).send().unwrap();
        assert_eq!(hello.status(), 200);
        assert_eq!(hello.text().unwrap(), "hello from the host\n");
        // filegate's routes through the component.
        let t = token("demo", 5, TokenKind::User);
        let resp = client()
            .get(format!("{base}/file/upload/avatar/user?app_id=demo"))
            .header("access-token", &t)
            .send()
            .unwrap();
        let v = expect_envelope(resp, 200, 200);
        assert!(v["data"]["object_name"]
            .as_str()
            .unwrap()
            .starts_with("avatar/user/5/"));
        expect_envelope(
            client().get(format!("{base}/file/nope")).send().unwrap(),
            404,
            404,
        );
        expect_envelope(
            client()
                .get(format!("{base}/file/upload/chat?app_id=demo"))
                .send()
                .unwrap(),
            401,
            10003,
        );
        // Not filegate's: the host decides (no origin given, so its own 404).
        let other = client().get(format!("{base}/elsewhere")).send().unwrap();
        assert_eq!(other.status(), 404);
        assert_eq!(other.text().unwrap(), "not on this host\n");
        drop(child);
        return;
    }
    panic!("{last}");
}
