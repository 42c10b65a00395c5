//! The admin page (CONTRACT.md section 6, `GET /` on the admin listener) used
//! as a person would, in headless Chromium driven by playwright-core
//! (`tests/browser/admin.mjs`): enter the token, read the list, add an
//! integration through the form built from `GET /api/types`, Save, Test
//! connection, edit without retyping the secret, Delete, and purge the cache.
//! The assertions are on the text the page shows.
//!
//! Needs the S3 peer (s3s-fs) and the browser tools that `scripts/test.sh`
//! starts and sets; missing: skipped, or a failure under `CI=true`.
//!
//! Screenshots (CI artifacts): `target/screenshots/admin-list.png` and
//! `target/screenshots/admin-failing-test.png`; with `MEDIAGATE_WRITE_SCREENSHOTS=1`
//! also written to `docs/screenshots/`, the copies the README shows.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::browser::{browser, root};
use common::{MediaGate, config, s3_peer, toml_str, unique_bucket};
use serde_json::{Value, json};

const TOKEN: &str = "admin-page-test-token-0123456789";
const WRONG_SECRET: &str = "not-the-secret-of-the-admin-page-test";
const MARKER: &str = "********";

/// `[admin]` on a port of its own (parallel tests do not collide), with the token.
fn admin_section() -> String {
    format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = {}\n", toml_str(TOKEN))
}

/// The admin listener's URL, from the `mediagate admin API listening on ...`
/// line (printed before the media listener's, so it is there once `start` returns).
fn admin_url(mg: &MediaGate) -> String {
    let out = mg.stdout_text();
    out.lines()
        .find_map(|l| l.trim().strip_prefix("mediagate admin API listening on "))
        .map(|url| url.trim().trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("no `mediagate admin API listening on` line:\n{out}\n{}", mg.stderr_text()))
}

// The steps of tests/browser/admin.mjs.
fn fill(selector: &str, value: &str) -> Value {
    json!({ "fill": selector, "value": value })
}
fn select(selector: &str, value: &str) -> Value {
    json!({ "select": selector, "value": value })
}
fn press(button: &str, within: &str) -> Value {
    json!({ "press": button, "in": within })
}
fn click_text(text: &str, within: &str) -> Value {
    json!({ "clickText": text, "in": within })
}
fn wait_text(text: &str, within: &str) -> Value {
    json!({ "waitText": text, "in": within })
}
fn wait_no_text(text: &str, within: &str) -> Value {
    json!({ "waitNoText": text, "in": within })
}
fn read(selector: &str, name: &str) -> Value {
    json!({ "read": selector, "as": name })
}
/// Screenshots go to `target/screenshots/` (CI artifacts); with
/// `MEDIAGATE_WRITE_SCREENSHOTS=1` also to `docs/screenshots/`, the README's copies.
fn screenshot(name: &str) -> Value {
    let mut paths: Vec<PathBuf> = vec![root().join("target/screenshots").join(name)];
    if std::env::var("MEDIAGATE_WRITE_SCREENSHOTS").as_deref() == Ok("1") {
        paths.push(root().join("docs/screenshots").join(name));
    }
    json!({ "screenshot": paths })
}

/// The form field of `key` (its `name` attribute is the config key).
fn field(key: &str) -> String {
    format!("#form [name=\"{key}\"]")
}

/// The text `name` the page showed (recorded by a `read` step).
fn shown<'a>(report: &'a Value, name: &str) -> &'a str {
    report["reads"][name].as_str().unwrap_or_else(|| panic!("no {name} in the report: {report:#}"))
}

/// The list's row of integration `name`: its lines, from the one that starts
/// with the name to the blank line between rows.
fn row(list: &str, name: &str) -> String {
    let lines: Vec<&str> = list.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.trim_start().starts_with(name))
        .unwrap_or_else(|| panic!("no row for {name:?} in the list:\n{list}"));
    lines[at..].iter().take_while(|l| !l.trim().is_empty()).copied().collect::<Vec<_>>().join("\n")
}

