//! The `appconfig-lite` binary: reads argv and the environment, starts logging, and hands over
//! to `lifecycle::run`. No logic lives here.

use std::process::ExitCode;

use appconfig_lite::{lifecycle, logging, settings::Settings};

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("--version" | "-V") => {
            println!("appconfig-lite {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h") => {
            print!("{}", Settings::help());
            return ExitCode::SUCCESS;
        }
        _ => {}
    }

    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("appconfig-lite: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = logging::init(&settings.log) {
        eprintln!("appconfig-lite: {e}");
        return ExitCode::FAILURE;
    }
    for warning in &settings.warnings {
        log::warn!("{warning}");
    }
    log::debug!("effective settings: {}", settings.describe());

    match lifecycle::run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            log::logger().flush();
            ExitCode::FAILURE
        }
    }
}
