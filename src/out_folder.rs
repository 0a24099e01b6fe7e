//! Which folders rulepack may replace. `build` and `package` swap a whole folder in: pointed at
//! `.`, `/`, `..` or a folder that holds the rules, that would destroy the project (and a
//! folder inside the rules would be read back as rules). Such folders are refused before
//! anything is written.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Refuses `out` when it names no folder of its own (`.`, `..`, `/`, `rules/..`), is the
/// filesystem root, holds the working folder or one of `inputs`, or lies inside an input.
pub fn check(out: &Path, inputs: &[&Path]) -> io::Result<()> {
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "refusing to replace `{}`: {why}; name a folder of its own, such as `out`",
                out.display()
            ),
        ))
    };
    if !matches!(out.components().next_back(), Some(Component::Normal(_))) {
        return refuse("it does not name a folder of its own (it ends in `.`, `..` or `/`)");
    }
    let target = resolve(out)?;
    if target.parent().is_none() {
        return refuse("it is the filesystem root");
    }
    let cwd = resolve(Path::new("."))?;
    if cwd.starts_with(&target) {
        return refuse("it holds the working folder");
    }
    for input in inputs {
        let input = resolve(input)?;
        if input.starts_with(&target) {
            return refuse(&format!("it holds the input folder `{}`", input.display()));
        }
        if target.starts_with(&input) {
            return refuse(&format!(
                "it is inside the input folder `{}`",
                input.display()
            ));
        }
    }
    Ok(())
}

/// The absolute path `p` stands for, links resolved as far as the path exists, the rest
/// normalised by its names.
fn resolve(p: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(p)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(existing) {
            let mut out = real;
            for c in rest.iter().rev() {
                match c {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(n) => out.push(n),
                    _ => {}
                }
            }
            return Ok(out);
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => return Ok(absolute),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_that_hold_the_project_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        let inputs = [rules.as_path()];
        for bad in [
            ".",
            "..",
            "/",
            "rules/..",
            "rules/x/..",
            "rules/out",
            "rules",
        ] {
            let out = if bad.starts_with('/') {
                PathBuf::from(bad)
            } else {
                dir.path().join(bad)
            };
            assert!(check(&out, &inputs).is_err(), "{bad} accepted");
        }
        assert!(check(&dir.path().join("out"), &inputs).is_ok());
        assert!(check(&dir.path().join("new/deeper/out"), &inputs).is_ok());
        assert!(check(&dir.path().join("rules/../out"), &inputs).is_ok());
    }
}
