//! Why a request to the storage got no answer, read from the error chain of
//! the hyper-util client (DNS, TCP, rustls), and the message that tells an
//! operator what to fix. Pure: [`classify`] and [`Failure::message`] are
//! table-tested.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::{Duration, SystemTime};

use rustls::CertificateError;

use crate::error::Kind;

/// A name that did not resolve, carried inside the resolver's `io::Error`
/// so [`classify`] can tell a DNS failure from every other connect error.
#[derive(Debug)]
pub struct ResolveError {
    pub host: String,
    /// Why, if the system resolver said (`None`: refused without asking it).
    pub source: Option<io::Error>,
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not resolve {}", self.host)?;
        match &self.source {
            Some(e) => write!(f, " ({e})"),
            None => write!(f, " (a name under .invalid never resolves, RFC 6761 section 6.4)"),
        }
    }
}

impl StdError for ResolveError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// What went wrong between mediagate and the storage before an answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The storage host name did not resolve; the text says why.
    Resolve(String),
    /// Nothing listens on the storage's port.
    Refused,
    /// The connection was closed or reset before an answer.
    Reset,
    /// The certificate chain leads to no trusted root.
    UnknownIssuer,
    /// The certificate expired (on this date, when rustls says).
    Expired(Option<SystemTime>),
    /// The certificate is not valid yet (before this date, when known).
    NotValidYet(Option<SystemTime>),
    /// The certificate does not name the host; the names it presents.
    WrongName(Vec<String>),
    /// Any other TLS failure, as rustls words it.
    Tls(String),
    /// A timeout below the client (TCP connect, TLS handshake).
    TimedOut,
    /// Anything else: the innermost error's text.
    Other(String),
}

impl Failure {
    /// Whether asking again may help: a refused connection (a restarting
    /// storage) or one closed before any answer. DNS and certificate errors
    /// will not fix themselves within a retry budget; timeouts have used up
    /// the time already.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Refused | Failure::Reset)
    }

    /// The code of CONTRACT.md section 6 for a failure without an answer:
    /// `dns`, `tls`, `timeout`, or `connect` (refused, reset, anything else).
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Resolve(_) => "dns",
            Failure::UnknownIssuer
            | Failure::Expired(_)
            | Failure::NotValidYet(_)
            | Failure::WrongName(_)
            | Failure::Tls(_) => "tls",
            Failure::TimedOut => "timeout",
            Failure::Refused | Failure::Reset | Failure::Other(_) => "connect",
        }
    }

    /// `UpstreamTimeout` (504) for a timeout, `UpstreamError` (502) for the rest.
    pub fn kind(&self) -> Kind {
        if *self == Failure::TimedOut { Kind::UpstreamTimeout } else { Kind::UpstreamError }
    }

    /// The message for the client and the log: names the integration, the
    /// storage host and what failed, and for a certificate what to check.
    /// `host` is `host` or `host:port`. Holds no URL, so never a SAS token.
    pub fn message(&self, integration: &str, host: &str) -> String {
        let storage = format!("the storage of integration \"{integration}\" ({host})");
        let name = host_name(host);
        let date =
            |t: &Option<SystemTime>| t.map(|t| format!(" on {}", httpdate::fmt_http_date(t))).unwrap_or_default();
        match self {
            Failure::Resolve(why) => format!("cannot connect to {storage}: {why}"),
            Failure::Refused => format!("cannot connect to {storage}: connection refused"),
            Failure::Reset => format!("{storage} closed the connection before answering"),
            Failure::UnknownIssuer => format!(
                "TLS to {storage} failed: the certificate is not trusted: unknown issuer; set ca_file in the \
                 integration to the CA certificate that issued it"
            ),
            Failure::Expired(t) => format!("TLS to {storage} failed: the certificate expired{}", date(t)),
            Failure::NotValidYet(t) => {
                let since = t.map(|t| format!(" before {}", httpdate::fmt_http_date(t))).unwrap_or_default();
                format!("TLS to {storage} failed: the certificate is not valid{since}; check the clocks")
            }
            Failure::WrongName(presented) if presented.is_empty() => {
                format!("TLS to {storage} failed: the certificate is not valid for {name}")
            }
            Failure::WrongName(presented) => format!(
                "TLS to {storage} failed: the certificate is not valid for {name} (it names {})",
                presented.join(", ")
            ),
            Failure::Tls(why) => format!("TLS to {storage} failed: {why}"),
            Failure::TimedOut => format!("cannot connect to {storage}: timed out"),
            Failure::Other(why) => format!("cannot reach {storage}: {why}"),
        }
    }
}

