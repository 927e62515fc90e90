//! Block Kit validation as Slack does it: limits and required fields, each violation
//! reported with a JSON pointer (`[ERROR] must be less than 3001 characters
//! [json-pointer:/blocks/0/text/text]`).

use serde_json::Value;
use std::collections::HashSet;

const BLOCK_TYPES: &[&str] = &[
    "section",
    "actions",
    "context",
    "divider",
    "header",
    "input",
    "image",
    "rich_text",
    "markdown",
    "file",
    "video",
];

struct Check {
    errors: Vec<String>,
}

fn chars(v: &Value) -> usize {
    v.as_str().map(|s| s.chars().count()).unwrap_or(0)
}

impl Check {
    fn err(&mut self, pointer: &str, message: impl AsRef<str>) {
        self.errors.push(format!(
            "[ERROR] {} [json-pointer:{pointer}]",
            message.as_ref()
        ));
    }

    fn max_len(&mut self, v: &Value, max: usize, pointer: &str) {
        if chars(v) > max {
            self.err(pointer, format!("must be less than {} characters", max + 1));
        }
    }

    /// A text object: `type` plain_text|mrkdwn, non-empty `text` within `max`.
    fn text(&mut self, v: &Value, max: usize, pointer: &str, plain_only: bool) {
        let Some(obj) = v.as_object() else {
            self.err(pointer, "must be a text object");
            return;
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("plain_text") => {}
            Some("mrkdwn") if !plain_only => {}
            Some("mrkdwn") => self.err(&format!("{pointer}/type"), "must be plain_text"),
            _ => self.err(
                &format!("{pointer}/type"),
                "must be one of plain_text, mrkdwn",
            ),
        }
        match obj.get("text") {
            Some(Value::String(s)) if !s.is_empty() => {
                if s.chars().count() > max {
                    self.err(
                        &format!("{pointer}/text"),
                        format!("must be less than {} characters", max + 1),
                    );
                }
            }
            _ => self.err(&format!("{pointer}/text"), "must be more than 0 characters"),
        }
    }

    fn id(&mut self, v: Option<&Value>, pointer: &str) {
        if let Some(v) = v {
            self.max_len(v, 255, pointer);
        }
    }

    fn options(&mut self, v: Option<&Value>, max: usize, pointer: &str) {
        let Some(list) = v.and_then(Value::as_array) else {
            self.err(pointer, "is required");
            return;
        };
        if list.is_empty() || list.len() > max {
            self.err(pointer, format!("must provide between 1 and {max} items"));
        }
        for (i, o) in list.iter().enumerate() {
            let p = format!("{pointer}/{i}");
            match o.get("text") {
                Some(t) => self.text(t, 75, &format!("{p}/text"), false),
                None => self.err(&format!("{p}/text"), "is required"),
            }
            match o.get("value") {
                Some(v) => self.max_len(v, 150, &format!("{p}/value")),
                None => self.err(&format!("{p}/value"), "is required"),
            }
        }
    }

