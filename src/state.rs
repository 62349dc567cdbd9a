//! `STATE_DIR`: what survives an ungraceful end (SIGKILL, OOM, a crash) so
//! that the next start does not log in again and knows which files on disk
//! are still the ones it wrote: the tokens this process obtained by logging
//! in, each with the store and credentials it belongs to and when it
//! expires; for each secret the identity of the files it last wrote
//! (device, inode, size, modification time: nothing derived from their
//! content), when it was written and when its source last confirmed it
//! (a read that found it unchanged); and the leases of dynamic secrets (id, expiry, what
//! they were asked for), so a restart with intact files renews them
//! instead of asking for new credentials.
//!
//! The directory is the sidecar's own (an `emptyDir` mounted only in the
//! sidecar, kept across container restarts): mode 0700, owned by this
//! process's user; `state.json` in it is 0600 and written atomically. A
//! directory or file that another user owns or can read, a corrupt file, or
//! a file of another format is ignored with a warning (and replaced by this
//! process's own). What is in it: login tokens (the trade-off: a token on
//! the sidecar's own tmpfs, where a restarted sidecar finds it; it is
//! revoked and removed at a graceful stop) and lease ids (they can revoke
//! the credentials, not read them). Never the AppRole secret id, never a
//! secret value, never a token given to the process (token auth).
//!
//! Reads happen once at start (before the actors run); writes run on the
//! blocking pool, one at a time, the last state winning.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::secret::SecretString;

/// The file under `STATE_DIR`.
pub(crate) const STATE_FILE: &str = "state.json";
/// The largest state file read.
const MAX_STATE_BYTES: u64 = 1024 * 1024;
/// The format written (another one is ignored).
const VERSION: u32 = 1;
/// Deadline of one write of the state file.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// The state file is rewritten for a confirmation (an unchanged read) at
/// most this often: 1000 secrets refreshed every 30 s would otherwise
/// rewrite it 33 times a second. Writes, leases and tokens save at once.
const CONFIRM_SAVE_EVERY: Duration = Duration::from_secs(60);

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    #[serde(default)]
    tokens: Vec<TokenRecord>,
    #[serde(default)]
    secrets: Vec<SecretRecord>,
    #[serde(default)]
    leases: Vec<LeaseRecord>,
}

/// The lease of a dynamic secret's credentials on disk: kept so that a
/// restart whose files are intact renews it instead of asking for new
/// credentials. Plain data; the SyncActor turns it back into a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LeaseRecord {
    pub(crate) secret: String,
    /// What the secret asks for (a digest of its method, path and body): a
    /// changed definition does not take an old lease.
    pub(crate) request: String,
    #[serde(with = "secret_field")]
    pub(crate) lease_id: SecretString,
    /// Unix seconds when it ends.
    pub(crate) expires_at: u64,
    /// The duration first granted (what renewals ask for), seconds.
    pub(crate) asked_secs: u64,
    pub(crate) renewable: bool,
    /// The namespace it was issued in: `None` the store's, `""` the root.
    pub(crate) namespace: Option<String>,
    /// The named Vault store and credential set it was issued through.
    pub(crate) store: Option<String>,
    pub(crate) credentials: Option<String>,
}
/// The files a secret's last write left, and when it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SecretRecord {
    pub(crate) secret: String,
    pub(crate) files: Vec<FileId>,
    /// Unix seconds of that write.
    pub(crate) written_at: u64,
    /// Unix seconds the source last confirmed that content (the write, or a
    /// later read that found it unchanged): what `secret_age_seconds`
    /// counts from after a restart. Saved at most every
    /// [`CONFIRM_SAVE_EVERY`], so an ungraceful end overstates the age by
    /// at most that. 0 in files of earlier versions: the write's time.
    #[serde(default)]
    pub(crate) confirmed_at: u64,
}

