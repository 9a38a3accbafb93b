//! Keys shared by the key-kind tests: each spec's material is generated once per test binary
//! (RSA 4096 generation is slow in debug builds) and every test gets a handle reloaded from a
//! copy of the stored bytes, as the server gets one after unwrapping.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use kms_core::ids::{KeyId, MaterialId};
use kms_core::key::{KeySpec, KeyUsage, SigningAlgorithm};
use kms_crypto::{KeyHandle, KeySecret, SecretBytes, SystemRng};

/// The key id every test handle carries.
pub const KEY: KeyId = KeyId::from_bytes([1; 16]);
/// The material id every test handle carries.
pub const MATERIAL: MaterialId = MaterialId::from_bytes([2; 32]);

/// Every key spec.
pub fn all_specs() -> Vec<KeySpec> {
    KeySpec::ALL.iter().map(|s| KeySpec::parse(s).unwrap()).collect()
}

/// Every signing algorithm.
pub fn all_signing_algorithms() -> Vec<SigningAlgorithm> {
    SigningAlgorithm::ALL.iter().map(|s| SigningAlgorithm::parse(s).unwrap()).collect()
}

/// The specs that allow `usage`.
pub fn specs_with(usage: KeyUsage) -> Vec<KeySpec> {
    all_specs().into_iter().filter(|spec| spec.allows_usage(usage)).collect()
}

/// The stored bytes of a key of `spec`, generated once.
pub fn stored(spec: KeySpec) -> Vec<u8> {
    static KEYS: OnceLock<Mutex<HashMap<KeySpec, Vec<u8>>>> = OnceLock::new();
    let keys = KEYS.get_or_init(Mutex::default);
    let mut keys = keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    keys.entry(spec).or_insert_with(|| KeySecret::generate(spec, &SystemRng).unwrap().expose_secret().to_vec()).clone()
}

/// A handle over a copy of the stored bytes of `spec`'s key.
pub fn handle(spec: KeySpec) -> KeyHandle {
    KeyHandle::from_material(spec, KEY, MATERIAL, SecretBytes::new(stored(spec))).unwrap()
}

/// A handle over a fresh key of `spec` (for the second party of ECDH).
pub fn fresh(spec: KeySpec) -> KeyHandle {
    KeyHandle::generate(spec, KEY, MATERIAL, &SystemRng).unwrap().0
}

/// The default distinguishing id's ZA for an SM2 public key (GB/T 32918.2 section 5.5):
/// SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA), with the curve parameters of GB/T 32918.5.
pub fn sm2_za(spki_der: &[u8]) -> [u8; 32] {
    use sm3::Digest as _;
    let hex = |s: &str| hex::decode(s).unwrap();
    let point = &spki_der[spki_der.len() - 64..];
    let mut h = sm3::Sm3::new();
    h.update(128u16.to_be_bytes());
    h.update(kms_crypto::SM2_DISTINGUISHING_ID);
    h.update(hex("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC"));
    h.update(hex("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93"));
    h.update(hex("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7"));
    h.update(hex("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0"));
    h.update(point);
    h.finalize().into()
}

/// e = SM3(ZA ‖ M): what SM2DSA signs, and what a `DIGEST` message is for it.
pub fn sm2_digest(spki_der: &[u8], message: &[u8]) -> Vec<u8> {
    use sm3::Digest as _;
    let mut h = sm3::Sm3::new();
    h.update(sm2_za(spki_der));
    h.update(message);
    h.finalize().to_vec()
}

/// FIPS 204 external μ with an empty context: SHAKE256(SHAKE256(pk, 64) ‖ 0 ‖ 0 ‖ M, 64),
/// where pk is the raw public key at the end of the SubjectPublicKeyInfo (after its 22-byte
/// header).
pub fn ml_dsa_mu(spki_der: &[u8], message: &[u8]) -> Vec<u8> {
    use shake::{ExtendableOutput as _, Update as _, XofReader as _};
    let public = &spki_der[22..];
    let mut tr = [0u8; 64];
    let mut h = shake::Shake256::default();
    h.update(public);
    h.finalize_xof().read(&mut tr);
    let mut mu = [0u8; 64];
    let mut h = shake::Shake256::default();
    h.update(&tr);
    h.update(&[0, 0]);
    h.update(message);
    h.finalize_xof().read(&mut mu);
    mu.to_vec()
}

/// The `DIGEST` form of `message` for `algorithm`, computed outside kms-crypto's signing
/// code; `None` for the algorithms without one.
pub fn digest_of(algorithm: SigningAlgorithm, spki_der: &[u8], message: &[u8]) -> Option<Vec<u8>> {
    use SigningAlgorithm as S;
    use aws_lc_rs::digest;
    let hash = match algorithm {
        S::RsassaPssSha256 | S::RsassaPkcs1V15Sha256 | S::EcdsaSha256 => &digest::SHA256,
        S::RsassaPssSha384 | S::RsassaPkcs1V15Sha384 | S::EcdsaSha384 => &digest::SHA384,
        S::RsassaPssSha512 | S::RsassaPkcs1V15Sha512 | S::EcdsaSha512 | S::Ed25519PhSha512 => &digest::SHA512,
        S::Sm2Dsa => return Some(sm2_digest(spki_der, message)),
        S::MlDsaShake256 | S::Ed25519Sha512 => return None,
    };
    Some(digest::digest(hash, message).as_ref().to_vec())
}
