mod integrations;

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::integration::azure::config::{AzureConfig, AzureCredential, AzureStorageUrl, parse_azure_storage_url};
use crate::integration::config::IntegrationKind;
use crate::integration::s3::config::{Addressing, S3Config, S3Credentials};
use crate::integration::secret_file::SecretValue;
use crate::locator::Scheme;
use crate::schema::env::expand;
use crate::schema::values::*;
use crate::schema::{edit_distance, suggestion};

const FILE: &str = "test.toml";

pub(super) fn parse_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    let env = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
    parse(text, Path::new(FILE), &env).map_err(|e| e.problems)
}

pub(super) fn ok(text: &str) -> Config {
    parse_env(text, &[]).unwrap_or_else(|p| panic!("expected no problems, got:\n{}", p.join("\n")))
}

pub(super) fn problems(text: &str) -> Vec<String> {
    problems_env(text, &[])
}

pub(super) fn problems_env(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
    match parse_env(text, vars) {
        Ok(_) => panic!("expected problems, the config was accepted:\n{text}"),
        Err(problems) => problems,
    }
}

/// Asserts that exactly one problem was found and that it contains every fragment.
pub(super) fn assert_one_problem(text: &str, fragments: &[&str]) {
    let problems = problems(text);
    assert_eq!(problems.len(), 1, "expected one problem, got:\n{}", problems.join("\n"));
    for fragment in fragments {
        assert!(problems[0].contains(fragment), "{fragment:?} not in {:?}", problems[0]);
    }
}

pub(super) const S3_KEYS: &str = "access_key_id = \"id\"\nsecret_access_key = \"secret\"\n";

pub(super) fn s3_toml(extra: &str) -> String {
    format!("[[integration]]\nname = \"s\"\ntype = \"s3\"\n{S3_KEYS}{extra}\n")
}

pub(super) fn s3_config(config: &Config) -> &S3Config {
    match &config.integrations[0].kind {
        IntegrationKind::S3(s3) => s3,
        other => panic!("expected s3, got {other:?}"),
    }
}

pub(super) fn azure_toml(extra: &str) -> String {
    format!("[[integration]]\nname = \"a\"\ntype = \"azure-blob\"\n{extra}\n")
}

pub(super) fn azure_config(config: &Config) -> &AzureConfig {
    match &config.integrations[0].kind {
        IntegrationKind::Azure(az) => az,
        other => panic!("expected azure-blob, got {other:?}"),
    }
}

pub(super) const SAS: &str = "sas_token = \"sv=2022-11-02&sig=abc\"";

#[test]
fn durations_take_human_units() {
    let ms = Duration::from_millis;
    let cases = [
        ("500ms", ms(500)),
        ("10s", ms(10_000)),
        ("5m", ms(300_000)),
        ("1h", ms(3_600_000)),
        ("1d", ms(86_400_000)),
        ("1m30s", ms(90_000)),
        ("1h 30m", ms(5_400_000)),
        ("2 s", ms(2_000)),
        ("0s", ms(0)),
        ("45", ms(45_000)),
        (" 10s ", ms(10_000)),
    ];
    for (text, want) in cases {
        assert_eq!(parse_duration(text), Ok(want), "{text:?}");
    }
}

#[test]
fn bad_durations_are_rejected() {
    for text in ["", "s", "10", "10x", "1.5s", "-1s", "10 minutes", "5m3", "99999999999999999999d"] {
        if text == "10" {
            continue; // a bare number is seconds
        }
        let err = parse_duration(text).expect_err(text);
        assert!(err.contains("expected a duration"), "{err}");
    }
}

#[test]
fn sizes_take_human_units() {
    let cases = [
        ("512", 512),
        ("0", 0),
        ("1B", 1),
        ("4 KiB", 4096),
        ("64MiB", 64 << 20),
        ("64mib", 64 << 20),
        ("1GB", 1_000_000_000),
        ("2GiB", 2 << 30),
        ("1TiB", 1 << 40),
        ("3kb", 3000),
        ("1.5GiB", 3 << 29),
        ("0.5KiB", 512),
    ];
    for (text, want) in cases {
        assert_eq!(parse_size(text), Ok(want), "{text:?}");
    }
}

