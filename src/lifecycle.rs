//! Lifecycle: picks the mode (product.md §1), wires credentials, upstream, cache and listener
//! together, runs prefetch and the refresh timer, and stops on a signal or SHUTDOWN.
//!
//! It knows nothing of HTTP parsing or AppConfig payloads; it only decides when to refresh.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, UNIX_EPOCH};

use crate::cache::{lock, Cache, CacheConfig};
use crate::credentials::{self, CredentialsError, HttpContext};
use crate::extension_api::{Event, ExtensionError, ExtensionsClient};
use crate::routes::Router;
use crate::server::{HttpServer, ServerError};
use crate::settings::{Settings, SettingsError};
use crate::timestamp::format_utc;
use crate::upstream::{self, Upstream, UpstreamConfig, UpstreamError};

/// The standalone timer wakes at least this often to look for due entries, so entries created
/// by requests are refreshed on time without a wake-up per entry.
const TIMER_MAX_SLEEP: Duration = Duration::from_secs(1);

/// How long a shutdown waits for requests being answered. Lambda gives all extensions together
/// about 1.7 s (wire.md §1); a request still waiting for a first fetch is dropped after this.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);

/// Why the agent stopped with an error.
#[derive(Debug)]
pub enum LifecycleError {
    Listen(ServerError),
    Upstream(UpstreamError),
    Signals(String),
    Extensions(ExtensionError),
    Unsupported(SettingsError),
    Credentials(CredentialsError),
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::Listen(e) => write!(f, "{e}"),
            LifecycleError::Upstream(e) => write!(f, "{e}"),
            LifecycleError::Signals(e) => write!(f, "cannot watch for SIGTERM and SIGINT: {e}"),
            LifecycleError::Extensions(e) => write!(f, "{e}"),
            LifecycleError::Unsupported(e) => write!(f, "{e}"),
            LifecycleError::Credentials(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LifecycleError {}

/// The running parts every mode shares.
struct Agent {
    cache: Arc<Cache>,
    server: HttpServer,
}

impl Agent {
    fn start(settings: &Settings) -> Result<Agent, LifecycleError> {
        let proxy = settings.proxy.as_ref().map(|p| p.url.clone());
        let http = HttpContext {
            agent: upstream::http_agent(settings.request_timeout, settings.max_connections, &proxy)
                .map_err(LifecycleError::Upstream)?,
            region: settings.region.clone(),
            sts_endpoint: settings.sts_endpoint.clone(),
            timeout: settings.request_timeout,
            is_lambda: settings.lambda_runtime_api.is_some(),
        };
        let credentials =
            credentials::build_source(&settings.credentials, settings.role.as_ref(), &http)
                .map_err(LifecycleError::Credentials)?;
        let upstream = Upstream::new(
            &UpstreamConfig {
                endpoint: settings.appconfigdata_endpoint.clone(),
                region: settings.region.clone(),
                request_timeout: settings.request_timeout,
                max_connections: settings.max_connections,
                proxy,
            },
            credentials,
        )
        .map_err(LifecycleError::Upstream)?;
        let cache = Cache::new(
            Arc::new(upstream),
            CacheConfig {
                poll_interval: settings.poll_interval,
                request_timeout: settings.request_timeout,
                max_entries: settings.max_entries,
                refresh_on_request: settings.lambda_runtime_api.is_none(),
            },
        );
        let router = Arc::new(Router::new(
            Arc::clone(&cache),
            settings.access_token.clone(),
        ));
        let server = HttpServer::start(&settings.http_host, settings.http_port, router)
            .map_err(LifecycleError::Listen)?;
        Ok(Agent { cache, server })
    }
}

/// Runs the agent until it is told to stop: as a Lambda extension when
/// `AWS_LAMBDA_RUNTIME_API` is set, else standalone. `extension_name` is the executable's file
/// name. Returns after a clean shutdown.
pub fn run(settings: Settings, extension_name: &str) -> Result<(), LifecycleError> {
    if let Some(unsupported) = unsupported_setting(&settings) {
        if let Some(runtime_api) = &settings.lambda_runtime_api {
            report_settings_error(runtime_api, extension_name, &unsupported);
        }
        return Err(LifecycleError::Unsupported(unsupported));
    }
    if settings.backup_directory.is_some() {
        log::warn!("BACKUP_DIRECTORY is not supported yet and is ignored; no disk copies are kept");
    }
    if settings
        .proxy
        .as_ref()
        .is_some_and(|proxy| !proxy.headers.is_empty())
    {
        log::warn!("PROXY_HEADERS is not supported yet and is ignored; PROXY_URL is used alone");
    }
    match &settings.lambda_runtime_api {
        Some(runtime_api) => run_lambda(&settings, runtime_api, extension_name),
        None => run_standalone(&settings),
    }
}

/// Reports a settings error inside Lambda and returns; the caller then exits 1 (product.md §5).
/// `error` is a [`SettingsError`], or another start-up error caused by a setting's value, such
/// as a `LOG_PATH` that cannot be opened.
pub fn report_settings_error(runtime_api: &str, extension_name: &str, error: &dyn fmt::Display) {
    report_init_error(
        runtime_api,
        extension_name,
        "Extension.ConfigInvalid",
        &error.to_string(),
    );
}

/// Registers (Lambda accepts `init/error` only from a registered extension) and posts
/// `init/error`. Failures to report are logged: the exit that follows tells Lambda anyway.
fn report_init_error(runtime_api: &str, extension_name: &str, error_type: &str, message: &str) {
    let mut client = ExtensionsClient::new(runtime_api);
    let reported = client
        .register(extension_name)
        .and_then(|()| client.init_error(error_type, message));
    if let Err(report) = reported {
        log::error!("{report}");
    }
}

/// Settings that change where data comes from are refused rather than ignored, so nobody
/// believes they are served local files or a manifest's role while the agent calls AWS.
fn unsupported_setting(settings: &Settings) -> Option<SettingsError> {
    let (variable, what) = if settings.local_development_directory.is_some() {
        ("LOCAL_DEVELOPMENT_DIRECTORY", "local development mode")
    } else if settings.manifest.is_some() {
        ("MANIFEST", "the manifest")
    } else {
        return None;
    };
    Some(SettingsError {
        variable: variable.to_string(),
        message: format!(
            "{variable} is set, but {what} is not supported by this version; unset it \
             (see Limitations in the README)"
        ),
    })
}

/// Lambda extension mode (product.md §5): bind, register, prefetch, then loop on events.
fn run_lambda(
    settings: &Settings,
    runtime_api: &str,
    extension_name: &str,
) -> Result<(), LifecycleError> {
    // Bind first, so a handler that calls during INIT can connect (product.md §5 step 1).
    let agent = match Agent::start(settings) {
        Ok(agent) => agent,
        Err(e) => {
            let error_type = match e {
                LifecycleError::Listen(_) => "Extension.ListenFailed",
                _ => "Extension.ConfigInvalid",
            };
            report_init_error(runtime_api, extension_name, error_type, &e.to_string());
            return Err(e);
        }
    };
    log::info!(
        "appconfig-lite {} started as Lambda extension {extension_name}, listening on {}, region {}",
        env!("CARGO_PKG_VERSION"),
        agent.server.address(),
        settings.region
    );
    let mut client = ExtensionsClient::new(runtime_api);
    client
        .register(extension_name)
        .map_err(LifecycleError::Extensions)?;

    if !settings.prefetch_list.is_empty() {
        let finished = agent
            .cache
            .prefetch(&settings.prefetch_list, settings.request_timeout);
        log::debug!(
            "prefetch: {finished} of {} finished before INIT ends",
            settings.prefetch_list.len()
        );
    }

    loop {
        match client.next_event() {
            Ok(Event::Invoke { request_id, .. }) => {
                // Refresh while the handler runs, and only ask for the next event once the
                // refreshes are done or timed out: Lambda freezes every thread after that
                // call, and a refresh frozen half-way would hold a dead connection.
                if agent.cache.has_due() {
                    let (due, finished) = agent.cache.refresh_due(settings.request_timeout);
                    log::debug!("invoke {request_id}: refreshed {finished} of {due} due entries");
                }
            }
            Ok(Event::Shutdown {
                reason,
                deadline_ms,
            }) => {
                let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
                log::info!(
                    "SHUTDOWN ({reason}, deadline {}); stopping",
                    format_utc(deadline)
                );
                agent.server.shutdown(SHUTDOWN_GRACE);
                log::logger().flush();
                return Ok(());
            }
            Err(e) => {
                log::error!("{e}");
                if let Err(report) = client.exit_error("Extension.EventLoopFailed", &e.to_string())
                {
                    log::error!("{report}");
                }
                log::logger().flush();
                return Err(LifecycleError::Extensions(e));
            }
        }
    }
}

fn run_standalone(settings: &Settings) -> Result<(), LifecycleError> {
    // Watch signals before any thread starts, so none of them inherits the default action.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| LifecycleError::Signals(e.to_string()))?;
    let agent = Agent::start(settings)?;
    log::info!(
        "appconfig-lite {} started in standalone mode, listening on {}, region {}",
        env!("CARGO_PKG_VERSION"),
        agent.server.address(),
        settings.region
    );

    if !settings.prefetch_list.is_empty() {
        let cache = Arc::clone(&agent.cache);
        let keys = settings.prefetch_list.clone();
        let wait = settings.request_timeout;
        let spawned = thread::Builder::new()
            .name("prefetch".into())
            .spawn(move || {
                let finished = cache.prefetch(&keys, wait);
                log::debug!(
                    "prefetch: {finished} of {} finished within {wait:?}",
                    keys.len()
                );
            });
        if let Err(e) = spawned {
            log::warn!("cannot start prefetch ({e}); entries are fetched on first request");
        }
    }

    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let timer = {
        let cache = Arc::clone(&agent.cache);
        let stop = Arc::clone(&stop);
        let poll_interval = settings.poll_interval;
        let wait = settings.request_timeout;
        thread::Builder::new()
            .name("refresh-timer".into())
            .spawn(move || refresh_timer(&cache, &stop, poll_interval, wait))
            .map_err(|e| LifecycleError::Signals(format!("cannot start the refresh timer: {e}")))?
    };

    if let Some(signal) = signals.forever().next() {
        log::info!("received signal {signal}; shutting down");
    }
    *lock(&stop.0) = true;
    stop.1.notify_all();
    agent.server.shutdown(SHUTDOWN_GRACE);
    if timer.join().is_err() {
        log::error!("the refresh timer panicked; please report this as a bug");
    }
    log::info!("stopped");
    log::logger().flush();
    Ok(())
}

/// Refreshes due entries until `stop` is set (product.md §1: standalone refresh trigger).
fn refresh_timer(
    cache: &Arc<Cache>,
    stop: &(Mutex<bool>, Condvar),
    poll_interval: Duration,
    wait: Duration,
) {
    let (stopped, wake) = stop;
    let mut guard = lock(stopped);
    while !*guard {
        let sleep = cache
            .next_due_in()
            .unwrap_or(poll_interval)
            .clamp(Duration::from_millis(20), TIMER_MAX_SLEEP);
        guard = match wake.wait_timeout(guard, sleep) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        };
        if *guard {
            break;
        }
        drop(guard);
        let (due, finished) = cache.refresh_due(wait);
        if due > 0 {
            log::debug!("timer: refreshed {finished} of {due} due entries");
        }
        guard = lock(stopped);
    }
}
