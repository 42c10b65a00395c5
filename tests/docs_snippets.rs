//! The storage guides under `docs/integrations/` (and the README) are only
//! useful if what they tell people to paste works. These tests read every
//! fenced block of those files and check it the way mediagate would:
//!
//! - each ```` ```toml ```` block passes the syntax and value validation that
//!   `mediagate check` runs first ([`mediagate::config::parse`]), with every
//!   `${VAR}` set to a placeholder of the shape its key needs;
//! - each ```` ```json ```` block parses as JSON;
//! - each `curl ... -d '{...}'` body parses as JSON, and in the guides the
//!   body of a `PUT /api/integrations/<name>` is, written as an
//!   `[[integration]]` table, a valid integration too (the API and the file
//!   share one definition);
//! - ```` ```toml future ```` blocks (keys this version refuses, such as the
//!   Azure service principal of issue 9) are listed and counted, never
//!   silently skipped; each must still be refused, so the day it passes the
//!   test asks for a plain ```` ```toml ```` fence.
//!
//! No storage peer is needed: nothing here connects anywhere.

mod common;

use std::path::{Path, PathBuf};

/// How many ```` ```toml future ```` blocks the guides hold. A new one must
/// be a conscious choice: raise this number in the same change.
const EXPECTED_FUTURE_BLOCKS: usize = 0;

/// The guides, each of which must show a policy (JSON), a config table
/// (TOML) and an admin API call (a `curl` with a JSON body).
const GUIDES: [&str; 4] = ["aws-s3.md", "minio.md", "google-cloud-storage.md", "azure-blob.md"];

/// Keys whose validation opens a file: the guide's path is the reader's, so
/// the test points them at a file that exists here.
const FILE_KEYS: [&str; 6] =
    ["ca_file", "tls_cert", "tls_key", "secret_access_key_file", "session_token_file", "client_secret_file"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The markdown files checked: every `docs/integrations/*.md`, then README.md.
fn markdown_files() -> Vec<PathBuf> {
    let dir = root().join("docs/integrations");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "md"))
        .collect();
    files.sort();
    files.push(root().join("README.md"));
    files
}

/// One fenced block of a markdown file.
struct Block {
    /// The info string after the opening fence (`toml`, `toml future`, `sh`...).
    info: String,
    /// The 1-based line of the opening fence.
    fence_line: usize,
    /// The lines between the fences, with the fence's indentation removed.
    text: String,
}

impl Block {
    fn lang(&self) -> &str {
        self.info.split_whitespace().next().unwrap_or("")
    }
}

/// Splits markdown into its fenced (```` ``` ````) blocks. A fence may be
/// indented (inside a list item); the block's lines lose that indentation.
fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let block = Block { info: info.trim().to_string(), fence_line: i + 1, text: String::new() };
                    open = Some((block, indent));
                }
            }
            Some((block, _)) if trimmed.trim_end() == "```" => out.push(block),
            Some((mut block, fence_indent)) => {
                let cut = line.len() - line.trim_start_matches(' ').len();
                block.text.push_str(&line[cut.min(fence_indent)..]);
                block.text.push('\n');
                open = Some((block, fence_indent));
            }
        }
    }
    if let Some((block, _)) = open {
        panic!("a fence opened at line {} is never closed", block.fence_line);
    }
    out
}

/// Rewrites `ca_file = "..."` (and the other [`FILE_KEYS`]) to name `existing`,
/// keeping every other line, so the line numbers stay those of the markdown.
fn with_existing_files(text: &str, existing: &Path) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let key = line.split('=').next().unwrap_or("").trim();
        if FILE_KEYS.contains(&key) && line.contains('=') {
            out.push_str(&format!("{key} = {:?}", existing.display().to_string()));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Validates `toml` as `mediagate check` would, placed at `first_line` of
/// `md` so problems name the markdown line; returns the problems. An
/// integration that only lacks keys parses (it would be saved as
/// incomplete), but a guide that shows one is wrong: its keys are problems too.
fn validate(md: &Path, first_line: usize, toml: &str, existing: &Path) -> Result<(), Vec<String>> {
    let text = format!("{}{}", "\n".repeat(first_line - 1), with_existing_files(toml, existing));
    let config = mediagate::config::parse(&text, &relative(md), &common::env_placeholder).map_err(|e| e.problems)?;
    let unfinished: Vec<String> = config
        .integrations
        .iter()
        .flat_map(|integration| integration.missing())
        .map(|p| {
            let place = relative(md);
            format!("{}:{}: {}: {} (it would be saved as incomplete)", place.display(), p.line, p.path(), p.message)
        })
        .collect();
    if unfinished.is_empty() { Ok(()) } else { Err(unfinished) }
}

/// Whether `md` is one of the guides (not the project README).
fn in_guides(md: &Path) -> bool {
    md.parent().is_some_and(|dir| dir.ends_with("docs/integrations"))
}

fn relative(path: &Path) -> PathBuf {
    path.strip_prefix(root()).unwrap_or(path).to_path_buf()
}

/// A file that exists, for the [`FILE_KEYS`].
fn existing_file() -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().prefix("mediagate-docs-ca-").suffix(".pem").tempfile().expect("a temp file");
    std::fs::write(file.path(), "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").expect("write");
    file
}

