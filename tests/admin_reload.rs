//! The config file under the admin API (CONTRACT.md section 6), black-box
//! against s3s-fs and Azurite: concurrent PUTs persisted into a file that
//! keeps its comments and `${VAR}` references and survive a restart;
//! reloads on `SIGHUP` and on a change of the file, good and broken; and one
//! session that collects everything mediagate says and finds no secret in it.
//!
//! Run through `scripts/test.sh cargo test --test admin_reload`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::admin::{AdminApi, admin_section, s3_json};
use common::{MediaGate, azure_peer, config, get, s3_peer, toml_str, unique_bucket, wait_until};
use http::Method;
use serde_json::{Value, json};

const TOKEN: &str = "admin-reload-test-token-6a0f3c";
const WAIT: Duration = Duration::from_secs(20);

/// A config file the test owns (it outlives a process, for restarts).
struct ConfigFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        let dir = tempfile::Builder::new().prefix("mediagate-admin-").tempdir().expect("temp dir");
        let path = dir.path().join("mediagate.toml");
        std::fs::write(&path, text).expect("writing the config");
        ConfigFile { _dir: dir, path }
    }

    fn text(&self) -> String {
        std::fs::read_to_string(&self.path).expect("reading the config")
    }

    /// Replaces the file as an editor or the kubelet does: a new file renamed
    /// over it, so a poll never reads half of it.
    fn replace(&self, text: &str) {
        let tmp = self.path.with_extension("toml.new");
        std::fs::write(&tmp, text).expect("writing the new config");
        std::fs::rename(&tmp, &self.path).expect("renaming the new config");
    }
}

/// `[server]` with polling every `poll` (`"0s"`: off), then `parts`.
fn server_config(poll: &str, parts: &[&str]) -> String {
    let mut text = config(parts);
    text = text.replacen("[server]\n", &format!("[server]\nconfig_poll_interval = {}\n", toml_str(poll)), 1);
    text
}

/// The integration as the API answered or listed it, without what a test
/// run adds (`status`, `last_test`, `problems`).
fn keys_of(integration: &Value) -> Value {
    let mut v = integration.clone();
    if let Some(map) = v.as_object_mut() {
        for k in ["status", "last_test", "problems", "credential_source", "credentials_expire"] {
            map.remove(k);
        }
    }
    v
}

