//! A cluster of three filegate nodes over a real distributed store (SeaweedFS: a
//! master, four volume servers, a filer and the S3 gateway, replication 002): each
//! object is fetched from the store once and each result made once in the whole
//! cluster, whatever node a client asks; a node killed costs a few slow requests at
//! most; a volume server killed costs nothing; peers cannot be impersonated.

use std::time::{Duration, Instant};

use filegate::claims::TokenKind;
use filegate::config::Secret;

use crate::harness::*;
use crate::seaweed::SeaweedCluster;
use crate::storage_suite::{pseudo_random, uploaded, user_token};

const CLUSTER_SECRET: &str = "cluster-secret-0123456789";

/// Three nodes over one store, each listing all three.
fn start_nodes(store_yaml: &str, extra: &str) -> Vec<Filegate> {
    start_nodes_with(store_yaml, extra, TEST_APPS)
}

pub fn start_nodes_with(store_yaml: &str, extra: &str, apps: &str) -> Vec<Filegate> {
    start_nodes_among(store_yaml, extra, apps, 3, &[], &[])
}

/// `count` nodes over one store, listing themselves and `others` (peers the test
/// plays), with `env`; once each sees every listed node live (its health checks saw
/// the later ones come up).
fn start_nodes_among(
    store_yaml: &str,
    extra: &str,
    apps: &str,
    count: usize,
    others: &[&str],
    env: &[(&str, &str)],
) -> Vec<Filegate> {
    let ports = crate::harness::free_ports(count);
    let peers: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .chain(others.iter().map(|o| o.to_string()))
        .collect();
    let nodes: Vec<Filegate> = ports
        .iter()
        .map(|&port| {
            Filegate::start_with(Setup {
                store: Some(store_yaml.to_string()),
                port: Some(port),
                apps: apps.to_string(),
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                extra: format!(
                    "{extra}cluster:\n  self: http://127.0.0.1:{port}\n  peers: [{}]\n  secret: {CLUSTER_SECRET}\n  health_interval: 500ms\n  peer_timeout: 1s\n",
                    peers.join(", ")
                ),
                ..Setup::default()
            })
        })
        .collect();
    let live = peers.len() as f64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes
        .iter()
        .any(|n| n.metric("filegate_cluster_nodes_live") < live)
    {
        assert!(
            Instant::now() < deadline,
            "the nodes never all saw each other live"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nodes
}

/// Two nodes over one store, listing themselves and `third` (a peer the test plays),
/// logging at trace level.
pub fn start_two_nodes_beside(store_yaml: &str, third: &str, apps: &str) -> Vec<Filegate> {
    start_nodes_among(store_yaml, "", apps, 2, &[third], &[("RUST_LOG", "trace")])
}

pub fn summed(nodes: &[Filegate], series: &str) -> f64 {
    nodes.iter().map(|n| n.metric(series)).sum()
}

/// Objects read from the store, summed over the nodes (a lookup of a `_derived/` copy
/// the store does not hold is a GET answered 404, not a read).
fn store_gets(nodes: &[Filegate]) -> f64 {
    summed(
        nodes,
        r#"filegate_store_operations_total{op="get",result="ok"}"#,
    )
}

const THUMBS_MADE: &str = r#"filegate_transforms_total{kind="thumbnail",result="ok"}"#;

fn get(node: &Filegate, path: &str) -> reqwest::blocking::Response {
    client()
        .get(node.url(path))
        .header("access-token", user_token("demo"))
        .send()
        .unwrap()
}

/// A picture uploaded through the first node; its download path (no host).
fn picture(nodes: &[Filegate], seed: u64) -> String {
    let t = user_token("demo");
    let jpeg = crate::fixtures::vips_image(&format!("c{seed}.jpg"), 800, 600, "");
    let g = uploaded(
        &nodes[0],
        "demo",
        &t,
        "/file/upload/chat?file_type=102&to_id=1",
        "p.jpg",
        "image/jpeg",
        &jpeg,
    );
    format!(
        "/file/download/chat?app_id=demo&file_sign={}",
        g["file_sign"].as_str().unwrap()
    )
}

fn made_once_everywhere(nodes: &[Filegate]) {
    let path = picture(nodes, 1);
    let thumb = format!("{path}&image_type=2&w=120&thumbnail_strategy=2");
    let (gets, made) = (store_gets(nodes), summed(nodes, THUMBS_MADE));
    let bodies: Vec<Vec<u8>> = nodes
        .iter()
        .map(|n| {
            let resp = get(n, &thumb);
            assert_eq!(resp.status(), 200);
            resp.bytes().unwrap().to_vec()
        })
        .collect();
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "every node serves the same result"
    );
    assert_eq!(crate::fixtures::vipsheader(&bodies[0]).0, 120);
    assert_eq!(
        summed(nodes, THUMBS_MADE) - made,
        1.0,
        "made once in the cluster"
    );
    assert_eq!(
        store_gets(nodes) - gets,
        1.0,
        "one source read from the store"
    );
    // Its info (SPEC §11) likewise: read once in the cluster, the same on every node.
    let info_made = r#"filegate_transforms_total{kind="info",result="ok"}"#;
    let before = summed(nodes, info_made);
    let infos: Vec<serde_json::Value> = nodes
        .iter()
        .map(|n| expect_envelope(get(n, &format!("{path}&info=1")), 200, 200)["data"].clone())
        .collect();
    assert!(infos.iter().all(|v| v == &infos[0]), "{infos:?}");
    assert_eq!(
        (infos[0]["width"].as_u64(), infos[0]["height"].as_u64()),
        (Some(800), Some(600))
    );
    assert_eq!(
        summed(nodes, info_made) - before,
        1.0,
        "info read once in the cluster"
    );
    // The original, read through every node twice: one store GET.
    let big = pseudo_random(700_000, 7);
    let t = user_token("demo");
    let g = uploaded(
        &nodes[1],
        "demo",
        &t,
        "/file/upload/chat?file_type=100&to_id=2",
        "f.bin",
        "application/octet-stream",
        &big,
    );
    let original = format!(
        "/file/download/chat?app_id=demo&file_sign={}",
        g["file_sign"].as_str().unwrap()
    );
    let gets = store_gets(nodes);
    for _ in 0..2 {
        for n in nodes {
            let resp = get(n, &original);
            assert_eq!(resp.status(), 200);
            assert_eq!(resp.bytes().unwrap().as_ref(), big.as_slice());
        }
    }
    assert_eq!(
        store_gets(nodes) - gets,
        1.0,
        "one store GET for six reads on three nodes"
    );
    let asked = summed(
        nodes,
        r#"filegate_cluster_requests_total{result="ok",role="asked"}"#,
    );
    assert!(asked >= 2.0, "non-owners asked the owner ({asked})");
}

#[test]
fn every_object_is_fetched_once_and_every_result_made_once_in_the_cluster() {
    let mut store = SeaweedCluster::start();
    let nodes = start_nodes(&store.store_yaml(), "");
    made_once_everywhere(&nodes);
    // A volume server lost: what was uploaded still downloads, new uploads work.
    let before = picture(&nodes, 2);
    store.kill_volume(0);
    for n in &nodes {
        let resp = client()
            .post(format!("{}/cache/purge?prefix=demo/", n.admin))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    for n in &nodes {
        assert_eq!(get(n, &before).status(), 200);
    }
    let after = picture(&nodes, 3);
    for n in &nodes {
        assert_eq!(get(n, &format!("{after}&image_type=2&w=64")).status(), 200);
    }
}

#[test]
fn the_ring_not_the_store_copy_makes_results_once() {
    let store = SeaweedCluster::start();
    let demo_only = "apps:\n  demo:\n    secrets: [\"new-secret-0123456789\"]\n";
    let nodes = start_nodes_with(
        &store.store_yaml(),
        "cache:\n  write_back: false\n",
        demo_only,
    );
    made_once_everywhere(&nodes);
}

#[test]
fn a_killed_node_costs_a_few_slow_requests_at_most() {
    let store = SeaweedCluster::start();
    let mut nodes = start_nodes(&store.store_yaml(), "");
    // Enough objects that the killed node owns some of them.
    let paths: Vec<String> = (0..12).map(|i| picture(&nodes, 10 + i)).collect();
    for p in &paths {
        for n in &nodes {
            assert_eq!(get(n, &format!("{p}&image_type=2&w=80")).status(), 200);
        }
    }
    // The node about to die owns some of them (it answered the others' fills).
    assert!(
        nodes[2].metric(r#"filegate_cluster_requests_total{result="ok",role="answered"}"#) >= 1.0
    );
    let dead = nodes.remove(2);
    signal_pid(dead.pid(), "KILL");
    let mut slow = 0;
    for round in 0..3 {
        for p in &paths {
            for n in &nodes {
                let started = Instant::now();
                let resp = get(n, &format!("{p}&image_type=2&w={}", 80 + round));
                assert_eq!(resp.status(), 200, "round {round}: {:?}", resp.text());
                if started.elapsed() > Duration::from_millis(500) {
                    slow += 1;
                }
            }
        }
    }
    assert!(slow <= 4, "{slow} requests were slowed by the lost node");
    drop(dead);
}

#[test]
fn peer_requests_need_the_cluster_signature() {
    let s3 = S3Server::start();
    let nodes = start_nodes(&s3.store_yaml(), "");
    let path = picture(&nodes, 20);
    assert_eq!(get(&nodes[0], &path).status(), 200);
    let g = uploaded(
        &nodes[0],
        "demo",
        &user_token("demo"),
        "/file/upload/chat?file_type=100&to_id=3",
        "x.bin",
        "application/octet-stream",
        b"peer",
    );
    let key = g["oss_body_param"]["key"].as_str().unwrap().to_string();
    let spec = filegate::fill::FillSpec::Original {
        app: "demo".into(),
        key,
    }
    .encode();
    let fill_at = |node: &Filegate, auth: Option<String>| {
        let mut req = client()
            .get(node.url(filegate::fill::FILL_PATH))
            .header(filegate::peer_auth::SPEC_HEADER, &spec);
        if let Some(a) = auth {
            req = req.header(filegate::peer_auth::AUTH_HEADER, a);
        }
        req.send().unwrap()
    };
    let fill = |auth: Option<String>| fill_at(&nodes[1], auth);
    let node_addr = |node: &Filegate| -> std::net::SocketAddr {
        node.base.trim_start_matches("http://").parse().unwrap()
    };
    let for_node1 = filegate::peer_auth::Target {
        purpose: filegate::peer_auth::Purpose::Fill,
        node: node_addr(&nodes[1]),
    };
    let now = filegate::now_secs();
    // No signature, a forged one, one too old: refused.
    expect_envelope(fill(None), 401, 10003);
    let forged = filegate::peer_auth::sign(
        &Secret::new("attacker-secret-0123456789"),
        for_node1,
        now,
        &spec,
    );
    expect_envelope(fill(Some(forged)), 401, 10008);
    let old = filegate::peer_auth::sign(&Secret::new(CLUSTER_SECRET), for_node1, now - 600, &spec);
    expect_envelope(fill(Some(old)), 401, 10008);
    // Signed for node 1: refused by node 2 (a captured fill replays nowhere else), and
    // as a purge.
    let good = filegate::peer_auth::sign(&Secret::new(CLUSTER_SECRET), for_node1, now, &spec);
    expect_envelope(fill_at(&nodes[2], Some(good.clone())), 401, 10008);
    // The cluster's own: answered, once; replayed: refused.
    let resp = fill(Some(good.clone()));
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().unwrap().as_ref(), b"peer");
    expect_envelope(fill(Some(good)), 401, 10008);
    // A client's own credentials do not make it a peer.
    let resp = client()
        .get(nodes[1].url(filegate::fill::FILL_PATH))
        .header(filegate::peer_auth::SPEC_HEADER, &spec)
        .header("access-token", token("demo", 1, TokenKind::Admin))
        .send()
        .unwrap();
    expect_envelope(resp, 401, 10003);
}
