//! Small accessors for the TOML files phases write (group.toml, plan.toml, metadata.toml),
//! read as untyped tables: the suite must not share types with the implementation under test.

/// `table[key]` as an array of tables (empty when absent).
pub fn list<'a>(table: &'a toml::Table, key: &str) -> Vec<&'a toml::Table> {
    table
        .get(key)
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(toml::Value::as_table).collect())
        .unwrap_or_default()
}

/// `table[key]` as a string, or "" when absent.
pub fn str_of(table: &toml::Table, key: &str) -> String {
    table
        .get(key)
        .and_then(toml::Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `table[key]` as a list of strings (empty when absent).
pub fn strings(table: &toml::Table, key: &str) -> Vec<String> {
    table
        .get(key)
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The `id`s of the `key` array (`group`, `group-extensions`, `buildpacks`, …).
pub fn ids(table: &toml::Table, key: &str) -> Vec<String> {
    list(table, key).iter().map(|e| str_of(e, "id")).collect()
}
