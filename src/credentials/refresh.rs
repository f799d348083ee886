//! Caching and refresh for every source that fetches credentials (container endpoint, profile
//! files, instance metadata, AssumeRole): one fetch at a time however many callers ask
//! (single flight), replacement a set lead time before expiry, expiry judged against the
//! injected wall clock on every use (so a thaw is noticed), and [`CredentialSource::invalidate`].
//!
//! It knows nothing about where credentials come from; a [`Fetch`] does. It never logs values,
//! only the source's description and the expiry time.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use super::{Clock, CredentialSource, Credentials, CredentialsError};
use crate::timestamp::format_utc;

/// One way of getting fresh credentials.
pub(super) trait Fetch: Send + Sync {
    /// Names the source for log lines: a variable, path, host or role ARN, never a value.
    fn describe(&self) -> String;

    /// Fetches new credentials. Called by one thread at a time.
    fn fetch(&self) -> Result<Credentials, CredentialsError>;

    /// Called by [`CredentialSource::invalidate`], so a source built on another one (AssumeRole)
    /// can pass the invalidation down.
    fn invalidate_upstream(&self) {}
}

/// A [`CredentialSource`] that caches what a [`Fetch`] returns.
pub(super) struct Refreshing<F> {
    fetcher: F,
    clock: Arc<dyn Clock>,
    /// Credentials are replaced once `expiry - lead` has passed.
    lead: Duration,
    state: Mutex<State>,
    /// Signalled whenever a fetch ends, successful or not.
    fetch_ended: Condvar,
}

#[derive(Default)]
struct State {
    cached: Option<Credentials>,
    fetching: bool,
    /// Count of fetches that have ended, so a caller that waited for one can tell it ended.
    fetches_ended: u64,
    /// The error of the last fetch, handed to the callers that waited for it so that a failing
    /// endpoint gets one call per wave of callers, not one per caller.
    last_error: Option<CredentialsError>,
}

impl<F: Fetch> Refreshing<F> {
    pub fn new(fetcher: F, clock: Arc<dyn Clock>, lead: Duration) -> Self {
        Refreshing {
            fetcher,
            clock,
            lead,
            state: Mutex::new(State::default()),
            fetch_ended: Condvar::new(),
        }
    }

    /// Starts with credentials already in hand (read while choosing the source).
    pub fn with_initial(
        fetcher: F,
        clock: Arc<dyn Clock>,
        lead: Duration,
        initial: Credentials,
    ) -> Self {
        let source = Refreshing::new(fetcher, clock, lead);
        lock(&source.state).cached = Some(initial);
        source
    }

    fn is_due(&self, credentials: &Credentials, now: SystemTime) -> bool {
        match credentials.expiry() {
            Some(expiry) => expiry.checked_sub(self.lead).is_none_or(|due| now >= due),
            None => false,
        }
    }

    /// Runs the fetch with the lock released and records its outcome.
    fn fetch_and_store(&self) -> Result<Credentials, CredentialsError> {
        let outcome = self.fetcher.fetch();

        let mut state = lock(&self.state);
        state.fetching = false;
        state.fetches_ended += 1;
        self.fetch_ended.notify_all();
        match outcome {
            Ok(credentials) => {
                let expiry = credentials.expiry().map_or("no expiry".into(), |expiry| {
                    format!("valid until {}", format_utc(expiry))
                });
                log::debug!(
                    "credentials: fetched from {} ({expiry})",
                    self.fetcher.describe()
                );
                state.cached = Some(credentials.clone());
                state.last_error = None;
                Ok(credentials)
            }
            Err(error) => {
                state.last_error = Some(error.clone());
                let now = self.clock.now();
                match &state.cached {
                    Some(old) if !has_expired(old, now) => {
                        let until = old.expiry().map_or("no expiry".into(), format_utc);
                        log::warn!(
                            "credentials: refresh from {} failed ({error}); using the current \
                             ones until {until}, retrying on next use",
                            self.fetcher.describe()
                        );
                        Ok(old.clone())
                    }
                    _ => Err(error),
                }
            }
        }
    }
}

