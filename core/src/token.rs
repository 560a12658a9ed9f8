//! Signed sessions: a token the customer's backend issues with the playback URL, so that only
//! players it served can count. A token is
//!
//! ```text
//! v1.{expiry}.{signature}
//! signature = base64url(HMAC-SHA256(secret, "{streamId}\n{sessionId}\n{expiry}")), no padding
//! ```
//!
//! with `expiry` in epoch seconds. Ingest verifies it when a secret is configured and refuses a
//! missing, malformed, wrong or expired token with its own reason.

use crate::ids::{SessionId, StreamId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// The shared secret tokens are signed with (never logged).
#[derive(Clone)]
pub struct TokenSecret(Vec<u8>);

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(…)")
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("`token` is missing; this deployment only counts signed sessions")]
    Missing,
    #[error("`token` is malformed; expected v1.{{expiry}}.{{signature}}")]
    Malformed,
    #[error("`token` was not issued for this stream and session")]
    Wrong,
    #[error("`token` expired at {expiry} (epoch seconds)")]
    Expired { expiry: i64 },
}

impl TokenSecret {
    /// A secret of at least 16 bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Option<Self> {
        let secret = secret.into();
        (secret.len() >= 16).then_some(Self(secret))
    }

    /// The token for `stream_id` and `session_id`, valid until `expiry` (epoch seconds). As
    /// docs/deploy.md gives it to a backend (with the known vector the Node and Python lines
    /// there are tested against):
    ///
    /// ```
    /// # let secret_bytes = b"0123456789abcdef".to_vec();
    /// # let expiry_epoch_seconds = 1;
    /// use livecount_core::ids::{SessionId, StreamId};
    /// let secret = livecount_core::token::TokenSecret::new(secret_bytes).expect("16 bytes or more");
    /// let (stream, session) = (StreamId::parse("s")?, SessionId::parse("a")?);
    /// let token = secret.sign(&stream, &session, expiry_epoch_seconds);
    /// assert_eq!(token, "v1.1.ZZcc13Dt9fHJl8CqMGDcsfkziWQi2KdMP9DJtoC7kCo");
    /// # Ok::<(), livecount_core::ids::InvalidId>(())
    /// ```
    pub fn sign(&self, stream_id: &StreamId, session_id: &SessionId, expiry: i64) -> String {
        let signature = URL_SAFE_NO_PAD.encode(
            self.mac(stream_id, session_id, expiry)
                .finalize()
                .into_bytes(),
        );
        format!("v1.{expiry}.{signature}")
    }

    /// Checks `token` for `stream_id` and `session_id` at `now` (epoch seconds).
    pub fn verify(
        &self,
        token: Option<&str>,
        stream_id: &StreamId,
        session_id: &SessionId,
        now: i64,
    ) -> Result<(), TokenError> {
        let token = token.ok_or(TokenError::Missing)?;
        let mut parts = token.splitn(3, '.');
        let (Some("v1"), Some(expiry), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let expiry: i64 = expiry.parse().map_err(|_| TokenError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(stream_id, session_id, expiry)
            .verify_slice(&signature)
            .map_err(|_| TokenError::Wrong)?;
        if expiry < now {
            return Err(TokenError::Expired { expiry });
        }
        Ok(())
    }

    fn mac(&self, stream_id: &StreamId, session_id: &SessionId, expiry: i64) -> HmacSha256 {
        // Any key length is accepted by HMAC.
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{stream_id}\n{session_id}\n{expiry}").as_bytes());
        mac
    }
}

/// The secrets a deployment accepts tokens of: Secrets Manager's `AWSCURRENT` version, and
/// `AWSPREVIOUS` while a rotation is under way, so a player holding a token signed before the
/// rotation keeps counting until the token expires.
#[derive(Debug, Clone)]
pub struct TokenKeys {
    pub current: TokenSecret,
    pub previous: Option<TokenSecret>,
}

/// What checks a token: the secrets themselves ([`TokenKeys`]), or a holder that re-reads them
/// (ingest's `Tokens`).
pub trait VerifyToken: Send + Sync {
    /// Checks `token` for `stream_id` and `session_id` at `now` (epoch seconds).
    fn verify(
        &self,
        token: Option<&str>,
        stream_id: &StreamId,
        session_id: &SessionId,
        now: i64,
    ) -> Result<(), TokenError>;
}

impl VerifyToken for TokenKeys {
    /// Checks `token` against the current secret, then the previous one (see
    /// [`TokenSecret::verify`]).
    fn verify(
        &self,
        token: Option<&str>,
        stream_id: &StreamId,
        session_id: &SessionId,
        now: i64,
    ) -> Result<(), TokenError> {
        match self.current.verify(token, stream_id, session_id, now) {
            Err(TokenError::Wrong) => match &self.previous {
                Some(previous) => previous.verify(token, stream_id, session_id, now),
                None => Err(TokenError::Wrong),
            },
            outcome => outcome,
        }
    }
}

impl From<TokenSecret> for TokenKeys {
    fn from(current: TokenSecret) -> Self {
        Self {
            current,
            previous: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn during_a_rotation_tokens_of_the_current_and_the_previous_secret_verify() {
        let (old, new) = (
            secret(),
            TokenSecret::new("the secret after rotation").expect("long"),
        );
        let keys = TokenKeys {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        let now = 1_700_000_000;
        for signer in [&old, &new] {
            let token = signer.sign(&stream("s"), &session("a"), now + 60);
            assert_eq!(
                keys.verify(Some(&token), &stream("s"), &session("a"), now),
                Ok(())
            );
            assert_eq!(
                keys.verify(Some(&token), &stream("s"), &session("b"), now),
                Err(TokenError::Wrong)
            );
        }
        let expired = old.sign(&stream("s"), &session("a"), now - 1);
        assert_eq!(
            keys.verify(Some(&expired), &stream("s"), &session("a"), now),
            Err(TokenError::Expired { expiry: now - 1 })
        );
        let after = TokenKeys::from(new);
        let token = old.sign(&stream("s"), &session("a"), now + 60);
        assert_eq!(
            after.verify(Some(&token), &stream("s"), &session("a"), now),
            Err(TokenError::Wrong)
        );
    }

    fn stream(text: &str) -> StreamId {
        StreamId::parse(text).expect("valid")
    }

    fn session(text: &str) -> SessionId {
        SessionId::parse(text).expect("valid")
    }

    fn secret() -> TokenSecret {
        TokenSecret::new("a secret of enough bytes").expect("long enough")
    }

    #[test]
    fn a_token_verifies_for_its_stream_and_session_until_it_expires() {
        let token = secret().sign(&stream("launch"), &session("viewer-1"), 1_700_003_600);
        assert!(token.starts_with("v1.1700003600."));
        let check = |token: Option<&str>, stream_id: &str, session_id: &str, now| {
            secret().verify(token, &stream(stream_id), &session(session_id), now)
        };
        assert_eq!(
            check(Some(&token), "launch", "viewer-1", 1_700_000_000),
            Ok(())
        );
        assert_eq!(
            check(Some(&token), "launch", "viewer-1", 1_700_003_600),
            Ok(())
        );
        assert_eq!(
            check(Some(&token), "launch", "viewer-1", 1_700_003_601),
            Err(TokenError::Expired {
                expiry: 1_700_003_600
            })
        );
        assert_eq!(
            check(Some(&token), "launch", "viewer-2", 0),
            Err(TokenError::Wrong)
        );
        assert_eq!(
            check(Some(&token), "other", "viewer-1", 0),
            Err(TokenError::Wrong)
        );
        assert_eq!(
            check(None, "launch", "viewer-1", 0),
            Err(TokenError::Missing)
        );
        let forged_expiry = token.replace("1700003600", "1800000000");
        assert_eq!(
            check(Some(&forged_expiry), "launch", "viewer-1", 0),
            Err(TokenError::Wrong)
        );
        let other = TokenSecret::new("another secret, as long").expect("long enough");
        assert_eq!(
            other.verify(Some(&token), &stream("launch"), &session("viewer-1"), 0),
            Err(TokenError::Wrong)
        );
        for bad in ["", "v1", "v2.1.abc", "v1.x.abc", "v1.1.***"] {
            assert_eq!(
                check(Some(bad), "launch", "viewer-1", 0),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }

    /// The signature other languages must produce (README: Node and Python).
    #[test]
    fn the_signature_matches_a_known_vector() {
        let secret = TokenSecret::new("0123456789abcdef").expect("16 bytes");
        assert_eq!(
            secret.sign(&stream("s"), &session("a"), 1),
            format!("v1.1.{}", known_vector())
        );
        assert!(TokenSecret::new("short").is_none());
    }

    /// HMAC-SHA256("0123456789abcdef", "s\na\n1"), base64url without padding.
    fn known_vector() -> &'static str {
        "ZZcc13Dt9fHJl8CqMGDcsfkziWQi2KdMP9DJtoC7kCo"
    }
}
