//! Runs the real binary against a hostile server and measures what the closing-note table
//! needs: exit code, wall time, peak RSS (VmHWM polled from /proc), panics, error kinds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Above this resident size the child is killed: the test has failed by then, and the
/// machine is shared.
const RSS_KILL_KB: u64 = 1024 * 1024;

/// A manifest of `rows` rows (`row-1`, …) in `dir`.
pub fn manifest(dir: &Path, rows: usize) -> PathBuf {
    let path = dir.join("rows.csv");
    let mut text = String::from("id,topic\n");
    for i in 1..=rows {
        text.push_str(&format!("row-{i},subject {i}\n"));
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// One `loadchain run`.
pub struct Run<'a> {
    /// Manifest rows.
    pub rows: usize,
    /// `--target`.
    pub target: String,
    /// Flags after the common ones.
    pub args: Vec<&'a str>,
    /// Environment variables to set.
    pub env: Vec<(&'a str, &'a str)>,
    /// Close the child's stdout at once (as `| head -c0` does).
    pub close_stdout: bool,
    /// Kill the child after this long (a hang must not hang the suite).
    pub deadline: Duration,
    /// Soft and hard open-file limit for the child.
    pub nofile: Option<u64>,
}

impl<'a> Run<'a> {
    /// `--api raw`, one step, no retries, 3 s timeout, limit 1.
    pub fn raw(target: String, extra: &[&'a str]) -> Run<'a> {
        let mut args = vec!["--api", "raw"];
        args.extend_from_slice(extra);
        Run::openai(target, &args)
    }

    /// OpenAI format, one step, no retries, 3 s timeout, limit 1 (later flags override).
    pub fn openai(target: String, extra: &[&'a str]) -> Run<'a> {
        let defaults = [
            ("--steps", "1"),
            ("--retry-passes", "0"),
            ("--max-retries", "0"),
            ("--timeout", "3s"),
            ("--limit", "1"),
        ];
        let mut args: Vec<&str> = defaults
            .iter()
            .filter(|(flag, _)| !extra.contains(flag))
            .flat_map(|(flag, value)| [*flag, *value])
            .collect();
        args.extend_from_slice(extra);
        Run {
            rows: 2,
            target,
            args,
            env: Vec::new(),
            close_stdout: false,
            deadline: Duration::from_secs(30),
            nofile: None,
        }
    }
}

/// What one run did.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code; None when killed.
    pub code: Option<i32>,
    /// True when the deadline or the RSS guard killed it.
    pub killed: bool,
    /// Spawn to exit.
    pub elapsed: Duration,
    /// Largest VmHWM seen, KiB.
    pub peak_rss_kb: u64,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
    /// The --out folder.
    pub out: PathBuf,
    /// summary.json, when written.
    pub summary: Option<serde_json::Value>,
    /// The temporary folder holding `out`, when the outcome owns it.
    pub dir: Option<tempfile::TempDir>,
    /// results.jsonl lines.
    pub results: Vec<serde_json::Value>,
}

impl Outcome {
    /// `summary.errors.KIND` (0 when the key is missing, as it is for kinds not yet known).
    pub fn errors(&self, kind: &str) -> u64 {
        self.summary
            .as_ref()
            .and_then(|s| s["errors"][kind].as_u64())
            .unwrap_or(0)
    }

    /// A count from summary.json.
    pub fn count(&self, field: &str) -> u64 {
        self.summary
            .as_ref()
            .and_then(|s| s[field].as_u64())
            .unwrap_or(0)
    }

    /// Error kinds of the failed rows in results.jsonl.
    pub fn failed_kinds(&self) -> Vec<String> {
        self.results
            .iter()
            .filter_map(|l| l["error"]["kind"].as_str().map(str::to_string))
            .collect()
    }

    /// The failed rows' error messages.
    pub fn messages(&self) -> Vec<String> {
        self.results
            .iter()
            .filter_map(|l| l["error"]["message"].as_str().map(str::to_string))
            .collect()
    }

    /// One line for the before/after table (`cargo test -- --nocapture` shows it).
    pub fn note(&self, case: &str) {
        let first_err = self
            .stderr
            .lines()
            .find(|l| l.contains("rror"))
            .unwrap_or("")
            .chars()
            .take(160)
            .collect::<String>();
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        for k in self.failed_kinds() {
            *kinds.entry(k).or_default() += 1;
        }
        eprintln!(
            "HOSTILE | {case} | kinds {kinds:?} | {:.1} s | exit {:?}{} | peak RSS {} MB | panic {} | \
             ok {} failed {} | {first_err}",
            self.elapsed.as_secs_f64(),
            self.code,
            if self.killed { " (killed)" } else { "" },
            self.peak_rss_kb / 1024,
            self.stderr.contains("panicked"),
            self.count("succeeded"),
            self.count("failed"),
        );
    }

    /// What every case asserts: it ended by itself within `max`, with `code`, no panic, every
    /// row accounted for, and `kind` counted `count` times.
    pub fn check(&self, code: i32, max: Duration, kind: &str, count: u64) {
        self.check_ended(code, max);
        let s = self.summary.as_ref().expect("summary.json is written");
        assert_eq!(self.errors(kind), count, "errors.{kind} in {s}");
    }

    /// [`Outcome::check`] without the error-kind count.
    pub fn check_ended(&self, code: i32, max: Duration) {
        assert!(!self.killed, "had to be killed after {:?}", self.elapsed);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(
            self.elapsed < max,
            "took {:?} (bound {max:?})",
            self.elapsed
        );
        assert_eq!(self.code, Some(code), "stderr: {}", self.stderr);
        let s = self.summary.as_ref().expect("summary.json is written");
        let n = |f: &str| s[f].as_u64().unwrap();
        assert_eq!(
            n("succeeded") + n("failed") + n("not_run") + n("skipped"),
            n("rows_in_manifest"),
            "{s}"
        );
    }
}

/// Runs `loadchain run --manifest rows.csv --out DIR/out --target URL ARGS…` in `dir`.
pub fn run(dir: &Path, spec: Run<'_>) -> Outcome {
    let rows = manifest(dir, spec.rows);
    let out = dir.join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadchain"));
    cmd.env_remove("OPENAI_API_KEY")
        .arg("run")
        .arg("--manifest")
        .arg(&rows)
        .arg("--out")
        .arg(&out)
        .arg("--target")
        .arg(&spec.target)
        .args(&spec.args)
        .envs(spec.env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(n) = spec.nofile {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, n, n));
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let stdout = if spec.close_stdout {
        drop(stdout);
        None
    } else {
        Some(reader(stdout))
    };
    let stderr = reader(child.stderr.take().unwrap());
    let status_file = format!("/proc/{}/status", child.id());
    let (mut peak, mut killed) = (0u64, false);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let (hwm, rss) = memory_kb(&status_file);
        peak = peak.max(hwm);
        if started.elapsed() > spec.deadline || rss > RSS_KILL_KB {
            killed = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    let summary = std::fs::read_to_string(out.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let results = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Outcome {
        code: status.code(),
        killed,
        elapsed,
        peak_rss_kb: peak,
        stdout: stdout.map(|h| h.join().unwrap()).unwrap_or_default(),
        stderr: stderr.join().unwrap(),
        out,
        dir: None,
        summary,
        results,
    }
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// (VmHWM, VmRSS) in KiB from /proc/PID/status; zeros once the process is gone.
pub fn memory_kb(status_file: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(status_file).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}
