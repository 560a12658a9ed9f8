//! The signed-session secrets ingest verifies tokens with. From Secrets Manager they are read at
//! start and again every [`REFRESH`] while the function runs, both the `AWSCURRENT` and the
//! `AWSPREVIOUS` versions: during a rotation a token signed with either secret counts, so the
//! instances that have re-read and those that have not yet agree, and no viewer flaps.

use futures::future::BoxFuture;
use livecount_core::error_chain;
use livecount_core::ids::{SessionId, StreamId};
use livecount_core::token::{TokenError, TokenKeys, TokenSecret, VerifyToken};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How often a running ingest reads the secrets again.
pub const REFRESH: Duration = Duration::from_secs(300);

/// Reads the secrets (Secrets Manager, or a test's own source); the error says why not.
pub type FetchKeys = Arc<dyn Fn() -> BoxFuture<'static, Result<TokenKeys, String>> + Send + Sync>;

/// The secrets in use, and where to read them again. Clones share them.
#[derive(Clone)]
pub struct Tokens {
    keys: Arc<RwLock<TokenKeys>>,
    fetch: Option<FetchKeys>,
    refresh: Duration,
    fetched: Arc<Mutex<Instant>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("refreshed", &self.fetch.is_some())
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Secrets that never change (`LIVECOUNT_TOKEN_SECRET` for `livecount dev`, tests).
    pub fn fixed(keys: impl Into<TokenKeys>) -> Self {
        Self {
            keys: Arc::new(RwLock::new(keys.into())),
            fetch: None,
            refresh: REFRESH,
            fetched: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Reads the secrets from `fetch` now, and again every `refresh` (see
    /// [`Tokens::refresh_if_due`]).
    pub async fn from_source(fetch: FetchKeys, refresh: Duration) -> Result<Self, String> {
        let keys = fetch().await?;
        Ok(Self {
            keys: Arc::new(RwLock::new(keys)),
            fetch: Some(fetch),
            refresh,
            fetched: Arc::new(Mutex::new(Instant::now())),
        })
    }

    /// The `AWSCURRENT` and `AWSPREVIOUS` versions of a Secrets Manager secret (ARN or name).
    pub async fn secrets_manager(arn: &str) -> Result<Self, String> {
        let sdk = aws_config::load_from_env().await;
        let client = aws_sdk_secretsmanager::Client::new(&sdk);
        let arn = arn.to_owned();
        let fetch: FetchKeys = Arc::new(move || {
            let (client, arn) = (client.clone(), arn.clone());
            Box::pin(async move { read_versions(&client, &arn).await })
        });
        Self::from_source(fetch, REFRESH).await
    }

    /// Reads the secrets again if the last read is `refresh` old. A failed read keeps the
    /// secrets in use (logged) and is tried again after another `refresh`.
    pub async fn refresh_if_due(&self) {
        let Some(fetch) = &self.fetch else {
            return;
        };
        {
            let mut fetched = self.fetched.lock().unwrap_or_else(|e| e.into_inner());
            if fetched.elapsed() < self.refresh {
                return;
            }
            *fetched = Instant::now();
        }
        match fetch().await {
            Ok(keys) => *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys,
            Err(reason) => {
                tracing::warn!(reason = %reason, "could not read the token secrets again; keeping the ones in use");
            }
        }
    }
}

impl VerifyToken for Tokens {
    /// Checks `token` against the secrets in use (see [`TokenKeys`]).
    fn verify(
        &self,
        token: Option<&str>,
        stream_id: &StreamId,
        session_id: &SessionId,
        now: i64,
    ) -> Result<(), TokenError> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verify(token, stream_id, session_id, now)
    }
}

async fn read_versions(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<TokenKeys, String> {
    let read = |stage: &'static str| async move {
        client
            .get_secret_value()
            .secret_id(arn)
            .version_stage(stage)
            .send()
            .await
            .map_err(aws_sdk_secretsmanager::Error::from)
    };
    let current = read("AWSCURRENT")
        .await
        .map_err(|e| error_chain(&e))?
        .secret_string
        .and_then(TokenSecret::new)
        .ok_or_else(|| "the secret has no SecretString of at least 16 bytes".to_owned())?;
    let previous = match read("AWSPREVIOUS").await {
        Ok(output) => output.secret_string.and_then(TokenSecret::new),
        // No previous version until the first rotation.
        Err(aws_sdk_secretsmanager::Error::ResourceNotFoundException(_)) => None,
        Err(e) => return Err(error_chain(&e)),
    };
    Ok(TokenKeys { current, previous })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(text: &str) -> StreamId {
        StreamId::parse(text).expect("valid")
    }

    fn session(text: &str) -> SessionId {
        SessionId::parse(text).expect("valid")
    }

    fn secret(text: &str) -> TokenSecret {
        TokenSecret::new(text).expect("long enough")
    }

    /// A rotation seen by a running ingest: before its refresh only the old secret; after, the
    /// new one and the old as previous; once the old is gone from the source, only the new.
    #[tokio::test]
    async fn a_running_ingest_follows_a_rotation_without_refusing_either_secret_meanwhile() {
        let (old, new) = (
            secret("the secret before rotation"),
            secret("the secret after rotation"),
        );
        let source = Arc::new(Mutex::new(TokenKeys::from(old.clone())));
        let shared = source.clone();
        let fetch: FetchKeys = Arc::new(move || {
            let keys = shared.lock().expect("source").clone();
            Box::pin(async move { Ok(keys) })
        });
        let tokens = Tokens::from_source(fetch, Duration::ZERO)
            .await
            .expect("first read");
        let now = 1_700_000_000;
        let (old_token, new_token) = (
            old.sign(&stream("s"), &session("a"), now + 60),
            new.sign(&stream("s"), &session("a"), now + 60),
        );
        assert_eq!(
            tokens.verify(Some(&old_token), &stream("s"), &session("a"), now),
            Ok(())
        );
        assert_eq!(
            tokens.verify(Some(&new_token), &stream("s"), &session("a"), now),
            Err(TokenError::Wrong)
        );

        *source.lock().expect("source") = TokenKeys {
            current: new.clone(),
            previous: Some(old.clone()),
        };
        tokens.refresh_if_due().await;
        assert_eq!(
            tokens.verify(Some(&old_token), &stream("s"), &session("a"), now),
            Ok(())
        );
        assert_eq!(
            tokens.verify(Some(&new_token), &stream("s"), &session("a"), now),
            Ok(())
        );

        *source.lock().expect("source") = TokenKeys::from(new);
        tokens.refresh_if_due().await;
        assert_eq!(
            tokens.verify(Some(&new_token), &stream("s"), &session("a"), now),
            Ok(())
        );
        assert_eq!(
            tokens.verify(Some(&old_token), &stream("s"), &session("a"), now),
            Err(TokenError::Wrong)
        );
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_secrets_in_use() {
        let calls = Arc::new(Mutex::new(0));
        let counted = calls.clone();
        let fetch: FetchKeys = Arc::new(move || {
            let mut calls = counted.lock().expect("calls");
            *calls += 1;
            let first = *calls == 1;
            Box::pin(async move {
                if first {
                    Ok(TokenKeys::from(secret("the only secret we have")))
                } else {
                    Err("Secrets Manager unavailable".to_owned())
                }
            })
        });
        let tokens = Tokens::from_source(fetch, Duration::ZERO)
            .await
            .expect("read");
        tokens.refresh_if_due().await;
        let token = secret("the only secret we have").sign(&stream("s"), &session("a"), 100);
        assert_eq!(
            tokens.verify(Some(&token), &stream("s"), &session("a"), 1),
            Ok(())
        );
        assert_eq!(*calls.lock().expect("calls"), 2);
    }
}
