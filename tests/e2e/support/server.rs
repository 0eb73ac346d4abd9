//! Starting the server for a test: in-process through the library (`server::run` on
//! 127.0.0.1:0 with a fresh temporary storage root), or as the real binary whose `listening`
//! line gives the port (and whose stderr the diagnostics tests read). Also the storage checks
//! every test shares (stored files, empty tmp/).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use dicomwebserver::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Bound on how long a graceful shutdown may take before the test reports a hang. This is a
/// watchdog against a stuck drain, not a performance assertion.
const SHUTDOWN_WATCHDOG: Duration = Duration::from_secs(120);

/// A server running inside the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    /// Storage root handed to the server: `<tempdir>/root`, so escapes land in `<tempdir>`.
    pub root: PathBuf,
    /// The configured prefix, e.g. `/dicomweb`.
    pub prefix: String,
    /// Keeps the temporary directory alive for the test's duration.
    pub tempdir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server whose default configuration is first adjusted by `configure`.
    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        let tempdir = tempfile::tempdir().expect("create a temporary directory");
        let root = tempdir.path().join("root");
        std::fs::create_dir(&root).expect("create the storage root");
        TestServer::start_in(tempdir, root, configure).await
    }

    /// Starts a server on an existing storage root inside `tempdir` (e.g. a filesystem the
    /// test mounted there), its default configuration first adjusted by `configure`.
    pub async fn start_in(
        tempdir: tempfile::TempDir,
        root: PathBuf,
        configure: impl FnOnce(&mut Config),
    ) -> TestServer {
        let mut config = Config::with_dir(&root);
        configure(&mut config);
        let config = config.validate().expect("a valid test configuration");
        let prefix = config.server_path.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        let (sender, receiver) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = receiver.await;
        };
        let task = tokio::spawn(dicomwebserver::server::run(listener, config, shutdown));
        TestServer {
            addr,
            root,
            prefix,
            tempdir,
            shutdown: Some(sender),
            task: Some(task),
        }
    }

    /// The path of a route under the configured prefix, e.g. `route("/studies")`.
    pub fn route(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// The value the server should put in RetrieveURLs: `http://<Host header><prefix>`.
    pub fn url_base(&self) -> String {
        format!("http://{}{}", self.addr, self.prefix)
    }

    /// Where the contract says an instance is stored.
    pub fn instance_path(&self, study: &str, series: &str, sop: &str) -> PathBuf {
        instance_path(&self.root, study, series, sop)
    }

    async fn stop_in_place(&mut self) {
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(SHUTDOWN_WATCHDOG, task)
                .await
                .expect("server drained and returned after shutdown")
                .expect("server task did not panic");
            result.expect("server::run returned Ok");
        }
    }

    /// Stops the server (draining in-flight requests), then checks tmp/ is empty.
    pub async fn stop_and_check_tmp(mut self) -> StoppedServer {
        self.stop_in_place().await;
        assert_tmp_empty(&self.root);
        StoppedServer {
            root: self.root.clone(),
            _tempdir: self.tempdir,
        }
    }
}

/// What remains of a stopped server: its storage, still on disk.
pub struct StoppedServer {
    pub root: PathBuf,
    _tempdir: tempfile::TempDir,
}

pub fn instance_path(root: &Path, study: &str, series: &str, sop: &str) -> PathBuf {
    root.join("studies")
        .join(study)
        .join("series")
        .join(series)
        .join("instances")
        .join(format!("{sop}.dcm"))
}

/// Every regular file below `dir`, sorted (empty when `dir` does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `<root>/tmp` is empty or absent.
pub fn assert_tmp_empty(root: &Path) {
    let leftovers = files_under(&root.join("tmp"));
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

/// Temp files of `root` this process holds open: the server's unnamed (`O_TMPFILE`) temp
/// files never show in a directory listing, only as `/proc/self/fd` links into `<root>/tmp`.
/// Meaningful for an in-process [`TestServer`] only.
pub fn open_temp_files(root: &Path) -> Vec<PathBuf> {
    let tmp = root.join("tmp");
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    let mut open = Vec::new();
    for entry in entries.flatten() {
        // A descriptor closed between the listing and the readlink is simply gone.
        if let Ok(target) = std::fs::read_link(entry.path()) {
            if target.starts_with(&tmp) {
                open.push(target);
            }
        }
    }
    open.sort();
    open
}

/// Nothing at all is stored under `<root>/studies`.
pub fn assert_nothing_stored(root: &Path) {
    let stored = files_under(&root.join("studies"));
    assert!(
        stored.is_empty(),
        "files stored although nothing should be: {stored:?}"
    );
}

/// The file exists and holds exactly `expected`.
pub fn assert_stored_bytes(path: &Path, expected: &[u8]) {
    let stored = std::fs::read(path).unwrap_or_else(|error| panic!("read {path:?}: {error}"));
    assert!(
        stored == expected,
        "{path:?} differs from the bytes sent ({} stored, {} sent)",
        stored.len(),
        expected.len()
    );
}

/// The real binary, spawned with `args`; stdout is read line by line on a thread.
/// Dropping it without [`BinaryServer::wait`] kills the child, so a failing test leaks nothing.
pub struct BinaryServer {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// The debug listener's address, when the binary printed `debug listening on http://...`.
    pub debug_addr: Option<SocketAddr>,
    /// Stderr lines (ANSI colours removed), when spawned by [`BinaryServer::spawn_observed`].
    stderr: Option<Receiver<String>>,
}

/// Variables that change logging or diagnostics: [`BinaryServer::spawn_observed`] removes them
/// from the child's environment so that only what the test sets applies.
const DIAGNOSTIC_ENV: [&str; 6] = [
    "RUST_LOG",
    "STACK_DUMP_ENABLED",
    "STACK_DUMP_SAMPLE_MS",
    "STACK_DUMP_SAMPLE_DURATION_MS",
    "TRACKABLE_STREAM_LIVELOCK_DETECT_MS",
    "DICOMWEB_DEBUG_LISTEN",
];

impl Drop for BinaryServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends each line of `pipe` to a channel, for the child's whole life (so it never blocks on a
/// full pipe).
fn forward_lines(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(strip_ansi(&line));
        }
    });
    receiver
}

