//! What may become a file name, a DNS name or a subject field. Node names and hostnames come
//! from the context and custom names from a CSR file's name, so none of them is trusted.

use crate::error::PkiError;

/// A plain file name (see [`groundup_contracts::paths::is_plain_name`], the one test):
/// never a path, a hidden file or `..`.
pub fn plain(name: &str) -> Result<(), PkiError> {
    if groundup_contracts::paths::is_plain_name(name) {
        Ok(())
    } else {
        Err(PkiError::Input(format!(
            "{name:?} is not a plain file name (letters, digits, `.`, `_`, `-`, starting with a letter or digit, at most 100)"
        )))
    }
}

/// The files a certificate named `name` has in the store.
fn files(name: &str) -> [String; 3] {
    [format!("{name}.pem"), format!("{name}-key.pem"), format!("{name}.csr")]
}

/// Whether two certificates would share a file (`x-key` and `x` share `x-key.pem`).
pub fn collide(a: &str, b: &str) -> bool {
    let theirs = files(b);
    files(a).iter().any(|f| theirs.contains(f))
}

/// A host name for a SAN: dot-separated labels of letters, digits and inner `-`; a wildcard
/// only as the whole leftmost label of a name with at least two more.
pub fn dns(name: &str) -> Result<(), PkiError> {
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = groundup_contracts::params::is_dns_label;
    let wildcard_ok = labels[0] == "*" && labels.len() >= 3;
    let first_ok = label_ok(labels[0]) || wildcard_ok;
    if name.len() <= 253 && first_ok && labels[1..].iter().all(|l| label_ok(l)) {
        Ok(())
    } else {
        Err(PkiError::Input(format!("{name:?} is not a DNS name")))
    }
}

/// A host name that is also a plain file name (no wildcard): a node's name.
pub fn hostname(name: &str) -> Result<(), PkiError> {
    dns(name).and_then(|()| plain(name)).map_err(|_| PkiError::Input(format!("{name:?} is not a host name")))
}

/// A subject field (CN, O, ...): 1 to 64 characters (X.509's bound), no control characters.
pub fn subject_field(field: &str, value: &str) -> Result<(), PkiError> {
    if value.is_empty() || value.chars().count() > 64 || value.chars().any(char::is_control) {
        Err(PkiError::Input(format!("{field} {value:?} must be 1 to 64 characters without control characters")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_become_file_names() {
        for good in ["ca", "k8s-cluster-worker-0", "ip-172-31-0-10", "my_app.v2"] {
            assert!(plain(good).is_ok(), "{good}");
        }
        for bad in ["", "..", ".hidden", "../../x/evil", "a/b", "-rf", "a\0b", "a\nb", "ü"] {
            assert!(plain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_sharing_a_file_collide() {
        assert!(collide("ca", "ca"));
        assert!(collide("ca-key", "ca") && collide("ca", "ca-key"));
        assert!(!collide("ca", "etcd-ca") && !collide("admin", "admin2"));
    }

    #[test]
    fn dns_names_and_hostnames() {
        for good in ["localhost", "my-app.internal", "*.apps.example.com", "ip-172-31-0-10"] {
            assert!(dns(good).is_ok(), "{good}");
        }
        for bad in ["*", "*.com", "a..b", "-a.b", "a b", "a\nb", "a\0", "", "a.*.b", "x/../y"] {
            assert!(dns(bad).is_err(), "{bad:?}");
        }
        assert!(hostname("ip-172-31-0-10").is_ok());
        assert!(hostname("*.example.com").is_err() && hostname("../../x/evil").is_err());
    }

    #[test]
    fn subject_fields_have_no_control_characters() {
        assert!(subject_field("CN", "system:node:ip-1").is_ok());
        for bad in ["", "a\0b", "a\nb", &"x".repeat(65)] {
            assert!(subject_field("CN", bad).is_err(), "{bad:?}");
        }
    }
}
