//! Reading a small file another user may be able to write (a pid file the
//! app writes, a certificate kept from an earlier run) without being
//! blocked, redirected or flooded by it.
//!
//! The directory is reached with [`open_dir`](super::atomic::open_dir) (no
//! untrusted symlink followed), the file is opened relative to it with
//! `O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC|O_NOCTTY` (a symlink is refused, a FIFO
//! or device opens without blocking), checked with `fstat` on the opened fd
//! (a regular file, and, when asked, owned by a given uid with a given
//! mode), and read at most `max` bytes. Callers run it off the actor thread
//! (`crate::blocking`).
//!
//! [`open_regular`] is the lighter form for files of the config's or the
//! platform's (a template file, a projected token, an input of `convert`):
//! symlinks are followed (Kubernetes mounts those files as symlinks), but
//! the open never blocks on a FIFO and anything but a regular file is
//! refused.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{self as rfs, Mode, OFlags};

use super::atomic::{base_of, io_err, open_dir, parent_of};

/// What the file must be besides regular.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Expect {
    /// Owned by this uid.
    pub(crate) uid: Option<u32>,
    /// Exactly this mode (permission bits).
    pub(crate) mode: Option<u32>,
}

/// Why a file was not read. `Missing` is its own case (a pid file not
/// written yet is not an error).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{} does not exist", .0.display())]
    Missing(std::path::PathBuf),
    #[error("{} is not a regular file ({kind}); it is not read", path.display())]
    NotRegular {
        path: std::path::PathBuf,
        kind: &'static str,
    },
    #[error("{} is owned by uid {found}, not {want}; it is not trusted", path.display())]
    Owner {
        path: std::path::PathBuf,
        found: u32,
        want: u32,
    },
    #[error("{} has mode {found:o}, not {want:o}; it is not trusted", path.display())]
    Mode {
        path: std::path::PathBuf,
        found: u32,
        want: u32,
    },
    #[error("{} is larger than {max} bytes", path.display())]
    TooLarge { path: std::path::PathBuf, max: u64 },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Reads at most `max` bytes of the regular file `path` (see the module
/// doc); a longer file is [`ReadError::TooLarge`].
pub(crate) fn read_untrusted(path: &Path, max: u64, expect: Expect) -> Result<Vec<u8>, ReadError> {
    let io = |source: io::Error| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match open_dir(&parent_of(path), None) {
        Ok(d) => d,
        Err(e) if e.source.kind() == io::ErrorKind::NotFound => {
            return Err(ReadError::Missing(path.to_path_buf()))
        }
        Err(e) => return Err(io(io::Error::other(e.to_string()))),
    };
    let fd = match rfs::openat(
        &dir,
        base_of(path),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Err(ReadError::Missing(path.to_path_buf())),
        Err(rustix::io::Errno::LOOP) => {
            return Err(ReadError::NotRegular {
                path: path.to_path_buf(),
                kind: "a symlink",
            })
        }
        Err(e) => return Err(io(io_err(e))),
    };
    let f = File::from(fd);
    let meta = f.metadata().map_err(io)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_dir() {
            "a directory"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    if let Some(want) = expect.uid {
        if meta.uid() != want {
            return Err(ReadError::Owner {
                path: path.to_path_buf(),
                found: meta.uid(),
                want,
            });
        }
    }
    if let Some(want) = expect.mode {
        let found = meta.mode() & 0o7777;
        if found != want {
            return Err(ReadError::Mode {
                path: path.to_path_buf(),
                found,
                want,
            });
        }
    }
    let mut buf = Vec::new();
    f.take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io)?;
    if u64::try_from(buf.len()).unwrap_or(u64::MAX) > max {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    Ok(buf)
}

/// What tells a file as it was left from the same path changed since: a
/// rename gives a new inode; a write, `chmod` or `chown` a new ctime (which
/// no user can set back). Symlinks followed (a file of an atomic set is a
/// link into `..data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Stamp {
    /// Whether the file is as a write of `target` with `size` bytes left
    /// it: that mode, that owner (the writer's own when not set), that
    /// group (when set), that size. A stamp taken after someone changed the
    /// file already (between the write and the stat) fails this and is not
    /// kept, so the next refresh compares the file in full.
    pub(crate) fn as_written(&self, target: &super::WriteTarget, size: u64) -> bool {
        let uid = target
            .owner
            .unwrap_or_else(|| rustix::process::geteuid().as_raw());
        self.mode & 0o7777 == target.mode
            && self.uid == uid
            && target.group.is_none_or(|g| g == self.gid)
            && self.size == size
    }

    /// The stamp of the regular file at `path` now (`None`: missing, not
    /// a regular file, or cannot be stat-ed). Blocking: off the actor thread.
    pub(crate) fn of(path: &Path) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        m.is_file().then(|| Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
        })
    }
}

