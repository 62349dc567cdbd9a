//! ConfigWatcherActor: reloads the config file when it changes
//! (`WATCH_CONFIG=true`).
//!
//! It watches the file's *directory* (not the file), so it survives editors
//! that write a new file and rename it over the old one, and the Kubernetes
//! ConfigMap update, which swaps the `..data` symlink in the mounted
//! directory. Events are debounced (`WATCH_DEBOUNCE`); a reload whose file
//! content equals the last applied one is skipped. An invalid new config is
//! logged with all its errors and the running config stays.

use std::path::{Path, PathBuf};
use std::time::Duration;

use actix::prelude::*;
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use std::sync::Arc;

use super::supervisor::Supervisor;
use crate::app::apply_reload;
use crate::config::settings::ConfigArgs;
use crate::config::Credentials;
use crate::plan;
use crate::telemetry::metrics::Metrics;

pub(crate) struct ConfigWatcher {
    args: ConfigArgs,
    supervisor: Addr<Supervisor>,
    debounce: Duration,
    pending: Option<SpawnHandle>,
    last_applied: Option<Vec<u8>>,
    watcher: Option<RecommendedWatcher>,
    metrics: Arc<Metrics>,
}

impl ConfigWatcher {
    pub(crate) fn new(
        args: ConfigArgs,
        supervisor: Addr<Supervisor>,
        debounce: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        let last_applied = std::fs::read(&args.config_file).ok();
        Self {
            args,
            supervisor,
            debounce,
            pending: None,
            last_applied,
            watcher: None,
            metrics,
        }
    }

    fn dir(&self) -> PathBuf {
        match self.args.config_file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn reload(&mut self) {
        let path = &self.args.config_file;
        let content = match std::fs::read(path) {
            Ok(c) => c,
            Err(e) => {
                // Mid-swap, or deleted: keep running; a later event retries.
                tracing::warn!(file = %path.display(), error = %e, "config file unreadable; keeping the running config");
                return;
            }
        };
        if self.last_applied.as_deref() == Some(&content[..]) {
            tracing::debug!(file = %path.display(), "config file event without a content change");
            return;
        }
        // Plan the bytes just read (not a second read of the file); a file
        // that is not UTF-8 goes through `load` for its error message.
        let planned = match std::str::from_utf8(&content) {
            Ok(text) => plan::load_str(text, &self.args, Credentials::Required),
            Err(_) => plan::load(&self.args, Credentials::Required),
        };
        // Remembered either way, so a broken file is not re-reported on every event.
        self.last_applied = Some(content);
        tracing::info!(file = %path.display(), "config file changed; reloading");
        let supervisor = self.supervisor.clone();
        let metrics = Arc::clone(&self.metrics);
        // Applied in the background; the supervisor applies plans one at a time.
        actix_rt::spawn(async move { apply_reload(&supervisor, planned, &metrics).await });
    }
}

/// Is this event about the config file (or a ConfigMap `..data` swap)?
pub(crate) fn relevant(event_path: &Path, config_name: &std::ffi::OsStr) -> bool {
    match event_path.file_name() {
        Some(n) => n == config_name || n.to_string_lossy().starts_with(".."),
        None => false,
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct FileEvent;

impl Actor for ConfigWatcher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let addr = ctx.address();
        let name = self.args.config_file.file_name().map(|n| n.to_os_string());
        let handler = move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                if name
                    .as_deref()
                    .is_some_and(|n| ev.paths.iter().any(|p| relevant(p, n)))
                {
                    addr.do_send(FileEvent);
                }
            }
            Err(e) => tracing::warn!(error = %e, "config watcher error"),
        };
        let dir = self.dir();
        let watcher = notify::recommended_watcher(handler)
            .and_then(|mut w| w.watch(&dir, RecursiveMode::NonRecursive).map(|()| w));
        match watcher {
            Ok(w) => {
                tracing::info!(dir = %dir.display(), "watching the config file for changes");
                self.watcher = Some(w);
            }
            Err(e) => tracing::error!(
                dir = %dir.display(),
                error = %e,
                "cannot watch the config directory; reload with SIGHUP instead"
            ),
        }
    }
}

impl Handler<FileEvent> for ConfigWatcher {
    type Result = ();

    fn handle(&mut self, _: FileEvent, ctx: &mut Self::Context) {
        if let Some(h) = self.pending.take() {
            ctx.cancel_future(h);
        }
        self.pending = Some(ctx.run_later(self.debounce, |act, _| {
            act.pending = None;
            act.reload();
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn relevance() {
        let n = OsStr::new("config.yaml");
        assert!(relevant(Path::new("/c/config.yaml"), n));
        assert!(relevant(Path::new("/c/..data"), n));
        assert!(relevant(Path::new("/c/..2026_11_23_21_00_00.123"), n));
        assert!(!relevant(Path::new("/c/.config.yaml.swp"), n));
        assert!(!relevant(Path::new("/c/other.yaml"), n));
    }
}
