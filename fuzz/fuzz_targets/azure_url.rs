//! Azure URLs in their two homes: the `https://<account>.blob.core.windows.net/<container>/<blob>`
//! locator (`Locator::parse`) and the integration's `storage_url`
//! (`config::parse_azure_storage_url`). An accepted locator has every
//! property of `check_accepted_locator` and exactly the cloud host (pending
//! check); an accepted storage URL has a valid account and container, no
//! user info, query or fragment, and rebuilds to a URL that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::integration::azure::config::parse_azure_storage_url;
use mediagate::error::Kind;
use mediagate::locator::{Locator, Scheme};
use mediagate_fuzz::{check_accepted_locator, pending};

fuzz_target!(|input: &str| {
    let url = if input.contains("://") { input.to_owned() } else { format!("https://{input}") };

    match Locator::parse(&url) {
        Ok(loc) if url.starts_with("https://") => {
            assert_eq!(loc.scheme, Scheme::Az, "{url:?}");
            check_accepted_locator(&url, &loc);
            pending::assert_azure_host_is_the_cloud_form(&url, &loc);
            assert!(!url.contains(['?', '#']), "{url:?} accepted with a query or fragment");
        }
        Ok(loc) => check_accepted_locator(&url, &loc),
        Err(e) => assert_eq!(e.kind, Kind::BadLocator, "{url:?}: {e:?}"),
    }

    if let Ok(u) = parse_azure_storage_url(&url) {
        assert!(u.scheme == "http" || u.scheme == "https", "{url:?}: {u:?}");
        assert!(!url.contains(['@', '?', '#']), "{url:?} accepted with user info, query or fragment: {u:?}");
        let account_ok = (3..=24).contains(&u.account.len())
            && u.account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        assert!(account_ok, "{url:?} accepted with account {:?}", u.account);
        if let Some(c) = &u.container {
            let ok = c == "$root"
                || c == "$web"
                || ((3..=63).contains(&c.len())
                    && !c.starts_with('-')
                    && c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            assert!(ok, "{url:?} accepted with container {c:?}");
        }
        if !u.path_style {
            assert_eq!(u.host.split('.').next(), Some(u.account.as_str()), "{url:?}: {u:?}");
        }
        let port = u.port.map(|p| format!(":{p}")).unwrap_or_default();
        let account = if u.path_style { format!("/{}", u.account) } else { String::new() };
        let container = u.container.as_ref().map(|c| format!("/{c}")).unwrap_or_default();
        let rebuilt = format!("{}://{}{port}{account}{container}", u.scheme, u.host);
        match parse_azure_storage_url(&rebuilt) {
            Ok(back) => assert_eq!(back, u, "{url:?} rebuilt as {rebuilt:?}"),
            Err(e) => panic!("{url:?} accepted but its rebuilt form {rebuilt:?} is refused: {e}"),
        }
    }
});
