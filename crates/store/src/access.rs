//! A short memory of the two lookups every API request makes before it does anything: whose
//! token is this, and what is this user's role in this project. Under a queue load they were a
//! quarter of the request threads' time (two read transactions per request, each re-reading
//! pages that the last commit invalidated).
//!
//! What is remembered is forgotten at once when this store writes anything through
//! [`crate::Store::write`] (every change to users, tokens, projects and memberships goes that
//! way; the queue's own lease and submit do not, and touch none of them). A change made by
//! another process on the same database — the CLI, a second server on PostgreSQL — is seen
//! after at most the time to live. Only positive answers are remembered: an unknown token, an
//! unknown project or a non-member is looked up every time, so a token or membership created
//! elsewhere works on its first use.

use crate::model::{Project, Role, User};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a remembered answer is trusted when nothing in this process has written since.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(1);

/// Beyond this many entries a map is emptied before the next insert: the working set is the
/// active tokens and (project, user) pairs, a few hundred even on a busy server.
const MAX_ENTRIES: usize = 8192;

struct Entry<V> {
    value: V,
    generation: u64,
    fetched: Instant,
}

struct Remembered<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K: Eq + Hash, V: Clone> Remembered<K, V> {
    fn new() -> Self {
        Remembered {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get<Q>(&self, key: &Q, generation: u64, ttl: Duration) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(key)?;
        (entry.generation == generation && entry.fetched.elapsed() < ttl)
            .then(|| entry.value.clone())
    }

    fn put(&self, key: K, value: V, generation: u64, fetched: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                value,
                generation,
                fetched,
            },
        );
    }
}

/// The key of a project lookup: the slug, the user and whether they are a global admin (an
/// admin has every role in every project).
pub(crate) type ProjectKey = (String, crate::ids::UserId, bool);

pub(crate) struct AccessCache {
    ttl: Duration,
    /// Bumped after every write of this store: entries from an older generation are void.
    generation: AtomicU64,
    users_by_token_hash: Remembered<String, User>,
    projects: Remembered<ProjectKey, (Project, Role)>,
}

/// Taken before the database is read, so that an answer read while a write was committing
/// is stored under the generation that write then voids.
#[derive(Clone, Copy)]
pub(crate) struct Ticket {
    generation: u64,
    taken: Instant,
}

impl AccessCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        AccessCache {
            ttl,
            generation: AtomicU64::new(0),
            users_by_token_hash: Remembered::new(),
            projects: Remembered::new(),
        }
    }

    fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// Forgets everything; called after each write.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn ticket(&self) -> Ticket {
        Ticket {
            generation: self.generation.load(Ordering::Acquire),
            taken: Instant::now(),
        }
    }

    pub(crate) fn user(&self, token_hash: &str) -> Option<User> {
        if !self.enabled() {
            return None;
        }
        self.users_by_token_hash.get(
            token_hash,
            self.generation.load(Ordering::Acquire),
            self.ttl,
        )
    }

    pub(crate) fn keep_user(&self, token_hash: String, user: &User, ticket: Ticket) {
        if self.enabled() {
            self.users_by_token_hash
                .put(token_hash, user.clone(), ticket.generation, ticket.taken);
        }
    }

    pub(crate) fn project(&self, key: &ProjectKey) -> Option<(Project, Role)> {
        if !self.enabled() {
            return None;
        }
        self.projects
            .get(key, self.generation.load(Ordering::Acquire), self.ttl)
    }

    pub(crate) fn keep_project(&self, key: ProjectKey, found: (Project, Role), ticket: Ticket) {
        if self.enabled() {
            self.projects
                .put(key, found, ticket.generation, ticket.taken);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    fn ana() -> User {
        User {
            id: UserId(7),
            username: "ana".into(),
            display_name: "Ana".into(),
            is_admin: false,
            kind: crate::AccountKind::Human,
            disabled: false,
            created_at: 0,
        }
    }

    #[test]
    fn an_answer_is_forgotten_after_any_write() {
        let cache = AccessCache::new(Duration::from_secs(60));
        cache.keep_user("h".into(), &ana(), cache.ticket());
        assert_eq!(cache.user("h").map(|u| u.id), Some(UserId(7)));
        cache.invalidate();
        assert!(cache.user("h").is_none());
    }

    #[test]
    fn an_answer_read_while_a_write_committed_is_never_kept() {
        let cache = AccessCache::new(Duration::from_secs(60));
        let ticket = cache.ticket();
        // The write commits (and invalidates) between the read and the keeping.
        cache.invalidate();
        cache.keep_user("h".into(), &ana(), ticket);
        assert!(cache.user("h").is_none());
    }

    #[test]
    fn an_answer_expires_after_its_time_to_live() {
        let cache = AccessCache::new(Duration::from_millis(20));
        cache.keep_user("h".into(), &ana(), cache.ticket());
        assert!(cache.user("h").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.user("h").is_none());
    }

    #[test]
    fn a_zero_time_to_live_remembers_nothing() {
        let cache = AccessCache::new(Duration::ZERO);
        cache.keep_user("h".into(), &ana(), cache.ticket());
        assert!(cache.user("h").is_none());
    }
}
