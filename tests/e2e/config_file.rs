//! The real binary with a TOML configuration file (`--config`, `DICOMWEB_CONFIG`): the file's
//! options are honoured, flags and environment variables override them, and an invalid file
//! stops startup with exit code 2 and a message naming the file and the option.
//! The merge rules in detail are unit tests in src/config_file.rs.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::http;
use crate::support::server::BinaryServer;

/// Bound on how long a binary that should stop at once may run: a guard against a binary that
/// starts serving instead, not a performance assertion.
const EXIT_WATCHDOG: Duration = Duration::from_secs(60);

/// A temporary storage root and a configuration file beside it.
struct Setup {
    /// The storage root, `<tempdir>/root`.
    root: PathBuf,
    /// `<tempdir>/dicomweb.toml`.
    file: PathBuf,
    _tempdir: tempfile::TempDir,
}

impl Setup {
    /// A file that sets port 0 and the storage root (so that nothing ever binds a fixed port
    /// or writes outside the temporary directory), followed by `rest`.
    fn new(rest: &str) -> Setup {
        let tempdir = tempfile::tempdir().expect("temporary directory");
        let root = tempdir.path().join("root");
        std::fs::create_dir(&root).expect("create the storage root");
        let file = tempdir.path().join("dicomweb.toml");
        let root_text = text(&root);
        assert!(
            !root_text.contains('\''),
            "a TOML literal string can hold {root_text:?}"
        );
        let contents = format!("port = 0\ndir = '{root_text}'\n{rest}");
        std::fs::write(&file, contents).expect("write the configuration file");
        Setup {
            root,
            file,
            _tempdir: tempdir,
        }
    }

    fn file(&self) -> String {
        text(&self.file)
    }
}

fn text(path: &Path) -> String {
    path.to_str().expect("UTF-8 temporary path").to_string()
}

/// How a binary that was expected to stop by itself ended.
struct Exited {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with `args` and `env` to its exit, killing it (and failing) if it outlives
/// [`EXIT_WATCHDOG`].
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> Exited {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dicomwebserver"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the dicomwebserver binary");
    // Read both pipes on threads so that the child never blocks on a full one.
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + EXIT_WATCHDOG;
    let status = loop {
        if let Some(status) = child.try_wait().expect("query the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the binary still ran after {EXIT_WATCHDOG:?}: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Exited {
        code: status.code(),
        stdout: stdout.join().expect("stdout reader did not panic"),
        stderr: stderr.join().expect("stderr reader did not panic"),
    }
}

/// The binary fails with exit code 2 and a message holding each of `expected`.
fn check_fails_naming(setup: &Setup, expected: &[&str]) {
    let file = setup.file();
    let exited = run_to_exit(&["--config", &file], &[]);
    assert_eq!(exited.code, Some(2), "stderr: {}", exited.stderr);
    for part in expected {
        assert!(
            exited.stderr.contains(part),
            "stderr lacks {part:?}: {}",
            exited.stderr
        );
    }
}

/// `GET {prefix}/status` answers 200, and `GET {not_prefix}/status` does not.
async fn check_served_under(server: &BinaryServer, prefix: &str, not_prefix: &str) {
    let status = http::get(server.addr, &format!("{prefix}/status"), &[]).await;
    assert_eq!(status.status, 200, "{prefix}/status");
    let other = http::get(server.addr, &format!("{not_prefix}/status"), &[]).await;
    assert_eq!(other.status, 404, "{not_prefix}/status");
}

async fn stop(server: BinaryServer) {
    server.signal("TERM");
    assert_eq!(server.wait().await.code(), Some(0), "graceful exit");
}

#[tokio::test]
async fn config_file_sets_port_dir_and_server_path() {
    let setup = Setup::new("server-path = \"/from-file\"\n");
    let file = setup.file();
    let server = BinaryServer::spawn(&["--config", &file]);
    assert_ne!(
        server.addr.port(),
        5000,
        "port 0 from the file, not the default"
    );
    check_served_under(&server, "/from-file", "/dicomweb").await;
    assert!(
        setup.root.join("index.sqlite").is_file(),
        "the index is in the storage root the file names"
    );
    stop(server).await;
}

#[tokio::test]
async fn flag_overrides_config_file() {
    let setup = Setup::new("server-path = \"/from-file\"\n");
    let file = setup.file();
    let server = BinaryServer::spawn(&["--config", &file, "--server-path", "/from-flag"]);
    check_served_under(&server, "/from-flag", "/from-file").await;
    stop(server).await;
}

#[tokio::test]
async fn environment_variable_overrides_config_file() {
    let setup = Setup::new("server-path = \"/from-file\"\n");
    let file = setup.file();
    let env = [
        ("DICOMWEB_CONFIG", file.as_str()),
        ("DICOMWEB_SERVER_PATH", "/from-env"),
    ];
    let server = BinaryServer::spawn_observed(&[], &env);
    check_served_under(&server, "/from-env", "/from-file").await;
    stop(server).await;
}

#[test]
fn reindex_takes_dir_from_config_file() {
    let setup = Setup::new("");
    let file = setup.file();
    let exited = run_to_exit(&["reindex", "--config", &file], &[]);
    assert_eq!(exited.code, Some(0), "stderr: {}", exited.stderr);
    let root = text(&setup.root);
    assert!(
        exited.stdout.contains(&format!("in {root};")),
        "reindexed the root the file names: {}",
        exited.stdout
    );
}

#[test]
fn unknown_key_fails_with_exit_code_2_naming_it() {
    let setup = Setup::new("prot = 8042\n");
    let file = setup.file();
    check_fails_naming(
        &setup,
        &[&format!("config file {file}: unknown option \"prot\"")],
    );
}

#[test]
fn bad_value_fails_with_exit_code_2_naming_the_option() {
    let setup = Setup::new("max-parts = \"many\"\n");
    let file = setup.file();
    check_fails_naming(
        &setup,
        &[&format!(
            "config file {file}: option \"max-parts\": invalid value \"many\""
        )],
    );
}

#[test]
fn syntax_error_fails_with_exit_code_2_naming_the_line() {
    let setup = Setup::new("server-path = /dicomweb\n");
    let file = setup.file();
    check_fails_naming(&setup, &[&format!("config file {file}: "), "line 3"]);
}

#[test]
fn missing_config_file_fails_naming_the_path() {
    let tempdir = tempfile::tempdir().expect("temporary directory");
    let file = text(&tempdir.path().join("absent.toml"));
    let dir = text(tempdir.path());
    let exited = run_to_exit(&["--config", &file, "--port", "0", "--dir", &dir], &[]);
    assert_eq!(exited.code, Some(2), "stderr: {}", exited.stderr);
    assert!(
        exited
            .stderr
            .contains(&format!("config file {file}: cannot read it")),
        "stderr: {}",
        exited.stderr
    );
}
