//! A private systemd-journald for the lab and the tests. (Being written; see issue 4.)