#[test]
fn a_person_adds_tests_edits_and_deletes_integrations_on_the_admin_page() {
    let Some(s3) = s3_peer() else { return };
    let Some(b) = browser() else { return };
    // "photos" has a wrong secret; "gallery" is added through the page; "demo"
    // (a local directory) has objects in the cache.
    let photos_bucket = unique_bucket("photos");
    let gallery_bucket = unique_bucket("gallery");
    s3.seed(&photos_bucket, &[("hello.txt", b"hello from photos")]);
    s3.seed(&gallery_bucket, &[("hello.txt", b"hello from the gallery")]);

    let photos = s3.integration_at("photos", &s3.host, s3.port, &[&photos_bucket], WRONG_SECRET, "");
    let demo = common::local_integration("demo", &root().join("examples/media"), &["demo"]);
    let mg = MediaGate::start(&config(&[&admin_section(), &photos, &demo]));
    let admin = admin_url(&mg);
    // Two misses and a hit, for the cache figures.
    for key in ["testsrc.png", "testsrc.png", "gradient.jpg"] {
        let r = common::get(&mg.path_url("local", "demo", key), &[]);
        assert_eq!(r.status, 200, "{}", r.describe());
    }

    // The page and its files are public and carry the strict CSP.
    for path in ["/", "/assets/app.js", "/assets/app.css"] {
        let r = common::get(&format!("{admin}{path}"), &[]);
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{path}: CSP {csp:?}");
    }

    let steps = vec![
        // The token, asked once; a wrong one is refused with a clear message.
        wait_text("Admin token", "#login"),
        fill("#token", "not-the-token"),
        press("Sign in", "#login"),
        wait_text("not accepted", "#login"),
        read("#login", "refused"),
        fill("#token", TOKEN),
        press("Sign in", "#login"),
        wait_text("photos", "#list"),
        read("#list", "list_at_start"),
        read("#figures", "cache"),
        // Add an integration through the form, with the right keys.
        press("Add integration", "#integrations"),
        select(&field("type"), "s3"),
        fill(&field("name"), "gallery"),
        fill(&field("endpoint"), &s3.host),
        select(&field("tls"), if s3.tls { "true" } else { "false" }),
        fill(&field("region"), &s3.region),
        select(&field("addressing"), "path"),
        fill(&field("access_key_id"), &s3.access_key),
        fill(&field("secret_access_key"), &s3.secret_key),
        json!({ "unlabelled": "body", "as": "unlabelled" }),
        // A port that is not a number: 400, nothing saved, the problem by its field, the form kept.
        fill(&field("port"), "not-a-port"),
        fill(&field("buckets"), &gallery_bucket),
        press("Save", "#editor"),
        wait_text("Not saved", "#result"),
        read("#result", "bad_port"),
        read("#form .field[data-key=\"port\"] .problem", "port_problem"),
        json!({ "readValue": field("secret_access_key"), "as": "secret_kept" }),
        // A bucket another integration serves: 409, nothing saved.
        fill(&field("port"), &s3.port.to_string()),
        fill(&field("buckets"), &photos_bucket),
        press("Save", "#editor"),
        wait_text("Not saved", "#result"),
        read("#result", "conflict"),
        // Right at last.
        fill(&field("buckets"), &gallery_bucket),
        press("Save", "#editor"),
        wait_text("Created", "#result"),
        read("#result", "created"),
        json!({ "readValue": field("secret_access_key"), "as": "secret_after_save" }),
        json!({ "readAttr": field("secret_access_key"), "attr": "placeholder", "as": "secret_placeholder" }),
        press("Test connection", "#editor"),
        wait_text("Connection test passed", "#result"),
        read("#result", "gallery_test"),
        press("Close", "#editor"),
        wait_text("gallery", "#list"),
        // The failing one, tested on demand.
        click_text("photos", "#list"),
        press("Test connection", "#editor"),
        wait_text("Connection test failed", "#result"),
        read("#result", "photos_test"),
        wait_text("failing", "#list"),
        read("#list", "list"),
        press("Close", "#editor"),
        screenshot("admin-list.png"),
        click_text("photos", "#list"),
        press("Test connection", "#editor"),
        wait_text("Connection test failed", "#result"),
        screenshot("admin-failing-test.png"),
        // Saved again without retyping the secret: the marker keeps the stored (wrong) one.
        press("Save", "#editor"),
        wait_text("Saved", "#result"),
        read("#result", "resaved"),
        // Fixed by typing the right secret.
        fill(&field("secret_access_key"), &s3.secret_key),
        press("Save", "#editor"),
        wait_text("Connection test passed", "#result"),
        read("#result", "fixed"),
        wait_no_text("failing", "#list tbody"),
        read("#list", "list_fixed"),
        // Delete one (the page asks first).
        click_text("gallery", "#list"),
        press("Delete", "#editor"),
        wait_text("Deleted", "#list-status"),
        wait_no_text("gallery", "#list tbody"),
        read("#list", "list_after_delete"),
        read("#list-status", "deleted"),
        // Purge from the cache.
        json!({ "clickText": "Every locator starting with", "in": "#purge" }),
        fill("#purge-value", "local://demo/"),
        press("Purge", "#purge"),
        wait_text("Purged", "#purge-status"),
        read("#purge-status", "purged"),
    ];
    let failure = root().join("target/screenshots/admin-failure.png");
    let job = json!({ "url": format!("{admin}/"), "steps": steps, "failureScreenshot": failure });
    let report = b.run("admin.mjs", &job, Duration::from_secs(240));
    for name in [
        "refused",
        "list_at_start",
        "cache",
        "bad_port",
        "port_problem",
        "conflict",
        "created",
        "gallery_test",
        "photos_test",
        "list",
        "resaved",
        "fixed",
        "list_after_delete",
        "deleted",
        "purged",
    ] {
        eprintln!("--- {name}:\n{}", shown(&report, name));
    }

    // No script error, nothing the Content-Security-Policy refused.
    let console = report["console"].as_array().expect("console lines");
    for line in console.iter().filter_map(Value::as_str) {
        assert!(!line.starts_with("pageerror"), "the page threw: {line}");
        assert!(!line.contains("Content Security Policy"), "the CSP refused something: {line}");
    }

    assert!(shown(&report, "refused").contains("not accepted"), "{report:#}");
    // At start: the wrong secret was found by the start-up test; the local one is fine.
    let start = shown(&report, "list_at_start");
    let photos_row = row(start, "photos");
    assert!(photos_row.contains("s3") && photos_row.contains(&format!("buckets: {photos_bucket}")), "{start}");
    assert!(photos_row.contains("failing") && photos_row.contains("SignatureDoesNotMatch"), "{start}");
    let demo_row = row(start, "demo");
    assert!(demo_row.contains("local") && demo_row.contains("ok") && demo_row.contains("buckets: demo"), "{start}");
    // The cache figures (text-transform makes the terms upper case), after 2 misses and 1 hit.
    let cache: Vec<&str> = shown(&report, "cache").lines().map(str::trim).collect();
    let figure = |term: &str| {
        let at =
            cache.iter().position(|l| l.eq_ignore_ascii_case(term)).unwrap_or_else(|| panic!("no {term}: {cache:?}"));
        cache[at + 1]
    };
    assert_eq!(figure("entries"), "2", "{cache:?}");
    assert_eq!(figure("hits"), "1", "{cache:?}");
    assert_eq!(figure("misses"), "2", "{cache:?}");
    assert_eq!(figure("hit ratio"), "33.3 %", "{cache:?}");
    assert!(figure("stored").ends_with("of 256.0 MiB"), "{cache:?}");

    assert_eq!(shown(&report, "unlabelled"), "", "form controls without a label");
    let bad_port = shown(&report, "bad_port");
    assert!(
        bad_port.contains("Not saved") && bad_port.contains("bad_config") && bad_port.contains("port"),
        "{bad_port}"
    );
    assert!(!shown(&report, "port_problem").is_empty(), "no problem shown by the port field: {report:#}");
    assert_eq!(shown(&report, "secret_kept"), s3.secret_key, "the form lost what was typed");
    let conflict = shown(&report, "conflict");
    assert!(
        conflict.contains("Not saved") && conflict.contains("conflict") && conflict.contains("photos"),
        "{conflict}"
    );

    // Saved with the right keys: ok, and the secret is write-only from then on.
    let created = shown(&report, "created");
    assert!(created.contains("Status: ✓ ok") && created.contains("Connection test passed"), "{created}");
    assert_eq!(shown(&report, "secret_after_save"), "", "the secret came back into the form");
    assert!(shown(&report, "secret_placeholder").contains(MARKER), "{report:#}");
    assert!(shown(&report, "gallery_test").contains("Connection test passed"), "{report:#}");

    // The wrong secret: failing, with the storage's own code.
    let photos_test = shown(&report, "photos_test");
    assert!(photos_test.contains("Connection test failed: SignatureDoesNotMatch"), "{photos_test}");
    let list = shown(&report, "list");
    assert!(row(list, "photos").contains("failing"), "{list}");
    assert!(list.contains("SignatureDoesNotMatch"), "{list}");
    assert!(row(list, "gallery").contains("ok"), "{list}");
    assert!(list.contains(&format!("buckets: {gallery_bucket}")), "{list}");

    // The marker kept the stored secret (still the wrong one, not missing).
    let resaved = shown(&report, "resaved");
    assert!(resaved.contains("failing") && resaved.contains("SignatureDoesNotMatch"), "{resaved}");
    assert!(!resaved.contains("incomplete"), "{resaved}");
    let fixed = shown(&report, "fixed");
    assert!(fixed.contains("Status: ✓ ok"), "{fixed}");
    assert!(row(shown(&report, "list_fixed"), "photos").contains("ok"), "{report:#}");
    // ... and media flows through it with no restart.
    let media = common::get(&mg.path_url("s3", &photos_bucket, "hello.txt"), &[]);
    assert_eq!(media.status, 200, "{}", media.describe());
    assert_eq!(&media.body[..], b"hello from photos");

    // Deleted after a confirmation.
    let dialogs = report["dialogs"].as_array().expect("dialogs");
    assert!(dialogs.iter().any(|d| d.as_str().is_some_and(|d| d.starts_with("confirm") && d.contains("gallery"))));
    let after = shown(&report, "list_after_delete");
    assert!(!after.contains("gallery") && after.contains("photos"), "{after}");
    assert!(shown(&report, "deleted").contains("Deleted the integration “gallery”"), "{report:#}");
    assert_eq!(shown(&report, "purged"), "Purged 2 cached objects for prefix local://demo/.", "{report:#}");

    for name in ["admin-list.png", "admin-failing-test.png"] {
        let shot = root().join("target/screenshots").join(name);
        let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{}: {e}", shot.display()));
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{}", shot.display());
        eprintln!("admin page screenshot: {}", shot.display());
    }
}

