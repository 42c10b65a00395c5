//! The Grafana dashboard (`docs/grafana/mediagate-dashboard.json`) is
//! importable JSON built on the contract's metric names only
//! (CONTRACT.md section 6, [`mediagate::metrics::CATALOGUE`]).

use std::collections::BTreeSet;

use mediagate::metrics::{CATALOGUE, MetricKind};
use serde_json::Value;

fn dashboard() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana/mediagate-dashboard.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    fn walk<'a>(list: &'a Value, out: &mut Vec<&'a Value>) {
        for p in list.as_array().into_iter().flatten() {
            out.push(p);
            if let Some(nested) = p.get("panels") {
                walk(nested, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&d["panels"], &mut out);
    out
}

/// The names a series may have in a query: each contract name, and for a
/// histogram its `_bucket`, `_sum` and `_count` series.
fn allowed_series() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for &(name, kind, _, _) in CATALOGUE {
        if kind == MetricKind::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        } else {
            names.insert(name.to_owned());
        }
    }
    names
}

/// The `mediagate_*` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("mediagate_") {
        let start = i + at;
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        if start > 0 && ident(bytes[start - 1]) {
            i = start + 1;
            continue;
        }
        let end = (start..bytes.len()).find(|&j| !ident(bytes[j])).unwrap_or(bytes.len());
        out.push(expr[start..end].to_owned());
        i = end;
    }
    out
}

/// Every query of the dashboard: panel targets and template variables.
fn queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in panels(d) {
        let title = p["title"].as_str().unwrap_or("?");
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = t["expr"].as_str() {
                out.push((format!("panel {title:?}"), expr.to_owned()));
            }
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"]["query"].as_str().or(v["query"].as_str()) {
            out.push((format!("variable {}", v["name"]), q.to_owned()));
        }
    }
    out
}

#[test]
fn every_metric_the_dashboard_queries_is_a_contract_name() {
    let d = dashboard();
    let allowed = allowed_series();
    let qs = queries(&d);
    assert!(qs.len() >= 10, "the dashboard has only {} queries", qs.len());
    for (whence, expr) in &qs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{whence} queries no mediagate metric: {expr}");
        for name in names {
            assert!(allowed.contains(&name), "{whence} queries {name}, which is not a contract metric: {expr}");
        }
    }
}

#[test]
fn every_contract_metric_is_on_the_dashboard() {
    let d = dashboard();
    let used: BTreeSet<String> = queries(&d).iter().flat_map(|(_, e)| metric_names(e)).collect();
    for &(name, kind, _, _) in CATALOGUE {
        let shown = match kind {
            MetricKind::Histogram => used.contains(&format!("{name}_bucket")),
            _ => used.contains(name),
        };
        assert!(shown, "no panel shows {name}");
    }
}

#[test]
fn the_dashboard_imports_with_a_prometheus_datasource_input() {
    let d = dashboard();
    let inputs = d["__inputs"].as_array().expect("__inputs");
    assert!(
        inputs.iter().any(|i| i["name"] == "DS_PROMETHEUS" && i["pluginId"] == "prometheus"),
        "no DS_PROMETHEUS input: {inputs:?}"
    );
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty() && u.len() <= 40));
    assert!(d["schemaVersion"].as_u64().is_some());
    let mut ids = BTreeSet::new();
    for p in panels(&d) {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(ids.insert(p["id"].as_u64().expect("numeric panel id")), "duplicate id on {title:?}");
        for key in ["h", "w", "x", "y"] {
            assert!(p["gridPos"][key].as_u64().is_some(), "{title:?} lacks gridPos.{key}");
        }
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title:?}");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title:?} has no query");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title:?}");
        }
    }
}

#[test]
fn metric_names_are_read_whole_from_promql() {
    let expr = "sum(rate(mediagate_cache_hits_total{job=~\"$job\"}[5m])) / x_mediagate_other + \
                histogram_quantile(0.9, sum by (le) (rate(mediagate_request_duration_seconds_bucket[1m])))";
    assert_eq!(metric_names(expr), ["mediagate_cache_hits_total", "mediagate_request_duration_seconds_bucket"]);
}
