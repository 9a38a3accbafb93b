//! A minimal SigV4 signer for AWS JSON 1.1 `POST /` requests: the signing key is derived once
//! per run and day, each request is signed with its own date and body hash, exactly as the AWS
//! SDKs sign KMS calls (signed headers `content-type;host;x-amz-date;x-amz-target`).

use kms_crypto::MacKey;
use kms_crypto::digest::sha256;

/// The content type of AWS JSON 1.1.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const SIGNED_HEADERS: &str = "content-type;host;x-amz-date;x-amz-target";

/// Credentials and scope for one endpoint.
#[derive(Clone)]
pub struct Signer {
    access_key_id: String,
    secret: Vec<u8>,
    region: String,
    host: String,
    /// `(scope date, derived kSigning)`, recomputed when the day changes.
    key: Option<(String, MacKey)>,
}

/// The headers a signed request carries.
pub struct SignedHeaders {
    /// `X-Amz-Date`.
    pub amz_date: String,
    /// `Authorization`.
    pub authorization: String,
}

fn mac(key: &[u8], data: &[u8]) -> [u8; kms_crypto::MAC_TAG_LEN] {
    MacKey::from_bytes(key).sign(data)
}

impl Signer {
    /// A signer for `access_key_id`/`secret` in `region`, for requests sent to `host`.
    pub fn new(access_key_id: &str, secret: &str, region: &str, host: &str) -> Self {
        Self {
            access_key_id: access_key_id.to_owned(),
            secret: secret.as_bytes().to_vec(),
            region: region.to_owned(),
            host: host.to_owned(),
            key: None,
        }
    }

    /// The `Host` header value the signature covers.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn signing_key(&mut self, date: &str) -> &MacKey {
        if self.key.as_ref().is_none_or(|(d, _)| d != date) {
            let mut secret = b"AWS4".to_vec();
            secret.extend_from_slice(&self.secret);
            let k_date = mac(&secret, date.as_bytes());
            let k_region = mac(k_date.as_ref(), self.region.as_bytes());
            let k_service = mac(k_region.as_ref(), b"kms");
            let k_signing = mac(k_service.as_ref(), b"aws4_request");
            self.key = Some((date.to_owned(), MacKey::from_bytes(k_signing.as_ref())));
        }
        match &self.key {
            Some((_, key)) => key,
            // INVARIANT: set just above.
            None => unreachable_key(),
        }
    }

    /// Signs a `POST /` with `target` (`TrentService.Encrypt`) and `body` at `amz_date`
    /// (`YYYYMMDDTHHMMSSZ`).
    pub fn sign(&mut self, target: &str, body: &[u8], amz_date: &str) -> SignedHeaders {
        let date = amz_date.get(..8).unwrap_or(amz_date).to_owned();
        let body_hash = hex::encode(sha256(body));
        let canonical = format!(
            "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{}\nx-amz-date:{amz_date}\nx-amz-target:{target}\n\n\
             {SIGNED_HEADERS}\n{body_hash}",
            self.host
        );
        let scope = format!("{date}/{}/kms/aws4_request", self.region);
        let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(sha256(canonical.as_bytes())));
        let signature = hex::encode(self.signing_key(&date).sign(to_sign.as_bytes()));
        SignedHeaders {
            amz_date: amz_date.to_owned(),
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
                self.access_key_id
            ),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_key() -> ! {
    panic!("signing key was just derived")
}

/// The current UTC time as `YYYYMMDDTHHMMSSZ`.
#[allow(clippy::disallowed_methods)] // a load generator signs with wall time, like any client
pub fn amz_date_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// The signature verifies with the server's own verifier (kms-sigv4 is what ferrokms runs).
    #[test]
    fn verifies_with_server_verifier() {
        let mut signer = Signer::new("AKIDEXAMPLE", "secret/KEY", "eu-west-1", "127.0.0.1:4599");
        let body = br#"{"KeyId":"alias/x"}"#;
        let signed = signer.sign("TrentService.DescribeKey", body, "20261126T010203Z");
        let (parts, ()) = http::Request::post("/")
            .header("host", "127.0.0.1:4599")
            .header("content-type", CONTENT_TYPE)
            .header("x-amz-date", &signed.amz_date)
            .header("x-amz-target", "TrentService.DescribeKey")
            .header("authorization", &signed.authorization)
            .body(())
            .unwrap()
            .into_parts();
        let pending = kms_sigv4_parse(&parts);
        let key = kms_sigv4::SigningKey::derive(b"secret/KEY", "20261126", "eu-west-1", "kms");
        let now = 1_795_654_923; // 2026-11-26T01:02:03Z
        pending.verify(&parts, body, &key, now, "kms").unwrap();
        // A different body must not verify.
        assert!(pending.verify(&parts, b"{}", &key, now, "kms").is_err());
    }

    fn kms_sigv4_parse(parts: &http::request::Parts) -> kms_sigv4::PendingRequest {
        kms_sigv4::parse(parts).unwrap()
    }
}
