//! The load test of benchmarks/throughput.py, for Goose 0.10: one task set, one task, `GET /` on
//! the host, no wait time. Everything else comes from Goose's own command line (--host, --users,
//! --hatch-rate, --run-time, --no-reset-metrics, ...); its final metrics tables go to stdout.
//!
//! Goose 0.10 keeps its run's duration in whole seconds only (up to 7% off over 15 s), and has no
//! machine-readable report. So when GOOSE_BENCH_OUT names a file, this writes there, as JSON,
//! Goose's own final request and failure counts (the GooseMetrics `execute` returns, the tables'
//! source), and the seconds from the first request's start to `execute` returning: its users have
//! stopped and its parent has counted their last requests (it counts in batches, once a second,
//! a few tenths of a second after the last response), so all the work of the counted requests
//! falls in the window. `first_request_at`: seconds from main's start to the first request (Goose
//! 0.10 prepares every user, an HTTP client each, before launching any: about 2 s for 50).

use goose::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static BASE: OnceLock<Instant> = OnceLock::new();
static FIRST_START_NS: AtomicU64 = AtomicU64::new(u64::MAX);

fn main() -> Result<(), GooseError> {
    BASE.get_or_init(Instant::now);
    let metrics = GooseAttack::initialize()?
        .register_taskset(taskset!("Bench").register_task(task!(index)))
        .execute()?;
    let done = now_ns();
    metrics.print();
    if let Ok(path) = std::env::var("GOOSE_BENCH_OUT") {
        let requests: usize = metrics
            .requests
            .values()
            .map(|r| r.success_count + r.fail_count)
            .sum();
        let failures: usize = metrics.requests.values().map(|r| r.fail_count).sum();
        let first = FIRST_START_NS.load(Ordering::SeqCst);
        let (seconds, first_at) = if first < done {
            ((done - first) as f64 / 1e9, first as f64 / 1e9)
        } else {
            (0.0, -1.0) // no request at all
        };
        let json = format!(
            "{{\"requests\": {}, \"failures\": {}, \"duration\": {:.6}, \"whole_seconds\": {}, \
             \"first_request_at\": {:.6}}}\n",
            requests, failures, seconds, metrics.duration, first_at
        );
        std::fs::write(&path, json).expect("GOOSE_BENCH_OUT: cannot write the file");
    }
    Ok(())
}

fn now_ns() -> u64 {
    BASE.get().expect("BASE set in main").elapsed().as_nanos() as u64
}

async fn index(user: &GooseUser) -> GooseTaskResult {
    if FIRST_START_NS.load(Ordering::Relaxed) == u64::MAX {
        // Only the first requests get here: a plain load for every other one.
        let _ = FIRST_START_NS.compare_exchange(
            u64::MAX,
            now_ns(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }
    let _goose = user.get("/").await?;
    Ok(())
}
