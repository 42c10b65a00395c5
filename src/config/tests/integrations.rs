//! `[[integration]]` tables: common keys, each type's keys, and the rules across integrations.

use super::*;

#[test]
fn an_integration_needs_a_name_and_a_type() {
    let problems = problems("[[integration]]\nroot = \"x\"\n");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("test.toml:1: integration[0].name: missing required key `name`"), "{}", problems[0]);
    assert!(problems[1].contains("integration[0].type: missing required key `type`"), "{}", problems[1]);
}

#[test]
fn an_integration_name_is_lower_case_letters_digits_and_dashes() {
    assert_eq!(ok(&s3_toml("").replace("\"s\"", "\"minio-2\"")).integrations[0].name, "minio-2");
    for bad in ["", "Minio", "mi_nio", "mi nio", "é"] {
        assert_one_problem(
            &s3_toml("").replace("name = \"s\"", &format!("name = \"{bad}\"")),
            &["integration[0].name: expected 1 to 63 lower-case letters"],
        );
    }
}

#[test]
fn an_unknown_integration_type_is_rejected() {
    assert_one_problem(
        "[[integration]]\nname = \"g\"\ntype = \"gcs\"\nbucket = 1\n",
        &["integration[0] (\"g\").type: expected one of \"s3\", \"azure-blob\", \"local\", got \"gcs\""],
    );
}

#[test]
fn duplicate_names_name_both_integrations() {
    let text = format!("{}{}", s3_toml("buckets = [\"a\"]"), s3_toml("buckets = [\"b\"]"));
    assert_one_problem(&text, &["integration[1] (\"s\"): name \"s\" is already used by integration[0] (\"s\")"]);
}

#[test]
fn cache_control_has_a_default_and_must_be_a_header_value() {
    assert_eq!(ok(&s3_toml("")).integrations[0].cache_control, "max-age=300");
    assert_eq!(ok(&s3_toml("cache_control = \"no-store\"")).integrations[0].cache_control, "no-store");
    assert_one_problem(&s3_toml("cache_control = \"a\\nb\""), &["cache_control: expected a valid header value"]);
    assert_one_problem(&s3_toml("cache_control = \"\""), &["cache_control: expected a valid header value"]);
}

#[test]
fn an_s3_integration_without_endpoint_talks_to_aws() {
    let config = ok(&s3_toml(""));
    let s3 = s3_config(&config);
    assert_eq!(s3.endpoint, "s3.us-east-1.amazonaws.com");
    assert!(!s3.custom_endpoint);
    assert_eq!(s3.port, None);
    assert!(s3.tls);
    assert_eq!(s3.region, "us-east-1");
    assert_eq!(s3.addressing, Addressing::VirtualHost);
    assert_eq!(s3.locator_scheme, Scheme::S3);
    assert!(s3.buckets.is_empty());
    assert!(s3.ca_file.is_none());
    let S3Credentials::Static { access_key_id, secret_access_key, session_token } = &s3.credentials else {
        panic!("expected static keys")
    };
    let crate::integration::secret_file::SecretValue::Inline(secret_access_key) = secret_access_key else {
        panic!("expected an inline secret")
    };
    assert_eq!((access_key_id.as_str(), secret_access_key.expose()), ("id", "secret"));
    assert!(session_token.is_none());
    assert_eq!(s3_config(&ok(&s3_toml("region = \"eu-west-3\""))).endpoint, "s3.eu-west-3.amazonaws.com");
}

#[test]
fn a_gs_integration_defaults_to_google_cloud_storage() {
    let config = ok(&s3_toml("locator_scheme = \"gs\""));
    let gs = s3_config(&config);
    assert_eq!(gs.endpoint, "storage.googleapis.com");
    assert_eq!(gs.region, "auto");
    assert_eq!(gs.locator_scheme, Scheme::Gs);
    assert_eq!(gs.addressing, Addressing::VirtualHost);
    assert_one_problem(&s3_toml("locator_scheme = \"az\""), &["locator_scheme: expected \"s3\" or \"gs\", got \"az\""]);
}

