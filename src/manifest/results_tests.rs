//! Tests of results.jsonl: round trip, crash repair, refusal of another run's folder.

use std::time::Duration;

use super::*;
use crate::record::ChainFailure;

fn ok_line(id: &str) -> ResultLine {
    ResultLine {
        id: id.into(),
        status: ResultStatus::Ok,
        steps: vec![StepResult {
            name: "research".into(),
            output: format!("notes on {id}\nsecond line"),
            latency_ms: 12.345,
        }],
        attempts: 1,
        chain_latency_ms: 12.345,
        error: None,
    }
}

fn failed_line(id: &str) -> ResultLine {
    ResultLine {
        status: ResultStatus::Failed,
        steps: Vec::new(),
        error: Some(ResultError {
            step: "research".into(),
            kind: ErrorKind::RateLimited,
            status: Some(429),
            message: "too many requests".into(),
        }),
        ..ok_line(id)
    }
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join(RESULTS_FILE)
}

/// Every line of the log, each checked to parse.
fn parsed_lines(dir: &Path) -> Vec<ResultLine> {
    let text = fs::read_to_string(log_path(dir)).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn manifest(ids: &[&str]) -> Manifest {
    let text = std::iter::once("id,topic".to_string())
        .chain(ids.iter().map(|id| format!("{id},t")))
        .collect::<Vec<_>>()
        .join("\n");
    Manifest::parse(text.as_bytes(), Path::new("rows.csv"), "id").unwrap()
}

#[test]
fn from_chain_names_steps_and_the_failed_step() {
    let names = vec!["research".to_string(), "write".to_string()];
    let rec = ChainRecord {
        row: 0,
        passes: 2,
        latency: Duration::from_micros(1500),
        outputs: vec!["facts".into()],
        step_latencies: vec![Duration::from_micros(1234)],
        failure: Some(ChainFailure {
            step: 1,
            kind: ErrorKind::ServerError,
            status: Some(503),
            message: "unavailable".into(),
        }),
    };
    let line = ResultLine::from_chain("r1", &names, &rec);
    assert_eq!(line.status, ResultStatus::Failed);
    assert_eq!(line.attempts, 2);
    assert_eq!(line.chain_latency_ms, 1.5);
    assert_eq!(line.steps[0].name, "research");
    assert_eq!(line.steps[0].latency_ms, 1.234);
    let error = line.error.unwrap();
    assert_eq!((error.step.as_str(), error.status), ("write", Some(503)));
    let json = serde_json::to_string(&ResultLine::from_chain(
        "r2",
        &names,
        &ChainRecord {
            failure: None,
            ..rec
        },
    ))
    .unwrap();
    assert!(
        json.contains(r#""status":"ok""#) && json.contains(r#""error":null"#),
        "{json}"
    );
}

#[test]
fn appended_lines_round_trip_through_resume() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (mut log, resume) = ResultsLog::open(&out, false).unwrap();
    assert_eq!(resume, Resume::default());
    let lines = [ok_line("a"), failed_line("b"), ok_line("c")];
    for l in &lines {
        log.append(l).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    assert_eq!(parsed_lines(&out), lines);
    let (_, resume) = ResultsLog::open(&out, true).unwrap();
    assert_eq!(resume.lines, 3);
    assert_eq!(resume.torn_line, None);
    assert_eq!(resume.succeeded_ids, ["a".to_string(), "c".into()].into());
    assert_eq!(resume.failed_ids, ["b".to_string()].into());
}

#[test]
fn a_long_line_streamed_in_pieces_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = ResultsLog::open(dir.path(), false).unwrap();
    let mut long = ok_line("long");
    long.steps[0].output = "x\"y\n".repeat(LONG_LINE / 2);
    let lines = [ok_line("a"), long, ok_line("b")];
    for l in &lines {
        log.append(l).unwrap();
    }
    let on_disk = fs::metadata(log.path()).unwrap().len();
    assert_eq!(
        log.len, on_disk,
        "the whole-line length follows the streamed line"
    );
    drop(log);
    assert_eq!(parsed_lines(dir.path()), lines);
}

#[test]
fn torn_last_line_is_reported_cut_off_and_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = ResultsLog::open(dir.path(), false).unwrap();
    log.append(&ok_line("a")).unwrap();
    let whole = serde_json::to_string(&ok_line("torn")).unwrap();
    let mut file = OpenOptions::new().append(true).open(log.path()).unwrap();
    file.write_all(&whole.as_bytes()[..whole.len() / 2])
        .unwrap();
    drop((log, file));

    let (mut log, resume) = ResultsLog::open(dir.path(), true).unwrap();
    assert_eq!(resume.torn_line, Some(2));
    assert_eq!(resume.lines, 1);
    assert!(!resume.succeeded_ids.contains("torn"));
    log.append(&ok_line("b")).unwrap();
    let ids: Vec<_> = parsed_lines(dir.path()).into_iter().map(|l| l.id).collect();
    assert_eq!(ids, ["a", "b"]);
}

#[test]
fn read_all_is_strict_about_torn_and_corrupt_lines() {
    let dir = tempfile::tempdir().unwrap();
    let good = serde_json::to_string(&ok_line("a")).unwrap();
    fs::write(log_path(dir.path()), format!("{good}\n\n{good}\n")).unwrap();
    assert_eq!(ResultsLog::read_all(dir.path()).unwrap().len(), 2);
    fs::write(log_path(dir.path()), format!("{good}\n{good}")).unwrap();
    let msg = ResultsLog::read_all(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("results.jsonl: line 2: not a result line (torn"),
        "{msg}"
    );
    fs::write(log_path(dir.path()), format!("{good}\n[]\n")).unwrap();
    let msg = ResultsLog::read_all(dir.path()).unwrap_err().to_string();
    assert!(msg.contains("results.jsonl: line 2, column"), "{msg}");
}

