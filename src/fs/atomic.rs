//! Atomic, durable file replacement in a directory other users may write to.
//!
//! The threat: the app container shares the secrets directory and may be
//! compromised; it can create, rename and unlink entries there as another
//! uid. So every step works on a directory fd reached without following an
//! untrusted symlink ([`open_dir`]: a symlink along the path is followed only
//! when root or this process's uid owns it, the kernel's
//! `protected_symlinks` rule), and every name is opened relative to it with
//! `O_NOFOLLOW|O_NONBLOCK`: a FIFO or device swapped in can neither block a
//! writer thread nor be read, and a swapped-in file is read at most one
//! byte past the expected length.
//!
//! For each file of a batch: create a temp file with a random name in the
//! target directory (`O_CREAT|O_EXCL|O_NOFOLLOW`, another name on `EEXIST`),
//! set its exact mode (umask cannot widen or narrow it) and owner *before any
//! byte is written*, write, fsync. Only when every temp file of the batch is
//! ready are they renamed over their targets (`renameat` on the directory
//! fd), and each directory fd is fsynced. A failure before the renames leaves
//! every target untouched and removes the temp files, so a secret's files
//! change together or not at all.
//!
//! A file whose content, mode and owner already match is left alone: no new
//! inode, no new mtime.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags};

use zeroize::Zeroizing;

/// Where one file goes and with which mode and owner: the writer's own
/// input type (the config's types stay in `config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteTarget {
    pub(crate) path: PathBuf,
    /// Exact mode, set before any byte is written (no setuid/setgid/sticky).
    pub(crate) mode: u32,
    /// Numeric uid/gid to chown to; `None` keeps the writer's own.
    pub(crate) owner: Option<u32>,
    pub(crate) group: Option<u32>,
    /// Rewrite the existing file's inode instead of renaming over it
    /// (`writeMode: inPlace`; not atomic for readers).
    pub(crate) in_place: bool,
}

/// One file to write: its target and the bytes, cleared from memory when
/// dropped. `Debug` shows the length only.
pub(crate) struct FileWrite {
    pub(crate) target: WriteTarget,
    pub(crate) content: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for FileWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWrite")
            .field("path", &self.target.path)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// What happened to one file of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Content, mode or owner differed: the file was replaced.
    Changed,
    /// Already exactly as wanted: left alone (same inode, same mtime).
    Unchanged,
    /// Rewritten in place (`writeMode: inPlace`): same inode, new content.
    InPlace,
    /// The rename failed with EBUSY (the file is a mount point): rewritten
    /// in place instead, once.
    InPlaceAfterBusy,
    /// `writeMode: inPlace`, but the file was another user's: replaced by
    /// rename instead (it could not be rewritten).
    RenamedNotOurs,
}

impl Written {
    /// Did the content (or mode, owner) on disk change?
    pub(crate) fn changed(self) -> bool {
        self != Written::Unchanged
    }
}

/// A write failed; names the file and the step.
#[derive(Debug, thiserror::Error)]
#[error("{}: {step} failed: {source}{}", path.display(), hint(source))]
pub(crate) struct FsError {
    pub(crate) path: PathBuf,
    pub(crate) step: &'static str,
    #[source]
    pub(crate) source: io::Error,
}

fn hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            " (check that the directory is writable by this user; chown needs root or CAP_CHOWN)"
        }
        io::ErrorKind::ReadOnlyFilesystem => " (the target directory is on a read-only filesystem)",
        io::ErrorKind::StorageFull => " (the filesystem is full)",
        _ => "",
    }
}

pub(super) fn err<'a>(
    path: &'a Path,
    step: &'static str,
) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError {
        path: path.to_path_buf(),
        step,
        source,
    }
}

/// Directories are created with the file's read bits turned into search bits
/// (0600 -> 0700, 0644 -> 0755), never wider than the file itself.
pub(crate) fn dir_mode(file_mode: u32) -> u32 {
    let m = file_mode & 0o777;
    m | ((m & 0o444) >> 2) | 0o700
}

/// Temp files start with this marker, so leftovers can be recognised.
pub(crate) const TEMP_MARKER: &str = ".secrets-sync-tmp";

/// How many random temp names are tried before a write gives up: a name
/// taken by chance is retried, but not forever.
const TEMP_NAME_TRIES: usize = 16;

