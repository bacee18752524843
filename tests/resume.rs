//! Issue 13 item 4, "resume at the failed step": a server that fails the chain's third step
//! once. A retry pass (and `run --resume` after a session without retry passes) runs only
//! step 3 again, with the saved output of step 2 as its `{{previous}}`: the server's count of
//! requests per step proves steps 1–2 were not repeated, and reports count `calls_saved`.
//! `--restart-chains` repeats every step, as before.
//!
//! The server is a small HTTP/1.1 responder on 127.0.0.1:0 (std threads, one request per
//! connection, at most `MAX_CONNECTIONS`): it tells the default chain's steps apart by their
//! prompts, answers each with an OpenAI completion whose content numbers the call
//! (`write answer #2`), so a prompt shows which output it was built from.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use loadchain::chain::{Chain, Row};
use loadchain::endpoint::{ClientOptions, HttpClient, Target};
use loadchain::record::Pooling;
use loadchain::runner::{RetryPolicy, Runner};
use serde_json::Value;

use crate::common::{Collect, loadchain};

const MAX_CONNECTIONS: usize = 200;
/// The default chain's steps, by a phrase only their prompt has.
const STEP_PHRASES: [(&str, &str); 3] = [
    ("research", "Research the topic"),
    ("write", "Write a 1,000-word article"),
    ("edit", "Edit this article"),
];

/// What the server saw: each step's prompts in arrival order.
#[derive(Default)]
struct Seen {
    prompts: [Vec<String>; 3],
}

/// A server that answers the default chain's steps and fails the first call of step 3.
struct StepServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl StepServer {
    fn start() -> StepServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        thread::spawn(move || {
            let mut served = 0;
            while served < MAX_CONNECTIONS && !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        served += 1;
                        let seen = Arc::clone(&seen2);
                        thread::spawn(move || serve(conn, &seen));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        StepServer { addr, seen, stop }
    }

    fn url(&self) -> String {
        format!("http://{}/v1/chat/completions", self.addr)
    }

    /// Requests per step so far.
    fn counts(&self) -> [usize; 3] {
        let seen = self.seen.lock().unwrap();
        [0, 1, 2].map(|s| seen.prompts[s].len())
    }

    /// Step `step`'s prompts so far (0-based step).
    fn prompts(&self, step: usize) -> Vec<String> {
        self.seen.lock().unwrap().prompts[step].clone()
    }
}

impl Drop for StepServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut conn: TcpStream, seen: &Mutex<Seen>) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(body) = read_body(&mut conn) else {
        return;
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let prompt = request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(step) = STEP_PHRASES.iter().position(|(_, p)| prompt.contains(p)) else {
        let _ = reply(&mut conn, 400, "{\"error\":{\"message\":\"unknown step\"}}");
        return;
    };
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.prompts[step].push(prompt);
        seen.prompts[step].len()
    };
    if step == 2 && n == 1 {
        // A 500 is no backoff retry: only a retry pass runs the step again.
        let _ = reply(
            &mut conn,
            500,
            "{\"error\":{\"message\":\"step 3 fails once\"}}",
        );
        return;
    }
    let content = format!("{} answer #{n}", STEP_PHRASES[step].0);
    let body = serde_json::json!({
        "id": format!("cmpl-{step}-{n}"),
        "object": "chat.completion",
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    });
    let _ = reply(&mut conn, 200, &body.to_string());
}

/// The body of one request (Content-Length), None on a broken one.
fn read_body(conn: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = conn.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf[head_end..head_end + len].to_vec())
}

