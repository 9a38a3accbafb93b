//! Runs the rotation-alias handler. Environment: `AWS_ENDPOINT_URL_KMS`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` (default us-east-1), `ALIAS` (e.g. `alias/orders`),
//! `WEBHOOK_SECRET`, `LISTEN` (default 127.0.0.1:8088). Start ferrokms with
//! `--event-webhook-url http://127.0.0.1:8088/ --event-webhook-secret $WEBHOOK_SECRET`.

#![allow(clippy::print_stderr)]

use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use rotation_alias_handler::Handler;

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into())))
        .endpoint_url(env("AWS_ENDPOINT_URL_KMS")?)
        .credentials_provider(Credentials::new(
            env("AWS_ACCESS_KEY_ID")?,
            env("AWS_SECRET_ACCESS_KEY")?,
            None,
            None,
            "env",
        ))
        .build();
    let handler = Arc::new(Handler {
        kms: aws_sdk_kms::Client::from_conf(config),
        alias: env("ALIAS")?,
        secret: env("WEBHOOK_SECRET")?,
    });
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8088".into());
    let listener = tokio::net::TcpListener::bind(&listen).await.map_err(|e| format!("{listen}: {e}"))?;
    eprintln!("rotation-alias handler listening on {listen} for {}", handler.alias);
    handler.serve(listener).await;
    Ok(())
}
