//! The actors, and the messages between them.
//!
//! Data flows one way: a [`sync::SyncActor`] asks the [`vault::VaultActor`]
//! for its secret (`ReadSecret`), renders it, hands the files to the
//! [`writer::WriterActor`] (`WriteFiles`) and reports the outcome to the
//! [`status::StatusActor`] (`Report`), which `/ready`, `/status` and the status
//! file read. A sync that changed files of a secret with `onChange` tells the
//! [`action::ActionActor`] (`FilesChanged`), which runs the change actions.
//! The [`supervisor::Supervisor`] starts and stops SyncActors when
//! a config is applied (`ApplyConfig`) and runs the shutdown (`Shutdown`).
//! A SyncActor of an AWS secret asks the [`aws::AwsActor`] (`ReadAws`)
//! instead of the VaultActor; everything after the read is the same.
//! No actor reaches into another's state.
//!
//! **Every actor runs on one thread, which never blocks and never computes
//! on untrusted input.** What may block or is driven by a value runs on the
//! bounded blocking pool under a deadline (`crate::blocking`): renders of a
//! secret's files, pid files and `/proc` scans of signal actions, a kept
//! certificate's files, the JWT file at a login, a reloaded config; file
//! writes run there too (the WriterActor). A heartbeat (`status::Alive`,
//! `crate::liveness`) proves the thread runs; signals and the shutdown
//! deadline live on a thread of their own (`crate::signals`).

pub mod action;
pub mod aws;
pub mod config_watcher;
pub mod status;
pub mod supervisor;
pub mod sync;
pub mod vault;
pub mod writer;