fn reply(conn: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = if status == 200 { "OK" } else { "Error" };
    write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// A runner of the default 3-step chain against `server` at limit 1: one retry pass, no
/// backoff retries.
fn runner(server: &StepServer, restart_chains: bool) -> Runner {
    Runner {
        client: HttpClient::new(Pooling::On, &ClientOptions::default()).unwrap(),
        target: Arc::new(Target::openai(&server.url(), "m").unwrap()),
        chain: Arc::new(Chain::default_steps(3).unwrap()),
        limiter: None,
        limit: 1,
        retry: RetryPolicy {
            retry_passes: 1,
            max_retries: 0,
            restart_chains,
            ..RetryPolicy::default()
        },
        stop: None,
        adaptive: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_pass_resumes_at_the_failed_step_with_the_saved_outputs() {
    let server = StepServer::start();
    let seen = Arc::new(Collect::default());
    let batch = runner(&server, false)
        .run_batch(Row::synthetic(1).into(), seen.clone())
        .await;
    // Steps 1 and 2 once, step 3 twice: 3 + 1 calls.
    assert_eq!(server.counts(), [1, 1, 2]);
    assert_eq!(batch.calls_saved, 2);
    assert_eq!(batch.passes, 2);
    let finals = seen.finals();
    let chain = &finals[0];
    assert!(chain.ok(), "{chain:?}");
    assert_eq!(
        chain.outputs,
        ["research answer #1", "write answer #1", "edit answer #2"]
    );
    assert_eq!(chain.step_latencies.len(), 3, "the record stays complete");
    // The resumed step 3 got the same `{{previous}}` as the first try.
    let step3 = server.prompts(2);
    assert_eq!(step3[0], step3[1]);
    assert!(step3[1].contains("write answer #1"), "{}", step3[1]);
    // Its calls of this session: step 3 twice, nothing else again.
    let calls = seen.calls();
    assert_eq!(calls.iter().filter(|c| c.pass == 1).count(), 1);
    assert!(calls.iter().any(|c| c.pass == 1 && c.step == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_chains_reruns_every_step_of_a_failed_chain() {
    let server = StepServer::start();
    let seen = Arc::new(Collect::default());
    let batch = runner(&server, true)
        .run_batch(Row::synthetic(1).into(), seen.clone())
        .await;
    // 3 + 3 calls.
    assert_eq!(server.counts(), [2, 2, 2]);
    assert_eq!(batch.calls_saved, 0);
    let finals = seen.finals();
    assert_eq!(
        finals[0].outputs,
        ["research answer #2", "write answer #2", "edit answer #2"]
    );
}

/// The flags both commands get: the server, 3 steps, limit 1, no backoff retries.
fn common_args(server: &StepServer) -> Vec<String> {
    [
        "--target",
        &server.url(),
        "--steps",
        "3",
        "--max-retries",
        "0",
        "--timeout",
        "5s",
    ]
    .map(String::from)
    .to_vec()
}

fn sweep(server: &StepServer, out: &Path, extra: &[&str]) -> Value {
    loadchain()
        .args(["sweep", "--n", "1", "--limits", "1", "--pooling", "on"])
        .args(common_args(server))
        .arg("--out")
        .arg(out)
        .args(extra)
        .assert()
        .success();
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn a_sweep_counts_the_calls_its_retry_pass_saved() {
    let dir = tempfile::tempdir().unwrap();
    let server = StepServer::start();
    let report = sweep(
        &server,
        &dir.path().join("resumed"),
        &["--price", "in=1,out=1"],
    );
    // The preflight is one more step-1 call.
    assert_eq!(server.counts(), [1 + 1, 1, 2]);
    let run = &report["runs"][0];
    assert_eq!(run["calls_saved"], 2, "{run}");
    assert_eq!(report["settings"]["restart_chains"], false);
    let schema = crate::schema::validator("report.schema.json");
    crate::schema::assert_valid(&schema, &report, "report.json with calls_saved");
    assert_eq!(run["chains_ok"], 1);
    // No successful call was paid for twice.
    assert_eq!(run["cost"]["redone"], 0.0, "{run}");
    let md = std::fs::read_to_string(dir.path().join("resumed/summary.md")).unwrap();
    assert!(
        md.contains("2 calls saved by resuming chains at the step that failed"),
        "{md}"
    );
    let csv = std::fs::read_to_string(dir.path().join("resumed/summary.csv")).unwrap();
    let (header, row) = csv.split_once('\n').unwrap();
    let column = header
        .split(',')
        .position(|c| c == "calls_saved")
        .unwrap_or_else(|| panic!("no calls_saved column: {header}"));
    assert_eq!(row.trim_end().split(',').nth(column), Some("2"), "{row}");

    let server = StepServer::start();
    let report = sweep(
        &server,
        &dir.path().join("restarted"),
        &["--restart-chains", "--price", "in=1,out=1"],
    );
    assert_eq!(server.counts(), [1 + 2, 2, 2]);
    assert_eq!(
        report["settings"]["restart_chains"], true,
        "the report says how it ran"
    );
    let run = &report["runs"][0];
    assert_eq!(run["calls_saved"], 0);
    // Steps 1 and 2 were paid twice: 2 calls of 5 + 3 tokens at 1 per 1M.
    assert!(
        (run["cost"]["redone"].as_f64().unwrap() - 16e-6).abs() < 1e-12,
        "{run}"
    );
}

/// One `loadchain run` session of a one-row manifest into `out`; its summary.json and
/// stderr.
fn run_session(server: &StepServer, dir: &Path, extra: &[&str]) -> (Value, String) {
    let manifest = dir.join("rows.csv");
    std::fs::write(&manifest, "id,topic\nr1,otters\n").unwrap();
    let out = dir.join("out");
    let done = loadchain()
        .arg("run")
        .arg("--manifest")
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .args(common_args(server))
        .args(extra)
        .assert()
        .code(predicates::ord::lt(2));
    let stderr = String::from_utf8_lossy(&done.get_output().stderr).to_string();
    let summary = std::fs::read(out.join("summary.json")).unwrap();
    (serde_json::from_slice(&summary).unwrap(), stderr)
}

/// results.jsonl's lines.
fn lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("out/results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn outputs(line: &Value) -> Vec<String> {
    line["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["output"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn run_resume_starts_a_failed_row_at_its_failed_step() {
    let dir = tempfile::tempdir().unwrap();
    let server = StepServer::start();
    let (first, _) = run_session(&server, dir.path(), &["--retry-passes", "0"]);
    assert_eq!(first["failed"], 1);
    assert_eq!(first["calls_saved"], 0);
    assert_eq!(server.counts(), [1 + 1, 1, 1]);
    let failed = &lines(dir.path())[0];
    assert_eq!(failed["status"], "failed");
    // The preflight's call was step 1's first answer.
    assert_eq!(outputs(failed), ["research answer #2", "write answer #1"]);

    let (second, stderr) = run_session(&server, dir.path(), &["--resume", "--retry-passes", "0"]);
    assert!(
        stderr.contains("1 failed row resume at the step that failed"),
        "{stderr}"
    );
    // Only the preflight's step-1 call and step 3: steps 1–2 of the row were not repeated.
    assert_eq!(server.counts(), [1 + 1 + 1, 1, 2]);
    assert_eq!(second["succeeded"], 1);
    assert_eq!(second["calls_saved"], 2);
    assert_eq!(second["calls"], 1);
    let schema = crate::schema::validator("summary.schema.json");
    crate::schema::assert_valid(&schema, &second, "summary.json with calls_saved");
    let md = std::fs::read_to_string(dir.path().join("out/summary.md")).unwrap();
    assert!(md.contains("2 calls saved by resuming chains"), "{md}");
    let step3 = server.prompts(2);
    assert_eq!(step3[0], step3[1], "step 3 saw the saved step-2 output");
    // The new line holds every step: the two saved and the new one.
    let done = &lines(dir.path())[1];
    assert_eq!(done["status"], "ok");
    assert_eq!(
        outputs(done),
        ["research answer #2", "write answer #1", "edit answer #2"]
    );
}

#[test]
fn run_resume_with_restart_chains_runs_the_whole_chain_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = StepServer::start();
    run_session(&server, dir.path(), &["--retry-passes", "0"]);
    let (second, stderr) = run_session(
        &server,
        dir.path(),
        &["--resume", "--retry-passes", "0", "--restart-chains"],
    );
    assert_eq!(server.counts(), [1 + 1 + 1 + 1, 2, 2]);
    assert_eq!(second["calls_saved"], 0);
    assert_eq!(second["calls"], 3);
    assert_eq!(second["settings"]["restart_chains"], true, "{second}");
    assert!(!stderr.contains("resume at the step"), "{stderr}");
    assert_eq!(
        outputs(&lines(dir.path())[1]),
        ["research answer #4", "write answer #2", "edit answer #2"]
    );
}