/// `line` without ANSI escape sequences (the log formatter colours levels and field names).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, ending with a letter.
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The address after `marker` in `line`, e.g. `listening on http://127.0.0.1:5000`.
fn address_after(line: &str, marker: &str) -> SocketAddr {
    let start = line.find(marker).expect("the marker is in the line") + marker.len();
    let authority = line[start..]
        .split(|c: char| c == '/' || c.is_whitespace())
        .next();
    authority
        .and_then(|text| text.parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in listening line {line:?}"))
}

impl BinaryServer {
    pub fn spawn(args: &[&str]) -> BinaryServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dicomwebserver"));
        command.args(args).stderr(Stdio::null());
        BinaryServer::start(command, false)
    }

    /// Spawns the binary with `args` and `env` (and none of [`DIAGNOSTIC_ENV`] otherwise),
    /// keeping its stderr for [`BinaryServer::stderr_until`].
    pub fn spawn_observed(args: &[&str], env: &[(&str, &str)]) -> BinaryServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dicomwebserver"));
        for name in DIAGNOSTIC_ENV {
            command.env_remove(name);
        }
        command.args(args).envs(env.iter().copied());
        command.stderr(Stdio::piped());
        let debug_listener = args.iter().any(|arg| arg.starts_with("--debug-listen"))
            || env.iter().any(|(name, _)| *name == "DICOMWEB_DEBUG_LISTEN");
        BinaryServer::start(command, debug_listener)
    }

    /// Starts `command` and reads its `listening on` line (and, with `debug_listener`, its
    /// `debug listening on` line too, in either order).
    fn start(mut command: Command, debug_listener: bool) -> BinaryServer {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the dicomwebserver binary");
        let stdout = forward_lines(child.stdout.take().expect("piped stdout"));
        let stderr = child.stderr.take().map(forward_lines);
        let mut server = BinaryServer {
            child: Some(child),
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            debug_addr: None,
            stderr,
        };
        let mut main_seen = false;
        while !main_seen || (debug_listener && server.debug_addr.is_none()) {
            let line = stdout
                .recv_timeout(Duration::from_secs(60))
                .expect("the binary printed its listening lines");
            if line.contains("debug listening on http://") {
                server.debug_addr = Some(address_after(&line, "debug listening on http://"));
            } else if line.contains("listening on http://") {
                server.addr = address_after(&line, "listening on http://");
                main_seen = true;
            }
        }
        // Keep draining stdout so the child never blocks on the pipe.
        std::thread::spawn(move || while stdout.recv().is_ok() {});
        server
    }

    /// Reads stderr lines until one satisfies `done`, and returns every line read, that one
    /// last. Panics, with the lines read, when none does within `timeout`.
    pub fn stderr_until(
        &self,
        timeout: Duration,
        mut done: impl FnMut(&str) -> bool,
    ) -> Vec<String> {
        let stderr = self
            .stderr
            .as_ref()
            .expect("stderr is kept: spawn with spawn_observed");
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match stderr.recv_timeout(left) {
                Ok(line) => {
                    let finished = done(&line);
                    lines.push(line);
                    if finished {
                        return lines;
                    }
                }
                Err(error) => panic!(
                    "stderr: the expected line did not come within {timeout:?} ({error}); read:\n{}",
                    lines.join("\n")
                ),
            }
        }
    }

    /// Whether the child is still running.
    pub fn is_running(&mut self) -> bool {
        let child = self.child.as_mut().expect("child still owned");
        child.try_wait().expect("query the child").is_none()
    }

    /// Sends a signal (e.g. "TERM") to the child with the system `kill` command.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("child still owned").id()
    }

    /// Waits for the child to exit (off the async runtime).
    pub async fn wait(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("child still owned");
        let waiting = tokio::task::spawn_blocking(move || child.wait());
        tokio::time::timeout(SHUTDOWN_WATCHDOG, waiting)
            .await
            .expect("the binary exited after the signal")
            .expect("wait task did not panic")
            .expect("wait for the child")
    }
}
