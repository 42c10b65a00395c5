//! The path form `/<scheme>/<bucket>/<key>` (`Locator::from_path`): any raw
//! request path either is refused as `bad_locator` or gives a locator with
//! every property of `check_accepted_locator`; an accepted path had only
//! well-formed escapes (pending check).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::error::Kind;
use mediagate::locator::Locator;
use mediagate_fuzz::{check_accepted_locator, pending};

fuzz_target!(|path: &str| {
    match Locator::from_path(path) {
        Ok(loc) => {
            check_accepted_locator(path, &loc);
            pending::assert_escapes_well_formed(path);
            let scheme_prefix = format!("/{}/", loc.scheme);
            assert!(
                path.starts_with(&scheme_prefix) || path.starts_with(&scheme_prefix[1..]),
                "{path:?} accepted as {loc:?}"
            );
        }
        Err(e) => assert_eq!(e.kind, Kind::BadLocator, "{path:?}: {e:?}"),
    }
});
