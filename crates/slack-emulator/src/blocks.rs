//! Block Kit validation with Slack's limits (`slack_facts::block_kit`; docs/slack-facts.md).
//!
//! Pure functions from JSON to a list of Slack-style messages, each naming the offending field
//! by JSON pointer, e.g. `[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]`.
//! An empty list means the payload is valid. Lengths count Unicode scalar values, as Slack does.
//! Message blocks answer `invalid_blocks`; views answer `invalid_arguments` (see `methods`).

use serde_json::Value;
use std::collections::HashSet;

use slack_facts::block_kit::*;
pub use slack_facts::block_kit::{MAX_MESSAGE_BLOCKS, MAX_VIEW_BLOCKS};

/// Which kind of view a payload must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewKind {
    Modal,
    Home,
}

impl ViewKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ViewKind::Modal => "modal",
            ViewKind::Home => "home",
        }
    }
}

/// Gives every block without a `block_id` a generated one, as Slack does when it stores a
/// message or view (short random ids such as `"aB3x9"`).
pub fn fill_block_ids(blocks: &mut Value) {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let Some(items) = blocks.as_array_mut() else {
        return;
    };
    for block in items {
        if let Some(obj) = block.as_object_mut() {
            if obj.get("block_id").is_none_or(Value::is_null) {
                let id: String = (0..5)
                    .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
                    .collect();
                obj.insert("block_id".into(), Value::String(id));
            }
        }
    }
}

/// Validates the `blocks` of a message (chat.postMessage, chat.update, chat.postEphemeral).
pub fn validate_message_blocks(blocks: &Value) -> Vec<String> {
    let mut c = Checker::default();
    c.blocks(blocks, "/blocks", MAX_MESSAGE_BLOCKS);
    if c.markdown_chars > MAX_MARKDOWN_TOTAL {
        c.error(
            "/blocks",
            format!("markdown blocks must be less than {MAX_MARKDOWN_TOTAL} characters in total"),
        );
    }
    c.errors
}

/// Validates a view payload for views.open/push/update (modal) or views.publish (home).
pub fn validate_view(view: &Value, kind: ViewKind) -> Vec<String> {
    let mut c = Checker::default();
    let Some(obj) = view.as_object() else {
        c.error("/view", "failed to match all allowed schemas");
        return c.errors;
    };
    match obj.get("type").and_then(Value::as_str) {
        None => {
            c.error("/view", "failed to match all allowed schemas");
            c.error("/view", "missing required field: type");
            return c.errors;
        }
        Some(t) if t != kind.as_str() => {
            c.error("/view/type", format!("must be {}", kind.as_str()));
            return c.errors;
        }
        Some(_) => {}
    }
    if kind == ViewKind::Modal {
        c.text(
            obj.get("title"),
            "/view/title",
            TextRule::plain(MODAL_TITLE_MAX).required(),
        );
        c.text(
            obj.get("close"),
            "/view/close",
            TextRule::plain(MODAL_TITLE_MAX),
        );
        c.text(
            obj.get("submit"),
            "/view/submit",
            TextRule::plain(MODAL_TITLE_MAX),
        );
        let has_input = obj
            .get("blocks")
            .and_then(Value::as_array)
            .is_some_and(|b| {
                b.iter()
                    .any(|b| b.get("type") == Some(&Value::from("input")))
            });
        if has_input && obj.get("submit").is_none_or(Value::is_null) {
            c.error("/view/submit", "missing required field: submit");
        }
    }
    c.max_str(obj.get("callback_id"), "/view/callback_id", MAX_ID);
    c.max_str(obj.get("external_id"), "/view/external_id", MAX_ID);
    c.max_str(
        obj.get("private_metadata"),
        "/view/private_metadata",
        PRIVATE_METADATA_MAX,
    );
    match obj.get("blocks") {
        None => c.error("/view", "missing required field: blocks"),
        Some(blocks) => c.blocks(blocks, "/view/blocks", MAX_VIEW_BLOCKS),
    }
    c.errors
}

/// What a text object may contain.
#[derive(Clone, Copy)]
struct TextRule {
    plain_only: bool,
    max: usize,
    required: bool,
}

