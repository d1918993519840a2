//! The nonce pool must not hand the same nonce to a parent and its forked
//! child, whether or not the fork runs `pthread_atfork` handlers.
//!
//! Each test fills this thread's nonce pool, forks, draws 1000 nonces in the
//! child (sent back through a pipe) and 1000 in the parent, and asserts the
//! two sets are disjoint. Three forks: `fork()` (runs atfork handlers),
//! glibc's `_Fork()` and a raw `fork`/`clone` system call (neither does).
#![cfg(target_os = "linux")]
// fork(), _Fork(), raw syscalls and pipes need unsafe; only in this test.
#![allow(unsafe_code)]

use std::collections::HashSet;

use strongroom::SecretBytes;
use strongroom::seal::{Algorithm, DataKey, OVERHEAD, SealContext};

const DRAWS: usize = 1000;
const NONCE: usize = 12;

/// Seals one byte and returns the nonce. Allocates nothing (`seal_into` with
/// a stack buffer and a short path), so it is safe in a child forked from a
/// multi-threaded process without atfork handlers (another thread may have
/// held the allocator's lock at the fork).
fn nonce_of(k: &DataKey) -> Option<[u8; NONCE]> {
    let mut out = [0u8; 1 + OVERHEAD];
    k.seal_into(1, b"x", &mut out, &SealContext::new("p", 0))
        .ok()?;
    let mut n = [0u8; NONCE];
    n.copy_from_slice(&out[8..20]);
    Some(n)
}

/// Forks with `fork`, draws `DRAWS` nonces in each process and returns
/// (parent's, child's).
fn draw_across_fork(
    fork: unsafe fn() -> libc::pid_t,
) -> (HashSet<[u8; NONCE]>, HashSet<[u8; NONCE]>) {
    let k = DataKey::new(Algorithm::Aes256Gcm, SecretBytes::new(vec![3; 32])).unwrap();
    // Fill this thread's pool in the parent before forking: 63 unused
    // nonces are now in memory the child inherits.
    nonce_of(&k).unwrap();
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints for pipe() to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only seals into stack buffers (no allocation, no
    // lock another thread could have held), writes to the pipe with raw
    // write() and leaves with _exit, running no destructors or handlers.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut buf = [0u8; DRAWS * NONCE];
        let mut ok = true;
        for chunk in buf.chunks_exact_mut(NONCE) {
            match nonce_of(&k) {
                Some(n) => chunk.copy_from_slice(&n),
                None => ok = false,
            }
        }
        let mut sent = 0;
        while ok && sent < buf.len() {
            // SAFETY: writing from the live buffer's unsent tail to our pipe.
            let w = unsafe { libc::write(fds[1], buf[sent..].as_ptr().cast(), buf.len() - sent) };
            if w <= 0 {
                ok = false;
            } else {
                sent += w as usize;
            }
        }
        // SAFETY: leaving the child without running anything else.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    // SAFETY: closing our copy of the write end, so a dead child gives EOF.
    unsafe { libc::close(fds[1]) };
    let parent: HashSet<_> = (0..DRAWS).map(|_| nonce_of(&k).unwrap()).collect();
    let mut buf = vec![0u8; DRAWS * NONCE];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reading at most the free tail of buf.
        let r = unsafe { libc::read(fds[0], buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if r <= 0 {
            break;
        }
        got += r as usize;
    }
    let mut status = 0;
    // SAFETY: waiting for our own child; closing our read end.
    unsafe {
        assert_eq!(libc::waitpid(pid, &mut status, 0), pid);
        libc::close(fds[0]);
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child failed: status {status}"
    );
    assert_eq!(got, buf.len(), "child sent {got} bytes");
    let child: HashSet<[u8; NONCE]> = buf
        .chunks_exact(NONCE)
        .map(|c| c.try_into().unwrap())
        .collect();
    assert_eq!(parent.len(), DRAWS, "parent repeated a nonce");
    assert_eq!(child.len(), DRAWS, "child repeated a nonce");
    (parent, child)
}

fn assert_disjoint(parent: &HashSet<[u8; NONCE]>, child: &HashSet<[u8; NONCE]>) {
    let shared = parent.intersection(child).count();
    assert_eq!(
        shared, 0,
        "parent and child drew {shared} of the same nonces"
    );
}

/// libc's `fork()`: runs `pthread_atfork` handlers.
unsafe fn libc_fork() -> libc::pid_t {
    // SAFETY: the caller upholds fork's contract (see draw_across_fork).
    unsafe { libc::fork() }
}

/// A raw fork system call: glibc runs no atfork handlers and updates none of
/// its state.
unsafe fn raw_fork_syscall() -> libc::pid_t {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: fork(2) takes no arguments; the caller upholds fork's contract.
    let r = unsafe { libc::syscall(libc::SYS_fork) };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: clone(SIGCHLD, NULL, ...) is fork(2) on architectures without
    // a fork system call; the caller upholds fork's contract.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    r as libc::pid_t
}

#[test]
fn parent_and_child_draw_disjoint_nonces_after_fork() {
    let (parent, child) = draw_across_fork(libc_fork);
    assert_disjoint(&parent, &child);
}

#[test]
fn parent_and_child_draw_disjoint_nonces_after_raw_fork_syscall() {
    let (parent, child) = draw_across_fork(raw_fork_syscall);
    assert_disjoint(&parent, &child);
}

#[cfg(target_env = "gnu")]
mod glibc {
    use super::*;

    unsafe extern "C" {
        /// glibc 2.34+: fork without running `pthread_atfork` handlers.
        fn _Fork() -> libc::pid_t;
    }

    unsafe fn underscore_fork() -> libc::pid_t {
        // SAFETY: _Fork takes no arguments; the caller upholds fork's
        // contract.
        unsafe { _Fork() }
    }

    #[test]
    fn parent_and_child_draw_disjoint_nonces_after_underscore_fork() {
        let (parent, child) = draw_across_fork(underscore_fork);
        assert_disjoint(&parent, &child);
    }
}
