//! AWS Signature Version 4 for S3 requests, through `aws-sigv4`: a pure
//! function of the request, the credentials, the region and the time.
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// SHA-256 of the empty body: every request mediagate signs for S3 (GET,
/// HEAD, list) has no body, so the payload hash is this constant, which
/// every S3 implementation accepts (unlike `UNSIGNED-PAYLOAD` on some).
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Signs `req` in place: adds `x-amz-date`, `x-amz-content-sha256`,
/// `x-amz-security-token` (with a session token) and `Authorization`.
///
/// Signs the `host` (from the URI), and every header already on the request:
/// the caller sets only headers meant for the storage (range, preconditions),
/// never a browser's. The URI path must already be encoded the S3 way
/// ([`crate::locator::encode_key`]): it is signed exactly as sent.
pub fn sign_request<B>(
    req: &mut http::Request<B>,
    creds: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<(), String> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let identity: Identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot build SigV4 parameters: {e}"))?
        .into();
    let headers: Vec<(&str, &str)> =
        req.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))).collect();
    let uri = req.uri().to_string();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.into_iter(),
        SignableBody::Precomputed(EMPTY_SHA256.to_owned()),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _signature) =
        sign(signable, &params).map_err(|e| format!("cannot sign the request: {e}"))?.into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// 2013-05-24T00:00:00Z, the date of AWS's published S3 examples.
    fn example_time() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    fn example_creds() -> Credentials {
        Credentials::new("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None, None, "test")
    }

    fn authorization(req: &http::Request<()>) -> &str {
        req.headers()["authorization"].to_str().unwrap()
    }

    /// "Example: GET Object" of the SigV4 header-based-auth page: the first
    /// ten bytes of `test.txt` from `examplebucket`, virtual-host style.
    #[test]
    fn the_published_get_object_with_range_example_signs_identically() {
        let mut req = http::Request::get("https://examplebucket.s3.amazonaws.com/test.txt")
            .header("range", "bytes=0-9")
            .body(())
            .unwrap();
        sign_request(&mut req, &example_creds(), "us-east-1", example_time()).unwrap();
        assert_eq!(
            authorization(&req),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(req.headers()["x-amz-date"], "20130524T000000Z");
        assert_eq!(req.headers()["x-amz-content-sha256"], EMPTY_SHA256);
    }

    /// "Example: GET Bucket (List Objects)": `?max-keys=2&prefix=J`.
    #[test]
    fn the_published_list_objects_example_signs_identically() {
        let mut req =
            http::Request::get("https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J").body(()).unwrap();
        sign_request(&mut req, &example_creds(), "us-east-1", example_time()).unwrap();
        assert!(
            authorization(&req).ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
            "{}",
            authorization(&req)
        );
    }

    #[test]
    fn a_session_token_is_sent_and_signed() {
        let creds = Credentials::new("AKIAIOSFODNN7EXAMPLE", "secret", Some("token-123".into()), None, "test");
        let mut req = http::Request::get("http://127.0.0.1:9000/b/k").body(()).unwrap();
        sign_request(&mut req, &creds, "us-east-1", example_time()).unwrap();
        assert_eq!(req.headers()["x-amz-security-token"], "token-123");
        assert!(authorization(&req).contains("x-amz-security-token"));
    }

    #[test]
    fn an_encoded_key_is_signed_exactly_as_sent() {
        let path = format!("/b/{}", crate::locator::encode_key("a b+c/ü%"));
        assert_eq!(path, "/b/a%20b%2Bc/%C3%BC%25");
        let mut req = http::Request::get(format!("http://127.0.0.1:9000{path}")).body(()).unwrap();
        sign_request(&mut req, &example_creds(), "us-east-1", example_time()).unwrap();
        assert_eq!(req.uri().path(), path);
    }
}
