//! The change feed: what a committed change makes stale in the caches of every node sharing the
//! store.
//!
//! A node caches keys, aliases, credentials and identity policies so that the hot path reads no
//! database. A change made through one node must reach the caches of the others, or a revoked
//! access key, policy or grant keeps working there. A store that several nodes share (PostgreSQL)
//! publishes one [`Invalidation`] per thing a mutation changed, in the mutation's own transaction,
//! so that it is delivered exactly when (and only if) the change commits; each node follows the
//! feed from [`crate::Store::invalidations`]. A store that only one node can open (SQLite) has no
//! feed: that node invalidates its own caches after each commit.
//!
//! The wire form (a PostgreSQL `NOTIFY` payload) is one line: `k <key id>`, `a <account>
//! <region> <alias name>`, `c <access key id>` or `p <principal ARN>`. None of these fields can
//! hold a space. A payload that does not parse reads as [`Invalidation::All`]: forgetting too
//! much costs a reload, forgetting too little keeps a revoked grant alive.

use kms_core::ids::{AccountId, AliasName, KeyId, Region};

/// The PostgreSQL notification channel of the change feed.
pub const CHANNEL: &str = "ferrokms_invalidate";

/// Something a committed change made stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// A key: its record (state, rotation), materials, policy, grants, tags or aliases.
    Key(KeyId),
    /// An alias name (created, repointed or deleted).
    Alias {
        /// The alias's account.
        account: AccountId,
        /// The alias's region.
        region: Region,
        /// The alias's name.
        name: AliasName,
    },
    /// An access key (deleted).
    AccessKey(String),
    /// A principal (created or deleted, with its access keys and sessions) or its identity
    /// policies.
    Principal(String),
    /// Anything: changes may have been missed (the feed's connection was lost), so every cache
    /// is to be emptied.
    All,
}

impl Invalidation {
    /// The feed's wire form (see the module documentation).
    pub fn encode(&self) -> String {
        match self {
            Self::Key(id) => format!("k {}", id.storage()),
            Self::Alias { account, region, name } => {
                format!("a {} {} {}", account.as_str(), region.as_str(), name.as_str())
            }
            Self::AccessKey(id) => format!("c {id}"),
            Self::Principal(arn) => format!("p {arn}"),
            Self::All => "*".to_owned(),
        }
    }

    /// Reads the wire form; anything unexpected is [`Invalidation::All`].
    pub fn decode(payload: &str) -> Self {
        Self::try_decode(payload).unwrap_or(Self::All)
    }

    fn try_decode(payload: &str) -> Option<Self> {
        let (kind, rest) = payload.split_once(' ')?;
        match kind {
            "k" => KeyId::parse_storage(rest).map(Self::Key),
            "a" => {
                let mut parts = rest.split(' ');
                let account = AccountId::parse(parts.next()?).ok()?;
                let region = Region::parse(parts.next()?).ok()?;
                let name = AliasName::parse(parts.next()?).ok()?;
                parts.next().is_none().then_some(Self::Alias { account, region, name })
            }
            "c" if !rest.is_empty() => Some(Self::AccessKey(rest.to_owned())),
            "p" if !rest.is_empty() => Some(Self::Principal(rest.to_owned())),
            _ => None,
        }
    }
}

/// The invalidations of changes committed by any node, in commit order, as a store that
/// several nodes share delivers them. Ends when the store is dropped.
#[derive(Debug)]
pub struct InvalidationFeed {
    receiver: tokio::sync::mpsc::UnboundedReceiver<Invalidation>,
}

impl InvalidationFeed {
    /// A feed and the sender a backend publishes into.
    pub fn channel() -> (tokio::sync::mpsc::UnboundedSender<Invalidation>, Self) {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        (sender, Self { receiver })
    }

    /// The next invalidation; `None` once the feed has ended.
    pub async fn next(&mut self) -> Option<Invalidation> {
        self.receiver.recv().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_junk() {
        let changes = [
            Invalidation::Key(KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").unwrap()),
            Invalidation::Alias {
                account: AccountId::parse("111122223333").unwrap(),
                region: Region::parse("eu-west-1").unwrap(),
                name: AliasName::parse("alias/app/prod_1").unwrap(),
            },
            Invalidation::AccessKey("AKIAEXAMPLE".into()),
            Invalidation::Principal("arn:aws:iam::111122223333:user/alice".into()),
            Invalidation::All,
        ];
        for change in changes {
            assert_eq!(Invalidation::decode(&change.encode()), change);
        }
        for junk in ["", "k", "k nope", "a 1 2", "c ", "x y", "a 111122223333 us-east-1 alias/a extra"] {
            assert_eq!(Invalidation::decode(junk), Invalidation::All, "{junk:?}");
        }
    }
}