impl<F: Fetch> CredentialSource for Refreshing<F> {
    fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let mut state = lock(&self.state);
        let mut waited_since: Option<u64> = None;
        loop {
            let now = self.clock.now();
            let fetch_ended_while_waiting =
                waited_since.is_some_and(|since| state.fetches_ended > since);
            if let Some(cached) = &state.cached {
                let usable_now = !has_expired(cached, now);
                // Fresh enough; or someone is already fetching and these still work; or we
                // waited for a fetch and this is what it brought.
                if !self.is_due(cached, now)
                    || (usable_now && (state.fetching || fetch_ended_while_waiting))
                {
                    return Ok(cached.clone());
                }
            }
            if fetch_ended_while_waiting {
                if let Some(error) = &state.last_error {
                    return Err(error.clone());
                }
            }
            if !state.fetching {
                break;
            }
            waited_since = Some(state.fetches_ended);
            state = self
                .fetch_ended
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }

        state.fetching = true;
        let why = match &state.cached {
            Some(_) => "near expiry",
            None => "none cached",
        };
        drop(state);
        log::debug!(
            "credentials: fetching from {} ({why})",
            self.fetcher.describe()
        );

        // If the fetch panicked, later callers must not wait for it forever.
        let reset = ResetOnUnwind(&self.state, &self.fetch_ended);
        let result = self.fetch_and_store();
        std::mem::forget(reset);
        result
    }

    fn invalidate(&self) {
        let mut state = lock(&self.state);
        state.cached = None;
        state.last_error = None;
        drop(state);
        log::debug!("credentials: cache for {} cleared", self.fetcher.describe());
        self.fetcher.invalidate_upstream();
    }
}

/// Clears the `fetching` flag when dropped during a panic; forgotten on the normal path.
struct ResetOnUnwind<'a>(&'a Mutex<State>, &'a Condvar);

impl Drop for ResetOnUnwind<'_> {
    fn drop(&mut self) {
        let mut state = lock(self.0);
        state.fetching = false;
        state.fetches_ended += 1;
        self.1.notify_all();
    }
}

fn has_expired(credentials: &Credentials, now: SystemTime) -> bool {
    credentials.expiry().is_some_and(|expiry| now >= expiry)
}

