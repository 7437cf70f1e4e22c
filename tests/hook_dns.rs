//! `getaddrinfo` on a fiber runs on the blocking pool and answers exactly
//! what it answers on a plain thread (its own binary: it counts the pool's
//! threads, which must start at zero).
#![cfg(all(feature = "hook", target_os = "linux", target_env = "gnu"))]

use std::ffi::CString;
use std::net::ToSocketAddrs;

/// `getaddrinfo(node, service)` through libc: the error code, or the sorted
/// address list (freed with `freeaddrinfo`).
fn gai(node: &str, service: Option<&str>) -> Result<Vec<String>, i32> {
    let node = CString::new(node).unwrap();
    let service = service.map(|s| CString::new(s).unwrap());
    // SAFETY: all-zero hints are valid ("any"); then only the socktype.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res = std::ptr::null_mut();
    // SAFETY: valid strings, hints and out-pointer.
    let r = unsafe {
        libc::getaddrinfo(
            node.as_ptr(),
            service.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            &hints,
            &mut res,
        )
    };
    if r != 0 {
        return Err(r);
    }
    let mut out = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: a node of the list getaddrinfo returned, not yet freed.
        let ai = unsafe { &*p };
        // SAFETY: ai_addr points at ai_addrlen bytes of address.
        let bytes =
            unsafe { std::slice::from_raw_parts(ai.ai_addr.cast::<u8>(), ai.ai_addrlen as usize) };
        out.push(format!("{} {:?}", ai.ai_family, bytes));
        p = ai.ai_next;
    }
    // SAFETY: the list came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    out.sort();
    Ok(out)
}

#[test]
fn getaddrinfo_on_a_fiber_runs_on_the_pool_and_matches_a_thread() {
    let cases: &[(&str, Option<&str>)] = &[
        ("localhost", Some("80")),
        ("127.0.0.1", None),
        ("localhost", Some("no-such-service-name")),
    ];
    let on_thread: Vec<_> = cases.iter().map(|(n, s)| gai(n, *s)).collect();
    assert_eq!(
        threadlet::blocking_threads(),
        0,
        "nothing used the pool yet"
    );
    let on_fiber = threadlet::run(move || {
        let r: Vec<_> = cases.iter().map(|(n, s)| gai(n, *s)).collect();
        let via_std = ("localhost", 7878).to_socket_addrs().unwrap().count();
        (r, via_std, threadlet::blocking_threads())
    });
    assert_eq!(on_fiber.0, on_thread, "same answers, errors included");
    assert!(on_thread[0].is_ok() && on_thread[2].is_err());
    assert!(on_fiber.1 >= 1, "std's ToSocketAddrs resolves localhost");
    assert!(on_fiber.2 >= 1, "the lookups ran on the blocking pool");
}
