//! `config/grafana/permgate-dashboard.json` imports as is and cannot drift
//! from the code: every metric, label and label value its queries name is
//! in a running gateway's `/metrics`, and promtool parses every query.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::support::*;

const ROUTES: &str = r#"
[[route]]
name = "items.get"
methods = ["GET"]
path = "/items/{id}"
require = ["items:item:view"]

[[route]]
name = "reports.audit"
methods = ["GET"]
path = "/reports/{id}"
require = ["reports:report:view"]
mode = "audit"
"#;

/// The queries the dashboard must keep (what operators were promised).
const REQUIRED: [&str; 6] = [
    "sum by (decision) (rate(permgate_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(permgate_request_duration_seconds_bucket[5m])))",
    "sum(rate(permgate_grants_cache_total{result=\"hit\"}[5m])) / sum(rate(permgate_grants_cache_total[5m]))",
    "sum by (outcome) (rate(permgate_permission_api_requests_total{outcome!~\"granted|rejected\"}[5m]))",
    "sum by (route) (rate(permgate_requests_total{decision=\"would_deny\"}[5m]))",
    "histogram_quantile(0.99, sum by (le) (rate(permgate_upstream_duration_seconds_bucket[5m])))",
];

fn dashboard() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/permgate-dashboard.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every `(panel title, expr)`.
fn queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("no expr in {t}"));
            out.push((p["title"].as_str().unwrap().to_string(), expr.to_string()));
        }
    }
    out
}

#[test]
fn the_dashboard_imports_with_a_prometheus_input_and_keeps_its_panels() {
    let d = dashboard();
    let inputs = d["__inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 1);
    assert_eq!(inputs[0]["name"], "DS_PROMETHEUS");
    assert_eq!(inputs[0]["type"], "datasource");
    assert_eq!(inputs[0]["pluginId"], "prometheus");
    let ds = serde_json::json!({"type": "prometheus", "uid": "${DS_PROMETHEUS}"});
    let mut ids = BTreeSet::new();
    for p in d["panels"].as_array().unwrap() {
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "panel ids are unique"
        );
        assert_eq!(p["datasource"], ds, "{}", p["title"]);
        assert!(p["gridPos"]["w"].as_u64().unwrap() > 0);
        for t in p["targets"].as_array().unwrap() {
            assert_eq!(t["datasource"], ds, "{}", p["title"]);
        }
    }
    let exprs: Vec<String> = queries(&d).into_iter().map(|(_, e)| e).collect();
    for q in REQUIRED {
        assert!(exprs.iter().any(|e| e == q), "missing panel query {q}");
    }
}

