//! Filesystem operations that never block a worker thread: each call runs the
//! matching `std::fs` call on the blocking pool ([`crate::unblock`]) and parks
//! the calling fiber until it is done. Names and signatures follow `std::fs`,
//! so porting code is a change of `use` lines.
//!
//! On a plain thread (outside any fiber) every call simply runs in place, as
//! `std::fs` would.
//!
//! Differences from `std::fs`, all on purpose:
//! - An error from a call that takes a path names the operation and the path,
//!   e.g. ``failed to open file `/etc/missing`: No such file or directory (os
//!   error 2)``. Its [`io::ErrorKind`] is the original one, and the original
//!   error (with its `raw_os_error`) is the wrapper's `source()`.
//! - [`read_dir`] reads the whole directory on the pool and returns the
//!   collected entries; [`DirEntry::metadata`] goes through the pool again.
//! - [`File`] operations copy data through a buffer the pool thread owns (at
//!   most 2 MiB per call; `read_to_end`, `write_all` and friends loop), so a
//!   cancelled fiber never leaves the pool writing into freed memory.
//!
//! Design (no shared protocol lives here): every function moves owned copies
//! of its arguments into a closure for `unblock`; [`File`] holds its
//! `std::fs::File` in an `Arc` so that a call still running on the pool (after
//! its fiber was cancelled) keeps the descriptor open until it finishes.

mod file;

pub use file::{File, OpenOptions};
pub use std::fs::{FileType, Metadata, Permissions};

use std::error::Error;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blocking::{runs_inline, unblock};

/// An error from a path-taking call: the operation, the path(s), the cause.
#[derive(Debug)]
struct PathError {
    op: &'static str,
    path: PathBuf,
    to: Option<PathBuf>,
    source: io::Error,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to {} `{}`", self.op, self.path.display())?;
        if let Some(to) = &self.to {
            write!(f, " to `{}`", to.display())?;
        }
        write!(f, ": {}", self.source)
    }
}

impl Error for PathError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// Wraps `e` so that its message names `op` and `path` (see module docs).
pub(crate) fn path_error(op: &'static str, path: &Path, e: io::Error) -> io::Error {
    let kind = e.kind();
    io::Error::new(
        kind,
        PathError {
            op,
            path: path.to_owned(),
            to: None,
            source: e,
        },
    )
}

/// As [`path_error`], for calls with a source and a destination.
fn paths_error(op: &'static str, from: &Path, to: &Path, e: io::Error) -> io::Error {
    let kind = e.kind();
    io::Error::new(
        kind,
        PathError {
            op,
            path: from.to_owned(),
            to: Some(to.to_owned()),
            source: e,
        },
    )
}

/// Runs `f(&path)` on the pool; an error names `op` and the path.
fn on_path<T, F>(op: &'static str, path: &Path, f: F) -> io::Result<T>
where
    F: FnOnce(&Path) -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let path = path.to_owned();
    unblock(move || f(&path).map_err(|e| path_error(op, &path, e)))
}

/// Runs `f(&from, &to)` on the pool; an error names `op` and both paths.
fn on_paths<T, F>(op: &'static str, from: &Path, to: &Path, f: F) -> io::Result<T>
where
    F: FnOnce(&Path, &Path) -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let (from, to) = (from.to_owned(), to.to_owned());
    unblock(move || f(&from, &to).map_err(|e| paths_error(op, &from, &to, e)))
}

/// Reads the whole file at `path`, like [`std::fs::read`].
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    on_path("read", path.as_ref(), |p| std::fs::read(p))
}

/// Reads the whole file at `path` as UTF-8, like [`std::fs::read_to_string`].
pub fn read_to_string<P: AsRef<Path>>(path: P) -> io::Result<String> {
    on_path("read", path.as_ref(), |p| std::fs::read_to_string(p))
}

/// Writes `contents` to the file at `path`, creating or truncating it, like
/// [`std::fs::write`]. The bytes are copied once, for the pool thread.
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    let path = path.as_ref();
    if runs_inline() {
        return std::fs::write(path, contents).map_err(|e| path_error("write", path, e));
    }
    let contents = contents.as_ref().to_vec();
    on_path("write", path, move |p| std::fs::write(p, contents))
}

/// The metadata of `path`, following symlinks, like [`std::fs::metadata`].
pub fn metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    on_path("read metadata of", path.as_ref(), |p| std::fs::metadata(p))
}

/// The metadata of `path` itself (not following a symlink), like
/// [`std::fs::symlink_metadata`].
pub fn symlink_metadata<P: AsRef<Path>>(path: P) -> io::Result<Metadata> {
    on_path("read metadata of", path.as_ref(), |p| {
        std::fs::symlink_metadata(p)
    })
}

/// Does `path` exist? Like `std::fs::exists` (and `Path::try_exists`): a
/// broken symlink is `Ok(false)`, an unreadable parent is an error.
pub fn exists<P: AsRef<Path>>(path: P) -> io::Result<bool> {
    on_path("check existence of", path.as_ref(), |p| p.try_exists())
}

