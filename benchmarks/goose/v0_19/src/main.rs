//! The load test of benchmarks/throughput.py, for Goose 0.19: one scenario, one transaction,
//! `GET /` on the host. No wait time unless GOOSE_BENCH_WAIT_MS is set: then that constant pause
//! after each request (the idle run: one GET, then 10 s). Everything else comes from Goose's own
//! command line (--host, --users, --hatch-rate, --run-time, --report-file, ...).

use goose::prelude::*;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    let mut scenario = scenario!("Bench").register_transaction(transaction!(index));
    if let Ok(value) = std::env::var("GOOSE_BENCH_WAIT_MS") {
        let millis: u64 = value
            .parse()
            .expect("GOOSE_BENCH_WAIT_MS: milliseconds, an integer");
        let wait = Duration::from_millis(millis);
        scenario = scenario.set_wait_time(wait, wait)?;
    }
    GooseAttack::initialize()?
        .register_scenario(scenario)
        .execute()
        .await?;
    Ok(())
}

async fn index(user: &mut GooseUser) -> TransactionResult {
    let _goose = user.get("/").await?;
    Ok(())
}