#[test]
fn bad_sizes_are_rejected() {
    for text in ["", "MiB", "64M", "64 mebibytes", "-1", "1.MiB", ".5MiB", "1e3", "99999999999TiB"] {
        let err = parse_size(text).expect_err(text);
        assert!(err.contains("expected a size"), "{err}");
    }
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let config = ok("");
    assert_eq!(config.source, Path::new(FILE));
    assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(config.server.public_base_url, None);
    assert_eq!(config.server.max_connections, 4096);
    assert_eq!(config.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(config.upstream.connect_timeout, Duration::from_secs(5));
    assert_eq!(config.upstream.first_byte_timeout, Duration::from_secs(30));
    assert_eq!(config.upstream.read_timeout, Duration::from_secs(30));
    assert_eq!(config.upstream.pool_idle_timeout, Duration::from_secs(90));
    assert_eq!(config.upstream.pool_max_idle_per_host, 64);
    assert!(config.integrations.is_empty());
}

#[test]
fn server_and_upstream_keys_are_read() {
    let config = ok(r#"
        [server]
        listen = "0.0.0.0:0"
        public_base_url = "https://media.example.com/"
        max_connections = 10
        header_read_timeout = "2s"
        shutdown_grace = 0
        [upstream]
        connect_timeout = "1s"
        first_byte_timeout = "2s"
        read_timeout = "3s"
        pool_idle_timeout = "1m"
        pool_max_idle_per_host = 0
    "#);
    assert_eq!(config.server.listen, "0.0.0.0:0".parse().unwrap());
    assert_eq!(config.server.public_base_url.as_deref(), Some("https://media.example.com"));
    assert_eq!(config.server.max_connections, 10);
    assert_eq!(config.server.header_read_timeout, Duration::from_secs(2));
    assert_eq!(config.server.shutdown_grace, Duration::ZERO);
    assert_eq!(config.upstream.connect_timeout, Duration::from_secs(1));
    assert_eq!(config.upstream.first_byte_timeout, Duration::from_secs(2));
    assert_eq!(config.upstream.read_timeout, Duration::from_secs(3));
    assert_eq!(config.upstream.pool_idle_timeout, Duration::from_secs(60));
    assert_eq!(config.upstream.pool_max_idle_per_host, 0);
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = problems(
        r#"
        [server]
        listen = "localhost"
        max_connections = 0
        [upstream]
        read_timeout = "forever"
        [[integration]]
        name = "Bad Name"
        type = "s3"
        port = "abc"
    "#,
    );
    let expected = [
        "test.toml:3: server.listen: expected an IP address and port",
        "test.toml:4: server.max_connections: expected an integer of at least 1, got 0",
        "test.toml:6: upstream.read_timeout: expected a duration",
        "test.toml:7: integration[0].access_key_id: missing access_key_id",
        "test.toml:7: integration[0].secret_access_key: missing secret_access_key",
        "test.toml:8: integration[0].name: expected 1 to 63 lower-case letters",
        "test.toml:10: integration[0].port: expected an integer from 1 to 65535, got \"abc\"",
    ];
    assert_eq!(problems.len(), expected.len(), "{}", problems.join("\n"));
    for (problem, want) in problems.iter().zip(expected) {
        assert!(problem.starts_with(want), "{problem:?} does not start with {want:?}");
    }
}

#[test]
fn a_toml_syntax_error_names_its_line_and_column() {
    let problems = problems("[server]\nlisten = \"127.0.0.1:8080\"\nmax_connections = = 3\n");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("test.toml: TOML parse error at line 3, column"), "{}", problems[0]);
}

#[test]
fn syntax_errors_on_several_lines_are_all_reported() {
    let problems = problems("[server\nlisten = = 1\n");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("line 1, column 8"), "{}", problems[0]);
    assert!(problems[1].contains("line 2, column 10"), "{}", problems[1]);
}

