//! The configuration cache: one entry per (app, env, profile) as requested, one fetch at a time
//! per entry, stale data served on any refresh failure (product.md §4).
//!
//! It decides when an entry is due and applies what `upstream` answered; it maps nothing to
//! HTTP statuses (that is `routes`) and never blocks a caller that already has data.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use crate::flags::{FlagError, FlagSet};
use crate::upstream::{Content, Poll, SessionToken, Upstream, UpstreamError};

/// Tokens are valid for 24 h (wire.md §2); one older than this is not worth sending.
const TOKEN_MAX_AGE: Duration = Duration::from_secs(23 * 3600);

/// First backoff step after a transient failure; doubles per failure up to the poll interval.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The three identifiers of a configuration, each a name or an ID exactly as the caller wrote
/// it (percent-decoded). A name and an ID of the same profile are two different keys
/// (product.md §4).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigKey {
    pub application: String,
    pub environment: String,
    pub profile: String,
}

impl fmt::Display for ConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.application, self.environment, self.profile
        )
    }
}

/// Decodes the `%XX` escapes of a path segment or query value, the one way both request paths
/// and `PREFETCH_LIST` items are read; `+` stays a plus (product.md §2.1). `None` on a bad escape or
/// on bytes that are not UTF-8.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let high = hex_value(*bytes.get(i + 1)?)?;
            let low = hex_value(*bytes.get(i + 2)?)?;
            out.push(high << 4 | low);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// One cached version of a configuration, shared with every request that serves it.
#[derive(Debug)]
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub content_type: String,
    pub version: Option<String>,
    /// A strong validator of `bytes`, quoted, ready for the `ETag` header.
    pub etag: String,
    /// The bytes read as a flag set, once per version (feature-flags.md: rules are parsed
    /// once, not per request). Filled by [`Snapshot::read_flags`] when the cache keeps a new
    /// version that may hold variants, so whole-profile requests never parse; otherwise on the
    /// first `?flag=`.
    flags: OnceLock<Result<FlagSet, FlagError>>,
    /// The configuration these bytes belong to, named in the flag warnings.
    key: ConfigKey,
    /// Whether whole-profile requests may need the flags evaluated, decided once per version
    /// so the request path never scans the bytes.
    may_have_variants: bool,
}

impl Snapshot {
    /// Wraps fetched content. Flags are not read yet: a version sent again unchanged is
    /// dropped, and reading it would log its warnings a second time (feature-flags.md §4.2).
    pub fn new(key: &ConfigKey, content: Content) -> Self {
        let etag = etag_of(&content.bytes);
        let may_have_variants = may_have_variants(&content.content_type, &content.bytes);
        Snapshot {
            bytes: content.bytes,
            content_type: content.content_type,
            version: content.version,
            etag,
            flags: OnceLock::new(),
            key: key.clone(),
            may_have_variants,
        }
    }

    /// Whether `other` holds the same bytes, type and version (a new session resends the
    /// current version; that is no change).
    fn is_same_as(&self, other: &Snapshot) -> bool {
        self.etag == other.etag
            && self.version == other.version
            && self.content_type == other.content_type
    }

    /// Reads the flags now if whole-profile requests will need them, for a snapshot the cache
    /// is about to keep.
    fn read_flags(&self) {
        if self.may_have_variants {
            self.flags();
        }
    }

    /// The data read as a flag set, parsed on first use and kept for this version; warnings
    /// about bad rules are logged then, once per version.
    pub fn flags(&self) -> &Result<FlagSet, FlagError> {
        self.flags.get_or_init(|| {
            let parsed = FlagSet::parse(&self.bytes, &self.content_type);
            if let Ok(set) = &parsed {
                let version = self.version.as_deref().unwrap_or("(unlabelled)");
                for warning in set.warnings() {
                    log::warn!("flags of {} version {version}: {warning}", self.key);
                }
            }
            parsed
        })
    }

    /// The flag set to evaluate for a whole-profile request, when the data has variants (or
    /// is a deployment-time document); `None` means the bytes are served unchanged.
    pub fn variant_flags(&self) -> Option<&FlagSet> {
        if !self.may_have_variants {
            return None;
        }
        match self.flags() {
            Ok(set) if !set.is_served_unchanged() => Some(set),
            _ => None,
        }
    }
}

