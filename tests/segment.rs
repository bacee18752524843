//! `--segment i/n` and `merge`: four segment processes against one mock, merged, against a
//! single process running the whole load.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{fixed, loadchain, spawn_mock};
use loadchain::metrics::LatencyRecorder;
use loadchain::metrics::lossless::decode;

fn report(dir: &Path) -> serde_json::Value {
    crate::common::read_json(&dir.join("report.json"))
}

fn within(a: u64, b: u64, pct: f64) -> bool {
    (a as f64 - b as f64).abs() <= a as f64 * pct / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_segments_merged_equal_one_run_of_the_whole_load() {
    let mock = spawn_mock(fixed(200)).await;
    let url = format!("{}/v1", mock.url());
    let tmp = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        let out = out.display().to_string();
        [
            "sweep", "--target", &url, "-n", "80", "--limits", "4,20", "--steps", "2",
        ]
        .into_iter()
        .chain(["--pooling", "on", "-q", "--out", &out])
        .map(String::from)
        .collect()
    };
    let segs: Vec<_> = (1..=4).map(|i| tmp.path().join(format!("s{i}"))).collect();
    let handles: Vec<_> = segs
        .iter()
        .enumerate()
        .map(|(i, dir)| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_loadchain"));
            cmd.args(args(dir))
                .args(["--segment", &format!("{}/4", i + 1)]);
            cmd.env_remove("OPENAI_API_KEY");
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
        })
        .collect();
    for h in handles {
        let out = h.await.unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let single = tmp.path().join("single");
    let st = tokio::task::spawn_blocking({
        let a = args(&single);
        move || {
            Command::new(env!("CARGO_BIN_EXE_loadchain"))
                .args(a)
                .env_remove("OPENAI_API_KEY")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(st.status.success());
    let merged = tmp.path().join("merged");
    crate::common::merge_ok(&segs, &merged);
    for f in [
        "report.json",
        "summary.md",
        "summary.csv",
        "calls.csv",
        "latency.png",
    ] {
        assert!(merged.join(f).is_file(), "{f}");
    }
    let (one, all) = (report(&single), report(&merged));
    assert_eq!(all["settings"]["sizes"], one["settings"]["sizes"]);
    assert_eq!(all["settings"]["limits"], one["settings"]["limits"]);
    let runs = |r: &serde_json::Value| r["runs"].as_array().unwrap().clone();
    for (a, b) in runs(&one).iter().zip(runs(&all).iter()) {
        for f in [
            "size",
            "limit",
            "chains_ok",
            "chains_failed",
            "calls",
            "calls_failed",
        ] {
            assert_eq!(a[f], b[f], "{f}");
        }
        for lat in ["call_latency", "chain_latency"] {
            assert_eq!(a[lat]["count"], b[lat]["count"]);
            // p50 against the single run, generously: two separate runs on a busy 2-core
            // machine differ by a few percent (the 2 % target is a benchmark figure, see the
            // README), and the p99 tail by tens of percent. Exactness is checked below
            // instead: the merged histogram is the segments' histograms added together.
            let (x, y) = (
                a[lat]["p50_us"].as_u64().unwrap(),
                b[lat]["p50_us"].as_u64().unwrap(),
            );
            assert!(within(x, y, 10.0), "{lat}.p50: single {x} vs merged {y}");
        }
    }
    let segments: Vec<_> = segs.iter().map(|d| report(d)).collect();
    for (i, run) in runs(&all).iter().enumerate() {
        for lat in ["call_latency", "chain_latency"] {
            let mut sum = LatencyRecorder::new().histogram().clone();
            for seg in &segments {
                let hdr = seg["runs"][i][lat]["hdr"].as_str().unwrap();
                sum.add(decode(hdr).unwrap()).unwrap();
            }
            assert_eq!(
                run[lat]["p99_us"].as_u64(),
                Some(loadchain::metrics::quantile(&sum, 0.99)),
                "{lat}"
            );
            assert_eq!(run[lat]["count"].as_u64(), Some(sum.len()), "{lat}");
        }
    }
    // Merge of one folder reproduces it.
    let again = tmp.path().join("again");
    loadchain()
        .arg("merge")
        .arg(&segs[0])
        .arg("--out")
        .arg(&again)
        .assert()
        .success();
    assert_eq!(report(&again), report(&segs[0]));
    // The same segment twice, or a single run with a segment, is refused with exit 2.
    let out = loadchain()
        .arg("merge")
        .args([&segs[0], &segs[0]])
        .arg("--out")
        .arg(tmp.path().join("bad"))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("overlap"), "{err}");
    loadchain()
        .arg("merge")
        .args([&segs[1], &single])
        .arg("--out")
        .arg(tmp.path().join("bad2"))
        .assert()
        .code(2);
}

#[test]
fn run_segments_take_disjoint_rows_and_merge_into_one_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = tmp.path().join("m.csv");
    let rows: String = (1..=7).map(|i| format!("{i},text {i}\n")).collect();
    std::fs::write(&manifest, format!("id,topic\n{rows}")).unwrap();
    let segs: Vec<_> = (1..=3).map(|i| tmp.path().join(format!("r{i}"))).collect();
    for (i, dir) in segs.iter().enumerate() {
        loadchain()
            .args(["run", "--manifest"])
            .arg(&manifest)
            .args([
                "--steps",
                "1",
                "--mock-latency",
                "fixed:1ms",
                "--mock-failure-rate",
                "0",
            ])
            .args(["-q", "--segment", &format!("{}/3", i + 1), "--out"])
            .arg(dir)
            .assert()
            .success();
    }
    let lines = |d: &Path| {
        std::fs::read_to_string(d.join("results.jsonl"))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(
        segs.iter().map(|d| lines(d)).collect::<Vec<_>>(),
        vec![2, 2, 3]
    );
    let merged = tmp.path().join("merged");
    crate::common::merge_ok(&segs, &merged);
    assert_eq!(lines(&merged), 7);
    let summary: serde_json::Value = crate::common::read_json(&merged.join("summary.json"));
    assert_eq!(summary["rows_in_manifest"], 7);
    assert_eq!(summary["succeeded"], 7);
    assert_eq!(summary["chain_latency"]["count"], 7);
    loadchain()
        .arg("merge")
        .args([&segs[0], &merged])
        .arg("--out")
        .arg(tmp.path().join("bad"))
        .assert()
        .code(2);
}

/// A server that answers every request with a short completion and keeps each request's
/// last user message: the prompts a process actually sent. One request per connection
/// (`connection: close`); the accept loop ends after 20 s without a connection.
async fn capture() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&seen);
    tokio::spawn(async move {
        let idle = Duration::from_secs(20);
        while let Ok(Ok((mut sock, _))) = tokio::time::timeout(idle, listener.accept()).await {
            let keep = Arc::clone(&keep);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let body = loop {
                    let read = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut chunk));
                    let Ok(Ok(n @ 1..)) = read.await else { return };
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break buf[end + 4..end + 4 + len].to_vec();
                    }
                };
                let req: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let prompt = req["messages"].as_array().unwrap().last().unwrap()["content"]
                    .as_str()
                    .unwrap()
                    .to_string();
                keep.lock().unwrap().push(prompt);
                let answer = r#"{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                sock.write_all(reply.as_bytes()).await.ok();
                sock.shutdown().await.ok();
            });
        }
    });
    (url, seen)
}

