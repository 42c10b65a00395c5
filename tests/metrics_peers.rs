//! The storage metrics against real peers (s3s-fs and Azurite, started by
//! `scripts/test.sh`): the library's proxy with [`Metrics`], no listener
//! (the `/metrics` route is the admin listener's and is tested there).
//! Names and labels: `docs/METRICS.md`.

mod common;

use std::sync::Arc;

use common::*;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mediagate::integration::Registry;
use mediagate::metrics::Metrics;
use mediagate::proxy::Proxy;

/// A proxy over `config_toml` that records into a fresh [`Metrics`].
fn proxy(config_toml: &str) -> (Proxy, Metrics) {
    let config = mediagate::config::parse(config_toml, std::path::Path::new("test.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("config: {e}"));
    let metrics = Metrics::new();
    let registry = Registry::rebuild(None, &config.integrations, &config.upstream, &config.source, &metrics)
        .unwrap_or_else(|e| panic!("registry: {e}"));
    (Proxy::new(Arc::new(arc_swap::ArcSwap::from_pointee(registry))).with_metrics(metrics.clone()), metrics)
}

/// GETs `path` through `proxy` and reads the body; the status.
fn get(proxy: &Proxy, path: &str) -> StatusCode {
    runtime().block_on(async {
        let req = Request::get(path).header("host", "localhost").body(()).expect("request");
        let resp = proxy.handle(req).await;
        let status = resp.status();
        resp.into_body().collect().await.expect("body");
        status
    })
}

/// The value of the series `series` (name and labels exactly as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_wrong_s3_secret_is_counted_under_the_storage_code_and_a_good_read_as_ok() {
    let Some(s3) = s3_peer() else { return };
    let (good, bad) = (unique_bucket("metrics-good"), unique_bucket("metrics-bad"));
    s3.seed(&good, &[("a.bin", b"0123456789")]);
    s3.seed(&bad, &[("a.bin", b"0123456789")]);
    let wrong = s3.integration_at("bad", &s3.host, s3.port, &[&bad], "wrong-secret-0123456789abcdef", "");
    let config = config(&[&s3.integration("good", &[&good], ""), &wrong, "[cache]\nenabled = false"]);
    let (proxy, metrics) = proxy(&config);

    assert_eq!(get(&proxy, &format!("/s3/{good}/a.bin")), StatusCode::OK);
    assert_eq!(get(&proxy, &format!("/s3/{bad}/a.bin")), StatusCode::BAD_GATEWAY);

    let text = metrics.render();
    let expect = [
        ("mediagate_upstream_requests_total{integration=\"good\",outcome=\"ok\"}", 1.0),
        ("mediagate_upstream_requests_total{integration=\"bad\",outcome=\"error\"}", 1.0),
        ("mediagate_upstream_errors_total{integration=\"bad\",code=\"SignatureDoesNotMatch\"}", 1.0),
        ("mediagate_upstream_duration_seconds_count{integration=\"good\"}", 1.0),
        ("mediagate_requests_total{integration=\"good\",status=\"2xx\"}", 1.0),
        ("mediagate_requests_total{integration=\"bad\",status=\"5xx\"}", 1.0),
        ("mediagate_response_bytes_total{integration=\"good\"}", 10.0),
    ];
    for (series, want) in expect {
        assert_eq!(value(&text, series), Some(want), "{series}:\n{text}");
    }
    assert!(!text.contains("wrong-secret") && !text.contains(&s3.secret_key), "a secret in the metrics:\n{text}");
}

#[test]
fn a_wrong_azure_key_is_counted_under_the_code_azure_sends() {
    let Some(az) = azure_peer() else { return };
    let container = unique_bucket("metrics-az");
    az.create_container(&container);
    az.put_blob(&container, "a.bin", &b"0123456789"[..]);
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let extra = format!("account_key = \"{wrong}\"");
    let (proxy, metrics) = proxy(&config(&[&az.integration("az", &container, &extra), "[cache]\nenabled = false"]));

    let path = format!("/az/{}/{container}/a.bin", az.account);
    assert_eq!(get(&proxy, &path), StatusCode::BAD_GATEWAY);

    let text = metrics.render();
    let prefix = "mediagate_upstream_errors_total{integration=\"az\",code=\"";
    let codes: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix(prefix)?.split_once('"').map(|(code, _)| code)).collect();
    assert_eq!(codes.len(), 1, "{text}");
    // Azurite's own code (AuthorizationFailure), not the HTTP status.
    assert!(codes[0].starts_with(|c: char| c.is_ascii_uppercase()), "{codes:?}");
    assert!(!text.contains(wrong) && !text.contains(&az.key), "a secret in the metrics:\n{text}");
}