/// The page's three files as committed.
fn page_file(name: &str) -> String {
    let path = root().join("src/admin/page").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() {
    let html = page_file("index.html");
    let js = page_file("app.js");
    let css = page_file("app.css");
    // The CSP (script-src 'self'; style-src 'self') would refuse inline code.
    let lower = html.to_lowercase();
    assert!(!lower.contains("<style"), "an inline <style> in index.html");
    assert!(!lower.contains(" style="), "a style attribute in index.html");
    for (i, tag) in lower.match_indices("<script") {
        let end = lower[i..].find('>').map(|e| i + e).expect("an unclosed <script");
        assert!(lower[i..end].contains(" src="), "an inline <script> in index.html: {tag}...");
        assert!(lower[end + 1..].starts_with("</script>"), "a <script src> with a body in index.html");
    }
    let handlers = ["onclick=", "onload=", "onsubmit=", "oninput=", "onchange=", "onerror="];
    for handler in handlers {
        assert!(!lower.contains(handler), "an inline {handler} handler in index.html");
    }
    // Nothing from another origin, no framework, no HTML built from strings.
    for (name, text) in [("index.html", &html), ("app.js", &js), ("app.css", &css)] {
        for far in ["http://", "https://", "//cdn", "@import"] {
            assert!(!text.contains(far), "{name} refers to {far}...");
        }
    }
    for risky in ["innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write"] {
        assert!(!js.contains(risky), "app.js uses {risky}");
    }
    assert!(!js.contains(".setAttribute('style'"), "app.js sets a style attribute (refused by the CSP)");
}

/// The config keys shown as fields in `text` (the visible text of the
/// form's key fields: each field's label names its key).
fn keys_shown(text: &str, candidates: &[&str]) -> Vec<String> {
    // The badges follow the key with no space between (`access_key_idREQUIRED`).
    let tokens: Vec<&str> = text
        .split_whitespace()
        .map(|t| t.trim_end_matches("SECRET").trim_end_matches("REQUIRED"))
        .map(|t| t.trim_matches(|c: char| "(),.:;".contains(c)))
        .collect();
    candidates.iter().filter(|k| tokens.contains(k)).map(|k| (*k).to_owned()).collect()
}

/// The label line of `key`'s field in `text`.
fn label_line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().any(|t| t.starts_with(key) && keys_shown(t, &[key]).len() == 1))
        .unwrap_or_else(|| panic!("no field of {key} in:\n{text}"))
}

