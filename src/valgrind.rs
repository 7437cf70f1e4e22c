//! Telling valgrind where fiber stacks are, so memcheck does not take a
//! switch between two fibers' stacks (often a few hundred KiB apart, in one
//! slab) for a huge stack frame ("Warning: client switching stacks?") and
//! then mis-track which stack memory is live.
//!
//! A client request is valgrind's documented magic instruction sequence
//! (`valgrind.h`, amd64): rotate `rdi` by 3, 13, 61 and 51 bits (128 in all,
//! so `rdi` comes back unchanged) then `xchg rbx, rbx` (changes nothing).
//! Run natively that is five cheap register instructions and `rdx` keeps the
//! default result; under valgrind the sequence is recognised, the request in
//! the block `rax` points to is served, and the answer is left in `rdx`.
//! Elsewhere than x86_64 the requests are no-ops (document-only support:
//! run valgrind with `--max-stackframe` raised there).

/// `VG_USERREQ__STACK_REGISTER` from `valgrind.h`.
#[cfg(target_arch = "x86_64")]
const STACK_REGISTER: usize = 0x1501;
/// `VG_USERREQ__STACK_DEREGISTER` from `valgrind.h`.
#[cfg(target_arch = "x86_64")]
const STACK_DEREGISTER: usize = 0x1502;

/// Sends a client request; returns `default` when not under valgrind.
#[cfg(target_arch = "x86_64")]
#[inline]
fn request(default: usize, code: usize, arg1: usize, arg2: usize) -> usize {
    let args: [usize; 6] = [code, arg1, arg2, 0, 0, 0];
    let mut result = default;
    // SAFETY: the sequence only rotates `rdi` by a full 128 bits (a no-op on
    // its value), exchanges `rbx` with itself and changes flags (not
    // declared preserved). Valgrind reads the six words at `rax`, which
    // live on this frame for the whole statement, and writes only `rdx`,
    // declared as an in/out operand. No stack is used.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            options(nostack),
        );
    }
    result
}

/// Registers the stack `[lo, hi)` with valgrind; returns its id (0 when not
/// running under valgrind).
#[inline]
pub(crate) fn stack_register(lo: usize, hi: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        // valgrind takes the highest addressable byte, not one past it.
        request(0, STACK_REGISTER, lo, hi - 1)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (lo, hi);
        0
    }
}

/// Forgets a stack registered by [`stack_register`] (id 0: nothing to do).
#[inline]
pub(crate) fn stack_deregister(id: usize) {
    #[cfg(target_arch = "x86_64")]
    if id != 0 {
        request(0, STACK_DEREGISTER, id, 0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = id;
}

#[cfg(test)]
mod tests {
    #[test]
    fn requests_are_harmless_natively() {
        let buf = [0u8; 4096];
        let lo = buf.as_ptr() as usize;
        let id = super::stack_register(lo, lo + buf.len());
        // Natively the default comes back; under valgrind, some id.
        if std::env::var_os("THREADLET_UNDER_VALGRIND").is_none() {
            assert_eq!(id, 0);
        }
        super::stack_deregister(id);
    }
}
