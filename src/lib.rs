//! cloison: segment isolation for the small router at the edge of a French town hall.
//!
//! The core is pure: `config` (TOML -> validated `Config`) and `plan` (`Config` -> the
//! nftables ruleset, links and sysctls to apply). Everything that touches the kernel or
//! the journal lives at the edges, one small module each.

pub mod alert;
pub mod apply;
pub mod capture;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod inspect;
pub mod lab;
pub mod netlink;
pub mod nflog;
pub mod nft;
pub mod plan;
pub mod status;
pub mod sysctl;
