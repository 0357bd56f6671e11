//! cloison: segment isolation for the small router at the edge of a French town hall.
//!
//! This crate is the edges and what puts them together; the decisions are made in the
//! pure `cloison_core`. Edges, one module each: `kernel` (nftables, rtnetlink, sysctls,
//! behind the `Kernel` trait), `capture` (packet sockets), `neighbours` (the kernel's
//! neighbour tables), `nflog` (the ruleset's sampled drops), `journal` (alerts to
//! journald), `config_file`. On top of them: `apply`, `status`, `verify`, the `daemon`,
//! the `cli` and its `manual` (man pages, completions). The Debian package installs this
//! crate's binary and nothing of `cloison-lab`.

pub mod apply;
pub mod capture;
pub mod cli;
pub mod commands;
pub mod config_file;
pub mod daemon;
pub mod journal;
pub mod kernel;
pub mod manual;
pub mod neighbours;
pub mod nflog;
pub mod sockopt;
pub mod status;
pub mod verify;
