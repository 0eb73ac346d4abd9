//! Turning captured instruction pointers into short, readable stacks: resolve symbols, drop the
//! capture machinery at the top, and stop where the runtime begins.

use backtrace::{Backtrace, BacktraceFrame};

/// Frames from these prefixes at the top of a stack belong to the capture itself.
const CAPTURE_PREFIXES: &[&str] = &[
    "__restore_rt",
    "backtrace::",
    "<backtrace::",
    "dicomwebserver::diag::",
    "std::backtrace",
    "core::ops::function",
];

/// The first frame from these prefixes ends the interesting part of a stack.
const RUNTIME_PREFIXES: &[&str] = &[
    "tokio::runtime::",
    "<tokio::runtime::",
    "std::sys::backtrace::__rust_begin_short_backtrace",
    "std::rt::lang_start",
];

/// One resolved frame: the function name and, when known, file and line.
#[derive(Debug, Clone)]
pub struct Frame {
    pub function: String,
    pub location: Option<String>,
}

impl std::fmt::Display for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{} at {location}", self.function),
            None => f.write_str(&self.function),
        }
    }
}

/// Resolves a backtrace captured unresolved and trims it (see the module docs).
pub fn resolve_trimmed(mut backtrace: Backtrace) -> Vec<Frame> {
    backtrace.resolve();
    trim(backtrace.frames().iter().flat_map(frame_symbols).collect())
}

/// Resolves raw instruction pointers (from a signal-time capture) and trims them.
pub fn resolve_ips(ips: &[usize]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for &ip in ips {
        let mut found = false;
        backtrace::resolve(ip as *mut std::ffi::c_void, |symbol| {
            found = true;
            frames.push(Frame {
                function: symbol
                    .name()
                    .map_or_else(|| format!("{ip:#x}"), |name| format!("{name:#}")),
                location: location(symbol.filename(), symbol.lineno()),
            });
        });
        if !found {
            frames.push(Frame {
                function: format!("{ip:#x}"),
                location: None,
            });
        }
    }
    trim(frames)
}

fn frame_symbols(frame: &BacktraceFrame) -> Vec<Frame> {
    let symbols = frame.symbols();
    if symbols.is_empty() {
        return vec![Frame {
            function: format!("{:?}", frame.ip()),
            location: None,
        }];
    }
    symbols
        .iter()
        .map(|symbol| Frame {
            function: symbol
                .name()
                .map_or_else(|| "<unknown>".to_string(), |name| format!("{name:#}")),
            location: location(symbol.filename(), symbol.lineno()),
        })
        .collect()
}

fn location(file: Option<&std::path::Path>, line: Option<u32>) -> Option<String> {
    let file = file?;
    // Paths into the cargo registry or the toolchain are noise; keep the tail.
    let shown = file
        .to_str()
        .and_then(|path| {
            path.rsplit_once("/src/")
                .map(|(_, tail)| format!("src/{tail}"))
        })
        .unwrap_or_else(|| file.display().to_string());
    Some(match line {
        Some(line) => format!("{shown}:{line}"),
        None => shown,
    })
}

/// Drops capture frames at the top and everything from the runtime's entry on.
fn trim(frames: Vec<Frame>) -> Vec<Frame> {
    let start = frames
        .iter()
        .position(|frame| {
            !CAPTURE_PREFIXES
                .iter()
                .any(|prefix| frame.function.starts_with(prefix))
        })
        .unwrap_or(frames.len());
    let rest = &frames[start..];
    let runtime_at = rest.iter().position(|frame| {
        RUNTIME_PREFIXES
            .iter()
            .any(|prefix| frame.function.starts_with(prefix))
    });
    match runtime_at {
        // Keep the runtime frame that called into the code above it: it says whether a
        // worker was polling a task, parking, or driving I/O.
        Some(at) => rest[..=at].to_vec(),
        None => rest.iter().take(32).cloned().collect(),
    }
}

/// Formats frames one per line, indented, for a dump or a warning.
pub fn format_frames(frames: &[Frame], indent: &str) -> String {
    let mut out = String::new();
    for (i, frame) in frames.iter().enumerate() {
        out.push_str(&format!("{indent}{i:>2}: {frame}\n"));
    }
    out
}

/// One thread as the dump shows it.
#[derive(Debug, Clone)]
pub struct ThreadStack {
    pub tid: i32,
    pub name: String,
    /// Scheduler state letter from /proc (R running, S sleeping, D uninterruptible...).
    pub state: char,
    /// CPU use since the previous dump (or since the thread started), in percent of one core.
    pub cpu_percent: f64,
    pub wchan: String,
    /// Whether the stack was captured (false for a thread that did not answer in time).
    pub captured: bool,
    pub frames: Vec<Frame>,
}

impl ThreadStack {
    /// `root;...;leaf` of the function names, for counting identical stacks.
    pub fn collapsed(&self) -> String {
        let names: Vec<&str> = self
            .frames
            .iter()
            .rev()
            .map(|frame| frame.function.as_str())
            .collect();
        names.join(";")
    }
}
