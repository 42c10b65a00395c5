//! The S3/Azure path encoding of object keys: for any key,
//! `percent_decode(encode_key(key)) == key` and the encoding uses only
//! unreserved characters, `/` and upper-case escapes; the path form and the
//! locator string accept exactly the same keys, as the same locator; and no
//! accepted key puts a `.` or `..` segment in an upstream path (pending check).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::locator::{Locator, encode_key};
use mediagate_fuzz::{check_accepted_locator, check_key_round_trip};

// Input: the key, as stored.
fuzz_target!(|key: &str| {
    check_key_round_trip(key);
    for (scheme, bucket) in [("s3", "media"), ("gs", "b.example"), ("az", "acct/media"), ("local", "demo")] {
        check_both_forms(scheme, bucket, key);
    }
});

fn check_both_forms(scheme: &str, bucket: &str, key: &str) {
    let text = format!("{scheme}://{bucket}/{key}");
    let path = format!("/{scheme}/{bucket}/{}", encode_key(key));
    match (Locator::parse(&text), Locator::from_path(&path)) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{text:?} and {path:?} give different locators");
            assert_eq!(a.key, key, "{text:?} changed the key");
            check_accepted_locator(&text, &a);
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "the two forms disagree on key {key:?}: {text:?} -> {:?}, {path:?} -> {:?}",
            a.map_err(|e| e.message),
            b.map_err(|e| e.message)
        ),
    }
}