impl TextRule {
    fn plain(max: usize) -> Self {
        Self {
            plain_only: true,
            max,
            required: false,
        }
    }
    fn any(max: usize) -> Self {
        Self {
            plain_only: false,
            max,
            required: false,
        }
    }
    fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<String>,
    block_ids: HashSet<String>,
    markdown_chars: usize,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn kind_of(v: &Value) -> Option<&str> {
    v.get("type").and_then(Value::as_str)
}

/// Element types the emulator accepts without checking their fields.
const UNCHECKED_ELEMENTS: &[&str] = &[
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
    "file_input",
    "workflow_button",
    "feedback_buttons",
    "icon_button",
];

/// Slack's table block: at most this many rows, and cells per row.
const TABLE_MAX_ROWS: usize = 100;
const TABLE_MAX_COLUMNS: usize = 20;

impl Checker {
    fn error(&mut self, pointer: &str, message: impl std::fmt::Display) {
        self.errors
            .push(format!("[ERROR] {message} [json-pointer:{pointer}]"));
    }

    fn too_long(&mut self, pointer: &str, max: usize) {
        self.error(pointer, format!("must be less than {} characters", max + 1));
    }

    /// An optional string field with a maximum length.
    fn max_str(&mut self, v: Option<&Value>, pointer: &str, max: usize) {
        match v {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if chars(s) > max => self.too_long(pointer, max),
            Some(Value::String(_)) => {}
            Some(_) => self.error(pointer, "must be a string"),
        }
    }

    fn required_str(&mut self, parent: &Value, field: &str, pointer: &str, max: usize) {
        match parent.get(field) {
            None | Some(Value::Null) => {
                self.error(pointer, format!("missing required field: {field}"));
            }
            v => self.max_str(v, &format!("{pointer}/{field}"), max),
        }
    }