#[test]
fn a_key_given_twice_is_a_syntax_error() {
    let problems = problems("[server]\nlisten = \"127.0.0.1:1\"\nlisten = \"127.0.0.1:2\"\n");
    assert!(problems[0].contains("line 3"), "{}", problems[0]);
}

#[test]
fn an_unknown_key_is_rejected_with_its_path() {
    assert_one_problem(
        "[server]\nlistn = \"127.0.0.1:8080\"\n",
        &["test.toml:2: server.listn: unknown key; did you mean `listen`?"],
    );
}

#[test]
fn an_unknown_key_far_from_any_known_one_lists_the_known_keys() {
    assert_one_problem("[upstream]\nbanana = 1\n", &["upstream.banana: unknown key; known keys: connect_timeout"]);
}

#[test]
fn an_unknown_section_is_rejected() {
    assert_one_problem(
        "[cahce]\nmax_bytes = \"1GiB\"\n",
        &["test.toml:1: cahce: unknown section; did you mean `cache`?"],
    );
    assert_one_problem(
        "verbose = true\n",
        &["verbose: unknown key; known sections: server, upstream, cache, auth, cors, integration"],
    );
}

#[test]
fn the_admin_section_turns_the_listener_on_and_checks_its_token() {
    assert!(ok("").admin.is_none(), "no [admin]: no admin listener");
    let admin = ok("[admin]\n").admin.expect("[admin] present");
    assert_eq!(admin.listen.to_string(), "127.0.0.1:9091");
    assert!(admin.token.is_none());
    assert_one_problem("[admin]\nx = 1\n", &["test.toml:2: admin.x: unknown key; known keys: listen, token"]);
    assert_one_problem(
        "[admin]\nlisten = \"0.0.0.0:9091\"\n",
        &["admin.listen: the admin listener on 0.0.0.0:9091 is reachable beyond loopback and has no token"],
    );
    assert_one_problem("[admin]\ntoken = \"short\"\n", &["admin.token: is shorter than 16 bytes"]);
    let admin = ok("[admin]\nlisten = \"0.0.0.0:9091\"\ntoken = \"0123456789abcdef\"\n").admin.expect("admin");
    assert_eq!(admin.token.map(|t| t.expose().len()), Some(16));
}

/// The missing keys of the first integration, which must be incomplete.
pub(super) fn incomplete(text: &str) -> Vec<(String, String)> {
    let config = ok(text);
    let missing = config.integrations[0].missing();
    assert!(!missing.is_empty(), "expected an incomplete integration:\n{text}");
    missing.iter().map(|p| (p.key.clone(), p.message.clone())).collect()
}

#[test]
fn an_unknown_integration_key_names_the_integration_and_its_type() {
    assert_one_problem(
        &s3_toml("bucket = [\"a\"]"),
        &["integration[0] (\"s\").bucket: unknown key for type \"s3\"; did you mean `buckets`?"],
    );
}

#[test]
fn a_section_that_is_not_a_table_is_rejected() {
    assert_one_problem("server = \"0.0.0.0:80\"\n", &["server: expected a table, written [server]"]);
}

#[test]
fn a_single_integration_table_asks_for_double_brackets() {
    assert_one_problem("[integration]\nname = \"x\"\n", &["integration: expected [[integration]] tables"]);
}

#[test]
fn a_value_of_the_wrong_type_is_reported_with_the_value() {
    assert_one_problem(&s3_toml("tls = \"yes\""), &["tls: expected true or false, got \"yes\""]);
    assert_one_problem(&s3_toml("region = 5"), &["region: expected a string, got 5"]);
    assert_one_problem(&s3_toml("buckets = \"a\""), &["buckets: expected an array of strings"]);
    assert_one_problem("[server]\nheader_read_timeout = 1.5\n", &["got the float 1.5"]);
}

