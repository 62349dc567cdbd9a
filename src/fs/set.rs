//! Atomic sets (`atomicSet: true`): one secret's files, all in one
//! directory, published together the way Kubernetes' AtomicWriter does.
//!
//! The files are written into a new hidden directory beside them
//! (`..<unix seconds>_<nanoseconds>`), synced, and published by renaming
//! one symlink, `..data`, to point at it. The visible names are symlinks
//! into `..data` (`tls.crt -> ..data/tls.crt`), so the whole set changes in
//! one `rename(2)`: a reader that resolves `..data` once never pairs a new
//! certificate with an old key. The previous set directory is removed after
//! the swap; a failure before it leaves the visible set as it was.
//!
//! The directory is opened as [`super::atomic`] opens it (no untrusted
//! symlink followed) and every name is handled relative to its fd.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, AtFlags, Mode};

use super::atomic::{
    base_of, dir_mode, err, io_err, open_dir, parent_of, prepare, unchanged, FileWrite, FsError,
    Written, DIR_FLAGS,
};

/// The symlink that names the current set. The new link is made under a
/// random temp name (created exclusively) and renamed over it: a fixed
/// name (`..data_tmp`) let the app block every later publish with one
/// `mkdir`.
pub(crate) const DATA_LINK: &str = "..data";

/// Tries at making the new link under a fresh random name.
const LINK_TRIES: usize = 8;

/// Is `name` one of our set directories (`..` followed by a digit)?
fn is_set_dir_name(name: &[u8]) -> bool {
    name.len() > 2 && name.starts_with(b"..") && name[2].is_ascii_digit()
}

/// A fresh set directory name: `..<secs>_<nanos>`.
fn set_dir_name() -> OsString {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    OsString::from(format!("..{}_{:09}", now.as_secs(), now.subsec_nanos()))
}

/// Where a set's file is really read: `dir/..data/name` for the visible
/// `dir/name` (which is our symlink into `..data`).
pub(crate) fn through_data(mut t: super::WriteTarget) -> super::WriteTarget {
    let base = base_of(&t.path).to_os_string();
    t.path = parent_of(&t.path).join(DATA_LINK).join(base);
    t
}

/// The set directory `..data` points at now, if any.
fn current_set(dir: &OwnedFd) -> Option<OsString> {
    let target = rfs::readlinkat(dir, DATA_LINK, Vec::new()).ok()?;
    let bytes = target.as_bytes();
    is_set_dir_name(bytes).then(|| OsStr::from_bytes(bytes).to_os_string())
}

/// Removes a set directory and its (flat) content.
fn remove_set_dir(dir: &OwnedFd, name: &OsStr) {
    if let Ok(fd) = rfs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        if let Ok(entries) = rfs::Dir::read_from(&fd) {
            for e in entries.flatten() {
                let n = e.file_name().to_bytes();
                if n != b"." && n != b".." {
                    let _ = rfs::unlinkat(&fd, OsStr::from_bytes(n), AtFlags::empty());
                }
            }
        }
    }
    let _ = rfs::unlinkat(dir, name, AtFlags::REMOVEDIR);
}

/// Is the visible name `base` already the symlink `..data/base`?
fn link_in_place(dir: &OwnedFd, base: &OsStr) -> bool {
    let want = [DATA_LINK.as_bytes(), b"/", base.as_bytes()].concat();
    rfs::readlinkat(dir, base, Vec::new()).is_ok_and(|t| t.as_bytes() == want.as_slice())
}

/// Points `base` at `target` by creating a symlink under a temp name and
/// renaming it over `base` (a file there from before `atomicSet` is
/// replaced the same way).
fn replace_link(dir: &OwnedFd, target: &[u8], base: &OsStr, path: &Path) -> Result<(), FsError> {
    let tmp = super::atomic::temp_name(base).map_err(err(path, "create symlink"))?;
    rfs::symlinkat(OsStr::from_bytes(target), dir, tmp.as_os_str())
        .map_err(|e| err(path, "create symlink")(io_err(e)))?;
    rfs::renameat(dir, tmp.as_os_str(), dir, base).map_err(|e| {
        let _ = rfs::unlinkat(dir, tmp.as_os_str(), AtFlags::empty());
        err(path, "rename symlink")(io_err(e))
    })
}

