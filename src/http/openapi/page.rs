//! `/api/docs`: the document as a page, operations grouped by tag with
//! their parameters, body and answers, then the schemas they name
//! (template `api_docs.html`). The text fields ending in `_html` are
//! escaped here (`escape`), with the document's `code` spans and links to
//! the schemas added; every other field is escaped by the template.

use askama::Template;
use serde_json::Value;

#[derive(Template)]
#[template(path = "api_docs.html")]
pub struct DocsPage {
    pub title: String,
    pub version: String,
    pub description_html: String,
    pub groups: Vec<Group>,
    pub webhooks: Vec<Operation>,
    pub schemas: Vec<Schema>,
}

/// A schema of the document's components, with its fields.
pub struct Schema {
    pub name: String,
    pub description_html: String,
    pub fields: Vec<Field>,
    /// An enumeration's values, when it is one.
    pub values: String,
}

pub struct Field {
    pub name: String,
    pub required: bool,
    pub schema_html: String,
    pub description_html: String,
}

pub struct Group {
    pub name: String,
    pub anchor: String,
    pub description_html: String,
    pub operations: Vec<Operation>,
}

pub struct Operation {
    pub method: String,
    /// The path, a line break allowed after each `/`.
    pub path_html: String,
    pub anchor: String,
    pub summary_html: String,
    pub description_html: String,
    pub anonymous: bool,
    pub parameters: Vec<Parameter>,
    pub body_html: Option<String>,
    pub responses: Vec<Answer>,
}

pub struct Parameter {
    pub name: String,
    pub location: String,
    pub required: bool,
    pub schema_html: String,
    pub description_html: String,
}