impl SecretRecord {
    /// When the source last confirmed the content on disk.
    fn confirmed(&self) -> u64 {
        self.confirmed_at.max(self.written_at)
    }
}

/// What tells a file written by this process from any other: a rename
/// gives a new inode, a rewrite a new modification time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileId {
    pub(crate) path: PathBuf,
    pub(crate) dev: u64,
    pub(crate) ino: u64,
    pub(crate) size: u64,
    pub(crate) mtime_ns: i128,
}

impl FileId {
    /// The identity of the file at `path` now (`None`: cannot be stat-ed).
    /// Blocking: call it off the actor thread.
    pub(crate) fn of(path: &Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        // Followed: a file of an atomic set is a link into `..data`.
        let m = std::fs::metadata(path).ok()?;
        m.is_file().then(|| FileId {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

/// One login token.
#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    /// What it is for: the store's address, the auth method, its mount and
    /// the identity logged in as (never sent to another server or used for
    /// other credentials). No secret in it.
    key: String,
    #[serde(with = "secret_field")]
    token: SecretString,
    /// Unix seconds; `None`: does not expire.
    expires_at: Option<u64>,
}

mod secret_field {
    use crate::secret::SecretString;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

/// A token found in the state for a session, and how long it has left.
pub(crate) struct Reusable {
    pub(crate) token: SecretString,
    /// `None`: does not expire.
    pub(crate) left: Option<Duration>,
}

/// The state directory of this process: the state as loaded and changed,
/// written back after every change.
pub(crate) struct StateDir {
    dir: PathBuf,
    tokens: Mutex<Vec<TokenRecord>>,
    secrets: Mutex<Vec<SecretRecord>>,
    leases: Mutex<Vec<LeaseRecord>>,
    /// The secrets whose files, at start, were still the ones the last
    /// write left: when that write was (Unix seconds).
    intact_at_start: HashMap<String, u64>,
    /// A write is running on the blocking pool.
    writing: AtomicBool,
    /// The state changed since the running write took its copy.
    dirty: AtomicBool,
    /// Unix seconds of the last save a confirmation asked for (the start
    /// at first: the write that came before is saved anyway).
    confirm_saved_at: AtomicU64,
    /// A confirmation is not in the file yet (saved at a graceful stop).
    confirm_pending: AtomicBool,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why the state directory is not used at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StateDirError {
    #[error("STATE_DIR {}: {detail}; it is not used (no token is kept across restarts)", dir.display())]
    Unusable { dir: PathBuf, detail: String },
}

impl StateDir {
    /// Opens (creating it with mode 0700 if missing) and checks `dir`, and
    /// loads its state. Warnings (a state file ignored) come back for the
    /// log; the file's content never appears in them.
    pub(crate) fn open(dir: &Path) -> Result<(Arc<StateDir>, Vec<String>), StateDirError> {
        let unusable = |detail: String| StateDirError::Unusable {
            dir: dir.to_path_buf(),
            detail,
        };
        match std::fs::symlink_metadata(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::os::unix::fs::DirBuilderExt;
                std::fs::DirBuilder::new()
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| unusable(format!("cannot create it: {e}")))?;
            }
            Err(e) => return Err(unusable(format!("cannot stat it: {e}"))),
            Ok(_) => {}
        }
        let meta = std::fs::symlink_metadata(dir).map_err(|e| unusable(e.to_string()))?;
        check_dir(&meta, rustix::process::geteuid().as_raw()).map_err(unusable)?;
        let mut warnings = Vec::new();
        let path = dir.join(STATE_FILE);
        let expect = crate::fs::read::Expect {
            uid: Some(rustix::process::geteuid().as_raw()),
            mode: Some(0o600),
        };
        let file = match crate::fs::read::read_untrusted(&path, MAX_STATE_BYTES, expect) {
            Ok(bytes) => match parse(&bytes) {
                Ok(f) => f,
                Err(why) => {
                    warnings.push(format!("{}: {why}; it is ignored", path.display()));
                    StateFile::default()
                }
            },
            Err(crate::fs::read::ReadError::Missing(_)) => StateFile::default(),
            Err(e) => {
                warnings.push(format!("{e}; the state is ignored"));
                StateFile::default()
            }
        };
        let intact_at_start = intact(&file.secrets, &FileId::of);
        Ok((
            Arc::new(StateDir {
                dir: dir.to_path_buf(),
                tokens: Mutex::new(file.tokens),
                secrets: Mutex::new(file.secrets),
                leases: Mutex::new(file.leases),
                intact_at_start,
                writing: AtomicBool::new(false),
                dirty: AtomicBool::new(false),
                confirm_saved_at: AtomicU64::new(now_unix()),
                confirm_pending: AtomicBool::new(false),
            }),
            warnings,
        ))
    }

    /// The secrets whose files were still the ones last written when the
    /// process started, and when their source last confirmed them.
    pub(crate) fn intact_at_start(&self) -> &HashMap<String, u64> {
        &self.intact_at_start
    }

    /// Records the files a write of `secret` left (their identities, taken
    /// right after the write) and writes the state.
    pub(crate) fn record_secret(self: &Arc<Self>, secret: &str, files: Vec<FileId>) {
        {
            let mut all = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
            let now = now_unix();
            let rec = SecretRecord {
                secret: secret.to_string(),
                files,
                written_at: now,
                confirmed_at: now,
            };
            match all.iter_mut().find(|r| r.secret == secret) {
                Some(r) => *r = rec,
                None => all.push(rec),
            }
        }
        self.save();
    }

    /// Notes that a read of `secret` found the content on disk unchanged;
    /// saves the state when the last such save is [`CONFIRM_SAVE_EVERY`]
    /// old, else at the graceful stop ([`StateDir::save_at_stop`]). A
    /// secret without a record (never written by this process) is left
    /// alone.
    pub(crate) fn confirm(self: &Arc<Self>, secret: &str) {
        let now = now_unix();
        let found = {
            let mut all = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
            match all.iter_mut().find(|r| r.secret == secret) {
                Some(r) => {
                    r.confirmed_at = now;
                    true
                }
                None => false,
            }
        };
        if !found {
            return;
        }
        let last = self.confirm_saved_at.load(Ordering::SeqCst);
        if now.saturating_sub(last) >= CONFIRM_SAVE_EVERY.as_secs() {
            self.confirm_saved_at.store(now, Ordering::SeqCst);
            self.confirm_pending.store(false, Ordering::SeqCst);
            self.save();
        } else {
            self.confirm_pending.store(true, Ordering::SeqCst);
        }
    }

    /// Writes the state at a graceful stop if the file may not hold all of
    /// it: a confirmation not saved yet, or a save the ended runtime cut
    /// short (queued, or running when the system stopped: its task was
    /// dropped). Runs after the actor system and its blocking pool ended
    /// (no other write of the state can race it), on the caller's thread.
    pub(crate) fn save_at_stop(&self) {
        // `|`, not `||`: every flag is cleared.
        let unsaved = self.confirm_pending.swap(false, Ordering::SeqCst)
            | self.dirty.swap(false, Ordering::SeqCst)
            | self.writing.swap(false, Ordering::SeqCst);
        if !unsaved {
            return;
        }
        if let Err(e) = crate::fs::atomic::write_batch(&[self.state_write()]) {
            tracing::warn!(error = %e, "cannot write the STATE_DIR state at the stop");
        }
    }

    /// The state file's write, with the state as it is now.
    fn state_write(&self) -> crate::fs::FileWrite {
        crate::fs::FileWrite {
            target: crate::fs::WriteTarget {
                path: self.dir.join(STATE_FILE),
                mode: 0o600,
                owner: None,
                group: None,
                in_place: false,
            },
            content: self.serialize(),
        }
    }

    /// The lease kept for `secret`, if any.
    pub(crate) fn lease(&self, secret: &str) -> Option<LeaseRecord> {
        self.leases
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|l| l.secret == secret)
            .cloned()
    }

    /// Keeps `rec` as its secret's lease (replacing an earlier one) and
    /// writes the state.
    pub(crate) fn record_lease(self: &Arc<Self>, rec: LeaseRecord) {
        {
            let mut all = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
            match all.iter_mut().find(|l| l.secret == rec.secret) {
                Some(l) if *l == rec => return,
                Some(l) => *l = rec,
                None => all.push(rec),
            }
        }
        self.save();
    }

    /// Forgets `secret`'s lease (revoked, or the secret has none any more).
    pub(crate) fn forget_lease(self: &Arc<Self>, secret: &str) {
        if remove_where(&self.leases, |l| l.secret == secret) {
            self.save();
        }
    }

    /// The token kept for `key` if it has more than `margin` left.
    pub(crate) fn token(&self, key: &str, margin: Duration) -> Option<Reusable> {
        let now = now_unix();
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|t| t.key == key)
            .and_then(|t| match t.expires_at {
                None => Some(Reusable {
                    token: t.token.clone(),
                    left: None,
                }),
                Some(at) => {
                    let left = Duration::from_secs(at.saturating_sub(now));
                    (left > margin).then(|| Reusable {
                        token: t.token.clone(),
                        left: Some(left),
                    })
                }
            })
    }

    /// Keeps `token` for `key` (expiring in `ttl`; zero: never) and writes
    /// the state.
    pub(crate) fn keep_token(self: &Arc<Self>, key: &str, token: &SecretString, ttl: Duration) {
        let expires_at = (!ttl.is_zero()).then(|| now_unix().saturating_add(ttl.as_secs()));
        {
            let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
            match tokens.iter_mut().find(|t| t.key == key) {
                Some(t) if t.token == *token && t.expires_at == expires_at => return,
                Some(t) => {
                    t.token = token.clone();
                    t.expires_at = expires_at;
                }
                None => tokens.push(TokenRecord {
                    key: key.to_string(),
                    token: token.clone(),
                    expires_at,
                }),
            }
        }
        self.save();
    }

    /// Forgets the token of `key` (revoked, or found invalid) and writes the
    /// state.
    pub(crate) fn forget_token(self: &Arc<Self>, key: &str) {
        if remove_where(&self.tokens, |t| t.key == key) {
            self.save();
        }
    }

    /// Writes the state on the blocking pool; while a write runs, the next
    /// one waits for it (the last state wins).
    fn save(self: &Arc<Self>) {
        self.dirty.store(true, Ordering::SeqCst);
        if self.writing.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::clone(self);
        actix_rt::spawn(async move {
            while me.dirty.swap(false, Ordering::SeqCst) {
                let write = me.state_write();
                let res = crate::blocking::run("state write", WRITE_DEADLINE, move || {
                    crate::fs::atomic::write_batch(&[write])
                })
                .await;
                match res {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the STATE_DIR state"),
                    Err(e) => tracing::warn!(error = %e, "cannot write the STATE_DIR state"),
                }
            }
            me.writing.store(false, Ordering::SeqCst);
        });
    }

    fn serialize(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        let secrets = self.secrets.lock().unwrap_or_else(PoisonError::into_inner);
        let leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        let file = StateFileRef {
            version: VERSION,
            tokens: &tokens,
            secrets: &secrets,
            leases: &leases,
        };
        zeroize::Zeroizing::new(serde_json::to_vec(&file).unwrap_or_default())
    }
}

/// Removes the entries `gone` picks; whether any was.
fn remove_where<T>(list: &Mutex<Vec<T>>, gone: impl Fn(&T) -> bool) -> bool {
    let mut all = list.lock().unwrap_or_else(PoisonError::into_inner);
    let before = all.len();
    all.retain(|x| !gone(x));
    all.len() != before
}

/// [`StateFile`] by reference, for writing.
#[derive(Serialize)]
struct StateFileRef<'a> {
    version: u32,
    tokens: &'a [TokenRecord],
    secrets: &'a [SecretRecord],
    leases: &'a [LeaseRecord],
}