#[test]
fn a_custom_endpoint_defaults_to_path_addressing() {
    let config = ok(&s3_toml(
        "endpoint = \"minio.internal\"\nport = 9000\ntls = false\nsession_token = \"t\"\nbuckets = [\"a.b\", \"c_d-1\"]",
    ));
    let s3 = s3_config(&config);
    assert_eq!(s3.endpoint, "minio.internal");
    assert!(s3.custom_endpoint);
    assert_eq!(s3.port, Some(9000));
    assert!(!s3.tls);
    assert_eq!(s3.addressing, Addressing::Path);
    assert_eq!(s3.buckets, ["a.b", "c_d-1"]);
    assert!(matches!(&s3.credentials, S3Credentials::Static {
            session_token: Some(crate::integration::secret_file::SecretValue::Inline(t)), ..
        } if t.expose() == "t"));
    let vhost = ok(&s3_toml("endpoint = \"10.0.0.5\"\naddressing = \"virtual-host\""));
    assert_eq!(s3_config(&vhost).addressing, Addressing::VirtualHost);
    assert_one_problem(
        &s3_toml("addressing = \"vhost\""),
        &["addressing: expected \"path\" or \"virtual-host\", got \"vhost\""],
    );
}

#[test]
fn an_endpoint_written_as_a_url_is_answered_with_the_keys_to_write() {
    assert_one_problem(
        &s3_toml("endpoint = \"http://minio.internal:9000\""),
        &[
            "endpoint: expected a host name or IP without scheme, got \"http://minio.internal:9000\"; write endpoint = \"minio.internal\", port = 9000, tls = false",
        ],
    );
    assert_one_problem(
        &s3_toml("endpoint = \"https://s3.example.com/\""),
        &["write endpoint = \"s3.example.com\", tls = true"],
    );
}

#[test]
fn an_endpoint_with_a_port_or_a_path_is_rejected() {
    assert_one_problem(
        &s3_toml("endpoint = \"minio:9000\""),
        &["endpoint: expected a host name or IP without a port", "write endpoint = \"minio\", port = 9000"],
    );
    assert_one_problem(
        &s3_toml("endpoint = \"minio/bucket\""),
        &["endpoint: expected a host name or IP without a path"],
    );
    assert_one_problem(
        &s3_toml("endpoint = \"bad host\""),
        &["endpoint: expected a host name or IP, got \"bad host\""],
    );
    assert_one_problem(&s3_toml("endpoint = \"\""), &["endpoint: must not be empty"]);
}

#[test]
fn an_ipv6_endpoint_is_stored_in_brackets() {
    assert_eq!(s3_config(&ok(&s3_toml("endpoint = \"::1\""))).endpoint, "[::1]");
    assert_eq!(s3_config(&ok(&s3_toml("endpoint = \"[fd00::5]\""))).endpoint, "[fd00::5]");
}

#[test]
fn a_port_must_be_from_1_to_65535() {
    assert_one_problem(
        &s3_toml("port = 0"),
        &["integration[0] (\"s\").port: expected an integer from 1 to 65535, got 0"],
    );
    assert_one_problem(&s3_toml("port = 70000"), &["port: expected an integer from 1 to 65535, got 70000"]);
    assert_one_problem(&s3_toml("port = \"abc\""), &["port: expected an integer from 1 to 65535, got \"abc\""]);
}

#[test]
fn missing_static_keys_leave_the_integration_incomplete_naming_each_key() {
    let base = "[[integration]]\nname = \"s\"\ntype = \"s3\"\n";
    let hint = "give static keys, or set credentials = \"env\", \"web-identity\" or \"instance\"";
    let both = incomplete(base);
    assert_eq!(
        both,
        [
            ("access_key_id".to_owned(), format!("missing access_key_id: {hint}")),
            ("secret_access_key".to_owned(), format!("missing secret_access_key: {hint}")),
        ]
    );
    assert_eq!(incomplete(&format!("{base}access_key_id = \"id\"")).len(), 1);
    assert_eq!(incomplete(&format!("{base}secret_access_key = \"s\""))[0].0, "access_key_id");
    let config = ok(base);
    assert_eq!(config.integrations[0].scopes.len(), 1, "an incomplete default keeps its scope");
}

#[test]
fn a_missing_key_beside_a_wrong_value_is_an_error_not_an_unfinished_integration() {
    let problems = problems("[[integration]]\nname = \"s\"\ntype = \"s3\"\nport = \"x\"\n");
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("port: expected an integer")), "{problems:?}");
}

#[test]
fn env_credentials_read_the_environment_later_and_exclude_static_keys() {
    let base = "[[integration]]\nname = \"s\"\ntype = \"s3\"\ncredentials = \"env\"\n";
    assert!(matches!(s3_config(&ok(base)).credentials, S3Credentials::Env));
    assert_one_problem(
        &format!("{base}{S3_KEYS}"),
        &["credentials: credentials = \"env\" reads AWS_ACCESS_KEY_ID", "remove access_key_id, secret_access_key"],
    );
    assert_one_problem(&s3_toml("credentials = \"vault\""), &["credentials: expected \"env\", \"web-identity\""]);
}