/// Lock poisoning only means another caller panicked mid-update; the state is still
/// consistent (every field is written in one step), so carry on with it.
fn lock(mutex: &Mutex<State>) -> MutexGuard<'_, State> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::UNIX_EPOCH;

    struct FixedClock(Mutex<SystemTime>);

    impl FixedClock {
        fn at(seconds: u64) -> Arc<FixedClock> {
            Arc::new(FixedClock(Mutex::new(
                UNIX_EPOCH + Duration::from_secs(seconds),
            )))
        }

        fn set(&self, seconds: u64) {
            *self.0.lock().unwrap() = UNIX_EPOCH + Duration::from_secs(seconds);
        }
    }

    impl Clock for FixedClock {
        fn now(&self) -> SystemTime {
            *self.0.lock().unwrap()
        }
    }

    /// Hands out credentials that expire at the scripted times, or errors, counting calls.
    struct Script {
        answers: Mutex<Vec<Result<u64, CredentialsError>>>,
        calls: AtomicUsize,
        invalidations: AtomicUsize,
    }

    impl Script {
        fn new(answers: Vec<Result<u64, CredentialsError>>) -> Self {
            Script {
                answers: Mutex::new(answers),
                calls: AtomicUsize::new(0),
                invalidations: AtomicUsize::new(0),
            }
        }
    }

    impl Fetch for &Script {
        fn describe(&self) -> String {
            "script".into()
        }

        fn fetch(&self) -> Result<Credentials, CredentialsError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst);
            let answer = self.answers.lock().unwrap().remove(0);
            answer.map(|expiry| {
                Credentials::new(
                    format!("KEY{call}"),
                    "secret",
                    None,
                    Some(UNIX_EPOCH + Duration::from_secs(expiry)),
                    "script",
                )
            })
        }

        fn invalidate_upstream(&self) {
            self.invalidations.fetch_add(1, Ordering::SeqCst);
        }
    }

    const LEAD: Duration = Duration::from_secs(300);

    fn key(source: &impl CredentialSource) -> String {
        match source.credentials() {
            Ok(credentials) => credentials.access_key_id().to_string(),
            Err(error) => format!("error: {error}"),
        }
    }

    #[test]
    fn expiry_decisions_follow_the_injected_clock() {
        let script = Script::new(vec![Ok(10_000), Ok(20_000), Ok(30_000)]);
        let clock = FixedClock::at(1_000);
        let source = Refreshing::new(&script, clock.clone(), LEAD);

        // (clock, key expected, fetches so far)
        let steps = [
            (1_000, "KEY0", 1),
            (9_699, "KEY0", 1),  // 301 s before expiry: still cached
            (9_700, "KEY1", 2),  // exactly the lead before expiry: replaced
            (19_000, "KEY1", 2), // a long gap, but still outside the lead
            (90_000, "KEY2", 3), // a thaw far past expiry: replaced before use
        ];
        for (now, expected, calls) in steps {
            clock.set(now);
            assert_eq!(key(&source), expected, "at {now}");
            assert_eq!(script.calls.load(Ordering::SeqCst), calls, "at {now}");
        }
    }

    #[test]
    fn a_failed_refresh_keeps_credentials_that_have_not_expired() {
        let error = CredentialsError::Source("endpoint down".into());
        let script = Script::new(vec![Ok(10_000), Err(error.clone()), Err(error), Ok(40_000)]);
        let clock = FixedClock::at(1_000);
        let source = Refreshing::new(&script, clock.clone(), LEAD);
        assert_eq!(key(&source), "KEY0");

        clock.set(9_800);
        assert_eq!(key(&source), "KEY0");
        clock.set(10_000);
        assert_eq!(key(&source), "error: credentials: endpoint down");
        assert_eq!(key(&source), "KEY3");
        assert_eq!(script.calls.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn invalidate_forces_a_fetch_and_reaches_upstream() {
        let script = Script::new(vec![Ok(10_000), Ok(10_000)]);
        let source = Refreshing::new(&script, FixedClock::at(1_000), LEAD);
        assert_eq!(key(&source), "KEY0");
        assert_eq!(key(&source), "KEY0");
        source.invalidate();
        assert_eq!(key(&source), "KEY1");
        assert_eq!(script.calls.load(Ordering::SeqCst), 2);
        assert_eq!(script.invalidations.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn initial_credentials_without_expiry_are_kept_until_invalidated() {
        let script = Script::new(vec![Ok(10_000)]);
        let clock = FixedClock::at(1_000);
        let initial = Credentials::new("INITIAL", "secret", None, None, "test");
        let source = Refreshing::with_initial(&script, clock.clone(), LEAD, initial);
        clock.set(1_000_000_000);
        assert_eq!(key(&source), "INITIAL");
        assert_eq!(script.calls.load(Ordering::SeqCst), 0);
        source.invalidate();
        assert_eq!(key(&source), "KEY0");
    }

    #[test]
    fn credentials_issued_inside_the_lead_are_still_handed_out() {
        // An endpoint that only issues short-lived credentials: each use fetches, but each
        // use still gets credentials.
        let script = Script::new(vec![Ok(1_100), Ok(1_100)]);
        let source = Refreshing::new(&script, FixedClock::at(1_000), LEAD);
        assert_eq!(key(&source), "KEY0");
        assert_eq!(key(&source), "KEY1");
    }
}
