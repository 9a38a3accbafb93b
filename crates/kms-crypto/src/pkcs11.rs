//! A root key inside an HSM, used through PKCS#11 (the `cryptoki` crate): a non-extractable,
//! sensitive AES-256 key that wraps and unwraps with AES-GCM inside the token. The key never
//! leaves the HSM; ferrokms holds only a session and the key's handle.
//!
//! This module does not provision tokens (that is the HSM vendor's tool, or `softhsm2-util`) and
//! does not cache anything: callers keep unwrapped keys in memory, so the HSM is asked only for
//! keys not yet cached and for new ones.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::root::{RootKeyError, RootKeyProvider};
use crate::secret::SecretBytes;

/// The PKCS#11 module used when none is given: SoftHSM2 as Debian installs it.
pub const DEFAULT_PKCS11_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The root key's label when none is given.
pub const DEFAULT_PKCS11_KEY_LABEL: &str = "ferrokms-root";

/// Wrapped values: `0x02 ‖ iv(12) ‖ AES-256-GCM(secret) ‖ tag(16)`, sealed inside the token. The
/// file and passphrase roots write `0x01` with the same layout; the distinct version says which
/// kind of root sealed a value.
const WRAP_VERSION: u8 = 0x02;
const IV_LEN: usize = 12;
const TAG_LEN: usize = 16;
const TAG_BITS: u64 = 128;

/// Where an HSM root key lives. None of it is secret: it is recorded in the store, so that a
/// start with another token or key is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pkcs11Location {
    /// The PKCS#11 module (shared library) to load.
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The AES key's label (`CKA_LABEL`).
    pub key_label: String,
}

/// What [`Pkcs11RootKey::open`] does when the token has no key with the label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingKey {
    /// Stop with [`Pkcs11Error::KeyNotFound`]: the store's secrets are wrapped by a key that
    /// must already be there.
    Refuse,
    /// Generate one in the token (non-extractable, sensitive, AES-256): only for a store that
    /// holds no secrets yet.
    Create,
}

/// Why the HSM root key cannot be used. Messages name the module, token and key, never the PIN.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs11Error {
    /// The module cannot be loaded or initialized.
    #[error("cannot load the PKCS#11 module {module}: {source}")]
    Module {
        /// The module.
        module: PathBuf,
        /// The cause.
        source: CkError,
    },
    /// No slot holds a token with the label.
    #[error(
        "no PKCS#11 token labelled '{0}' (check the label and that the token is present; for SoftHSM2, that \
         SOFTHSM2_CONF names the directory holding it)"
    )]
    TokenNotFound(String),
    /// The token refused the PIN.
    #[error("the token '{0}' refused the PIN (wrong PIN); no further login is attempted until a restart")]
    WrongPin(String),
    /// The token's user PIN is locked (too many wrong PINs).
    #[error("the PIN of token '{0}' is locked; unlock it with the HSM's tools")]
    PinLocked(String),
    /// The token has no AES key with the label.
    #[error("the token '{token}' holds no AES key labelled '{key}'")]
    KeyNotFound {
        /// The token.
        token: String,
        /// The key label.
        key: String,
    },
    /// The token has more than one AES key with the label.
    #[error("the token '{token}' holds {count} AES keys labelled '{key}'; the root key must be unambiguous")]
    KeyAmbiguous {
        /// The token.
        token: String,
        /// The key label.
        key: String,
        /// How many.
        count: usize,
    },
    /// The key could leave the token.
    #[error(
        "the key '{key}' on token '{token}' is extractable or not sensitive; the root key must never leave the HSM \
         (CKA_EXTRACTABLE false, CKA_SENSITIVE true)"
    )]
    KeyExportable {
        /// The token.
        token: String,
        /// The key label.
        key: String,
    },
    /// Any other failure of the module or the token.
    #[error("the HSM failed to {operation}: {source}")]
    Device {
        /// What was being done.
        operation: &'static str,
        /// The module's answer.
        source: CkError,
    },
}

/// An open, logged-in session and the key's handle in it.
struct Connection {
    session: Session,
    key: ObjectHandle,
}

/// The session's state.
enum State {
    Connected(Connection),
    /// Lost (or never opened): the next operation opens a session and logs in again.
    Disconnected,
    /// The token refused the PIN. Logging in again with the same PIN could lock the token (HSMs
    /// count wrong PINs), so every operation fails until a restart with the right PIN.
    PinRefused,
}