#[test]
fn s3_temporary_credential_sources_are_read_and_exclude_the_keys_of_other_sources() {
    let base = "[[integration]]\nname = \"s\"\ntype = \"s3\"\n";
    assert!(matches!(
        s3_config(&ok(&format!("{base}credentials = \"instance\""))).credentials,
        S3Credentials::Instance
    ));
    let web = ok(&format!(
        "{base}role_arn = \"arn:aws:iam::1:role/x\"\nweb_identity_token_file = \"/t\"\nsts_endpoint = \"https://sts.example:8443/\""
    ));
    let S3Credentials::WebIdentity { role_arn, token_file, sts_endpoint } = &s3_config(&web).credentials else {
        panic!("expected web identity")
    };
    assert_eq!(role_arn.as_deref(), Some("arn:aws:iam::1:role/x"));
    assert_eq!(token_file.as_deref(), Some(std::path::Path::new("/t")));
    assert_eq!(sts_endpoint.as_deref(), Some("https://sts.example:8443"));
    let from_env = ok(&format!("{base}credentials = \"web-identity\""));
    assert!(matches!(
        s3_config(&from_env).credentials,
        S3Credentials::WebIdentity { role_arn: None, token_file: None, sts_endpoint: None }
    ));
    assert_one_problem(
        &s3_toml("role_arn = \"arn:aws:iam::1:role/x\""),
        &["web identity gets its keys from STS; remove access_key_id, secret_access_key"],
    );
    assert_one_problem(
        &format!("{base}credentials = \"instance\"\nrole_arn = \"r\""),
        &["credentials: credentials = \"instance\" asks the container", "remove role_arn"],
    );
    assert_one_problem(
        &format!("{base}credentials = \"web-identity\"\nsts_endpoint = \"sts.example\""),
        &["sts_endpoint: expected a URL"],
    );
}

#[test]
fn a_secret_and_its_file_variant_exclude_each_other() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let base = "[[integration]]\nname = \"s\"\ntype = \"s3\"\naccess_key_id = \"id\"\n";
    let cfg = ok(&format!("{base}secret_access_key_file = {file:?}\nsession_token_file = {file:?}"));
    let S3Credentials::Static { secret_access_key, session_token, .. } = &s3_config(&cfg).credentials else {
        panic!("expected static keys")
    };
    use crate::integration::secret_file::SecretValue;
    assert!(matches!(secret_access_key, SecretValue::File(p) if p.ends_with("Cargo.toml")));
    assert!(matches!(session_token, Some(SecretValue::File(_))));
    assert_one_problem(
        &format!("{base}secret_access_key = \"s\"\nsecret_access_key_file = {file:?}"),
        &["secret_access_key_file: give secret_access_key or secret_access_key_file, not both"],
    );
    assert_one_problem(
        &format!("{base}secret_access_key_file = \"/nonexistent/s\""),
        &["secret_access_key_file: cannot read"],
    );
}

#[test]
fn bucket_names_are_checked() {
    assert_one_problem(
        &s3_toml("buckets = [\"ok\", \"a/b\"]"),
        &["integration[0] (\"s\").buckets[1]: expected a bucket name", "\"a/b\""],
    );
    assert_one_problem(&s3_toml("buckets = [\"..\"]"), &["buckets[0]: expected a bucket name"]);
    assert_one_problem(&s3_toml("buckets = [\"\"]"), &["buckets[0]: expected a bucket name"]);
    assert_one_problem(&s3_toml("buckets = [1]"), &["buckets[0]: expected a string"]);
    assert_one_problem(&s3_toml("buckets = [\"a\", \"a\"]"), &["buckets[1]: \"a\" is listed twice"]);
    let empty = incomplete(&s3_toml("buckets = []"));
    assert_eq!(empty[0].0, "buckets");
    assert!(empty[0].1.contains("is empty: list the buckets"), "{empty:?}");
    assert!(ok(&s3_toml("buckets = []")).integrations[0].scopes.is_empty(), "no bucket yet: serves nothing");
}

