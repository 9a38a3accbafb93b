//! ML-DSA interoperability with Python `cryptography` (its OpenSSL-based ML-DSA), which
//! OpenSSL 3.0's command line lacks: it loads our SubjectPublicKeyInfo and verifies our `RAW`
//! and `EXTERNAL_MU` signatures against the message.
//!
//! Skips, saying why, when `python3` or `cryptography`'s ML-DSA is not installed.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::process::Command;

use common::{handle, ml_dsa_mu};
use kms_core::key::{KeySpec, MessageType, SigningAlgorithm};

const MESSAGE: &[u8] = b"ferrokms ML-DSA interop";

const VERIFY: &str = "
import sys
from cryptography.hazmat.primitives.serialization import load_der_public_key
key = load_der_public_key(open(sys.argv[1], 'rb').read())
message = open(sys.argv[2], 'rb').read()
for path in sys.argv[3:]:
    key.verify(open(path, 'rb').read(), message)
print('verified')
";

fn python_mldsa_present() -> bool {
    let probe = "from cryptography.hazmat.primitives.asymmetric import mldsa";
    let present = Command::new("python3").args(["-c", probe]).output().is_ok_and(|o| o.status.success());
    if !present {
        // .ci/run installs it and sets this, so that the test cannot silently skip there.
        assert!(
            std::env::var_os("FERROKMS_REQUIRE_CRYPTO_INTEROP").is_none(),
            "python3 with cryptography's ML-DSA is not installed"
        );
        eprintln!("skipping ML-DSA interop: python3 with cryptography's ML-DSA is not installed");
    }
    present
}

#[test]
fn python_cryptography_verifies_ml_dsa_signatures() {
    if !python_mldsa_present() {
        return;
    }
    let algorithm = SigningAlgorithm::MlDsaShake256;
    for spec in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let key = handle(spec);
        let spki = key.public_key_der().unwrap();
        std::fs::write(path("pub.der"), spki).unwrap();
        std::fs::write(path("msg"), MESSAGE).unwrap();
        std::fs::write(path("raw.sig"), key.sign(algorithm, MessageType::Raw, MESSAGE).unwrap()).unwrap();
        let mu = ml_dsa_mu(spki, MESSAGE);
        std::fs::write(path("mu.sig"), key.sign(algorithm, MessageType::ExternalMu, &mu).unwrap()).unwrap();
        let output = Command::new("python3")
            .args(["-c", VERIFY, &path("pub.der"), &path("msg"), &path("raw.sig"), &path("mu.sig")])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("verified"), "{spec:?}: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    }
}
