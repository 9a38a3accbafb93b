//! Console sign-in sessions, held in this node's memory.
//!
//! A session is found by the SHA-256 of its 256-bit random id (the cookie's value), so the map
//! never holds a usable cookie and a lookup's timing says nothing about one. It remembers only
//! which access key signed in: every call re-resolves that key's principal, so a key made
//! inactive or deleted ends the session at its next call. It ends after [`IDLE_MILLIS`] without
//! a call, after [`ABSOLUTE_MILLIS`] in any case, and at sign-out. Time is passed in (the
//! service's clock), so tests move it instead of sleeping.

use std::collections::HashMap;
use std::sync::Mutex;

use subtle::ConstantTimeEq;

/// A session unused for this long ends (30 minutes).
pub const IDLE_MILLIS: i64 = 30 * 60 * 1000;
/// A session ends this long after sign-in, however busy (8 hours).
pub const ABSOLUTE_MILLIS: i64 = 8 * 60 * 60 * 1000;
/// Sessions held at once on one node; past it, expired ones are swept, then sign-in is refused.
pub const MAX_SESSIONS: usize = 10_000;

/// What a live session holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    /// The access key that signed in.
    pub access_key_id: String,
    /// The token the page sends in a header with every state-changing call.
    pub csrf: [u8; 32],
    /// When the session ends at the latest (Unix ms).
    pub ends: i64,
}

struct Entry {
    live: Live,
    last_used: i64,
}

/// Why a session could not be made.
#[derive(Debug, PartialEq, Eq)]
pub enum Full {
    /// [`MAX_SESSIONS`] live sessions.
    TooMany,
}

/// The sessions of this node.
#[derive(Default)]
pub struct Sessions {
    by_digest: Mutex<HashMap<[u8; 32], Entry>>,
}

fn digest(id: &[u8; 32]) -> [u8; 32] {
    kms_crypto::digest::sha256(id)
}

impl Sessions {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.by_digest.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session `id` for `access_key_id` at `now`.
    ///
    /// # Errors
    /// [`Full::TooMany`] when [`MAX_SESSIONS`] live sessions exist.
    pub fn create(&self, id: &[u8; 32], csrf: [u8; 32], access_key_id: &str, now: i64) -> Result<Live, Full> {
        let mut map = self.map();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, e| alive(e, now));
        }
        if map.len() >= MAX_SESSIONS {
            return Err(Full::TooMany);
        }
        let live = Live { access_key_id: access_key_id.to_owned(), csrf, ends: now.saturating_add(ABSOLUTE_MILLIS) };
        map.insert(digest(id), Entry { live: live.clone(), last_used: now });
        Ok(live)
    }

    /// The session `id` names, if it is live at `now` (its idle timer restarts); an expired
    /// one is removed.
    pub fn touch(&self, id: &[u8; 32], now: i64) -> Option<Live> {
        let mut map = self.map();
        let key = digest(id);
        let entry = map.get_mut(&key)?;
        if !alive(entry, now) {
            map.remove(&key);
            return None;
        }
        entry.last_used = now;
        Some(entry.live.clone())
    }

    /// Ends the session `id` names (sign-out, or its key gone).
    pub fn remove(&self, id: &[u8; 32]) {
        self.map().remove(&digest(id));
    }

    /// Live and expired-but-not-yet-swept sessions.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn alive(entry: &Entry, now: i64) -> bool {
    now < entry.live.ends && now.saturating_sub(entry.last_used) < IDLE_MILLIS
}

/// Whether `presented` (the header's hex) is the session's CSRF token, compared in constant time.
pub fn csrf_matches(live: &Live, presented: Option<&str>) -> bool {
    let Some(bytes) = presented.and_then(|p| hex::decode(p.trim()).ok()) else { return false };
    bool::from(bytes.as_slice().ct_eq(live.csrf.as_slice()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ID: [u8; 32] = [7; 32];

    #[test]
    fn a_session_ends_when_idle_and_at_its_absolute_expiry() {
        let sessions = Sessions::default();
        sessions.create(&ID, [1; 32], "AKIA1", 0).unwrap();
        assert!(sessions.touch(&ID, IDLE_MILLIS - 1).is_some(), "used just before going idle");
        // Each use restarts the idle timer…
        let mut now = IDLE_MILLIS - 1;
        while now + IDLE_MILLIS - 1 < ABSOLUTE_MILLIS {
            now += IDLE_MILLIS - 1;
            assert!(sessions.touch(&ID, now).is_some(), "busy session alive at {now}");
        }
        // …but not the absolute one.
        assert!(sessions.touch(&ID, ABSOLUTE_MILLIS).is_none());
        assert!(sessions.is_empty(), "the expired session was removed");

        sessions.create(&ID, [1; 32], "AKIA1", 0).unwrap();
        assert!(sessions.touch(&ID, IDLE_MILLIS).is_none(), "idle for the whole idle time");
    }

    #[test]
    fn sign_out_ends_the_session_and_other_ids_find_nothing() {
        let sessions = Sessions::default();
        let live = sessions.create(&ID, [2; 32], "AKIA2", 10).unwrap();
        assert_eq!(live.access_key_id, "AKIA2");
        assert!(sessions.touch(&[8; 32], 11).is_none());
        assert_eq!(sessions.touch(&ID, 11), Some(live));
        sessions.remove(&ID);
        assert!(sessions.touch(&ID, 12).is_none());
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let sessions = Sessions::default();
        let live = sessions.create(&ID, [0xab; 32], "AKIA3", 0).unwrap();
        assert!(csrf_matches(&live, Some(&"ab".repeat(32))));
        assert!(!csrf_matches(&live, Some(&"ab".repeat(31))));
        assert!(!csrf_matches(&live, Some(&format!("{}ac", "ab".repeat(31)))));
        assert!(!csrf_matches(&live, Some("not hex")));
        assert!(!csrf_matches(&live, None));
    }

    #[test]
    fn the_number_of_sessions_is_bounded() {
        let sessions = Sessions::default();
        for i in 0..MAX_SESSIONS {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_le_bytes());
            sessions.create(&id, [0; 32], "k", 0).unwrap();
        }
        assert_eq!(sessions.create(&[0xff; 32], [0; 32], "k", 1), Err(Full::TooMany));
        // Once they have expired, they make room.
        assert!(sessions.create(&[0xff; 32], [0; 32], "k", IDLE_MILLIS).is_ok());
        assert_eq!(sessions.len(), 1);
    }
}