#[test]
fn a_ca_file_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
    let config = ok(&s3_toml(&format!("ca_file = {:?}", pem.display().to_string())));
    assert_eq!(s3_config(&config).ca_file.as_deref(), Some(pem.as_path()));
    let missing = dir.path().join("missing.pem");
    assert_one_problem(
        &s3_toml(&format!("ca_file = {:?}", missing.display().to_string())),
        &["ca_file: cannot read", "missing.pem"],
    );
    assert_one_problem(
        &s3_toml(&format!("ca_file = {:?}", dir.path().display().to_string())),
        &["ca_file:", "is not a file"],
    );
}

#[test]
fn an_azure_cloud_url_names_the_account_in_its_host() {
    let config = ok(&azure_toml(&format!("storage_url = \"https://acct.blob.core.windows.net/media\"\n{SAS}")));
    let az = azure_config(&config);
    let want = AzureStorageUrl {
        scheme: "https".into(),
        host: "acct.blob.core.windows.net".into(),
        port: None,
        account: "acct".into(),
        container: Some("media".into()),
        path_style: false,
    };
    assert_eq!(az.storage_url, want);
    assert!(matches!(&az.credential, AzureCredential::Sas(s) if s.expose() == "sv=2022-11-02&sig=abc"));
    assert!(az.ca_file.is_none());
}

#[test]
fn an_azurite_url_names_the_account_in_its_path() {
    let want = |host: &str, port, container: Option<&str>| AzureStorageUrl {
        scheme: "http".into(),
        host: host.into(),
        port,
        account: "devstoreaccount1".into(),
        container: container.map(Into::into),
        path_style: true,
    };
    let cases = [
        ("http://127.0.0.1:10000/devstoreaccount1/media", want("127.0.0.1", Some(10000), Some("media"))),
        ("http://localhost:10000/devstoreaccount1/media/", want("localhost", Some(10000), Some("media"))),
        ("http://azurite:10000/devstoreaccount1", want("azurite", Some(10000), None)),
        ("http://[::1]/devstoreaccount1/media", want("[::1]", None, Some("media"))),
    ];
    for (url, want) in cases {
        assert_eq!(parse_azure_storage_url(url), Ok(want), "{url}");
    }
}

#[test]
fn an_azure_url_without_a_container_serves_the_whole_account() {
    let url = parse_azure_storage_url("https://acct.blob.core.windows.net").unwrap();
    assert_eq!((url.account.as_str(), url.container), ("acct", None));
    assert_eq!(parse_azure_storage_url("https://acct.blob.core.windows.net/").unwrap().container, None);
}

#[test]
fn bad_azure_urls_are_explained() {
    let cases = [
        ("https://acct.blob.core.windows.net/media?sv=2022&sig=x", "put the SAS (sv=...&sig=...) in `sas_token`"),
        (
            "https://acct.blob.core.windows.net/media/photos/a.jpg",
            "names a blob or folder, not a container: stop the URL at /media",
        ),
        ("acct.blob.core.windows.net/media", "expected a container URL"),
        ("ftp://acct.blob.core.windows.net/media", "expected a container URL"),
        ("http://127.0.0.1:10000/", "the account is the first path segment"),
        ("https://Acct.blob.core.windows.net/media", "\"Acct\" is not a storage account name"),
        ("https://acct.blob.core.windows.net/Media", "\"Media\" is not a container name"),
        ("http://127.0.0.1:99999/devstoreaccount1", "port 99999 is out of range"),
    ];
    for (url, want) in cases {
        let err = parse_azure_storage_url(url).expect_err(url);
        assert!(err.contains(want), "{url}: {err}");
    }
    assert_eq!(
        incomplete(&azure_toml(SAS)),
        [("storage_url".to_owned(), "missing required key `storage_url`".to_owned())]
    );
    assert_one_problem(
        &azure_toml(&format!("storage_url = \"https://a.blob.core.windows.net/m?sv=1\"\n{SAS}")),
        &["storage_url: must not carry a query string"],
    );
}

#[test]
fn an_azure_account_key_must_be_base64() {
    let url = "storage_url = \"http://127.0.0.1:10000/devstoreaccount1/media\"";
    let config = ok(&azure_toml(&format!("{url}\naccount_key = \"a2V5\"")));
    assert!(matches!(&azure_config(&config).credential, AzureCredential::AccountKey(k) if k.expose() == "a2V5"));
    assert_one_problem(
        &azure_toml(&format!("{url}\naccount_key = \"not-base64!\"")),
        &["account_key: is not valid base64"],
    );
}

