//! Interoperability with the `openssl` command-line tool (OpenSSL 3.0 or later), an
//! implementation independent of aws-lc and RustCrypto: it verifies our signatures against the
//! exported public keys, parses our PKCS#8, computes the same ECDH secrets and HMACs, and its
//! OAEP and SM2PKE ciphertexts decrypt with our keys (and ours with its). OpenSSL 3.0 has no
//! ML-DSA or Ed25519ph, so those are checked against test vectors and aws-lc elsewhere.
//!
//! Each test skips, saying why, when `openssl` is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::print_stderr)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{handle, stored};
use kms_core::key::{EncryptionAlgorithm, KeyAgreementAlgorithm, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm};
use kms_crypto::{KeyHandle, SecretBytes};

const MESSAGE: &[u8] = b"ferrokms interop message";

/// Whether `openssl` runs; prints why a test is skipped when it does not.
fn openssl_present(test: &str) -> bool {
    let present = Command::new("openssl").arg("version").output().is_ok_and(|o| o.status.success());
    if !present {
        // .ci/run installs openssl and sets this, so that the test cannot silently skip there.
        assert!(std::env::var_os("FERROKMS_REQUIRE_CRYPTO_INTEROP").is_none(), "{test}: openssl is not installed");
        eprintln!("skipping {test}: the openssl command is not installed");
    }
    present
}

/// Runs openssl with `args` in `dir`, returning stdout; fails the test with stderr otherwise.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl").current_dir(dir).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A scratch directory holding `MESSAGE` as `msg`.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("msg"), MESSAGE).unwrap();
    dir
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Writes the key's public key (SubjectPublicKeyInfo DER) as `pub.der`.
fn write_public(dir: &Path, key: &KeyHandle) {
    write(dir, "pub.der", key.public_key_der().unwrap());
}

/// ECDSA on every curve, RSA-PSS and PKCS#1 v1.5 with every hash: `openssl dgst -verify`
/// accepts the `RAW` signatures and the `DIGEST` ones (of the message's hash) alike.
#[test]
fn openssl_verifies_ecdsa_and_rsa_signatures() {
    if !openssl_present("openssl_verifies_ecdsa_and_rsa_signatures") {
        return;
    }
    use SigningAlgorithm as S;
    let cases = [
        (KeySpec::EccNistP256, S::EcdsaSha256, "-sha256", false),
        (KeySpec::EccSecgP256k1, S::EcdsaSha256, "-sha256", false),
        (KeySpec::EccNistP384, S::EcdsaSha384, "-sha384", false),
        (KeySpec::EccNistP521, S::EcdsaSha512, "-sha512", false),
        (KeySpec::Rsa2048, S::RsassaPssSha256, "-sha256", true),
        (KeySpec::Rsa3072, S::RsassaPssSha384, "-sha384", true),
        (KeySpec::Rsa4096, S::RsassaPssSha512, "-sha512", true),
        (KeySpec::Rsa2048, S::RsassaPkcs1V15Sha256, "-sha256", false),
        (KeySpec::Rsa3072, S::RsassaPkcs1V15Sha384, "-sha384", false),
        (KeySpec::Rsa4096, S::RsassaPkcs1V15Sha512, "-sha512", false),
    ];
    for (spec, algorithm, hash, pss) in cases {
        let dir = scratch();
        let key = handle(spec);
        write_public(dir.path(), &key);
        let digest = common::digest_of(algorithm, key.public_key_der().unwrap(), MESSAGE).unwrap();
        let signatures = [
            key.sign(algorithm, MessageType::Raw, MESSAGE).unwrap(),
            key.sign(algorithm, MessageType::Digest, &digest).unwrap(),
        ];
        for signature in signatures {
            write(dir.path(), "sig", &signature);
            let mut args = vec!["dgst", hash, "-verify", "pub.der", "-keyform", "DER", "-signature", "sig"];
            if pss {
                args.extend(["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest"]);
            }
            args.push("msg");
            let out = openssl(dir.path(), &args);
            assert!(String::from_utf8_lossy(&out).contains("Verified OK"), "{spec:?} {algorithm:?}");
        }
    }
}

/// Pure Ed25519: `openssl pkeyutl -verify -rawin`.
#[test]
fn openssl_verifies_ed25519_signatures() {
    if !openssl_present("openssl_verifies_ed25519_signatures") {
        return;
    }
    let dir = scratch();
    let key = handle(KeySpec::EccNistEdwards25519);
    write_public(dir.path(), &key);
    write(dir.path(), "sig", &key.sign(SigningAlgorithm::Ed25519Sha512, MessageType::Raw, MESSAGE).unwrap());
    let out = openssl(
        dir.path(),
        &[
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-rawin", "-in", "msg", "-sigfile",
            "sig",
        ],
    );
    assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
}

