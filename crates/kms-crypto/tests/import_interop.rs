//! Imported key material, wrapped the way AWS's documentation tells a user to wrap it with the
//! `openssl` command line and the downloaded public wrapping key, unwraps to the same bytes for
//! every wrapping algorithm. Skips, saying why, without `openssl` (`.ci/run` requires it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;

use kms_core::key::KeySpec;
use kms_crypto::{CryptoError, WrappingAlgorithm, unwrap_imported_material};

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn material_wrapped_by_openssl_unwraps_for_every_algorithm() {
    if !Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success()) {
        assert!(std::env::var_os("FERROKMS_REQUIRE_CRYPTO_INTEROP").is_none(), "openssl is not installed");
        eprintln!("skipping: the openssl command is not installed");
        return;
    }
    for spec in [KeySpec::Rsa2048, KeySpec::Rsa4096] {
        let wrapping = common::fresh(spec);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("pub.der"), wrapping.public_key_der().unwrap()).unwrap();
        openssl(d, &["pkey", "-pubin", "-inform", "DER", "-in", "pub.der", "-out", "pub.pem"]);
        // 32 bytes of symmetric material, and a larger one (an EC private key) for key wrap.
        openssl(d, &["rand", "-out", "material.bin", "32"]);
        openssl(d, &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pem"]);
        openssl(d, &["pkcs8", "-topk8", "-nocrypt", "-in", "ec.pem", "-outform", "DER", "-out", "ec.der"]);
        for (algorithm, md, with_aes) in [
            (WrappingAlgorithm::RsaesOaepSha1, "sha1", false),
            (WrappingAlgorithm::RsaesOaepSha256, "sha256", false),
            (WrappingAlgorithm::RsaAesKeyWrapSha1, "sha1", true),
            (WrappingAlgorithm::RsaAesKeyWrapSha256, "sha256", true),
        ] {
            let oaep = |input: &str, output: &str| {
                let md = format!("rsa_oaep_md:{md}");
                let mgf = format!("rsa_mgf1_md:{}", md.trim_start_matches("rsa_oaep_md:"));
                openssl(
                    d,
                    &[
                        "pkeyutl",
                        "-encrypt",
                        "-pubin",
                        "-inkey",
                        "pub.pem",
                        "-in",
                        input,
                        "-out",
                        output,
                        "-pkeyopt",
                        "rsa_padding_mode:oaep",
                        "-pkeyopt",
                        &md,
                        "-pkeyopt",
                        &mgf,
                    ],
                );
            };
            let material_file = if with_aes { "ec.der" } else { "material.bin" };
            let wrapped = if with_aes {
                // AWS's procedure: an ephemeral AES key wraps the material (AES key wrap with
                // padding), RSA-OAEP wraps the AES key, and the two are concatenated.
                openssl(d, &["rand", "-out", "aes.bin", "32"]);
                let aes_hex: String =
                    std::fs::read(d.join("aes.bin")).unwrap().iter().map(|b| format!("{b:02x}")).collect();
                openssl(
                    d,
                    &[
                        "enc",
                        "-id-aes256-wrap-pad",
                        "-K",
                        &aes_hex,
                        "-iv",
                        "A65959A6",
                        "-in",
                        material_file,
                        "-out",
                        "material.wrapped",
                    ],
                );
                oaep("aes.bin", "aes.wrapped");
                [std::fs::read(d.join("aes.wrapped")).unwrap(), std::fs::read(d.join("material.wrapped")).unwrap()]
                    .concat()
            } else {
                oaep(material_file, "material.wrapped");
                std::fs::read(d.join("material.wrapped")).unwrap()
            };
            let unwrapped = unwrap_imported_material(&wrapping, algorithm, &wrapped).unwrap();
            assert_eq!(
                unwrapped.expose_secret(),
                std::fs::read(d.join(material_file)).unwrap(),
                "{spec:?} {algorithm:?}"
            );
            // Another algorithm, or altered bytes, do not unwrap.
            let mut altered = wrapped.clone();
            *altered.last_mut().unwrap() ^= 1;
            assert!(matches!(unwrap_imported_material(&wrapping, algorithm, &altered), Err(CryptoError::Open)));
        }
    }
    assert_eq!(WrappingAlgorithm::parse("RSA_AES_KEY_WRAP_SHA_256"), Some(WrappingAlgorithm::RsaAesKeyWrapSha256));
    assert_eq!(WrappingAlgorithm::parse("RSAES_PKCS1_V1_5"), None);
}
