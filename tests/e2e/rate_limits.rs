//! Abuse control (SPEC §12, issue 22): rates per client address and per user, from
//! several loopback source addresses (127.0.0.2, 127.0.0.3, ...: a client socket
//! binds its source address).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use filegate::claims::TokenKind;
use reqwest::blocking::{Client, Response};

use crate::harness::*;

/// A client whose connections come from `source`.
fn client_from(source: &str) -> Client {
    Client::builder()
        .local_address(source.parse::<IpAddr>().expect("address"))
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn start(rate: &str, extra: &str) -> Filegate {
    Filegate::start_with(Setup {
        extra: format!("limits:\n  rate:\n{rate}{extra}"),
        ..Setup::default()
    })
}

fn avatar(fg: &Filegate, client: &Client, object: &str, sub: i64) -> Response {
    client
        .get(fg.url(&format!(
            "/file/download/avatar?app_id=demo&object_name={object}"
        )))
        .header("access-token", token("demo", sub, TokenKind::User))
        .send()
        .expect("download")
}

/// The statuses of `n` requests sent one after another.
fn statuses(n: usize, mut send: impl FnMut(usize) -> Response) -> Vec<u16> {
    (0..n).map(|i| send(i).status().as_u16()).collect()
}

/// Most requests sent while waiting for refusals.
const MAX_SENT: usize = 1000;

/// Requests sent one after another until `refusals` of them were 429s (at most
/// [`MAX_SENT`]), their statuses, checked to have let through no more than a bucket of
/// `burst` refilled at `per_second` could while they were sent. Waiting for refusals,
/// instead of sending a fixed number, keeps the test's meaning on a loaded machine,
/// where each request takes longer and the bucket refills between them.
fn until_refused(
    refusals: usize,
    burst: f64,
    per_second: f64,
    mut send: impl FnMut(usize) -> Response,
) -> Vec<u16> {
    let started = Instant::now();
    let mut got = Vec::new();
    while count(&got, 429) < refusals && got.len() < MAX_SENT {
        got.push(send(got.len()).status().as_u16());
    }
    assert!(count(&got, 429) >= refusals, "{got:?}");
    // One more for a refill landing between the clock's reading and the last request.
    let allowed = (burst + per_second * started.elapsed().as_secs_f64()).floor() as usize + 1;
    let passed = got.len() - count(&got, 429);
    assert!(
        passed <= allowed,
        "{passed} passed, {allowed} at most: {got:?}"
    );
    got
}

/// The first 429 of requests sent one after another (a bucket a flood emptied may have
/// refilled a request's worth since).
fn next_refused(mut send: impl FnMut() -> Response) -> Response {
    for _ in 0..50 {
        let resp = send();
        if resp.status().as_u16() == 429 {
            return resp;
        }
    }
    panic!("50 requests and none refused");
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// A 429 envelope with a `Retry-After` of whole seconds, at least 1; its value.
fn expect_limited(resp: Response) -> u64 {
    let retry: u64 = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry >= 1, "Retry-After {retry}");
    expect_envelope(resp, 429, 429);
    retry
}

#[test]
fn a_flooding_user_meets_the_limit_and_another_user_elsewhere_does_not() {
    let fg = start("    per_ip: 100/s\n    per_user: 5/s\n", "");
    let object = upload_avatar(&fg, "demo", 1);
    let flooder = client_from("127.0.0.2");
    let other = client_from("127.0.0.3");
    // User 3 floods (user 1 uploaded the avatar: its grant counted for user 1).
    let flood = until_refused(20, 5.0, 5.0, |_| avatar(&fg, &flooder, &object, 3));
    assert_eq!(
        count(&flood, 200) + count(&flood, 429),
        flood.len(),
        "{flood:?}"
    );
    // The first five (one second's worth) pass.
    assert!(flood[..5].iter().all(|s| *s == 200), "{flood:?}");
    let calm = statuses(5, |_| avatar(&fg, &other, &object, 2));
    assert_eq!(calm, [200; 5], "another user on another address");
    let refused = next_refused(|| avatar(&fg, &flooder, &object, 3));
    let retry = expect_limited(refused);
    assert!(retry <= 2, "Retry-After {retry} for a 5/s limit");
    assert!(fg.metric(r#"filegate_rate_limited_total{by="user",route="download_avatar"}"#) >= 20.0);
    assert_eq!(
        fg.metric(r#"filegate_rate_limited_total{by="ip",route="download_avatar"}"#),
        0.0
    );
    // After the wait it names, the flooder is served again.
    std::thread::sleep(Duration::from_secs(retry) + Duration::from_millis(200));
    assert_eq!(avatar(&fg, &flooder, &object, 3).status(), 200);
}

#[test]
fn many_users_behind_one_address_meet_the_per_ip_limit() {
    // 10 a second, a burst of 10: 200 requests in under five seconds pass 60 at most.
    let fg = start("    per_ip: 600/min\n    per_user: 100/s\n", "");
    let object = upload_avatar(&fg, "demo", 1);
    let shared = client_from("127.0.0.4");
    let crowd = until_refused(100, 10.0, 10.0, |i| {
        avatar(&fg, &shared, &object, 1000 + i as i64)
    });
    assert!(count(&crowd, 200) >= 10, "{crowd:?}");
    assert!(fg.metric(r#"filegate_rate_limited_total{by="ip",route="download_avatar"}"#) >= 100.0);
    // Another address is not held back, and a refusal for a bad token costs the
    // address too (checked before the credential is).
    let elsewhere = client_from("127.0.0.5");
    assert_eq!(avatar(&fg, &elsewhere, &object, 1).status(), 200);
    let forged = until_refused(30, 10.0, 10.0, |_| {
        elsewhere
            .get(fg.url(&format!(
                "/file/download/avatar?app_id=demo&object_name={object}"
            )))
            .header("access-token", "not.a.token")
            .send()
            .expect("send")
    });
    assert_eq!(count(&forged, 200), 0, "{forged:?}");
}

#[test]
fn x_forwarded_for_is_believed_from_trusted_proxies_only() {
    // Two a second, a burst of two (the avatar's grant and upload).
    let fg = start(
        "    per_ip: 120/min\n",
        "  trusted_proxies: [127.0.0.7/32]\n",
    );
    // The readiness probes counted against 127.0.0.1: let its bucket fill again.
    std::thread::sleep(Duration::from_millis(1500));
    let object = upload_avatar(&fg, "demo", 1);
    let with_xff = |client: &Client, xff: &str| {
        client
            .get(fg.url(&format!(
                "/file/download/avatar?app_id=demo&object_name={object}"
            )))
            .header("access-token", token("demo", 1, TokenKind::User))
            .header("x-forwarded-for", xff)
            .send()
            .expect("send")
    };
    // An untrusted peer naming a new client every time is still one client.
    let untrusted = client_from("127.0.0.6");
    until_refused(15, 2.0, 2.0, |i| {
        with_xff(&untrusted, &format!("203.0.113.{}", i % 250))
    });
    // A trusted proxy's clients count one by one...
    let proxy = client_from("127.0.0.7");
    let forwarded = statuses(30, |i| {
        with_xff(&proxy, &format!("198.51.100.{i}, 127.0.0.7"))
    });
    assert_eq!(forwarded, [200; 30], "clients behind a trusted proxy");
    // ...and one of them flooding through it is limited.
    until_refused(15, 2.0, 2.0, |_| with_xff(&proxy, "198.51.100.200"));
}

#[test]
fn the_passthrough_is_limited_and_cluster_and_admin_routes_are_not() {
    let s3 = S3Server::start();
    let fg = Filegate::start_with(Setup {
        store: Some(s3.store_yaml()),
        extra: "limits:\n  rate:\n    per_ip: 60/min\n".into(),
        ..Setup::default()
    });
    let client = client_from("127.0.0.8");
    let passthrough = || {
        client
            .get(fg.url(&format!("/{S3_BUCKET}/demo/chat/1/2/20261201/x.bin")))
            .send()
            .expect("send")
    };
    let store = until_refused(15, 1.0, 1.0, |_| passthrough());
    assert!(count(&store, 429) < store.len(), "some pass: {store:?}");
    expect_limited(next_refused(passthrough));
    assert!(fg.metric(r#"filegate_rate_limited_total{by="ip",route="passthrough"}"#) >= 15.0);
    // `/_cluster/` (no cluster here: unsigned requests are refused, never limited)
    // and the admin listener.
    let cluster = client_from("127.0.0.9");
    let peer = statuses(30, |_| {
        cluster.get(fg.url("/_cluster/fill")).send().expect("send")
    });
    assert_eq!(count(&peer, 429), 0, "{peer:?}");
    let admin = statuses(30, |_| {
        client_from("127.0.0.9")
            .get(format!("{}/metrics", fg.admin))
            .send()
            .expect("send")
    });
    assert_eq!(admin, [200; 30]);
}

#[test]
fn check_refuses_bad_rates_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (yaml, key) in [
        ("limits:\n  rate:\n    per_ip: fast\n", "limits.rate.per_ip"),
        (
            "limits:\n  rate:\n    per_user: 10\n",
            "limits.rate.per_user",
        ),
        (
            "limits:\n  rate:\n    per_user: 10/h\n",
            "limits.rate.per_user",
        ),
        (
            "limits:\n  trusted_proxies: [10.0.0.0/40]\n",
            "limits.trusted_proxies[0]",
        ),
        ("limits:\n  rate:\n    per_host: 1/s\n", "limits.rate"),
    ] {
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, yaml).unwrap();
        let out = std::process::Command::new(built_binary("filegate"))
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .expect("run filegate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{yaml} was accepted");
        assert!(stderr.contains(key), "{yaml}: {stderr}");
    }
}
