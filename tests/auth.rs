//! Signed URLs end to end (CONTRACT.md section 5): `mediagate sign`, both
//! request forms, key rotation, the README's Python and JavaScript examples,
//! and every kind of bad signature getting its `403` and code.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{MediaGate, config, encode_component, encode_key, get, head, local_integration, toml_str};

const K1: &str = "first-url-signing-secret-0123";
const K2: &str = "second-url-signing-secret-4567";
const BASE: &str = "https://media.example.com";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn auth(keys: &[(&str, &str)], extra: &str) -> String {
    let mut t = format!("[auth]\nmode = \"signed-url\"\n{extra}");
    for (id, secret) in keys {
        t.push_str(&format!("[[auth.keys]]\nid = {}\nsecret = {}\n", toml_str(id), toml_str(secret)));
    }
    t
}

/// A local root with bucket `b` holding `files`.
fn media(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (key, bytes) in files {
        let path = dir.path().join("b").join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    dir
}

/// mediagate with `[server] public_base_url`, signed-url auth with `keys`, over `root`.
fn start(root: &Path, keys: &[(&str, &str)], auth_extra: &str) -> MediaGate {
    let server = format!("public_base_url = \"{BASE}\"\n");
    MediaGate::start(&config(&[&server, &auth(keys, auth_extra), &local_integration("files", root, &["b"])]))
}

/// `?exp=..&kid=..&sig=..` for `local://b/<key>`, signed with `secret`.
fn signature(key: &str, secret: &str, kid: &str, exp: u64) -> String {
    let sig = mediagate::auth::sign(secret.as_bytes(), &format!("/local/b/{}", encode_key(key)), exp);
    format!("exp={exp}&kid={kid}&sig={sig}")
}

fn path_url(mg: &MediaGate, key: &str, query: &str) -> String {
    mg.url(&format!("/local/b/{}?{query}", encode_key(key)))
}

fn query_url(mg: &MediaGate, key: &str, query: &str) -> String {
    mg.url(&format!("/media?locator={}&{query}", encode_component(&format!("local://b/{key}"))))
}

fn sign_cmd(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .arg("sign")
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("running mediagate sign")
}

/// `mediagate sign`'s URL, moved from `public_base_url` onto the test's mediagate.
fn signed_by_cli(mg: &MediaGate, args: &[&str]) -> String {
    let out = sign_cmd(&mg.config_path, args);
    assert!(out.status.success(), "mediagate sign {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let rest = url.strip_prefix(BASE).unwrap_or_else(|| panic!("{url} is not on public_base_url {BASE}"));
    mg.url(rest)
}

#[test]
fn a_url_from_mediagate_sign_opens_the_object_in_both_request_forms() {
    let root = media(&[("cats/a.jpg", b"jpeg bytes")]);
    let mg = start(root.path(), &[("k1", K1), ("k2", K2)], "");
    for args in [
        &["local://b/cats/a.jpg", "--ttl", "1h"][..],
        &["local://b/cats/a.jpg", "--ttl", "15m", "--kid", "k2"],
        &["/local/b/cats/a.jpg", "--ttl", "90s", "--query-form"],
    ] {
        let url = signed_by_cli(&mg, args);
        assert!(url.contains("kid="), "{url}");
        let resp = get(&url, &[]);
        assert_eq!(resp.status, 200, "{url}: {}", resp.describe());
        assert_eq!(&resp.body[..], b"jpeg bytes");
    }
    let url = signed_by_cli(&mg, &["local://b/cats/a.jpg", "--ttl", "1h"]);
    assert!(url.contains("/local/b/cats/a.jpg?exp="), "{url}");
    let resp = head(&url, &[("range", "bytes=0-3")]);
    assert_eq!(resp.status, 206, "{}", resp.describe());
}

#[test]
fn mediagate_sign_refuses_what_mediagate_would_refuse() {
    let root = media(&[("a", b"x")]);
    let mg = start(root.path(), &[("k1", K1)], "max_ttl = \"1d\"\n");
    for (args, says) in [
        (&["local://b/a", "--ttl", "2d"][..], "max_ttl"),
        (&["local://b/a", "--ttl", "1h", "--kid", "k9"], "no signing key has id \"k9\""),
        (&["nonsense", "--ttl", "1h"], "no scheme"),
        (&["local://b/a", "--ttl", "soon"], "--ttl"),
    ] {
        let out = sign_cmd(&mg.config_path, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains(K1), "{stderr}");
    }
}

#[test]
fn keys_with_special_characters_sign_and_verify_in_both_forms() {
    let keys = [
        "a b+c=d@e:f,g;h!i*j'k(l)m[n]o$p&q%r.txt",
        "dir/ünïcødé 日本.txt",
        "~tilde-_.dots..txt",
        "percent%20literal.txt",
    ];
    let files: Vec<(&str, &[u8])> = keys.iter().map(|k| (*k, k.as_bytes())).collect();
    let root = media(&files);
    let mg = start(root.path(), &[("k1", K1)], "");
    let exp = now() + 300;
    for key in keys {
        let q = signature(key, K1, "k1", exp);
        for url in [path_url(&mg, key, &q), query_url(&mg, key, &q)] {
            let resp = get(&url, &[]);
            assert_eq!(resp.status, 200, "{key:?} via {url}: {}", resp.describe());
            assert_eq!(resp.body, key.as_bytes());
        }
    }
}

#[test]
fn two_keys_both_open_the_object_and_share_one_cache_entry() {
    let root = media(&[("v.mp4", &[7u8; 4096])]);
    let mg = start(root.path(), &[("k1", K1), ("k2", K2)], "");
    let exp = now() + 300;
    let first = get(&path_url(&mg, "v.mp4", &signature("v.mp4", K1, "k1", exp)), &[]);
    assert_eq!(first.status, 200, "{}", first.describe());
    let second = get(&path_url(&mg, "v.mp4", &signature("v.mp4", K2, "k2", exp)), &[]);
    assert_eq!(second.status, 200, "{}", second.describe());
    // The signature is not part of the proxy's cache key: the first request
    // fills the cache (the default config has it on), and the second, signed
    // with another key, is a hit.
    let miss = first.header("cache-status").unwrap_or_default();
    assert!(miss.contains("fwd=miss"), "the first request must be a miss: Cache-Status {miss:?}");
    let status = second.header("cache-status").unwrap_or_default();
    assert!(status.starts_with("mediagate; hit"), "signed with k2 after k1: Cache-Status {status:?}");
}

#[test]
fn signed_responses_may_be_cached_only_until_the_url_expires() {
    let root = media(&[("a.png", b"png")]);
    let mg = start(root.path(), &[("k1", K1)], "");
    let resp = get(&path_url(&mg, "a.png", &signature("a.png", K1, "k1", now() + 40)), &[]);
    assert_eq!(resp.status, 200);
    let cc = resp.header("cache-control").unwrap();
    let max_age: u64 = cc
        .split(',')
        .find_map(|d| d.trim().strip_prefix("max-age="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no max-age in {cc:?}"));
    assert!(max_age <= 40, "{cc}");
    assert_eq!(cc, format!("max-age={max_age}"), "only max-age is lowered");
}

#[test]
fn health_and_the_front_page_need_no_signature_and_the_page_hands_out_none() {
    let root = media(&[("a", b"x")]);
    let mg = start(root.path(), &[("k1", K1)], "");
    assert_eq!(get(&mg.url("/healthz"), &[]).status, 200);
    let page = get(&mg.url("/"), &[]);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("signed-url"), "{}", page.text());
    assert!(!page.text().contains("sig="), "{}", page.text());
    let unsigned = head(&mg.url("/local/b/a"), &[]);
    assert_eq!(unsigned.status, 403, "HEAD needs a signature too");
}

#[test]
fn bad_signatures_get_a_403_with_the_right_code() {
    let root = media(&[("a.jpg", b"a"), ("b.jpg", b"b")]);
    let mg = start(root.path(), &[("k1", K1), ("k2", K2)], "max_ttl = \"1d\"\n");
    let exp = now() + 300;
    let good = signature("a.jpg", K1, "k1", exp);
    let sig_of = |q: &str| q.rsplit_once("sig=").unwrap().1.to_owned();
    let sig = sig_of(&good);
    let mut forged = sig.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let expired = now() - 3600;
    let far = now() + 400 * 86_400;

    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "forged",
            path_url(&mg, "a.jpg", &format!("exp={exp}&kid=k1&sig={forged}")),
            "bad_signature",
            "does not match",
        ),
        ("truncated", path_url(&mg, "a.jpg", &format!("exp={exp}&kid=k1&sig={}", &sig[..20])), "bad_signature", ""),
        ("with padding", path_url(&mg, "a.jpg", &format!("{good}=")), "bad_signature", "padding"),
        (
            "replayed after expiry",
            path_url(&mg, "a.jpg", &signature("a.jpg", K1, "k1", expired)),
            "url_expired",
            "expired",
        ),
        ("cross-locator", path_url(&mg, "b.jpg", &good), "bad_signature", "/local/b/b.jpg"),
        ("query form on another locator", query_url(&mg, "b.jpg", &good), "bad_signature", "does not match"),
        ("exp changed", path_url(&mg, "a.jpg", &format!("exp={}&kid=k1&sig={sig}", exp + 1)), "bad_signature", ""),
        ("far-future exp", path_url(&mg, "a.jpg", &signature("a.jpg", K1, "k1", far)), "bad_signature", "max_ttl"),
        ("non-numeric exp", path_url(&mg, "a.jpg", &format!("exp=tomorrow&kid=k1&sig={sig}")), "bad_signature", "exp"),
        ("exp with a sign", path_url(&mg, "a.jpg", &format!("exp=%2B{exp}&kid=k1&sig={sig}")), "bad_signature", ""),
        ("duplicate sig", path_url(&mg, "a.jpg", &format!("{good}&sig={sig}")), "bad_signature", "more than once"),
        ("duplicate exp", path_url(&mg, "a.jpg", &format!("exp={exp}&{good}")), "bad_signature", "more than once"),
        ("duplicate kid", path_url(&mg, "a.jpg", &format!("kid=k2&{good}")), "bad_signature", "more than once"),
        ("unsigned", mg.url("/local/b/a.jpg"), "bad_signature", "not signed"),
        ("no kid with two keys", path_url(&mg, "a.jpg", &format!("exp={exp}&sig={sig}")), "bad_signature", "kid"),
        ("unknown kid", path_url(&mg, "a.jpg", &format!("exp={exp}&kid=k9&sig={sig}")), "bad_signature", "k9"),
        ("wrong kid", path_url(&mg, "a.jpg", &format!("exp={exp}&kid=k2&sig={sig}")), "bad_signature", ""),
        ("sig only", path_url(&mg, "a.jpg", &format!("kid=k1&sig={sig}")), "bad_signature", "no exp"),
    ];
    for (what, url, code, says) in cases {
        let resp = get(&url, &[]);
        assert_eq!(resp.status, 403, "{what}: {url}: {}", resp.describe());
        assert_eq!(resp.header("content-type"), Some("application/json"), "{what}");
        assert_eq!(resp.error_code(), code, "{what}: {}", resp.describe());
        let message = resp.error_message();
        assert!(message.contains(says), "{what}: {message:?} should say {says:?}");
        assert!(!message.contains(K1) && !message.contains(K2), "{what}: the message shows a key: {message}");
    }
    // The genuine URL still works.
    assert_eq!(get(&path_url(&mg, "a.jpg", &good), &[]).status, 200);
}

// ------------------------------------------------------------------ README examples

/// The first fenced block of `lang` in the README's "Signed URLs" section.
fn readme_example(lang: &str) -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("\n## Signed URLs").nth(1).expect("README has a Signed URLs section");
    let section = section.split("\n## ").next().unwrap();
    let start = section.find(&format!("```{lang}\n")).unwrap_or_else(|| panic!("no ```{lang} block")) + lang.len() + 4;
    let end = section[start..].find("```").unwrap() + start;
    section[start..end].to_owned()
}

