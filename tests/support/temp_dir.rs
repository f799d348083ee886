//! A scratch directory for tests that hand the agent or the credential chain files (shared
//! credentials and config files, token files).
//!
//! Owns only creating, writing into and removing that directory under the system temp dir; it
//! must not touch anything outside it. Talks to no other support module.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, unique to this process and call, removed when
/// dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates `appconfig-lite-test-{name}-{pid}-{n}`, emptied first if an earlier run left it.
    pub fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "appconfig-lite-test-{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Writes `content` to the file `name` in the directory; returns the file's path.
    pub fn write(&self, name: &str, content: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