/// SM2DSA with the default distinguishing id, `RAW` and `DIGEST` (e = SM3(ZA ‖ M)); and an
/// openssl-made SM2 signature verifies with our key.
#[test]
fn openssl_and_ferrokms_agree_on_sm2_signatures() {
    if !openssl_present("openssl_and_ferrokms_agree_on_sm2_signatures") {
        return;
    }
    let dir = scratch();
    let key = handle(KeySpec::Sm2);
    write_public(dir.path(), &key);
    write(dir.path(), "priv.der", &stored(KeySpec::Sm2));
    let distid = format!("distid:{}", kms_crypto::SM2_DISTINGUISHING_ID);
    let digest = common::sm2_digest(key.public_key_der().unwrap(), MESSAGE);
    for signature in [
        key.sign(SigningAlgorithm::Sm2Dsa, MessageType::Raw, MESSAGE).unwrap(),
        key.sign(SigningAlgorithm::Sm2Dsa, MessageType::Digest, &digest).unwrap(),
    ] {
        write(dir.path(), "sig", &signature);
        let out = openssl(
            dir.path(),
            &[
                "pkeyutl", "-verify", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-sigfile", "sig", "-in",
                "msg", "-rawin", "-digest", "sm3", "-pkeyopt", &distid,
            ],
        );
        assert!(String::from_utf8_lossy(&out).contains("Signature Verified Successfully"));
    }
    openssl(
        dir.path(),
        &[
            "pkeyutl", "-sign", "-inkey", "priv.der", "-keyform", "DER", "-in", "msg", "-rawin", "-digest", "sm3",
            "-pkeyopt", &distid, "-out", "theirs",
        ],
    );
    let theirs = std::fs::read(dir.path().join("theirs")).unwrap();
    assert!(key.verify(SigningAlgorithm::Sm2Dsa, MessageType::Raw, MESSAGE, &theirs).unwrap());
}

/// openssl parses the stored PKCS#8 of every kind it knows, and its public key is ours.
#[test]
fn openssl_reads_our_pkcs8() {
    if !openssl_present("openssl_reads_our_pkcs8") {
        return;
    }
    for spec in [
        KeySpec::Rsa2048,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256k1,
        KeySpec::EccNistEdwards25519,
        KeySpec::Sm2,
    ] {
        let dir = scratch();
        write(dir.path(), "priv.der", &stored(spec));
        let public = openssl(dir.path(), &["pkey", "-inform", "DER", "-in", "priv.der", "-pubout", "-outform", "DER"]);
        assert_eq!(public, handle(spec).public_key_der().unwrap(), "{spec:?}");
    }
}

/// Keys openssl generated (converted to PKCS#8 DER, as imported key material must be) load as
/// KMS key material, have openssl's public key, and sign what that public key verifies.
#[test]
fn openssl_generated_keys_load() {
    if !openssl_present("openssl_generated_keys_load") {
        return;
    }
    for (spec, genpkey, algorithm) in [
        (
            KeySpec::EccNistP384,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"][..],
            SigningAlgorithm::EcdsaSha384,
        ),
        (
            KeySpec::Rsa2048,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"][..],
            SigningAlgorithm::RsassaPkcs1V15Sha256,
        ),
        (KeySpec::EccNistEdwards25519, &["-algorithm", "ED25519"][..], SigningAlgorithm::Ed25519Sha512),
    ] {
        let dir = scratch();
        let mut args = vec!["genpkey"];
        args.extend_from_slice(genpkey);
        args.extend(["-out", "priv.pem"]);
        openssl(dir.path(), &args);
        openssl(dir.path(), &["pkcs8", "-topk8", "-nocrypt", "-in", "priv.pem", "-outform", "DER", "-out", "priv.der"]);
        let pkcs8 = std::fs::read(dir.path().join("priv.der")).unwrap();
        let key = KeyHandle::from_material(spec, common::KEY, common::MATERIAL, SecretBytes::new(pkcs8)).unwrap();
        let public = openssl(dir.path(), &["pkey", "-inform", "DER", "-in", "priv.der", "-pubout", "-outform", "DER"]);
        assert_eq!(key.public_key_der().unwrap(), public, "{spec:?}");
        let signature = key.sign(algorithm, MessageType::Raw, MESSAGE).unwrap();
        assert!(kms_crypto::verify_with_public_key(&public, algorithm, MessageType::Raw, MESSAGE, &signature).unwrap());
    }
}

