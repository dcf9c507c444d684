//! The user directory: who exists, their role and their password hash.

use std::{collections::HashMap, fmt, path::Path, str::FromStr, sync::Arc};

use serde::{Deserialize, Serialize};

/// What a user may do. Authorization in both servers is exactly this: `/admin` needs
/// [`Role::Admin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UsersError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            other => Err(UsersError::UnknownRole(other.to_owned())),
        }
    }
}

/// One account. Cheap to clone: the name and the hash are shared.
#[derive(Clone, Debug)]
pub struct User {
    pub name: Arc<str>,
    pub role: Role,
    /// argon2id hash in PHC string format.
    pub password_hash: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("unknown role {0:?} (expected \"admin\" or \"user\")")]
    UnknownRole(String),
    #[error("{path}:{line}: {reason}")]
    BadLine { path: String, line: usize, reason: String },
    #[error("cannot read users file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("duplicate user {0:?}")]
    Duplicate(String),
    #[error("no users: give --demo-users N (N > 0) or --users-file FILE")]
    Empty,
}

/// All known users, by name.
#[derive(Clone, Debug, Default)]
pub struct UserDirectory {
    users: Arc<HashMap<Arc<str>, User>>,
}

impl UserDirectory {
    pub fn from_users(users: impl IntoIterator<Item = User>) -> Result<Self, UsersError> {
        let mut map = HashMap::new();
        for user in users {
            if let Some(previous) = map.insert(user.name.clone(), user) {
                return Err(UsersError::Duplicate(previous.name.to_string()));
            }
        }
        Ok(Self { users: Arc::new(map) })
    }

    /// `user0 … user{n-1}`, all sharing one hash of the demo password (hashing it once is
    /// what lets 100 000 demo users start in well under a second). `user{i}` is an admin
    /// when `i % 10 == 0`.
    pub fn demo(n: u32, shared_hash: &str) -> Self {
        let hash: Arc<str> = Arc::from(shared_hash);
        let map = (0..n)
            .map(|i| {
                let name: Arc<str> = Arc::from(format!("user{i}"));
                let role = if i % 10 == 0 { Role::Admin } else { Role::User };
                (name.clone(), User { name, role, password_hash: hash.clone() })
            })
            .collect();
        Self { users: Arc::new(map) }
    }

    /// Parse a users file: one `name:role:phc-hash` per line; blank lines and lines
    /// starting with `#` are ignored. Produce hashes with `<server> hash-password`.
    pub fn parse(path_label: &str, text: &str) -> Result<Vec<User>, UsersError> {
        let mut users = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| UsersError::BadLine { path: path_label.to_owned(), line: i + 1, reason };
            let mut parts = line.splitn(3, ':');
            let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("expected name:role:phc-hash".into()));
            };
            if name.is_empty() || name.len() > 128 {
                return Err(bad("user name must be 1 to 128 bytes".into()));
            }
            let role = role.parse::<Role>().map_err(|e| bad(e.to_string()))?;
            if let Err(e) = argon2::PasswordHash::new(hash) {
                return Err(bad(format!("not a PHC hash string: {e}")));
            }
            users.push(User { name: Arc::from(name), role, password_hash: Arc::from(hash) });
        }
        Ok(users)
    }

    pub fn load_file(path: &Path) -> Result<Vec<User>, UsersError> {
        let label = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read { path: label.clone(), source })?;
        Self::parse(&label, &text)
    }

    /// Merge demo users and users from a file into one directory.
    pub fn merge(demo: UserDirectory, extra: Vec<User>) -> Result<Self, UsersError> {
        let all = demo.users.values().cloned().chain(extra);
        let dir = Self::from_users(all)?;
        if dir.is_empty() {
            return Err(UsersError::Empty);
        }
        Ok(dir)
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.get(name)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Every user, in name order.
    pub fn iter(&self) -> impl Iterator<Item = &User> {
        let mut all: Vec<&User> = self.users.values().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all.into_iter()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::password::{HashParams, hash_password};

    fn phc() -> String {
        hash_password("pw", HashParams { memory_kib: 64, iterations: 1, parallelism: 1 }).unwrap()
    }

    #[test]
    fn demo_users_have_the_documented_roles() {
        let dir = UserDirectory::demo(25, "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA");
        assert_eq!(dir.len(), 25);
        assert_eq!(dir.get("user0").map(|u| u.role), Some(Role::Admin));
        assert_eq!(dir.get("user10").map(|u| u.role), Some(Role::Admin));
        assert_eq!(dir.get("user11").map(|u| u.role), Some(Role::User));
        assert!(dir.get("user25").is_none());
    }

    #[test]
    fn users_file_lines_are_parsed_and_errors_name_the_line() {
        let ok = format!("# comment\n\nalice:admin:{}\n", phc());
        let users = UserDirectory::parse("f", &ok).unwrap();
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].role, Role::Admin);

        let bad_role = format!("bob:root:{}", phc());
        let err = UserDirectory::parse("f", &bad_role).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("f:1: unknown role \"root\" (expected \"admin\" or \"user\")"));

        let bad_hash = "\ncarol:user:plaintext";
        let err = UserDirectory::parse("f", bad_hash).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.starts_with("f:2: not a PHC hash string"), "{err}");
    }

    #[test]
    fn duplicates_and_empty_directories_are_rejected() {
        let h = phc();
        let demo = UserDirectory::demo(2, &h);
        let dup = UserDirectory::parse("f", &format!("user1:user:{h}")).unwrap();
        assert!(matches!(UserDirectory::merge(demo, dup), Err(UsersError::Duplicate(_))));
        assert!(matches!(UserDirectory::merge(UserDirectory::default(), vec![]), Err(UsersError::Empty)));
    }
}
