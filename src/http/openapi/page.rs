//! `/api/docs`: the document as a page, operations grouped by tag with
//! their parameters, body and answers (template `api_docs.html`).

use askama::Template;
use serde_json::Value;

#[derive(Template)]
#[template(path = "api_docs.html")]
pub struct DocsPage {
    pub title: String,
    pub version: String,
    pub description: String,
    pub groups: Vec<Group>,
    pub webhooks: Vec<Operation>,
}

pub struct Group {
    pub name: String,
    pub anchor: String,
    pub description: String,
    pub operations: Vec<Operation>,
}

pub struct Operation {
    pub method: String,
    pub path: String,
    pub anchor: String,
    pub summary: String,
    pub description: String,
    pub anonymous: bool,
    pub parameters: Vec<Parameter>,
    pub body: Option<String>,
    pub responses: Vec<Answer>,
}

pub struct Parameter {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub schema: String,
    pub description: String,
}

pub struct Answer {
    pub status: String,
    /// `ok`, `redirect` or `error`: how its status is coloured.
    pub class: &'static str,
    pub description: String,
    pub schema: String,
}

const METHODS: [&str; 6] = ["get", "head", "post", "put", "patch", "delete"];

impl DocsPage {
    pub fn of(doc: &Value) -> DocsPage {
        let mut groups: Vec<Group> = doc["tags"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let name = text(&t["name"]);
                Group {
                    anchor: anchor(&name),
                    description: text(&t["description"]),
                    name,
                    operations: Vec::new(),
                }
            })
            .collect();
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for method in METHODS {
                let Some(op) = item.get(method) else {
                    continue;
                };
                let tag = op["tags"]
                    .get(0)
                    .map(text)
                    .unwrap_or_else(|| "other".into());
                let index = match groups.iter().position(|g| g.name == tag) {
                    Some(i) => i,
                    None => {
                        groups.push(Group {
                            anchor: anchor(&tag),
                            name: tag,
                            description: String::new(),
                            operations: Vec::new(),
                        });
                        groups.len() - 1
                    }
                };
                groups[index]
                    .operations
                    .push(operation(doc, method, path, op));
            }
        }
        groups.retain(|g| !g.operations.is_empty());
        let webhooks = doc["webhooks"]
            .as_object()
            .into_iter()
            .flatten()
            .flat_map(|(name, item)| {
                METHODS
                    .iter()
                    .filter_map(|m| item.get(*m).map(|op| operation(doc, m, name, op)))
                    .collect::<Vec<_>>()
            })
            .collect();
        DocsPage {
            title: text(&doc["info"]["title"]),
            version: text(&doc["info"]["version"]),
            description: text(&doc["info"]["description"]),
            groups,
            webhooks,
        }
    }
}

fn operation(doc: &Value, method: &str, path: &str, op: &Value) -> Operation {
    let parameters = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Parameter {
            name: text(&p["name"]),
            location: text(&p["in"]),
            required: p["required"].as_bool().unwrap_or(false),
            schema: schema_label(doc, &p["schema"]),
            description: text(&p["description"]),
        })
        .collect();
    let body = op["requestBody"]["content"].as_object().and_then(|content| {
        content.iter().next().map(|(media, c)| {
            let schema = schema_label(doc, &c["schema"]);
            if media == "application/json" {
                schema
            } else {
                format!("{schema} ({media})")
            }
        })
    });
    let mut responses: Vec<Answer> = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, r)| Answer {
            class: match status.as_bytes().first() {
                Some(b'1' | b'2') => "ok",
                Some(b'3') => "redirect",
                _ => "error",
            },
            status: status.clone(),
            description: text(&r["description"]),
            schema: r["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|c| schema_label(doc, &c["schema"]))
                .unwrap_or_default(),
        })
        .collect();
    responses.sort_by(|a, b| a.status.cmp(&b.status));
    let anonymous = op["security"]
        .as_array()
        .is_some_and(|s| s.iter().all(|r| r.as_object().is_some_and(|r| r.is_empty())));
    Operation {
        method: method.to_uppercase(),
        anchor: anchor(&format!("{method}-{path}")),
        path: path.to_string(),
        summary: text(&op["summary"]),
        description: text(&op["description"]),
        anonymous,
        parameters,
        body,
        responses,
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `get-/api/x/{y}` → `get-api-x-y`.
fn anchor(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// A schema in a few words: its name, `[item]`, `type (format)`, `a | null`.
fn schema_label(doc: &Value, schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        return reference.rsplit('/').next().unwrap_or(reference).to_string();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = schema[key].as_array() {
            return list
                .iter()
                .map(|s| schema_label(doc, s))
                .collect::<Vec<_>>()
                .join(" | ");
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let kinds: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(list) => list.iter().map(text).collect(),
        _ => return String::from(if schema.is_null() { "" } else { "any" }),
    };
    kinds
        .iter()
        .map(|kind| match kind.as_str() {
            "array" => format!("[{}]", schema_label(doc, &schema["items"])),
            other => match schema["format"].as_str() {
                Some(format) => format!("{other} ({format})"),
                None => other.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}