    fn element(&mut self, e: &Value, pointer: &str) {
        self.id(e.get("action_id"), &format!("{pointer}/action_id"));
        match e.get("type").and_then(Value::as_str) {
            Some("button") => {
                match e.get("text") {
                    Some(t) => self.text(t, 75, &format!("{pointer}/text"), true),
                    None => self.err(&format!("{pointer}/text"), "is required"),
                }
                if let Some(v) = e.get("value") {
                    self.max_len(v, 2000, &format!("{pointer}/value"));
                }
                if let Some(u) = e.get("url") {
                    self.max_len(u, 3000, &format!("{pointer}/url"));
                }
            }
            Some("static_select") | Some("multi_static_select") => {
                if e.get("option_groups").is_none() {
                    self.options(e.get("options"), 100, &format!("{pointer}/options"));
                }
                if let Some(p) = e.get("placeholder") {
                    self.text(p, 150, &format!("{pointer}/placeholder"), true);
                }
            }
            Some("radio_buttons") | Some("checkboxes") => {
                self.options(e.get("options"), 10, &format!("{pointer}/options"))
            }
            Some("overflow") => self.options(e.get("options"), 5, &format!("{pointer}/options")),
            Some("plain_text_input") => {
                if let Some(n) = e.get("max_length").and_then(Value::as_u64) {
                    if n > 3000 {
                        self.err(&format!("{pointer}/max_length"), "must be less than 3001");
                    }
                }
                if let Some(p) = e.get("placeholder") {
                    self.text(p, 150, &format!("{pointer}/placeholder"), true);
                }
            }
            Some("image")
            | Some("datepicker")
            | Some("timepicker")
            | Some("users_select")
            | Some("conversations_select")
            | Some("channels_select")
            | Some("external_select")
            | Some("number_input")
            | Some("email_text_input")
            | Some("url_text_input")
            | Some("rich_text_input")
            | Some("multi_users_select")
            | Some("datetimepicker") => {}
            Some(other) => self.err(
                &format!("{pointer}/type"),
                format!("unknown element type {other}"),
            ),
            None => self.err(&format!("{pointer}/type"), "is required"),
        }
        if let Some(confirm) = e.get("confirm") {
            for (field, max) in [("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)] {
                if let Some(t) = confirm.get(field) {
                    self.text(t, max, &format!("{pointer}/confirm/{field}"), false);
                }
            }
        }
    }

    fn block(&mut self, b: &Value, pointer: &str, block_ids: &mut HashSet<String>) {
        if let Some(id) = b.get("block_id") {
            self.id(Some(id), &format!("{pointer}/block_id"));
            if let Some(s) = id.as_str() {
                if !block_ids.insert(s.to_string()) {
                    self.err(&format!("{pointer}/block_id"), "must be unique");
                }
            }
        }
        let kind = b.get("type").and_then(Value::as_str).unwrap_or("");
        if !BLOCK_TYPES.contains(&kind) {
            self.err(
                &format!("{pointer}/type"),
                format!("must be a valid enum value ({kind})"),
            );
            return;
        }
        match kind {
            "section" => {
                let text = b.get("text");
                let fields = b.get("fields").and_then(Value::as_array);
                if text.is_none() && fields.is_none() {
                    self.err(pointer, "must provide either text or fields");
                }
                if let Some(t) = text {
                    self.text(t, 3000, &format!("{pointer}/text"), false);
                }
                if let Some(fields) = fields {
                    if fields.len() > 10 {
                        self.err(
                            &format!("{pointer}/fields"),
                            "must provide no more than 10 items",
                        );
                    }
                    for (i, f) in fields.iter().enumerate() {
                        self.text(f, 2000, &format!("{pointer}/fields/{i}"), false);
                    }
                }
                if let Some(acc) = b.get("accessory") {
                    self.element(acc, &format!("{pointer}/accessory"));
                }
            }
            "header" => match b.get("text") {
                Some(t) => self.text(t, 150, &format!("{pointer}/text"), true),
                None => self.err(&format!("{pointer}/text"), "is required"),
            },
            "actions" => {
                let elements = b.get("elements").and_then(Value::as_array);
                match elements {
                    Some(list) if !list.is_empty() && list.len() <= 25 => {
                        let mut action_ids = HashSet::new();
                        for (i, e) in list.iter().enumerate() {
                            let p = format!("{pointer}/elements/{i}");
                            if let Some(id) = e.get("action_id").and_then(Value::as_str) {
                                if !action_ids.insert(id.to_string()) {
                                    self.err(
                                        &format!("{p}/action_id"),
                                        "must be unique within the block",
                                    );
                                }
                            }
                            self.element(e, &p);
                        }
                    }
                    _ => self.err(
                        &format!("{pointer}/elements"),
                        "must provide between 1 and 25 items",
                    ),
                }
            }
            "context" => match b.get("elements").and_then(Value::as_array) {
                Some(list) if !list.is_empty() && list.len() <= 10 => {
                    for (i, e) in list.iter().enumerate() {
                        if e.get("type").and_then(Value::as_str) != Some("image") {
                            self.text(e, 3000, &format!("{pointer}/elements/{i}"), false);
                        }
                    }
                }
                _ => self.err(
                    &format!("{pointer}/elements"),
                    "must provide between 1 and 10 items",
                ),
            },
            "input" => {
                match b.get("label") {
                    Some(t) => self.text(t, 2000, &format!("{pointer}/label"), true),
                    None => self.err(&format!("{pointer}/label"), "is required"),
                }
                if let Some(h) = b.get("hint") {
                    self.text(h, 2000, &format!("{pointer}/hint"), true);
                }
                match b.get("element") {
                    Some(e) => self.element(e, &format!("{pointer}/element")),
                    None => self.err(&format!("{pointer}/element"), "is required"),
                }
            }
            "image" => {
                if let Some(a) = b.get("alt_text") {
                    self.max_len(a, 2000, &format!("{pointer}/alt_text"));
                }
            }
            _ => {}
        }
    }
}

/// Validates a `blocks` array; `max` is 50 for messages, 100 for views.
pub fn validate_blocks(blocks: &Value, max: usize, prefix: &str) -> Vec<String> {
    let mut check = Check { errors: Vec::new() };
    let Some(list) = blocks.as_array() else {
        check.err(prefix, "must be an array");
        return check.errors;
    };
    if list.len() > max {
        check.err(prefix, format!("no more than {max} items allowed"));
    }
    let mut block_ids = HashSet::new();
    for (i, b) in list.iter().enumerate() {
        check.block(b, &format!("{prefix}/{i}"), &mut block_ids);
    }
    check.errors
}

/// Validates a view for views.open/update/publish.
pub fn validate_view(view: &Value, publish: bool) -> Vec<String> {
    let mut check = Check { errors: Vec::new() };
    let kind = view.get("type").and_then(Value::as_str).unwrap_or("");
    match (publish, kind) {
        (true, "home") | (false, "modal") => {}
        (true, _) => check.err("/view/type", "must be home"),
        (false, _) => check.err("/view/type", "must be modal"),
    }
    if kind == "modal" {
        match view.get("title") {
            Some(t) => check.text(t, 24, "/view/title", true),
            None => check.err("/view/title", "is required"),
        }
        for field in ["submit", "close"] {
            if let Some(t) = view.get(field) {
                check.text(t, 24, &format!("/view/{field}"), true);
            }
        }
        let has_input = view
            .get("blocks")
            .and_then(Value::as_array)
            .is_some_and(|b| {
                b.iter()
                    .any(|b| b.get("type").and_then(Value::as_str) == Some("input"))
            });
        if has_input && view.get("submit").is_none() {
            check.err("/view/submit", "is required when the view has input blocks");
        }
    }
    for (field, max) in [
        ("callback_id", 255),
        ("external_id", 255),
        ("private_metadata", 3000),
    ] {
        if let Some(v) = view.get(field) {
            check.max_len(v, max, &format!("/view/{field}"));
        }
    }
    let mut errors = check.errors;
    match view.get("blocks") {
        Some(blocks) => errors.extend(validate_blocks(blocks, 100, "/view/blocks")),
        None => errors.push("[ERROR] is required [json-pointer:/view/blocks]".into()),
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(text: &str) -> Value {
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
    }

    #[test]
    fn block_count_and_section_length() {
        let fifty: Vec<_> = (0..50).map(|_| section("x")).collect();
        assert!(validate_blocks(&json!(fifty), 50, "/blocks").is_empty());
        let fifty_one: Vec<_> = (0..51).map(|_| section("x")).collect();
        assert_eq!(validate_blocks(&json!(fifty_one), 50, "/blocks").len(), 1);
        assert!(validate_blocks(&json!([section(&"a".repeat(3000))]), 50, "/blocks").is_empty());
        let errors = validate_blocks(&json!([section(&"a".repeat(3001))]), 50, "/blocks");
        assert_eq!(
            errors,
            vec!["[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
        );
        // Characters, not bytes.
        assert!(validate_blocks(&json!([section(&"é".repeat(3000))]), 50, "/blocks").is_empty());
    }

    #[test]
    fn buttons_options_and_required_fields() {
        let long_button = json!([{ "type": "actions", "elements": [{ "type": "button", "action_id": "a", "text": { "type": "plain_text", "text": "b".repeat(76) } }] }]);
        assert_eq!(validate_blocks(&long_button, 50, "/blocks").len(), 1);
        let radio = json!([{ "type": "input", "label": { "type": "plain_text", "text": "L" }, "element": {
            "type": "radio_buttons", "action_id": "v",
            "options": (0..11).map(|i| json!({ "text": { "type": "plain_text", "text": i.to_string() }, "value": i.to_string() })).collect::<Vec<_>>() } }]);
        assert_eq!(validate_blocks(&radio, 50, "/blocks").len(), 1);
        assert_eq!(
            validate_blocks(&json!([{ "type": "section" }]), 50, "/blocks").len(),
            1
        );
        assert_eq!(
            validate_blocks(&json!([{ "type": "sparkle" }]), 50, "/blocks").len(),
            1
        );
        let dup =
            json!([{ "type": "divider", "block_id": "x" }, { "type": "divider", "block_id": "x" }]);
        assert_eq!(validate_blocks(&dup, 50, "/blocks").len(), 1);
    }

    #[test]
    fn modal_title_and_submit() {
        let modal = json!({ "type": "modal", "title": { "type": "plain_text", "text": "A title that is far too long" },
            "blocks": [{ "type": "input", "label": { "type": "plain_text", "text": "L" }, "element": { "type": "plain_text_input", "action_id": "v" } }] });
        let errors = validate_view(&modal, false);
        assert_eq!(errors.len(), 2, "{errors:?}");
    }
}
