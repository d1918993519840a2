//! The nonce pool must not hand the same nonce to a parent and its forked child.
#![allow(unsafe_code)] // fork() and pipes, only in this test

use strongroom::SecretBytes;
use strongroom::seal::{Algorithm, DataKey, SealContext};

fn nonce_of(k: &DataKey) -> [u8; 12] {
    let s = k.seal(1, b"x", &SealContext::new("p", 0)).unwrap();
    s.as_bytes()[8..20].try_into().unwrap()
}

#[test]
fn parent_and_child_draw_different_nonces() {
    let k = DataKey::new(Algorithm::Aes256Gcm, SecretBytes::new(vec![3; 32])).unwrap();
    // Fill this thread's pool in the parent before forking.
    nonce_of(&k);
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints for pipe() to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only seals (no locks held by other threads are
    // needed: the pool is thread-local, ring and getrandom are fork-safe),
    // writes to the pipe and leaves with _exit, running no destructors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let n = nonce_of(&k);
        // SAFETY: writing 12 bytes from a live array to our pipe; then exit.
        unsafe {
            libc::write(fds[1], n.as_ptr().cast(), n.len());
            libc::_exit(0);
        }
    }
    let parent = nonce_of(&k);
    let mut child = [0u8; 12];
    // SAFETY: reading at most 12 bytes into a 12-byte buffer.
    let got = unsafe { libc::read(fds[0], child.as_mut_ptr().cast(), child.len()) };
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(got, 12);
    assert_ne!(
        parent, child,
        "parent and child drew the same nonce after fork"
    );
}
