//! `USER` and `--chown` resolved in the image's own `/etc/passwd` and `/etc/group`, never
//! the host's (the root may be any directory), as runc's `GetExecUser` does for Docker.

use std::path::Path;

/// A resolved user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecUser {
    /// User ID.
    pub uid: u32,
    /// Primary group ID.
    pub gid: u32,
    /// Groups of the process: the primary group, then (when no group was given) those
    /// listing the user in `/etc/group`, as a container started by Docker gets them.
    pub groups: Vec<u32>,
    /// Home directory (`/` when the user is not in the passwd file).
    pub home: String,
}

fn read_db(root: &Path, file: &str) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(root.join("etc").join(file)).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').map(str::to_owned).collect())
        .collect()
}

/// Resolves `user[:group]` (names or IDs) in `root`'s databases. An empty spec is root.
pub fn resolve(root: &Path, spec: &str) -> Result<ExecUser, String> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_db(root, "passwd");
    let groups = read_db(root, "group");
    let user = if user.is_empty() { "0" } else { user };
    let entry = passwd
        .iter()
        .find(|e| e.len() >= 4 && (e[0] == user || (user.parse::<u32>().is_ok() && e[2] == user)));
    let (uid, mut gid, home, name) = match (entry, user.parse::<u32>()) {
        (Some(e), _) => (
            e[2].parse::<u32>()
                .map_err(|_| format!("bad uid in passwd entry of {}", e[0]))?,
            e[3].parse::<u32>()
                .map_err(|_| format!("bad gid in passwd entry of {}", e[0]))?,
            e.get(5).cloned().unwrap_or_else(|| "/".into()),
            Some(e[0].clone()),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_owned(), None),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {user}: no matching entries in passwd file"
            ));
        }
    };
    let mut supplementary = Vec::new();
    match group {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => groups
                    .iter()
                    .find(|e| e.len() >= 3 && e[0] == g)
                    .and_then(|e| e[2].parse().ok())
                    .ok_or_else(|| {
                        format!("unable to find group {g}: no matching entries in group file")
                    })?,
            };
        }
        _ => {
            if let Some(name) = &name {
                for e in &groups {
                    let member = e.get(3).is_some_and(|m| m.split(',').any(|m| m == name));
                    if let (true, Some(Ok(g))) = (member, e.get(2).map(|g| g.parse::<u32>()))
                        && g != gid
                        && !supplementary.contains(&g)
                    {
                        supplementary.push(g);
                    }
                }
            }
        }
    }
    supplementary.insert(0, gid);
    Ok(ExecUser {
        uid,
        gid,
        groups: supplementary,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(d.path().join("etc")).expect("etc");
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1001::/home/cnb:/bin/sh\n",
        )
        .expect("passwd");
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\ncnb:x:1001:\nwheel:x:10:cnb,other\nstaff:x:50:\n",
        )
        .expect("group");
        d
    }

    #[test]
    fn names_and_ids_resolve_in_the_root() {
        let r = root();
        let u = resolve(r.path(), "cnb").expect("cnb");
        assert_eq!(
            (u.uid, u.gid, u.groups.clone(), u.home.as_str()),
            (1000, 1001, vec![1001, 10], "/home/cnb")
        );
        let u = resolve(r.path(), "1000:staff").expect("1000:staff");
        assert_eq!((u.uid, u.gid, u.groups.clone()), (1000, 50, vec![50]));
        let u = resolve(r.path(), "4242").expect("unknown uid");
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(resolve(r.path(), "nobody").is_err());
        assert!(resolve(r.path(), "cnb:nogroup").is_err());
    }
}