/// A `curl` request body found in a shell block.
struct CurlBody {
    line: usize,
    body: String,
    /// `Some(name)` for `curl -X PUT .../api/integrations/<name> -d '...'`.
    put_integration: Option<String>,
}

/// Every `-d '...'` / `--data '...'` / `--data-raw '...'` of a `curl`
/// command in `block`, with the line it starts on.
fn curl_bodies(block: &Block) -> Vec<CurlBody> {
    let text = &block.text;
    let mut out = Vec::new();
    for flag in ["-d '", "--data '", "--data-raw '"] {
        let mut from = 0;
        while let Some(at) = text[from..].find(flag).map(|i| from + i) {
            let start = at + flag.len();
            let Some(len) = text[start..].find('\'') else { break };
            let body = text[start..start + len].to_string();
            let command_start = text[..at].rfind("curl ").unwrap_or(0);
            let command = &text[command_start..at];
            let put_integration = (command.contains("-X PUT"))
                .then(|| command.split("/api/integrations/").nth(1))
                .flatten()
                .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect());
            let line = block.fence_line + 1 + text[..start].matches('\n').count();
            out.push(CurlBody { line, body, put_integration });
            from = start + len + 1;
        }
    }
    out
}

/// The body of a `PUT /api/integrations/<name>` as an `[[integration]]`
/// table: each key on its line, its JSON value written as TOML (strings,
/// numbers, booleans and arrays of them are spelled alike in both).
fn as_integration_table(name: &str, body: &serde_json::Value) -> Result<String, String> {
    let object = body.as_object().ok_or("the body is not a JSON object")?;
    let mut table = String::from("[[integration]]\n");
    if !object.contains_key("name") {
        table.push_str(&format!("name = {}\n", serde_json::Value::String(name.to_string())));
    }
    for (key, value) in object {
        if value.is_object() || value.is_null() {
            return Err(format!("key {key:?} holds {value}, which no integration key takes"));
        }
        if key == "name" && value.as_str() != Some(name) {
            return Err(format!("\"name\" is {value} but the URL names {name:?}"));
        }
        table.push_str(&format!("{key} = {value}\n"));
    }
    Ok(table)
}

#[test]
fn every_toml_snippet_in_the_guides_and_the_readme_passes_config_validation() {
    let existing = existing_file();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut future = Vec::new();
    for md in markdown_files() {
        let markdown = std::fs::read_to_string(&md).expect("read the markdown");
        for block in blocks(&markdown) {
            match (block.lang(), block.info.split_whitespace().nth(1)) {
                ("toml", Some("future")) => {
                    future.push(format!("{}:{}", relative(&md).display(), block.fence_line));
                    if validate(&md, block.fence_line + 1, &block.text, existing.path()).is_ok() {
                        failures.push(format!(
                            "{}:{}: this ```toml future snippet now passes `mediagate check`: fence it as ```toml \
                             and lower EXPECTED_FUTURE_BLOCKS",
                            relative(&md).display(),
                            block.fence_line
                        ));
                    }
                }
                ("toml", None) => {
                    checked += 1;
                    if let Err(problems) = validate(&md, block.fence_line + 1, &block.text, existing.path()) {
                        failures.push(format!(
                            "{}:{}: this ```toml snippet does not pass `mediagate check`:\n    {}",
                            relative(&md).display(),
                            block.fence_line,
                            problems.join("\n    ")
                        ));
                    }
                }
                ("toml", Some(other)) => failures.push(format!(
                    "{}:{}: unknown fence ```toml {other} (write ```toml, or ```toml future for keys not supported yet)",
                    relative(&md).display(),
                    block.fence_line
                )),
                _ => {}
            }
        }
    }
    println!("validated {checked} ```toml snippets");
    println!("{} ```toml future block(s), keys this version still refuses:", future.len());
    for place in &future {
        println!("  {place}");
    }
    assert!(failures.is_empty(), "{} snippet(s) fail:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(
        future.len(),
        EXPECTED_FUTURE_BLOCKS,
        "the guides hold {} ```toml future blocks ({}), the test expects {EXPECTED_FUTURE_BLOCKS}: \
         if the new one is deliberate, raise EXPECTED_FUTURE_BLOCKS",
        future.len(),
        future.join(", ")
    );
}