    /// An optional array field: returns its items (empty when absent) after checking the count.
    fn array<'v>(
        &mut self,
        v: Option<&'v Value>,
        pointer: &str,
        max: usize,
        min: usize,
    ) -> &'v [Value] {
        match v {
            None | Some(Value::Null) if min == 0 => &[],
            Some(Value::Array(items)) => {
                if items.len() > max {
                    self.error(pointer, format!("no more than {max} items allowed"));
                } else if items.len() < min {
                    self.error(pointer, format!("must provide at least {min} items"));
                }
                items
            }
            None | Some(Value::Null) => {
                self.error(pointer, "missing required field");
                &[]
            }
            Some(_) => {
                self.error(pointer, "must be an array");
                &[]
            }
        }
    }

    fn text(&mut self, v: Option<&Value>, pointer: &str, rule: TextRule) {
        let v = match v {
            None | Some(Value::Null) => {
                if rule.required {
                    self.error(pointer, "missing required field: text");
                }
                return;
            }
            Some(v) => v,
        };
        if !v.is_object() {
            self.error(pointer, "must be a text object");
            return;
        }
        match kind_of(v) {
            Some("plain_text") => {}
            Some("mrkdwn") if !rule.plain_only => {}
            Some("mrkdwn") => {
                self.error(&format!("{pointer}/type"), "must be plain_text");
                return;
            }
            Some(_) => {
                self.error(
                    &format!("{pointer}/type"),
                    "must be one of plain_text, mrkdwn",
                );
                return;
            }
            None => {
                self.error(pointer, "missing required field: type");
                return;
            }
        }
        let text_ptr = format!("{pointer}/text");
        match v.get("text") {
            Some(Value::String(s)) if s.is_empty() => {
                self.error(&text_ptr, "must be more than 0 characters");
            }
            Some(Value::String(s)) if chars(s) > rule.max => self.too_long(&text_ptr, rule.max),
            Some(Value::String(_)) => {}
            _ => self.error(pointer, "missing required field: text"),
        }
    }

    fn blocks(&mut self, blocks: &Value, pointer: &str, max: usize) {
        let Some(items) = blocks.as_array() else {
            self.error(pointer, "must be an array");
            return;
        };
        if items.len() > max {
            self.error(pointer, format!("no more than {max} items allowed"));
        }
        for (i, block) in items.iter().enumerate() {
            self.block(block, &format!("{pointer}/{i}"));
        }
    }

    fn block(&mut self, b: &Value, p: &str) {
        if !b.is_object() {
            self.error(p, "must be an object");
            return;
        }
        if let Some(id) = b.get("block_id") {
            self.block_id(id, p);
        }
        match kind_of(b) {
            Some("section") => self.section(b, p),
            Some("actions") => self.actions(b, p),
            Some("context") => self.context(b, p),
            Some("divider") => {}
            Some("header") => self.text(
                b.get("text"),
                &format!("{p}/text"),
                TextRule::plain(HEADER_TEXT_MAX).required(),
            ),
            Some("input") => self.input(b, p),
            Some("image") => self.image_block(b, p),
            Some("rich_text") => self.rich_text(b, p),
            Some("markdown") => self.markdown(b, p),
            Some("file") => {
                self.required_str(b, "external_id", p, MAX_ID);
                self.required_str(b, "source", p, MAX_ID);
            }
            Some("video") => self.video(b, p),
            Some("table") => self.table(b, p),
            Some("call") => self.required_str(b, "call_id", p, MAX_ID),
            Some("context_actions") => {
                let elements = self.array(b.get("elements"), &format!("{p}/elements"), 5, 1);
                for (i, e) in elements.iter().enumerate() {
                    self.element(e, &format!("{p}/elements/{i}"));
                }
            }
            Some(other) => self.unsupported(p, "block", other),
            None => self.error(p, "missing required field: type"),
        }
    }

    /// A block's id: at most [`MAX_ID`] characters and unique within the payload.
    fn block_id(&mut self, id: &Value, p: &str) {
        self.max_str(Some(id), &format!("{p}/block_id"), MAX_ID);
        if let Some(id) = id.as_str() {
            if !self.block_ids.insert(id.to_string()) {
                self.error(
                    &format!("{p}/block_id"),
                    format!("duplicate block_id: {id}"),
                );
            }
        }
    }

    /// A type Slack does not know, as `block` or `element`.
    fn unsupported(&mut self, p: &str, what: &str, other: &str) {
        self.error(p, "failed to match all allowed schemas");
        self.error(
            &format!("{p}/type"),
            format!("unsupported {what} type: {other}"),
        );
    }

    fn actions(&mut self, b: &Value, p: &str) {
        let elements = self.array(
            b.get("elements"),
            &format!("{p}/elements"),
            MAX_ACTIONS_ELEMENTS,
            1,
        );
        for (i, e) in elements.iter().enumerate() {
            self.element(e, &format!("{p}/elements/{i}"));
        }
        self.unique_action_ids(elements, &format!("{p}/elements"));
    }

    /// Action ids must be unique within a block (Slack refuses the payload otherwise).
    fn unique_action_ids(&mut self, elements: &[Value], p: &str) {
        let mut seen = HashSet::new();
        for (i, e) in elements.iter().enumerate() {
            if let Some(id) = e.get("action_id").and_then(Value::as_str) {
                if !seen.insert(id) {
                    self.error(
                        &format!("{p}/{i}/action_id"),
                        format!("duplicate action_id: {id}"),
                    );
                }
            }
        }
    }

    /// A table: rows of cells (`raw_text` or `rich_text`), at most 100 rows of 20 cells.
    fn table(&mut self, b: &Value, p: &str) {
        let rows = self.array(b.get("rows"), &format!("{p}/rows"), TABLE_MAX_ROWS, 1);
        for (r, row) in rows.iter().enumerate() {
            let rp = format!("{p}/rows/{r}");
            let cells = self.array(Some(row), &rp, TABLE_MAX_COLUMNS, 1);
            for (i, cell) in cells.iter().enumerate() {
                let cp = format!("{rp}/{i}");
                match kind_of(cell) {
                    Some("raw_text") => {
                        if cell.get("text").and_then(Value::as_str).is_none() {
                            self.error(&cp, "missing required field: text");
                        }
                    }
                    Some("rich_text") => self.rich_text(cell, &cp),
                    Some(other) => self.unsupported(&cp, "cell", other),
                    None => self.error(&cp, "missing required field: type"),
                }
            }
        }
    }

    fn context(&mut self, b: &Value, p: &str) {
        let elements = self.array(
            b.get("elements"),
            &format!("{p}/elements"),
            MAX_CONTEXT_ELEMENTS,
            1,
        );
        for (i, e) in elements.iter().enumerate() {
            let ep = format!("{p}/elements/{i}");
            if kind_of(e) == Some("image") {
                self.image_element(e, &ep);
            } else {
                self.text(Some(e), &ep, TextRule::any(CONTEXT_TEXT_MAX).required());
            }
        }
    }

    fn image_block(&mut self, b: &Value, p: &str) {
        self.image_element(b, p);
        self.text(
            b.get("title"),
            &format!("{p}/title"),
            TextRule::plain(LABEL_MAX),
        );
    }

    fn rich_text(&mut self, b: &Value, p: &str) {
        self.array(b.get("elements"), &format!("{p}/elements"), usize::MAX, 0);
        if b.get("elements").is_none() {
            self.error(p, "missing required field: elements");
        }
    }

    /// Markdown blocks only add to the payload's total (checked once, at the end).
    fn markdown(&mut self, b: &Value, p: &str) {
        match b.get("text").and_then(Value::as_str) {
            Some(t) => self.markdown_chars += chars(t),
            None => self.error(p, "missing required field: text"),
        }
    }

    fn video(&mut self, b: &Value, p: &str) {
        self.required_str(b, "alt_text", p, ALT_TEXT_MAX);
        self.required_str(b, "thumbnail_url", p, URL_MAX);
        self.required_str(b, "video_url", p, URL_MAX);
        self.text(
            b.get("title"),
            &format!("{p}/title"),
            TextRule::plain(200).required(),
        );
    }

    fn section(&mut self, b: &Value, p: &str) {
        let has_text = b.get("text").is_some_and(|t| !t.is_null());
        let has_fields = b.get("fields").is_some_and(|f| !f.is_null());
        if !has_text && !has_fields {
            self.error(p, "must provide either text or fields");
        }
        self.text(
            b.get("text"),
            &format!("{p}/text"),
            TextRule::any(SECTION_TEXT_MAX),
        );
        let fields = self.array(
            b.get("fields"),
            &format!("{p}/fields"),
            MAX_SECTION_FIELDS,
            0,
        );
        for (i, f) in fields.iter().enumerate() {
            self.text(
                Some(f),
                &format!("{p}/fields/{i}"),
                TextRule::any(SECTION_FIELD_MAX).required(),
            );
        }
        if let Some(acc) = b.get("accessory").filter(|a| !a.is_null()) {
            let ap = format!("{p}/accessory");
            if kind_of(acc) == Some("image") {
                self.image_element(acc, &ap);
            } else {
                self.element(acc, &ap);
            }
        }
    }

    fn input(&mut self, b: &Value, p: &str) {
        self.text(
            b.get("label"),
            &format!("{p}/label"),
            TextRule::plain(LABEL_MAX).required(),
        );
        self.text(
            b.get("hint"),
            &format!("{p}/hint"),
            TextRule::plain(LABEL_MAX),
        );
        match b.get("element") {
            Some(e) if e.is_object() => self.element(e, &format!("{p}/element")),
            _ => self.error(p, "missing required field: element"),
        }
    }

    fn image_element(&mut self, e: &Value, p: &str) {
        if e.get("image_url").is_none() && e.get("slack_file").is_none() {
            self.error(p, "missing required field: image_url");
        }
        self.max_str(e.get("image_url"), &format!("{p}/image_url"), URL_MAX);
        self.required_str(e, "alt_text", p, ALT_TEXT_MAX);
    }

    /// Interactive elements (in actions blocks, section accessories and input blocks).
    fn element(&mut self, e: &Value, p: &str) {
        self.max_str(e.get("action_id"), &format!("{p}/action_id"), MAX_ID);
        self.text(
            e.get("placeholder"),
            &format!("{p}/placeholder"),
            TextRule::plain(150),
        );
        if let Some(confirm) = e.get("confirm").filter(|c| !c.is_null()) {
            self.confirm(confirm, &format!("{p}/confirm"));
        }
        match kind_of(e) {
            Some("button") => self.button(e, p),
            Some("static_select" | "multi_static_select") => self.static_select(e, p),
            Some("radio_buttons" | "checkboxes") => {
                self.option_list(e.get("options"), &format!("{p}/options"), MAX_RADIO_OPTIONS);
                self.initial_options(e, p);
            }
            Some("overflow") => self.option_list(e.get("options"), &format!("{p}/options"), 5),
            Some("plain_text_input") => self.plain_text_input(e, p),
            Some("datepicker") => self.date_field(e, "initial_date", p, is_date),
            Some("timepicker") => self.date_field(e, "initial_time", p, is_time),
            Some("datetimepicker") => {
                if let Some(v) = e.get("initial_date_time").filter(|v| !v.is_null()) {
                    if v.as_i64().is_none_or(|t| t < 0) {
                        self.error(
                            &format!("{p}/initial_date_time"),
                            "must be a UNIX timestamp in seconds",
                        );
                    }
                }
            }
            Some(kind) if UNCHECKED_ELEMENTS.contains(&kind) => {}
            Some(other) => self.unsupported(p, "element", other),
            None => self.error(p, "missing required field: type"),
        }
    }

    /// A picker's initial value, in the format Slack requires.
    fn date_field(&mut self, e: &Value, field: &str, p: &str, valid: fn(&str) -> bool) {
        match e.get(field) {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if valid(v) => {}
            Some(_) => {
                let format = if field == "initial_time" {
                    "HH:mm"
                } else {
                    "YYYY-MM-DD"
                };
                self.error(
                    &format!("{p}/{field}"),
                    format!("must be a valid {format} value"),
                );
            }
        }
    }

    fn button(&mut self, e: &Value, p: &str) {
        match e.get("style") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "primary" || s == "danger" => {}
            Some(_) => self.error(
                &format!("{p}/style"),
                "must be one of the following values: primary, danger",
            ),
        }
        self.text(
            e.get("text"),
            &format!("{p}/text"),
            TextRule::plain(BUTTON_TEXT_MAX).required(),
        );
        self.max_str(e.get("value"), &format!("{p}/value"), BUTTON_VALUE_MAX);
        self.max_str(e.get("url"), &format!("{p}/url"), URL_MAX);
        self.max_str(
            e.get("accessibility_label"),
            &format!("{p}/accessibility_label"),
            75,
        );
    }

    /// Options or option groups (options are required only without groups).
    fn static_select(&mut self, e: &Value, p: &str) {
        if e.get("option_groups").is_none() {
            self.option_list(
                e.get("options"),
                &format!("{p}/options"),
                MAX_SELECT_OPTIONS,
            );
        }
        let groups = self.array(
            e.get("option_groups"),
            &format!("{p}/option_groups"),
            100,
            0,
        );
        for (i, g) in groups.iter().enumerate() {
            let gp = format!("{p}/option_groups/{i}");
            self.text(
                g.get("label"),
                &format!("{gp}/label"),
                TextRule::plain(BUTTON_TEXT_MAX).required(),
            );
            self.option_list(
                g.get("options"),
                &format!("{gp}/options"),
                MAX_SELECT_OPTIONS,
            );
        }
        self.initial_options(e, p);
    }

    fn plain_text_input(&mut self, e: &Value, p: &str) {
        for field in ["min_length", "max_length"] {
            if let Some(n) = e.get(field) {
                match n.as_u64() {
                    Some(n) if n <= 3000 => {}
                    _ => self.error(
                        &format!("{p}/{field}"),
                        "must be an integer no greater than 3000",
                    ),
                }
            }
        }
        self.max_str(
            e.get("initial_value"),
            &format!("{p}/initial_value"),
            PLAIN_TEXT_INPUT_MAX,
        );
    }

    /// A required array of 1 to `max` options at `p`, each checked.
    fn option_list(&mut self, v: Option<&Value>, p: &str, max: usize) {
        let opts = self.array(v, p, max, 1);
        self.options(opts, p);
    }

    fn options(&mut self, options: &[Value], p: &str) {
        for (i, o) in options.iter().enumerate() {
            self.option(o, &format!("{p}/{i}"));
        }
    }

    fn option(&mut self, o: &Value, p: &str) {
        self.text(
            o.get("text"),
            &format!("{p}/text"),
            TextRule::any(75).required(),
        );
        self.text(
            o.get("description"),
            &format!("{p}/description"),
            TextRule::any(75),
        );
        match o.get("value") {
            None | Some(Value::Null) => self.error(p, "missing required field: value"),
            v => self.max_str(v, &format!("{p}/value"), 150),
        }
        self.max_str(o.get("url"), &format!("{p}/url"), URL_MAX);
    }

    fn initial_options(&mut self, e: &Value, p: &str) {
        if let Some(o) = e.get("initial_option").filter(|o| !o.is_null()) {
            self.option(o, &format!("{p}/initial_option"));
        }
        if let Some(Value::Array(opts)) = e.get("initial_options") {
            for (i, o) in opts.iter().enumerate() {
                self.option(o, &format!("{p}/initial_options/{i}"));
            }
        }
    }

    fn confirm(&mut self, c: &Value, p: &str) {
        self.text(
            c.get("title"),
            &format!("{p}/title"),
            TextRule::plain(100).required(),
        );
        self.text(
            c.get("text"),
            &format!("{p}/text"),
            TextRule::any(300).required(),
        );
        self.text(
            c.get("confirm"),
            &format!("{p}/confirm"),
            TextRule::plain(30).required(),
        );
        self.text(
            c.get("deny"),
            &format!("{p}/deny"),
            TextRule::plain(30).required(),
        );
    }
}

