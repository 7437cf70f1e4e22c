//! Tests of `threadlet::fs`: round trips through the blocking pool, `File`,
//! directories, and errors that name their path.
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use threadlet::fs;

/// A fresh, empty directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("threadlet-fs-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn write_read_metadata_remove_on_a_fiber() {
    let dir = scratch("roundtrip");
    let path = dir.join("hello.txt");
    let (bytes, text, len, gone) = threadlet::run(move || {
        fs::write(&path, b"hello, fibers").unwrap();
        let bytes = fs::read(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        fs::remove_file(&path).unwrap();
        (bytes, text, len, !fs::exists(&path).unwrap())
    });
    assert_eq!(bytes, b"hello, fibers");
    assert_eq!(text, "hello, fibers");
    assert_eq!(len, 13);
    assert!(gone);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn missing_file_errors_name_the_path() {
    let dir = scratch("missing");
    let path = dir.join("no-such-file");
    let errors = threadlet::run(move || {
        vec![
            fs::read(&path).unwrap_err(),
            fs::metadata(&path).unwrap_err(),
            fs::remove_file(&path).unwrap_err(),
            fs::File::open(&path).unwrap_err(),
        ]
    });
    for e in errors {
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let msg = e.to_string();
        assert!(
            msg.contains("no-such-file"),
            "message lacks the path: {msg}"
        );
        let source = std::error::Error::source(e.get_ref().unwrap()).unwrap();
        let os = source.downcast_ref::<io::Error>().unwrap();
        assert_eq!(os.raw_os_error(), Some(libc::ENOENT));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_write_seek_read() {
    let dir = scratch("file");
    let path = dir.join("data.bin");
    let (text, len) = threadlet::run(move || {
        let mut f = fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.write_all(b"0123456789").unwrap();
        f.sync_all().unwrap();
        assert_eq!(f.seek(SeekFrom::Start(4)).unwrap(), 4);
        let mut small = [0u8; 3];
        f.read_exact(&mut small).unwrap();
        assert_eq!(&small, b"456");
        f.set_len(8).unwrap();
        f.rewind().unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        (text, f.metadata().unwrap().len())
    });
    assert_eq!(text, "01234567");
    assert_eq!(len, 8);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn shared_file_reference_reads_and_writes() {
    let dir = scratch("shared");
    let path = dir.join("shared.txt");
    let back = threadlet::run(move || {
        let f = fs::File::create_new(&path).unwrap();
        (&f).write_all(b"via &File").unwrap();
        (&f).seek(SeekFrom::Start(0)).unwrap();
        let mut back = Vec::new();
        (&f).read_to_end(&mut back).unwrap();
        back
    });
    assert_eq!(back, b"via &File");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn large_file_round_trip_crosses_chunks() {
    let dir = scratch("large");
    let path = dir.join("large.bin");
    let data: Vec<u8> = (0..5 * 1024 * 1024 + 7).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let back = threadlet::run(move || {
        let mut f = fs::File::create(&path).unwrap();
        f.write_all(&data).unwrap();
        drop(f);
        let mut back = Vec::new();
        fs::File::open(&path)
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        back
    });
    assert!(
        back == expected,
        "contents differ after a chunked round trip"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn append_option_appends() {
    let dir = scratch("append");
    let path = dir.join("log.txt");
    let text = threadlet::run(move || {
        fs::write(&path, "one\n").unwrap();
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"two\n").unwrap();
        fs::read_to_string(&path).unwrap()
    });
    assert_eq!(text, "one\ntwo\n");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn directories_copy_rename_and_listing() {
    let dir = scratch("dirs");
    let root = dir.clone();
    let mut names = threadlet::run(move || {
        let nested = root.join("a/b");
        fs::create_dir_all(&nested).unwrap();
        fs::write(nested.join("x.txt"), "x").unwrap();
        assert_eq!(
            fs::copy(nested.join("x.txt"), nested.join("y.txt")).unwrap(),
            1
        );
        fs::rename(nested.join("y.txt"), nested.join("z.txt")).unwrap();
        fs::read_dir(&nested)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert!(e.file_type().unwrap().is_file());
                assert_eq!(e.metadata().unwrap().len(), 1);
                e.file_name().into_string().unwrap()
            })
            .collect::<Vec<_>>()
    });
    names.sort();
    assert_eq!(names, ["x.txt", "z.txt"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn rename_error_names_both_paths() {
    let dir = scratch("rename-err");
    let (from, to) = (dir.join("absent-src"), dir.join("some-dst"));
    let e = threadlet::run(move || fs::rename(&from, &to).unwrap_err());
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    let msg = e.to_string();
    assert!(
        msg.contains("absent-src") && msg.contains("some-dst"),
        "{msg}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn works_on_a_plain_thread() {
    let dir = scratch("plain");
    let path = dir.join("plain.txt");
    fs::write(&path, "no runtime needed").unwrap();
    let mut f = fs::File::open(&path).unwrap();
    let mut s = String::new();
    f.read_to_string(&mut s).unwrap();
    assert_eq!(s, "no runtime needed");
    std::fs::remove_dir_all(dir).unwrap();
}
