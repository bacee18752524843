//! `run --exec`: each manifest row runs a local program instead of the HTTP chain, so a
//! chain written as a script (its own SDK calls, tools, retries) is load-tested with the
//! same limit, retry passes, results and reports as an HTTP chain.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::chain::Row;
use crate::endpoint::CallOutcome;
use crate::record::ErrorKind;

/// How much of stderr a failure message keeps: the end, where errors usually are.
const STDERR_TAIL: usize = 500;

/// The `--exec` command could not be used.
#[derive(Debug, Error)]
pub enum ExecError {
    /// Unbalanced quotes or an empty command.
    #[error("cannot split the command into arguments (check its quotes)")]
    Split,
    /// A `{{name}}` placeholder names no manifest column.
    #[error("{{{{{0}}}}} is not a column of the manifest")]
    UnknownColumn(String),
}

/// The program each row runs: its argv (or shell string) with `{{column}}` placeholders.
#[derive(Debug, Clone)]
pub struct ExecCommand {
    /// The command as given, for banners.
    pub source: String,
    argv: Vec<String>,
    shell: bool,
    timeout: Duration,
    max_output: u64,
}

impl ExecCommand {
    /// Splits `source` (shell-like quoting, no shell unless `shell`) and checks that every
    /// placeholder names one of `columns`; `timeout` bounds each run, `max_output` caps the
    /// stdout kept as the row's output.
    pub fn parse(
        source: &str,
        shell: bool,
        columns: &[String],
        timeout: Duration,
        max_output: u64,
    ) -> Result<ExecCommand, ExecError> {
        let argv = if shell {
            vec![source.to_string()]
        } else {
            shlex::split(source).ok_or(ExecError::Split)?
        };
        if argv.is_empty() || argv[0].trim().is_empty() {
            return Err(ExecError::Split);
        }
        for arg in &argv {
            for name in placeholders(arg) {
                if !columns.iter().any(|c| c == name) {
                    return Err(ExecError::UnknownColumn(name.to_string()));
                }
            }
        }
        Ok(ExecCommand {
            source: source.to_string(),
            argv,
            shell,
            timeout,
            max_output,
        })
    }

    /// Runs the command for `row`: its stdout is the output; a non-zero exit fails as a
    /// server error with the exit code and the end of stderr; past the timeout the whole
    /// process group is killed and the call fails as a timeout.
    pub async fn call(&self, row: &Row) -> CallOutcome {
        let started = Instant::now();
        let mut out = CallOutcome::new(started, Duration::ZERO);
        let args: Vec<String> = self.argv.iter().map(|a| substitute(a, &row.vars)).collect();
        let mut cmd = if self.shell {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c").args(&args);
            c
        } else {
            let mut c = tokio::process::Command::new(&args[0]);
            c.args(&args[1..]);
            c
        };
        cmd.env("LOADCHAIN_ROW_ID", &row.id);
        for (name, value) in &row.vars {
            cmd.env(env_name(name), value);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return fail(
                    out,
                    ErrorKind::Local,
                    format!("cannot start {}: {e}", args[0]),
                );
            }
        };
        let pgid = child.id();
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return fail(out, ErrorKind::Local, "no pipes to the program".into());
        };
        let work = async {
            let (o, e) = tokio::join!(read_capped(stdout, self.max_output), read_tail(stderr));
            (child.wait().await, o, e)
        };
        let result = tokio::time::timeout(self.timeout, work).await;
        out.latency = started.elapsed();
        let Ok((status, (stdout, total), stderr)) = result else {
            kill_group(pgid);
            return fail(
                out,
                ErrorKind::Timeout,
                format!(
                    "killed after --timeout {}",
                    humantime::format_duration(self.timeout)
                ),
            );
        };
        // Grandchildren left behind in the group go with it.
        kill_group(pgid);
        out.bytes = total;
        match status {
            Ok(s) if s.success() => {
                out.output = Some(String::from_utf8_lossy(&stdout).into_owned());
                out
            }
            Ok(s) => {
                let code = s
                    .code()
                    .map_or_else(|| "a signal".to_string(), |c| format!("code {c}"));
                let tail = String::from_utf8_lossy(&stderr);
                fail(
                    out,
                    ErrorKind::ServerError,
                    format!("exited with {code}: {}", tail.trim()),
                )
            }
            Err(e) => fail(
                out,
                ErrorKind::Local,
                format!("waiting for the program: {e}"),
            ),
        }
    }
}

/// `{{name}}` placeholders of one argument.
fn placeholders(arg: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = arg;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        found.push(after[..close].trim());
        rest = &after[close + 2..];
    }
    found
}

/// `arg` with each `{{column}}` replaced by the row's value.
fn substitute(arg: &str, vars: &BTreeMap<String, String>) -> String {
    let mut result = String::with_capacity(arg.len());
    let mut rest = arg;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        result.push_str(&rest[..open]);
        let name = after[..close].trim();
        result.push_str(vars.get(name).map_or("", String::as_str));
        rest = &after[close + 2..];
    }
    result.push_str(rest);
    result
}

/// `LOADCHAIN_COL_<NAME>`: upper-cased, anything not alphanumeric as `_`.
fn env_name(column: &str) -> String {
    let name: String = column
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("LOADCHAIN_COL_{name}")
}

/// Reads all of `r`, keeping at most `cap` bytes; returns them and the total read.
async fn read_capped(mut r: impl AsyncRead + Unpin, cap: u64) -> (Vec<u8>, u64) {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    let mut total = 0u64;
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = cap.saturating_sub(kept.len() as u64) as usize;
        kept.extend_from_slice(&buf[..n.min(room)]);
        total += n as u64;
    }
    (kept, total)
}

/// Reads all of `r`, keeping its last [`STDERR_TAIL`] bytes.
async fn read_tail(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
    tail
}

/// Kills the process group the child leads (`process_group(0)`: its pgid is its pid).
fn kill_group(pgid: Option<u32>) {
    if let Some(pid) = pgid.and_then(|p| libc::pid_t::try_from(p).ok()) {
        // SAFETY: kill(2) takes plain integers; a group already gone only returns ESRCH.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

fn fail(mut out: CallOutcome, kind: ErrorKind, message: String) -> CallOutcome {
    if out.latency.is_zero() {
        out.latency = out.started.elapsed();
    }
    out.error = Some(kind);
    out.message = message;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_substituted_and_checked() {
        let vars = BTreeMap::from([("topic".to_string(), "rust lang".to_string())]);
        assert_eq!(substitute("--t={{topic}}!", &vars), "--t=rust lang!");
        let cols = vec!["topic".to_string()];
        let t = Duration::from_secs(1);
        assert!(ExecCommand::parse("echo {{topic}}", false, &cols, t, 10).is_ok());
        assert!(matches!(
            ExecCommand::parse("echo {{nope}}", false, &cols, t, 10),
            Err(ExecError::UnknownColumn(n)) if n == "nope"
        ));
        assert!(matches!(
            ExecCommand::parse("echo 'x", false, &cols, t, 10),
            Err(ExecError::Split)
        ));
        assert_eq!(env_name("my-col"), "LOADCHAIN_COL_MY_COL");
    }
}
