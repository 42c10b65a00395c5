//! The deployment files of `deploy/` are valid for the engines they are
//! for: every Kubernetes manifest against the Kubernetes schemas
//! (`kubernetes-validate` from PyPI, offline, strict: unknown fields are
//! errors), the HAProxy config with `haproxy -c`, the nginx config with
//! `nginx -t`; and a broken copy of each is refused, so the checks can fail.
//! Tools installed by `scripts/test.sh` (`MEDIAGATE_TEST_KUBERNETES_VALIDATE`,
//! `MEDIAGATE_TEST_HAPROXY`, `MEDIAGATE_TEST_NGINX`).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::lb::{deploy_dir, haproxy_bin, haproxy_config, haproxy_env, nginx_bin, nginx_config, nginx_main_config};
use common::required_env;
use common::run_bounded;

/// The Kubernetes version the manifests are checked against (one whose
/// schemas kubernetes-validate 1.37.0 ships): the oldest minor still in
/// wide support when these were written; every field used exists since.
const KUBERNETES_VERSION: &str = "1.32.0";

const LIMIT: Duration = Duration::from_secs(60);

fn kubernetes_validate() -> Option<String> {
    required_env("MEDIAGATE_TEST_KUBERNETES_VALIDATE", "kubernetes-validate")
}

/// Every `*.yaml` under `deploy/kubernetes`, sorted.
fn manifests() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&deploy_dir().join("kubernetes"), &mut out);
    out.sort();
    out
}

fn validate(bin: &str, files: &[PathBuf]) -> Output {
    run_bounded(
        Command::new(bin).arg("--strict").arg("--kubernetes-version").arg(KUBERNETES_VERSION).args(files),
        LIMIT,
    )
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn every_kubernetes_manifest_validates_against_the_kubernetes_schemas() {
    let Some(bin) = kubernetes_validate() else { return };
    let files = manifests();
    assert!(files.len() >= 8, "expected the manifests in deploy/kubernetes, found {files:?}");
    let out = validate(&bin, &files);
    let report = text(&out);
    assert!(out.status.success(), "kubernetes-validate refused deploy/kubernetes:\n{report}");
    // Every resource the deployment needs is there and was checked (not skipped as an unknown kind).
    for resource in [
        "deployment/mediagate",
        "service/mediagate",
        "ingress/mediagate",
        "configmap/mediagate-config",
        "secret/mediagate-secrets",
        "serviceaccount/mediagate",
        "poddisruptionbudget/mediagate",
        "horizontalpodautoscaler/mediagate",
        "deployment/app-with-mediagate",
    ] {
        assert!(
            report.contains(&format!("passed for resource {resource} ")),
            "{resource} was not validated:\n{report}"
        );
    }
}

#[test]
fn a_broken_manifest_is_refused_by_the_validation() {
    let Some(bin) = kubernetes_validate() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let shipped = std::fs::read_to_string(deploy_dir().join("kubernetes/deployment.yaml")).expect("deployment.yaml");
    // A wrong type, and a misspelt field (which only --strict refuses).
    for (from, to) in
        [("replicas: 3", "replicas: three"), ("readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true")]
    {
        assert!(shipped.contains(from), "deployment.yaml has no {from:?}");
        let broken = dir.path().join("deployment.yaml");
        std::fs::write(&broken, shipped.replacen(from, to, 1)).expect("writing the broken copy");
        let out = validate(&bin, &[broken]);
        assert!(!out.status.success(), "kubernetes-validate accepted a deployment with {to:?}:\n{}", text(&out));
        assert!(text(&out).contains("did not validate"), "{}", text(&out));
    }
}

/// The memory request is the cache budget plus the measured overhead
/// (64 MiB; the arithmetic is in deployment.yaml's comment): a change of
/// `max_bytes` in the ConfigMap must come with the request.
#[test]
fn the_memory_request_is_the_cache_budget_plus_64_mib() {
    let read = |f: &str| std::fs::read_to_string(deploy_dir().join("kubernetes").join(f)).expect(f);
    let config = read("configmap.yaml");
    let budget = config
        .lines()
        .find_map(|l| l.trim().strip_prefix("max_bytes = \"")?.strip_suffix('"'))
        .expect("max_bytes in configmap.yaml");
    let mib: u64 = match budget.strip_suffix("GiB") {
        Some(g) => g.parse::<u64>().expect("GiB") * 1024,
        None => budget.strip_suffix("MiB").expect("max_bytes in MiB or GiB").parse().expect("MiB"),
    };
    let deployment = read("deployment.yaml");
    assert!(
        deployment.contains(&format!("memory: {}Mi", mib + 64)),
        "deployment.yaml should request {} Mi (max_bytes {budget} + 64 MiB)",
        mib + 64
    );
}

/// `haproxy -c` on `config`, with the environment the shipped file reads.
fn haproxy_check(bin: &str, config: &Path) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let replicas: Vec<SocketAddr> = (1..=3).map(|i| SocketAddr::from(([127, 0, 0, i], 8080))).collect();
    let env = haproxy_env(&dir.path().join("stats.sock"), "127.0.0.1:8080".parse().unwrap(), &replicas);
    run_bounded(Command::new(bin).arg("-c").arg("-f").arg(config).envs(env), LIMIT)
}

