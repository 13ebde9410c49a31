//! Which user the phases run as.
//!
//! `detector` and `builder` refuse to run as root, and CI runs as root. When the harness is root
//! it therefore runs every phase as [`TEST_UID`]:[`TEST_GID`] (no passwd entry is needed; the
//! uid/gid are set with `CommandExt::uid/gid`, which also clears supplementary groups) and hands
//! the fixture tree to that user first. As a normal user, phases run as that user.

use std::fs;

/// The unprivileged uid phases run as when the harness is root (the Go acceptance tests' `cnb` user).
pub const TEST_UID: u32 = 1234;
/// The unprivileged gid phases run as when the harness is root.
pub const TEST_GID: u32 = 1000;

/// Whether the harness runs with effective uid 0.
pub fn is_root() -> bool {
    // `Uid:\treal\teffective\tsaved\tfs` — read without unsafe libc calls.
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .is_some_and(|euid| euid == "0")
}

/// The uid:gid the phases run as (`CNB_USER_ID` / `CNB_GROUP_ID` for the image phases).
pub fn phase_ids() -> (u32, u32) {
    if is_root() {
        return (TEST_UID, TEST_GID);
    }
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let id = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (id("Uid:"), id("Gid:"))
}