/// Symlinks followed along one path at most (the kernel's limit is 40).
const MAX_SYMLINK_HOPS: usize = 40;

/// The base name kept in a temp name (so that long names stay under
/// `NAME_MAX`).
const TEMP_BASE_MAX: usize = 64;

/// How much older than this process a temp file must be to be swept.
const SWEEP_MARGIN: std::time::Duration = std::time::Duration::from_secs(2);

/// When this process started (wall clock): the sweep removes only temp
/// files older than that, never one a write of this process is filling.
fn started_at() -> std::time::SystemTime {
    static AT: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();
    *AT.get_or_init(std::time::SystemTime::now)
}

/// Call at start-up, before any write, to fix the sweep's age limit.
pub(crate) fn mark_start() {
    let _ = started_at();
}

/// A temp name next to `base`: `.{base}.secrets-sync-tmp.{32 hex digits}`,
/// from the kernel's random source (unpredictable, so another user cannot
/// pre-create it).
pub(super) fn temp_name(base: &OsStr) -> io::Result<OsString> {
    let mut bytes = [0u8; 16];
    rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())?;
    let b = base.as_bytes();
    let mut name = Vec::with_capacity(TEMP_BASE_MAX + 60);
    name.push(b'.');
    name.extend_from_slice(&b[..b.len().min(TEMP_BASE_MAX)]);
    name.extend_from_slice(TEMP_MARKER.as_bytes());
    name.push(b'.');
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for x in bytes {
        name.push(HEX[usize::from(x >> 4)]);
        name.push(HEX[usize::from(x & 0xf)]);
    }
    Ok(OsString::from_vec(name))
}

/// The directory of `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(super) fn base_of(path: &Path) -> &OsStr {
    path.file_name().unwrap_or_else(|| OsStr::new(""))
}

pub(super) fn io_err(e: rustix::io::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

pub(super) const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC);

/// Opens directory `path` for writing into, creating what is missing with
/// `create_mode` (None: nothing is created; a missing directory is
/// `NotFound`). Each component is opened relative to the one before with
/// `O_NOFOLLOW|O_DIRECTORY`; a symlink is followed only when owned by root
/// or by this process's uid, otherwise the error names it.
pub(crate) fn open_dir(path: &Path, create_mode: Option<u32>) -> Result<OwnedFd, FsError> {
    let own_uid = rustix::process::geteuid().as_raw();
    let root = || rfs::openat(rfs::CWD, "/", DIR_FLAGS, Mode::empty());
    let mut cur = if path.is_absolute() {
        root()
    } else {
        rfs::openat(rfs::CWD, ".", DIR_FLAGS, Mode::empty())
    }
    .map_err(|e| err(path, "open directory")(io_err(e)))?;
    // Components still to walk, last first.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut walked = PathBuf::from(if path.is_absolute() { "/" } else { "." });
    let mut hops = 0usize;
    let mut creates = 0usize;
    while let Some(name) = pending.pop() {
        if name == "/" {
            cur = root().map_err(|e| err(path, "open directory")(io_err(e)))?;
            walked = PathBuf::from("/");
            continue;
        }
        match rfs::openat(&cur, name.as_os_str(), DIR_FLAGS, Mode::empty()) {
            Ok(fd) => {
                walked.push(&name);
                cur = fd;
            }
            Err(rustix::io::Errno::NOENT) => {
                let Some(mode) = create_mode else {
                    return Err(err(&walked.join(&name), "open directory")(io::Error::from(
                        io::ErrorKind::NotFound,
                    )));
                };
                creates += 1;
                if creates > 2 * MAX_SYMLINK_HOPS {
                    return Err(err(path, "create directory")(io::Error::other(
                        "the directory keeps disappearing while it is created",
                    )));
                }
                match rfs::mkdirat(&cur, name.as_os_str(), Mode::from_raw_mode(mode)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => pending.push(name),
                    Err(e) => return Err(err(&walked.join(&name), "create directory")(io_err(e))),
                }
            }
            Err(e @ (rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR)) => {
                let here = walked.join(&name);
                let st = rfs::statat(&cur, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| err(&here, "open directory")(io_err(e)))?;
                if rfs::FileType::from_raw_mode(st.st_mode) != rfs::FileType::Symlink {
                    return Err(err(&here, "open directory")(io_err(e)));
                }
                if st.st_uid != 0 && st.st_uid != own_uid {
                    return Err(err(&here, "open directory")(io::Error::other(
                        format!(
                            "a symlink owned by uid {} (neither root nor this process's uid {own_uid}) is not followed",
                            st.st_uid
                        ),
                    )));
                }
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(err(path, "open directory")(io_err(rustix::io::Errno::LOOP)));
                }
                let target = rfs::readlinkat(&cur, name.as_os_str(), Vec::new())
                    .map_err(|e| err(&here, "read symlink")(io_err(e)))?;
                push_components(
                    &mut pending,
                    Path::new(OsStr::from_bytes(target.as_bytes())),
                );
                walked = here;
            }
            Err(e) => return Err(err(&walked.join(&name), "open directory")(io_err(e))),
        }
    }
    Ok(cur)
}