/// The secrets of `records` whose every file is, by `id_of`, still the one
/// recorded: by name, with when their source last confirmed them.
fn intact(
    records: &[SecretRecord],
    id_of: &dyn Fn(&Path) -> Option<FileId>,
) -> HashMap<String, u64> {
    records
        .iter()
        .filter(|r| !r.files.is_empty())
        .filter(|r| r.files.iter().all(|f| id_of(&f.path).as_ref() == Some(f)))
        .map(|r| (r.secret.clone(), r.confirmed()))
        .collect()
}

/// The directory must be a directory (not a symlink), owned by `uid`, and
/// closed to group and others.
fn check_dir(meta: &std::fs::Metadata, uid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if meta.file_type().is_symlink() {
        return Err("is a symlink: give the directory itself".into());
    }
    if !meta.is_dir() {
        return Err("is not a directory".into());
    }
    if meta.uid() != uid {
        return Err(format!(
            "is owned by uid {}, not this process's {uid}: give the sidecar a directory of its own",
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "has mode {:o}: group and others must have no access (chmod 700)",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// The tokens of a state file's content, or why it is not used (no
/// content in the reason).
fn parse(bytes: &[u8]) -> Result<StateFile, String> {
    let file: StateFile = serde_json::from_slice(bytes).map_err(|e| {
        format!(
            "not a state file ({} bytes, line {})",
            bytes.len(),
            e.line()
        )
    })?;
    if file.version != VERSION {
        return Err(format!(
            "format {} (this version reads {VERSION})",
            file.version
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_file_round_trips_and_bad_ones_are_refused_without_their_content() {
        let tokens = vec![TokenRecord {
            key: "http://v|approle|approle|role-1".into(),
            token: SecretString::new("hvs.CANARY-token"),
            expires_at: Some(2_000_000_000),
        }];
        let bytes = serde_json::to_vec(&StateFileRef {
            version: VERSION,
            tokens: &tokens,
            secrets: &[],
            leases: &[],
        })
        .unwrap();
        let back = parse(&bytes).unwrap().tokens;
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].token.expose(), "hvs.CANARY-token");
        assert_eq!(back[0].expires_at, Some(2_000_000_000));
        for bad in [
            &b"{not json CANARY"[..],
            br#"{"version":7,"tokens":[]}"#,
            br#"{"version":1,"tokens":[{"key":1}]}"#,
        ] {
            let why = parse(bad).unwrap_err();
            assert!(!why.contains("CANARY"), "{why}");
        }
    }

    #[test]
    fn the_directory_must_be_private_and_ours() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state");
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir(&p).unwrap();
        let uid = rustix::process::geteuid().as_raw();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = check_dir(&std::fs::symlink_metadata(&p).unwrap(), uid).unwrap_err();
        assert!(e.contains("chmod 700"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_dir(&std::fs::symlink_metadata(&p).unwrap(), uid).is_ok());
        let e =
            check_dir(&std::fs::symlink_metadata(&p).unwrap(), uid.wrapping_add(1)).unwrap_err();
        assert!(e.contains("owned by uid"), "{e}");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = check_dir(&std::fs::symlink_metadata(&link).unwrap(), uid).unwrap_err();
        assert!(e.contains("symlink"), "{e}");
    }

    #[test]
    fn a_stop_writes_what_a_cut_save_or_a_confirmation_left_unsaved() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        let (s, _) = StateDir::open(&dir).unwrap();
        let file = dir.join(STATE_FILE);
        // Nothing unsaved: no write.
        s.save_at_stop();
        assert!(!file.exists());
        for flag in [&s.dirty, &s.writing, &s.confirm_pending] {
            let _ = std::fs::remove_file(&file);
            s.secrets.lock().unwrap().push(SecretRecord {
                secret: "db".into(),
                files: vec![],
                written_at: 1,
                confirmed_at: 2,
            });
            flag.store(true, Ordering::SeqCst);
            s.save_at_stop();
            let saved = parse(&std::fs::read(&file).unwrap()).unwrap();
            assert_eq!(saved.secrets.last().unwrap().confirmed_at, 2);
            assert!(!flag.load(Ordering::SeqCst));
        }
    }

    #[test]
    fn a_token_is_offered_only_with_time_left_and_for_its_own_key() {
        let d = tempfile::tempdir().unwrap();
        let (s, warnings) = StateDir::open(&d.path().join("state")).unwrap();
        assert!(warnings.is_empty());
        s.tokens.lock().unwrap().push(TokenRecord {
            key: "a".into(),
            token: SecretString::new("t-a"),
            expires_at: Some(now_unix() + 3600),
        });
        s.tokens.lock().unwrap().push(TokenRecord {
            key: "b".into(),
            token: SecretString::new("t-b"),
            expires_at: Some(now_unix() + 30),
        });
        let a = s.token("a", Duration::from_secs(60)).unwrap();
        assert_eq!(a.token.expose(), "t-a");
        assert!(a.left.unwrap() > Duration::from_secs(3500));
        assert!(
            s.token("b", Duration::from_secs(60)).is_none(),
            "too little left"
        );
        assert!(s.token("c", Duration::from_secs(60)).is_none());
    }

    #[test]
    fn a_secret_is_intact_only_when_every_file_is_the_one_written() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::write(&a, "1").unwrap();
        std::fs::write(&b, "2").unwrap();
        let rec = |name: &str, files: &[&Path]| SecretRecord {
            secret: name.into(),
            files: files.iter().map(|p| FileId::of(p).unwrap()).collect(),
            written_at: 1_700_000_000,
            confirmed_at: 0,
        };
        let records = vec![rec("both", &[&a, &b]), rec("only-b", &[&b])];
        let now = intact(&records, &FileId::of);
        assert_eq!(now.get("both"), Some(&1_700_000_000));
        assert!(now.contains_key("only-b"));
        // Another writer replaced a (a new inode): "both" is no longer ours.
        std::fs::write(d.path().join("a.new"), "1").unwrap();
        std::fs::rename(d.path().join("a.new"), &a).unwrap();
        let now = intact(&records, &FileId::of);
        assert!(!now.contains_key("both"));
        assert!(now.contains_key("only-b"));
        // A file gone: not intact either.
        std::fs::remove_file(&b).unwrap();
        assert!(intact(&records, &FileId::of).is_empty());
    }

    #[test]
    fn the_age_counts_from_the_last_confirmation_and_old_files_still_load() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::write(&a, "1").unwrap();
        let id = FileId::of(&a).unwrap();
        let confirmed = SecretRecord {
            secret: "db".into(),
            files: vec![id.clone()],
            written_at: 1_700_000_000,
            confirmed_at: 1_700_000_900,
        };
        assert_eq!(
            intact(&[confirmed], &FileId::of).get("db"),
            Some(&1_700_000_900)
        );
        // A state file of the version before confirmations: no
        // `confirmed_at`, so the write's time.
        let json = serde_json::json!({
            "version": VERSION,
            "secrets": [{"secret": "db", "files": [id], "written_at": 1_700_000_000u64}],
        });
        let file = parse(json.to_string().as_bytes()).unwrap();
        assert_eq!(file.secrets[0].confirmed_at, 0);
        assert_eq!(
            intact(&file.secrets, &FileId::of).get("db"),
            Some(&1_700_000_000)
        );
    }
}
