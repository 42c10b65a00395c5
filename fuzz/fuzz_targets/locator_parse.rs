//! Locator strings (`Locator::parse`: `s3://`, `gs://`, `az://`, `local://`,
//! `https://` Azure blob URLs): refused as `bad_locator` or accepted with
//! every property of `check_accepted_locator`; a non-https locator keeps its
//! key literally (no decoding).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::error::Kind;
use mediagate::locator::Locator;
use mediagate_fuzz::{check_accepted_locator, pending};

fuzz_target!(|text: &str| {
    match Locator::parse(text) {
        Ok(loc) => {
            check_accepted_locator(text, &loc);
            if text.starts_with("https://") {
                pending::assert_azure_host_is_the_cloud_form(text, &loc);
            } else {
                assert!(text.ends_with(&loc.key), "key {:?} of {text:?} is not its literal tail", loc.key);
                assert!(text.starts_with(&format!("{}://", loc.scheme)), "{text:?} accepted as {loc:?}");
            }
        }
        Err(e) => assert_eq!(e.kind, Kind::BadLocator, "{text:?}: {e:?}"),
    }
});