#[test]
fn twenty_concurrent_puts_all_survive_a_restart_in_a_file_that_keeps_its_comments_and_var_references() {
    let Some(s3) = s3_peer() else { return };
    let buckets: Vec<String> = (0..20).map(|i| unique_bucket(&format!("persist-{i}"))).collect();
    for (i, bucket) in buckets.iter().enumerate() {
        s3.seed(bucket, &[("n.txt", format!("object {i}").as_bytes())]);
    }
    let base_bucket = unique_bucket("persist-base");
    s3.seed(&base_bucket, &[("n.txt", b"base")]);
    let base = s3.integration("base", &[&base_bucket], "").replace(
        &format!("secret_access_key = {}", toml_str(&s3.secret_key)),
        "secret_access_key = \"${MEDIAGATE_APITEST_PERSIST_SECRET}\" # from the environment",
    );
    let text = format!(
        "# mediagate for the persistence test: this comment stays\n{}\n# the base integration reads its secret from the environment\n{base}\n# a comment at the end stays too\n",
        server_config("0s", &[&admin_section(TOKEN)])
    );
    let file = ConfigFile::new(&text);
    let env = [("MEDIAGATE_APITEST_PERSIST_SECRET", s3.secret_key.as_str())];
    let mg = MediaGate::start_file(&file.path, &env);
    let api = AdminApi::of(&mg, TOKEN);

    let answers: Vec<(String, Value)> = std::thread::scope(|s| {
        let threads: Vec<_> = buckets
            .iter()
            .enumerate()
            .map(|(i, bucket)| {
                let api = api.clone();
                let mut body = s3_json(&s3, &[bucket], &s3.secret_key);
                body["cache_control"] = json!(format!("max-age={}", i + 1));
                s.spawn(move || {
                    let name = format!("n{i:02}");
                    let r = api.put(&name, &body);
                    assert_eq!(r.status, 201, "PUT {name}: {}", r.describe());
                    (name, r.json()["integration"].clone())
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().expect("a PUT thread panicked")).collect()
    });
    let listed = api.list();
    assert_eq!(listed.len(), 21, "base and the 20: {listed:#?}");
    for (name, answered) in &answers {
        let found = listed.iter().find(|i| i["name"] == *name).unwrap_or_else(|| panic!("{name} was lost"));
        assert_eq!(&keys_of(found), answered, "{name}: listed as answered");
    }

    let saved = file.text();
    for kept in [
        "# mediagate for the persistence test: this comment stays",
        "# the base integration reads its secret from the environment",
        "\"${MEDIAGATE_APITEST_PERSIST_SECRET}\" # from the environment",
        "# a comment at the end stays too",
    ] {
        assert!(saved.contains(kept), "the file lost {kept:?}:\n{saved}");
    }
    let mode = std::fs::metadata(&file.path).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the config file's mode is {mode:o}");

    drop(mg);
    let mg = MediaGate::start_file(&file.path, &env);
    let api = AdminApi::of(&mg, TOKEN);
    let listed = api.list();
    assert_eq!(listed.len(), 21, "after the restart: {listed:#?}");
    for (i, (name, answered)) in answers.iter().enumerate() {
        let found = listed.iter().find(|l| l["name"] == *name).unwrap_or_else(|| panic!("{name} lost by the restart"));
        assert_eq!(&keys_of(found), answered, "{name} after the restart");
        let r = get(&mg.path_url("s3", &buckets[i], "n.txt"), &[]);
        assert_eq!(r.status, 200, "{name}: {}", r.describe());
        assert_eq!(r.text(), format!("object {i}"));
        assert_eq!(r.header("cache-control"), Some(format!("max-age={}", i + 1).as_str()), "{name}");
    }
    assert_eq!(get(&mg.path_url("s3", &base_bucket, "n.txt"), &[]).text(), "base", "the ${{VAR}} secret resolves");
}

/// mediagate on a file the test edits, with `s3`'s bucket `bucket` served by
/// integration `steady`.
fn reloading(poll: &str, s3: &common::S3Peer, bucket: &str) -> (ConfigFile, MediaGate, AdminApi) {
    s3.seed(bucket, &[("a.txt", b"steady")]);
    let file =
        ConfigFile::new(&server_config(poll, &[&admin_section(TOKEN), &s3.integration("steady", &[bucket], "")]));
    let mg = MediaGate::start_file(&file.path, &[]);
    let api = AdminApi::of(&mg, TOKEN);
    (file, mg, api)
}

fn assert_served(mg: &MediaGate, bucket: &str, body: &str) {
    let r = get(&mg.path_url("s3", bucket, "a.txt"), &[]);
    assert_eq!(r.status, 200, "s3://{bucket}/a.txt: {}", r.describe());
    assert_eq!(r.text(), body);
}

#[test]
fn sighup_applies_an_integration_added_to_the_file_by_hand() {
    let Some(s3) = s3_peer() else { return };
    let (bucket, added) = (unique_bucket("hup-steady"), unique_bucket("hup-added"));
    let (file, mg, api) = reloading("0s", &s3, &bucket);
    s3.seed(&added, &[("a.txt", b"added by hand")]);
    file.replace(&format!("{}{}", file.text(), s3.integration("byhand", &[&added], "")));
    assert!(api.listed("byhand").is_none(), "with polling off, only the signal reloads");

    mg.signal("HUP");
    assert!(
        wait_until(WAIT, || api.listed("byhand").is_some()),
        "SIGHUP did not apply the file:\n{}",
        mg.stderr_text()
    );
    assert_served(&mg, &added, "added by hand");
    assert_served(&mg, &bucket, "steady");
    assert!(wait_until(WAIT, || api.metric("mediagate_config_reloads_total{outcome=\"ok\"}") == 1.0));
}

#[test]
fn a_sighup_right_after_start_up_reloads_instead_of_ending_the_process() {
    let file = ConfigFile::new(&server_config("0s", &[&admin_section(TOKEN)]));
    let mut mg = MediaGate::start_file(&file.path, &[]);
    // At once: the `listening` line tells scripts that all is up, signals included.
    mg.signal("HUP");
    let heard = |mg: &MediaGate| mg.logs().iter().any(|l| l["message"] == "SIGHUP: the config file is unchanged");
    wait_until(WAIT, || heard(&mg) || !mg.is_running());
    assert!(mg.is_running(), "a SIGHUP after the listening line ended mediagate:\n{}", mg.stderr_text());
    assert!(heard(&mg), "the SIGHUP was not heard:\n{}", mg.stderr_text());
}

#[test]
fn a_changed_file_is_picked_up_without_a_signal() {
    let Some(s3) = s3_peer() else { return };
    let (bucket, added) = (unique_bucket("poll-steady"), unique_bucket("poll-added"));
    let (file, mg, api) = reloading("100ms", &s3, &bucket);
    s3.seed(&added, &[("a.txt", b"seen by polling")]);
    file.replace(&format!("{}{}", file.text(), s3.integration("polled", &[&added], "")));
    assert!(wait_until(WAIT, || api.listed("polled").is_some()), "the change was not seen:\n{}", mg.stderr_text());
    assert_served(&mg, &added, "seen by polling");
}

/// The messages of the reload's error log lines so far.
fn reload_errors(mg: &MediaGate) -> Vec<String> {
    mg.logs()
        .into_iter()
        .filter(|l| l["level"] == "ERROR" && l["target"] == "mediagate::control::reload")
        .filter_map(|l| l["message"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn a_broken_file_keeps_the_running_config_and_says_why_until_it_is_fixed() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("broken-steady");
    let (file, mg, api) = reloading("100ms", &s3, &bucket);
    let good = file.text();
    let errors = "mediagate_config_reloads_total{outcome=\"error\"}";
    let last_error = || api.readyz()["config"]["last_reload_error"].clone();

    let broken_files = [
        ("a TOML syntax error", format!("{good}\nthis line is [ not toml\n"), vec!["line"]),
        (
            "valid TOML with bad values",
            format!("{good}\n[[integration]]\nname = \"broken\"\ntype = \"local\"\nroot = 42\ncolour = \"blue\"\n"),
            vec!["root", "colour"],
        ),
    ];
    for (n, (what, text, named)) in broken_files.iter().enumerate() {
        let logged_before = reload_errors(&mg).len();
        file.replace(text);
        let names_all = || last_error().as_str().is_some_and(|shown| named.iter().all(|w| shown.contains(w)));
        assert!(wait_until(WAIT, names_all), "{what}: /readyz does not name {named:?}: {}", last_error());
        assert!(wait_until(WAIT, || api.metric(errors) == (n + 1) as f64), "{what}: {errors} did not count it");
        assert!(
            wait_until(WAIT, || {
                let logged = reload_errors(&mg)[logged_before..].join("\n");
                named.iter().all(|w| logged.contains(w))
            }),
            "{what}: not every problem is logged:\n{}",
            mg.stderr_text()
        );
        assert_served(&mg, &bucket, "steady");
        assert!(api.listed("broken").is_none(), "{what}: part of a broken file was applied");
        assert_eq!(api.list().len(), 1, "{what}: the running config is kept");
    }

    let added = unique_bucket("broken-fixed");
    s3.seed(&added, &[("a.txt", b"fixed")]);
    file.replace(&format!("{good}{}", s3.integration("fixed", &[&added], "")));
    assert!(wait_until(WAIT, || last_error().is_null()), "fixing the file did not clear last_reload_error");
    assert!(api.listed("fixed").is_some());
    assert_served(&mg, &added, "fixed");
    assert_eq!(api.metric(errors), 2.0, "fixing is not an error");
}

/// The forms a SAS's signature can take in text: as sent, and decoded.
fn sas_signature(sas: &str) -> Vec<String> {
    let sig = sas.split('&').find_map(|p| p.strip_prefix("sig=")).expect("a SAS has sig=");
    let decoded = sig.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
    vec![sas.to_owned(), sig.to_owned(), decoded]
}

#[test]
fn no_secret_appears_in_any_answer_metric_or_log_line() {
    let Some(s3) = s3_peer() else { return };
    let Some(az) = azure_peer() else { return };
    let wrong_secret = "nosecret-wrong-s3-secret-31d7a";
    let var_secret = "nosecret-var-secret-value-9c2e4";
    let reload_secret = "nosecret-reload-secret-57b1f";
    let buckets: Vec<String> = (0..4).map(|i| unique_bucket(&format!("nosecret-{i}"))).collect();
    for b in &buckets {
        s3.seed(b, &[("a.txt", b"x")]);
    }
    let containers: Vec<String> = (0..4).map(|i| unique_bucket(&format!("nosecret-az-{i}"))).collect();
    for c in &containers {
        az.create_container(c);
        az.put_blob(c, "a.txt", b"x".to_vec());
    }
    let sas_rl = az.container_sas(&containers[1], "rl");
    let sas_r = az.container_sas(&containers[2], "r");
    let tampered = sas_rl.replacen("sig=", "sig=AAAA", 1);

    let from_var = s3.integration_at("fromvar", &s3.host, s3.port, &[&buckets[0]], "${MEDIAGATE_APITEST_NOSECRET}", "");
    let file = ConfigFile::new(&server_config("100ms", &[&admin_section(TOKEN), &from_var]));
    let mg = MediaGate::start_file(&file.path, &[("MEDIAGATE_APITEST_NOSECRET", var_secret)]);
    let api = AdminApi::of(&mg, TOKEN);
    let mut said: Vec<(String, String)> = Vec::new();
    let mut keep = |what: &str, r: common::TestResponse| said.push((what.to_owned(), format!("{r:?}\n{}", r.text())));

    let azure =
        |c: &str, key: &str, value: &str| json!({"type": "azure-blob", "storage_url": az.container_url(c), key: value});
    let mut no_secret = s3_json(&s3, &[&buckets[3]], "");
    no_secret.as_object_mut().expect("object").remove("secret_access_key");
    let puts = [
        ("good", s3_json(&s3, &[&buckets[1]], &s3.secret_key)),
        ("bad", s3_json(&s3, &[&buckets[2]], wrong_secret)),
        ("unfinished", no_secret),
        ("azkey", azure(&containers[0], "account_key", &az.key)),
        ("azsas", azure(&containers[1], "sas_token", &sas_rl)),
        ("azweak", azure(&containers[2], "sas_token", &sas_r)),
        ("aztampered", azure(&containers[3], "sas_token", &tampered)),
    ];
    for (name, body) in &puts {
        keep(&format!("PUT {name}"), api.put(name, body));
    }
    let mut wrong_kind = s3_json(&s3, &[&unique_bucket("nosecret-kind")], wrong_secret);
    wrong_kind["port"] = json!("x");
    keep("PUT wrong kind", api.put("kinds", &wrong_kind));
    keep("PUT conflict", api.put("clash", &s3_json(&s3, &[&buckets[2]], wrong_secret)));
    keep(
        "PUT other name",
        api.put("named", &json!({"name": "other", "type": "s3", "secret_access_key": wrong_secret})),
    );
    keep("PUT secret of the wrong kind", api.put("kind2", &json!({"type": "s3", "secret_access_key": [wrong_secret]})));
    for (name, _) in &puts {
        keep(&format!("test {name}"), api.test(name));
    }
    keep("test fromvar", api.test("fromvar"));
    keep("list", api.get("/api/integrations"));
    keep("one", api.get("/api/integrations/azsas"));
    keep("wrong token", api.call_as(Method::GET, "/api/integrations", None, Some("not-the-token-0123456789")));
    for (i, b) in buckets.iter().enumerate() {
        keep(&format!("media s3 {i}"), get(&mg.path_url("s3", b, "a.txt"), &[]));
    }
    for (i, c) in containers.iter().enumerate() {
        keep(&format!("media az {i}"), get(&mg.url(&format!("/az/{}/{c}/a.txt", az.account)), &[]));
    }

    // Reload errors on the lines of secrets: a syntax error, a bad value.
    let good = file.text();
    let secret_line =
        |rest: &str| format!("\n[[integration]]\nname = \"hand\"\ntype = \"s3\"\nbuckets = [\"q\"]\n{rest}\n");
    for broken in [
        secret_line(&format!("secret_access_key = \"{reload_secret}")),
        secret_line(&format!("secret_access_key = \"{reload_secret}\" \"{reload_secret}\"")),
        secret_line(&format!("secret_access_key = [\"{reload_secret}\"]")),
    ] {
        let errors = api.metric("mediagate_config_reloads_total{outcome=\"error\"}");
        file.replace(&format!("{good}{broken}"));
        let counted = wait_until(WAIT, || api.metric("mediagate_config_reloads_total{outcome=\"error\"}") > errors);
        assert!(counted, "the broken file was not reloaded:\n{}", mg.stderr_text());
        keep("readyz after a broken reload", api.call_as(Method::GET, "/readyz", None, None));
        keep("PUT on a broken file", api.put("late", &s3_json(&s3, &[&unique_bucket("nosecret-late")], wrong_secret)));
    }
    file.replace(&good);
    assert!(wait_until(WAIT, || api.readyz()["config"]["last_reload_error"].is_null()));
    keep("metrics", api.get("/metrics"));
    keep("readyz", api.call_as(Method::GET, "/readyz", None, None));
    keep("cache", api.get("/api/cache"));
    keep("delete", api.delete("azsas"));
    let last_logged = || mg.logs().iter().any(|l| l["action"] == "delete" && l["integration"] == "azsas");
    assert!(wait_until(WAIT, last_logged), "the session's last audit line did not come:\n{}", mg.stderr_text());
    said.push(("stdout".to_owned(), mg.stdout_text()));
    said.push(("stderr".to_owned(), mg.stderr_text()));

    let mut secrets: Vec<(&str, String)> = vec![
        ("the S3 secret", s3.secret_key.clone()),
        ("a wrong S3 secret", wrong_secret.to_owned()),
        ("a ${VAR} value", var_secret.to_owned()),
        ("a secret in a broken file", reload_secret.to_owned()),
        ("the Azure account key", az.key.clone()),
        ("the admin token", TOKEN.to_owned()),
    ];
    for sas in [&sas_rl, &sas_r, &tampered] {
        secrets.extend(sas_signature(sas).into_iter().map(|s| ("a SAS", s)));
    }
    let answered_ok = said.iter().any(|(what, text)| what == "PUT good" && text.contains("\"status\":\"ok\""));
    assert!(answered_ok, "the session did not work: {said:#?}");
    for (what, text) in &said {
        for (kind, secret) in &secrets {
            assert!(!text.contains(secret.as_str()), "{kind} appears in {what}:\n{text}");
        }
    }
    assert_file_holds_secrets(&file.path, &[&s3.secret_key, wrong_secret]);
}

/// The file itself does hold the secrets (the sweep above is not vacuous).
fn assert_file_holds_secrets(path: &Path, secrets: &[&str]) {
    let text = std::fs::read_to_string(path).expect("reading the config");
    for s in secrets {
        assert!(text.contains(s), "the config file lacks a secret it should hold");
    }
}
