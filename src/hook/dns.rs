//! `getaddrinfo`: on a fiber it runs on the blocking pool while the fiber
//! parks; off a fiber it is the real call. The real function is libc's, found
//! once with `dlsym(RTLD_NEXT)` and cached. The list either way is glibc's
//! own, so the caller frees it with the (unhooked) real `freeaddrinfo`.

use std::ffi::{CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering};

use libc::{addrinfo, c_char, c_int};

use super::{errno, guarded, on_fiber, set_errno};

type GetAddrInfo = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;

/// The real `getaddrinfo`'s address (0: not looked up yet; 1: not found).
static REAL: AtomicUsize = AtomicUsize::new(0);

/// Looks the real `getaddrinfo` up (once; `link` calls it at runtime start).
pub(super) fn resolve_real() -> Option<GetAddrInfo> {
    let mut addr = REAL.load(Ordering::Acquire);
    if addr == 0 {
        // SAFETY: a NUL-terminated name; RTLD_NEXT skips this executable's
        // own definition (the hook) and finds libc's.
        let found = unsafe { libc::dlsym(libc::RTLD_NEXT, c"getaddrinfo".as_ptr()) } as usize;
        addr = if found == 0 || found == getaddrinfo as *const () as usize {
            1
        } else {
            found
        };
        REAL.store(addr, Ordering::Release);
    }
    // SAFETY: `addr` is libc's `getaddrinfo`, whose signature is `GetAddrInfo`.
    (addr > 1).then(|| unsafe { std::mem::transmute::<usize, GetAddrInfo>(addr) })
}

/// A result list made on the blocking pool; freed unless the caller takes it
/// (a cancelled caller leaves it behind).
struct List(*mut addrinfo);

// SAFETY: the list is plain heap memory owned by whoever holds `List`; glibc's
// freeaddrinfo may free it on any thread.
unsafe impl Send for List {}

impl Drop for List {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a list returned by the real getaddrinfo, not yet freed.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// The part of `hints` that getaddrinfo reads.
#[derive(Clone, Copy)]
struct Hints {
    flags: c_int,
    family: c_int,
    socktype: c_int,
    protocol: c_int,
}

/// `getaddrinfo(3)`: on a fiber, the real call on the blocking pool (the
/// fiber parks meanwhile); `EAI_SYSTEM` with errno `ECANCELED` if the fiber
/// is cancelled meanwhile. Off a fiber, the real call.
///
/// # Safety
/// The libc contract: `node`/`service` null or NUL-terminated, `hints` null
/// or valid, `res` valid.
#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let Some(real) = resolve_real() else {
        set_errno(libc::ENOSYS);
        return libc::EAI_SYSTEM;
    };
    if !on_fiber() || res.is_null() {
        // SAFETY: the caller's contract.
        return unsafe { real(node, service, hints, res) };
    }
    // SAFETY (the three reads): the caller's contract.
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let node = (!node.is_null()).then(|| CString::from(unsafe { CStr::from_ptr(node) }));
    // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
    let service = (!service.is_null()).then(|| CString::from(unsafe { CStr::from_ptr(service) }));
    let hints = (!hints.is_null()).then(|| {
        // SAFETY: the caller's contract on the pointers (see # Safety), forwarded unchanged.
        let h = unsafe { &*hints };
        Hints {
            flags: h.ai_flags,
            family: h.ai_family,
            socktype: h.ai_socktype,
            protocol: h.ai_protocol,
        }
    });
    let job = move || {
        // SAFETY: an all-zero addrinfo is valid hints apart from the fields
        // set below (null pointers, zero lengths).
        let mut h: addrinfo = unsafe { std::mem::zeroed() };
        if let Some(x) = hints {
            h.ai_flags = x.flags;
            h.ai_family = x.family;
            h.ai_socktype = x.socktype;
            h.ai_protocol = x.protocol;
        }
        let mut list = List(ptr::null_mut());
        // SAFETY: valid C strings or null, valid hints or null, and `list.0`
        // valid for the result.
        let r = unsafe {
            real(
                node.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
                service.as_ref().map_or(ptr::null(), |s| s.as_ptr()),
                if hints.is_some() { &h } else { ptr::null() },
                &mut list.0,
            )
        };
        (r, errno(), list)
    };
    match guarded(|| crate::unblock(job)) {
        Ok((r, e, mut list)) => {
            // SAFETY: `res` is valid (caller's contract).
            unsafe { *res = std::mem::replace(&mut list.0, ptr::null_mut()) };
            if r == libc::EAI_SYSTEM {
                set_errno(e);
            }
            r
        }
        Err(()) => {
            set_errno(libc::ECANCELED);
            libc::EAI_SYSTEM
        }
    }
}
