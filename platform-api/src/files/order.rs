//! order.toml ([FMT-004]): the groups the detector tries.

use serde::{Deserialize, Serialize};

use cnb_buildpack_api::order::Order;

/// The contents of order.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderFile {
    /// `[[order]]`: buildpack groups, tried in order.
    #[serde(default)]
    pub order: Order,
    /// `[[order-extensions]]`: extension groups, prepended to every buildpack group ([DET-033]).
    #[serde(
        default,
        rename = "order-extensions",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub order_extensions: Order,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fmt_004_spec_example() {
        let order: OrderFile = toml::from_str(
            r#"
[[order]]
[[order.group]]
id = "sample/buildpack"
version = "0.0.1"
optional = false

[[order-extensions]]
[[order-extensions.group]]
id = "sample/extension"
version = "0.0.1"
"#,
        )
        .unwrap();
        assert_eq!(order.order[0].group[0].id.as_str(), "sample/buildpack");
        assert!(!order.order[0].group[0].optional);
        assert_eq!(order.order_extensions[0].group[0].version, "0.0.1");
        let text = toml::to_string(&order).unwrap();
        assert_eq!(toml::from_str::<OrderFile>(&text).unwrap(), order);
    }
}
