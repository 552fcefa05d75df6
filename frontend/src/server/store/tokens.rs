//! API tokens in the store: each row holds the SHA-256 of the token (never
//! the token), its owner, name, role, scope and expiry, and when it was last
//! used. Revoking deletes the row.

use sqlx::Row;

use super::{Store, StoreError};

/// A token as stored (and listed: the hash is never serialised).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenRow {
    pub id: i64,
    #[serde(skip)]
    pub hash: String,
    pub owner: String,
    /// The owner's password tag (or identity provider binding's) when it
    /// was made: a new password, or another user of the same name, ends it.
    #[serde(skip)]
    pub owner_tag: String,
    pub name: String,
    pub role: String,
    pub scope: String,
    pub created_s: i64,
    pub expires_s: i64,
    pub last_used_s: Option<i64>,
}

const COLUMNS: &str = "id, hash, owner, owner_tag, name, role, scope, created_s, expires_s, last_used_s";

fn token(r: &sqlx::any::AnyRow) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: r.try_get(0)?,
        hash: r.try_get(1)?,
        owner: r.try_get(2)?,
        owner_tag: r.try_get(3)?,
        name: r.try_get(4)?,
        role: r.try_get(5)?,
        scope: r.try_get(6)?,
        created_s: r.try_get(7)?,
        expires_s: r.try_get(8)?,
        last_used_s: r.try_get(9)?,
    })
}

impl Store {
    /// Stores a new token (`id` is ignored); its id.
    pub async fn add_token(&self, t: &TokenRow) -> Result<i64, StoreError> {
        self.check_writable()?;
        let r = sqlx::query(
            "INSERT INTO api_tokens (hash, owner, owner_tag, name, role, scope, created_s, expires_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&t.hash)
        .bind(&t.owner)
        .bind(&t.owner_tag)
        .bind(&t.name)
        .bind(&t.role)
        .bind(&t.scope)
        .bind(t.created_s)
        .bind(t.expires_s)
        .fetch_one(&self.pool)
        .await
        .and_then(|r| r.try_get::<i64, _>(0))
        .map_err(StoreError::from);
        self.wrote(r)
    }

    /// The token whose SHA-256 is `hash`.
    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE hash = $1"))
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(token).transpose()?)
    }

    /// One owner's tokens, or everyone's (`None`), by owner and name; at most `limit`.
    pub async fn tokens(&self, owner: Option<&str>, limit: i64) -> Result<Vec<TokenRow>, StoreError> {
        let rows = match owner {
            Some(o) => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens WHERE owner = $1 ORDER BY name LIMIT $2"))
                    .bind(o)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("SELECT {COLUMNS} FROM api_tokens ORDER BY owner, name LIMIT $1"))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(token).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
    }

    /// Deletes a token (of `owner`, unless `None`); the row it was.
    pub async fn remove_token(&self, id: i64, owner: Option<&str>) -> Result<Option<TokenRow>, StoreError> {
        self.check_writable()?;
        let r = async {
            let row = sqlx::query(&format!(
                "DELETE FROM api_tokens WHERE id = $1 AND ($2 = '' OR owner = $2) RETURNING {COLUMNS}"
            ))
            .bind(id)
            .bind(owner.unwrap_or(""))
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(token).transpose()
        }
        .await
        .map_err(StoreError::from);
        self.wrote(r)
    }

    /// Notes a use of a token.
    pub async fn token_used(&self, id: i64, now_s: i64) -> Result<(), StoreError> {
        self.check_writable()?;
        let r = sqlx::query("UPDATE api_tokens SET last_used_s = $1 WHERE id = $2")
            .bind(now_s)
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(StoreError::from);
        self.wrote(r)
    }
}