#[test]
fn a_sas_token_drops_its_question_mark_and_needs_a_signature() {
    let url = "storage_url = \"https://acct.blob.core.windows.net/media\"";
    let config = ok(&azure_toml(&format!("{url}\nsas_token = \"?sv=1&sig=x\"")));
    assert!(matches!(&azure_config(&config).credential, AzureCredential::Sas(s) if s.expose() == "sv=1&sig=x"));
    assert_one_problem(&azure_toml(&format!("{url}\nsas_token = \"?\"")), &["sas_token: is empty"]);
    assert_one_problem(&azure_toml(&format!("{url}\nsas_token = \"sv=1\"")), &["sas_token: has no sig= parameter"]);
}

#[test]
fn an_azure_integration_needs_exactly_one_credential() {
    let url = "storage_url = \"https://acct.blob.core.windows.net/media\"";
    let missing = incomplete(&azure_toml(url));
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].0, "account_key");
    assert!(missing[0].1.starts_with("missing credentials: give account_key, sas_token, a service principal"));
    assert_one_problem(
        &azure_toml(&format!("{url}\naccount_key = \"a2V5\"\n{SAS}")),
        &["sas_token: give one credential, not both account_key and sas_token"],
    );
    assert_one_problem(
        &azure_toml(&format!("{url}\n{SAS}\ncredential = \"managed-identity\"")),
        &["credential: give one credential, not both sas_token and credential"],
    );
    assert_one_problem(
        &azure_toml(&format!("{url}\n{SAS}\ntenant_id = \"t\"")),
        &["tenant_id: is for an Entra ID identity, not with sas_token"],
    );
}

#[test]
fn a_service_principal_takes_its_ids_from_the_keys_or_the_sdk_environment() {
    let url = "storage_url = \"https://acct.blob.core.windows.net/media\"";
    let keys = format!("{url}\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\"");
    let config = ok(&azure_toml(&keys));
    let AzureCredential::ServicePrincipal { tenant_id, client_id, client_secret, authority_host } =
        &azure_config(&config).credential
    else {
        panic!("not a service principal")
    };
    assert_eq!((tenant_id.as_str(), client_id.as_str(), authority_host), ("t", "c", &None));
    assert!(matches!(client_secret, SecretValue::Inline(s) if s.expose() == "s"));
    let env = [("AZURE_TENANT_ID", "te"), ("AZURE_CLIENT_ID", "ce")];
    let config = parse_env(&azure_toml(&format!("{url}\nclient_secret = \"s\"")), &env).unwrap();
    assert!(matches!(&azure_config(&config).credential,
        AzureCredential::ServicePrincipal { tenant_id, client_id, .. } if tenant_id == "te" && client_id == "ce"));
    let missing = incomplete(&azure_toml(&format!("{url}\nclient_secret = \"s\"")));
    let names: Vec<&str> = missing.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["tenant_id", "client_id"], "{missing:?}");
    assert_one_problem(
        &azure_toml(&format!("{keys}\nauthority_host = \"http://login.example\"")),
        &["authority_host: \"http://login.example\" is not an https:// URL"],
    );
}

#[test]
fn workload_identity_needs_the_aks_environment_and_managed_identity_takes_a_client_id_only() {
    let url = "storage_url = \"https://acct.blob.core.windows.net/media\"";
    let wi = azure_toml(&format!("{url}\ncredential = \"workload-identity\""));
    assert_one_problem(&wi, &["credential: workload identity needs AZURE_TENANT_ID (or tenant_id), AZURE_CLIENT_ID"]);
    let env = [("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c"), ("AZURE_FEDERATED_TOKEN_FILE", "/var/run/t")];
    let config = parse_env(&wi, &env).unwrap();
    assert!(matches!(&azure_config(&config).credential,
        AzureCredential::WorkloadIdentity { token_file, .. } if token_file == Path::new("/var/run/t")));
    let config = ok(&azure_toml(&format!("{url}\ncredential = \"managed-identity\"\nclient_id = \"u\"")));
    assert!(matches!(&azure_config(&config).credential,
        AzureCredential::ManagedIdentity { client_id: Some(c) } if c == "u"));
    assert_one_problem(
        &azure_toml(&format!("{url}\ncredential = \"cli\"")),
        &["credential: \"cli\" is not a credential: expected \"workload-identity\" or \"managed-identity\""],
    );
}

