//! The `mediagate` command line: parses arguments and hands over to [`mediagate::app`].
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mediagate::logging::{self, LogFormat};

/// mimalloc instead of the system allocator: fewer instructions per request
/// on the hot path; built with `no_thp`, since transparent huge pages made it
/// hold 9 MiB more at idle and 14 MiB more streaming through a 16 MiB cache
/// (docs/BENCHMARKS.md, 2026-12-03).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A read-through caching HTTP proxy for media in object storage.
#[derive(Parser)]
#[command(name = "mediagate", version, about)]
struct Cli {
    /// How log lines are written to standard error.
    #[arg(long, value_enum, default_value = "pretty", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve media.
    Serve {
        /// The configuration file.
        #[arg(long, default_value = "config/mediagate.toml")]
        config: PathBuf,
    },
    /// Validate the configuration, then connection-test every integration.
    Check {
        /// The configuration file.
        #[arg(long, default_value = "config/mediagate.toml")]
        config: PathBuf,
    },
    /// Print a signed URL for a locator (CONTRACT.md section 5), on `[server] public_base_url`.
    Sign {
        /// The locator (`s3://bucket/key`, `local://demo/clip.mp4`, ...) or a path-form path (`/s3/bucket/key`).
        locator: String,
        /// How long the URL stays valid: `90s`, `15m`, `1h`, `7d` (at most `[auth] max_ttl`).
        #[arg(long)]
        ttl: String,
        /// The id of the key to sign with (default: the first `[[auth.keys]]`).
        #[arg(long)]
        kid: Option<String>,
        /// Print the query form (`/media?locator=...`) instead of the path form.
        #[arg(long)]
        query_form: bool,
        /// The configuration file.
        #[arg(long, default_value = "config/mediagate.toml")]
        config: PathBuf,
    },
    /// Exit 0 when the media listener answers its health URL (for container health checks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_guard = logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mediagate: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => mediagate::app::serve(&config, log_guard.access_log()).await,
            Command::Check { config } => mediagate::app::check(&config).await,
            Command::Sign { locator, ttl, kid, query_form, config } => {
                mediagate::app::sign(&config, &locator, &ttl, kid.as_deref(), query_form)
            }
            Command::Healthcheck { url } => mediagate::app::healthcheck(&url).await,
        }
    })
}
