//! The timeline that the `events` command answers: what the fakes received and what this program
//! did to them (deploys, queued events), merged in arrival order on one monotonic clock.
//!
//! Owns the notes of this program's own actions, the wording of AppConfigData calls and which
//! entries were already shown; it changes no fake. `main` feeds it the AppConfigData calls and
//! `lambda` the Extensions API calls, as `(arrival, text)` entries.

use std::time::Instant;

use crate::support::appconfigdata::{CallRecord, Operation};

/// One thing that happened: when, and a short description without ` | `.
pub type Entry = (Instant, String);

/// Separates the entries of one `events` answer, which must stay on one line.
const SEPARATOR: &str = " | ";

/// The notes taken so far and how much of each source earlier answers showed.
pub struct Timeline {
    /// Time zero of every entry: when the fakes started.
    start: Instant,
    notes: Vec<Entry>,
    /// Entries already shown, per source: notes, AppConfigData calls, Extensions API calls. Each
    /// source only grows, so a count is enough to know what is new.
    shown: [usize; 3],
}

impl Timeline {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            notes: Vec::new(),
            shown: [0; 3],
        }
    }

    /// Records one of this program's own actions, done at `at`. Take `at` before acting: the
    /// agent may react to an event before this program gets to write the note.
    pub fn note(&mut self, at: Instant, text: String) {
        self.notes.push((at, text));
    }

    /// The notes and the given calls as `SECONDS WHAT` items in time order, joined by ` | `:
    /// every entry when `is_all`, else only those no earlier answer showed. `(none)` if empty.
    pub fn render(
        &mut self,
        appconfig: Vec<Entry>,
        extensions: Vec<Entry>,
        is_all: bool,
    ) -> String {
        let sources = [self.notes.clone(), appconfig, extensions];
        let mut entries = Vec::new();
        for (source, shown) in sources.into_iter().zip(&mut self.shown) {
            let first = if is_all {
                0
            } else {
                (*shown).min(source.len())
            };
            *shown = source.len();
            entries.extend(source.into_iter().skip(first));
        }
        if entries.is_empty() {
            return "(none)".to_string();
        }
        entries.sort_by_key(|(at, _)| *at);
        let items: Vec<String> = entries
            .into_iter()
            .map(|(at, text)| {
                let seconds = at.saturating_duration_since(self.start).as_secs_f64();
                format!("{seconds:.3}s {}", text.replace(['\r', '\n'], " "))
            })
            .collect();
        items.join(SEPARATOR)
    }
}

/// One entry per AppConfigData call: operation, configuration, status, and anything odd.
pub fn appconfig_entries(calls: &[CallRecord]) -> Vec<Entry> {
    calls
        .iter()
        .map(|call| {
            let operation = match call.operation {
                Operation::StartConfigurationSession => "StartConfigurationSession",
                Operation::GetLatestConfiguration => "GetLatestConfiguration",
                Operation::Unknown => "unknown AppConfigData call",
            };
            let key = call.key.as_deref().unwrap_or("(unknown configuration)");
            let status = call
                .status
                .map_or_else(|| "no answer".to_string(), |status| status.to_string());
            let mut text = format!("{operation} {key} -> {status}");
            if !call.signature_ok {
                text.push_str(" (signature refused)");
            }
            if call.early {
                text.push_str(" (before the advised poll interval)");
            }
            (call.at, text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    #[test]
    fn entries_merge_in_time_order_and_each_is_shown_once() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut timeline = Timeline::new(start);
        timeline
            .notes
            .push((at(5), "deploy a:b:c version 1".to_string()));
        let appconfig = vec![(at(20), "GetLatestConfiguration a:b:c -> 200".to_string())];
        let extensions = vec![
            (at(10), "register".to_string()),
            (at(30), "event/next #1\nwaits".to_string()),
        ];

        assert_eq!(
            timeline.render(appconfig.clone(), extensions.clone(), false),
            "0.005s deploy a:b:c version 1 | 0.010s register | \
             0.020s GetLatestConfiguration a:b:c -> 200 | 0.030s event/next #1 waits"
        );
        assert_eq!(
            timeline.render(appconfig.clone(), extensions.clone(), false),
            "(none)"
        );

        let mut more = extensions.clone();
        more.push((at(1500), "event/next #2".to_string()));
        assert_eq!(
            timeline.render(appconfig.clone(), more.clone(), false),
            "1.500s event/next #2"
        );
        assert!(timeline
            .render(appconfig, more, true)
            .starts_with("0.005s deploy a:b:c version 1 | 0.010s register"));
    }
}