#[test]
fn the_haproxy_config_is_valid_for_haproxy_and_a_broken_copy_is_not() {
    let Some(bin) = haproxy_bin() else { return };
    let out = haproxy_check(&bin, &haproxy_config());
    assert!(out.status.success(), "haproxy -c refused deploy/haproxy/haproxy.cfg:\n{}", text(&out));
    assert!(text(&out).contains("Configuration file is valid"), "{}", text(&out));

    let shipped = std::fs::read_to_string(haproxy_config()).expect("haproxy.cfg");
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("haproxy.cfg");
    std::fs::write(&broken, shipped.replacen("hash-type consistent", "hash-type consistant", 1)).expect("write");
    let out = haproxy_check(&bin, &broken);
    assert!(!out.status.success(), "haproxy -c accepted a broken hash-type:\n{}", text(&out));
}

fn nginx_check(bin: &str, include: &Path) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let main = dir.path().join("nginx.conf");
    std::fs::write(&main, nginx_main_config(dir.path(), include)).expect("writing nginx.conf");
    run_bounded(Command::new(bin).arg("-t").arg("-p").arg(dir.path()).arg("-c").arg(&main), LIMIT)
}

#[test]
fn the_nginx_config_is_valid_for_nginx_and_a_broken_copy_is_not() {
    let Some(bin) = nginx_bin() else { return };
    let out = nginx_check(&bin, &nginx_config());
    assert!(out.status.success(), "nginx -t refused deploy/nginx/mediagate.conf:\n{}", text(&out));
    assert!(text(&out).contains("test is successful"), "{}", text(&out));

    let shipped = std::fs::read_to_string(nginx_config()).expect("mediagate.conf");
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("mediagate.conf");
    std::fs::write(
        &broken,
        shipped.replacen("hash $mediagate_object consistent;", "hash $mediagate_object consistant;", 1),
    )
    .expect("write");
    let out = nginx_check(&bin, &broken);
    assert!(!out.status.success(), "nginx -t accepted a broken hash directive:\n{}", text(&out));
}

/// The `mediagate.toml` embedded in a ConfigMap manifest (the block after
/// `mediagate.toml: |`, its indentation removed).
fn embedded_config(manifest: &str) -> String {
    let mut lines = manifest.lines().skip_while(|l| l.trim() != "mediagate.toml: |").skip(1).peekable();
    let indent = lines.peek().map(|l| l.len() - l.trim_start().len()).expect("a config block");
    let mut out = String::new();
    for line in lines {
        if !line.trim().is_empty() && line.len() - line.trim_start().len() < indent {
            break;
        }
        out.push_str(line.get(indent..).unwrap_or(""));
        out.push('\n');
    }
    out
}

/// The config files the manifests ship pass mediagate's own validation
/// (every `${VAR}` set to a placeholder of the shape its key needs:
/// [`common::env_placeholder`]).
#[test]
fn the_configs_in_the_manifests_pass_mediagate_config_validation() {
    for file in ["configmap.yaml", "sidecar/app-with-mediagate.yaml"] {
        let manifest = std::fs::read_to_string(deploy_dir().join("kubernetes").join(file)).expect(file);
        let config = embedded_config(&manifest);
        assert!(
            config.contains("[server]") && config.contains("[[integration]]"),
            "{file}: no config found:\n{config}"
        );
        let placeholder = common::env_placeholder;
        if let Err(e) = mediagate::config::parse(&config, Path::new(file), &placeholder) {
            panic!("the config in {file} is refused: {e}\n{config}");
        }
        // The check can fail: a misspelt key is refused.
        let broken = config.replacen("[cache]\n", "[cache]\nmax_byts = \"1MiB\"\n", 1);
        assert!(
            mediagate::config::parse(&broken, Path::new(file), &placeholder).is_err(),
            "max_byts accepted in {file}"
        );
    }
}
