//! The TOML configuration (src/config/, `config::parse`: the text, a file
//! name for messages and a `${VAR}` resolver).
//!
//! Any text either gives a config whose documented invariants hold (unique
//! `[a-z0-9-]+` integration names, `max_object_bytes` at most 1 GiB,
//! `slice_bytes` within 64 KiB to 1 GiB, a key in `signed-url` mode), or a
//! non-empty list of problems, each `<file>[:<line>]: ...` with the line
//! inside the text, in file order.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mediagate::config::{AuthMode, parse};

const FILE: &str = "fuzz.toml";

/// `${VAR}`: names starting with `UNSET` are unset; others read `value-of-<name>`.
fn env(name: &str) -> Option<String> {
    (!name.starts_with("UNSET")).then(|| format!("value-of-{name}"))
}

/// The line a problem names, when it names one (`fuzz.toml:12: ...`).
fn line_of(problem: &str) -> Option<usize> {
    let rest = problem.strip_prefix(FILE)?.strip_prefix(':')?;
    let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    if digits == 0 || !rest[digits..].starts_with(':') {
        return None;
    }
    rest[..digits].parse().ok()
}

fuzz_target!(|text: &str| {
    match parse(text, Path::new(FILE), &env) {
        Ok(config) => {
            let mut names = HashSet::new();
            for integration in &config.integrations {
                let name = &integration.name;
                let ok =
                    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                assert!(ok, "integration name {name:?} accepted");
                assert!(names.insert(name.clone()), "integration name {name:?} accepted twice");
            }
            let cache = &config.cache;
            assert!(cache.max_object_bytes <= 1 << 30, "max_object_bytes > 1 GiB accepted: {cache:?}");
            assert!((64 << 10..=1 << 30).contains(&cache.slice_bytes), "slice_bytes {} accepted", cache.slice_bytes);
            if config.auth.mode == AuthMode::SignedUrl {
                assert!(!config.auth.keys.is_empty(), "signed-url mode accepted without a key");
            }
            assert_eq!(config.source, Path::new(FILE));
        }
        Err(errors) => {
            assert!(!errors.problems.is_empty(), "an error without a problem for {text:?}");
            let lines = text.split('\n').count();
            let mut last = 0;
            for problem in &errors.problems {
                assert!(problem.starts_with(FILE), "problem {problem:?} does not start with the file name");
                if let Some(line) = line_of(problem) {
                    assert!((1..=lines).contains(&line), "problem {problem:?} names line {line} of {lines}");
                    assert!(line >= last, "problems out of file order: {:?}", errors.problems);
                    last = line;
                }
            }
        }
    }
});
