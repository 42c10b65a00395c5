//! `${VAR}` in config strings: expanded from the environment when read,
//! kept as written when shown (CONTRACT.md section 2).

/// Expands `${VAR}` from `env`; `$${` is a literal `${`, and any other `$`
/// is kept as is.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("unterminated ${ (write $${ for a literal ${)".to_string());
            };
            let name = &after[..end];
            if !is_env_name(name) {
                return Err(format!(
                    "${{{name}}} is not a valid environment variable name (write $${{ for a literal ${{)"
                ));
            }
            match env(name) {
                Some(value) => out.push_str(&value),
                None => missing.push(name),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    match missing.as_slice() {
        [] => Ok(out),
        [one] => Err(format!("environment variable {one} is not set")),
        many => Err(format!("environment variables {} are not set", many.join(", "))),
    }
}

pub fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `text` is exactly one `${VAR}` reference (then the admin API
/// shows a secret as written, never its value).
pub fn is_reference(text: &str) -> bool {
    text.strip_prefix("${").and_then(|rest| rest.strip_suffix('}')).is_some_and(is_env_name)
}
