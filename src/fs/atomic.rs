//! Atomic, durable file replacement.
//!
//! For each file of a batch: create a temp file in the target directory
//! (`O_CREAT|O_EXCL|O_NOFOLLOW`), set its exact mode (umask cannot widen or
//! narrow it) and owner *before any byte is written*, write, fsync. Only when
//! every temp file of the batch is ready are they renamed over their targets,
//! and each directory is fsynced. A failure before the renames leaves every
//! target untouched and removes the temp files, so a secret's files change
//! together or not at all.
//!
//! A file whose content, mode and owner already match is left alone: no new
//! inode, no new mtime.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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

fn err<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(io::Error) -> FsError + 'a {
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

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Temp files start with this marker, so leftovers can be recognised.
pub(crate) const TEMP_MARKER: &str = ".secrets-sync-tmp";

/// This process's id, asked of the kernel once (it is in every temp name).
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

fn temp_path(target: &Path) -> PathBuf {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = target
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!(".{base}{TEMP_MARKER}.{}.{n}", pid());
    target.with_file_name(name)
}

/// The directory of `path` (`.` for a bare file name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Is the file already exactly as wanted?
fn unchanged(w: &FileWrite) -> bool {
    let Ok(meta) = fs::symlink_metadata(&w.target.path) else {
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
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&w.target.path)
    {
        Ok(f) => f,
        Err(_) => return false,
    };
    // The old content is a secret too: cleared when the comparison is done.
    let mut buf = Zeroizing::new(Vec::with_capacity(w.content.len()));
    f.read_to_end(&mut buf).is_ok() && *buf == *w.content
}

/// Creates, fills and syncs the temp file for `w`. A missing directory is
/// created with `dir_file_modes`, the union of the modes of the batch's files
/// that live in it.
fn prepare(w: &FileWrite, dir_file_modes: u32) -> Result<PathBuf, FsError> {
    let path = &w.target.path;
    let tmp = temp_path(path);
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600 & w.target.mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
    };
    // The directory is checked only when the create says it is missing:
    // one stat less per file in the usual case.
    let created = match create() {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = parent_of(path);
            DirBuilder::new()
                .recursive(true)
                .mode(dir_mode(dir_file_modes))
                .create(&dir)
                .map_err(err(&dir, "create directory"))?;
            create()
        }
        other => other,
    };
    let mut file = created.map_err(err(path, "create temp file"))?;
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
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Removes temp files that an earlier process (a different pid) left in
/// `dir` when it was killed mid-write. Returns how many were removed.
pub(crate) fn sweep_stale_temps(dir: &Path) -> io::Result<usize> {
    let own = format!("{TEMP_MARKER}.{}.", pid());
    let mut removed = 0;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            && name.contains(TEMP_MARKER)
            && !name.contains(&own)
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes a batch (one secret's files). Returns, per file and in the same
/// order, whether it changed.
pub(crate) fn write_batch(files: &[FileWrite]) -> Result<Vec<Written>, FsError> {
    let mut temps: Vec<Option<PathBuf>> = Vec::with_capacity(files.len());
    for w in files {
        if unchanged(w) {
            temps.push(None);
            continue;
        }
        let dir = parent_of(&w.target.path);
        let modes = files
            .iter()
            .filter(|f| parent_of(&f.target.path) == dir)
            .fold(0, |m, f| m | f.target.mode);
        match prepare(w, modes) {
            Ok(t) => temps.push(Some(t)),
            Err(e) => {
                temps.iter().flatten().for_each(|t| {
                    let _ = fs::remove_file(t);
                });
                return Err(e);
            }
        }
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (i, (w, tmp)) in files.iter().zip(&temps).enumerate() {
        let Some(tmp) = tmp else { continue };
        // rename(2) replaces a symlink at the target; it never follows it.
        if let Err(e) = fs::rename(tmp, &w.target.path) {
            temps[i..].iter().flatten().for_each(|t| {
                let _ = fs::remove_file(t);
            });
            return Err(err(&w.target.path, "rename")(e));
        }
        let d = parent_of(&w.target.path);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    for d in &dirs {
        File::open(d)
            .and_then(|f| f.sync_all())
            .map_err(err(d, "fsync directory"))?;
    }
    Ok(temps
        .iter()
        .map(|t| match t {
            Some(_) => Written::Changed,
            None => Written::Unchanged,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fw(path: PathBuf, mode: u32, content: &str) -> FileWrite {
        FileWrite {
            target: WriteTarget {
                path,
                mode,
                owner: None,
                group: None,
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
    fn sweep_removes_only_other_processes_temps() {
        let d = tempfile::tempdir().unwrap();
        let stale = d.path().join(format!(".a{TEMP_MARKER}.999999999.0"));
        let mine = d
            .path()
            .join(format!(".a{TEMP_MARKER}.{}.5", std::process::id()));
        let other = d.path().join("a");
        for p in [&stale, &mine, &other] {
            fs::write(p, "x").unwrap();
        }
        assert_eq!(sweep_stale_temps(d.path()).unwrap(), 1);
        assert!(!stale.exists() && mine.exists() && other.exists());
        assert_eq!(sweep_stale_temps(&d.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn dir_modes_follow_file_modes() {
        assert_eq!(dir_mode(0o600), 0o700);
        assert_eq!(dir_mode(0o640), 0o750);
        assert_eq!(dir_mode(0o644), 0o755);
        assert_eq!(dir_mode(0o400), 0o700);
    }
}
