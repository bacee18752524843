//! `--keep-cpus-awake`: one spinning thread per CPU at the lowest scheduling class Linux has
//! (`SCHED_IDLE`), so that no CPU ever drops into its idle state while the mock runs.
//!
//! Why: on a virtual machine an idle vCPU halts, and waking it (for the mock's response, then
//! for the client reading it) costs hundreds of µs. Measured on a 2-vCPU Firecracker VM at
//! fixed 50 ms, 10 connections: oha reads p50 +0.43 ms above the configured latency, of which
//! the whole round trip at 0 ms is 0.11 ms; with both CPUs kept awake it reads +0.05–0.11 ms.
//! What a client measures is then its own overhead, not the host's wake-up latency.
//!
//! A `SCHED_IDLE` thread runs only when nothing else wants the CPU, and any woken thread
//! preempts it at once, so clients and the mock lose no CPU time to it; the CPUs do show as
//! busy (and draw power) while it runs. Linux only: elsewhere the flag is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// The spinning threads; dropping this stops and joins them.
pub(crate) struct KeepAwake {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl KeepAwake {
    /// One spinner per CPU this process may use, each at `SCHED_IDLE` before it spins. An
    /// error when the class cannot be set: spinning at normal priority would steal CPU.
    pub(crate) fn start() -> std::io::Result<KeepAwake> {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        KeepAwake::with_threads(cpus)
    }

    fn with_threads(count: usize) -> std::io::Result<KeepAwake> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut awake = KeepAwake {
            stop: Arc::clone(&stop),
            threads: Vec::with_capacity(count),
        };
        for i in 0..count {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let stop = Arc::clone(&stop);
            let thread = std::thread::Builder::new()
                .name(format!("mock-awake-{i}"))
                .spawn(move || {
                    let idle = lowest_priority();
                    let ok = idle.is_ok();
                    let _ = ready_tx.send(idle);
                    while ok && !stop.load(Ordering::Relaxed) {
                        for _ in 0..1024 {
                            std::hint::spin_loop();
                        }
                    }
                })?;
            awake.threads.push(thread);
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e), // dropping `awake` stops the others
                Err(_) => return Err(std::io::Error::other("a spinning thread ended at start")),
            }
        }
        Ok(awake)
    }
}

impl Drop for KeepAwake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Puts the calling thread in `SCHED_IDLE`.
#[cfg(target_os = "linux")]
fn lowest_priority() -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for SCHED_IDLE.
    let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn lowest_priority() -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "--keep-cpus-awake needs Linux's SCHED_IDLE scheduling class",
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn spinners_run_at_the_idle_class_and_stop_when_dropped() {
        let awake = KeepAwake::with_threads(2).unwrap();
        assert_eq!(awake.threads.len(), 2);
        // Every spinner is alive and at SCHED_IDLE (read from /proc: policy 5).
        let me = std::process::id();
        let mut idle = 0;
        for task in std::fs::read_dir(format!("/proc/{me}/task")).unwrap() {
            let path = task.unwrap().path();
            let comm = std::fs::read_to_string(path.join("comm")).unwrap();
            if comm.trim().starts_with("mock-awake-") {
                let stat = std::fs::read_to_string(path.join("stat")).unwrap();
                // Field 41 is the policy; fields after the ")" of comm start at 3.
                let after = stat.rsplit_once(") ").unwrap().1;
                let policy: u32 = after.split(' ').nth(41 - 3).unwrap().parse().unwrap();
                assert_eq!(policy, libc::SCHED_IDLE as u32);
                idle += 1;
            }
        }
        assert_eq!(idle, 2);
        drop(awake); // joins: a spinner that did not stop would hang the test here
        let left = std::fs::read_dir(format!("/proc/{me}/task"))
            .unwrap()
            .filter(|t| {
                let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm"));
                comm.is_ok_and(|c| c.starts_with("mock-awake-"))
            })
            .count();
        assert_eq!(left, 0);
    }
}
