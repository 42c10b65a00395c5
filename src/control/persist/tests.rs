use std::fs::Permissions;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;

use super::*;

/// A config as a person writes it: comments everywhere, aligned values, blank lines,
/// `${VAR}` references, a literal string, other sections before and after.
const FILE: &str = r#"# mediagate configuration
# (hand-written; the admin API edits the [[integration]] tables below)

[server]
listen = "0.0.0.0:8080"   # media listener

# ---- storage ----

# MinIO in the lab
[[integration]]
name = "minio-share"            # unique
type = "s3"
endpoint = "minio.internal"
port = 9000                     # the S3 API port
tls = false
region = "us-east-1"            # MinIO ignores it
access_key_id = 'mediagate'
secret_access_key = "${MINIO_SECRET}"   # from the environment
buckets = ["share-with-kolena"] # scope

# Azure for the media team
[[integration]]
name = "azure-media"
type = "azure-blob"
storage_url = "https://acct.blob.core.windows.net/media"
sas_token = "${AZURE_SAS}"

# ---- cache ----
[cache]
max_bytes = "512MiB"   # memory bound
"#;

fn fields(value: serde_json::Value) -> Fields {
    match value {
        Json::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn table(text: &str, name: &str) -> Fields {
    let tables = integration_tables(text).expect("tables");
    tables.into_iter().find(|t| t["name"] == name).expect("table present")
}

fn minio_with(changes: serde_json::Value) -> Fields {
    let mut minio = table(FILE, "minio-share");
    for (key, value) in fields(changes) {
        minio.insert(key, value);
    }
    minio
}

#[test]
fn an_edit_changes_only_its_line_and_keeps_every_comment_and_blank_line() {
    let (text, created) = upsert_integration(FILE, "minio-share", &minio_with(json!({"region": "eu-west-1"}))).unwrap();
    assert!(!created);
    let expected = FILE.replace(r#"region = "us-east-1" "#, r#"region = "eu-west-1" "#);
    assert_ne!(expected, FILE);
    assert_eq!(text, expected);
}

#[test]
fn an_unchanged_body_gives_back_the_file_byte_for_byte() {
    let (text, created) = upsert_integration(FILE, "minio-share", &table(FILE, "minio-share")).unwrap();
    assert!(!created);
    assert_eq!(text, FILE);
}

#[test]
fn var_references_are_kept_as_written_and_listed_as_written() {
    let (text, _) = upsert_integration(FILE, "minio-share", &minio_with(json!({"tls": true}))).unwrap();
    assert!(text.contains(r#"secret_access_key = "${MINIO_SECRET}"   # from the environment"#));
    assert!(text.contains(r#"sas_token = "${AZURE_SAS}""#));
    assert_eq!(table(&text, "minio-share")["secret_access_key"], "${MINIO_SECRET}");
}

#[test]
fn an_unchanged_key_keeps_its_spelling_and_trailing_comment() {
    let body = minio_with(json!({"endpoint": "minio2.internal"}));
    let (text, _) = upsert_integration(FILE, "minio-share", &body).unwrap();
    assert!(text.contains("port = 9000                     # the S3 API port\n"));
    assert!(text.contains("access_key_id = 'mediagate'\n"), "literal string kept");
}

#[test]
fn a_changed_key_keeps_its_position_and_trailing_comment() {
    let body = minio_with(json!({"port": 9001, "buckets": ["a", "b"]}));
    let (text, _) = upsert_integration(FILE, "minio-share", &body).unwrap();
    let expected = FILE
        .replace("port = 9000 ", "port = 9001 ")
        .replace(r#"buckets = ["share-with-kolena"] # scope"#, r#"buckets = ["a", "b"] # scope"#);
    assert_eq!(text, expected);
}

#[test]
fn keys_left_out_of_the_body_are_removed_but_name_and_type_stay() {
    let body = fields(json!({"endpoint": "minio.internal", "port": 9000}));
    let (text, _) = upsert_integration(FILE, "minio-share", &body).unwrap();
    let minio = table(&text, "minio-share");
    let keys: Vec<&str> = minio.keys().map(String::as_str).collect();
    assert_eq!(keys, ["name", "type", "endpoint", "port"]);
    assert!(!text.contains("share-with-kolena"));
    assert!(!text.contains("MINIO_SECRET"));
    assert_eq!(table(&text, "azure-media"), table(FILE, "azure-media"), "the neighbour is untouched");
}

#[test]
fn a_new_key_is_appended_at_the_end_of_its_table() {
    let body = minio_with(json!({"ca_file": "/etc/ssl/lab.pem"}));
    let (text, _) = upsert_integration(FILE, "minio-share", &body).unwrap();
    let expected = FILE.replace("# scope\n", "# scope\nca_file = \"/etc/ssl/lab.pem\"\n");
    assert_eq!(text, expected);
}

#[test]
fn a_new_integration_goes_after_the_last_one_with_a_blank_line_before_it() {
    let body = fields(json!({"type": "local", "root": "examples/media", "buckets": ["demo"]}));
    let (text, created) = upsert_integration(FILE, "demo", &body).unwrap();
    assert!(created);
    let added =
        "\n[[integration]]\nname = \"demo\"\ntype = \"local\"\nroot = \"examples/media\"\nbuckets = [\"demo\"]\n";
    let expected = FILE.replace("\n# ---- cache ----", &format!("{added}\n# ---- cache ----"));
    assert_eq!(text, expected);
}

#[test]
fn a_new_integration_in_a_file_without_any_goes_at_the_end() {
    let file = "# top\n[server]\nlisten = \"127.0.0.1:8080\"\n\n[a]\nx = 1\n\n[b.c]\ny = 2\n";
    let body = fields(json!({"type": "s3"}));
    let (text, _) = upsert_integration(file, "one", &body).unwrap();
    assert_eq!(text, format!("{file}\n[[integration]]\nname = \"one\"\ntype = \"s3\"\n"));
}

#[test]
fn a_new_integration_in_an_empty_file_has_no_blank_line_before_it() {
    let (text, _) = upsert_integration("", "one", &fields(json!({"type": "s3"}))).unwrap();
    assert_eq!(text, "[[integration]]\nname = \"one\"\ntype = \"s3\"\n");
}

#[test]
fn values_are_written_as_toml_values_of_the_same_kind() {
    let body = fields(json!({
        "type": "s3", "port": 9000, "tls": false, "ratio": 0.5,
        "buckets": ["a", "b"], "tags": {"team": "media", "n": 2}
    }));
    let (text, _) = upsert_integration("", "kinds", &body).unwrap();
    for line in [
        "port = 9000\n",
        "tls = false\n",
        "ratio = 0.5\n",
        "buckets = [\"a\", \"b\"]\n",
        "tags = { team = \"media\", n = 2 }\n",
    ] {
        assert!(text.contains(line), "{line:?} missing in\n{text}");
    }
    assert_eq!(table(&text, "kinds"), {
        let mut expected = body.clone();
        expected.insert("name".into(), json!("kinds"));
        expected
    });
}

#[test]
fn null_is_refused_naming_the_key() {
    let err = upsert_integration(FILE, "minio-share", &fields(json!({"tags": {"team": null}}))).unwrap_err();
    assert_eq!(err.to_string(), "`tags.team`: null is not a value: leave the key out");
    let err = upsert_integration(FILE, "x", &fields(json!({"port": u64::MAX}))).unwrap_err();
    assert!(err.to_string().starts_with("`port`: the number is too large"), "{err}");
}

#[test]
fn a_body_naming_another_integration_is_refused() {
    let err = upsert_integration(FILE, "minio-share", &fields(json!({"name": "other"}))).unwrap_err();
    assert!(matches!(err, PersistError::NameMismatch { .. }), "{err}");
    let err = upsert_integration(FILE, "minio-share", &fields(json!({"name": 5}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the body names \"5\" but the address names \"minio-share\"; leave `name` out or make them equal"
    );
}

#[test]
fn two_tables_of_one_name_are_refused_rather_than_guessed() {
    let file = "[[integration]]\nname = \"a\"\n\n[[integration]]\nname = \"a\"\n";
    let err = upsert_integration(file, "a", &Fields::new()).unwrap_err();
    assert_eq!(err.to_string(), PersistError::Duplicate("a".into()).to_string());
    assert!(matches!(remove_integration(file, "a"), Err(PersistError::Duplicate(_))));
}

#[test]
fn an_integration_key_that_is_not_an_array_of_tables_is_refused() {
    let file = "integration = [{ name = \"a\" }]\n";
    assert!(matches!(integration_tables(file), Err(PersistError::NotTables)));
    assert!(matches!(upsert_integration(file, "a", &Fields::new()), Err(PersistError::NotTables)));
}

#[test]
fn removing_takes_the_comment_block_above_and_keeps_the_neighbours_comments() {
    let text = remove_integration(FILE, "minio-share").unwrap();
    let start = FILE.find("# MinIO in the lab").unwrap();
    let end = FILE.find("# Azure for the media team").unwrap();
    let expected = format!("{}{}", &FILE[..start], &FILE[end..]);
    assert_eq!(text, expected);
}

#[test]
fn removing_the_last_integration_keeps_what_follows() {
    let text = remove_integration(FILE, "azure-media").unwrap();
    let start = FILE.find("\n# Azure for the media team").unwrap();
    let end = FILE.find("\n# ---- cache ----").unwrap();
    assert_eq!(text, format!("{}{}", &FILE[..start], &FILE[end..]));
    let text = remove_integration(&text, "minio-share").unwrap();
    assert!(text.contains("# ---- storage ----\n\n# ---- cache ----\n[cache]"), "{text}");
    assert_eq!(integration_tables(&text).unwrap(), Vec::<Fields>::new());
}

#[test]
fn removing_the_last_table_of_the_file_leaves_no_trailing_blank_line() {
    let file = "[[integration]]\nname = \"a\"\n\n# b\n[[integration]]\nname = \"b\"\n";
    assert_eq!(remove_integration(file, "b").unwrap(), "[[integration]]\nname = \"a\"\n");
}

#[test]
fn removing_an_unknown_integration_is_not_found() {
    let err = remove_integration(FILE, "nope").unwrap_err();
    assert_eq!(err.to_string(), "no [[integration]] table is named \"nope\" in the config file");
}

#[test]
fn a_file_with_crlf_line_endings_keeps_them() {
    let file = "# lab\r\n\r\n[[integration]]\r\nname = \"a\"\r\ntype = \"s3\"\r\n";
    let (text, _) = upsert_integration(file, "a", &fields(json!({"type": "s3", "port": 1}))).unwrap();
    assert_eq!(text, format!("{file}port = 1\r\n"));
    assert_eq!(remove_integration(&text, "a").unwrap(), "# lab\r\n");
}

#[test]
fn an_array_written_one_element_a_line_stays_so() {
    let file = "[[integration]]\nname = \"a\"\nbuckets = [\n  'x',  # first\n  \"y\",\n]\n";
    let body = |buckets: serde_json::Value| fields(json!({ "buckets": buckets }));
    let (text, _) = upsert_integration(file, "a", &body(json!(["x", "y", "z"]))).unwrap();
    assert_eq!(text, file.replace("\"y\",\n", "\"y\",\n  \"z\",\n"));
    let (text, _) = upsert_integration(file, "a", &body(json!(["x", "w"]))).unwrap();
    assert_eq!(text, file.replace("\"y\"", "\"w\""));
}

#[test]
fn keys_new_to_a_table_are_written_type_first() {
    let file = "[[integration]]\nname = \"a\"\n";
    let (text, _) = upsert_integration(file, "a", &fields(json!({"port": 1, "type": "s3"}))).unwrap();
    assert_eq!(text, "[[integration]]\nname = \"a\"\ntype = \"s3\"\nport = 1\n");
}

fn config_in(dir: &Path, text: &str, mode: u32) -> PathBuf {
    let path = dir.join("mediagate.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, Permissions::from_mode(mode)).unwrap();
    path
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn add(name: &str) -> impl FnOnce(&str) -> Result<(String, bool), PersistError> {
    let body = fields(json!({"type": "local", "root": "/srv/media", "buckets": [name]}));
    move |text| upsert_integration(text, name, &body)
}

#[tokio::test]
async fn a_save_leaves_mode_0600_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_in(dir.path(), FILE, 0o644);
    let created = ConfigFile::new(&path).update(add("demo")).await.unwrap();
    assert!(created);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the file holds secrets: owner only");
    assert_eq!(dir_names(dir.path()), ["mediagate.toml"]);
    assert!(std::fs::read_to_string(&path).unwrap().contains("name = \"demo\""));
}

#[tokio::test]
async fn an_edit_that_fails_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_in(dir.path(), FILE, 0o644);
    let err =
        ConfigFile::new(&path).update(|text| remove_integration(text, "nope").map(|t| (t, ()))).await.unwrap_err();
    assert!(matches!(err, UpdateError::Edit(PersistError::NotFound(_))), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), FILE);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
}

#[tokio::test]
async fn a_failed_save_leaves_the_original_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_in(dir.path(), FILE, 0o644);
    std::fs::set_permissions(dir.path(), Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(dir.path().join("probe"), "").is_ok() {
        std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
        println!("skipped: permissions do not bind for this user (root), so a read-only directory cannot be made");
        return;
    }
    let err = ConfigFile::new(&path).update(add("demo")).await.unwrap_err();
    std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("Permission denied"), "the OS reason: {message}");
    assert!(message.contains("creating a temporary file beside it"), "{message}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), FILE);
    assert_eq!(dir_names(dir.path()), ["mediagate.toml"]);
}

#[tokio::test]
async fn a_save_that_fails_at_the_rename_leaves_no_temporary_file() {
    // Works for root too: while the edit runs, the file is swapped for a non-empty directory,
    // which rename(2) cannot replace, so the failure comes after the temporary file is written.
    let dir = tempfile::tempdir().unwrap();
    let path = config_in(dir.path(), FILE, 0o644);
    let swap = |text: &str| {
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), "").unwrap();
        upsert_integration(text, "demo", &fields(json!({"type": "local"})))
    };
    let err = ConfigFile::new(&path).update(swap).await.unwrap_err();
    assert!(matches!(&err, UpdateError::File(e) if e.step == Step::Rename), "{err}");
    assert!(err.to_string().contains("renaming the temporary file over it failed: "), "{err}");
    assert_eq!(dir_names(dir.path()), ["mediagate.toml"]);
    assert_eq!(dir_names(&path), ["keep"]);
}

#[test]
fn a_read_only_file_system_is_explained() {
    let io = io::Error::from(io::ErrorKind::ReadOnlyFilesystem);
    let err =
        FileError::new(Path::new("/etc/mediagate/m.toml"), Path::new("/etc/mediagate/..data/m.toml"), Step::Create, io);
    assert!(
        err.to_string().starts_with(
            "the config file /etc/mediagate/m.toml (a link to /etc/mediagate/..data/m.toml) is on a read-only \
         file system: integrations changed through the API cannot be saved; "
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gone.toml");
    let err = ConfigFile::new(&path).update(add("demo")).await.unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with(&format!("the config file {} does not exist any more (", path.display())), "{message}");
    assert!(message.contains("No such file or directory"), "the OS reason: {message}");
}

#[tokio::test]
async fn a_symlinked_config_keeps_its_link_and_the_target_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("..data")).unwrap();
    let target = config_in(&dir.path().join("..data"), FILE, 0o644);
    let link = dir.path().join("mediagate.toml");
    std::os::unix::fs::symlink("..data/mediagate.toml", &link).unwrap();
    ConfigFile::new(&link).update(add("demo")).await.unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(std::fs::read_to_string(&target).unwrap().contains("name = \"demo\""));
    assert_eq!(dir_names(&dir.path().join("..data")), ["mediagate.toml"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_updates_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_in(dir.path(), FILE, 0o600);
    let file = Arc::new(ConfigFile::new(&path));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let file = Arc::clone(&file);
            tokio::spawn(async move { file.update(add(&format!("local-{i}"))).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap(), "each one creates its own");
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let names: Vec<Json> = integration_tables(&text).unwrap().into_iter().map(|t| t["name"].clone()).collect();
    assert_eq!(names.len(), 22, "{names:?}");
    for i in 0..20 {
        assert!(names.contains(&json!(format!("local-{i}"))), "local-{i} lost");
    }
    assert!(text.starts_with("# mediagate configuration\n"));
    assert_eq!(dir_names(dir.path()), ["mediagate.toml"]);
}

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        any::<String>().prop_map(Json::from),
        "\\$\\{[A-Z_]{1,8}\\}".prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<bool>().prop_map(Json::from),
        any::<f64>().prop_filter("JSON has no NaN or infinity", |f| f.is_finite()).prop_map(Json::from),
    ]
}

fn body() -> impl Strategy<Value = Fields> {
    let value = prop_oneof![
        scalar(),
        prop::collection::vec(scalar(), 0..4).prop_map(Json::from),
        prop::collection::btree_map("[a-z]{1,6}", scalar(), 0..3).prop_map(|m| Json::Object(m.into_iter().collect())),
    ];
    prop::collection::btree_map("[a-z_]{1,10}", value, 0..8).prop_map(|map| {
        let mut fields: Fields = map.into_iter().filter(|(k, _)| !is_identity(k)).collect();
        fields.insert("type".into(), json!("s3"));
        fields
    })
}

proptest! {
    #[test]
    fn what_is_upserted_is_listed_back_and_the_rest_is_untouched(first in body(), second in body()) {
        for (text, fields) in [(FILE.to_owned(), &first), (upsert_integration(FILE, "prop", &first).unwrap().0, &second)] {
            let (saved, _) = upsert_integration(&text, "prop", fields).unwrap();
            let mut expected = fields.clone();
            expected.insert("name".into(), json!("prop"));
            prop_assert_eq!(table(&saved, "prop"), expected);
            prop_assert!(saved.starts_with(&FILE[..FILE.find("\n# ---- cache").unwrap()]));
            prop_assert!(saved.ends_with(&FILE[FILE.find("\n# ---- cache").unwrap()..]));
        }
    }
}