/// `YYYY-MM-DD`, a real calendar date.
fn is_date(v: &str) -> bool {
    v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
}

/// `HH:mm`, 24-hour.
fn is_time(v: &str) -> bool {
    v.len() == 5 && chrono::NaiveTime::parse_from_str(v, "%H:%M").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn button_styles_pickers_and_action_ids_are_checked() {
        let mut styled = button("b");
        styled["style"] = json!("primary");
        assert!(validate_message_blocks(
            &json!([{ "type": "actions", "elements": [styled.clone()] }])
        )
        .is_empty());
        styled["style"] = json!("green");
        let errors = validate_message_blocks(&json!([{ "type": "actions", "elements": [styled] }]));
        assert_eq!(errors, vec!["[ERROR] must be one of the following values: primary, danger [json-pointer:/blocks/0/elements/0/style]"]);

        let picker = |kind: &str, field: &str, v: &str| json!([{ "type": "actions", "elements": [{ "type": kind, "action_id": "p", field: v }] }]);
        assert!(
            validate_message_blocks(&picker("datepicker", "initial_date", "2026-02-28")).is_empty()
        );
        assert!(
            !validate_message_blocks(&picker("datepicker", "initial_date", "2026-02-30"))
                .is_empty()
        );
        assert!(
            !validate_message_blocks(&picker("datepicker", "initial_date", "28/02/2026"))
                .is_empty()
        );
        assert!(validate_message_blocks(&picker("timepicker", "initial_time", "09:30")).is_empty());
        assert!(
            !validate_message_blocks(&picker("timepicker", "initial_time", "9:30am")).is_empty()
        );

        let twice = json!([{ "type": "actions", "elements": [button("a"), button("b")] }]);
        let errors = validate_message_blocks(&twice);
        assert_eq!(
            errors,
            vec!["[ERROR] duplicate action_id: a [json-pointer:/blocks/0/elements/1/action_id]"]
        );
    }

    #[test]
    fn tables_calls_and_context_actions_are_known_blocks() {
        let cell = json!({ "type": "raw_text", "text": "x" });
        let table = json!([{ "type": "table", "rows": [[cell.clone(), cell.clone()], [cell.clone(), cell.clone()]] }]);
        assert!(validate_message_blocks(&table).is_empty());
        let wide = json!([{ "type": "table", "rows": [vec![cell; 21]] }]);
        assert!(validate_message_blocks(&wide)[0].contains("/blocks/0/rows/0"));
        assert!(validate_message_blocks(&json!([{ "type": "call", "call_id": "R1" }])).is_empty());
        assert!(!validate_message_blocks(&json!([{ "type": "call" }])).is_empty());
        let feedback = json!([{ "type": "context_actions", "elements": [{ "type": "feedback_buttons", "action_id": "f" }] }]);
        assert!(validate_message_blocks(&feedback).is_empty());
    }

    #[test]
    fn generated_block_ids_fill_only_the_missing_ones() {
        let mut blocks = json!([{ "type": "divider" }, { "type": "divider", "block_id": "mine" }]);
        fill_block_ids(&mut blocks);
        assert_eq!(blocks[0]["block_id"].as_str().map(str::len), Some(5));
        assert_eq!(blocks[1]["block_id"], "mine");
    }

    fn section(text: &str) -> Value {
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })
    }

    fn button(text: &str) -> Value {
        json!({ "type": "button", "action_id": "a", "text": { "type": "plain_text", "text": text }, "value": "v" })
    }

    fn option(text: &str, value: &str) -> Value {
        json!({ "text": { "type": "plain_text", "text": text }, "value": value })
    }

    #[test]
    fn fifty_blocks_pass_and_fifty_one_fail() {
        let fifty: Vec<_> = (0..50).map(|i| section(&format!("b{i}"))).collect();
        assert!(validate_message_blocks(&json!(fifty)).is_empty());
        let fifty_one: Vec<_> = (0..51).map(|i| section(&format!("b{i}"))).collect();
        let errors = validate_message_blocks(&json!(fifty_one));
        assert_eq!(
            errors,
            vec!["[ERROR] no more than 50 items allowed [json-pointer:/blocks]"]
        );
    }

    #[test]
    fn section_text_is_limited_to_3000_characters() {
        assert!(validate_message_blocks(&json!([section(&"x".repeat(3000))])).is_empty());
        let errors = validate_message_blocks(&json!([section(&"x".repeat(3001))]));
        assert_eq!(
            errors,
            vec!["[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
        );
    }

    #[test]
    fn characters_are_counted_not_bytes() {
        // 3000 two-byte characters are still 3000 characters.
        assert!(validate_message_blocks(&json!([section(&"é".repeat(3000))])).is_empty());
    }

    #[test]
    fn button_text_over_75_characters_is_rejected() {
        let ok = json!([{ "type": "actions", "elements": [button(&"b".repeat(75))] }]);
        assert!(validate_message_blocks(&ok).is_empty());
        let bad = json!([{ "type": "actions", "elements": [button(&"b".repeat(76))] }]);
        let errors = validate_message_blocks(&bad);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("/blocks/0/elements/0/text/text"),
            "{errors:?}"
        );
    }

    #[test]
    fn button_text_must_be_plain_text() {
        let bad = json!([{ "type": "actions", "elements": [{ "type": "button", "text": { "type": "mrkdwn", "text": "x" } }] }]);
        assert!(validate_message_blocks(&bad)[0].contains("/blocks/0/elements/0/text/type"));
    }

    #[test]
    fn unknown_block_types_and_empty_text_are_rejected() {
        let errors = validate_message_blocks(&json!([{ "type": "carousel" }, section("")]));
        assert!(errors
            .iter()
            .any(|e| e.contains("unsupported block type: carousel")));
        assert!(errors.iter().any(|e| e.contains("/blocks/1/text/text")));
    }

    #[test]
    fn sections_need_text_or_fields_and_at_most_ten_fields() {
        assert!(!validate_message_blocks(&json!([{ "type": "section" }])).is_empty());
        let field = json!({ "type": "mrkdwn", "text": "f" });
        let ten = json!([{ "type": "section", "fields": vec![field.clone(); 10] }]);
        assert!(validate_message_blocks(&ten).is_empty());
        let eleven = json!([{ "type": "section", "fields": vec![field; 11] }]);
        assert!(validate_message_blocks(&eleven)[0].contains("/blocks/0/fields"));
    }

    #[test]
    fn block_ids_are_unique_and_short() {
        let mut a = section("a");
        a["block_id"] = json!("same");
        let errors = validate_message_blocks(&json!([a.clone(), a]));
        assert!(errors[0].contains("duplicate block_id"));
        let mut long = section("a");
        long["block_id"] = json!("x".repeat(256));
        assert!(validate_message_blocks(&json!([long]))[0].contains("/blocks/0/block_id"));
    }

    #[test]
    fn option_and_element_count_limits() {
        let header = json!([{ "type": "header", "text": { "type": "plain_text", "text": "h".repeat(151) } }]);
        assert!(validate_message_blocks(&header)[0].contains("/blocks/0/text/text"));

        let radios = |n: usize| {
            let opts: Vec<_> = (0..n).map(|i| option("o", &i.to_string())).collect();
            json!([{ "type": "actions", "elements": [{ "type": "radio_buttons", "action_id": "r", "options": opts }] }])
        };
        assert!(validate_message_blocks(&radios(10)).is_empty());
        assert!(validate_message_blocks(&radios(11))[0].contains("/blocks/0/elements/0/options"));

        let long_value = json!([{ "type": "actions", "elements": [{ "type": "static_select", "action_id": "s",
            "options": [option("o", &"v".repeat(151))] }] }]);
        assert!(validate_message_blocks(&long_value)[0].contains("/options/0/value"));

        let buttons: Vec<_> = (0..26).map(|_| button("b")).collect();
        let too_many = json!([{ "type": "actions", "elements": buttons }]);
        assert!(validate_message_blocks(&too_many)[0].contains("no more than 25 items"));
    }

    #[test]
    fn inputs_need_a_label_and_an_element() {
        let errors = validate_message_blocks(
            &json!([{ "type": "input", "label": { "type": "plain_text", "text": "L" } }]),
        );
        assert_eq!(
            errors,
            vec!["[ERROR] missing required field: element [json-pointer:/blocks/0]"]
        );
        let too_long = json!([{ "type": "input", "label": { "type": "plain_text", "text": "L" },
            "element": { "type": "plain_text_input", "action_id": "t", "max_length": 3001 } }]);
        assert!(validate_message_blocks(&too_long)[0].contains("/blocks/0/element/max_length"));
    }

    #[test]
    fn modals_need_a_short_title_and_submit_with_inputs() {
        let input = json!({ "type": "input", "block_id": "i", "label": { "type": "plain_text", "text": "L" },
            "element": { "type": "plain_text_input", "action_id": "t" } });
        let view = json!({ "type": "modal", "title": { "type": "plain_text", "text": "Pulse" }, "blocks": [input] });
        let errors = validate_view(&view, ViewKind::Modal);
        assert_eq!(
            errors,
            vec!["[ERROR] missing required field: submit [json-pointer:/view/submit]"]
        );

        let mut ok = view.clone();
        ok["submit"] = json!({ "type": "plain_text", "text": "Send" });
        assert!(validate_view(&ok, ViewKind::Modal).is_empty());

        let mut long_title = ok.clone();
        long_title["title"]["text"] = json!("t".repeat(25));
        assert!(validate_view(&long_title, ViewKind::Modal)[0].contains("/view/title/text"));

        let mut metadata = ok;
        metadata["private_metadata"] = json!("m".repeat(3001));
        assert!(validate_view(&metadata, ViewKind::Modal)[0].contains("/view/private_metadata"));
    }

    #[test]
    fn views_hold_100_blocks_and_must_have_the_right_type() {
        let blocks: Vec<_> = (0..100).map(|i| section(&i.to_string())).collect();
        let home = json!({ "type": "home", "blocks": blocks });
        assert!(validate_view(&home, ViewKind::Home).is_empty());
        let mut too_many = home.clone();
        too_many["blocks"]
            .as_array_mut()
            .expect("array")
            .push(section("x"));
        assert!(validate_view(&too_many, ViewKind::Home)[0].contains("/view/blocks"));
        assert!(validate_view(&home, ViewKind::Modal)[0].contains("/view/type"));
        assert_eq!(
            validate_view(&json!({ "blocks": [] }), ViewKind::Home),
            vec![
                "[ERROR] failed to match all allowed schemas [json-pointer:/view]",
                "[ERROR] missing required field: type [json-pointer:/view]"
            ]
        );
    }
}
