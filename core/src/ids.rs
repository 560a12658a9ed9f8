//! The names livecount keys its tables by, as types that parse and print themselves: a stream,
//! a session, and the sessions table's partition key `"{streamId}#{shard}"` with the session's
//! shard (built and parsed here only); the rules of an id, applied by `parse` only, and their
//! error.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Deref;

/// Longest `streamId` or `sessionId`.
pub const MAX_ID_CHARS: usize = 128;

/// Why a text is not an id: each names the field it was read for.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidId {
    #[error("`{field}` is empty")]
    Empty { field: &'static str },
    #[error("`{field}` is {chars} characters; the limit is {MAX_ID_CHARS}")]
    TooLong { field: &'static str, chars: usize },
    #[error("`{field}` contains '#', which is reserved")]
    ReservedHash { field: &'static str },
    #[error("`{field}` contains {character:?}; allowed are A-Z a-z 0-9 . _ : -")]
    BadCharacter {
        field: &'static str,
        character: char,
    },
}

/// The rules of `streamId` and `sessionId` (1-128 characters of `A-Z a-z 0-9 . _ : -`), naming
/// the id `field` in the error. Only the ids' `parse` (and their deserialization, which calls it)
/// apply it: a [`StreamId`] or [`SessionId`] is an id that passed it.
fn check(field: &'static str, id: &str) -> Result<(), InvalidId> {
    let chars = id.chars().count();
    if chars == 0 {
        return Err(InvalidId::Empty { field });
    }
    if chars > MAX_ID_CHARS {
        return Err(InvalidId::TooLong { field, chars });
    }
    if let Some(character) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(if character == '#' {
            InvalidId::ReservedHash { field }
        } else {
            InvalidId::BadCharacter { field, character }
        });
    }
    Ok(())
}

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        ///
        /// The one way to make one is [`Self::parse`] (deserializing calls it too), so a value
        /// of this type is always a valid id, and the functions that take one never check it
        /// again.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("Checks `text` against the rules of `", $field, "`: 1-128 characters of `A-Z a-z 0-9 . _ : -`.")]
            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                check($field, text)?;
                Ok(Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// An id livecount makes itself (never one it was sent).
            #[allow(dead_code)]
            pub(crate) fn unchecked(text: String) -> Self {
                Self(text)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(text: String) -> Result<Self, InvalidId> {
                check($field, &text)?;
                Ok(Self(text))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id!(
    /// A live stream's id (`streamId`).
    StreamId,
    "streamId"
);

id!(
    /// One playback's id (`sessionId`).
    SessionId,
    "sessionId"
);

/// The sessions table's partition key: a stream and one of its `S` shards, `"{streamId}#{shard}"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionPartition {
    pub stream_id: StreamId,
    pub shard: u32,
}

impl SessionPartition {
    pub fn new(stream_id: &StreamId, shard: u32) -> Self {
        Self {
            stream_id: stream_id.clone(),
            shard,
        }
    }

    /// Reads `"{streamId}#{shard}"`; `None` when `pk` is not one (a valid stream id, `#`, a
    /// shard number).
    pub fn parse(pk: &str) -> Option<Self> {
        let (stream, shard) = pk.rsplit_once('#')?;
        Some(Self {
            stream_id: StreamId::parse(stream).ok()?,
            shard: shard.parse().ok()?,
        })
    }
}

impl fmt::Display for SessionPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.stream_id, self.shard)
    }
}

/// The sessions-table shard of a session: `hash(sessionId) mod S`.
///
/// The hash is 64-bit FNV-1a, written out here because its values are stored in tables: it must
/// never change with a compiler or crate version.
pub fn session_shard(session_id: &str, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in session_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_shards_are_stable_and_in_range() {
        assert_eq!(session_shard("a", 8), session_shard("a", 8));
        // Known FNV-1a 64 value of "a" is 0xaf63dc4c8601ec8c.
        assert_eq!(
            session_shard("a", 1 << 16),
            (0xaf63_dc4c_8601_ec8c_u64 % (1 << 16)) as u32
        );
        let mut seen = [0u32; 8];
        for i in 0..8000 {
            seen[session_shard(&format!("session-{i}"), 8) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(session_shard("x", 0), 0);
    }

    #[test]
    fn ids_parse_by_the_event_rules() {
        assert_eq!(
            StreamId::parse("launch-keynote").map(|s| s.to_string()),
            Ok("launch-keynote".into())
        );
        assert_eq!(
            SessionId::parse("a#b"),
            Err(InvalidId::ReservedHash { field: "sessionId" })
        );
        assert!(StreamId::parse("").is_err());
        assert_eq!(&*StreamId::parse("x").expect("valid"), "x");
    }

    #[test]
    fn ids_deserialize_by_the_same_rules() {
        let stream: StreamId = serde_json::from_str("\"launch\"").expect("valid");
        assert_eq!(stream.as_str(), "launch");
        assert_eq!(
            serde_json::to_string(&stream).expect("prints"),
            "\"launch\""
        );
        let refused = serde_json::from_str::<SessionId>("\"a#b\"").expect_err("invalid");
        assert!(refused.to_string().contains("reserved"), "{refused}");
        assert!(serde_json::from_str::<StreamId>("\"\"").is_err());
    }

    #[test]
    fn the_partition_key_prints_and_parses_back() {
        let stream = StreamId::parse("launch:keynote").expect("valid");
        let key = SessionPartition::new(&stream, 17);
        assert_eq!(key.to_string(), "launch:keynote#17");
        assert_eq!(SessionPartition::parse("launch:keynote#17"), Some(key));
        for bad in ["no-shard", "x#", "x#-1", "x#1a", "#1", "a b#1"] {
            assert_eq!(SessionPartition::parse(bad), None, "{bad}");
        }
    }
}