/// The Ion multi-variant form, or JSON naming `_variants` or a `values` member: cheap
/// tests that keep plain configurations from ever being parsed on the request path.
fn may_have_variants(content_type: &str, bytes: &[u8]) -> bool {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    media_type.eq_ignore_ascii_case("application/ion")
        || contains(bytes, b"\"_variants\"")
        || contains(bytes, b"\"values\"")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// What a successful poll brought, prepared outside the entry lock.
enum Received {
    /// Empty body or `204`.
    Unchanged,
    /// The same bytes, type and version as the cached snapshot (a new session resends them).
    SameAgain,
    Version(Arc<Snapshot>),
}

/// Why a request got no data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// The first fetch failed and nothing is cached.
    Upstream(UpstreamError),
    /// The first fetch did not finish within the request timeout; it goes on in the background.
    FirstFetchTimedOut,
    /// The entry cap is reached and this key is new (quality.md: existing entries keep working).
    TooManyEntries { max_entries: usize },
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Upstream(e) => write!(f, "{e}"),
            CacheError::FirstFetchTimedOut => {
                write!(
                    f,
                    "the first fetch from AppConfigData took longer than the request timeout"
                )
            }
            CacheError::TooManyEntries { max_entries } => {
                write!(
                    f,
                    "the cache already holds its maximum of {max_entries} configurations"
                )
            }
        }
    }
}

/// Cache timing and limits, taken from `Settings`.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    pub poll_interval: Duration,
    pub request_timeout: Duration,
    pub max_entries: usize,
    /// Whether a request for a due entry starts a background refresh. Off in Lambda, where
    /// every due entry is refreshed on INVOKE instead: a refresh started by a request could
    /// still be running when Lambda freezes the environment (product.md §4).
    pub refresh_on_request: bool,
}

/// The cache. Share it behind an `Arc`; fetches run on their own threads so a caller waits at
/// most the request timeout.
pub struct Cache {
    entries: Mutex<HashMap<ConfigKey, Arc<Entry>>>,
    upstream: Arc<Upstream>,
    config: CacheConfig,
}

struct Entry {
    key: ConfigKey,
    state: Mutex<EntryState>,
    changed: Condvar,
}

