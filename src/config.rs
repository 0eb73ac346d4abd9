//! Server configuration: parsed and validated once from flags, environment and the optional
//! configuration file ([`crate::config_file`]), then passed explicitly. `std::env` is read
//! here and nowhere else.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::config_file::LoadError;

/// Default bound on the bytes a part's [`crate::stream::TrackableReadBuffer`] holds before the
/// body pump stops reading from the socket. 1 MiB keeps 4 parts in flight well under the
/// 64 MiB budget while being large enough that disk writes happen in big batches.
pub const DEFAULT_PART_BUFFER_BYTES: usize = 1024 * 1024;

/// Default number of parts of one request that may be parsed, written or fsynced at once.
/// Overlap hides fsync latency; more than a few only adds memory.
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 4;

/// Default cap on the header block of one multipart part (real clients send < 300 bytes).
pub const DEFAULT_MAX_PART_HEADER_BYTES: usize = 16 * 1024;

/// Default cap on sequence/item nesting in a data set (real data rarely exceeds 6).
pub const DEFAULT_MAX_DEPTH: usize = 32;

/// Default idle timeout of request bodies and retrieves, in seconds.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;

/// Default cap on parts per STOW-RS request (real batches hold tens to hundreds).
pub const DEFAULT_MAX_PARTS: usize = 10_000;

/// Default cap on a query string: OHIF's longest searches are well under 1 KiB.
pub const DEFAULT_MAX_QUERY_BYTES: usize = 8 * 1024;

/// Which routes require credentials when credentials are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthScope {
    /// Every route, status included.
    All,
    /// STOW-RS only.
    Stow,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

/// What the binary does besides serving.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Rebuild the index from the files under --dir (run it while the server is stopped).
    Reindex,
    /// Upload DICOM files and folders to a STOW-RS server (this one or any other).
    Stow(crate::upload::StowArgs),
}

/// Command line of the `dicomwebserver` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "dicomwebserver",
    version,
    about = "A streaming DICOMweb server: STOW-RS, QIDO-RS and WADO-RS"
)]
pub struct Config {
    /// Serve (the default), or another task.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML file of option values; flags and environment variables override it. Keys are the
    /// long flag names: `port = 8042`, `cors-allow-origin = ["http://localhost:3000"]`,
    /// `stack-dump = true` (docs/operations.md, "Configuration file").
    #[arg(long, env = "DICOMWEB_CONFIG", value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "DICOMWEB_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// TCP port to listen on; 0 picks a free port (the real one is printed at startup).
    #[arg(short = 'p', long, env = "DICOMWEB_PORT", default_value_t = 5000)]
    pub port: u16,

    /// Storage root: instances, the index, temporary files. Defaults to ~/dicomweb.
    #[arg(short = 'o', long = "dir", env = "DICOMWEB_DIR", global = true)]
    pub dir: Option<PathBuf>,

    /// URL prefix under which the DICOMweb routes are mounted.
    #[arg(long, env = "DICOMWEB_SERVER_PATH", default_value = "/dicomweb")]
    pub server_path: String,

    /// Replace a stored instance when the same SOP Instance UID arrives with different bytes
    /// (by default that is failure 0x0111 and nothing is overwritten).
    #[arg(long, env = "DICOMWEB_ALLOW_OVERWRITE")]
    pub allow_overwrite: bool,

    /// Bytes one part may hold in memory before the server stops reading the socket.
    #[arg(long, env = "DICOMWEB_PART_BUFFER_BYTES", default_value_t = DEFAULT_PART_BUFFER_BYTES)]
    pub part_buffer_bytes: usize,

    /// Parts of one request processed at once (parse, write, fsync overlap).
    #[arg(long, env = "DICOMWEB_PARTS_IN_FLIGHT", default_value_t = DEFAULT_PARTS_IN_FLIGHT)]
    pub parts_in_flight: usize,

    /// Largest header block accepted for one multipart part.
    #[arg(long, env = "DICOMWEB_MAX_PART_HEADER_BYTES", default_value_t = DEFAULT_MAX_PART_HEADER_BYTES)]
    pub max_part_header_bytes: usize,

