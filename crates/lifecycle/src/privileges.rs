//! Privilege checks. The only unsafe-free way to ask for the effective user is libc.

/// Whether the process runs with root's effective user ID.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    let euid = unsafe { libc::geteuid() };
    euid == 0
}