/// ECDH: our secret with an openssl-made peer equals `openssl pkeyutl -derive` with our
/// public key, on the NIST curves. (OpenSSL 3.0 refuses to derive with SM2 keys, "operation
/// not supported for this keytype"; SM2 ECDH is checked both ways in `key_kinds`.)
#[test]
fn ecdh_matches_openssl_derive() {
    if !openssl_present("ecdh_matches_openssl_derive") {
        return;
    }
    for (spec, curve) in
        [(KeySpec::EccNistP256, "P-256"), (KeySpec::EccNistP384, "P-384"), (KeySpec::EccNistP521, "P-521")]
    {
        let dir = scratch();
        let key = handle(spec);
        write_public(dir.path(), &key);
        let curve_option = format!("ec_paramgen_curve:{curve}");
        openssl(dir.path(), &["genpkey", "-algorithm", "EC", "-pkeyopt", &curve_option, "-out", "peer.pem"]);
        let peer_public = openssl(dir.path(), &["pkey", "-in", "peer.pem", "-pubout", "-outform", "DER"]);
        let theirs = openssl(
            dir.path(),
            &["pkeyutl", "-derive", "-inkey", "peer.pem", "-peerkey", "pub.der", "-peerform", "DER"],
        );
        let ours = key.derive_shared_secret(KeyAgreementAlgorithm::Ecdh, &peer_public).unwrap();
        assert_eq!(ours.expose_secret(), theirs, "{spec:?}");
    }
}

/// RSA-OAEP: openssl encrypts to our public key with SHA-1 and SHA-256 (MGF1 with the same
/// hash, as AWS), we decrypt; we encrypt, openssl decrypts with our stored private key.
#[test]
fn oaep_interoperates_with_openssl() {
    if !openssl_present("oaep_interoperates_with_openssl") {
        return;
    }
    let dir = scratch();
    let key = handle(KeySpec::Rsa2048);
    write_public(dir.path(), &key);
    write(dir.path(), "priv.der", &stored(KeySpec::Rsa2048));
    for (algorithm, md) in
        [(EncryptionAlgorithm::RsaesOaepSha1, "sha1"), (EncryptionAlgorithm::RsaesOaepSha256, "sha256")]
    {
        let oaep_md = format!("rsa_oaep_md:{md}");
        let mgf1_md = format!("rsa_mgf1_md:{md}");
        let options = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", &oaep_md, "-pkeyopt", &mgf1_md];
        let mut encrypt = vec!["pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-in", "msg"];
        encrypt.extend(options);
        let theirs = openssl(dir.path(), &encrypt);
        assert_eq!(key.decrypt_asymmetric(algorithm, &theirs).unwrap().expose_secret(), MESSAGE, "{md}");
        write(dir.path(), "ours", &key.encrypt_asymmetric(algorithm, MESSAGE).unwrap());
        let mut decrypt = vec!["pkeyutl", "-decrypt", "-inkey", "priv.der", "-keyform", "DER", "-in", "ours"];
        decrypt.extend(options);
        assert_eq!(openssl(dir.path(), &decrypt), MESSAGE, "{md}");
    }
}

/// SM2PKE (DER C1C3C2): both directions with openssl.
#[test]
fn sm2pke_interoperates_with_openssl() {
    if !openssl_present("sm2pke_interoperates_with_openssl") {
        return;
    }
    let dir = scratch();
    let key = handle(KeySpec::Sm2);
    write_public(dir.path(), &key);
    write(dir.path(), "priv.der", &stored(KeySpec::Sm2));
    let theirs =
        openssl(dir.path(), &["pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-in", "msg"]);
    assert_eq!(key.decrypt_asymmetric(EncryptionAlgorithm::Sm2Pke, &theirs).unwrap().expose_secret(), MESSAGE);
    write(dir.path(), "ours", &key.encrypt_asymmetric(EncryptionAlgorithm::Sm2Pke, MESSAGE).unwrap());
    let plain = openssl(dir.path(), &["pkeyutl", "-decrypt", "-inkey", "priv.der", "-keyform", "DER", "-in", "ours"]);
    assert_eq!(plain, MESSAGE);
}

/// HMAC: the MAC of every HMAC spec equals `openssl dgst -mac HMAC` over the stored key.
#[test]
fn hmac_matches_openssl() {
    if !openssl_present("hmac_matches_openssl") {
        return;
    }
    let dir = scratch();
    for (spec, algorithm, hash) in [
        (KeySpec::Hmac224, MacAlgorithm::HmacSha224, "-sha224"),
        (KeySpec::Hmac256, MacAlgorithm::HmacSha256, "-sha256"),
        (KeySpec::Hmac384, MacAlgorithm::HmacSha384, "-sha384"),
        (KeySpec::Hmac512, MacAlgorithm::HmacSha512, "-sha512"),
    ] {
        let hexkey = format!("hexkey:{}", hex::encode(stored(spec)));
        let out = openssl(dir.path(), &["dgst", hash, "-mac", "HMAC", "-macopt", &hexkey, "-hex", "-r", "msg"]);
        let out = String::from_utf8(out).unwrap();
        let expected = out.split_whitespace().next().unwrap();
        assert_eq!(hex::encode(handle(spec).generate_mac(algorithm, MESSAGE).unwrap()), expected, "{spec:?}");
    }
}