/// Points `..data` at the set directory `name`: a symlink made under a
/// random name, renamed over `..data`. A directory at `..data` (never ours:
/// ours is a symlink) is moved aside under a random name first, with a
/// warning, never followed.
fn swap_data_link(dir: &OwnedFd, name: &OsStr, set_path: &Path) -> Result<(), FsError> {
    let mut tmp = None;
    for _ in 0..LINK_TRIES {
        let t = super::atomic::temp_name(OsStr::new(DATA_LINK))
            .map_err(err(set_path, "create ..data link"))?;
        match rfs::symlinkat(name, dir, t.as_os_str()) {
            Ok(()) => {
                tmp = Some(t);
                break;
            }
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(err(set_path, "create ..data link")(io_err(e))),
        }
    }
    let tmp = tmp.ok_or_else(|| {
        err(set_path, "create ..data link")(io::Error::other("every random name tried was taken"))
    })?;
    let in_the_way = rfs::statat(dir, DATA_LINK, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory);
    if in_the_way {
        let aside = super::atomic::temp_name(OsStr::new("..data-in-the-way"))
            .map_err(err(set_path, "move aside"))?;
        tracing::warn!(
            path = %set_path.display(),
            moved_to = %aside.to_string_lossy(),
            "a directory that secrets-sync did not make is at ..data; moved aside"
        );
        if let Err(e) = rfs::renameat(dir, DATA_LINK, dir, aside.as_os_str()) {
            let _ = rfs::unlinkat(dir, tmp.as_os_str(), AtFlags::empty());
            return Err(err(set_path, "move aside")(io_err(e)));
        }
    }
    rfs::renameat(dir, tmp.as_os_str(), dir, DATA_LINK).map_err(|e| {
        let _ = rfs::unlinkat(dir, tmp.as_os_str(), AtFlags::empty());
        err(set_path, "swap ..data")(io_err(e))
    })
}

