//! Signatures of JSON Web Tokens (RFC 7515/7518) made by an identity provider's published keys:
//! what STS's AssumeRoleWithWebIdentity checks before it trusts a token's claims.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

/// A provider's public key, from its JWKS document (`kty` RSA or EC).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwsKey {
    /// `kty: RSA`: modulus and exponent, big-endian.
    Rsa {
        /// `n`.
        n: Vec<u8>,
        /// `e`.
        e: Vec<u8>,
    },
    /// `kty: EC`: the curve (`P-256` or `P-384`) and the point's coordinates.
    Ec {
        /// `crv`.
        curve: String,
        /// `x`.
        x: Vec<u8>,
        /// `y`.
        y: Vec<u8>,
    },
}

/// Whether `signature` over `signing_input` (`base64url(header) . base64url(payload)`) is
/// `key`'s, for the token's `alg`. Algorithms other than RS256/384/512, PS256/384/512 and
/// ES256/384, and keys of another type than the algorithm's, never verify (`none` included).
pub fn verify_jws(alg: &str, key: &JwsKey, signing_input: &[u8], signature: &[u8]) -> bool {
    match key {
        JwsKey::Rsa { n, e } => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return false,
            };
            RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, signing_input, signature).is_ok()
        }
        JwsKey::Ec { curve, x, y } => {
            let algorithm: &signature::EcdsaVerificationAlgorithm = match (alg, curve.as_str()) {
                ("ES256", "P-256") => &signature::ECDSA_P256_SHA256_FIXED,
                ("ES384", "P-384") => &signature::ECDSA_P384_SHA384_FIXED,
                _ => return false,
            };
            // SEC1 uncompressed point: 0x04 ‖ x ‖ y.
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(4);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            UnparsedPublicKey::new(algorithm, point).verify(signing_input, signature).is_ok()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair};

    use super::*;

    #[test]
    fn es256_signatures_verify_and_nothing_else_does() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let key = JwsKey::Ec { curve: "P-256".into(), x: point[1..33].to_vec(), y: point[33..].to_vec() };
        let sig = pair.sign(&rng, b"header.payload").unwrap();
        assert!(verify_jws("ES256", &key, b"header.payload", sig.as_ref()));
        assert!(!verify_jws("ES256", &key, b"header.payloaD", sig.as_ref()), "another message");
        assert!(!verify_jws("ES384", &key, b"header.payload", sig.as_ref()), "another algorithm");
        assert!(!verify_jws("none", &key, b"header.payload", b""), "alg none");
        assert!(!verify_jws("RS256", &key, b"header.payload", sig.as_ref()), "key of another type");
    }
}
