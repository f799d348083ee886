//! The `appconfig-lite` binary: reads argv and the environment, starts logging, and hands over
//! to `lifecycle::run`. No logic lives here.

use std::process::ExitCode;

use appconfig_lite::settings::{self, Settings};
use appconfig_lite::{lifecycle, logging};

fn main() -> ExitCode {
    // args_os: a non-UTF-8 argument must get the message below, not a panic.
    let first = std::env::args_os()
        .nth(1)
        .map(|arg| arg.to_string_lossy().into_owned());
    match first.as_deref() {
        Some("--version" | "-V") => {
            println!("appconfig-lite {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h") => {
            print!("{}", settings::HELP_TEXT);
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!(
                "appconfig-lite: unknown argument {other:?}; the agent takes only --help or \
                 --version and is configured through environment variables (see --help)"
            );
            return ExitCode::from(2);
        }
        None => {}
    }

    // Lambda matches the registered name against the executable's file name (wire.md §1).
    let extension_name = std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "appconfig-lite".to_string());

    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("appconfig-lite: {e}");
            if let Some(runtime_api) = settings::lambda_runtime_api() {
                lifecycle::report_settings_error(&runtime_api, &extension_name, &e);
            }
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = logging::init(&settings.log) {
        eprintln!("appconfig-lite: {e}");
        if let Some(runtime_api) = &settings.lambda_runtime_api {
            lifecycle::report_settings_error(runtime_api, &extension_name, &e);
        }
        return ExitCode::FAILURE;
    }
    for warning in &settings.warnings {
        log::warn!("{warning}");
    }
    log::debug!("effective settings: {}", settings.describe());

    match lifecycle::run(settings, &extension_name) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            log::logger().flush();
            ExitCode::FAILURE
        }
    }
}
