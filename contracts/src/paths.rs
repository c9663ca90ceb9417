//! Which directory names from the context are acceptable: validation only; the files
//! themselves are made by the step runtime (`groundup-runtime`'s `files`).

use std::path::{Component, Path};

use crate::error::ContextError;

/// A directory name from the context must be a plain relative path inside the cluster's home
/// (not `.`, not absolute, no `..`), unless the user allowed otherwise.
pub fn check_dir(field: &str, dir: &str, allow_outside: bool) -> Result<(), ContextError> {
    if allow_outside && !dir.is_empty() {
        return Ok(());
    }
    if is_plain_relative(Path::new(dir)) {
        return Ok(());
    }
    Err(ContextError::field(
        field,
        format!("`{dir}` must be a directory name inside the cluster's directory (not `.`, absolute or with `..`); set params.pki.allow_outside_dir (init --allow-outside-dir) to use it anyway"),
    ))
}

/// Non-empty, relative, and only normal components: it names something strictly inside.
pub fn is_plain_relative(path: &Path) -> bool {
    path.components().next().is_some() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

/// The one test of a name that becomes a file name: letters, digits, `.`, `_` and `-`,
/// starting with a letter or digit, at most 100 characters; so never a path (`/`), a hidden
/// file, `.` or `..`.
pub fn is_plain_name(name: &str) -> bool {
    let first_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    first_ok && rest_ok && name.len() <= 100
}

/// [`is_plain_name`], as an error naming the field (exit code 2 in a step).
pub fn check_plain_name(field: &str, name: &str) -> Result<(), ContextError> {
    if is_plain_name(name) {
        Ok(())
    } else {
        Err(ContextError::field(
            field,
            format!("{name:?} is not a plain file name (letters, digits, `.`, `_`, `-`, starting with a letter or digit, at most 100); it becomes a path, so nothing was written"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_dirs_pass_unless_allowed() {
        for good in ["pki", "a/pki", "pki-b"] {
            assert!(check_dir("params.pki.dir", good, false).is_ok(), "{good}");
        }
        for bad in [".", "", "/etc", "../x", "a/../../b", "./"] {
            let error = check_dir("params.pki.dir", bad, false).unwrap_err().to_string();
            assert!(error.contains("params.pki.dir") && error.contains("allow_outside_dir"), "{bad}: {error}");
        }
        assert!(check_dir("params.pki.dir", "/tmp/x", true).is_ok());
    }

    #[test]
    fn only_plain_names_become_file_names() {
        for good in ["ca", "k8s-cluster-worker-0", "ip-172-31-0-10", "my_app.v2"] {
            assert!(check_plain_name("f", good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", ".hidden", "../../x/evil", "a/b", "-rf", "a\0b", "a\nb", "ü"] {
            let error = check_plain_name("compute.nodes[1].name", bad).unwrap_err().to_string();
            assert!(error.contains("compute.nodes[1].name"), "{bad:?}: {error}");
        }
    }
}
