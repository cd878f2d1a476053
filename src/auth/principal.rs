//! Who a verified credential names ([`Principal`]), before the acting-identity rules.

/// A verified credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// Access token of a user.
    User {
        /// The user id.
        sub: i64,
    },
    /// Access token of an admin.
    Admin {
        /// The admin's id.
        sub: i64,
        /// Groups administered; `None` = all groups of the app.
        groups: Option<Vec<i64>>,
    },
    /// Store token: downloads only.
    Store {
        /// The user id.
        sub: i64,
        /// Object key or prefix the token is limited to.
        obj: Option<String>,
    },
    /// A valid sdk_sign: this exact URL, no identity.
    SignedUrl,
}

impl Principal {
    /// The token's `sub`, if it has one.
    pub fn sub(&self) -> Option<i64> {
        match self {
            Principal::User { sub }
            | Principal::Admin { sub, .. }
            | Principal::Store { sub, .. } => Some(*sub),
            Principal::SignedUrl => None,
        }
    }
}
