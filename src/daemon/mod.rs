//! The daemon, `cloison run`. (Being written; see issue 5.)

pub mod changes;
pub mod control;
pub mod state;