/// Pushes `path`'s components onto `pending` so that they pop in order; a
/// leading `/` becomes the marker "/" (restart at the root).
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    for c in path.components().rev() {
        match c {
            Component::RootDir => pending.push(OsString::from("/")),
            Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => pending.push(OsString::from("..")),
            Component::Normal(n) => pending.push(n.to_os_string()),
        }
    }
}

/// Is the file `base` in `dir` already exactly as wanted? Opened without
/// following a symlink and without blocking, checked on the opened fd, and
/// read at most one byte past the expected length.
pub(super) fn unchanged(dir: &OwnedFd, base: &OsStr, w: &FileWrite) -> bool {
    let Ok(fd) = rfs::openat(
        dir,
        base,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    ) else {
        return false;
    };
    let f = File::from(fd);
    let Ok(meta) = f.metadata() else {
        return false;
    };
    if !meta.file_type().is_file()
        || meta.mode() & 0o7777 != w.target.mode
        || meta.len() != w.content.len() as u64
        || w.target.owner.is_some_and(|u| u != meta.uid())
        || w.target.group.is_some_and(|g| g != meta.gid())
    {
        return false;
    }
    // The old content is a secret too: cleared when the comparison is done.
    let want = w.content.len();
    let mut buf = Zeroizing::new(Vec::with_capacity(want.saturating_add(1)));
    let limit = u64::try_from(want).unwrap_or(u64::MAX).saturating_add(1);
    f.take(limit).read_to_end(&mut buf).is_ok() && *buf == *w.content
}

/// Creates, fills and syncs the temp file for `w` in `dir`; returns its name.
pub(super) fn prepare(dir: &OwnedFd, w: &FileWrite) -> Result<OsString, FsError> {
    let path = &w.target.path;
    let base = base_of(path);
    let mut tries = 0;
    let (tmp, fd) = loop {
        let tmp = temp_name(base).map_err(err(path, "create temp file"))?;
        match rfs::openat(
            dir,
            tmp.as_os_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600 & w.target.mode),
        ) {
            Ok(fd) => break (tmp, fd),
            Err(rustix::io::Errno::EXIST) if tries + 1 < TEMP_NAME_TRIES => tries += 1,
            Err(e) => return Err(err(path, "create temp file")(io_err(e))),
        }
    };
    let mut file = File::from(fd);
    let fill = |file: &mut File| -> Result<(), FsError> {
        file.set_permissions(fs::Permissions::from_mode(w.target.mode))
            .map_err(err(path, "chmod"))?;
        if w.target.owner.is_some() || w.target.group.is_some() {
            std::os::unix::fs::fchown(&*file, w.target.owner, w.target.group)
                .map_err(err(path, "chown"))?;
        }
        file.write_all(&w.content).map_err(err(path, "write"))?;
        file.sync_all().map_err(err(path, "fsync"))
    };
    match fill(&mut file) {
        Ok(()) => Ok(tmp),
        Err(e) => {
            drop(file);
            let _ = rfs::unlinkat(dir, tmp.as_os_str(), AtFlags::empty());
            Err(e)
        }
    }
}