fn tool(name: &str) -> Option<String> {
    let found = Command::new(name).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if found.is_ok_and(|s| s.success()) {
        return Some(name.to_owned());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{name} is needed to run the README's signing example");
    }
    eprintln!("skipped: {name} is not installed");
    None
}

#[test]
fn the_readme_examples_in_python_and_javascript_sign_urls_mediagate_accepts() {
    let key = "cats/a b+c ü.jpg";
    let root = media(&[(key, b"cat")]);
    let mg = start(root.path(), &[("k1", K1), ("k2", K2)], "");
    let locator = format!("local://b/{key}");
    let mut ran = 0;
    if let Some(python) = tool("python3") {
        let code = format!(
            "{}\nimport sys\nprint(sign_url(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))\n",
            readme_example("python")
        );
        let out = Command::new(python).args(["-c", &code, &mg.base_url, &locator, "k2", K2, "300"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8(out.stdout).unwrap();
        let resp = get(url.trim(), &[]);
        assert_eq!(resp.status, 200, "python: {url}: {}", resp.describe());
        assert_eq!(&resp.body[..], b"cat");
        ran += 1;
    }
    if let Some(node) = tool("node") {
        let code = format!(
            "{}\nconst [base, loc, kid, secret, ttl] = process.argv.slice(1);\nconsole.log(signUrl(base, loc, kid, secret, Number(ttl)));\n",
            readme_example("js")
        );
        let out = Command::new(node)
            .args(["--input-type=module", "-e", &code, &mg.base_url, &locator, "k1", K1, "300"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let url = String::from_utf8(out.stdout).unwrap();
        let resp = get(url.trim(), &[]);
        assert_eq!(resp.status, 200, "javascript: {url}: {}", resp.describe());
        ran += 1;
    }
    if ran == 0 {
        eprintln!("skipped: neither python3 nor node");
    }
}
