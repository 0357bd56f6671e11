//! The SHA-256 hashes cloison shows and records (configuration files, rulesets) and
//! their short form, the one people compare by eye in `cloison status` and alerts.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Hash(String);

/// Hex digits in the short form: enough to tell configurations apart by eye.
pub const SHORT_LEN: usize = 12;

impl Hash {
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(
            Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        )
    }

    /// Reads a hash written by `Display`; `None` unless it is 64 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Hash> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Hash(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.0[..SHORT_LEN]
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Hash {
    type Error = String;
    fn try_from(s: String) -> Result<Hash, String> {
        Hash::parse(&s).ok_or_else(|| format!("`{s}` is not a SHA-256 hash (64 hex digits)"))
    }
}

impl From<Hash> for String {
    fn from(h: Hash) -> String {
        h.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_shortens() {
        let h = Hash::of(b"abc");
        assert_eq!(
            h.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(h.short(), "ba7816bf8f01");
        assert_eq!(Hash::parse(h.as_str()), Some(h.clone()));
        assert_eq!(Hash::parse("ba7816bf8f01"), None);
        assert_eq!(Hash::parse(&h.as_str().to_uppercase()), None);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Hash>(&json).unwrap(), h);
        assert!(serde_json::from_str::<Hash>("\"nope\"").is_err());
    }
}