/// Removes temp files (by name pattern) older than this process that an
/// earlier, killed process left in `dir`. Returns how many were removed.
/// A missing directory has none; nothing is created and no untrusted
/// symlink is followed.
pub(crate) fn sweep_stale_temps(dir: &Path) -> Result<usize, FsError> {
    let fd = match open_dir(dir, None) {
        Ok(fd) => fd,
        Err(e) if e.source.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let started = started_at();
    let entries = rfs::Dir::read_from(&fd).map_err(|e| err(dir, "list directory")(io_err(e)))?;
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        let text = name.to_string_lossy();
        if !(text.starts_with('.') && text.contains(TEMP_MARKER)) {
            continue;
        }
        let Ok(st) = rfs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        // File times come from the kernel's coarse clock (a few ms behind
        // ours) and may be whole seconds on some filesystems: a second of
        // margin keeps this process's own temp files out.
        let mtime = u64::try_from(st.st_mtime)
            .ok()
            .and_then(|s| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s)))
            .and_then(|t| t.checked_add(SWEEP_MARGIN));
        if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile
            && mtime.is_some_and(|m| m < started)
            && rfs::unlinkat(&fd, name, AtFlags::empty()).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes a batch (one secret's files). Returns, per file and in the same
/// order, whether it changed.
pub(crate) fn write_batch(files: &[FileWrite]) -> Result<Vec<Written>, FsError> {
    // One directory fd per directory of the batch, opened once.
    let mut dirs: Vec<(PathBuf, OwnedFd)> = Vec::new();
    let mut slots: Vec<usize> = Vec::with_capacity(files.len());
    for w in files {
        let dir = parent_of(&w.target.path);
        let slot = match dirs.iter().position(|(d, _)| *d == dir) {
            Some(i) => i,
            None => {
                // A missing directory is created with the union of the modes
                // of the batch's files that live in it.
                let modes = files
                    .iter()
                    .filter(|f| parent_of(&f.target.path) == dir)
                    .fold(0, |m, f| m | f.target.mode);
                let fd = open_dir(&dir, Some(dir_mode(modes)))?;
                dirs.push((dir, fd));
                dirs.len() - 1
            }
        };
        slots.push(slot);
    }
    // Removes the temp files of files `from..` (a failed batch changes nothing).
    let remove_temps = |temps: &[Option<OsString>], from: usize| {
        for (t, &slot) in temps.iter().zip(&slots).skip(from) {
            if let Some(t) = t {
                let _ = rfs::unlinkat(&dirs[slot].1, t.as_os_str(), AtFlags::empty());
            }
        }
    };
    let mut temps: Vec<Option<OsString>> = Vec::with_capacity(files.len());
    for (w, &slot) in files.iter().zip(&slots) {
        let dir = &dirs[slot].1;
        if unchanged(dir, base_of(&w.target.path), w) {
            temps.push(None);
            continue;
        }
        match prepare(dir, w) {
            Ok(t) => temps.push(Some(t)),
            Err(e) => {
                remove_temps(&temps, 0);
                return Err(e);
            }
        }
    }
    let mut touched: Vec<usize> = Vec::new();
    let mut written: Vec<Written> = Vec::with_capacity(files.len());
    for (i, (w, tmp)) in files.iter().zip(&temps).enumerate() {
        let Some(tmp) = tmp else {
            written.push(Written::Unchanged);
            continue;
        };
        let dir = &dirs[slots[i]].1;
        let base = base_of(&w.target.path);
        let done = if w.target.in_place && is_regular(dir, base) && !ours(dir, base) {
            // Another user's file (the app's): it can be neither chmod-ed
            // nor, often, opened for writing; replacing it by rename is the
            // only write that can succeed.
            tracing::warn!(
                file = %w.target.path.display(),
                "writeMode: inPlace, but the file is another user's: replaced by rename instead (its inode changes)"
            );
            rfs::renameat(dir, tmp.as_os_str(), dir, base)
                .map(|()| Written::RenamedNotOurs)
                .map_err(|e| err(&w.target.path, "rename")(io_err(e)))
        } else if w.target.in_place && is_regular(dir, base) {
            rewrite_in_place(dir, base, w).map(|()| Written::InPlace)
        } else {
            // renameat(2) replaces a symlink at the target; it never follows it.
            match rfs::renameat(dir, tmp.as_os_str(), dir, base) {
                Ok(()) => Ok(Written::Changed),
                // A mount point (a bind-mounted single file) cannot be
                // replaced by rename: rewrite it in place, once.
                Err(rustix::io::Errno::BUSY) if is_regular(dir, base) => {
                    tracing::warn!(
                        file = %w.target.path.display(),
                        "rename failed with EBUSY (the file is a mount point?); rewriting it in place (set writeMode: inPlace for this file)"
                    );
                    rewrite_in_place(dir, base, w).map(|()| Written::InPlaceAfterBusy)
                }
                Err(e) => Err(err(&w.target.path, "rename")(io_err(e))),
            }
        };
        match done {
            Ok(how) => written.push(how),
            Err(e) => {
                remove_temps(&temps, i);
                return Err(e);
            }
        }
        if matches!(
            written.last(),
            Some(Written::InPlace | Written::InPlaceAfterBusy)
        ) {
            // The content went into the existing inode; the temp file only
            // proved it could be written in full (disk space) first.
            let _ = rfs::unlinkat(dir, tmp.as_os_str(), AtFlags::empty());
        }
        if !touched.contains(&slots[i]) {
            touched.push(slots[i]);
        }
    }
    for &slot in &touched {
        let (path, fd) = &dirs[slot];
        rfs::fsync(fd).map_err(|e| err(path, "fsync directory")(io_err(e)))?;
    }
    Ok(written)
}

/// May this process rewrite `base` in `dir` in place: owned by its uid, or
/// the process is root?
fn ours(dir: &OwnedFd, base: &OsStr) -> bool {
    let me = rustix::process::geteuid().as_raw();
    me == 0 || rfs::statat(dir, base, AtFlags::SYMLINK_NOFOLLOW).is_ok_and(|st| st.st_uid == me)
}

/// Is `base` in `dir` a regular file (not following a symlink)?
fn is_regular(dir: &OwnedFd, base: &OsStr) -> bool {
    rfs::statat(dir, base, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::RegularFile)
}

/// Rewrites the existing file `base` in `dir` with `w`'s content: mode and
/// owner set, truncated, written, synced: same inode (what a bind mount of
/// the file shows). Not atomic: a reader may see it empty or partial.
fn rewrite_in_place(dir: &OwnedFd, base: &OsStr, w: &FileWrite) -> Result<(), FsError> {
    let path = &w.target.path;
    let fd = rfs::openat(
        dir,
        base,
        OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    )
    .map_err(|e| err(path, "open for rewrite")(io_err(e)))?;
    let mut file = File::from(fd);
    let meta = file.metadata().map_err(err(path, "stat"))?;
    if !meta.file_type().is_file() {
        return Err(err(path, "open for rewrite")(io::Error::other(
            "not a regular file",
        )));
    }
    file.set_permissions(fs::Permissions::from_mode(w.target.mode))
        .map_err(err(path, "chmod"))?;
    if w.target.owner.is_some() || w.target.group.is_some() {
        std::os::unix::fs::fchown(&file, w.target.owner, w.target.group)
            .map_err(err(path, "chown"))?;
    }
    file.set_len(0).map_err(err(path, "truncate"))?;
    file.write_all(&w.content).map_err(err(path, "write"))?;
    file.sync_all().map_err(err(path, "fsync"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::DirBuilder;
    use std::os::unix::fs::{symlink, DirBuilderExt};

    fn fw(path: PathBuf, mode: u32, content: &str) -> FileWrite {
        FileWrite {
            target: WriteTarget {
                path,
                mode,
                owner: None,
                group: None,
                in_place: false,
            },
            content: Zeroizing::new(content.as_bytes().to_vec()),
        }
    }

    fn no_temps(dir: &Path) -> bool {
        fs::read_dir(dir)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains(TEMP_MARKER))
    }

    #[test]
    fn writes_creates_dirs_and_sets_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/secret");
        let changed = write_batch(&[fw(p.clone(), 0o640, "v1")]).unwrap();
        assert_eq!(changed, [Written::Changed]);
        assert_eq!(fs::read_to_string(&p).unwrap(), "v1");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        let dm = fs::metadata(d.path().join("a/b")).unwrap().mode() & 0o777;
        assert_eq!(dm & !0o750, 0, "dir mode {dm:o} wider than 0750");
        assert!(no_temps(&d.path().join("a/b")));
    }

    #[test]
    fn a_directory_removed_between_writes_is_created_again() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/secret");
        write_batch(&[fw(p.clone(), 0o600, "v1")]).unwrap();
        fs::remove_dir_all(d.path().join("sub")).unwrap();
        assert_eq!(
            write_batch(&[fw(p.clone(), 0o600, "v2")]).unwrap(),
            [Written::Changed]
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "v2");
        let dm = fs::metadata(d.path().join("sub")).unwrap().mode() & 0o777;
        assert_eq!(dm, 0o700, "dir mode {dm:o}");
    }

    #[test]
    fn unchanged_content_keeps_inode_and_mtime() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        write_batch(&[fw(p.clone(), 0o600, "same")]).unwrap();
        let m1 = fs::metadata(&p).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(
            write_batch(&[fw(p.clone(), 0o600, "same")]).unwrap(),
            [Written::Unchanged]
        );
        let m2 = fs::metadata(&p).unwrap();
        assert_eq!((m1.ino(), m1.mtime_nsec()), (m2.ino(), m2.mtime_nsec()));
        // A mode change alone rewrites.
        assert_eq!(
            write_batch(&[fw(p.clone(), 0o644, "same")]).unwrap(),
            [Written::Changed]
        );
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o644);
        assert_eq!(
            write_batch(&[fw(p.clone(), 0o644, "new")]).unwrap(),
            [Written::Changed]
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
    }

    #[test]
    fn mode_is_exact_whatever_the_umask() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("wide");
        // 0666 is narrowed by a typical umask on open; the fchmod restores it.
        write_batch(&[fw(p.clone(), 0o666, "x")]).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o666);
    }

    #[test]
    fn symlink_target_is_replaced_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let link = d.path().join("link");
        symlink(&victim, &link).unwrap();
        write_batch(&[fw(link.clone(), 0o600, "new")]).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_file());
        assert_eq!(fs::read_to_string(&link).unwrap(), "new");
    }

    #[test]
    fn failed_batch_changes_nothing_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let good = d.path().join("good");
        fs::write(&good, "old").unwrap();
        // A regular file where a directory is needed makes the second fail.
        fs::write(d.path().join("notadir"), "").unwrap();
        let bad = d.path().join("notadir/x");
        let e = write_batch(&[fw(good.clone(), 0o600, "new"), fw(bad, 0o600, "x")]).unwrap_err();
        assert!(e.to_string().contains("notadir"), "{e}");
        assert_eq!(fs::read_to_string(&good).unwrap(), "old");
        assert!(no_temps(d.path()));
    }

    #[test]
    fn new_directory_serves_every_file_of_the_batch() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("db/username");
        let b = d.path().join("db/database.env");
        write_batch(&[fw(a, 0o600, "u"), fw(b, 0o640, "e")]).unwrap();
        let dm = fs::metadata(d.path().join("db")).unwrap().mode() & 0o777;
        // Group may read database.env, so group may enter (umask permitting).
        assert_eq!(dm & !0o750, 0, "{dm:o}");
        let umask_allows_group = {
            let probe = d.path().join("probe");
            DirBuilder::new().mode(0o750).create(&probe).unwrap();
            fs::metadata(&probe).unwrap().mode() & 0o050 == 0o050
        };
        if umask_allows_group {
            assert_eq!(dm, 0o750);
        }
    }

    #[test]
    fn sweep_removes_only_temps_older_than_the_process() {
        mark_start();
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(format!(".a{TEMP_MARKER}.0123"));
        let young = d.path().join(format!(".b{TEMP_MARKER}.4567"));
        let other = d.path().join("a");
        for p in [&stale, &young, &other] {
            fs::write(p, "x").unwrap();
        }
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        fs::File::options()
            .write(true)
            .open(&other)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(sweep_stale_temps(d.path()).unwrap(), 1);
        assert!(!stale.exists() && young.exists() && other.exists());
        assert_eq!(sweep_stale_temps(&d.path().join("missing")).unwrap(), 0);
        assert!(!d.path().join("missing").exists());
    }

    #[test]
    fn temp_names_are_random_and_bounded() {
        let long = "x".repeat(255);
        let a = temp_name(OsStr::new(&long)).unwrap();
        let b = temp_name(OsStr::new(&long)).unwrap();
        assert_ne!(a, b);
        assert!(a.len() < 255, "{}", a.len());
        assert!(a
            .to_string_lossy()
            .starts_with(&format!(".{}{TEMP_MARKER}.", &long[..TEMP_BASE_MAX])));
    }

    #[test]
    fn pre_created_temp_names_do_not_block_writes() {
        // An attacker who can guess nothing can still fill the directory with
        // marker names: the write picks another random name.
        let d = tempfile::tempdir().unwrap();
        for i in 0..100 {
            fs::write(d.path().join(format!(".s{TEMP_MARKER}.{i}")), "").unwrap();
        }
        let p = d.path().join("s");
        assert_eq!(
            write_batch(&[fw(p.clone(), 0o600, "v")]).unwrap(),
            [Written::Changed]
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "v");
    }

    #[test]
    fn fifo_at_the_target_neither_blocks_nor_is_read() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        rfs::mkfifoat(rfs::CWD, &p, Mode::from_raw_mode(0o600)).unwrap();
        // The unchanged check opens it non-blocking and sees a FIFO: the
        // write replaces it with a regular file instead of hanging.
        assert_eq!(
            write_batch(&[fw(p.clone(), 0o600, "v")]).unwrap(),
            [Written::Changed]
        );
        assert!(fs::symlink_metadata(&p).unwrap().file_type().is_file());
    }

    #[test]
    fn a_big_file_swapped_in_is_not_read_whole() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s");
        write_batch(&[fw(p.clone(), 0o600, "v")]).unwrap();
        // Same length check fails first; but even a file that grows after the
        // fstat is read at most one byte past the expected length.
        let f = File::options().write(true).open(&p).unwrap();
        f.set_len(1 << 30).unwrap();
        let fd = open_dir(d.path(), None).unwrap();
        assert!(!unchanged(&fd, OsStr::new("s"), &fw(p.clone(), 0o600, "v")));
    }

    #[test]
    fn symlinked_parent_owned_by_another_user_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let link = d.path().join("db");
        symlink(&elsewhere, &link).unwrap();
        // Owned by us: followed.
        write_batch(&[fw(link.join("pw"), 0o600, "v")]).unwrap();
        assert_eq!(fs::read_to_string(elsewhere.join("pw")).unwrap(), "v");
        // Owned by another uid (needs root to chown a symlink).
        if rustix::process::geteuid().is_root() {
            rfs::chownat(
                rfs::CWD,
                &link,
                Some(rustix::fs::Uid::from_raw(65534)),
                None,
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
            let e = write_batch(&[fw(link.join("pw"), 0o600, "new")]).unwrap_err();
            assert!(e.to_string().contains("uid 65534"), "{e}");
            assert!(e.to_string().contains("/db"), "{e}");
            assert_eq!(fs::read_to_string(elsewhere.join("pw")).unwrap(), "v");
        }
    }

    #[test]
    fn relative_and_dotted_paths_resolve() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("a")).unwrap();
        let p = d.path().join("a/../b/./c");
        write_batch(&[fw(p, 0o600, "v")]).unwrap();
        assert_eq!(fs::read_to_string(d.path().join("b/c")).unwrap(), "v");
    }

    #[test]
    fn dir_modes_follow_file_modes() {
        assert_eq!(dir_mode(0o600), 0o700);
        assert_eq!(dir_mode(0o640), 0o750);
        assert_eq!(dir_mode(0o644), 0o755);
        assert_eq!(dir_mode(0o400), 0o700);
    }

    #[test]
    fn in_place_keeps_the_inode_and_creates_a_missing_file_by_rename() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("app.conf");
        let in_place = |content: &str| {
            let mut w = fw(p.clone(), 0o640, content);
            w.target.in_place = true;
            w
        };
        // Missing: created like any file.
        assert_eq!(write_batch(&[in_place("one")]).unwrap(), [Written::Changed]);
        let ino = fs::metadata(&p).unwrap().ino();
        // Existing: same inode, new content and mode, no temp left.
        assert_eq!(
            write_batch(&[in_place("two, longer")]).unwrap(),
            [Written::InPlace]
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "two, longer");
        assert_eq!(fs::metadata(&p).unwrap().ino(), ino);
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        assert_eq!(write_batch(&[in_place("3")]).unwrap(), [Written::InPlace]);
        assert_eq!(fs::read_to_string(&p).unwrap(), "3");
        assert_eq!(write_batch(&[in_place("3")]).unwrap(), [Written::Unchanged]);
        assert!(no_temps(d.path()));
        // The default replaces the inode.
        write_batch(&[fw(p.clone(), 0o640, "4")]).unwrap();
        assert_ne!(fs::metadata(&p).unwrap().ino(), ino);
        assert!(Written::InPlaceAfterBusy.changed() && !Written::Unchanged.changed());
    }
}
