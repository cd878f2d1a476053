//! Takedowns and start-up across a cluster (issue 17, SPEC §13): three nodes over one
//! real S3 server. A purge asked of one node purges all three, so an object deleted in
//! the store is gone from every node at once, whichever order the operator did the
//! two in; and a cluster asked right after its last node starts makes each result
//! once (a node that started first does not route around peers it has not met yet).

use std::time::Duration;

use crate::harness::*;
use crate::storage_suite::user_token;

const CLUSTER_SECRET: &str = "cluster-secret-0123456789";
const APP: &str = "putapp";

/// Three nodes over `s3`, started one after another (each ready before the next),
/// checking each other's health every `health_interval`.
fn three_nodes(s3: &S3Server, health_interval: &str) -> Vec<Filegate> {
    let ports = crate::harness::free_ports(3);
    let peers: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    ports
        .iter()
        .map(|&port| {
            Filegate::start_with(Setup {
                store: Some(s3.store_yaml()),
                port: Some(port),
                extra: format!(
                    "cluster:\n  self: http://127.0.0.1:{port}\n  peers: [{}]\n  secret: {CLUSTER_SECRET}\n  health_interval: {health_interval}\n  peer_timeout: 2s\n",
                    peers.join(", ")
                ),
                ..Setup::default()
            })
        })
        .collect()
}

fn summed(nodes: &[Filegate], series: &str) -> f64 {
    nodes.iter().map(|n| n.metric(series)).sum()
}

/// Uploads `bytes` by PUT grant through `node`; the object key and download path.
fn put_file(node: &Filegate, file_type: u16, content_type: &str, bytes: &[u8]) -> (String, String) {
    let t = user_token(APP);
    let g = grant(
        node,
        APP,
        &t,
        &format!(
            "/file/upload/chat?file_type={file_type}&to_id=1&content_type={content_type}&size={}",
            bytes.len()
        ),
    );
    let (status, body) = put_upload(&g, bytes.to_vec());
    assert_eq!(status, 200, "upload: {body}");
    let sign = g["file_sign"].as_str().expect("file_sign").to_string();
    let key = {
        use base64::Engine;
        let claims = sign.split('.').nth(1).expect("claims");
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .expect("base64url");
        let v: serde_json::Value = serde_json::from_slice(&raw).expect("json");
        v["key"].as_str().expect("key").to_string()
    };
    (
        key,
        format!("/file/download/chat?app_id={APP}&file_sign={sign}"),
    )
}

fn status_on(node: &Filegate, path: &str) -> u16 {
    let resp = client()
        .get(node.url(path))
        .header("access-token", user_token(APP))
        .send()
        .expect("download");
    let status = resp.status().as_u16();
    resp.bytes().expect("body");
    status
}

fn purge(node: &Filegate, query: &str) -> serde_json::Value {
    let resp = client()
        .post(format!("{}/cache/purge?{query}", node.admin))
        .send()
        .expect("purge");
    assert_eq!(resp.status(), 200);
    resp.json().expect("json")
}

/// Every node must answer `want` for every path.
fn assert_everywhere(nodes: &[Filegate], paths: &[&str], want: u16, when: &str) {
    for (i, node) in nodes.iter().enumerate() {
        for path in paths {
            assert_eq!(status_on(node, path), want, "node {i}, {when}: {path}");
        }
    }
}