/// A root key held in an HSM and used through PKCS#11: AES-256-GCM inside the token, with a random
/// 12-byte IV drawn on the host and the caller's associated data.
///
/// One session, behind a mutex: unwrapping happens on the request path only for keys not yet in
/// the server's cache (unwrapped keys are cached in memory), and wrapping only when key material
/// or credentials are created, so HSM calls are rare and short and one session serialized by a
/// mutex is enough; a session pool would only add sessions to keep logged in. A session lost
/// (logged out, closed, token removed) is reopened once per failed call; a refused PIN is not
/// retried (see [`Pkcs11Error::WrongPin`]).
pub struct Pkcs11RootKey {
    location: Pkcs11Location,
    context: Pkcs11,
    pin: AuthPin,
    state: Mutex<State>,
}

/// PKCS#11 modules are initialized once per process; a second `C_Initialize` (another start in
/// the same process, such as a restart in tests) fails. Contexts are therefore kept per module
/// path and never finalized.
static CONTEXTS: Mutex<Vec<(PathBuf, Pkcs11)>> = Mutex::new(Vec::new());

fn context(module: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let mut contexts = CONTEXTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, context)) = contexts.iter().find(|(path, _)| path == module) {
        return Ok(context.clone());
    }
    let failed = |source| Pkcs11Error::Module { module: module.to_owned(), source };
    let context = Pkcs11::new(module).map_err(failed)?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed(e)),
    }
    contexts.push((module.to_owned(), context.clone()));
    Ok(context)
}

impl Pkcs11RootKey {
    /// Loads the module, finds the token by label, logs in with `pin` and finds the key by label,
    /// creating it when `missing` is [`MissingKey::Create`] and the token has none.
    ///
    /// # Errors
    /// [`RootKeyError::Pkcs11`]: the module cannot be loaded, the token is absent, the PIN is
    /// refused, the key is absent (or ambiguous, or extractable), or the HSM fails.
    pub fn open(location: Pkcs11Location, pin: &str, missing: MissingKey) -> Result<Self, RootKeyError> {
        let context = context(&location.module)?;
        let root = Self { location, context, pin: AuthPin::from(pin), state: Mutex::new(State::Disconnected) };
        let connection = root.connect(missing)?;
        *root.state.lock().unwrap_or_else(PoisonError::into_inner) = State::Connected(connection);
        Ok(root)
    }

    /// Where the key is.
    pub fn location(&self) -> &Pkcs11Location {
        &self.location
    }

    fn token(&self) -> String {
        self.location.token_label.clone()
    }

    fn slot(&self) -> Result<Slot, Pkcs11Error> {
        let device = |operation| move |source| Pkcs11Error::Device { operation, source };
        let slots = self.context.get_slots_with_token().map_err(device("list its slots"))?;
        // A token that cannot describe itself may be another one: look on, and report its
        // failure only when no slot holds the token asked for.
        let mut failed = None;
        for slot in slots {
            match self.context.get_token_info(slot) {
                Ok(info) if info.label().trim_end() == self.location.token_label => return Ok(slot),
                Ok(_) => {}
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        Err(failed.map_or_else(|| Pkcs11Error::TokenNotFound(self.token()), device("describe a token")))
    }

    /// Opens a session on the token, logs in and finds (or creates) the key.
    fn connect(&self, missing: MissingKey) -> Result<Connection, Pkcs11Error> {
        let device = |operation| move |source| Pkcs11Error::Device { operation, source };
        let slot = self.slot()?;
        let session = self.context.open_rw_session(slot).map_err(device("open a session"))?;
        match session.login(UserType::User, Some(&self.pin)) {
            // Login state is per application: another session of this process may be logged in.
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange, _)) => {
                return Err(Pkcs11Error::WrongPin(self.token()));
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => return Err(Pkcs11Error::PinLocked(self.token())),
            Err(e) => return Err(device("log in")(e)),
        }
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(self.location.key_label.as_bytes().to_vec()),
        ];
        let found = session.find_objects(&template).map_err(device("search for the key"))?;
        let key = match found.as_slice() {
            [key] => {
                self.check_key(&session, *key)?;
                *key
            }
            [] if missing == MissingKey::Create => {
                let mut attributes = template.to_vec();
                attributes.extend([
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Wrap(false),
                    Attribute::Unwrap(false),
                ]);
                session.generate_key(&Mechanism::AesKeyGen, &attributes).map_err(device("generate the root key"))?
            }
            [] => return Err(Pkcs11Error::KeyNotFound { token: self.token(), key: self.location.key_label.clone() }),
            many => {
                return Err(Pkcs11Error::KeyAmbiguous {
                    token: self.token(),
                    key: self.location.key_label.clone(),
                    count: many.len(),
                });
            }
        };
        Ok(Connection { session, key })
    }

