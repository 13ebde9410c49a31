//! Helpers the fuzz targets share: splitting the input into a selector and a document, and the
//! round-trip checks.
//!
//! Round trips compare with `==`, and, when that fails, with `Debug` output: a float `nan`
//! (valid TOML) is never equal to itself but prints the same, while maps with a random
//! iteration order (the annotations of oci-spec descriptors) compare equal but print
//! differently. A dropped or altered field fails both.

use std::fmt::Debug;

/// The first byte picks what the rest is parsed as; `None` for an empty input.
pub fn split_selector(data: &[u8], choices: u8) -> Option<(u8, &[u8])> {
    let (&first, rest) = data.split_first()?;
    Some((first % choices, rest))
}

/// Asserts that `encode` then `decode` gives back `value`. An encoding error is not a finding:
/// the writers report it as a clean error, and the lifecycle never re-encodes what it read
/// without first building its own value.
pub fn assert_round_trip<T, E1: Debug, E2: Debug>(
    what: &str,
    value: &T,
    encode: impl Fn(&T) -> Result<String, E1>,
    decode: impl Fn(&str) -> Result<T, E2>,
) where
    T: Debug + PartialEq,
{
    let Ok(text) = encode(value) else { return };
    let again = match decode(&text) {
        Ok(again) => again,
        Err(e) => panic!("{what}: re-parsing our own output failed: {e:?}\n--- output:\n{text}"),
    };
    if *value == again {
        return;
    }
    let (before, after) = (format!("{value:?}"), format!("{again:?}"));
    assert!(
        before == after,
        "{what}: round trip changed the value\n--- before: {before}\n--- after:  {after}\n--- text:\n{text}"
    );
}

/// [`assert_round_trip`] through the TOML encoding.
pub fn toml_round_trip<T>(what: &str, value: &T)
where
    T: Debug + PartialEq + serde::Serialize + serde::de::DeserializeOwned,
{
    assert_round_trip(what, value, toml::to_string, |t| toml::from_str::<T>(t));
}

/// [`assert_round_trip`] through the JSON encoding.
pub fn json_round_trip<T>(what: &str, value: &T)
where
    T: Debug + PartialEq + serde::Serialize + serde::de::DeserializeOwned,
{
    assert_round_trip(what, value, serde_json::to_string, |t| {
        serde_json::from_str::<T>(t)
    });
}
