//! The query form `/media?locator=<percent-encoded locator>`
//! (`Locator::from_query`): any raw query string is refused as `bad_locator`
//! or gives a locator with every property of `check_accepted_locator`; the
//! same locator, re-encoded as the only parameter, parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::error::Kind;
use mediagate::locator::Locator;
use mediagate_fuzz::check_accepted_locator;

/// `application/x-www-form-urlencoded` value encoding, written here so the
/// check does not lean on the code under test.
fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fuzz_target!(|query: &str| {
    match Locator::from_query(Some(query)) {
        Ok(loc) => {
            check_accepted_locator(query, &loc);
            let again = format!("x=1&locator={}&exp=2", form_encode(&loc.to_string()));
            match Locator::from_query(Some(&again)) {
                Ok(back) => assert_eq!(back, loc, "{again:?} from {query:?}"),
                Err(e) => panic!("re-encoded {again:?} of accepted {query:?} refused: {}", e.message),
            }
        }
        Err(e) => assert_eq!(e.kind, Kind::BadLocator, "{query:?}: {e:?}"),
    }
});