/// Runs `loadchain ARGS` on a blocking thread; panics with its stderr unless it succeeds.
async fn succeeds(args: Vec<String>) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_loadchain"))
            .args(args)
            .env_remove("OPENAI_API_KEY")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
}

/// What was captured since the last call, sorted, so two captures compare as multisets.
fn sorted(seen: &Mutex<Vec<String>>) -> Vec<String> {
    let mut v = std::mem::take(&mut *seen.lock().unwrap());
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_send_disjoint_prompts_that_together_are_the_whole_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let chain = tmp.path().join("chain.toml");
    std::fs::write(
        &chain,
        "[[steps]]\nname = \"one\"\nprompt = \"row {{id}}: {{topic}}\"\n",
    )
    .unwrap();
    let args = |url: &str, out: &Path, seg: Option<usize>| -> Vec<String> {
        let mut a: Vec<String> = ["sweep", "--target", url, "-n", "23", "--limits", "4"]
            .into_iter()
            .map(String::from)
            .collect();
        a.extend(["--pooling", "on", "-q", "--chain"].map(String::from));
        a.push(chain.display().to_string());
        a.extend(["--out".to_string(), out.display().to_string()]);
        a.extend(seg.map(|i| format!("--segment={i}/3")));
        a
    };
    let (url, seen) = capture().await;
    succeeds(args(&url, &tmp.path().join("whole"), None)).await;
    // Each process's preflight sends row 1's prompt once before the clock starts.
    let preflight = "row 1: topic 1".to_string();
    let mut whole = sorted(&seen);
    let at = whole.iter().position(|p| *p == preflight).unwrap();
    whole.remove(at);
    assert_eq!(whole.len(), 23);
    let mut union = Vec::new();
    let mut dirs = Vec::new();
    for i in 1..=3 {
        let dir = tmp.path().join(format!("s{i}"));
        succeeds(args(&url, &dir, Some(i))).await;
        let mut sent = sorted(&seen);
        let at = sent.iter().position(|p| *p == preflight).unwrap();
        sent.remove(at);
        for p in &sent {
            assert!(!union.contains(p), "segment {i} sent {p:?} again");
        }
        // calls.csv numbers the rows as the whole run does: row k sent "row k+1: …".
        let calls = std::fs::read_to_string(dir.join("calls.csv")).unwrap();
        let mut rdr = csv::Reader::from_reader(calls.as_bytes());
        let col = rdr
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "row")
            .unwrap();
        for rec in rdr.records() {
            let row: usize = rec.unwrap()[col].parse().unwrap();
            let prompt = format!("row {}: topic {}", row + 1, row + 1);
            assert!(sent.contains(&prompt), "segment {i}: calls.csv row {row}");
        }
        union.extend(sent);
        dirs.push(dir);
    }
    union.sort();
    assert_eq!(union, whole, "the segments' prompts are the whole run's");
    let merged = tmp.path().join("merged");
    loadchain()
        .arg("merge")
        .args(&dirs)
        .arg("--out")
        .arg(&merged)
        .assert()
        .success();
    crate::schema::assert_report_valid(&merged.join("report.json"));
    // The merged calls.csv names the merged cell (n=23 c=4, not a segment's share) and holds
    // each of the whole run's rows once: it pairs with the whole run's calls.csv.
    let calls = std::fs::read_to_string(merged.join("calls.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(calls.as_bytes());
    let h = rdr.headers().unwrap().clone();
    let at = |name: &str| h.iter().position(|c| c == name).unwrap();
    let (size, limit, row) = (at("size"), at("limit"), at("row"));
    let mut rows: Vec<usize> = Vec::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        assert_eq!((&rec[size], &rec[limit]), ("23", "4"), "{rec:?}");
        rows.push(rec[row].parse().unwrap());
    }
    rows.sort_unstable();
    assert_eq!(rows, (0..23).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_segments_match_the_whole_run_at_p50_and_p99() {
    // Each process runs its own embedded mock (the same seed, so the same latency for the
    // same prompt), and all five start together: whatever else loads the machine loads the
    // whole run and the segments alike. Calls of 100–300 ms keep the client's own overhead
    // (a millisecond or two on a busy machine) well inside the 2 %.
    let tmp = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        [
            "sweep",
            "-n",
            "400",
            "--limits",
            "40",
            "--steps",
            "1",
            "--pooling",
            "on",
        ]
        .into_iter()
        .chain(["--mock-latency", "uniform:100ms..300ms", "--mock-seed", "7"])
        .chain(["--mock-failure-rate", "0", "--mock-conn-cost", "0ms", "-q"])
        .chain(["--out", &out.display().to_string()])
        .map(String::from)
        .collect()
    };
    // A load spike on a shared 2-core machine can push a few calls of one process past the
    // 2 %: a miss is measured once more, with the same bound, before it fails.
    let mut missed = Vec::new();
    for attempt in 0..2 {
        let dir = tmp.path().join(format!("try{attempt}"));
        std::fs::create_dir(&dir).unwrap();
        missed = whole_against_segments(&dir, &args).await;
        if missed.is_empty() {
            return;
        }
    }
    panic!("{}", missed.join("; "));
}

/// Runs the whole sweep and its 4 segments together under `dir`, merges the segments and
/// returns the percentiles that differ from the whole run's by over 2 %.
async fn whole_against_segments(dir: &Path, args: &dyn Fn(&Path) -> Vec<String>) -> Vec<String> {
    let whole = dir.join("whole");
    let segs: Vec<_> = (1..=4).map(|i| dir.join(format!("s{i}"))).collect();
    let mut runs = vec![tokio::spawn(succeeds(args(&whole)))];
    runs.extend(segs.iter().enumerate().map(|(i, dir)| {
        let mut a = args(dir);
        a.push(format!("--segment={}/4", i + 1));
        tokio::spawn(succeeds(a))
    }));
    for h in runs {
        h.await.unwrap();
    }
    let merged = dir.join("merged");
    crate::common::merge_ok(&segs, &merged);
    crate::schema::assert_report_valid(&merged.join("report.json"));
    let (one, all) = (report(&whole), report(&merged));
    let mut missed = Vec::new();
    for q in ["p50_us", "p99_us"] {
        let x = one["runs"][0]["call_latency"][q].as_u64().unwrap();
        let y = all["runs"][0]["call_latency"][q].as_u64().unwrap();
        if !within(x, y, 2.0) {
            missed.push(format!("{q}: whole {x} vs merged {y}"));
        }
    }
    missed
}

/// Starts `loadchain ARGS` in `cwd` without waiting.
fn spawn_in(cwd: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_loadchain"))
        .args(args)
        .current_dir(cwd)
        .env_remove("OPENAI_API_KEY")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Starts three copies of `args` in `cwd` at once and asserts that each succeeds.
fn three_at_once(cwd: &Path, args: &[&str]) {
    let children: Vec<_> = (0..3).map(|_| spawn_in(cwd, args)).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
    }
}

/// The folders under `cwd/reports`, sorted.
fn report_folders(cwd: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cwd.join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn sweeps_and_runs_started_together_without_out_each_get_a_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let sweep = [
        "sweep",
        "-n",
        "4",
        "--limits",
        "2",
        "--steps",
        "1",
        "--pooling",
        "on",
        "-q",
        "--mock-latency",
        "fixed:1ms",
    ];
    // Started in the same instant, so at least two of the three share a UTC second.
    three_at_once(tmp.path(), &sweep);
    let folders = report_folders(tmp.path());
    assert_eq!(folders.len(), 3, "{folders:?}");
    for f in &folders {
        assert!(f.contains("-sweep"), "{f}");
        crate::schema::assert_report_valid(&tmp.path().join("reports").join(f).join("report.json"));
    }
    let manifest = tmp.path().join("rows.csv");
    std::fs::write(&manifest, "id,topic\n1,a\n2,b\n").unwrap();
    let run = [
        "run",
        "--manifest",
        "rows.csv",
        "--steps",
        "1",
        "-q",
        "--mock-latency",
        "fixed:1ms",
    ];
    three_at_once(tmp.path(), &run);
    let runs: Vec<_> = report_folders(tmp.path())
        .into_iter()
        .filter(|f| f.contains("-run"))
        .collect();
    assert_eq!(runs.len(), 3, "{runs:?}");
    for f in &runs {
        let results = tmp.path().join("reports").join(f).join("results.jsonl");
        assert_eq!(
            std::fs::read_to_string(results).unwrap().lines().count(),
            2,
            "{f}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_fail_on_gates_on_the_merged_histograms_and_records_a_runnable_command() {
    let mock = spawn_mock(fixed(5)).await;
    let url = format!("{}/v1", mock.url());
    let tmp = tempfile::tempdir().unwrap();
    let mut segs = Vec::new();
    for i in 1..=2 {
        let dir = tmp.path().join(format!("s{i}"));
        let out = dir.display().to_string();
        let seg = format!("{i}/2");
        let args = [
            "sweep",
            "--target",
            &url,
            "-n",
            "8",
            "--limits",
            "2",
            "--steps",
            "1",
            "--pooling",
            "on",
            "-q",
            "--segment",
            &seg,
            "--out",
            &out,
        ];
        succeeds(args.map(String::from).to_vec()).await;
        segs.push(dir);
    }
    let merge = |name: &str, checks: &str| {
        let mut cmd = loadchain();
        cmd.arg("merge")
            .args(&segs)
            .arg("--out")
            .arg(tmp.path().join(name));
        cmd.args(["--fail-on", checks]);
        cmd.assert()
    };
    // Every call took ≥ 5 ms: p50 > 1ms breaks, naming the merged cell; p99 > 10s holds.
    let broken = merge("broken", "p50>1ms,failed>0").code(1);
    let err = String::from_utf8_lossy(&broken.get_output().stderr).to_string();
    assert!(err.contains("p50") && err.contains("n=8"), "{err}");
    assert!(
        tmp.path().join("broken/report.json").is_file(),
        "written before the verdict"
    );
    merge("held", "p99>10s,errors>1%").success();
    // A check with nothing to measure is a usage error, and nothing is written.
    let unpriced = merge("unpriced", "cost>1").code(2);
    let err = String::from_utf8_lossy(&unpriced.get_output().stderr).to_string();
    assert!(err.contains("--fail-on") && err.contains("price"), "{err}");
    assert!(!tmp.path().join("unpriced").exists());
    // The merged command is the whole run's, without --segment or a segment's --out: run
    // as it stands (in a temp folder), it measures the same cells.
    let held = tmp.path().join("held/report.json");
    crate::schema::assert_report_valid(&held);
    let merged = crate::common::read_json(&held);
    let command = merged["settings"]["command"].as_str().unwrap().to_string();
    assert!(
        !command.contains("--segment") && !command.contains("--out"),
        "{command}"
    );
    let words: Vec<&str> = command.split_whitespace().skip(1).collect();
    let again = tmp.path().join("again");
    loadchain()
        .args(&words)
        .arg("--out")
        .arg(&again)
        .assert()
        .success();
    let whole = report(&again);
    assert_eq!(whole["settings"]["sizes"], merged["settings"]["sizes"]);
    assert_eq!(whole["settings"]["limits"], merged["settings"]["limits"]);
}
