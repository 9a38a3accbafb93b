//! The example end to end: ferrokms runs in-process, the example signs an ES256 and an RS256
//! token through KMS Sign, and `jsonwebtoken` (a standard JWT library, aws-lc-rs backend),
//! given only the PEM public key, verifies them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::disallowed_methods, missing_docs)]

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use jwt_signing::{Algorithm, claims, create_signing_key, public_key_pem, sign_jwt};
use serde_json::Value;

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn a_jwt_library_verifies_kms_signed_tokens_with_the_public_key_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kms_server::ServerConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let admin = server.new_admin.as_ref().unwrap();
    let kms_config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.local_addr))
        .credentials_provider(Credentials::new(
            &admin.access_key_id,
            String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap(),
            None,
            None,
            "test",
        ))
        .build();
    let kms = aws_sdk_kms::Client::from_conf(kms_config);

    let body = claims("ferrokms-example", "user-42", now(), 600);
    let mut pems = Vec::new();
    let mut tokens = Vec::new();
    for (algorithm, jwt_algorithm) in
        [(Algorithm::Es256, jsonwebtoken::Algorithm::ES256), (Algorithm::Rs256, jsonwebtoken::Algorithm::RS256)]
    {
        let key_id = create_signing_key(&kms, algorithm).await.unwrap();
        let token = sign_jwt(&kms, &key_id, algorithm, &body).await.unwrap();
        // The verifier's side: the public key (fetched once), nothing else from KMS.
        let pem = public_key_pem(&kms, &key_id).await.unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        let key = match algorithm {
            Algorithm::Es256 => DecodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            Algorithm::Rs256 => DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        };
        let header = decode_header(&token).unwrap();
        assert_eq!(header.alg, jwt_algorithm);
        assert_eq!(header.kid.as_deref(), Some(key_id.as_str()));
        let mut validation = Validation::new(jwt_algorithm);
        validation.set_issuer(&["ferrokms-example"]);
        let verified =
            decode::<Value>(&token, &key, &validation).unwrap_or_else(|e| panic!("{algorithm:?}: {e:?} for {token}"));
        assert_eq!(verified.claims, body);
        if algorithm == Algorithm::Es256 {
            // JOSE's fixed-width r || s, not DER.
            let signature = token.rsplit('.').next().unwrap();
            assert_eq!(signature.len(), 86, "64 bytes in unpadded base64url");
        }

        // A changed claim no longer verifies.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let forged = claims("ferrokms-example", "admin", now(), 600);
        parts[1] = {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string())
        };
        let err = decode::<Value>(&parts.join("."), &key, &validation).unwrap_err();
        assert_eq!(err.kind(), &jsonwebtoken::errors::ErrorKind::InvalidSignature, "{algorithm:?}");
        pems.push((pem, jwt_algorithm));
        tokens.push(token);
    }
    // Each token verifies with its own key only.
    let other = DecodingKey::from_ec_pem(pems[0].0.as_bytes()).unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&["ferrokms-example"]);
    let second_p256 = create_signing_key(&kms, Algorithm::Es256).await.unwrap();
    let foreign = sign_jwt(&kms, &second_p256, Algorithm::Es256, &body).await.unwrap();
    assert!(decode::<Value>(&tokens[0], &other, &validation).is_ok());
    assert!(decode::<Value>(&foreign, &other, &validation).is_err(), "another P-256 key's token");
    server.shutdown().await;
}