pub struct Answer {
    pub status: String,
    /// `ok`, `redirect` or `error`: how its status is coloured.
    pub class: &'static str,
    pub description_html: String,
    pub schema_html: String,
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
                    description_html: rich(&text(&t["description"])),
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
                            description_html: String::new(),
                            operations: Vec::new(),
                        });
                        groups.len() - 1
                    }
                };
                groups[index].operations.push(operation(method, path, op));
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
                    .filter_map(|m| item.get(*m).map(|op| operation(m, name, op)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let schemas = doc["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, schema)| schema_of(name, schema))
            .collect();
        DocsPage {
            title: text(&doc["info"]["title"]),
            version: text(&doc["info"]["version"]),
            description_html: rich(&text(&doc["info"]["description"])),
            groups,
            webhooks,
            schemas,
        }
    }
}

fn operation(method: &str, path: &str, op: &Value) -> Operation {
    let parameters = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Parameter {
            name: text(&p["name"]),
            location: text(&p["in"]),
            required: p["required"].as_bool().unwrap_or(false),
            schema_html: schema_label(&p["schema"]),
            description_html: rich(&text(&p["description"])),
        })
        .collect();
    let body_html = op["requestBody"]["content"]
        .as_object()
        .and_then(|content| {
            content.iter().next().map(|(media, c)| {
                let schema = schema_label(&c["schema"]);
                if media == "application/json" {
                    schema
                } else {
                    format!("{schema} ({})", escape(media))
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
            description_html: rich(&text(&r["description"])),
            schema_html: r["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|c| schema_label(&c["schema"]))
                .unwrap_or_default(),
        })
        .collect();
    responses.sort_by(|a, b| a.status.cmp(&b.status));
    let anonymous = op["security"].as_array().is_some_and(|s| {
        s.iter()
            .all(|r| r.as_object().is_some_and(|r| r.is_empty()))
    });
    Operation {
        method: method.to_uppercase(),
        anchor: anchor(&format!("{method}-{path}")),
        path_html: escape(path).replace('/', "/<wbr>"),
        summary_html: rich(&text(&op["summary"])),
        description_html: rich(&text(&op["description"])),
        anonymous,
        parameters,
        body_html,
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

fn schema_of(name: &str, schema: &Value) -> Schema {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let fields = schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(field, s)| Field {
            name: field.clone(),
            required: required.contains(&field.as_str()),
            schema_html: schema_label(s),
            description_html: rich(&text(&s["description"])),
        })
        .collect();
    let values = schema["enum"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    Schema {
        name: name.to_string(),
        description_html: rich(&text(&schema["description"])),
        fields,
        values,
    }
}

/// `s` escaped for HTML text and attributes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The document's text as HTML: escaped, its `code` spans as `<code>`.
fn rich(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut parts = s.split('`');
    if let Some(first) = parts.next() {
        out.push_str(&escape(first));
    }
    let rest: Vec<&str> = parts.collect();
    // An unpaired backtick stays a backtick.
    let pairs = rest.len() / 2 * 2;
    for (i, part) in rest.iter().enumerate() {
        if i < pairs && i % 2 == 0 {
            out.push_str("<code>");
            out.push_str(&escape(part));
            out.push_str("</code>");
        } else if i < pairs {
            out.push_str(&escape(part));
        } else {
            out.push('`');
            out.push_str(&escape(part));
        }
    }
    out
}

/// A schema in a few words, as HTML: its name (a link to it), `[item]`,
/// `type (format)`, `a | null`.
fn schema_label(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = escape(reference.rsplit('/').next().unwrap_or(reference));
        return format!("<a href=\"#schema-{name}\">{name}</a>");
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = schema[key].as_array() {
            return list
                .iter()
                .map(schema_label)
                .collect::<Vec<_>>()
                .join(" | ");
        }
    }
    if let Some(values) = schema["enum"].as_array() {
        return values
            .iter()
            .map(|v| {
                escape(
                    &v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect::<Vec<_>>()
            .join(" | ");
    }
    let kinds: Vec<String> = match &schema["type"] {
        Value::String(t) => vec![escape(t)],
        Value::Array(list) => list.iter().map(|t| escape(&text(t))).collect(),
        _ => return String::from(if schema.is_null() { "" } else { "any" }),
    };
    kinds
        .iter()
        .map(|kind| match kind.as_str() {
            "array" => format!("[{}]", schema_label(&schema["items"])),
            "null" => kind.clone(),
            other => match schema["format"].as_str() {
                Some(format) => format!("{other} ({})", escape(format)),
                None => other.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_its_code_spans_become_code() {
        assert_eq!(
            rich("a `<b>` & `c` d"),
            "a <code>&lt;b&gt;</code> &amp; <code>c</code> d"
        );
        assert_eq!(rich("an odd ` stays"), "an odd ` stays");
        assert_eq!(rich("`x` and ` y"), "<code>x</code> and ` y");
    }

    #[test]
    fn anchors_are_lowercase_words_joined_by_dashes() {
        assert_eq!(
            anchor("get-/api/chatd/1.0/users/{user}/presences"),
            "get-api-chatd-1-0-users-user-presences"
        );
        assert_eq!(anchor("canned responses"), "canned-responses");
    }

    #[test]
    fn schema_labels_name_links_arrays_and_nullable_types() {
        let label = |s: Value| schema_label(&s);
        assert_eq!(
            label(serde_json::json!({"$ref": "#/components/schemas/Room"})),
            "<a href=\"#schema-Room\">Room</a>"
        );
        assert_eq!(
            label(serde_json::json!({"type": ["string", "null"], "format": "uuid"})),
            "string (uuid) | null"
        );
        assert_eq!(
            label(serde_json::json!({"type": "array", "items": {"type": "integer"}})),
            "[integer]"
        );
    }

    #[test]
    fn the_page_shows_every_operation_of_the_document() {
        let doc = crate::http::openapi::document();
        let page = DocsPage::of(doc);
        let shown: usize = page.groups.iter().map(|g| g.operations.len()).sum();
        assert_eq!(shown, crate::http::openapi::operations(doc).len());
        assert_eq!(page.webhooks.len(), 1);
        assert!(page.schemas.iter().any(|s| s.name == "Room"));
        let html = page.render().expect("the page renders");
        assert!(html.contains("/chatplugin.authenticate"));
    }
}