/// Removes a file, like [`std::fs::remove_file`].
pub fn remove_file<P: AsRef<Path>>(path: P) -> io::Result<()> {
    on_path("remove file", path.as_ref(), |p| std::fs::remove_file(p))
}

/// Removes an empty directory, like [`std::fs::remove_dir`].
pub fn remove_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    on_path("remove directory", path.as_ref(), |p| {
        std::fs::remove_dir(p)
    })
}

/// Removes a directory and everything in it, like [`std::fs::remove_dir_all`].
pub fn remove_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    on_path("remove directory", path.as_ref(), |p| {
        std::fs::remove_dir_all(p)
    })
}

/// Creates a directory, like [`std::fs::create_dir`].
pub fn create_dir<P: AsRef<Path>>(path: P) -> io::Result<()> {
    on_path("create directory", path.as_ref(), |p| {
        std::fs::create_dir(p)
    })
}

/// Creates a directory and any missing parents, like
/// [`std::fs::create_dir_all`].
pub fn create_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    on_path("create directory", path.as_ref(), |p| {
        std::fs::create_dir_all(p)
    })
}

/// Renames `from` to `to`, replacing `to` if it exists, like
/// [`std::fs::rename`].
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    on_paths("rename", from.as_ref(), to.as_ref(), |f, t| {
        std::fs::rename(f, t)
    })
}

/// Copies the contents and permissions of `from` to `to`; returns the number
/// of bytes copied, like [`std::fs::copy`].
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<u64> {
    on_paths("copy", from.as_ref(), to.as_ref(), |f, t| {
        std::fs::copy(f, t)
    })
}

/// Creates a hard link `link` to `original`, like [`std::fs::hard_link`].
pub fn hard_link<P: AsRef<Path>, Q: AsRef<Path>>(original: P, link: Q) -> io::Result<()> {
    on_paths("hard-link", original.as_ref(), link.as_ref(), |o, l| {
        std::fs::hard_link(o, l)
    })
}

/// The absolute path with all symlinks resolved, like
/// [`std::fs::canonicalize`].
pub fn canonicalize<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    on_path("canonicalize", path.as_ref(), |p| std::fs::canonicalize(p))
}

/// The target of a symlink, like [`std::fs::read_link`].
pub fn read_link<P: AsRef<Path>>(path: P) -> io::Result<PathBuf> {
    on_path("read link", path.as_ref(), |p| std::fs::read_link(p))
}

/// Sets the permissions of `path`, like [`std::fs::set_permissions`].
pub fn set_permissions<P: AsRef<Path>>(path: P, perm: Permissions) -> io::Result<()> {
    on_path("set permissions of", path.as_ref(), move |p| {
        std::fs::set_permissions(p, perm)
    })
}

/// The entries of a directory, like [`std::fs::read_dir`], read in full on the
/// blocking pool (the returned iterator does no IO).
pub fn read_dir<P: AsRef<Path>>(path: P) -> io::Result<ReadDir> {
    on_path("read directory", path.as_ref(), |p| {
        let entries = std::fs::read_dir(p)?
            .map(|entry| {
                entry.map(|inner| DirEntry {
                    file_type: inner.file_type().ok(),
                    inner: Arc::new(inner),
                })
            })
            .collect::<Vec<_>>();
        Ok(ReadDir {
            entries: entries.into_iter(),
        })
    })
}

/// The entries of a directory, returned by [`read_dir`]. Like
/// `std::fs::ReadDir`, an iterator of `io::Result<DirEntry>`, in no
/// particular order, without `.` and `..`.
#[derive(Debug)]
pub struct ReadDir {
    entries: std::vec::IntoIter<io::Result<DirEntry>>,
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        self.entries.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

/// One entry of a directory, like `std::fs::DirEntry`.
#[derive(Debug, Clone)]
pub struct DirEntry {
    inner: Arc<std::fs::DirEntry>,
    /// Read while listing (free on most filesystems); `None` if that failed.
    file_type: Option<FileType>,
}

impl DirEntry {
    /// The full path of the entry (the directory's path joined with the name).
    pub fn path(&self) -> PathBuf {
        self.inner.path()
    }

    /// The bare file name of the entry.
    pub fn file_name(&self) -> OsString {
        self.inner.file_name()
    }

    /// The entry's metadata, not following a symlink (on the blocking pool).
    pub fn metadata(&self) -> io::Result<Metadata> {
        let inner = self.inner.clone();
        unblock(move || {
            inner
                .metadata()
                .map_err(|e| path_error("read metadata of", &inner.path(), e))
        })
    }

    /// The entry's file type, not following a symlink.
    pub fn file_type(&self) -> io::Result<FileType> {
        if let Some(file_type) = self.file_type {
            return Ok(file_type);
        }
        let inner = self.inner.clone();
        unblock(move || {
            inner
                .file_type()
                .map_err(|e| path_error("read file type of", &inner.path(), e))
        })
    }
}