/// Opens `path` for reading (symlinks followed) without blocking and
/// returns it only when it is a regular file; anything else (a FIFO, a
/// device, a directory) is an `InvalidInput` error saying so.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_changes_with_content_mode_and_inode_not_with_a_read() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "one").unwrap();
        let s1 = Stamp::of(&p).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"one");
        assert_eq!(Stamp::of(&p), Some(s1), "a read changes nothing");
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let s2 = Stamp::of(&p).unwrap();
        assert_ne!(s1, s2, "chmod");
        std::thread::sleep(std::time::Duration::from_millis(10));
        std::fs::write(&p, "two").unwrap();
        assert_ne!(Stamp::of(&p), Some(s2), "same size, new content");
        let q = d.path().join("g");
        std::fs::write(&q, "two").unwrap();
        std::fs::rename(&q, &p).unwrap();
        assert_ne!(Stamp::of(&p), Some(s2), "replaced");
        assert_eq!(Stamp::of(&d.path().join("missing")), None);
        let target = |mode| super::super::WriteTarget {
            path: p.clone(),
            mode,
            owner: None,
            group: None,
            in_place: false,
        };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let now = Stamp::of(&p).unwrap();
        assert!(now.as_written(&target(0o600), 3));
        assert!(!now.as_written(&target(0o644), 3), "another mode");
        assert!(!now.as_written(&target(0o600), 4), "another size");
        assert_eq!(Stamp::of(d.path()), None, "a directory");
    }

    #[test]
    fn open_regular_follows_symlinks_and_refuses_fifos_at_once() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::write(&real, "x").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(open_regular(&link).is_ok());
        let fifo = d.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        let e = open_regular(&fifo).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(open_regular(Path::new("/dev/zero")).is_err());
    }

    #[test]
    fn fifos_symlinks_and_big_files_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("app.pid");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        // Would block for ever with a plain open (no writer).
        assert!(matches!(
            read_untrusted(&fifo, 64, Expect::default()),
            Err(ReadError::NotRegular { kind: "a FIFO", .. })
        ));
        let real = d.path().join("real");
        std::fs::write(&real, "123\n").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            read_untrusted(&link, 64, Expect::default()),
            Err(ReadError::NotRegular {
                kind: "a symlink",
                ..
            })
        ));
        assert_eq!(
            read_untrusted(&real, 64, Expect::default()).unwrap(),
            b"123\n"
        );
        assert!(matches!(
            read_untrusted(&real, 2, Expect::default()),
            Err(ReadError::TooLarge { max: 2, .. })
        ));
        assert!(matches!(
            read_untrusted(&d.path().join("none"), 2, Expect::default()),
            Err(ReadError::Missing(_))
        ));
        let me = rustix::process::geteuid().as_raw();
        std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        let ok = Expect {
            uid: Some(me),
            mode: Some(0o640),
        };
        assert!(read_untrusted(&real, 64, ok).is_ok());
        let other_uid = Expect {
            uid: Some(me.wrapping_add(1)),
            mode: None,
        };
        assert!(matches!(
            read_untrusted(&real, 64, other_uid),
            Err(ReadError::Owner { .. })
        ));
        let other_mode = Expect {
            uid: None,
            mode: Some(0o600),
        };
        assert!(matches!(
            read_untrusted(&real, 64, other_mode),
            Err(ReadError::Mode { .. })
        ));
    }
}
