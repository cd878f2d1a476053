//! The Grafana dashboard (`docs/grafana/filegate.json`) cannot rot: every metric its
//! queries name exists in `/metrics` of a running filegate, with every label the
//! queries select or group by.

use std::collections::BTreeSet;

use filegate::claims::TokenKind;
use serde_json::Value;

use crate::harness::*;

/// Labels Prometheus adds at scrape time (not in filegate's own exposition).
const TARGET_LABELS: [&str; 2] = ["instance", "job"];

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(expr)) = map.get("expr") {
                out.push(expr.clone());
            }
            map.values().for_each(|v| collect_exprs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// Every `filegate_*` metric of a PromQL expression with the labels its selector
/// names (`name{label="..", ...}`).
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("filegate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_string();
        let mut labels = Vec::new();
        let after = &tail[end..];
        if let Some(inner) = after.strip_prefix('{') {
            let close = inner.find('}').expect("closed selector");
            for matcher in inner[..close].split(',').filter(|m| !m.trim().is_empty()) {
                let label = matcher
                    .split(['=', '!'])
                    .next()
                    .expect("a label")
                    .trim()
                    .to_string();
                labels.push(label);
            }
        }
        out.push((name, labels));
        rest = &tail[end..];
    }
    out
}

/// The labels of every `by (...)` / `without (...)` clause.
fn grouping_labels(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    for keyword in ["by (", "without ("] {
        let mut rest = expr;
        while let Some(at) = rest.find(keyword) {
            let inner = &rest[at + keyword.len()..];
            let close = inner.find(')').expect("closed grouping");
            out.extend(inner[..close].split(',').map(|l| l.trim().to_string()));
            rest = &inner[close..];
        }
    }
    out
}

/// Sample lines of one metric family (`name{...} v` or `name v`).
fn samples<'a>(metrics: &'a str, name: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .collect()
}

#[test]
fn dashboard_queries_only_metrics_filegate_exports() {
    let fg = Filegate::start();
    // Traffic that makes every family carry series: an upload, an original, a
    // thumbnail (a transform), a 404.
    let name = upload_avatar(&fg, "demo", 42);
    let token = token("demo", 42, TokenKind::User);
    for query in ["", "&image_type=2&w=50&h=50"] {
        let resp = client()
            .get(fg.url(&format!(
                "/file/download/avatar?app_id=demo&object_name={name}{query}"
            )))
            .header("access-token", &token)
            .send()
            .expect("download");
        assert_eq!(resp.status(), 200);
    }
    let metrics = fg.metrics();

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/grafana/filegate.json");
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard")).expect("JSON");
    assert_eq!(dashboard["uid"], "filegate");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(variables.contains(&"datasource") && variables.contains(&"instance"));

    // Panels: unique ids, inside the 24-column grid, each querying filegate.
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().expect("id")),
            "duplicate id"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (
            grid["x"].as_u64().expect("x"),
            grid["w"].as_u64().expect("w"),
        );
        assert!(x + w <= 24, "{}: outside the grid", panel["title"]);
        if panel["type"] == "row" {
            continue;
        }
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{} has no query", panel["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            assert!(expr.contains("filegate_"), "{}: {expr}", panel["title"]);
        }
    }

    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 15, "{} queries", exprs.len());
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let found = selectors(expr);
        for (name, labels) in &found {
            let lines = samples(&metrics, name);
            assert!(
                !lines.is_empty(),
                "`{name}` (in {expr}) is not in /metrics:\n{metrics}"
            );
            for label in labels
                .iter()
                .filter(|l| !TARGET_LABELS.contains(&l.as_str()))
            {
                assert!(
                    lines.iter().any(|l| l.contains(&format!("{label}=\""))),
                    "`{name}` has no label `{label}` (in {expr})"
                );
            }
            used.insert(name.clone());
        }
        for label in grouping_labels(expr) {
            if TARGET_LABELS.contains(&label.as_str()) {
                continue;
            }
            assert!(
                found.iter().any(|(name, _)| {
                    samples(&metrics, name)
                        .iter()
                        .any(|l| l.contains(&format!("{label}=\"")))
                }),
                "no metric of `{expr}` has the label `{label}` it groups by"
            );
        }
    }
    // What the issue asks the dashboard to show.
    for needed in [
        "filegate_requests_total",
        "filegate_request_duration_seconds_bucket",
        "filegate_cache_requests_total",
        "filegate_cache_bytes",
        "filegate_store_operations_total",
        "filegate_transforms_total",
        "filegate_transform_seconds_bucket",
        "filegate_transform_queue_depth",
        "filegate_requests_in_flight",
    ] {
        assert!(
            used.contains(needed),
            "the dashboard does not show {needed}"
        );
    }
}

#[test]
fn dashboard_checks_can_fail() {
    let found = selectors(
        r#"sum by (route) (rate(filegate_nope_total{instance=~"$i",status=~"5.."}[5m]))"#,
    );
    assert_eq!(
        found,
        vec![(
            "filegate_nope_total".to_string(),
            vec!["instance".to_string(), "status".to_string()]
        )]
    );
    assert_eq!(
        grouping_labels("sum by (le, kind) (x) / sum without (a) (y)"),
        vec!["le", "kind", "a"]
    );
    assert!(samples("filegate_a_total{x=\"1\"} 3\nfilegate_ab 1\n", "filegate_a").is_empty());
}
