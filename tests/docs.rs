//! The operator docs in `docs/` kept in step with the code: every config
//! key, every error code and every metric the code has is documented, the
//! documented example config is one the service accepts, and the docs name
//! no metric the service does not report. Plain file checks: no server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use record_index::api::status::grpc_code;
use record_index::config::Config;
use record_index::error::{ApiError, MAX_MESSAGE_BYTES, QUOTED_CHARS, quote};
use record_index::telemetry::{self, Kind};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

/// The fenced blocks of `markdown` opened with ```` ```lang ````, in order.
fn fenced_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines();
    while let Some(line) = lines.next() {
        if line.trim() != format!("```{lang}") {
            continue;
        }
        let mut block = String::new();
        for line in lines.by_ref() {
            if line.trim() == "```" {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        blocks.push(block);
    }
    blocks
}

/// The rows of the markdown table whose header row starts with `header`,
/// each split into its trimmed cells.
fn table_rows(markdown: &str, header: &str) -> Vec<Vec<String>> {
    let mut lines = markdown
        .lines()
        .skip_while(|line| !line.starts_with(header));
    assert!(
        lines.next().is_some(),
        "no table with the header `{header}`"
    );
    lines
        .skip(1) // the |---| line
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
            inner
                .split(" | ")
                .map(|cell| cell.trim().to_string())
                .collect()
        })
        .collect()
}

// ---------------------------------------------------------------------------
// docs/configuration.md

/// The fields of every `#[derive(.. Deserialize ..)]` struct of
/// src/config/ as the TOML spells them: struct name → field names.
fn config_structs() -> BTreeMap<String, Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read src/config")
        .map(|entry| entry.expect("an entry of src/config").path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let source = files
        .iter()
        .map(|path| std::fs::read_to_string(path).expect("read a config module"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut structs = BTreeMap::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        if !(line.starts_with("#[derive(") && line.contains("Deserialize")) {
            continue;
        }
        // Other attributes may stand between the derive and the item.
        let item = lines
            .by_ref()
            .map(str::trim)
            .find(|line| !line.starts_with("#["))
            .unwrap_or_default();
        let Some(rest) = item.strip_prefix("pub struct ") else {
            continue; // an enum: its values are documented with its field
        };
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let mut fields = Vec::new();
        let mut rename = None;
        for line in lines.by_ref() {
            if line.starts_with('}') {
                break;
            }
            let line = line.trim();
            if line.starts_with("#[serde(") {
                if let Some((_, after)) = line.split_once("rename = \"") {
                    rename = after.split('"').next().map(str::to_string);
                }
                continue;
            }
            let Some(field) = line
                .strip_prefix("pub ")
                .and_then(|rest| rest.split_once(':'))
                .map(|(field, _)| field.trim())
            else {
                continue;
            };
            fields.push(rename.take().unwrap_or_else(|| field.to_string()));
        }
        structs.insert(name, fields);
    }
    assert!(
        structs.contains_key("Config") && structs.len() > 1,
        "could not find the config structs in src/config/ (found {:?}); \
         tests/docs.rs reads `#[derive(.. Deserialize ..)]` then `pub struct Name {{` \
         and its `pub field:` lines",
        structs.keys().collect::<Vec<_>>()
    );
    structs
}

/// Where each config struct sits in the TOML: a dotted path from the top,
/// `[]` marking an array of tables.
fn toml_path(config_struct: &str) -> Option<&'static str> {
    Some(match config_struct {
        "Config" => "",
        "EndpointConfig" => "endpoints[]",
        "AccountConfig" => "accounts[]",
        "KeyConfig" => "accounts[].keys[]",
        "StatementConfig" => "accounts[].keys[].allow[]",
        "AccountPlaybackConfig" => "accounts[].playback",
        "TlsConfig" => "tls",
        "SrsWebhookConfig" => "srs_webhook",
        "SrsSourceConfig" => "srs_webhook.sources[]",
        "MetricsConfig" => "metrics",
        "ConnectionsConfig" => "connections",
        "CatalogConfig" => "catalog",
        "LimitsConfig" => "limits",
        "PlaybackConfig" => "playback",
        _ => return None,
    })
}