/// Writes one secret's files as a set. Returns, per file and in the same
/// order, whether its content changed.
pub(crate) fn write_set(files: &[FileWrite]) -> Result<Vec<Written>, FsError> {
    let Some(first) = files.first() else {
        return Ok(Vec::new());
    };
    let dir_path = parent_of(&first.target.path);
    let modes = files.iter().fold(0, |m, f| m | f.target.mode);
    let dir = open_dir(&dir_path, Some(dir_mode(modes)))?;
    let current = current_set(&dir);
    let cur_fd = current
        .as_ref()
        .and_then(|c| rfs::openat(&dir, c.as_os_str(), DIR_FLAGS, Mode::empty()).ok());
    let written: Vec<Written> = files
        .iter()
        .map(|w| match &cur_fd {
            Some(fd) if unchanged(fd, base_of(&w.target.path), w) => Written::Unchanged,
            _ => Written::Changed,
        })
        .collect();
    let links_ok = files
        .iter()
        .all(|w| link_in_place(&dir, base_of(&w.target.path)));
    if links_ok && written.iter().all(|w| *w == Written::Unchanged) {
        return Ok(written);
    }

    // A visible name that no link can replace fails the write before
    // anything moves.
    for w in files {
        if let Ok(st) = rfs::statat(&dir, base_of(&w.target.path), AtFlags::SYMLINK_NOFOLLOW) {
            if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory {
                return Err(err(&w.target.path, "replace with a link")(
                    io::Error::other("a directory is in the way; remove it"),
                ));
            }
        }
    }

    // A new set directory, filled and synced before anything visible moves.
    let set_path = dir_path.join(DATA_LINK);
    let mut name = set_dir_name();
    let mut tries = 0;
    loop {
        match rfs::mkdirat(&dir, name.as_os_str(), Mode::from_raw_mode(dir_mode(modes))) {
            Ok(()) => break,
            Err(rustix::io::Errno::EXIST) if tries < 8 => {
                tries += 1;
                name = set_dir_name();
            }
            Err(e) => return Err(err(&set_path, "create set directory")(io_err(e))),
        }
    }
    let fill = || -> Result<(), FsError> {
        let set = rfs::openat(&dir, name.as_os_str(), DIR_FLAGS, Mode::empty())
            .map_err(|e| err(&set_path, "open set directory")(io_err(e)))?;
        // The set directory's owner follows the files' (a reader running
        // as that user must be able to enter it).
        let owner = files.iter().find_map(|f| f.target.owner);
        let group = files.iter().find_map(|f| f.target.group);
        if owner.is_some() || group.is_some() {
            rfs::chownat(
                &dir,
                name.as_os_str(),
                owner.map(rfs::Uid::from_raw),
                group.map(rfs::Gid::from_raw),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| err(&set_path, "chown set directory")(io_err(e)))?;
        }
        for w in files {
            let tmp = prepare(&set, w)?;
            rfs::renameat(&set, tmp.as_os_str(), &set, base_of(&w.target.path))
                .map_err(|e| err(&w.target.path, "rename")(io_err(e)))?;
        }
        rfs::fsync(&set).map_err(|e| err(&set_path, "fsync set directory")(io_err(e)))
    };
    if let Err(e) = fill() {
        remove_set_dir(&dir, &name);
        return Err(e);
    }

    // The swap: one rename of `..data`.
    if let Err(e) = swap_data_link(&dir, &name, &set_path) {
        remove_set_dir(&dir, &name);
        return Err(e);
    }
    for w in files {
        let base = base_of(&w.target.path);
        if !link_in_place(&dir, base) {
            let target = [DATA_LINK.as_bytes(), b"/", base.as_bytes()].concat();
            replace_link(&dir, &target, base, &w.target.path)?;
        }
    }
    rfs::fsync(&dir).map_err(|e| err(&dir_path, "fsync directory")(io_err(e)))?;

    // The old set, and any left by a process killed mid-write.
    drop(cur_fd);
    if let Ok(entries) = rfs::Dir::read_from(&dir) {
        let stale: Vec<OsString> = entries
            .flatten()
            .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
            .filter(|n| is_set_dir_name(n.as_bytes()) && *n != name)
            .collect();
        for n in stale {
            remove_set_dir(&dir, &n);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::WriteTarget;
    use std::path::PathBuf;
    use zeroize::Zeroizing;

    fn fw(path: PathBuf, content: &str) -> FileWrite {
        FileWrite {
            target: WriteTarget {
                path,
                mode: 0o600,
                owner: None,
                group: None,
                in_place: false,
            },
            content: Zeroizing::new(content.as_bytes().to_vec()),
        }
    }

    fn set_dirs(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_set_dir_name(n.as_bytes()))
            .collect()
    }

    #[test]
    fn a_set_is_published_by_one_link_and_the_old_one_removed() {
        let d = tempfile::tempdir().unwrap();
        let (crt, key) = (d.path().join("tls.crt"), d.path().join("tls.key"));
        let w = write_set(&[fw(crt.clone(), "cert-1"), fw(key.clone(), "key-1")]).unwrap();
        assert_eq!(w, [Written::Changed, Written::Changed]);
        assert_eq!(
            std::fs::read_link(&crt).unwrap(),
            Path::new("..data/tls.crt")
        );
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "key-1");
        let first = set_dirs(d.path());
        assert_eq!(first.len(), 1);
        assert_eq!(
            std::fs::read_link(d.path().join(DATA_LINK)).unwrap(),
            Path::new(&first[0])
        );
        // Unchanged: nothing moves.
        let w = write_set(&[fw(crt.clone(), "cert-1"), fw(key.clone(), "key-1")]).unwrap();
        assert_eq!(w, [Written::Unchanged, Written::Unchanged]);
        assert_eq!(set_dirs(d.path()), first);
        // One file changed: a new set, the old directory gone.
        let w = write_set(&[fw(crt.clone(), "cert-2"), fw(key.clone(), "key-1")]).unwrap();
        assert_eq!(w, [Written::Changed, Written::Unchanged]);
        let second = set_dirs(d.path());
        assert_eq!(second.len(), 1);
        assert_ne!(second, first);
        assert_eq!(std::fs::read_to_string(&crt).unwrap(), "cert-2");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "key-1");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn plain_files_from_before_become_links_and_stale_sets_are_swept() {
        let d = tempfile::tempdir().unwrap();
        let crt = d.path().join("tls.crt");
        std::fs::write(&crt, "old plain file").unwrap();
        std::fs::create_dir(d.path().join("..1_000000001")).unwrap();
        std::fs::write(d.path().join("..1_000000001/tls.crt"), "x").unwrap();
        write_set(&[fw(crt.clone(), "new")]).unwrap();
        assert!(std::fs::symlink_metadata(&crt)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&crt).unwrap(), "new");
        assert_eq!(set_dirs(d.path()).len(), 1);
    }

    #[test]
    fn a_failed_write_leaves_the_visible_set_alone() {
        let d = tempfile::tempdir().unwrap();
        let crt = d.path().join("tls.crt");
        write_set(&[fw(crt.clone(), "cert-1")]).unwrap();
        let before = set_dirs(d.path());
        // A directory where the visible name should be: the link cannot
        // replace it, and the error names the file.
        let sub = d.path().join("tls.key");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("x"), "x").unwrap();
        let e = write_set(&[fw(crt.clone(), "cert-2"), fw(sub.clone(), "key")]).unwrap_err();
        assert_eq!(e.path, sub);
        assert!(e.to_string().contains("directory"), "{e}");
        assert_eq!(std::fs::read_to_string(&crt).unwrap(), "cert-1");
        assert_eq!(set_dirs(d.path()), before);
    }

    #[test]
    fn planted_names_at_data_neither_block_nor_redirect_a_publish() {
        let d = tempfile::tempdir().unwrap();
        let crt = d.path().join("tls.crt");
        write_set(&[fw(crt.clone(), "cert-1")]).unwrap();
        // The old fixed temp name, taken by a directory: nothing depends on it.
        std::fs::create_dir(d.path().join("..data_tmp")).unwrap();
        write_set(&[fw(crt.clone(), "cert-2")]).unwrap();
        assert_eq!(std::fs::read_to_string(&crt).unwrap(), "cert-2");
        // A directory put at ..data itself (with a decoy file): moved aside,
        // never written into nor served.
        let data = d.path().join(DATA_LINK);
        std::fs::remove_file(&data).unwrap();
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("tls.crt"), "decoy").unwrap();
        write_set(&[fw(crt.clone(), "cert-3")]).unwrap();
        assert_eq!(std::fs::read_to_string(&crt).unwrap(), "cert-3");
        assert!(std::fs::symlink_metadata(&data)
            .unwrap()
            .file_type()
            .is_symlink());
        let aside: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .contains("..data-in-the-way")
            })
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(
            std::fs::read_to_string(aside[0].path().join("tls.crt")).unwrap(),
            "decoy"
        );
    }
}