#[test]
fn variables_are_expanded_in_every_string() {
    let text = r#"
        [server]
        listen = "${HOST}:${PORT}"
        shutdown_grace = "${GRACE}"
        [[integration]]
        name = "${NAME}"
        type = "local"
        root = "${ROOT}/media"
        buckets = ["${BUCKET}"]
    "#;
    let vars = [
        ("HOST", "0.0.0.0"),
        ("PORT", "9000"),
        ("GRACE", "5s"),
        ("NAME", "files"),
        ("ROOT", "/srv"),
        ("BUCKET", "pics"),
    ];
    let config = parse_env(text, &vars).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(config.server.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(5));
    assert_eq!(config.integrations[0].name, "files");
    let IntegrationKind::Local(local) = &config.integrations[0].kind else { panic!("not local") };
    assert_eq!(local.root, Path::new("/srv/media"));
    assert_eq!(local.buckets, ["pics"]);
}

#[test]
fn numbers_and_booleans_may_come_from_variables() {
    let config =
        parse_env(&s3_toml("endpoint = \"minio\"\nport = \"${P}\"\ntls = \"${T}\""), &[("P", "9000"), ("T", "false")])
            .unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(s3_config(&config).port, Some(9000));
    assert!(!s3_config(&config).tls);
}

#[test]
fn a_missing_variable_names_the_key_and_the_variable() {
    let problems = problems(&s3_toml("region = \"${REGION}-${ZONE}\""));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("integration[0] (\"s\").region: environment variables REGION, ZONE are not set"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_missing_variable_in_a_list_names_the_element() {
    assert_one_problem(&s3_toml("buckets = [\"a\", \"${B}\"]"), &["buckets[1]: environment variable B is not set"]);
}

#[test]
fn a_bad_variable_reference_is_reported() {
    assert_one_problem(&s3_toml("region = \"${REGION\""), &["region: unterminated ${"]);
    assert_one_problem(&s3_toml("region = \"${1X}\""), &["region: ${1X} is not a valid environment variable name"]);
}

#[test]
fn a_double_dollar_is_a_literal_dollar_brace() {
    assert_eq!(expand("a$${B}c", &|_| None), Ok("a${B}c".to_string()));
    assert_eq!(expand("$5 and $$ and $", &|_| None), Ok("$5 and $$ and $".to_string()));
    assert_eq!(expand("${A}${A}", &|_| Some("x".to_string())), Ok("xx".to_string()));
    let config = ok(&s3_toml("cache_control = \"x-$${literal}\""));
    assert_eq!(config.integrations[0].cache_control, "x-${literal}");
}

#[test]
fn an_empty_variable_is_allowed_but_not_for_a_secret() {
    let text = "[[integration]]\nname = \"s\"\ntype = \"s3\"\naccess_key_id = \"id\"\n\
                secret_access_key = \"${SECRET}\"\ncache_control = \"public${SUFFIX}\"\n";
    let config = parse_env(text, &[("SECRET", "s"), ("SUFFIX", "")]).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(config.integrations[0].cache_control, "public");
    let problems = problems_env(text, &[("SECRET", ""), ("SUFFIX", "")]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("secret_access_key: is empty"), "{}", problems[0]);
}

#[test]
fn every_secret_key_must_not_be_empty() {
    assert_one_problem(&s3_toml("session_token = \"\""), &["session_token: is empty"]);
    assert_one_problem(
        &azure_toml("storage_url = \"https://acct.blob.core.windows.net/media\"\naccount_key = \"\""),
        &["account_key: is empty"],
    );
    assert_one_problem(
        &azure_toml("storage_url = \"https://acct.blob.core.windows.net/media\"\nsas_token = \"\""),
        &["sas_token: is empty"],
    );
}

#[test]
fn a_secret_never_appears_in_a_message() {
    let text = azure_toml(
        "storage_url = \"https://acct.blob.core.windows.net/media\"\naccount_key = \"not base64 SECRETVALUE!\"",
    );
    let found = problems(&text);
    assert!(found[0].contains("account_key: is not valid base64"), "{found:?}");
    assert!(!found[0].contains("SECRETVALUE"), "{found:?}");
    let found = problems(&azure_toml(
        "storage_url = \"https://acct.blob.core.windows.net/media\"\nsas_token = \"sv=1&SECRETVALUE\"",
    ));
    assert!(!found[0].contains("SECRETVALUE"), "{found:?}");
    let found = problems(&s3_toml("session_token = 12345"));
    assert!(found[0].contains("expected a string, got an integer") && !found[0].contains("12345"), "{found:?}");
}

#[test]
fn listen_must_be_a_socket_address_and_port_zero_is_allowed() {
    assert_eq!(ok("[server]\nlisten = \"127.0.0.1:0\"").server.listen.port(), 0);
    assert_eq!(ok("[server]\nlisten = \"[::]:8080\"").server.listen, "[::]:8080".parse().unwrap());
    assert_one_problem("[server]\nlisten = \"localhost:8080\"", &["server.listen: expected an IP address and port"]);
    assert_one_problem("[server]\nlisten = \"0.0.0.0\"", &["server.listen: expected an IP address and port"]);
    assert_one_problem("[server]\nlisten = 8080", &["server.listen: expected a string, got 8080"]);
}

#[test]
fn public_base_url_must_start_with_http_or_https() {
    assert_eq!(
        ok("[server]\npublic_base_url = \"http://x:8080\"").server.public_base_url.as_deref(),
        Some("http://x:8080")
    );
    for bad in ["media.example.com", "ftp://x", "https://", "https:///x"] {
        assert_one_problem(
            &format!("[server]\npublic_base_url = \"{bad}\""),
            &["server.public_base_url: expected a URL starting with http:// or https://"],
        );
    }
}

#[test]
fn timeouts_must_be_more_than_zero() {
    assert_one_problem("[upstream]\nconnect_timeout = \"0s\"", &["upstream.connect_timeout: must be more than zero"]);
    assert_one_problem("[server]\nheader_read_timeout = 0", &["server.header_read_timeout: must be more than zero"]);
    assert_one_problem("[upstream]\nread_timeout = -1", &["upstream.read_timeout: expected a duration"]);
}

#[test]
fn counts_must_be_in_range() {
    assert_one_problem(
        "[server]\nmax_connections = -5",
        &["server.max_connections: expected an integer of at least 1, got -5"],
    );
    assert_one_problem(
        "[upstream]\npool_max_idle_per_host = \"many\"",
        &["upstream.pool_max_idle_per_host: expected an integer of at least 0, got \"many\""],
    );
}

fn example_env(name: &str) -> Option<String> {
    let value = match name {
        "AZURITE_ACCOUNT_KEY" => "a2V5",
        "AZURE_MEDIA_SAS" => "sv=2022-11-02&sig=abc",
        "MEDIAGATE_URL_KEY" => "an-example-url-signing-key",
        "MEDIAGATE_ADMIN_TOKEN" => "an-example-admin-token",
        _ => "fake-value",
    };
    Some(value.to_string())
}

#[test]
fn the_example_config_parses_with_its_variables_set() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mediagate.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = parse(&text, &path, &example_env).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = config.integrations.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["minio-share", "aws", "gcs", "azure-media", "azurite", "demo"]);
    assert_eq!(config.server.public_base_url.as_deref(), Some("https://media.example.com"));
    assert_eq!(config.auth.mode, AuthMode::SignedUrl);
    assert_eq!(config.auth.keys[0].id, "k1");
    assert_eq!(config.cors.allowed_origins, ["https://app.example.com"]);
    let admin = config.admin.expect("the example documents [admin]");
    assert_eq!(admin.listen.to_string(), "127.0.0.1:9091");
    assert!(admin.token.is_some());
}

