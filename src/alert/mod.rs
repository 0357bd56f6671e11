//! Alerts: what is reported, how repeats are folded, and where entries are written.
//! (Being written; see issue 4.)

pub mod event;
