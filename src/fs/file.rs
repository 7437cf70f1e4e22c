//! [`File`] and [`OpenOptions`]: `std::fs::File` with every call on the
//! blocking pool.
//!
//! Ownership: the `std::fs::File` lives in an `Arc`. Each pool call gets a
//! clone of it plus an owned buffer, so if the calling fiber is cancelled
//! mid-call the pool thread still holds a valid descriptor and its own memory;
//! the descriptor closes when the last holder drops it. On a plain thread
//! (where `unblock` runs in place) calls go straight to the std file without
//! copies.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use super::{path_error, Metadata, Permissions};
use crate::blocking::{runs_inline, unblock};

/// Most bytes one pool call reads or writes.
const MAX_CHUNK: usize = 2 * 1024 * 1024;

/// An open file whose operations run on the blocking pool, like
/// `std::fs::File`. `Read`, `Write` and `Seek` are implemented for `File` and
/// `&File` (the cursor is shared, as with std).
pub struct File {
    std: Arc<std::fs::File>,
}

impl File {
    /// Opens a file read-only, like `std::fs::File::open`.
    pub fn open<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Opens a file write-only, creating or truncating it, like
    /// `std::fs::File::create`.
    pub fn create<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Creates a new file read-write; fails if it exists, like
    /// `std::fs::File::create_new`.
    pub fn create_new<P: AsRef<Path>>(path: P) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
    }

    /// A blank [`OpenOptions`], like `std::fs::File::options`.
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Flushes data and metadata to the device (`fsync`).
    pub fn sync_all(&self) -> io::Result<()> {
        self.call(|f| f.sync_all())
    }

    /// Flushes data to the device (`fdatasync`).
    pub fn sync_data(&self) -> io::Result<()> {
        self.call(|f| f.sync_data())
    }

    /// Truncates or extends the file to `size` bytes.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.call(move |f| f.set_len(size))
    }

    /// The file's metadata.
    pub fn metadata(&self) -> io::Result<Metadata> {
        self.call(|f| f.metadata())
    }

    /// Changes the file's permissions.
    pub fn set_permissions(&self, perm: Permissions) -> io::Result<()> {
        self.call(move |f| f.set_permissions(perm))
    }

    /// A new `File` for the same open file description (`dup`); both share
    /// the cursor.
    pub fn try_clone(&self) -> io::Result<File> {
        Ok(File::from(self.std.try_clone()?))
    }

    /// Runs `op` on the std file, on the pool (or in place on a plain thread).
    fn call<T, F>(&self, op: F) -> io::Result<T>
    where
        F: FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if runs_inline() {
            return op(&self.std);
        }
        let std = self.std.clone();
        unblock(move || op(&std))
    }

    fn read_impl(&self, buf: &mut [u8]) -> io::Result<usize> {
        if runs_inline() {
            return (&*self.std).read(buf);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(MAX_CHUNK);
        let std = self.std.clone();
        let (res, data) = unblock(move || {
            let mut data = vec![0u8; len];
            let res = (&*std).read(&mut data);
            (res, data)
        });
        let n = res?;
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn read_to_end_impl(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        if runs_inline() {
            return (&*self.std).read_to_end(buf);
        }
        let std = self.std.clone();
        let (res, data) = unblock(move || {
            let mut data = Vec::new();
            let res = (&*std).read_to_end(&mut data);
            (res, data)
        });
        if buf.is_empty() {
            *buf = data;
        } else {
            buf.extend_from_slice(&data);
        }
        res
    }

    fn read_to_string_impl(&self, buf: &mut String) -> io::Result<usize> {
        if runs_inline() {
            return (&*self.std).read_to_string(buf);
        }
        let mut bytes = Vec::new();
        let res = self.read_to_end_impl(&mut bytes);
        match String::from_utf8(bytes) {
            Ok(s) => {
                buf.push_str(&s);
                res
            }
            // Like std: invalid UTF-8 leaves `buf` unchanged.
            Err(_) => res.and_then(|_| {
                Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "stream did not contain valid UTF-8",
                ))
            }),
        }
    }

    fn write_impl(&self, buf: &[u8]) -> io::Result<usize> {
        if runs_inline() {
            return (&*self.std).write(buf);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let data = buf[..buf.len().min(MAX_CHUNK)].to_vec();
        let std = self.std.clone();
        unblock(move || (&*std).write(&data))
    }

    fn write_all_impl(&self, buf: &[u8]) -> io::Result<()> {
        if runs_inline() {
            return (&*self.std).write_all(buf);
        }
        for chunk in buf.chunks(MAX_CHUNK) {
            let data = chunk.to_vec();
            let std = self.std.clone();
            unblock(move || (&*std).write_all(&data))?;
        }
        Ok(())
    }

    fn seek_impl(&self, pos: SeekFrom) -> io::Result<u64> {
        self.call(move |mut f| f.seek(pos))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read_to_end_impl(buf)
    }
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        self.read_to_string_impl(buf)
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        self.read_to_end_impl(buf)
    }
    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        self.read_to_string_impl(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        // `File` has no user-space buffer: std's flush does nothing either.
        Ok(())
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_impl(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write_all_impl(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.seek_impl(pos)
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.seek_impl(pos)
    }
}

impl FileExt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if runs_inline() {
            return self.std.read_at(buf, offset);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(MAX_CHUNK);
        let std = self.std.clone();
        let (res, data) = unblock(move || {
            let mut data = vec![0u8; len];
            let res = std.read_at(&mut data, offset);
            (res, data)
        });
        let n = res?;
        buf[..n].copy_from_slice(&data[..n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        if runs_inline() {
            return self.std.write_at(buf, offset);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let data = buf[..buf.len().min(MAX_CHUNK)].to_vec();
        let std = self.std.clone();
        unblock(move || std.write_at(&data, offset))
    }
}

impl From<std::fs::File> for File {
    fn from(std: std::fs::File) -> File {
        File { std: Arc::new(std) }
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("std", &*self.std).finish()
    }
}

/// Options for opening a [`File`], like `std::fs::OpenOptions` (including
/// `std::os::unix::fs::OpenOptionsExt` for `mode` and `custom_flags`).
#[derive(Clone, Debug)]
pub struct OpenOptions {
    std: std::fs::OpenOptions,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// All options off, like `std::fs::OpenOptions::new`.
    pub fn new() -> OpenOptions {
        OpenOptions {
            std: std::fs::OpenOptions::new(),
        }
    }

    /// Open for reading.
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.std.read(read);
        self
    }

    /// Open for writing.
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.std.write(write);
        self
    }

    /// Open for appending (implies writing).
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.std.append(append);
        self
    }

    /// Truncate the file to 0 bytes when opened for writing.
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.std.truncate(truncate);
        self
    }

    /// Create the file if it does not exist.
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.std.create(create);
        self
    }

    /// Create the file, failing if it exists.
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.std.create_new(create_new);
        self
    }

    /// Opens `path` with these options on the blocking pool. An error names
    /// the path.
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        let path = path.as_ref().to_owned();
        let options = self.std.clone();
        crate::blocking::unblock(move || {
            options
                .open(&path)
                .map(File::from)
                .map_err(|e| path_error("open file", &path, e))
        })
    }
}

impl OpenOptionsExt for OpenOptions {
    fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.std.mode(mode);
        self
    }

    fn custom_flags(&mut self, flags: i32) -> &mut OpenOptions {
        self.std.custom_flags(flags);
        self
    }
}