#[test]
fn the_example_config_reads_every_secret_from_the_environment() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mediagate.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let err = parse(&text, &path, &|_| None).expect_err("variables are unset");
    let missing = err.problems.iter().filter(|p| p.contains("is not set")).count();
    assert_eq!(missing, 7, "{err}");
}

#[test]
fn the_demo_config_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let config = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
    let [demo] = config.integrations.as_slice() else { panic!("expected one integration") };
    assert_eq!(demo.name, "demo");
    let IntegrationKind::Local(local) = &demo.kind else { panic!("not local") };
    assert_eq!(local.root, Path::new("examples/media"));
    assert_eq!(local.buckets, ["demo"]);
}

#[test]
fn a_missing_config_file_is_reported_with_its_path() {
    let err = load(Path::new("/nonexistent/mediagate.toml")).expect_err("no such file");
    assert!(err.problems[0].starts_with("/nonexistent/mediagate.toml: cannot read the config file"), "{err}");
}

#[test]
fn signed_url_auth_reads_keys_from_the_environment() {
    let text = "[auth]\nmode = \"signed-url\"\nclock_skew = \"10s\"\nmax_ttl = \"1d\"\n\
                [[auth.keys]]\nid = \"k1\"\nsecret = \"${URL_KEY}\"\n\
                [[auth.keys]]\nid = \"k2\"\nsecret = \"another-long-secret-value\"\n";
    let config = parse_env(text, &[("URL_KEY", "0123456789abcdef0123")]).unwrap_or_else(|p| panic!("{p:?}"));
    assert_eq!(config.auth.mode, AuthMode::SignedUrl);
    let ids: Vec<&str> = config.auth.keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["k1", "k2"]);
    assert_eq!(config.auth.keys[0].secret.expose(), "0123456789abcdef0123");
    assert_eq!(config.auth.clock_skew, Duration::from_secs(10));
    assert_eq!(config.auth.max_ttl, Duration::from_secs(86_400));
    assert_eq!(ok("").auth.mode, AuthMode::None);
}