/// Reads an error chain from the innermost cause that says what happened.
/// `io::Error` hides its payload from `source()`, so each one's payload is
/// looked into as well.
pub fn classify(e: &(dyn StdError + 'static)) -> Failure {
    let mut innermost = e.to_string();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<ResolveError>() {
            return Failure::Resolve(r.to_string());
        }
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return from_rustls(t);
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_incomplete_message() || h.is_canceled())
        {
            return Failure::Reset;
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(inner) = io.get_ref() {
                let found = classify(inner);
                if !matches!(found, Failure::Other(_)) {
                    return found;
                }
            }
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return Failure::Refused,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => return Failure::Reset,
                io::ErrorKind::TimedOut => return Failure::TimedOut,
                _ => {}
            }
        }
        if err.to_string().contains("timed out") {
            return Failure::TimedOut;
        }
        innermost = err.to_string();
        cur = err.source();
    }
    Failure::Other(innermost)
}

fn from_rustls(e: &rustls::Error) -> Failure {
    let at = |t: &rustls_pki_types::UnixTime| SystemTime::UNIX_EPOCH + Duration::from_secs(t.as_secs());
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => Failure::UnknownIssuer,
            CertificateError::Expired => Failure::Expired(None),
            CertificateError::ExpiredContext { not_after, .. } => Failure::Expired(Some(at(not_after))),
            CertificateError::NotValidYet => Failure::NotValidYet(None),
            CertificateError::NotValidYetContext { not_before, .. } => Failure::NotValidYet(Some(at(not_before))),
            CertificateError::NotValidForName => Failure::WrongName(Vec::new()),
            CertificateError::NotValidForNameContext { presented, .. } => {
                Failure::WrongName(presented.iter().map(|n| presented_name(n)).collect())
            }
            other => Failure::Tls(format!("the certificate is invalid: {other}")),
        },
        other => Failure::Tls(other.to_string()),
    }
}

/// A name as webpki reports it (`DnsName("a.example")`, `IpAddress(10.0.0.1)`),
/// without the wrapping.
fn presented_name(debug: &str) -> String {
    let inner = debug
        .strip_prefix("DnsName(\"")
        .and_then(|s| s.strip_suffix("\")"))
        .or_else(|| debug.strip_prefix("IpAddress(").and_then(|s| s.strip_suffix(')')));
    inner.unwrap_or(debug).to_owned()
}