    /// Refuses a key that could leave the token.
    fn check_key(&self, session: &Session, key: ObjectHandle) -> Result<(), Pkcs11Error> {
        let attributes = session
            .get_attributes(key, &[AttributeType::Extractable, AttributeType::Sensitive])
            .map_err(|source| Pkcs11Error::Device { operation: "read the key's attributes", source })?;
        let extractable = attributes.iter().any(|a| matches!(a, Attribute::Extractable(true)));
        let sensitive = attributes.iter().any(|a| matches!(a, Attribute::Sensitive(true)));
        if extractable || !sensitive {
            return Err(Pkcs11Error::KeyExportable { token: self.token(), key: self.location.key_label.clone() });
        }
        Ok(())
    }

    /// Runs `op` on the session, opening one first if there is none and reopening it once if the
    /// call fails with anything but an answer about the data (`data_error`).
    fn with_session<T>(
        &self,
        operation: &'static str,
        op: impl Fn(&Connection) -> Result<T, CkError>,
        data_error: impl Fn(&CkError) -> bool,
    ) -> Result<T, RootKeyError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let first = match &*state {
            State::Connected(connection) => match op(connection) {
                Ok(value) => return Ok(value),
                Err(e) if data_error(&e) => return Err(RootKeyError::Unwrap),
                Err(e) => Some(e),
            },
            State::Disconnected => None,
            State::PinRefused => return Err(Pkcs11Error::WrongPin(self.token()).into()),
        };
        if let Some(e) = first {
            tracing::warn!("PKCS#11 root key: {operation} failed ({e}); opening a new session");
        }
        // Closing the old session first: a token that logs an application out when its last
        // session closes then sees a fresh login.
        *state = State::Disconnected;
        let connection = match self.connect(MissingKey::Refuse) {
            Ok(connection) => connection,
            Err(e @ Pkcs11Error::WrongPin(_)) => {
                *state = State::PinRefused;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        let result = op(&connection);
        *state = State::Connected(connection);
        match result {
            Ok(value) => Ok(value),
            Err(e) if data_error(&e) => Err(RootKeyError::Unwrap),
            Err(source) => Err(Pkcs11Error::Device { operation, source }.into()),
        }
    }
}

/// The answers that mean the wrapped value (not the HSM) is wrong.
fn bad_ciphertext(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange | RvError::DataLenRange, _)
    )
}

impl RootKeyProvider for Pkcs11RootKey {
    fn describe(&self) -> String {
        // RFC 7512 PKCS#11 URI attributes.
        format!("pkcs11:token={};object={}", self.location.token_label, self.location.key_label)
    }

    fn wrap(&self, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, RootKeyError> {
        // A fresh random IV per value, drawn on the host; 2^32 values per key keep the collision
        // chance negligible, as for the file root.
        let iv: [u8; IV_LEN] = crate::random_array(&crate::SystemRng);
        let sealed = self.with_session(
            "wrap",
            |c| {
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
                c.session.encrypt(&Mechanism::AesGcm(params), c.key, secret)
            },
            |_| false,
        )?;
        if sealed.len() != secret.len() + TAG_LEN {
            return Err(RootKeyError::Wrap);
        }
        let mut out = Vec::with_capacity(1 + IV_LEN + sealed.len());
        out.push(WRAP_VERSION);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, aad: &[u8], wrapped: &[u8]) -> Result<SecretBytes, RootKeyError> {
        let (&version, rest) = wrapped.split_first().ok_or(RootKeyError::Unwrap)?;
        if version != WRAP_VERSION || rest.len() < IV_LEN + TAG_LEN {
            return Err(RootKeyError::Unwrap);
        }
        let (iv, sealed) = rest.split_at(IV_LEN);
        let plain = self.with_session(
            "unwrap",
            |c| {
                let mut iv = iv.to_vec();
                let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
                c.session.decrypt(&Mechanism::AesGcm(params), c.key, sealed)
            },
            bad_ciphertext,
        )?;
        Ok(SecretBytes::new(plain))
    }
}