    /// Warn when a part's `ensure_available(n)` stays pending this many milliseconds, with the
    /// stack captured at the call (15000 when the flag is given without a value).
    #[arg(
        long = "livelock-detect",
        env = "TRACKABLE_STREAM_LIVELOCK_DETECT_MS",
        value_name = "MS",
        num_args = 0..=1,
        default_missing_value = "15000"
    )]
    pub livelock_detect_ms: Option<u64>,

    /// Make SIGUSR2 write a stack dump of every thread, upload, pending wait and task to
    /// stderr (without it SIGUSR2 only logs that dumps are disabled).
    #[arg(
        long = "stack-dump",
        env = "STACK_DUMP_ENABLED",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub stack_dump_enabled: bool,

    /// Make SIGUSR2 run the sampler instead: a dump every MS milliseconds, then a summary of
    /// the repeating paths (implies --stack-dump).
    #[arg(long, env = "STACK_DUMP_SAMPLE_MS", value_name = "MS")]
    pub stack_dump_sample_ms: Option<u64>,

    /// How long the sampler runs.
    #[arg(
        long,
        env = "STACK_DUMP_SAMPLE_DURATION_MS",
        value_name = "MS",
        default_value_t = 2000
    )]
    pub stack_dump_sample_duration_ms: u64,

    /// Serve the stack dump and the sampler over HTTP on this address (`PORT` alone means
    /// 127.0.0.1:PORT; the flag alone picks a free loopback port): `GET /debug/dump`,
    /// `GET /debug/sample?interval_ms=200&duration_ms=2000`.
    #[arg(
        long = "debug-listen",
        env = "DICOMWEB_DEBUG_LISTEN",
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = "127.0.0.1:0"
    )]
    pub debug_listen: Option<String>,

    /// The URL clients reach the DICOMweb routes at (e.g. `https://pacs.example.org/dicomweb`
    /// behind a reverse proxy), used in Retrieve URLs and Bulk Data URIs. By default they are
    /// built from each request's Host header and --server-path.
    #[arg(long, env = "DICOMWEB_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Origins allowed to call the server from a browser (CORS), e.g. where OHIF is served:
    /// repeat the flag or separate with commas; `*` allows any origin. None by default.
    #[arg(
        long = "cors-allow-origin",
        env = "DICOMWEB_CORS_ALLOW_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_allow_origins: Vec<String>,

    /// Log format on stderr; levels and targets via RUST_LOG (e.g. `info,dicomwebserver=debug`).
    #[arg(long, env = "DICOMWEB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Seconds a request body may go without sending a byte before the upload is cut off and
    /// everything it held is freed (per read, not for the whole request: big uploads from
    /// honest clients are never cut). Also how long a retrieve waits on a client that stopped
    /// reading.
    #[arg(long, env = "DICOMWEB_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS)]
    pub idle_timeout_secs: u64,

    /// Largest request body accepted, in bytes (0: no limit). A larger Content-Length is
    /// refused with 413 before reading; a chunked body that grows past it is cut there.
    #[arg(long, env = "DICOMWEB_MAX_REQUEST_BYTES", default_value_t = 0)]
    pub max_request_bytes: u64,

    /// Most parts accepted in one STOW-RS request; later parts fail.
    #[arg(long, env = "DICOMWEB_MAX_PARTS", default_value_t = DEFAULT_MAX_PARTS)]
    pub max_parts: usize,

    /// Longest query string accepted (QIDO-RS and others), in bytes.
    #[arg(long, env = "DICOMWEB_MAX_QUERY_BYTES", default_value_t = DEFAULT_MAX_QUERY_BYTES)]
    pub max_query_bytes: usize,

    /// File holding the bearer token that grants full access (reads and STOW); a trailing
    /// newline is ignored. With no credential configured, no authentication is required.
    #[arg(long, env = "DICOMWEB_AUTH_TOKEN_FILE", value_name = "PATH")]
    pub auth_token_file: Option<PathBuf>,

    /// File holding a bearer token that grants reads only (STOW with it is 403).
    #[arg(long, env = "DICOMWEB_AUTH_READ_TOKEN_FILE", value_name = "PATH")]
    pub auth_read_token_file: Option<PathBuf>,

    /// File holding `user:password` for HTTP basic authentication with full access.
    #[arg(long, env = "DICOMWEB_AUTH_BASIC_FILE", value_name = "PATH")]
    pub auth_basic_file: Option<PathBuf>,

    /// What needs credentials when some are configured: `all` routes, or only `stow`
    /// (searches and retrieves stay open).
    #[arg(long, env = "DICOMWEB_AUTH_SCOPE", value_enum, default_value_t = AuthScope::All)]
    pub auth_scope: AuthScope,

    /// Seconds in-flight uploads may take to finish after SIGTERM/SIGINT before they are
    /// abandoned (their temp files removed, nothing acknowledged).
    #[arg(long, env = "DICOMWEB_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,

    /// Deepest sequence nesting accepted in a data set.
    #[arg(long, env = "DICOMWEB_MAX_DEPTH", default_value_t = DEFAULT_MAX_DEPTH)]
    pub max_depth: usize,
}