#[test]
fn a_takedown_on_one_node_holds_on_every_node_in_either_order() {
    let s3 = S3Server::start();
    let nodes = three_nodes(&s3, "500ms");
    let jpeg = crate::fixtures::vips_gradient("takedown.jpg", 320, 240);
    let (key, picture) = put_file(&nodes[0], 102, "image/jpeg", &jpeg);
    let thumb = format!("{picture}&image_type=2&w=64&thumbnail_strategy=2");
    let big = crate::storage_suite::pseudo_random(900_000, 5);
    let (big_key, file) = put_file(&nodes[0], 100, "application/octet-stream", &big);
    let paths = [picture.as_str(), thumb.as_str(), file.as_str()];
    assert_everywhere(&nodes, &paths, 200, "cached");

    // "Delete in the store, purge on one node": every node 404 at once.
    std::fs::remove_file(s3.object_path(&key)).expect("delete in the store");
    std::fs::remove_file(s3.object_path(&big_key)).expect("delete in the store");
    assert_everywhere(
        &nodes,
        &paths,
        200,
        "deleted, not purged yet (still cached)",
    );
    let answer = purge(&nodes[1], &format!("key={key}"));
    let node_counts = answer["data"]["nodes"].as_object().expect("nodes");
    assert_eq!(node_counts.len(), 3, "{answer}");
    assert!(
        node_counts.values().all(|n| n.is_u64()),
        "every node answered: {answer}"
    );
    assert!(
        answer["data"]["purged"].as_u64().unwrap_or(0) >= 3,
        "{answer}"
    );
    let answer = purge(&nodes[2], "prefix=putapp/chat/");
    assert_eq!(
        answer["data"]["nodes"].as_object().map(|n| n.len()),
        Some(3)
    );
    assert_everywhere(&nodes, &paths, 404, "deleted and purged");

    // "Purge, then delete": the copies cached between the two are asked about again
    // within a second of being cached, so the delete reaches every node as fast.
    let jpeg = crate::fixtures::vips_gradient("takedown2.jpg", 300, 200);
    let (key, picture) = put_file(&nodes[0], 102, "image/jpeg", &jpeg);
    let thumb = format!("{picture}&image_type=2&w=48&thumbnail_strategy=2");
    let paths = [picture.as_str(), thumb.as_str()];
    assert_everywhere(&nodes, &paths, 200, "cached");
    purge(&nodes[0], &format!("key={key}"));
    assert_everywhere(&nodes, &paths, 200, "purged, cached again");
    std::fs::remove_file(s3.object_path(&key)).expect("delete in the store");
    // A second after they were cached again (sleeping guarantees at least that much).
    std::thread::sleep(Duration::from_millis(1_100));
    assert_everywhere(&nodes, &paths, 404, "purged, then deleted");
}

#[test]
fn a_purge_names_a_node_it_cannot_reach() {
    let s3 = S3Server::start();
    let mut nodes = three_nodes(&s3, "500ms");
    let jpeg = crate::fixtures::vips_gradient("unreachable.jpg", 200, 100);
    let (key, picture) = put_file(&nodes[0], 102, "image/jpeg", &jpeg);
    assert_everywhere(&nodes, &[picture.as_str()], 200, "cached");
    let gone = nodes.pop().expect("a third node");
    let gone_url = gone.base.clone();
    drop(gone);
    let answer = purge(&nodes[0], &format!("key={key}"));
    assert_eq!(
        answer["data"]["nodes"][&gone_url], "unreachable",
        "{answer}"
    );
    assert!(answer["data"]["nodes"][&nodes[1].base].is_u64(), "{answer}");
}

#[test]
fn a_cluster_asked_right_after_its_last_node_starts_makes_each_result_once() {
    let s3 = S3Server::start();
    // Health checks far apart: a node that started before its peers would not see
    // them come up during this test.
    let nodes = three_nodes(&s3, "60s");
    let pictures: Vec<String> = (0..4)
        .map(|i| {
            let jpeg = crate::fixtures::vips_gradient(&format!("conv{i}.jpg"), 400 + i * 8, 300);
            put_file(&nodes[0], 102, "image/jpeg", &jpeg).1
        })
        .collect();
    let made = r#"filegate_transforms_total{kind="thumbnail",result="ok"}"#;
    let reads = r#"filegate_store_operations_total{op="get",result="ok"}"#;
    let (made_before, reads_before) = (summed(&nodes, made), summed(&nodes, reads));
    for picture in &pictures {
        let thumb = format!("{picture}&image_type=2&w=80&thumbnail_strategy=2");
        assert_everywhere(&nodes, &[thumb.as_str()], 200, "asked everywhere");
    }
    assert_eq!(
        summed(&nodes, made) - made_before,
        pictures.len() as f64,
        "each thumbnail made once in the cluster"
    );
    assert_eq!(
        summed(&nodes, reads) - reads_before,
        pictures.len() as f64,
        "each source read once from the store"
    );
}
