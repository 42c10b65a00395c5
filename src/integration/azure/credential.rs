//! Azure Storage SharedKey authorization, as pure functions (no I/O, no clock).
//!
//! Follows "Authorize with Shared Key"
//! (<https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key>),
//! the string-to-sign of the Blob service for version 2015-02-21 and later:
//!
//! ```text
//! VERB \n Content-Encoding \n Content-Language \n Content-Length \n Content-MD5 \n
//! Content-Type \n Date \n If-Modified-Since \n If-Match \n If-None-Match \n
//! If-Unmodified-Since \n Range \n CanonicalizedHeaders CanonicalizedResource
//! ```

use std::fmt;

use crate::crypto::hmac_sha256_of;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use http::{HeaderMap, Method, header};

/// An account name and its decoded key, for SharedKey signing.
///
/// `Debug` never shows the key.
#[derive(Clone)]
pub struct SharedKeyCredential {
    account: String,
    key: Vec<u8>,
}

impl SharedKeyCredential {
    /// Decodes a base64 account key (as the Azure portal shows it). The error
    /// names the account, never the key.
    pub fn from_base64(account: &str, key: &str) -> Result<SharedKeyCredential, String> {
        let key = BASE64
            .decode(key.trim())
            .map_err(|_| format!("the account_key of Azure account \"{account}\" is not valid base64"))?;
        if key.is_empty() {
            return Err(format!("the account_key of Azure account \"{account}\" is empty"));
        }
        Ok(SharedKeyCredential { account: account.to_owned(), key })
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// The `Authorization` header value for a request; see [`shared_key_authorization`].
    pub fn authorization(
        &self,
        method: &Method,
        url_path: &str,
        query: &[(String, String)],
        headers: &HeaderMap,
    ) -> String {
        shared_key_authorization(&self.account, &self.key, method, url_path, query, headers)
    }
}

impl fmt::Debug for SharedKeyCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKeyCredential").field("account", &self.account).field("key", &"***").finish()
    }
}