#[tokio::test]
async fn every_query_names_only_what_the_gateway_exposes() {
    let backend = Backend::echo().await;
    let api = PermissionApi::start().await;
    api.grant("viewer", &["items:item:view"]);
    let gw = GatewayBuilder::new(ROUTES)
        .backend(backend.addr)
        .grants_url(api.url())
        .start();
    let viewer = [("authorization", "Bearer viewer")];
    for (path, status) in [("/items/1", 200), ("/reports/1", 200), ("/none", 403)] {
        assert_eq!(
            request(gw.addr, "GET", path, &viewer, "").await.status,
            status
        );
    }
    let text = metrics::scrape(gw.admin).await;
    let exposed = Exposed::parse(&text);

    let d = dashboard();
    let queries = queries(&d);
    assert!(queries.len() >= REQUIRED.len());
    for (title, expr) in &queries {
        let r = refs(expr);
        assert!(!r.metrics.is_empty(), "{title}: no metric in {expr}");
        let mut labels = BTreeSet::new();
        for m in &r.metrics {
            let l = exposed
                .labels
                .get(m)
                .unwrap_or_else(|| panic!("{title}: {m} is not in /metrics:\n{text}"));
            labels.extend(l.iter().cloned());
        }
        for l in &r.labels {
            assert!(
                labels.contains(l),
                "{title}: no label {l} on {:?}",
                r.metrics
            );
        }
        for (metric, label, value) in &r.equals {
            let key = (metric.clone(), label.clone());
            assert!(
                exposed.values.get(&key).is_some_and(|v| v.contains(value)),
                "{title}: {metric} never has {label}=\"{value}\":\n{text}"
            );
        }
    }

    let Some(promtool) = tool("promtool") else {
        return;
    };
    let mut rules = String::from("groups:\n  - name: permgate-dashboard\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        rules.push_str(&format!(
            "      - record: permgate_dashboard:query_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yml");
    std::fs::write(&file, &rules).unwrap();
    let out = std::process::Command::new(promtool)
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{rules}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_query_reader_finds_metrics_labels_and_matchers() {
    let r = refs(
        "sum by (route, status) (rate(permgate_requests_total{decision=\"would_deny\", x!~\"a|b\"}[5m])) \
         / on (route) group_left max(up_like_metric) > bool 0.5",
    );
    assert_eq!(
        r.metrics,
        BTreeSet::from(["permgate_requests_total".into(), "up_like_metric".into()])
    );
    assert_eq!(
        r.labels,
        BTreeSet::from([
            "route".into(),
            "status".into(),
            "decision".into(),
            "x".into()
        ])
    );
    assert_eq!(
        r.equals,
        [(
            "permgate_requests_total".into(),
            "decision".into(),
            "would_deny".into()
        )]
    );
}

/// What one scrape holds: label names per sample name, values per label.
struct Exposed {
    labels: BTreeMap<String, BTreeSet<String>>,
    values: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Exposed {
    fn parse(text: &str) -> Self {
        let mut e = Exposed {
            labels: BTreeMap::new(),
            values: BTreeMap::new(),
        };
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let series = &line[..line.rfind(' ').unwrap()];
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            let names = e.labels.entry(name.to_string()).or_default();
            for (label, value) in matchers(labels) {
                names.insert(label.clone());
                let key = (name.to_string(), label);
                e.values.entry(key).or_default().insert(value.1);
            }
        }
        e
    }
}

/// The metrics, label names and `label="value"` matchers of a PromQL query.
#[derive(Debug, Default)]
struct Refs {
    metrics: BTreeSet<String>,
    labels: BTreeSet<String>,
    /// (metric, label, value) of each `=` matcher.
    equals: Vec<(String, String, String)>,
}

/// Words that are not metric names when not followed by `(`.
const KEYWORDS: [&str; 18] = [
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
];

/// Words followed by a parenthesized list of label names.
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

fn refs(expr: &str) -> Refs {
    let mut r = Refs::default();
    let mut last_metric = String::new();
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if c == '{' {
            let end = rest.find('}').expect("closed matcher");
            for (label, (op, value)) in matchers(&rest[1..end]) {
                if op == "=" {
                    r.equals.push((last_metric.clone(), label.clone(), value));
                }
                r.labels.insert(label);
            }
            rest = &rest[end + 1..];
        } else if c == '[' {
            rest = &rest[rest.find(']').expect("closed range") + 1..];
        } else if c.is_ascii_digit() || c == '.' {
            rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '.');
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let word = &rest[..end];
            rest = &rest[end..];
            let after = rest.trim_start();
            if GROUPING.contains(&word) {
                if let Some(list) = after.strip_prefix('(') {
                    let close = list.find(')').expect("closed label list");
                    r.labels.extend(
                        list[..close]
                            .split(',')
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(String::from),
                    );
                    rest = &list[close + 1..];
                }
            } else if !after.starts_with('(') && !KEYWORDS.contains(&word) {
                r.metrics.insert(word.to_string());
                last_metric = word.to_string();
            }
        } else {
            rest = &rest[c.len_utf8()..];
        }
    }
    r
}

/// `name op "value"` pairs of a matcher or label list (`=`, `!=`, `=~`, `!~`).
fn matchers(list: &str) -> Vec<(String, (String, String))> {
    let mut out = Vec::new();
    let mut rest = list.trim_start();
    while !rest.is_empty() {
        let name_end = rest.find(['=', '!']).expect("an operator");
        let name = rest[..name_end].trim().to_string();
        rest = &rest[name_end..];
        let op_len = if rest.starts_with("=~") || rest.starts_with("!=") || rest.starts_with("!~") {
            2
        } else {
            1
        };
        let op = rest[..op_len].to_string();
        rest = rest[op_len..]
            .trim_start()
            .strip_prefix('"')
            .expect("a quoted value");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().expect("a closing quote") {
                (i, '"') => break i,
                (_, '\\') => value.extend(chars.next().map(|(_, c)| c)),
                (_, c) => value.push(c),
            }
        };
        out.push((name, (op, value)));
        rest = rest[end + 1..]
            .trim_start()
            .trim_start_matches(',')
            .trim_start();
    }
    out
}
