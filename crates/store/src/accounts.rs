//! Users, password hashes (argon2), sessions, API tokens and login rate limits.
//! Secrets are stored only as SHA-256 hashes; everything lives in the database so that
//! several servers share it.

use crate::audit::AuditEvent;
use crate::conn::{Columns, stmt};
use crate::error::{Result, StoreError};
use crate::ids::UserId;
use crate::model::AuditAction;
use crate::model::{AccountKind, ApiTokenInfo, Id, Session, User};
use crate::{Store, audit};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::TryRngCore;
use sha2::{Digest, Sha256};

/// Argon2id cost. `Default` is argon2's recommended setting; `Fast` is for tests only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCost {
    Default,
    Fast,
}

impl PasswordCost {
    fn hasher(self) -> Argon2<'static> {
        match self {
            PasswordCost::Default => Argon2::default(),
            PasswordCost::Fast => Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                // The library's smallest allowed parameters: fast, and still real argon2.
                Params::new(8, 1, 1, None).unwrap_or_default(),
            ),
        }
    }
}

/// The outcome of a login attempt.
#[derive(Debug)]
pub enum LoginCheck {
    Ok(User),
    BadCredentials,
    /// Too many recent failures for this name or address; try again later.
    RateLimited,
}

/// Failures allowed per user name and per address in the window before logins are refused.
pub const LOGIN_FAILURE_LIMIT: i64 = 10;
pub const LOGIN_WINDOW_MS: i64 = 15 * 60 * 1000;
pub const MIN_PASSWORD_LEN: usize = 8;

pub(crate) fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS random source failing is not recoverable; fall back to a loud panic-free error
    // path is not possible here, so report through the all-zero check below.
    let _ = rand::rngs::OsRng.try_fill_bytes(&mut buf);
    hex(&buf)
}

/// Lower-case hex. Every API request hashes its token, so this stays off `format!`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

pub(crate) fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

pub(crate) const USER_COLUMNS: &str =
    "u.id, u.username, u.display_name, u.is_admin, u.kind, u.disabled, u.created_at";

pub(crate) fn user_from_row(row: &impl Columns) -> Result<User> {
    Ok(User {
        id: row.col("id")?,
        username: row.col("username")?,
        display_name: row.col("display_name")?,
        is_admin: row.col::<i64>("is_admin")? != 0,
        kind: row.col("kind")?,
        disabled: row.col::<i64>("disabled")? != 0,
        created_at: row.col("created_at")?,
    })
}

pub(crate) fn valid_username(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub display_name: Option<String>,
    pub password: Option<String>,
    pub is_admin: bool,
    pub kind: AccountKind,
}

/// Checks a password against a stored hash on a blocking thread. Verifies even for unknown
/// users (no hash) so that timing does not reveal which names exist.
async fn verify_password(cost: PasswordCost, hash: Option<String>, password: &str) -> Result<bool> {
    let password = password.to_owned();
    let verified = tokio::task::spawn_blocking(move || {
        let fallback;
        let stored = match &hash {
            Some(h) => h.as_str(),
            None => {
                fallback = cost
                    .hasher()
                    .hash_password(b"no such user", &SaltString::encode_b64(&[7u8; 16]).ok()?)
                    .ok()?
                    .to_string();
                fallback.as_str()
            }
        };
        let parsed = PasswordHash::new(stored).ok()?;
        let ok = cost
            .hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Some(ok && hash.is_some())
    })
    .await
    .map_err(|e| StoreError::Hash(e.to_string()))?;
    Ok(verified.unwrap_or(false))
}

