//! [EXT-004], [EXT-005] The build args of one Dockerfile, in the order the engine reads
//! them (a later one wins): `base_image`, `build_id`, `user_id`, `group_id`, then the
//! extension's extend-config.toml args (the detector refuses the reserved names there).

use cnb_image::config::ImageConfig;

/// The args for a Dockerfile applied on top of an image whose config is `current`.
pub fn build_args(
    base_image: &str,
    current: &ImageConfig,
    extension_args: &[(String, String)],
) -> Vec<(String, String)> {
    let (user, group) = user_and_group(current);
    let mut args = vec![
        ("base_image".to_owned(), base_image.to_owned()),
        ("build_id".to_owned(), uuid_v4()),
        ("user_id".to_owned(), user),
        ("group_id".to_owned(), group),
    ];
    args.extend(extension_args.iter().cloned());
    args
}

/// The config's `User` split at the first `:` (the reference's `userFrom`): `1000:1001` is
/// `("1000", "1001")`, `cnb` is `("cnb", "")`.
pub fn user_and_group(config: &ImageConfig) -> (String, String) {
    let user = config.config.user.clone().unwrap_or_default();
    match user.split_once(':') {
        Some((u, g)) => (u.to_owned(), g.to_owned()),
        None => (user, String::new()),
    }
}

/// Whether a `User` value names root (`0` or `root`, with or without a group).
pub fn is_root(config: &ImageConfig) -> bool {
    let (user, _) = user_and_group(config);
    user == "0" || user == "root"
}

/// A random (version 4) UUID: `build_id` changes on every build, so a Dockerfile that uses it
/// busts the cache on purpose.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn fill_random(buf: &mut [u8]) {
    // SAFETY: getrandom(2) writes at most `buf.len()` bytes into the valid buffer.
    #[allow(unsafe_code)]
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if usize::try_from(n).ok() != Some(buf.len()) {
        // Never on Linux ≥ 3.17 for 16 bytes; a clock-derived value still differs per build.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id());
        buf.copy_from_slice(&nanos.to_le_bytes()[..buf.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(user: &str) -> ImageConfig {
        let mut c = ImageConfig::default();
        c.config.user = Some(user.to_owned());
        c
    }

    #[test]
    fn ext_004_ext_005_args_in_order() {
        let args = build_args(
            "repo@sha256:00",
            &config("1000:1001"),
            &[("EXTRA".to_owned(), "v".to_owned())],
        );
        let names: Vec<&str> = args.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["base_image", "build_id", "user_id", "group_id", "EXTRA"]
        );
        assert_eq!(args[2].1, "1000");
        assert_eq!(args[3].1, "1001");
        let id = &args[1].1;
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(uuid_v4(), uuid_v4());
        assert_eq!(
            user_and_group(&config("cnb")),
            ("cnb".into(), String::new())
        );
    }

    #[test]
    fn ext_008_root_users() {
        for u in ["0", "root", "0:0", "root:1000"] {
            assert!(is_root(&config(u)), "{u}");
        }
        for u in ["", "1000", "10:0", "rooty"] {
            assert!(!is_root(&config(u)), "{u}");
        }
    }
}
