//! A tiny command line over the service. Endpoint and credentials come from the AWS environment
//! (`AWS_ENDPOINT_URL_KMS`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`...);
//! `KEY_ALIAS` (default `alias/app-data`) and `TENANT` choose the key and the tenant.
//!
//! ```text
//! app-encryption-service seal PURPOSE < payload > sealed
//! app-encryption-service open PURPOSE < sealed > payload
//! app-encryption-service encrypt-field PURPOSE VALUE      # prints a token
//! app-encryption-service decrypt-field PURPOSE TOKEN      # prints the value
//! ```

#![allow(clippy::print_stdout)]

use app_encryption_service::EncryptionService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let alias = std::env::var("KEY_ALIAS").unwrap_or_else(|_| "alias/app-data".to_owned());
    let tenant = std::env::var("TENANT").map_err(|_| "TENANT is not set".to_owned())?;
    let service = EncryptionService::new(aws_sdk_kms::Client::new(&config), alias, tenant);
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["seal" | "open", purpose] => {
            let mut input = Vec::new();
            tokio::io::stdin().read_to_end(&mut input).await.map_err(|e| e.to_string())?;
            let output = if args.first().is_some_and(|a| a == "seal") {
                service.seal(purpose, &input).await
            } else {
                service.open(purpose, &input).await
            }
            .map_err(|e| e.to_string())?;
            let mut stdout = tokio::io::stdout();
            stdout.write_all(&output).await.map_err(|e| e.to_string())?;
            stdout.flush().await.map_err(|e| e.to_string())
        }
        ["encrypt-field", purpose, value] => {
            println!("{}", service.encrypt_field(purpose, value).await.map_err(|e| e.to_string())?);
            Ok(())
        }
        ["decrypt-field", purpose, token] => {
            println!("{}", service.decrypt_field(purpose, token).await.map_err(|e| e.to_string())?);
            Ok(())
        }
        _ => Err("usage: app-encryption-service seal|open PURPOSE, or encrypt-field|decrypt-field PURPOSE TEXT".into()),
    }
}