#[test]
fn azure_secret_files_are_checked_at_load_less_a_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "a2V5\n").unwrap();
    let url = "storage_url = \"https://acct.blob.core.windows.net/media\"";
    let config = ok(&azure_toml(&format!("{url}\naccount_key_file = \"{}\"", key.display())));
    assert!(matches!(&azure_config(&config).credential, AzureCredential::AccountKeyFile(k) if *k == key));
    std::fs::write(&key, "not-base64!\n").unwrap();
    assert_one_problem(
        &azure_toml(&format!("{url}\naccount_key_file = \"{}\"", key.display())),
        &["account_key_file: is not valid base64"],
    );
    let sas = dir.path().join("sas");
    std::fs::write(&sas, "sv=1&sig=x\n").unwrap();
    let config = ok(&azure_toml(&format!("{url}\nsas_token_file = \"{}\"", sas.display())));
    assert!(matches!(&azure_config(&config).credential, AzureCredential::SasFile(s) if *s == sas));
    std::fs::write(&sas, "\n").unwrap();
    assert_one_problem(
        &azure_toml(&format!("{url}\nsas_token_file = \"{}\"", sas.display())),
        &["sas_token_file: ", "is empty"],
    );
}

#[test]
fn a_local_root_is_required_and_stored_as_written() {
    let config = ok("[[integration]]\nname = \"demo\"\ntype = \"local\"\nroot = \"examples/media\"\n");
    let IntegrationKind::Local(local) = &config.integrations[0].kind else { panic!("not local") };
    assert_eq!(local.root, Path::new("examples/media"));
    assert!(local.buckets.is_empty());
    assert_eq!(incomplete("[[integration]]\nname = \"d\"\ntype = \"local\"\n")[0].0, "root");
    assert_one_problem("[[integration]]\nname = \"d\"\ntype = \"local\"\nroot = \"\"\n", &["root: must not be empty"]);
}

fn local_toml(name: &str, buckets: &str) -> String {
    format!("[[integration]]\nname = \"{name}\"\ntype = \"local\"\nroot = \"r\"\n{buckets}\n")
}

#[test]
fn two_defaults_for_one_scheme_name_both_integrations() {
    let text = format!("{}{}", local_toml("one", ""), local_toml("two", ""));
    assert_one_problem(
        &text,
        &[
            "test.toml:6: integration[1] (\"two\"): integration[0] (\"one\") and integration[1] (\"two\") are both the default for local:// locators",
        ],
    );
    let gs = |name: &str| s3_toml("locator_scheme = \"gs\"").replace("\"s\"", &format!("\"{name}\""));
    assert_one_problem(
        &format!("{}{}", gs("g1"), gs("g2")),
        &["integration[0] (\"g1\") and integration[1] (\"g2\") are both the default for gs:// locators"],
    );
}

#[test]
fn two_integrations_scoping_one_bucket_name_both() {
    let text =
        format!("{}{}", local_toml("one", "buckets = [\"a\", \"b\"]"), local_toml("two", "buckets = [\"c\", \"b\"]"));
    assert_one_problem(
        &text,
        &["integration[0] (\"one\") and integration[1] (\"two\") both scope bucket \"b\" of local:// locators"],
    );
}

#[test]
fn the_same_bucket_under_different_schemes_does_not_overlap() {
    let gs = s3_toml("locator_scheme = \"gs\"\nbuckets = [\"a\"]").replace("\"s\"", "\"g\"");
    let text = format!("{}{gs}{}", s3_toml("buckets = [\"a\"]"), local_toml("l", "buckets = [\"a\"]"));
    assert_eq!(ok(&text).integrations.len(), 3);
    // A default and a scoped integration of one scheme do not overlap either.
    assert_eq!(
        ok(&format!("{}{}", local_toml("one", ""), local_toml("two", "buckets = [\"a\"]"))).integrations.len(),
        2
    );
}

#[test]
fn two_azure_integrations_for_one_container_name_both() {
    let az = |name: &str, url: &str| {
        azure_toml(&format!("storage_url = \"{url}\"\n{SAS}")).replace("\"a\"", &format!("\"{name}\""))
    };
    let cloud = "https://acct.blob.core.windows.net";
    let text = format!("{}{}", az("x", &format!("{cloud}/media")), az("y", &format!("{cloud}/media/")));
    assert_one_problem(
        &text,
        &["integration[0] (\"x\") and integration[1] (\"y\") both serve Azure account \"acct\", container \"media\""],
    );
    let text = format!("{}{}", az("x", cloud), az("y", cloud));
    assert_one_problem(
        &text,
        &["integration[0] (\"x\") and integration[1] (\"y\") both serve the whole Azure account \"acct\""],
    );
    let text =
        format!("{}{}{}", az("x", cloud), az("y", &format!("{cloud}/media")), az("z", &format!("{cloud}/other")));
    assert_eq!(ok(&text).integrations.len(), 3);
}
