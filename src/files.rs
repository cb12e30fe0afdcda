//! Output files and folders: checked before any work starts, written through a temporary name and a
//! rename (so a reader never sees half a file, and a failure leaves nothing behind), and never put in
//! place of an existing one unless the user passed `--force`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// The folder a path's file goes into ("." for a bare file name).
fn parent_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// A file that is about to be written: not a folder, in a folder that exists, and new unless
/// `force`. `extensions` (lower case, e.g. `["png"]`) are the formats the command writes.
pub fn check_new_file(path: &Path, force: bool, extensions: &[&str]) -> Result<()> {
    if path.is_dir() {
        bail!("{} is a folder, not a file to write", path.display());
    }
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !extensions.is_empty() && !extensions.contains(&extension.as_str()) {
        bail!(
            "output '{}' must end in {}",
            path.display(),
            extensions
                .iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(" or ")
        );
    }
    let folder = parent_of(path);
    if !folder.is_dir() {
        bail!(
            "cannot write {}: the folder {} does not exist",
            path.display(),
            folder.display()
        );
    }
    if path.exists() && !force {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    Ok(())
}

/// A folder that files are about to be written into (created if missing): not a file, and, unless
/// `force`, holding none of `names` yet.
pub fn check_output_folder(dir: &Path, force: bool, names: &[String]) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{} exists and is not a folder", dir.display());
    }
    if !force && let Some(taken) = names.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
        bail!("{} exists; pass --force to replace it", taken.display());
    }
    let mut base = dir;
    while !base.exists() {
        base = parent_of(base);
    }
    if !base.is_dir() {
        bail!(
            "cannot create the folder {}: {} is a file",
            dir.display(),
            base.display()
        );
    }
    Ok(())
}

/// A bundle folder that is about to be written: refused when it already holds a bundle (or anything
/// else that is not an empty folder) unless `force`.
pub fn check_new_bundle(dir: &Path, force: bool) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{} exists and is not a folder", dir.display());
    }
    let occupied = dir.is_dir()
        && std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_some();
    if occupied && !force {
        bail!(
            "{} already exists and is not empty; pass --force to replace it",
            dir.display()
        );
    }
    check_output_folder(parent_of(dir), true, &[])
}

fn sibling(path: &Path, tag: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{tag}-{}", std::process::id()))
}

/// Writes a file through a temporary sibling and a rename; the temporary file is removed when
/// `write` fails (e.g. a full disk).
pub fn write_file_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = sibling(path, "tmp");
    if let Err(error) = write(&tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(error);
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot move {} into place: {e}", path.display())
    })
}

/// Writes a whole folder (a bundle) into a temporary sibling, then puts it in place of `dir` (an
/// existing one is replaced only after the new one is complete). On failure nothing changes.
pub fn write_dir_atomic(dir: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = sibling(dir, "partial");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    if let Err(error) = write(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(error);
    }
    let old = sibling(dir, "old");
    let replacing = dir.exists();
    if replacing {
        std::fs::rename(dir, &old)
            .with_context(|| format!("cannot move the old {} aside", dir.display()))?;
    }
    if let Err(error) = std::fs::rename(&tmp, dir) {
        if replacing {
            let _ = std::fs::rename(&old, dir);
        }
        let _ = std::fs::remove_dir_all(&tmp);
        bail!("cannot move {} into place: {error}", dir.display());
    }
    if replacing {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}