/// `host` without its port (`[::1]:9000` gives `[::1]`).
fn host_name(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() => {
            if name.starts_with('[') || !name.contains(':') { name } else { host }
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape hyper-util gives: its error, a boxed connector error, then
    /// the `io::Error` carrying the cause.
    #[derive(Debug)]
    struct Wrapper(&'static str, Box<dyn StdError + Send + Sync>);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&*self.1)
        }
    }

    fn wrapped(inner: io::Error) -> Wrapper {
        Wrapper("client error (Connect)", Box::new(Wrapper("connector", Box::new(inner))))
    }

    fn tls(c: CertificateError) -> Wrapper {
        wrapped(io::Error::new(io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(c)))
    }

    #[test]
    fn each_connect_failure_is_classified_from_its_innermost_cause() {
        let unix = |s: u64| rustls_pki_types::UnixTime::since_unix_epoch(Duration::from_secs(s));
        let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_923_200); // 2020-01-02
        let dns = ResolveError { host: "s3.invalid".into(), source: None };
        let table: Vec<(Wrapper, Failure)> = vec![
            (
                wrapped(io::Error::new(io::ErrorKind::NotFound, dns)),
                Failure::Resolve(
                    "could not resolve s3.invalid (a name under .invalid never resolves, RFC 6761 section 6.4)".into(),
                ),
            ),
            (wrapped(io::ErrorKind::ConnectionRefused.into()), Failure::Refused),
            (wrapped(io::ErrorKind::ConnectionReset.into()), Failure::Reset),
            (wrapped(io::ErrorKind::TimedOut.into()), Failure::TimedOut),
            (tls(CertificateError::UnknownIssuer), Failure::UnknownIssuer),
            (tls(CertificateError::Expired), Failure::Expired(None)),
            (
                tls(CertificateError::ExpiredContext { time: unix(1_700_000_000), not_after: unix(1_577_923_200) }),
                Failure::Expired(Some(day)),
            ),
            (
                tls(CertificateError::NotValidYetContext { time: unix(1), not_before: unix(1_577_923_200) }),
                Failure::NotValidYet(Some(day)),
            ),
            (tls(CertificateError::NotValidForName), Failure::WrongName(vec![])),
            (
                tls(CertificateError::NotValidForNameContext {
                    expected: rustls_pki_types::ServerName::try_from("s3.example").unwrap(),
                    presented: vec!["DnsName(\"other.example\")".into(), "IpAddress(10.0.0.1)".into()],
                }),
                Failure::WrongName(vec!["other.example".into(), "10.0.0.1".into()]),
            ),
            (tls(CertificateError::BadSignature), Failure::Tls("the certificate is invalid: BadSignature".into())),
            (wrapped(io::Error::other("weird")), Failure::Other("weird".into())),
        ];
        for (err, expected) in table {
            assert_eq!(classify(&err), expected, "{err:?}");
        }
    }

    #[test]
    fn messages_say_what_failed_and_what_to_fix() {
        let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_923_200);
        let table = [
            (Failure::Resolve("could not resolve s3.invalid".into()), "could not resolve s3.invalid"),
            (
                Failure::Refused,
                "cannot connect to the storage of integration \"i\" (s3.example:9000): connection refused",
            ),
            (Failure::UnknownIssuer, "the certificate is not trusted: unknown issuer; set ca_file"),
            (Failure::Expired(Some(day)), "the certificate expired on Thu, 02 Jan 2020 00:00:00 GMT"),
            (Failure::Expired(None), "the certificate expired"),
            (Failure::WrongName(vec![]), "the certificate is not valid for s3.example"),
            (Failure::WrongName(vec!["a.example".into()]), "not valid for s3.example (it names a.example)"),
            (Failure::TimedOut, "timed out"),
        ];
        for (failure, fragment) in table {
            let m = failure.message("i", "s3.example:9000");
            assert!(m.contains(fragment), "{failure:?}: {m}");
            assert!(m.contains("integration \"i\""), "{m}");
        }
    }

    #[test]
    fn only_refused_and_reset_connections_are_retried_and_only_timeouts_are_504() {
        let table = [
            (Failure::Resolve(String::new()), false, Kind::UpstreamError),
            (Failure::Refused, true, Kind::UpstreamError),
            (Failure::Reset, true, Kind::UpstreamError),
            (Failure::UnknownIssuer, false, Kind::UpstreamError),
            (Failure::Expired(None), false, Kind::UpstreamError),
            (Failure::WrongName(vec![]), false, Kind::UpstreamError),
            (Failure::TimedOut, false, Kind::UpstreamTimeout),
            (Failure::Other(String::new()), false, Kind::UpstreamError),
        ];
        for (failure, retry, kind) in table {
            assert_eq!(failure.is_retryable(), retry, "{failure:?}");
            assert_eq!(failure.kind(), kind, "{failure:?}");
        }
    }

    #[test]
    fn the_host_name_drops_only_a_port() {
        let table =
            [("s3.example:9000", "s3.example"), ("s3.example", "s3.example"), ("[::1]:9000", "[::1]"), ("::1", "::1")];
        for (host, name) in table {
            assert_eq!(host_name(host), name, "{host}");
        }
    }
}