#[test]
fn bad_auth_sections_say_what_to_fix() {
    assert_one_problem("[auth]\nmode = \"signed-url\"\n", &["auth.mode: mode = \"signed-url\" needs at least one key"]);
    assert_one_problem("[auth]\nmode = \"hmac\"\n", &["auth.mode: expected \"none\" or \"signed-url\""]);
    let key = "[[auth.keys]]\nid = \"k1\"\nsecret = \"0123456789abcdef\"\n";
    assert_one_problem(
        &format!("[auth]\nmode = \"none\"\n{key}"),
        &["auth.keys: signing keys are configured but mode is \"none\""],
    );
    assert_one_problem(
        "[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k1\"\nsecret = \"short\"\n",
        &["auth.keys[0].secret: is shorter than 16 bytes"],
    );
    assert_one_problem(
        &format!("[auth]\nmode = \"signed-url\"\n{key}{key}"),
        &["auth.keys[1].id: \"k1\" is used by another key"],
    );
    assert_one_problem(
        "[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k 1\"\nsecret = \"0123456789abcdef\"\n",
        &["auth.keys[0].id: expected 1 to 64 letters"],
    );
    let problems =
        problems_env("[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k1\"\nsecret = \"${NOPE}\"\n", &[]);
    assert!(problems.iter().any(|p| p.contains("NOPE is not set")), "{problems:?}");
}

#[test]
fn cors_takes_exact_origins_or_a_wildcard() {
    let config =
        ok("[cors]\nallowed_origins = [\"https://app.example.com\", \"http://127.0.0.1:3000\"]\nmax_age = \"10m\"\n");
    assert_eq!(config.cors.allowed_origins, ["https://app.example.com", "http://127.0.0.1:3000"]);
    assert_eq!(config.cors.max_age, Duration::from_secs(600));
    assert_eq!(ok("[cors]\nallowed_origins = [\"*\"]\n").cors.allowed_origins, ["*"]);
    assert!(ok("").cors.allowed_origins.is_empty());
    for (bad, why) in [
        ("https://app.example.com/", "no path"),
        ("app.example.com", "no scheme"),
        ("ftp://a.example", "http or https"),
        ("https://App.example.com", "lower case"),
        ("https://a.example:99999", "out of range"),
    ] {
        assert_one_problem(&format!("[cors]\nallowed_origins = [\"{bad}\"]\n"), &["cors.allowed_origins[0]", why]);
    }
    assert_one_problem("[cors]\nallowed_origins = [\"*\", \"https://a.example\"]\n", &["give it alone"]);
    assert_one_problem("[cors]\nmax_age = \"1h\"\n", &["missing required key `allowed_origins`"]);
}