#[test]
fn complete_json_without_newline_or_garbage_last_line_is_torn() {
    let dir = tempfile::tempdir().unwrap();
    let first = serde_json::to_string(&ok_line("a")).unwrap();
    let no_newline = serde_json::to_string(&ok_line("b")).unwrap();
    fs::write(log_path(dir.path()), format!("{first}\n{no_newline}")).unwrap();
    let (_, resume) = ResultsLog::open(dir.path(), true).unwrap();
    assert_eq!((resume.torn_line, resume.lines), (Some(2), 1));
    assert!(!resume.succeeded_ids.contains("b"));

    fs::write(
        log_path(dir.path()),
        format!("{first}\n{{\"id\":\"c\",\"sta\n"),
    )
    .unwrap();
    let (_, resume) = ResultsLog::open(dir.path(), true).unwrap();
    assert_eq!(resume.torn_line, Some(2));
    assert_eq!(
        fs::read_to_string(log_path(dir.path())).unwrap(),
        first + "\n"
    );
}

#[test]
fn corrupt_middle_line_stops_resume_and_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = serde_json::to_string(&ok_line("a")).unwrap();
    let text = format!("{good}\n{{not json}}\n{good}\n");
    fs::write(log_path(dir.path()), &text).unwrap();
    let err = ResultsLog::open(dir.path(), true).unwrap_err();
    let msg = err.to_string();
    assert!(err.is_input_error());
    assert!(
        msg.contains("results.jsonl: line 2, column 2: not a result line"),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    assert_eq!(fs::read_to_string(log_path(dir.path())).unwrap(), text);
}

#[test]
fn latest_line_of_a_repeated_id_wins() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = ResultsLog::open(dir.path(), false).unwrap();
    for l in [
        failed_line("a"),
        ok_line("b"),
        ok_line("a"),
        failed_line("b"),
    ] {
        log.append(&l).unwrap();
    }
    drop(log);
    let (_, resume) = ResultsLog::open(dir.path(), true).unwrap();
    assert_eq!(resume.succeeded_ids, ["a".to_string()].into());
    assert_eq!(resume.failed_ids, ["b".to_string()].into());
    assert_eq!(resume.lines, 4);
}

#[test]
fn folder_of_another_run_is_refused_without_resume_and_left_untouched() {
    for name in [RESULTS_FILE, SUMMARY_FILE, FAILED_FILE] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(name), "x\n").unwrap();
        let err = ResultsLog::open(dir.path(), false).unwrap_err();
        assert!(err.is_input_error());
        assert_eq!(
            err.to_string(),
            format!(
                "{} holds results of another run; pass --resume to continue it or choose \
                 another --out",
                dir.path().display()
            )
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "{name}");
    }
}

#[test]
fn a_second_open_of_a_folder_in_use_is_refused_naming_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let (_log, _) = ResultsLog::open(dir.path(), false).unwrap();
    for resume in [false, true] {
        let err = ResultsLog::open(dir.path(), resume).unwrap_err();
        assert!(err.is_input_error());
        assert!(
            err.to_string().ends_with(&format!(
                "is in use by another loadchain run (pid {})",
                std::process::id()
            )),
            "{err}"
        );
    }
}

#[test]
fn empty_results_file_from_an_aborted_start_is_not_another_run() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(log_path(dir.path()), "").unwrap();
    assert!(ResultsLog::open(dir.path(), false).is_ok());
}

#[test]
fn out_that_is_a_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out");
    fs::write(&file, "").unwrap();
    let err = ResultsLog::open(&file, true).unwrap_err();
    assert!(err.is_input_error());
    assert!(err.to_string().ends_with("exists and is not a folder"));
}

#[test]
fn resume_into_a_new_folder_starts_empty_and_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a/b");
    let (_, resume) = ResultsLog::open(&out, true).unwrap();
    assert_eq!(resume, Resume::default());
    assert!(log_path(&out).is_file());
}

#[test]
fn select_rows_skips_succeeded_and_reruns_failed_in_manifest_order() {
    let m = manifest(&["1", "2", "3", "4"]);
    let resume = Resume {
        succeeded_ids: ["2".to_string(), "9".into()].into(),
        failed_ids: ["3".to_string()].into(),
        ..Resume::default()
    };
    let (todo, skipped) = select_rows(&m, &resume);
    let ids: Vec<_> = (0..todo.len()).map(|i| todo.row(i).id).collect();
    assert_eq!(ids, ["1", "3", "4"]);
    assert_eq!(skipped, 1);
    assert_eq!(resume.ids_not_in(&m), ["9"]);
    assert_eq!(select_rows(&m, &Resume::default()).0.len(), 4);
}

#[test]
fn ten_thousand_appends_give_ten_thousand_parseable_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (mut log, _) = ResultsLog::open(dir.path(), false).unwrap();
    for i in 0..10_000 {
        log.append(&ok_line(&i.to_string())).unwrap();
    }
    log.sync().unwrap();
    drop(log);
    let lines = parsed_lines(dir.path());
    assert_eq!(lines.len(), 10_000);
    assert_eq!(lines[9_999].id, "9999");
    let (_, resume) = ResultsLog::open(dir.path(), true).unwrap();
    assert_eq!((resume.lines, resume.succeeded_ids.len()), (10_000, 10_000));
}