/// The keys used at `path` in `value`, over every element of its arrays.
fn keys_at(value: &toml::Value, path: &str) -> BTreeSet<String> {
    let mut tables = vec![value];
    for step in path.split('.').filter(|step| !step.is_empty()) {
        let (name, array) = match step.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (step, false),
        };
        tables = tables
            .into_iter()
            .filter_map(|table| table.get(name))
            .flat_map(|inner| match (array, inner.as_array()) {
                (true, Some(elements)) => elements.iter().collect(),
                _ => vec![inner],
            })
            .collect();
    }
    tables
        .into_iter()
        .filter_map(toml::Value::as_table)
        .flat_map(|table| table.keys().cloned())
        .collect()
}

fn example_config(doc: &str) -> String {
    let blocks = fenced_blocks(doc, "toml");
    assert_eq!(
        blocks.len(),
        1,
        "docs/configuration.md must hold exactly one ```toml block, the complete example; found {}",
        blocks.len()
    );
    blocks.into_iter().next().unwrap()
}

#[test]
fn every_config_key_is_documented() {
    let doc = read("docs/configuration.md");
    let mut missing = Vec::new();
    for (config_struct, fields) in config_structs() {
        for field in fields {
            if !doc.contains(&format!("`{field}`")) {
                missing.push(format!(
                    "`{field}` (field of {config_struct} in src/config/)"
                ));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/configuration.md does not document these config keys:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_example_config_is_accepted_and_uses_every_key() {
    let doc = read("docs/configuration.md");
    let example = example_config(&doc);
    let config = Config::from_toml(&example).unwrap_or_else(|err| {
        panic!("the ```toml example of docs/configuration.md does not parse as a Config: {err}")
    });
    if let Err(err) = config.finish() {
        panic!("the ```toml example of docs/configuration.md fails the config checks: {err}");
    }
    let value: toml::Value = toml::from_str(&example).expect("parsed above");
    let mut missing = Vec::new();
    for (config_struct, fields) in config_structs() {
        let Some(path) = toml_path(&config_struct) else {
            panic!(
                "src/config/ has a new config struct {config_struct}: add its table to the \
                 example in docs/configuration.md and its TOML path to `toml_path` in tests/docs.rs"
            );
        };
        let used = keys_at(&value, path);
        for field in fields {
            if !used.contains(&field) {
                let table = if path.is_empty() {
                    "the top level"
                } else {
                    path
                };
                missing.push(format!("`{field}` in {table} ({config_struct})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "the ```toml example of docs/configuration.md does not use these keys:\n  {}",
        missing.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// docs/errors.md

/// One value of every ApiError variant, both kinds of InternalError
/// included. The match has no wildcard: a new variant does not compile
/// until it is added here, and so to the checks against docs/errors.md.
fn one_of_each_error() -> Vec<ApiError> {
    let mut all = Vec::new();
    let mut next = Some(ApiError::InvalidParams(String::new()));
    while let Some(err) = next.take() {
        next = match &err {
            ApiError::InvalidParams(_) => Some(ApiError::StartTimeMalformed(String::new())),
            ApiError::StartTimeMalformed(_) => Some(ApiError::EndTimeMalformed(String::new())),
            ApiError::EndTimeMalformed(_) => Some(ApiError::StartTimeMismatch(String::new())),
            ApiError::StartTimeMismatch(_) => Some(ApiError::EndTimeMismatch(String::new())),
            ApiError::EndTimeMismatch(_) => Some(ApiError::OssEndpointMalformed(String::new())),
            ApiError::OssEndpointMalformed(_) => Some(ApiError::OssBucketMalformed(String::new())),
            ApiError::OssBucketMalformed(_) => Some(ApiError::OssObjectMalformed(String::new())),
            ApiError::OssObjectMalformed(_) => Some(ApiError::BucketNotFound(String::new())),
            ApiError::BucketNotFound(_) => Some(ApiError::StreamNotFound(String::new())),
            ApiError::StreamNotFound(_) => Some(ApiError::NoRecordContent(String::new())),
            ApiError::NoRecordContent(_) => Some(ApiError::OperationNotSupport(String::new())),
            ApiError::OperationNotSupport(_) => Some(ApiError::ConfigChanged(String::new())),
            ApiError::ConfigChanged(_) => Some(ApiError::RecordContentExceed(String::new())),
            ApiError::RecordContentExceed(_) => Some(ApiError::RecordIdNotFound(String::new())),
            ApiError::RecordIdNotFound(_) => Some(ApiError::InvalidAccessKeyId(String::new())),
            ApiError::InvalidAccessKeyId(_) => Some(ApiError::ForbiddenRam(String::new())),
            ApiError::ForbiddenRam(_) => Some(ApiError::Throttled {
                message: String::new(),
                retry_after: Duration::from_millis(1),
            }),
            ApiError::Throttled { .. } => Some(ApiError::internal("")),
            ApiError::Internal {
                unavailable: false, ..
            } => Some(ApiError::unavailable("")),
            ApiError::Internal {
                unavailable: true, ..
            } => None,
        };
        all.push(err);
    }
    all
}

/// The variant's name, from its Debug form (`StreamNotFound("")`).
fn variant_name(err: &ApiError) -> String {
    format!("{err:?}")
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The canonical name of a gRPC code (`InvalidArgument` → `INVALID_ARGUMENT`).
fn canonical(code: tonic::Code) -> String {
    let mut name = String::new();
    for (i, c) in format!("{code:?}").chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

const ERROR_TABLE: &str = "| code | gRPC code | HTTP status |";

#[test]
fn every_error_variant_has_a_sample() {
    // The chain in `one_of_each_error` must reach every variant the enum
    // declares, not only compile.
    let source = read("src/error.rs");
    let body = source
        .split_once("pub enum ApiError {")
        .and_then(|(_, rest)| rest.split_once("\n}"))
        .map(|(body, _)| body)
        .expect("src/error.rs declares `pub enum ApiError {`");
    let declared: BTreeSet<String> = body
        .lines()
        .filter(|line| line.starts_with("    ") && !line.starts_with("     "))
        .map(str::trim)
        .filter(|line| line.starts_with(|c: char| c.is_ascii_uppercase()))
        .map(|line| {
            line.chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    let sampled: BTreeSet<String> = one_of_each_error().iter().map(variant_name).collect();
    let unsampled: Vec<&String> = declared.difference(&sampled).collect();
    assert!(
        unsampled.is_empty(),
        "ApiError variants that `one_of_each_error` in tests/docs.rs never builds: {unsampled:?}"
    );
}

#[test]
fn every_error_code_is_in_the_table_with_its_status() {
    let doc = read("docs/errors.md");
    let rows = table_rows(&doc, ERROR_TABLE);
    let mut problems = Vec::new();
    for err in one_of_each_error() {
        let code = err.code();
        let grpc = canonical(grpc_code(err.status_class()));
        let http = err.http_status().to_string();
        let cell = format!("`{code}`");
        let rows_of_code: Vec<&Vec<String>> = rows.iter().filter(|row| row[0] == cell).collect();
        if rows_of_code.is_empty() {
            problems.push(format!(
                "{code} ({}): no row `| {cell} | {grpc} | {http} | ...`",
                variant_name(&err)
            ));
            continue;
        }
        let documented = rows_of_code
            .iter()
            .any(|row| row.len() >= 5 && row[1] == grpc && row[2] == http);
        if !documented {
            let found: Vec<String> = rows_of_code
                .iter()
                .map(|row| format!("{} {}", row[1], row.get(2).map_or("", String::as_str)))
                .collect();
            problems.push(format!(
                "{code} ({}): the code is {grpc} {http}, the table says {}",
                variant_name(&err),
                found.join(" / ")
            ));
        }
    }
    // And no row for a code the service does not have.
    let codes: BTreeSet<String> = one_of_each_error()
        .iter()
        .map(|err| format!("`{}`", err.code()))
        .collect();
    for row in &rows {
        if !codes.contains(&row[0]) {
            problems.push(format!("row {} names no code of ApiError", row[0]));
        }
    }
    assert!(
        problems.is_empty(),
        "the `{ERROR_TABLE}` table of docs/errors.md is out of step with src/error.rs:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_documented_bounds_on_messages_are_the_codes() {
    let prose = |relative: &str| {
        read(relative)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let errors = prose("docs/errors.md");
    let value = format!("{}.m3u8", "a".repeat(8192));
    let expected = [
        format!("longer than {QUOTED_CHARS} characters only its first {QUOTED_CHARS} characters"),
        format!("is at most {MAX_MESSAGE_BYTES} bytes"),
        // The sample is the real form with the run of `a` shortened.
        quote(&value)
            .to_string()
            .replace(&"a".repeat(QUOTED_CHARS), "aaaa"),
    ];
    for phrase in &expected {
        assert!(
            errors.contains(phrase.as_str()),
            "docs/errors.md does not say `{phrase}`"
        );
    }
    let bound = format!("at most {MAX_MESSAGE_BYTES} bytes");
    assert!(
        prose("docs/operations.md").contains(&bound),
        "docs/operations.md does not say the log's `error` is {bound}"
    );
}

// ---------------------------------------------------------------------------
// docs/metrics.md

/// Every `record_index_...` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("record_index_") {
        // Part of a longer identifier (`my_record_index_x`) is not a name.
        let before = rest[..at].chars().next_back();
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.insert(name.clone());
        }
        rest = &rest[at + name.len()..];
    }
    names
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    }
}

#[test]
fn every_metric_is_documented_with_its_type() {
    let doc = read("docs/metrics.md");
    let rows = table_rows(&doc, "| metric | type |");
    let mut problems = Vec::new();
    for (name, kind, _) in telemetry::ALL {
        let cell = format!("`{name}`");
        match rows.iter().find(|row| row[0] == cell) {
            None => problems.push(format!(
                "{name}: no row `| {cell} | {} | ...` in the metrics table",
                kind_name(kind)
            )),
            Some(row) if row.get(1).map(String::as_str) != Some(kind_name(kind)) => {
                problems.push(format!(
                    "{name}: it is a {}, the table says {:?}",
                    kind_name(kind),
                    row.get(1)
                ))
            }
            Some(_) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "docs/metrics.md is out of step with record_index::telemetry::ALL:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_docs_name_only_metrics_the_service_reports() {
    let mut reported = BTreeSet::new();
    for (name, kind, _) in telemetry::ALL {
        reported.insert(name.to_string());
        if kind == Kind::Histogram {
            for suffix in ["_bucket", "_sum", "_count"] {
                reported.insert(format!("{name}{suffix}"));
            }
        }
    }
    let mut unknown = Vec::new();
    for doc in [
        "docs/metrics.md",
        "docs/operations.md",
        "docs/errors.md",
        "docs/configuration.md",
    ] {
        for name in metric_names(&read(doc)) {
            if !reported.contains(&name) {
                unknown.push(format!("{name} in {doc}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "the docs name metrics that are not in record_index::telemetry::ALL:\n  {}",
        unknown.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// links between the docs

/// The anchor GitHub gives a heading: lower case, punctuation other than
/// `-` and `_` dropped, spaces as `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(markdown: &str) -> BTreeSet<String> {
    let mut in_code = false;
    let mut found = BTreeSet::new();
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            found.insert(anchor(line.trim_start_matches('#')));
        }
    }
    found
}

#[test]
fn links_between_the_docs_point_at_what_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut broken = Vec::new();
    for doc in [
        "docs/configuration.md",
        "docs/errors.md",
        "docs/metrics.md",
        "docs/operations.md",
        "README.md",
    ] {
        let text = read(doc);
        let dir = Path::new(doc).parent().unwrap_or(Path::new(""));
        for (at, _) in text.match_indices("](") {
            let target = text[at + 2..].split(')').next().unwrap_or_default();
            if target.contains("://") {
                continue;
            }
            let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
            // docs/backup.md is written on its own; the link may come first.
            if file.ends_with("backup.md") && !root.join(dir).join(file).exists() {
                continue;
            }
            let linked = if file.is_empty() {
                text.clone()
            } else {
                let path = root.join(dir).join(file);
                if !path.exists() {
                    broken.push(format!("{doc}: ({target}): no file {}", path.display()));
                    continue;
                }
                if path.is_dir() || fragment.is_empty() {
                    continue;
                }
                std::fs::read_to_string(&path).unwrap_or_default()
            };
            if !fragment.is_empty() && !anchors(&linked).contains(fragment) {
                broken.push(format!(
                    "{doc}: ({target}): no heading with the anchor #{fragment}"
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links in the docs:\n  {}",
        broken.join("\n  ")
    );
}