#[test]
fn tls_needs_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert, "x").unwrap();
    std::fs::write(&key, "x").unwrap();
    let both =
        format!("[server]\ntls_cert = {:?}\ntls_key = {:?}\n", cert.display().to_string(), key.display().to_string());
    let tls = ok(&both).server.tls.expect("tls");
    assert_eq!((tls.cert, tls.key), (cert.clone(), key));
    assert_one_problem(
        &format!("[server]\ntls_cert = {:?}\n", cert.display().to_string()),
        &["server.tls_cert: tls_cert needs tls_key"],
    );
    let missing = problems("[server]\ntls_cert = \"/nonexistent.pem\"\ntls_key = \"/nonexistent.key\"\n");
    assert!(missing[0].contains("server.tls_cert: cannot read /nonexistent.pem"), "{missing:?}");
    assert!(missing[1].contains("server.tls_key: cannot read /nonexistent.key"), "{missing:?}");
}

#[test]
fn close_keys_are_suggested() {
    assert_eq!(edit_distance("listn", "listen"), 1);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(suggestion("Region", &["region", "port"], "known keys"), "did you mean `region`?");
    assert_eq!(suggestion("zzz", &["region", "port"], "known keys"), "known keys: region, port");
}

#[test]
fn the_cache_section_takes_sizes_and_durations_and_defaults_the_rest() {
    let text = "[cache]\nmax_bytes = \"64MiB\"\nslice_bytes = \"1MiB\"\nmax_object_bytes = \"512KiB\"\nttl = \"1m\"\n";
    let config = parse(text, Path::new("test.toml"), &|_| None).expect("parses");
    assert_eq!(config.cache.max_bytes, 64 << 20);
    assert_eq!(config.cache.slice_bytes, 1 << 20);
    assert_eq!(config.cache.max_object_bytes, 512 << 10);
    assert_eq!(config.cache.ttl, Duration::from_secs(60));
    assert!(config.cache.enabled);
    assert_eq!(config.cache.negative_ttl, Duration::ZERO);
}

#[test]
fn a_whole_object_larger_than_a_slice_is_accepted() {
    let text = "[cache]\nslice_bytes = \"1MiB\"\nmax_object_bytes = \"8MiB\"\n";
    let config = parse(text, Path::new("test.toml"), &|_| None).expect("parses");
    assert_eq!(config.cache.slice_bytes, 1 << 20);
    assert_eq!(config.cache.max_object_bytes, 8 << 20);
}

#[test]
fn a_whole_object_larger_than_a_gibibyte_is_refused() {
    let text = "[cache]\nmax_object_bytes = \"2GiB\"\n";
    let problems = parse(text, Path::new("test.toml"), &|_| None).expect_err("must fail").problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("cache.max_object_bytes"), "{problems:?}");
}

#[test]
fn a_slice_size_out_of_range_and_a_bad_size_are_both_reported() {
    let text = "[cache]\nslice_bytes = \"1KiB\"\nmax_bytes = \"lots\"\n";
    let problems = parse(text, Path::new("test.toml"), &|_| None).expect_err("must fail").problems;
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn max_connections_per_ip_defaults_to_256_and_zero_turns_it_off() {
    assert_eq!(ok("").server.max_connections_per_ip, 256);
    assert_eq!(ok("[server]\nmax_connections_per_ip = 0\n").server.max_connections_per_ip, 0);
    assert_eq!(ok("[server]\nmax_connections_per_ip = 8\n").server.max_connections_per_ip, 8);
    assert_one_problem("[server]\nmax_connections_per_ip = -1", &["expected an integer of at least 0, got -1"]);
}
