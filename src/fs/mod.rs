//! Filesystem side of syncing: durable atomic writes and the order they run in.
//!
//! * [`atomic`] writes one secret's files so that a reader sees the old or the
//!   new content, never a partial file. Its input is its own type,
//!   [`WriteTarget`] + content ([`FileWrite`]), and its answer is one
//!   [`Written`] per file, in input order.
//! * [`set`] publishes a secret's files as one set (`atomicSet`): a new
//!   hidden directory and one `..data` symlink rename.
//! * `read` reads a small file another user may write (a pid file, a kept
//!   certificate) without being blocked, redirected or flooded.
//! * [`queue`] decides which write batches may run at the same time: batches
//!   touching different files run in parallel (so one file's fsync does not
//!   hold up another's), batches touching the same file run in arrival order.

pub mod atomic;
pub mod queue;
pub(crate) mod read;
pub mod set;

pub(crate) use atomic::parent_of;
pub(crate) use atomic::{
    mark_start, sweep_stale_temps, write_batch, FileWrite, FsError, WriteTarget, Written,
};
pub(crate) use queue::WriteQueue;
pub(crate) use set::write_set;
