//! Converters from a [`Scalar`] to a typed value, each with the message a
//! person needs when the value is wrong; and the human units (`64MiB`, `5m`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Scalar;
use crate::secret::Secret;

pub fn as_string(v: Scalar) -> Result<String, String> {
    match v {
        Scalar::Str(s) => Ok(s),
        other => Err(format!("expected a string, got {}", other.shown())),
    }
}

pub fn as_nonempty(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    if s.trim().is_empty() { Err("must not be empty".to_string()) } else { Ok(s) }
}

/// A secret: never shown in a message, never empty.
pub fn as_secret(v: Scalar) -> Result<Secret, String> {
    match v {
        Scalar::Str(s) if s.is_empty() => {
            Err("is empty (if it reads ${VAR}, that variable is set but empty)".to_string())
        }
        Scalar::Str(s) => Ok(Secret::new(s)),
        other => Err(format!("expected a string, got {}", other.kind())),
    }
}

/// The shortest key mediagate itself checks (URL-signing keys, the admin token), in bytes.
pub const MIN_KEY_BYTES: usize = 16;

/// A secret mediagate checks itself (a URL-signing key, the admin token):
/// at least [`MIN_KEY_BYTES`] long.
pub fn as_key_secret(v: Scalar) -> Result<Secret, String> {
    let s = as_secret(v)?;
    if s.expose().len() < MIN_KEY_BYTES {
        return Err(format!(
            "is shorter than {MIN_KEY_BYTES} bytes: use a long random string, e.g. from `openssl rand -base64 32`"
        ));
    }
    Ok(s)
}

pub fn as_bool(v: Scalar) -> Result<bool, String> {
    match v {
        Scalar::Bool(b) => Ok(b),
        Scalar::Str(s) if s == "true" || s == "false" => Ok(s == "true"),
        other => Err(format!("expected true or false, got {}", other.shown())),
    }
}

/// An integer from `lo` to `hi`; a string holding one is accepted (`${VAR}`).
pub fn as_int(v: Scalar, lo: i64, hi: i64) -> Result<i64, String> {
    let n = match &v {
        Scalar::Int(n) => Some(*n),
        Scalar::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ if hi == i64::MAX => Err(format!("expected an integer of at least {lo}, got {}", v.shown())),
        _ => Err(format!("expected an integer from {lo} to {hi}, got {}", v.shown())),
    }
}

pub fn as_count(v: Scalar, min: i64) -> Result<usize, String> {
    as_int(v, min, i64::MAX).and_then(|n| usize::try_from(n).map_err(|_| format!("{n} is too large")))
}

pub fn as_port(v: Scalar) -> Result<u16, String> {
    as_int(v, 1, 65535).map(|n| n as u16)
}

/// A duration: `"500ms"`, `"10s"`, `"1m30s"`, or an integer of seconds.
pub fn as_duration(v: Scalar) -> Result<Duration, String> {
    match v {
        Scalar::Int(n) if n >= 0 => Ok(Duration::from_secs(n as u64)),
        Scalar::Str(s) => parse_duration(&s),
        other => Err(format!("expected a duration such as \"500ms\", \"10s\" or \"5m\", got {}", other.shown())),
    }
}

/// A duration greater than zero.
pub fn as_timeout(v: Scalar) -> Result<Duration, String> {
    let d = as_duration(v)?;
    if d.is_zero() { Err("must be more than zero".to_string()) } else { Ok(d) }
}

pub fn as_socket_addr(v: Scalar) -> Result<SocketAddr, String> {
    let s = as_string(v)?;
    s.trim()
        .parse()
        .map_err(|_| format!("expected an IP address and port such as \"127.0.0.1:8080\" or \"[::]:8080\", got {s:?}"))
}

pub fn as_base_url(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(s.trim_end_matches('/').to_string()),
        _ => Err(format!(
            "expected a URL starting with http:// or https://, such as \"https://media.example.com\", got {s:?}"
        )),
    }
}

pub fn as_header_value(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    match http::HeaderValue::from_str(&s) {
        Ok(_) if !s.trim().is_empty() => Ok(s),
        _ => Err(format!("expected a valid header value such as \"public, max-age=300\", got {s:?}")),
    }
}

/// A path to a file that exists (relative to the working directory).
pub fn as_existing_file(v: Scalar) -> Result<PathBuf, String> {
    let path = PathBuf::from(as_nonempty(v)?);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Splits `host:port` (the port as written); `[v6]:port` keeps its brackets.
pub fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

/// Letters, digits, '-' and '.', in non-empty labels (IPv4 fits too).
pub fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// Parses a duration: `"500ms"`, `"10s"`, `"5m"`, `"1h"`, `"1d"`, or a sum
/// such as `"1m30s"` / `"1h 30m"`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as \"500ms\", \"10s\", \"5m\", \"1h\" or \"1d\", got {text:?}");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        return rest.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let millis_per_unit: u64 = match &rest[..letters] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let millis = n.checked_mul(millis_per_unit).ok_or_else(bad)?;
        total = total.checked_add(Duration::from_millis(millis)).ok_or_else(bad)?;
        rest = rest[letters..].trim_start();
    }
    Ok(total)
}

/// Parses a size in bytes: `"64MiB"`, `"4 KiB"`, `"1GB"`, `"1.5GiB"`, `"512"`
/// (units are case-insensitive; KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB
/// of 1024; a fraction is rounded down to whole bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("expected a size such as \"512KiB\", \"64MiB\" or \"1GB\", got {text:?}");
    let s = text.trim();
    let number_len = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = (&s[..number_len], s[number_len..].trim_start());
    let multiplier: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |d: &str| d.len() <= 18 && d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) || (number.ends_with('.')) {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    let fraction_value: u128 = if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| bad())? };
    let scale = 10u128.pow(fraction.len() as u32);
    let bytes = whole * multiplier + fraction_value * multiplier / scale;
    u64::try_from(bytes).map_err(|_| bad())
}

/// A size (`"64MiB"`, `"4 KiB"`, an integer of bytes) from `lo` to `hi`.
pub fn as_size_in(v: Scalar, lo: u64, hi: u64) -> Result<u64, String> {
    let n = match v {
        Scalar::Int(n) if n >= 0 => n as u64,
        Scalar::Str(s) => parse_size(&s)?,
        other => return Err(format!("expected a size such as \"64MiB\" or a number of bytes, got {}", other.shown())),
    };
    if n < lo || n > hi {
        return Err(format!("{n} bytes is outside the allowed {lo} to {hi} bytes"));
    }
    Ok(n)
}
