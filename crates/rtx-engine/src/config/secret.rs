//! Credentials in the configuration: [`Secret`] for tokens (and values that carry passwords) and
//! [`SecretUrl`] for URLs that may carry a `user:password@`. Their `Debug` and `Display` never
//! show the credential, and they are not `Serialize`; only `expose()` gives it, at the one place
//! that sends or compares it.

use serde::Deserialize;

/// A credential (a bearer token, or a value that carries passwords): `Debug` and `Display`
/// show `<redacted>`, so `check-config` and any log of the configuration cannot leak it; the
/// value itself only comes out through [`Secret::expose`]. Deliberately not `Serialize`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A URL that may carry `user:password@` credentials (the database's, an Alertmanager's),
/// whose password `Debug` and `Display` hide.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(String);

impl From<String> for SecretUrl {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for SecretUrl {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl SecretUrl {
    /// The URL to connect with.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced, for logs.
    pub fn redacted(&self) -> String {
        format!("{self:?}").trim_matches('"').to_owned()
    }

    /// The user and password of a `scheme://user:password@host/…` URL.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        split_userinfo(&self.0).and_then(|(_, userinfo, _)| userinfo.split_once(':'))
    }

    /// The URL without its `user[:password]@` part, for a client that sends the credentials
    /// apart from the URL.
    pub fn without_userinfo(&self) -> String {
        match split_userinfo(&self.0) {
            Some((scheme, _, rest)) => format!("{scheme}{rest}"),
            None => self.0.clone(),
        }
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // scheme://user:password@host/… shows as scheme://user:<redacted>@host/…
        match (split_userinfo(&self.0), self.credentials()) {
            (Some((scheme, _, rest)), Some((user, _))) => {
                write!(f, "\"{scheme}{user}:<redacted>@{rest}\"")
            }
            _ => write!(f, "{:?}", self.0),
        }
    }
}

/// Splits `scheme://userinfo@rest` into `scheme://`, `userinfo` and `rest`; `None` when the URL
/// has no userinfo.
fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let scheme_end = url.find("://")? + 3;
    let at = url.rfind('@').filter(|&at| at >= scheme_end)?;
    Some((&url[..scheme_end], &url[scheme_end..at], &url[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_out_of_a_url_and_the_url_keeps_the_rest() {
        let url = SecretUrl("http://am:p@ss@alertmanager:9093/base".into());
        assert_eq!(url.credentials(), Some(("am", "p@ss")));
        assert_eq!(url.without_userinfo(), "http://alertmanager:9093/base");
        assert_eq!(
            url.redacted(),
            "http://am:<redacted>@alertmanager:9093/base"
        );

        let user_only = SecretUrl("postgres://rtx@db/rtx".into());
        assert_eq!(user_only.credentials(), None);
        assert_eq!(user_only.without_userinfo(), "postgres://db/rtx");
        assert_eq!(user_only.redacted(), "postgres://rtx@db/rtx");

        let plain = SecretUrl("sqlite://data/rtx.db".into());
        assert_eq!(plain.credentials(), None);
        assert_eq!(plain.without_userinfo(), "sqlite://data/rtx.db");
        assert_eq!(plain.redacted(), "sqlite://data/rtx.db");
    }
}