#[derive(Default)]
struct EntryState {
    data: Option<Arc<Snapshot>>,
    token: Option<(SessionToken, SystemTime)>,
    advised_interval: Option<Duration>,
    last_poll: Option<Instant>,
    fetching: bool,
    /// Completed fetch attempts; waiters compare it to know that an attempt ended.
    attempts: u64,
    last_error: Option<UpstreamError>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Cache {
    pub fn new(upstream: Arc<Upstream>, config: CacheConfig) -> Arc<Self> {
        Arc::new(Cache {
            entries: Mutex::new(HashMap::new()),
            upstream,
            config,
        })
    }

    /// The cached configuration for `key`. With data cached it answers at once (and, with
    /// `refresh_on_request`, starts a background refresh when the entry is due); without, it starts or joins the one fetch of
    /// the entry and waits for it up to the request timeout.
    pub fn get(self: &Arc<Self>, key: &ConfigKey) -> Result<Arc<Snapshot>, CacheError> {
        let entry = self.entry(key)?;
        let mut state = lock(&entry.state);
        if let Some(data) = &state.data {
            let data = Arc::clone(data);
            if self.config.refresh_on_request && self.is_due(&state, Instant::now()) {
                state.fetching = true;
                drop(state);
                log::debug!("{key} is due; refreshing in the background");
                self.spawn_fetch(entry, None);
            }
            return Ok(data);
        }

        let seen = state.attempts;
        if !state.fetching {
            state.fetching = true;
            self.spawn_fetch(Arc::clone(&entry), None);
        }
        let deadline = Instant::now() + self.config.request_timeout;
        loop {
            if state.attempts > seen {
                return match (&state.data, &state.last_error) {
                    (Some(data), _) => Ok(Arc::clone(data)),
                    (None, Some(error)) => Err(CacheError::Upstream(error.clone())),
                    (None, None) => Err(CacheError::Upstream(UpstreamError::Internal {
                        message: "a fetch ended with neither data nor error".into(),
                    })),
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(CacheError::FirstFetchTimedOut);
            }
            state = match entry.changed.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Starts fetching `keys` that have no data yet (creating their entries) and waits until
    /// they finish or `wait` passes. Returns how many finished in time.
    pub fn prefetch(self: &Arc<Self>, keys: &[crate::cache::ConfigKey], wait: Duration) -> usize {
        let entries: Vec<Arc<Entry>> = keys
            .iter()
            .filter_map(|key| match self.entry(key) {
                Ok(entry) => Some(entry),
                Err(e) => {
                    log::error!("cannot prefetch {key}: {e}");
                    None
                }
            })
            .filter(|entry| {
                let mut state = lock(&entry.state);
                let start = state.data.is_none() && !state.fetching;
                state.fetching |= start;
                start
            })
            .collect();
        self.run_batch(entries, wait)
    }

    /// Refreshes every due entry in parallel (bounded by `MAX_CONNECTIONS` in `upstream`) and
    /// waits until they finish or `wait` passes. Returns (due, finished in time).
    pub fn refresh_due(self: &Arc<Self>, wait: Duration) -> (usize, usize) {
        let now = Instant::now();
        let all: Vec<Arc<Entry>> = lock(&self.entries).values().cloned().collect();
        let due: Vec<Arc<Entry>> = all
            .into_iter()
            .filter(|entry| {
                let mut state = lock(&entry.state);
                let due = self.is_due(&state, now);
                state.fetching |= due;
                due
            })
            .collect();
        let count = due.len();
        (count, self.run_batch(due, wait))
    }

    /// Whether any entry is due now (a cheap check for the Lambda INVOKE path).
    pub fn has_due(&self) -> bool {
        let now = Instant::now();
        lock(&self.entries)
            .values()
            .any(|entry| self.is_due(&lock(&entry.state), now))
    }

    /// How long until the earliest entry is due, for the standalone timer.
    pub fn next_due_in(&self) -> Option<Duration> {
        let now = Instant::now();
        lock(&self.entries)
            .values()
            .filter_map(|entry| self.due_at(&lock(&entry.state)))
            .map(|at| at.saturating_duration_since(now))
            .min()
    }

    fn entry(&self, key: &ConfigKey) -> Result<Arc<Entry>, CacheError> {
        let mut entries = lock(&self.entries);
        if let Some(entry) = entries.get(key) {
            return Ok(Arc::clone(entry));
        }
        if entries.len() >= self.config.max_entries {
            log::error!(
                "refused {key}: the cache holds its maximum of {} configurations",
                self.config.max_entries
            );
            return Err(CacheError::TooManyEntries {
                max_entries: self.config.max_entries,
            });
        }
        let entry = Arc::new(Entry {
            key: key.clone(),
            state: Mutex::new(EntryState::default()),
            changed: Condvar::new(),
        });
        entries.insert(key.clone(), Arc::clone(&entry));
        Ok(entry)
    }

    /// When a refresh is due: `max(poll interval, advised)` after the last poll, or the backoff
    /// time after a failure. `None` while a fetch runs.
    fn due_at(&self, state: &EntryState) -> Option<Instant> {
        if state.fetching {
            return None;
        }
        if let Some(retry_at) = state.retry_at {
            return Some(retry_at);
        }
        let last_poll = state.last_poll?;
        Some(last_poll + self.interval(state))
    }

    fn is_due(&self, state: &EntryState, now: Instant) -> bool {
        if state.fetching {
            return false;
        }
        match self.due_at(state) {
            Some(at) => now >= at,
            None => state.last_poll.is_none(),
        }
    }

    fn interval(&self, state: &EntryState) -> Duration {
        self.config
            .poll_interval
            .max(state.advised_interval.unwrap_or_default())
    }

    /// Runs one fetch per entry on its own thread and waits for the batch up to `wait`.
    fn run_batch(self: &Arc<Self>, entries: Vec<Arc<Entry>>, wait: Duration) -> usize {
        let batch = Arc::new((Mutex::new(0usize), Condvar::new()));
        let total = entries.len();
        for entry in entries {
            self.spawn_fetch(entry, Some(Arc::clone(&batch)));
        }
        let deadline = Instant::now() + wait;
        let (finished, done) = &*batch;
        let mut count = lock(finished);
        while *count < total {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            count = match done.wait_timeout(count, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        *count
    }

    /// Fetches on a new thread; the caller has already set `fetching`.
    fn spawn_fetch(
        self: &Arc<Self>,
        entry: Arc<Entry>,
        batch: Option<Arc<(Mutex<usize>, Condvar)>>,
    ) {
        let cache = Arc::clone(self);
        let key = entry.key.clone();
        let failed_entry = Arc::clone(&entry);
        let failed_batch = batch.clone();
        let spawned = thread::Builder::new().name("fetch".into()).spawn(move || {
            cache.fetch(&entry);
            if let Some(batch) = batch {
                *lock(&batch.0) += 1;
                batch.1.notify_all();
            }
        });
        if let Err(e) = spawned {
            log::error!(
                "cannot start a fetch thread: {e}; {} stays as it is until the next try",
                key
            );
            // The thread never ran: undo `fetching` (or the entry would never be fetched
            // again) and count the attempt for anyone waiting on the batch.
            lock(&failed_entry.state).fetching = false;
            if let Some(batch) = failed_batch {
                *lock(&batch.0) += 1;
                batch.1.notify_all();
            }
        }
    }

    /// One fetch attempt for `entry`, applied to its state.
    fn fetch(&self, entry: &Entry) {
        let (token, previous) = {
            let mut state = lock(&entry.state);
            (state.token.take(), state.data.clone())
        };
        let started = Instant::now();
        let result = self.poll(&entry.key, token);
        let elapsed_ms = started.elapsed().as_millis();

        // A new version is hashed and its flags parsed before the entry lock is taken again:
        // requests read the entry under that lock, and a large configuration must not hold
        // them up. Only this thread changes the data while `fetching` is set.
        let result = result.map(|poll| {
            let received = match poll.content {
                None => Received::Unchanged,
                Some(content) => {
                    let snapshot = Snapshot::new(&entry.key, content);
                    if previous
                        .as_deref()
                        .is_some_and(|old| old.is_same_as(&snapshot))
                    {
                        Received::SameAgain
                    } else {
                        log_retrieval(&entry.key, previous.as_deref(), &snapshot, elapsed_ms);
                        snapshot.read_flags();
                        Received::Version(Arc::new(snapshot))
                    }
                }
            };
            (poll.next_token, poll.advised_interval, received)
        });

        let mut state = lock(&entry.state);
        let now = Instant::now();
        state.fetching = false;
        state.attempts += 1;
        match result {
            Ok((next_token, advised_interval, received)) => {
                state.token = Some((next_token, SystemTime::now()));
                state.advised_interval = advised_interval;
                state.last_poll = Some(now);
                state.failures = 0;
                state.retry_at = None;
                state.last_error = None;
                match received {
                    Received::Version(snapshot) => state.data = Some(snapshot),
                    Received::SameAgain => log::debug!("{} sent again unchanged", entry.key),
                    Received::Unchanged if state.data.is_none() => {
                        log::info!("retrieved {} (empty) in {elapsed_ms} ms", entry.key);
                        state.data = Some(Arc::new(Snapshot::new(
                            &entry.key,
                            Content {
                                bytes: Vec::new(),
                                content_type: "application/octet-stream".into(),
                                version: None,
                            },
                        )));
                    }
                    Received::Unchanged => log::debug!("{} unchanged", entry.key),
                }
            }
            Err(error) => {
                let wait = if error.is_transient() {
                    state.failures = state.failures.saturating_add(1);
                    backoff(state.failures, self.interval(&state))
                } else {
                    self.interval(&state)
                };
                state.retry_at = Some(now + wait);
                let next = crate::timestamp::format_utc(SystemTime::now() + wait);
                match &state.data {
                    Some(data) => log::warn!(
                        "refresh of {} failed: {error}; serving version {} from cache; next try at {next}",
                        entry.key,
                        data.version.as_deref().unwrap_or("(unlabelled)"),
                    ),
                    None => log::warn!(
                        "fetch of {} failed: {error}; next try on the next request for it",
                        entry.key
                    ),
                }
                state.last_error = Some(error);
            }
        }
        let has_data = state.data.is_some();
        drop(state);
        entry.changed.notify_all();
        if !has_data {
            self.forget_if_empty(entry);
        }
    }

    /// Removes `entry` from the map while it holds no data and no fetch of it runs, so that
    /// configurations that could not be fetched (unknown names, denied access, a service that
    /// is down) neither count against `max_entries` nor get polled in the background; the
    /// next request for one starts over (product.md §5: a failed prefetch is "retried on
    /// first use"). Callers already waiting on it keep their `Arc` and see the outcome.
    fn forget_if_empty(&self, entry: &Entry) {
        // Lock order: the map, then an entry (as in `has_due` and `next_due_in`).
        let mut entries = lock(&self.entries);
        let is_this_entry = entries
            .get(&entry.key)
            .is_some_and(|current| std::ptr::eq(Arc::as_ptr(current), entry));
        if !is_this_entry {
            return;
        }
        let state = lock(&entry.state);
        if state.data.is_none() && !state.fetching {
            drop(state);
            entries.remove(&entry.key);
        }
    }

    /// GetLatestConfiguration with the entry's token, starting a session first when there is
    /// none or it is too old. A rejected token (expired after a long freeze, corrupted, used)
    /// or a connection lost during the poll (whose token may have reached the service) gets
    /// one new session and one retry, so the caller never sees it (product.md §4). This holds
    /// for a token just issued by a first fetch's session as for one kept from earlier polls.
    fn poll(
        &self,
        key: &ConfigKey,
        token: Option<(SessionToken, SystemTime)>,
    ) -> Result<Poll, UpstreamError> {
        let fresh = token.filter(|(_, issued)| {
            SystemTime::now()
                .duration_since(*issued)
                .map(|age| age < TOKEN_MAX_AGE)
                .unwrap_or(true)
        });
        let mut token = match fresh {
            Some((token, _)) => token,
            None => self
                .upstream
                .start_session(key, self.config.poll_interval)?,
        };
        let mut retried = false;
        loop {
            match self.upstream.latest(&token) {
                Err(
                    UpstreamError::TokenRejected { message }
                    | UpstreamError::Connection { message },
                ) if !retried => {
                    log::debug!("{key}: poll failed ({message}); starting a new session");
                    retried = true;
                    token = self
                        .upstream
                        .start_session(key, self.config.poll_interval)?;
                }
                other => return other,
            }
        }
    }
}

/// Locks a mutex, taking the data even if a thread panicked while holding it: every state
/// kept under these locks is valid after each single assignment.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A strong validator: the first 128 bits of the SHA-256 of the bytes, hex, quoted.
pub fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut etag = String::with_capacity(34);
    etag.push('"');
    for byte in digest.iter().take(16) {
        etag.push(char::from(HEX[usize::from(byte >> 4)]));
        etag.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    etag.push('"');
    etag
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Exponential backoff from one second, capped at the entry's interval, with jitter in
/// [50 %, 100 %] so many agents do not retry in step.
fn backoff(failures: u32, cap: Duration) -> Duration {
    let exponential = FIRST_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let base = exponential.min(cap);
    let jitter = 0.5 + (random_u64() % 1000) as f64 / 2000.0;
    base.mul_f64(jitter)
}

/// A random number from std's per-process hash keys, enough for jitter.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}

fn log_retrieval(key: &ConfigKey, old: Option<&Snapshot>, new: &Snapshot, elapsed_ms: u128) {
    let version = new.version.as_deref().unwrap_or("(unlabelled)");
    match old {
        None => log::info!(
            "retrieved {key} version {version} ({} bytes) in {elapsed_ms} ms",
            new.bytes.len()
        ),
        Some(old) => log::info!(
            "{key} changed from version {} to {version} ({} bytes)",
            old.version.as_deref().unwrap_or("(unlabelled)"),
            new.bytes.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_by_content_and_are_quoted() {
        let a = etag_of(b"{\"a\":1}");
        let b = etag_of(b"{\"a\":2}");
        assert_ne!(a, b);
        assert_eq!(a, etag_of(b"{\"a\":1}"));
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 34);
    }

    #[test]
    fn backoff_grows_and_stays_under_the_interval() {
        let cap = Duration::from_secs(45);
        for failures in 1..40 {
            let wait = backoff(failures, cap);
            assert!(wait <= cap, "{failures}: {wait:?}");
            let floor = FIRST_BACKOFF
                .saturating_mul(1 << (failures - 1).min(16))
                .min(cap)
                / 2;
            assert!(wait >= floor, "{failures}: {wait:?} < {floor:?}");
        }
    }
}
