//! `compliance-job [INVENTORY.csv] [--audit FILE] [--fail-fast] [--concurrency N]`: checks the
//! keys of an inventory against a KMS endpoint (from the AWS environment:
//! `AWS_ENDPOINT_URL_KMS`, `AWS_REGION`, credentials) and exits 1 when any resource is not
//! compliant. Without an inventory it checks a demo inventory of 300 resources over
//! `alias/compliance-a`, `-b` and `-c`.

#![allow(clippy::print_stdout, clippy::print_stderr)] // a command line talks to its user

use std::process::ExitCode;

use compliance_job::{demo_inventory, parse_inventory, run};
use kms_client::batch::{CallCounter, Decision, Mode};

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut inventory, mut audit, mut mode, mut concurrency) = (None, None, Mode::CollectAll, 16);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--audit" => audit = args.next(),
            "--fail-fast" => mode = Mode::FailFast,
            "--concurrency" => concurrency = args.next().and_then(|n| n.parse().ok()).unwrap_or(16),
            flag if flag.starts_with('-') => {
                eprintln!(
                    "usage: compliance-job [INVENTORY.csv] [--audit FILE] [--fail-fast] [--concurrency N]\n\
                     (endpoint and credentials from the AWS environment)"
                );
                return ExitCode::from(if flag == "--help" || flag == "-h" { 0 } else { 2 });
            }
            _ => inventory = Some(arg),
        }
    }
    let resources = match inventory {
        Some(path) => match std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|t| parse_inventory(&t))
        {
            Ok(resources) => resources,
            Err(e) => {
                eprintln!("compliance-job: {path}: {e}");
                return ExitCode::from(2);
            }
        },
        None => demo_inventory(300, &["alias/compliance-a", "alias/compliance-b", "alias/compliance-c"]),
    };
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let calls = CallCounter::new();
    let client = calls.attach(&aws_sdk_kms::Client::new(&config));
    let total = resources.len();
    let report = match audit {
        Some(path) => match std::fs::File::create(&path) {
            Ok(file) => run(client, resources, file, concurrency, mode).await,
            Err(e) => {
                eprintln!("compliance-job: {path}: {e}");
                return ExitCode::from(2);
            }
        },
        None => run(client, resources, std::io::stdout(), concurrency, mode).await,
    };
    eprintln!(
        "{total} resources: {} compliant, {} not compliant, {} errors, {} skipped; KMS calls: {:?}",
        report.count(Decision::Compliant),
        report.count(Decision::NonCompliant),
        report.count(Decision::Error),
        report.skipped.len(),
        calls.snapshot()
    );
    if report.all_compliant() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
