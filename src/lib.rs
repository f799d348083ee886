//! appconfig-lite: a small, blocking drop-in for the AWS AppConfig Agent.
//!
//! The binary (`main.rs`) builds [`settings::Settings`] and hands them to [`lifecycle::run`],
//! which picks the mode (Lambda extension or standalone), starts the HTTP listener
//! ([`server`]), and keeps the [`cache`] fresh through [`upstream`]. Only [`credentials`] and
//! [`signing`] see key material.
#![forbid(unsafe_code)]

pub mod cache;
pub mod credentials;
pub mod extension_api;
pub mod flags;
pub mod ion;
pub mod lifecycle;
pub mod logging;
pub mod routes;
pub mod rules;
pub mod server;
pub mod settings;
pub mod signing;
pub mod timestamp;
pub mod upstream;
