//! Acting identity (SPEC §3): the `user_id` and `group_id` headers.
//!
//! filegate follows the product, whose server-side clients send an admin token with
//! `user_id`:
//! - an admin token may set `user_id` (act as that user) and/or `group_id` (act as
//!   admin of that group, which its `groups` claim must include; no claim = all);
//! - a user (or store) token may set `user_id` only to its own `sub`, and no `group_id`;
//! - an sdk_sign carries no identity, so neither header may come with it.

use crate::auth::principal::Principal;
use crate::error::ApiError;

/// Who a request acts as, after the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The verified credential.
    pub principal: Principal,
    /// The user the request acts as (the uploader, for uploads), if any.
    pub user_id: Option<i64>,
    /// The group an admin acts for, if any.
    pub group_id: Option<i64>,
}

impl Actor {
    /// The acting user: `user_id` when set, else the token's own `sub`.
    pub fn acting_user(&self) -> Option<i64> {
        self.user_id.or(self.principal.sub())
    }

    /// Whether this actor may administer `group_id` (group avatars).
    pub fn administers(&self, group_id: i64) -> bool {
        match &self.principal {
            Principal::Admin { groups, .. } => {
                groups.as_ref().is_none_or(|g| g.contains(&group_id))
            }
            _ => false,
        }
    }

    /// For access logs: `user:42`, `admin:1 as user:42`, `sdk_sign`.
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Actor {
    /// `user:42`, `admin:1 as user:42`, `admin:1 for group:7`, `sdk_sign`: never the
    /// credential itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.principal {
            Principal::User { sub } => write!(f, "user:{sub}")?,
            Principal::Admin { sub, .. } => write!(f, "admin:{sub}")?,
            Principal::Store { sub, .. } => write!(f, "store:{sub}")?,
            Principal::SignedUrl => f.write_str("sdk_sign")?,
        }
        if let Some(u) = self.user_id {
            if self.principal.sub() != Some(u) {
                write!(f, " as user:{u}")?;
            }
        }
        if let Some(g) = self.group_id {
            write!(f, " for group:{g}")?;
        }
        Ok(())
    }
}

/// Applies the rules to the `user_id` / `group_id` headers.
pub fn resolve_actor(
    principal: Principal,
    user_id: Option<i64>,
    group_id: Option<i64>,
) -> Result<Actor, ApiError> {
    match &principal {
        Principal::Admin { groups, .. } => {
            if let (Some(g), Some(allowed)) = (group_id, groups) {
                if !allowed.contains(&g) {
                    return Err(ApiError::forbidden(format!(
                        "group_id: this admin token does not administer group {g}"
                    )));
                }
            }
        }
        Principal::User { sub } | Principal::Store { sub, .. } => {
            if let Some(u) = user_id {
                if u != *sub {
                    return Err(ApiError::forbidden(
                        "user_id: a user token may set user_id only to its own id",
                    ));
                }
            }
            if group_id.is_some() {
                return Err(ApiError::forbidden(
                    "group_id: only an admin token may act for a group",
                ));
            }
        }
        Principal::SignedUrl => {
            if user_id.is_some() || group_id.is_some() {
                return Err(ApiError::forbidden(
                    "user_id/group_id: an sdk_sign carries no identity; send an access token to act as someone",
                ));
            }
        }
    }
    Ok(Actor {
        principal,
        user_id,
        group_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let admin_all = Principal::Admin {
            sub: 1,
            groups: None,
        };
        let admin_some = Principal::Admin {
            sub: 1,
            groups: Some(vec![10]),
        };
        let user = Principal::User { sub: 42 };
        assert!(resolve_actor(admin_all.clone(), Some(42), Some(99)).is_ok());
        assert!(resolve_actor(admin_some.clone(), None, Some(10)).is_ok());
        assert_eq!(
            resolve_actor(admin_some, None, Some(11))
                .unwrap_err()
                .code(),
            10010
        );
        assert!(resolve_actor(user.clone(), Some(42), None).is_ok());
        assert_eq!(
            resolve_actor(user.clone(), Some(43), None)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            resolve_actor(user, None, Some(10)).unwrap_err().status(),
            403
        );
        let a = resolve_actor(admin_all, Some(42), None).unwrap();
        assert_eq!(a.acting_user(), Some(42));
        assert_eq!(a.describe(), "admin:1 as user:42");
    }
}
