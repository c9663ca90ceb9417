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
}