/// The `Authorization` header value `SharedKey <account>:<base64 signature>`
/// for a Blob service request
/// (<https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key>).
///
/// - `key`: the decoded account key.
/// - `url_path`: the percent-encoded path exactly as sent. With a path-style
///   (emulator) URL it starts with the account, so the canonicalized resource
///   names the account twice: `/devstoreaccount1/devstoreaccount1/container/blob`.
/// - `query`: the query parameters as the service decodes them (names and
///   values percent-decoded).
/// - `headers`: the headers that will be sent, `x-ms-date` and `x-ms-version` included.
pub fn shared_key_authorization(
    account: &str,
    key: &[u8],
    method: &Method,
    url_path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> String {
    let text = string_to_sign(account, method, url_path, query, headers);
    format!("SharedKey {account}:{}", sign(key, &text))
}

/// The base64 HMAC-SHA256 of `text` under `key`: the signature of SharedKey
/// and of service SAS tokens.
pub fn sign(key: &[u8], text: &str) -> String {
    BASE64.encode(hmac_sha256_of(key, text.as_bytes()))
}

/// The SharedKey string-to-sign of the Blob service, version 2015-02-21 and
/// later (<https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key#blob-queue-and-file-services-shared-key-authorization>).
///
/// Arguments as for [`shared_key_authorization`]. A `Content-Length` of `0`
/// signs as empty; a header sent several times signs its values joined with `,`.
pub fn string_to_sign(
    account: &str,
    method: &Method,
    url_path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> String {
    let standard = [
        header::CONTENT_ENCODING,
        header::CONTENT_LANGUAGE,
        header::CONTENT_LENGTH,
        header::HeaderName::from_static("content-md5"),
        header::CONTENT_TYPE,
        header::DATE,
        header::IF_MODIFIED_SINCE,
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::RANGE,
    ];
    let mut out = String::with_capacity(256);
    out.push_str(method.as_str());
    out.push('\n');
    for name in &standard {
        let mut value = header_value(headers, name);
        if *name == header::CONTENT_LENGTH && value == "0" {
            value.clear();
        }
        out.push_str(&value);
        out.push('\n');
    }
    out.push_str(&canonicalized_headers(headers));
    out.push_str(&canonicalized_resource(account, url_path, query));
    out
}

/// Every value of `name`, joined with `,` (empty when absent).
fn header_value(headers: &HeaderMap, name: &header::HeaderName) -> String {
    let values: Vec<String> =
        headers.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    values.join(",")
}

/// `x-ms-*` headers: names lowercased (as `http` stores them), sorted, each
/// `name:value\n` with the value trimmed and runs of linear whitespace
/// replaced by one space.
fn canonicalized_headers(headers: &HeaderMap) -> String {
    let mut names: Vec<&str> = headers.keys().map(|n| n.as_str()).filter(|n| n.starts_with("x-ms-")).collect();
    names.sort_unstable();
    names.dedup();
    let mut out = String::new();
    for name in names {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| collapse_whitespace(&String::from_utf8_lossy(v.as_bytes())))
            .collect::<Vec<_>>()
            .join(",");
        out.push_str(name);
        out.push(':');
        out.push_str(&joined);
        out.push('\n');
    }
    out
}

fn collapse_whitespace(value: &str) -> String {
    value.split([' ', '\t']).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

/// `/<account><url_path>`, then for each query parameter, sorted by lowercased
/// name, `\n<name>:<values sorted, comma-joined>`.
fn canonicalized_resource(account: &str, url_path: &str, query: &[(String, String)]) -> String {
    let mut out = format!("/{account}{url_path}");
    let mut params: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, value) in query {
        let name = name.to_ascii_lowercase();
        match params.iter_mut().find(|(n, _)| *n == name) {
            Some((_, values)) => values.push(value),
            None => params.push((name, vec![value])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut values) in params {
        values.sort_unstable();
        out.push('\n');
        out.push_str(&name);
        out.push(':');
        out.push_str(&values.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The Azurite development key, published in Azurite's README.
    const AZURITE_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(header::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn a_ranged_conditional_get_with_query_parameters_signs_the_documented_string() {
        let h = headers(&[
            ("x-ms-version", "2021-08-06"),
            ("x-ms-date", "Tue, 02 Jan 2024 03:04:05 GMT"),
            ("X-Ms-Range", "  bytes=0-99 "),
            ("If-None-Match", "\"0x8DC0000000000\""),
            ("User-Agent", "mediagate"),
            ("Content-Length", "0"),
        ]);
        let query = [("restype".to_owned(), "container".to_owned()), ("comp".to_owned(), "list".to_owned())];
        let got = string_to_sign("devstoreaccount1", &Method::GET, "/devstoreaccount1/media", &query, &h);
        let expected = "GET\n\
                        \n\
                        \n\
                        \n\
                        \n\
                        \n\
                        \n\
                        \n\
                        \n\
                        \"0x8DC0000000000\"\n\
                        \n\
                        \n\
                        x-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\n\
                        x-ms-range:bytes=0-99\n\
                        x-ms-version:2021-08-06\n\
                        /devstoreaccount1/devstoreaccount1/media\n\
                        comp:list\n\
                        restype:container";
        assert_eq!(got, expected);
    }

    #[test]
    fn repeated_query_parameters_are_lowercased_grouped_and_their_values_sorted() {
        let query = [
            ("Include".to_owned(), "snapshots".to_owned()),
            ("comp".to_owned(), "list".to_owned()),
            ("include".to_owned(), "metadata".to_owned()),
        ];
        let got = canonicalized_resource("acct", "/c/a%20b", &query);
        assert_eq!(got, "/acct/c/a%20b\ncomp:list\ninclude:metadata,snapshots");
        assert_eq!(canonicalized_resource("acct", "/", &[]), "/acct/");
    }

    #[test]
    fn the_standard_headers_take_their_fixed_places_in_the_string_to_sign() {
        let h = headers(&[
            ("Content-Encoding", "gzip"),
            ("Content-Language", "en"),
            ("Content-Length", "12"),
            ("Content-MD5", "md5"),
            ("Content-Type", "text/plain"),
            ("Date", "d"),
            ("If-Modified-Since", "ims"),
            ("If-Match", "\"a\""),
            ("If-None-Match", "\"b\""),
            ("If-Unmodified-Since", "ius"),
            ("Range", "bytes=1-2"),
            ("x-ms-meta-b", "two  words"),
            ("x-ms-meta-a", "1"),
        ]);
        let got = string_to_sign("a", &Method::PUT, "/c/b", &[], &h);
        assert_eq!(
            got,
            "PUT\ngzip\nen\n12\nmd5\ntext/plain\nd\nims\n\"a\"\n\"b\"\nius\nbytes=1-2\n\
             x-ms-meta-a:1\nx-ms-meta-b:two words\n/a/c/b"
        );
    }

    #[test]
    fn the_signature_matches_an_independently_computed_hmac() {
        // Computed once with Python 3.11, outside this code:
        //   import base64, hashlib, hmac
        //   key = base64.b64decode("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
        //   msg = "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\nx-ms-version:2021-08-06\n/devstoreaccount1/devstoreaccount1/media/a%20b.txt"
        //   base64.b64encode(hmac.new(key, msg.encode(), hashlib.sha256).digest()).decode()
        let expected = "u89SkUQSZRMV121sqGLRlF1IoJ3oDzDtXANMA1cW1MY=";
        let key = BASE64.decode(AZURITE_KEY).unwrap();
        let h = headers(&[("x-ms-date", "Tue, 02 Jan 2024 03:04:05 GMT"), ("x-ms-version", "2021-08-06")]);
        let text = string_to_sign("devstoreaccount1", &Method::GET, "/devstoreaccount1/media/a%20b.txt", &[], &h);
        assert_eq!(
            text,
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Tue, 02 Jan 2024 03:04:05 GMT\nx-ms-version:2021-08-06\n\
             /devstoreaccount1/devstoreaccount1/media/a%20b.txt"
        );
        assert_eq!(sign(&key, &text), expected);
        let auth = shared_key_authorization(
            "devstoreaccount1",
            &key,
            &Method::GET,
            "/devstoreaccount1/media/a%20b.txt",
            &[],
            &h,
        );
        assert_eq!(auth, format!("SharedKey devstoreaccount1:{expected}"));
    }

    #[test]
    fn keys_longer_than_a_block_are_hashed_first_as_rfc_2104_says() {
        // RFC 4231 test case 6: a 131-byte key of 0xaa.
        let key = [0xaa_u8; 131];
        let mac = hmac_sha256_of(&key, b"Test Using Larger Than Block-Size Key - Hash Key First");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    }

    #[test]
    fn a_bad_account_key_is_refused_without_showing_it() {
        let err = SharedKeyCredential::from_base64("acct", "not base64 !!secretish").unwrap_err();
        assert!(err.contains("\"acct\""));
        assert!(!err.contains("secretish"));
        assert!(SharedKeyCredential::from_base64("acct", "").is_err());
    }

    #[test]
    fn debug_masks_the_account_key() {
        let cred = SharedKeyCredential::from_base64("devstoreaccount1", AZURITE_KEY).unwrap();
        let shown = format!("{cred:?}");
        assert!(shown.contains("devstoreaccount1"));
        assert!(shown.contains("***"));
        assert!(!shown.contains("Eby8"));
        assert!(!shown.contains("key: ["));
    }
}
