//! YAML documents as JSON values, so one model serves both formats.

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Deepest nesting of lists and maps accepted (as serde_json's limit).
const MAX_DEPTH: usize = 128;

/// A YAML error, with its 1-based line and column when it is a syntax error.
#[derive(Debug)]
pub struct YamlError {
    /// 1-based line and column.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

/// Parses the first document of `text`. Mapping keys that are not strings
/// (`200:` in `responses`) become their text.
pub fn parse(text: &str) -> Result<Value, YamlError> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| YamlError {
        position: Some((e.marker().line(), e.marker().col() + 1)),
        message: e.info().to_string(),
    })?;
    let first = docs.into_iter().next().unwrap_or(Yaml::Null);
    to_json(first, 0).ok_or_else(|| YamlError {
        position: None,
        message: format!("lists and maps nest deeper than {MAX_DEPTH} levels"),
    })
}

/// `None` when nesting goes deeper than [`MAX_DEPTH`].
fn to_json(y: Yaml, depth: usize) -> Option<Value> {
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match y {
        Yaml::Real(s) => s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Value::String(s), Value::Number),
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::String(s) => Value::String(s),
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| to_json(i, depth + 1))
                .collect::<Option<_>>()?,
        ),
        Yaml::Hash(hash) => {
            let mut map = Map::with_capacity(hash.len());
            for (k, v) in hash {
                map.insert(key_text(k), to_json(v, depth + 1)?);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::Null | Yaml::BadValue => Value::Null,
    })
}

fn key_text(k: Yaml) -> String {
    match k {
        Yaml::String(s) | Yaml::Real(s) => s,
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => to_json(other, MAX_DEPTH).unwrap_or(Value::Null).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_scalars_lists_and_maps() {
        let v = parse("a: 1\nb: [x, 2.5, true]\n200:\n  c: ~\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": ["x", 2.5, true], "200": {"c": null}})
        );
    }

    #[test]
    fn anchors_are_copied() {
        let v = parse("base: &b {type: ANY}\nuse: *b\n").unwrap();
        assert_eq!(v["use"], serde_json::json!({"type": "ANY"}));
    }

    #[test]
    fn errors_have_line_and_column() {
        let e = parse("a: 1\nb: [x,\n  c: d: e\n").unwrap_err();
        let (line, column) = e.position.unwrap();
        assert!(line >= 2 && column >= 1, "{e:?}");
        assert!(!e.message.is_empty());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep: String = (0..200).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert!(parse(&deep).unwrap_err().message.contains("nest deeper"));
        assert!(parse(&"[".repeat(100)).is_err());
    }
}