#[test]
fn every_json_block_and_curl_body_in_the_guides_parses_and_put_bodies_are_valid_integrations() {
    let existing = existing_file();
    let mut failures = Vec::new();
    let (mut json_blocks, mut bodies, mut puts) = (0, 0, 0);
    for md in markdown_files() {
        let markdown = std::fs::read_to_string(&md).expect("read the markdown");
        let shown = relative(&md);
        for block in blocks(&markdown) {
            if block.lang() == "json" {
                json_blocks += 1;
                if let Err(e) = serde_json::from_str::<serde_json::Value>(&block.text) {
                    let line = block.fence_line + e.line();
                    failures.push(format!("{}:{line}: this ```json block is not JSON: {e}", shown.display()));
                }
                continue;
            }
            for curl in curl_bodies(&block) {
                bodies += 1;
                let value = match serde_json::from_str::<serde_json::Value>(&curl.body) {
                    Ok(value) => value,
                    Err(e) => {
                        let line = curl.line + e.line() - 1;
                        failures.push(format!("{}:{line}: this curl body is not JSON: {e}", shown.display()));
                        continue;
                    }
                };
                // The README's admin examples may show an unfinished body on
                // purpose (save-unfinished); the guides' bodies must be whole.
                let Some(name) = curl.put_integration.filter(|_| in_guides(&md)) else { continue };
                puts += 1;
                let result = as_integration_table(&name, &value)
                    .map_err(|e| vec![e])
                    .and_then(|table| validate(&md, curl.line, &table, existing.path()));
                if let Err(problems) = result {
                    failures.push(format!(
                        "{}:{}: the body of PUT /api/integrations/{name}, as an [[integration]] table, is not valid:\n    {}",
                        shown.display(),
                        curl.line,
                        problems.join("\n    ")
                    ));
                }
            }
        }
    }
    println!("parsed {json_blocks} ```json blocks and {bodies} curl bodies, {puts} of them PUT integrations");
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn each_guide_shows_a_policy_a_config_table_and_an_admin_api_call() {
    for guide in GUIDES {
        let md = root().join("docs/integrations").join(guide);
        let markdown = std::fs::read_to_string(&md).unwrap_or_else(|e| panic!("{}: {e}", md.display()));
        let blocks = blocks(&markdown);
        let count = |lang: &str| blocks.iter().filter(|b| b.info == lang).count();
        let puts: usize = blocks.iter().flat_map(curl_bodies).filter(|c| c.put_integration.is_some()).count();
        assert!(count("json") > 0, "{guide}: no ```json block (the least-privilege policy)");
        assert!(count("toml") > 0, "{guide}: no ```toml block (the [[integration]] table)");
        assert!(puts > 0, "{guide}: no `curl -X PUT .../api/integrations/<name> -d '{{...}}'`");
        assert!(
            markdown.contains("## What the connection test says"),
            "{guide}: no \"What the connection test says\" section"
        );
    }
    let index = root().join("docs/integrations/README.md");
    let index = std::fs::read_to_string(&index).expect("docs/integrations/README.md");
    for guide in GUIDES {
        assert!(index.contains(&format!("({guide})")), "docs/integrations/README.md does not link {guide}");
    }
}

#[test]
fn the_snippet_checker_catches_a_wrong_key_and_reports_the_markdown_line() {
    let md = "intro\n\n```toml\n[[integration]]\nname = \"x\"\ntype = \"s3\"\nregoin = \"us-east-1\"\n```\n";
    let block = blocks(md).pop().expect("one block");
    assert_eq!((block.info.as_str(), block.fence_line), ("toml", 3));
    let problems = validate(Path::new("docs/x.md"), block.fence_line + 1, &block.text, Path::new("Cargo.toml"))
        .expect_err("an unknown key is refused");
    assert!(problems.iter().any(|p| p.starts_with("docs/x.md:7:") && p.contains("regoin")), "{problems:?}");
}

#[test]
fn the_snippet_checker_refuses_an_integration_that_would_only_be_incomplete() {
    let toml = "[[integration]]\nname = \"x\"\ntype = \"s3\"\nbuckets = [\"media\"]\n";
    let problems = validate(Path::new("docs/x.md"), 10, toml, Path::new("Cargo.toml"))
        .expect_err("a table without credentials is not a finished example");
    assert!(problems.iter().all(|p| p.starts_with("docs/x.md:1") && p.contains("incomplete")), "{problems:?}");
}

#[test]
fn curl_bodies_are_found_with_their_line_and_integration_name() {
    let md = "```sh\ncurl -X PUT -H 'Content-Type: application/json' \\\n  http://127.0.0.1:9091/api/integrations/aws-media \\\n  -d '{\n  \"type\": \"s3\"\n}'\n```\n";
    let block = blocks(md).pop().expect("one block");
    let bodies = curl_bodies(&block);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0].put_integration.as_deref(), Some("aws-media"));
    assert_eq!(bodies[0].line, 4);
    assert!(bodies[0].body.contains("\"type\": \"s3\""));
}
