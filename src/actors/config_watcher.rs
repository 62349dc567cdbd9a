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
use super::supervisor::{Reload, ReloadError};
use crate::blocking::RELOAD_DEADLINE;
use crate::config::settings::ConfigArgs;
use crate::config::Credentials;
use crate::plan;

pub(crate) struct ConfigWatcher {
    args: ConfigArgs,
    supervisor: Addr<Supervisor>,
    debounce: Duration,
    pending: Option<SpawnHandle>,
    /// The config file's bytes and those of its template files, as last
    /// planned: an event that changes none of them reloads nothing.
    last_applied: Option<Vec<u8>>,
    /// The `templateFile`s of the last plan (their directories are watched
    /// too, and an event naming one of them reloads).
    template_files: Vec<PathBuf>,
    /// Directories watched so far.
    watched: Vec<PathBuf>,
    watcher: Option<RecommendedWatcher>,
    names: Names,
}

/// Shared with the notify callback: the file names an event must name to
/// count (the config's and each template file's).
type Names = Arc<std::sync::RwLock<Vec<std::ffi::OsString>>>;

/// The config file's bytes followed by each template file's (length-
/// prefixed, so no two different sets give the same bytes). A template
/// file that is not a regular file counts as empty (it is not read: a
/// FIFO swapped in must not block; the plan reports it).
fn fingerprint(config: &[u8], templates: &[PathBuf]) -> Vec<u8> {
    let read = |p: &PathBuf| {
        use std::io::Read;
        let mut buf = Vec::new();
        crate::fs::read::open_regular(p)
            .and_then(|mut f| f.read_to_end(&mut buf))
            .map(|_| buf)
            .unwrap_or_default()
    };
    let mut out = Vec::with_capacity(config.len());
    for part in std::iter::once(config.to_vec()).chain(templates.iter().map(read)) {
        out.extend_from_slice(&(part.len() as u64).to_le_bytes());
        out.extend_from_slice(&part);
    }
    out
}

impl ConfigWatcher {
    /// `template_files`: those of the plan running now.
    pub(crate) fn new(
        args: ConfigArgs,
        supervisor: Addr<Supervisor>,
        debounce: Duration,
        template_files: Vec<PathBuf>,
    ) -> Self {
        let last_applied = std::fs::read(&args.config_file)
            .ok()
            .map(|c| fingerprint(&c, &template_files));
        Self {
            args,
            supervisor,
            debounce,
            pending: None,
            last_applied,
            template_files,
            watched: Vec::new(),
            watcher: None,
            names: Names::default(),
        }
    }

    /// Watches the config's directory and every template file's; the
    /// names that count follow the template files.
    fn watch_all(&mut self) {
        let mut names = vec![];
        if let Some(n) = self.args.config_file.file_name() {
            names.push(n.to_os_string());
        }
        let mut dirs = vec![self.dir()];
        for t in &self.template_files {
            if let Some(n) = t.file_name() {
                names.push(n.to_os_string());
            }
            dirs.push(parent_dir(t));
        }
        *self
            .names
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = names;
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        for dir in dirs {
            if self.watched.contains(&dir) {
                continue;
            }
            match w.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), "watching for config and template changes");
                    self.watched.push(dir);
                }
                Err(e) => tracing::error!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot watch this directory; reload with SIGHUP after changing its files"
                ),
            }
        }
    }

    fn dir(&self) -> PathBuf {
        parent_dir(&self.args.config_file)
    }

    /// Reads and plans the config off the actor thread (its files, and the
    /// template and TLS files it names, are read there, under a deadline),
    /// then applies the plan.
    fn reload(&mut self, ctx: &mut Context<Self>) {
        let args = self.args.clone();
        let templates = self.template_files.clone();
        let last = self.last_applied.clone();
        let job = move || read_and_plan(&args, &templates, last.as_deref());
        let work = crate::blocking::run("reading the config", RELOAD_DEADLINE, job);
        ctx.spawn(work.into_actor(self).map(|res, act, _| {
            let Some((planned, print)) = (match res {
                Ok(r) => r,
                Err(e) => return act.supervisor.do_send(Reload(Err(ReloadError::Read(e)))),
            }) else {
                return;
            };
            if let Ok(plan) = &planned {
                if plan.template_files != act.template_files {
                    act.template_files = plan.template_files.clone();
                    act.watch_all();
                }
            }
            act.last_applied = Some(print);
            tracing::info!(file = %act.args.config_file.display(), "config or template changed; reloading");
            // The supervisor applies plans one at a time.
            act.supervisor
                .do_send(Reload(planned.map_err(ReloadError::Invalid)));
        }));
    }
}

/// What a reload reads and plans (on the blocking pool): `None` when the
/// config and template files are what was last applied (or the config is
/// unreadable, mid-swap: a later event retries); else the plan and the
/// fingerprint to remember.
fn read_and_plan(
    args: &ConfigArgs,
    templates: &[PathBuf],
    last: Option<&[u8]>,
) -> Option<(Result<plan::Plan, crate::config::ConfigErrors>, Vec<u8>)> {
    let path = &args.config_file;
    let content = match std::fs::read(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "config file unreadable; keeping the running config");
            return None;
        }
    };
    let print = fingerprint(&content, templates);
    if last == Some(&print[..]) {
        tracing::debug!(file = %path.display(), "config event without a content change");
        return None;
    }
    // Plan the bytes just read (not a second read of the file); a file
    // that is not UTF-8 goes through `load` for its error message.
    let planned = match std::str::from_utf8(&content) {
        Ok(text) => plan::load_str(text, args, Credentials::Required),
        Err(_) => plan::load(args, Credentials::Required),
    };
    // The new plan's template files are remembered with the config either
    // way, so a broken file is not re-reported on every event; read again
    // only when the plan names other ones.
    let print = match &planned {
        Ok(plan) if plan.template_files != templates => fingerprint(&content, &plan.template_files),
        _ => print,
    };
    Some((planned, print))
}

/// The directory of `file` (`.` for a bare name).
fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
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
        let names = Arc::clone(&self.names);
        let handler = move |res: notify::Result<notify::Event>| match res {
            Ok(ev) => {
                let names = names
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if ev
                    .paths
                    .iter()
                    .any(|p| names.iter().any(|n| relevant(p, n)))
                {
                    addr.do_send(FileEvent);
                }
            }
            Err(e) => tracing::warn!(error = %e, "config watcher error"),
        };
        match notify::recommended_watcher(handler) {
            Ok(w) => {
                self.watcher = Some(w);
                self.watch_all();
            }
            Err(e) => tracing::error!(
                error = %e,
                "cannot watch the config file; reload with SIGHUP instead"
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
        self.pending = Some(ctx.run_later(self.debounce, |act, ctx| {
            act.pending = None;
            act.reload(ctx);
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
