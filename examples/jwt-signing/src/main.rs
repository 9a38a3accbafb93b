//! Signs two JWTs through ferrokms and prints them with the public keys that verify them.
//! Environment: `AWS_ENDPOINT_URL_KMS`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_REGION` (default us-east-1); `ES256_KEY_ID` / `RS256_KEY_ID` to use existing keys (an
//! `ECC_NIST_P256` and an `RSA_*` `SIGN_VERIFY` key; created when unset); `JWT_ISSUER`
//! (default `ferrokms-example`) and `JWT_SUBJECT` (default `user-42`).

#![allow(clippy::print_stdout)] // the tokens and keys are the output

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use jwt_signing::{Algorithm, claims, create_signing_key, public_key_pem, sign_jwt};

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
    let kms = aws_sdk_kms::Client::from_conf(config);
    let issuer = std::env::var("JWT_ISSUER").unwrap_or_else(|_| "ferrokms-example".into());
    let subject = std::env::var("JWT_SUBJECT").unwrap_or_else(|_| "user-42".into());
    // A token's issue time is wall-clock time by definition (RFC 7519 "iat").
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| format!("the clock is before 1970: {e}"))?
        .as_secs();
    let body = claims(&issuer, &subject, now, 3600);
    for (algorithm, variable) in [(Algorithm::Es256, "ES256_KEY_ID"), (Algorithm::Rs256, "RS256_KEY_ID")] {
        let key_id = match std::env::var(variable) {
            Ok(id) => id,
            Err(_) => create_signing_key(&kms, algorithm).await.map_err(|e| e.to_string())?,
        };
        let token = sign_jwt(&kms, &key_id, algorithm, &body).await.map_err(|e| e.to_string())?;
        let pem = public_key_pem(&kms, &key_id).await.map_err(|e| e.to_string())?;
        println!("{} key {key_id}", algorithm.name());
        println!("{token}");
        println!("{pem}");
    }
    Ok(())
}