const S3_SOURCE_KEYS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "secret_access_key_file",
    "session_token",
    "session_token_file",
    "role_arn",
    "web_identity_token_file",
    "sts_endpoint",
    "credentials",
];
const AZURE_SOURCE_KEYS: &[&str] = &[
    "account_key",
    "account_key_file",
    "sas_token",
    "sas_token_file",
    "tenant_id",
    "client_id",
    "client_secret",
    "client_secret_file",
    "authority_host",
    "credential",
];

#[test]
fn the_form_offers_each_credential_source_with_its_own_fields_and_saves_only_those() {
    let Some(b) = browser() else { return };
    // An Azure service principal set up in the file; its storage and
    // Entra ID are nowhere (its connection test fails, which changes nothing here).
    let sp = "[[integration]]\nname = \"az-sp\"\ntype = \"azure-blob\"\n\
              storage_url = \"https://127.0.0.1:9/devstoreaccount1/media\"\n\
              tenant_id = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\nclient_id = \"app-client-id\"\n\
              client_secret = \"sp-secret-kept\"\nauthority_host = \"https://127.0.0.1:9\"\n";
    let mg = MediaGate::start(&config(&[&admin_section(), sp]));
    let admin = admin_url(&mg);
    let source = |name: &str| select("#f-source", name);
    let fields = |name: &str| read("#key-fields", name);
    let mut steps = vec![
        wait_text("Admin token", "#login"),
        fill("#token", TOKEN),
        press("Sign in", "#login"),
        wait_text("az-sp", "#list"),
        // S3: static keys first, then each other source.
        press("Add integration", "#integrations"),
        select(&field("type"), "s3"),
        json!({ "readValue": "#f-source", "as": "s3_default" }),
        fields("s3_static"),
        fill(&field("name"), "irsa"),
        fill(&field("endpoint"), "127.0.0.1"),
        fill(&field("port"), "9"),
        select(&field("tls"), "false"),
        fill(&field("buckets"), "irsa-media"),
        // Typed for static keys, then left for another source: never sent.
        fill(&field("access_key_id"), "AKIA-LEFT-BEHIND"),
        fill(&field("secret_access_key"), "left-behind-secret"),
    ];
    for name in ["env", "instance", "web-identity"] {
        steps.push(source(name));
        steps.push(fields(&format!("s3_{name}")));
    }
    steps.extend([
        fill(&field("role_arn"), "arn:aws:iam::123456789012:role/media-reader"),
        fill(&field("web_identity_token_file"), "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
        fill(&field("sts_endpoint"), "http://127.0.0.1:9"),
        json!({ "unlabelled": "#form", "as": "unlabelled" }),
        press("Save", "#editor"),
        wait_text("Created", "#result"),
        read("#result", "irsa_saved"),
        json!({ "readValue": "#f-source", "as": "irsa_source_after_save" }),
        // Azure: each source's own fields.
        press("Add integration", "#integrations"),
        select(&field("type"), "azure-blob"),
        json!({ "readValue": "#f-source", "as": "azure_default" }),
        fields("azure_account-key"),
    ]);
    for name in ["sas", "service-principal", "workload-identity", "managed-identity"] {
        steps.push(source(name));
        steps.push(fields(&format!("azure_{name}")));
    }
    steps.extend([
        // The service principal of the file: its source chosen, its secret stored.
        press("Close", "#editor"),
        click_text("az-sp", "#list"),
        wait_text("Edit integration", "#editor"),
        json!({ "readValue": "#f-source", "as": "sp_source" }),
        fields("sp_fields"),
        json!({ "readAttr": field("client_secret"), "attr": "placeholder", "as": "sp_secret_placeholder" }),
        json!({ "readValue": field("client_id"), "as": "sp_client_id" }),
        press("Save", "#editor"),
        wait_text("Saved", "#result"),
        read("#result", "sp_saved"),
        screenshot("admin-credential-sources.png"),
    ]);
    let failure = root().join("target/screenshots/admin-sources-failure.png");
    let job = json!({ "url": format!("{admin}/"), "steps": steps, "failureScreenshot": failure });
    let report = b.run("admin.mjs", &job, Duration::from_secs(240));
    let console = report["console"].as_array().expect("console lines");
    for line in console.iter().filter_map(Value::as_str) {
        assert!(!line.starts_with("pageerror"), "the page threw: {line}");
        assert!(!line.contains("Content Security Policy"), "the CSP refused something: {line}");
    }
    assert_eq!(shown(&report, "unlabelled"), "", "form controls without a label");

    // Each S3 source shows its own keys and none of the others'; the
    // selector key (`credentials`) is the source selector, never a field.
    assert_eq!(shown(&report, "s3_default"), "static");
    let s3 = |name: &str| keys_shown(shown(&report, &format!("s3_{name}")), S3_SOURCE_KEYS);
    assert_eq!(
        s3("static"),
        ["access_key_id", "secret_access_key", "secret_access_key_file", "session_token", "session_token_file"]
    );
    assert_eq!(s3("env"), Vec::<String>::new());
    assert_eq!(s3("instance"), Vec::<String>::new());
    assert_eq!(s3("web-identity"), ["role_arn", "web_identity_token_file", "sts_endpoint"]);
    for name in ["static", "web-identity"] {
        let text = shown(&report, &format!("s3_{name}"));
        assert!(text.contains("endpoint") && text.contains("buckets"), "common keys with every source: {text}");
    }
    let static_text = shown(&report, "s3_static");
    assert!(label_line(static_text, "access_key_id").to_lowercase().contains("required"), "{static_text}");

    // Saved through the form: exactly the web identity's keys, with `credentials` set.
    assert!(shown(&report, "irsa_saved").contains("Created “irsa”"), "{report:#}");
    assert_eq!(shown(&report, "irsa_source_after_save"), "web-identity");
    let api = common::admin::AdminApi::of(&mg, TOKEN);
    let irsa = api.get("/api/integrations/irsa");
    assert_eq!(irsa.status, 200, "{}", irsa.describe());
    let irsa = irsa.json();
    let keys: Vec<&str> = irsa
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .filter(|k| !["status", "last_test", "problems", "credential_source", "credentials_expire"].contains(k))
        .collect();
    let mut expected = vec![
        "name",
        "type",
        "endpoint",
        "port",
        "tls",
        "buckets",
        "credentials",
        "role_arn",
        "web_identity_token_file",
        "sts_endpoint",
    ];
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    expected.sort_unstable();
    assert_eq!(keys_sorted, expected, "{irsa:#}");
    assert_eq!(irsa["credentials"], "web-identity", "{irsa:#}");
    assert_eq!(irsa["role_arn"], "arn:aws:iam::123456789012:role/media-reader", "{irsa:#}");
    assert_eq!(irsa["credential_source"], "web-identity", "{irsa:#}");

    // Each Azure source shows its own keys only, each needed where its source needs it.
    assert_eq!(shown(&report, "azure_default"), "account-key");
    let az = |name: &str| keys_shown(shown(&report, &format!("azure_{name}")), AZURE_SOURCE_KEYS);
    assert_eq!(az("account-key"), ["account_key", "account_key_file"]);
    assert_eq!(az("sas"), ["sas_token", "sas_token_file"]);
    assert_eq!(
        az("service-principal"),
        ["tenant_id", "client_id", "client_secret", "client_secret_file", "authority_host"]
    );
    assert_eq!(az("workload-identity"), ["tenant_id", "client_id", "authority_host"]);
    assert_eq!(az("managed-identity"), ["client_id"]);
    for name in ["account-key", "managed-identity"] {
        assert!(shown(&report, &format!("azure_{name}")).contains("storage_url"), "{report:#}");
    }
    let sp_text = shown(&report, "azure_service-principal");
    let mi_text = shown(&report, "azure_managed-identity");
    assert!(label_line(sp_text, "client_id").to_lowercase().contains("required"), "{sp_text}");
    assert!(!label_line(mi_text, "client_id").to_lowercase().contains("required"), "{mi_text}");

    // Editing the service principal: its source preselected, its secret kept by the marker.
    assert_eq!(shown(&report, "sp_source"), "service-principal");
    assert_eq!(
        keys_shown(shown(&report, "sp_fields"), AZURE_SOURCE_KEYS),
        ["tenant_id", "client_id", "client_secret", "client_secret_file", "authority_host"]
    );
    assert!(shown(&report, "sp_secret_placeholder").contains(MARKER), "{report:#}");
    assert_eq!(shown(&report, "sp_client_id"), "app-client-id");
    assert!(shown(&report, "sp_saved").contains("Saved “az-sp”"), "{report:#}");
    let sp = api.get("/api/integrations/az-sp").json();
    assert_eq!(sp["client_secret"], MARKER, "the stored secret was kept: {sp:#}");
    assert_eq!(sp["credential_source"], "service-principal", "{sp:#}");
    assert!(sp.get("credential").is_none(), "a service principal has no selector key: {sp:#}");
}