impl Config {
    /// The configuration from the command line, the environment and the `--config` file, in
    /// that order of precedence over the defaults. Exits as [`Parser::parse`] does on usage
    /// errors, `--help` and `--version`; a bad configuration file is an error naming the file.
    pub fn load() -> Result<Config, String> {
        match crate::config_file::load_from(std::env::args_os()) {
            Ok(config) => Ok(config),
            Err(LoadError::Usage(error)) => error.exit(),
            Err(LoadError::File(message)) => Err(message),
        }
    }

    /// A configuration with every default, storing under `dir`, on 127.0.0.1 with a free port.
    pub fn with_dir(dir: impl Into<PathBuf>) -> Config {
        let mut config = Config::parse_from(["dicomwebserver"]);
        config.dir = Some(dir.into());
        config.port = 0;
        config
    }

    /// Checks invariants the rest of the server relies on and fills in the default storage
    /// root. Called once at startup.
    pub fn validate(mut self) -> Result<Config, String> {
        if self.dir.is_none() {
            let home = std::env::var_os("HOME")
                .ok_or("--dir is not set and HOME is unknown: pass --dir DIR")?;
            self.dir = Some(PathBuf::from(home).join("dicomweb"));
        }
        let prefix = self.server_path.trim_end_matches('/');
        if !prefix.is_empty() && !prefix.starts_with('/') {
            return Err(format!(
                "--server-path must start with '/': got {:?}",
                self.server_path
            ));
        }
        self.server_path = prefix.to_string();
        if self.part_buffer_bytes < 4096 {
            return Err("--part-buffer-bytes must be at least 4096".into());
        }
        if self.parts_in_flight == 0 {
            return Err("--parts-in-flight must be at least 1".into());
        }
        if self.max_part_header_bytes < 256 {
            return Err("--max-part-header-bytes must be at least 256".into());
        }
        self.debug_addr()?;
        if let Some(url) = &self.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "--public-url must start with http:// or https://: got {url:?}"
                ));
            }
        }
        if self.stack_dump_sample_ms == Some(0) {
            return Err("STACK_DUMP_SAMPLE_MS must be at least 1".into());
        }
        if self.idle_timeout_secs == 0 {
            return Err("--idle-timeout-secs must be at least 1".into());
        }
        if self.max_parts == 0 {
            return Err("--max-parts must be at least 1".into());
        }
        if self.max_query_bytes < 256 {
            return Err("--max-query-bytes must be at least 256".into());
        }
        if self.livelock_detect_ms == Some(0) {
            return Err("--livelock-detect must be at least 1 ms".into());
        }
        if self.max_depth == 0 {
            return Err("--max-depth must be at least 1".into());
        }
        Ok(self)
    }

    /// The debug listener's address, if one was asked for.
    pub fn debug_addr(&self) -> Result<Option<std::net::SocketAddr>, String> {
        let Some(value) = &self.debug_listen else {
            return Ok(None);
        };
        if let Ok(port) = value.parse::<u16>() {
            return Ok(Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))));
        }
        value
            .parse()
            .map(Some)
            .map_err(|_| format!("--debug-listen: {value:?} is not PORT or ADDR:PORT"))
    }

    /// The storage root; [`Config::validate`] guarantees it is set.
    pub fn storage_root(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("dicomweb"))
    }
}
