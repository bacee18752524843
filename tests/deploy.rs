//! The shipped Kubernetes Jobs run as shipped: each Job's container command (parsed from its
//! YAML), with the ConfigMap's files written to a temp folder and the Job's paths remapped
//! there, for every JOB_COMPLETION_INDEX, against an in-process mock. Then the segments merge.
//!
//! The YAML is read by a small line parser that knows the few shapes these files use (a
//! `key: |` literal block, a `- >-` folded block, `- name:`/`value:` pairs): no YAML crate
//! for one test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{fixed, spawn_mock};

fn shipped(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/kubernetes")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The lines under `lines[at]` indented deeper than it (blank lines kept), de-indented.
fn block(lines: &[&str], at: usize) -> Vec<String> {
    let base = indent(lines[at]);
    let body: Vec<&str> = lines[at + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > base)
        .copied()
        .collect();
    let cut = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent(l))
        .min();
    body.iter()
        .map(|l| l.get(cut.unwrap_or(0)..).unwrap_or("").to_string())
        .collect()
}

/// The ConfigMap's `data:` files: name → content.
fn configmap_files(yaml: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let data = lines
        .iter()
        .position(|l| l.trim() == "data:")
        .expect("data:");
    let mut files = BTreeMap::new();
    for (i, line) in lines.iter().enumerate().skip(data + 1) {
        if indent(line) <= indent(lines[data]) && !line.trim().is_empty() {
            break;
        }
        if let Some(name) = line.trim().strip_suffix(": |") {
            let mut text = block(&lines, i).join("\n");
            text.push('\n');
            files.insert(name.to_string(), text);
        }
    }
    files
}

/// A Job's container command (its `args: - >-` folded into one line), env values and
/// completion count.
fn job(yaml: &str) -> (String, BTreeMap<String, String>, usize) {
    let lines: Vec<&str> = yaml.lines().collect();
    let args = lines
        .iter()
        .position(|l| l.trim() == "args:")
        .expect("args:");
    assert_eq!(lines[args + 1].trim(), "- >-", "a folded command");
    let script = block(&lines, args + 1).join(" ");
    let mut env = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(name) = line.trim().strip_prefix("- name: ")
            && let Some(value) = lines
                .get(i + 1)
                .and_then(|l| l.trim().strip_prefix("value: "))
        {
            env.insert(name.to_string(), value.trim_matches('"').to_string());
        }
    }
    let completions = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("completions: "))
        .and_then(|n| n.parse().ok())
        .expect("completions");
    (script, env, completions)
}

/// Runs every pod of the Job in `file` at once (parallelism = completions); returns the
/// result folders they wrote, in index order.
fn run_job(file: &str, target: &str, root: &Path) -> Vec<PathBuf> {
    let config = root.join("config");
    std::fs::create_dir_all(&config).unwrap();
    for (name, text) in configmap_files(&shipped("configmap.yaml")) {
        std::fs::write(config.join(name), text).unwrap();
    }
    let (script, env, completions) = job(&shipped(file));
    let script = script
        .replace("/config/", &format!("{}/", config.display()))
        .replace("/results/", &format!("{}/results/", root.display()));
    let bin = Path::new(env!("CARGO_BIN_EXE_loadchain")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let pods: Vec<_> = (0..completions)
        .map(|index| {
            Command::new("/bin/sh")
                .args(["-c", &script])
                .envs(&env)
                .env("PATH", &path)
                .env("JOB_COMPLETION_INDEX", index.to_string())
                .env("TARGET", target)
                .env("START_AT", &now)
                .env("OPENAI_API_KEY", "sk-test")
                .output_async()
        })
        .collect();
    for (index, pod) in pods.into_iter().enumerate() {
        let out = pod.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{file} pod {index}: {err}\n{script}");
    }
    let kind = if file.contains("sweep") {
        "sweep"
    } else {
        "run"
    };
    (1..=completions)
        .map(|i| root.join(format!("results/{kind}/seg-{i}")))
        .collect()
}

trait SpawnPiped {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_jobs_run_as_shipped_against_the_mock_and_merge() {
    let mock = spawn_mock(fixed(0)).await;
    let target = format!("{}/v1", mock.url());
    let tmp = tempfile::tempdir().unwrap();
    for (file, check) in [
        ("job-sweep.yaml", "report.json"),
        ("job-run.yaml", "summary.json"),
    ] {
        let root = tmp.path().join(file);
        let (t, r) = (target.clone(), root.clone());
        let segs = tokio::task::spawn_blocking(move || run_job(file, &t, &r))
            .await
            .unwrap();
        for seg in &segs {
            assert!(seg.join(check).is_file(), "{}", seg.display());
        }
        let merged = root.join("merged");
        crate::common::merge_ok(&segs, &merged);
        let doc = crate::common::read_json(&merged.join(check));
        if check == "report.json" {
            crate::schema::assert_report_valid(&merged.join(check));
            assert_eq!(
                doc["settings"]["sizes"],
                serde_json::json!([4000]),
                "{file}"
            );
            assert_eq!(doc["settings"]["limits"], serde_json::json!([4, 40, 400]));
            assert!(
                doc["runs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r["chains_failed"] == 0)
            );
        } else {
            let v = crate::schema::validator("summary.schema.json");
            crate::schema::assert_valid(&v, &doc, "merged summary.json");
            assert_eq!(doc["rows_in_manifest"], 4, "{file}");
            assert_eq!(doc["succeeded"], 4, "{file}");
        }
    }
}
