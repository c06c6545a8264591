//! API tokens (SPEC section 9): an admin token that may do everything and an ingest token that
//! may only send events. Only hashes are kept; presented tokens are compared in constant time.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Ingest,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Ingest => "ingest",
        }
    }

    /// The environment variable that configures this role's token.
    pub fn variable(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN_TOKEN",
            Role::Ingest => "INGEST_TOKEN",
        }
    }
}

/// Shortest token accepted from the environment.
pub const MIN_TOKEN_LEN: usize = 16;

/// The SHA-256 of a token. Tokens are long random strings, so a fast hash is enough.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn to_stored(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// Whether `presented` is the token, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        bool::from(Self::of(presented).0.ct_eq(&self.0))
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(****)")
    }
}

/// A new random token for `role`: `spr_<role>_` + 43 base64url characters (32 bytes).
pub fn generate(role: Role) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("spr_{}_{}", role.as_str(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The hashes in force for both roles.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub admin: TokenHash,
    pub ingest: TokenHash,
}

impl Credentials {
    /// The role a presented token has, if any. Both hashes are always compared.
    pub fn role_of(&self, presented: &str) -> Option<Role> {
        let admin = self.admin.matches(presented);
        let ingest = self.ingest.matches(presented);
        if admin {
            Some(Role::Admin)
        } else if ingest {
            Some(Role::Ingest)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_known_by_their_hash_only() {
        let admin = generate(Role::Admin);
        let ingest = generate(Role::Ingest);
        assert!(admin.starts_with("spr_admin_") && admin.len() == 10 + 43);
        let credentials = Credentials { admin: TokenHash::of(&admin), ingest: TokenHash::of(&ingest) };
        assert_eq!(credentials.role_of(&admin), Some(Role::Admin));
        assert_eq!(credentials.role_of(&ingest), Some(Role::Ingest));
        assert_eq!(credentials.role_of("spr_admin_guess"), None);
        assert_eq!(credentials.role_of(""), None);
        let stored = credentials.admin.to_stored();
        assert!(!stored.contains(&admin));
        assert_eq!(TokenHash::from_stored(&stored), Some(credentials.admin.clone()));
        assert!(!format!("{credentials:?}").contains(&stored));
    }
}
