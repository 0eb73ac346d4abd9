//! Starting the server for a test: in-process through the library (`server::run` on
//! 127.0.0.1:0 with a fresh temporary storage root), or as the real binary whose `listening`
//! line gives the port. Also the storage checks every test shares (stored files, empty tmp/).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl BinaryServer {
    pub fn spawn(args: &[&str]) -> BinaryServer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dicomwebserver"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the dicomwebserver binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, receiver) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            // Keep draining stdout for the child's whole life so it never blocks on the pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = sender.send(line);
            }
        });
        let marker = "listening on http://";
        let addr = loop {
            let line = receiver
                .recv_timeout(Duration::from_secs(60))
                .expect("the binary printed its listening line");
            if let Some(start) = line.find(marker) {
                let rest = &line[start + marker.len()..];
                let authority = rest.split(|c: char| c == '/' || c.is_whitespace()).next();
                break authority
                    .and_then(|text| text.parse::<SocketAddr>().ok())
                    .unwrap_or_else(|| panic!("no address in listening line {line:?}"));
            }
        };
        BinaryServer {
            child: Some(child),
            addr,
        }
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