impl Store {
    async fn hash_password(&self, password: String) -> Result<String> {
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(StoreError::invalid(format!(
                "the password must have at least {MIN_PASSWORD_LEN} characters"
            )));
        }
        let cost = self.inner.password_cost;
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            let _ = rand::rngs::OsRng.try_fill_bytes(&mut salt);
            let salt =
                SaltString::encode_b64(&salt).map_err(|e| StoreError::Hash(e.to_string()))?;
            cost.hasher()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| StoreError::Hash(e.to_string()))
        })
        .await
        .map_err(|e| StoreError::Hash(e.to_string()))?
    }

    pub async fn create_user(&self, new: NewUser, actor: Option<UserId>) -> Result<User> {
        if !valid_username(&new.username) {
            return Err(StoreError::invalid(format!(
                "user name {:?} must be 1–64 letters, digits or _ - . @",
                new.username
            )));
        }
        let hash = match new.password {
            Some(p) => Some(self.hash_password(p).await?),
            None => None,
        };
        let display = new
            .display_name
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| new.username.clone());
        let username = new.username.clone();
        let result = self
            .write_conn(move |mut c| {
                let name = new.username.clone();
                let hash = hash.clone();
                let display = display.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let statement = stmt(format!(
                        "INSERT INTO users (username, display_name, password_hash, is_admin, kind) \
                         VALUES ($1, $2, $3, $4, $5) RETURNING {}",
                        USER_COLUMNS.replace("u.", "")
                    ))
                    .bind(&name)
                    .bind(&display)
                    .bind(hash)
                    .bind(new.is_admin as i64)
                    .bind(new.kind.as_str());
                    let row = c.fetch_one(statement).await?;
                    let user = user_from_row(&row)?;
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor,
                            project: None,
                            action: AuditAction::Create,
                            entity: "user",
                            entity_id: Some(user.id.get()),
                            before: None,
                            after: audit::snapshot(&user),
                        },
                    )
                    .await?;
                    Ok(user)
                })
            })
            .await;
        match result {
            Err(e) if e.is_unique_violation() => Err(StoreError::conflict(format!(
                "a user named {username:?} already exists"
            ))),
            other => other,
        }
    }

    pub async fn set_password(
        &self,
        username: &str,
        password: String,
        actor: Option<UserId>,
    ) -> Result<()> {
        let user = self.user_by_name(username).await?;
        let hash = self.hash_password(password).await?;
        self.write_conn(move |mut c| {
            let hash = hash.clone();
            Box::pin(async move {
                let c = &mut c;
                c.execute(
                    stmt("UPDATE users SET password_hash = $1 WHERE id = $2")
                        .bind(hash)
                        .bind(user.id),
                )
                .await?;
                // A new password ends every session.
                c.execute(stmt("DELETE FROM sessions WHERE user_id = $1").bind(user.id))
                    .await?;
                audit::record_in(
                    c,
                    AuditEvent {
                        actor,
                        project: None,
                        action: AuditAction::SetPassword,
                        entity: "user",
                        entity_id: Some(user.id.get()),
                        before: None,
                        after: None,
                    },
                )
                .await
            })
        })
        .await
    }

    /// Disables or enables an account. A disabled user cannot sign in and their tokens stop
    /// working; their sessions end at once. Recorded in the audit log.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: Option<UserId>,
    ) -> Result<User> {
        let user = self.user_by_name(username).await?;
        if actor == Some(user.id) && disabled {
            return Err(StoreError::invalid("you cannot disable your own account"));
        }
        let (id, was_disabled) = (user.id, user.disabled);
        self.write_conn(move |mut c| {
            Box::pin(async move {
                let c = &mut c;
                c.execute(
                    stmt("UPDATE users SET disabled = $1 WHERE id = $2")
                        .bind(i64::from(disabled))
                        .bind(id),
                )
                .await?;
                if disabled {
                    c.execute(stmt("DELETE FROM sessions WHERE user_id = $1").bind(id))
                        .await?;
                }
                let action = if disabled {
                    AuditAction::Disable
                } else {
                    AuditAction::Enable
                };
                audit::record_in(
                    c,
                    AuditEvent {
                        actor,
                        project: None,
                        action,
                        entity: "user",
                        entity_id: Some(id.get()),
                        before: audit::snapshot(&serde_json::json!({"disabled": was_disabled})),
                        after: audit::snapshot(&serde_json::json!({"disabled": disabled})),
                    },
                )
                .await
            })
        })
        .await?;
        self.user_by_id(id).await
    }

    pub async fn user_by_name(&self, username: &str) -> Result<User> {
        let row = self
            .read_optional(
                stmt(format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1"
                ))
                .bind(username),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("user {username:?}")))?;
        user_from_row(&row)
    }

    pub async fn user_by_id(&self, id: UserId) -> Result<User> {
        let row = self
            .read_optional(
                stmt(format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1"
                ))
                .bind(id),
            )
            .await?
            .ok_or_else(|| StoreError::not_found(format!("user {id}")))?;
        user_from_row(&row)
    }

    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows = self
            .read_rows(stmt(format!(
                "SELECT {USER_COLUMNS} FROM users u ORDER BY u.username"
            )))
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn count_users(&self) -> Result<i64> {
        let row = self
            .read_one(stmt("SELECT COUNT(*) AS n FROM users"))
            .await?;
        row.col("n")
    }

    /// Checks a password, with rate limiting per user name and per client address.
    pub async fn login(&self, username: &str, password: &str, address: &str) -> Result<LoginCheck> {
        let keys = [format!("user:{username}"), format!("addr:{address}")];
        for key in &keys {
            if self.recent_login_failures(key).await? >= LOGIN_FAILURE_LIMIT {
                return Ok(LoginCheck::RateLimited);
            }
        }
        let row = self
            .read_optional(
                stmt(format!(
                    "SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = $1"
                ))
                .bind(username),
            )
            .await?;
        let (user, hash) = match &row {
            Some(row) => (
                Some(user_from_row(row)?),
                row.col::<Option<String>>("password_hash")?,
            ),
            None => (None, None),
        };
        let verified = verify_password(self.inner.password_cost, hash, password).await?;
        match user {
            Some(user) if verified && !user.disabled => {
                self.forget_login_failures(keys[0].clone()).await?;
                Ok(LoginCheck::Ok(user))
            }
            _ => {
                self.record_login_failure(keys).await?;
                Ok(LoginCheck::BadCredentials)
            }
        }
    }

    async fn forget_login_failures(&self, key: String) -> Result<()> {
        self.write_conn(move |mut c| {
            let key = key.clone();
            Box::pin(async move {
                let c = &mut c;
                c.execute(stmt("DELETE FROM login_failures WHERE key = $1").bind(key))
                    .await?;
                Ok(())
            })
        })
        .await
    }

    async fn record_login_failure(&self, keys: [String; 2]) -> Result<()> {
        let now = self.dialect().now_ms();
        self.write_conn(move |mut c| {
            let keys = keys.clone();
            Box::pin(async move {
                let c = &mut c;
                for key in keys {
                    c.execute(
                        stmt(format!(
                            "INSERT INTO login_failures (key, at) VALUES ($1, {now})"
                        ))
                        .bind(key),
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    async fn recent_login_failures(&self, key: &str) -> Result<i64> {
        let now = self.dialect().now_ms();
        let row = self
            .read_one(
                stmt(format!(
                    "SELECT COUNT(*) AS n FROM login_failures WHERE key = $1 AND at > {now} - $2"
                ))
                .bind(key)
                .bind(LOGIN_WINDOW_MS),
            )
            .await?;
        row.col("n")
    }

    /// Starts a session; returns the secret for the cookie (only its hash is stored).
    pub async fn create_session(&self, user_id: UserId, ttl_ms: i64) -> Result<(String, Session)> {
        let token = random_token(32);
        let csrf = random_token(32);
        let hash = sha256_hex(&token);
        let now = self.dialect().now_ms();
        self.write_conn(move |mut c| {
            let hash = hash.clone();
            let csrf = csrf.clone();
            Box::pin(async move {
                let c = &mut c;
                c.execute(
                    stmt(format!(
                        "INSERT INTO sessions (token_hash, user_id, csrf_token, expires_at) \
                     VALUES ($1, $2, $3, {now} + $4)"
                    ))
                    .bind(hash)
                    .bind(user_id)
                    .bind(csrf)
                    .bind(ttl_ms),
                )
                .await?;
                c.execute(stmt(format!(
                    "DELETE FROM sessions WHERE expires_at < {now}"
                )))
                .await?;
                Ok(())
            })
        })
        .await?;
        let session = self
            .session(&token)
            .await?
            .ok_or_else(|| StoreError::not_found("the new session"))?;
        Ok((token, session))
    }

    /// The live session for a cookie secret, if any.
    pub async fn session(&self, token: &str) -> Result<Option<Session>> {
        let now = self.dialect().now_ms();
        let row = self
            .read_optional(
                stmt(format!(
                    "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at FROM sessions s \
             JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > {now} AND u.disabled = 0"
                ))
                .bind(sha256_hex(token)),
            )
            .await?;
        row.map(|row| {
            Ok(Session {
                user: user_from_row(&row)?,
                csrf_token: row.col("csrf_token")?,
                expires_at: row.col("expires_at")?,
            })
        })
        .transpose()
    }

    pub async fn delete_session(&self, token: &str) -> Result<()> {
        let hash = sha256_hex(token);
        self.write_conn(move |mut c| {
            let hash = hash.clone();
            Box::pin(async move {
                let c = &mut c;
                c.execute(stmt("DELETE FROM sessions WHERE token_hash = $1").bind(hash))
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Creates an API token; the secret is returned once and stored only as a hash.
    pub async fn create_api_token(
        &self,
        user_id: UserId,
        name: &str,
    ) -> Result<(String, ApiTokenInfo)> {
        if name.trim().is_empty() {
            return Err(StoreError::invalid("a token needs a name"));
        }
        let secret = format!("cnc_{}", random_token(24));
        let hash = sha256_hex(&secret);
        let name = name.trim().to_owned();
        let info = self
            .write_conn(move |mut c| {
                let name = name.clone();
                let hash = hash.clone();
                Box::pin(async move {
                    let c = &mut c;
                    let statement = stmt(
                        "INSERT INTO api_tokens (user_id, name, token_hash) VALUES ($1, $2, $3) \
                         RETURNING id, name, created_at, last_used_at, revoked_at",
                    )
                    .bind(user_id)
                    .bind(name)
                    .bind(hash);
                    let row = c.fetch_one(statement).await?;
                    let info = token_from_row(&row)?;
                    audit::record_in(
                        c,
                        AuditEvent {
                            actor: Some(user_id),
                            project: None,
                            action: AuditAction::Create,
                            entity: "api_token",
                            entity_id: Some(info.id),
                            before: None,
                            after: audit::snapshot(&info),
                        },
                    )
                    .await?;
                    Ok(info)
                })
            })
            .await?;
        Ok((secret, info))
    }

    /// The user an API token belongs to, if the token is live.
    /// On every API request: a hot read.
    pub async fn user_by_api_token(&self, secret: &str) -> Result<Option<User>> {
        let hash = sha256_hex(secret);
        let access = &self.inner.access;
        if let Some(user) = access.user(&hash) {
            return Ok(Some(user));
        }
        let ticket = access.ticket();
        let key = hash.clone();
        let found = self
            .read_native(move |mut c| {
                Box::pin(async move {
                    let row = c
                        .fetch_optional(
                            stmt(format!(
                                "SELECT {USER_COLUMNS} FROM api_tokens t \
                             JOIN users u ON u.id = t.user_id \
                             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled = 0"
                            ))
                            .bind(hash),
                        )
                        .await?;
                    row.as_ref().map(user_from_row).transpose()
                })
            })
            .await?;
        if let Some(user) = &found {
            access.keep_user(key, user, ticket);
        }
        Ok(found)
    }

    pub async fn list_api_tokens(&self, user_id: UserId) -> Result<Vec<ApiTokenInfo>> {
        let rows = self
            .read_rows(
                stmt(
                    "SELECT id, name, created_at, last_used_at, revoked_at FROM api_tokens \
             WHERE user_id = $1 ORDER BY id",
                )
                .bind(user_id),
            )
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    pub async fn revoke_api_token(&self, user_id: UserId, token_id: Id) -> Result<()> {
        let now = self.dialect().now_ms();
        self.write_conn(move |mut c| {
            Box::pin(async move {
                let c = &mut c;
                let done = c
                    .execute(
                        stmt(format!(
                            "UPDATE api_tokens SET revoked_at = {now} \
                     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
                        ))
                        .bind(token_id)
                        .bind(user_id),
                    )
                    .await?;
                if done == 0 {
                    return Err(StoreError::not_found(format!("live token {token_id}")));
                }
                audit::record_in(
                    c,
                    AuditEvent {
                        actor: Some(user_id),
                        project: None,
                        action: AuditAction::Revoke,
                        entity: "api_token",
                        entity_id: Some(token_id),
                        before: None,
                        after: None,
                    },
                )
                .await
            })
        })
        .await
    }
}

fn token_from_row(row: &impl Columns) -> Result<ApiTokenInfo> {
    Ok(ApiTokenInfo {
        id: row.col("id")?,
        name: row.col("name")?,
        created_at: row.col("created_at")?,
        last_used_at: row.col("last_used_at")?,
        revoked_at: row.col("revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_are_lower_case_hex_of_sha256() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        // FIPS 180-2's "abc" vector: stored token hashes keep this exact form.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
