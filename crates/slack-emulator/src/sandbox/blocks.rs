//! Block Kit as a Slack client draws it: message blocks (interactive elements become forms
//! that post a signed click to the bot) and modals (every input element the bot uses, with
//! hints, "(optional)" markers, Cancel and Submit, and errors next to their fields).

use serde_json::Value;
use std::collections::HashMap;

use super::mrkdwn::{esc, plain, text_object, Viewer};

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Where a click in a message comes from.
pub(crate) struct MessageRef<'a> {
    pub user: &'a str,
    pub channel: &'a str,
    pub ts: &'a str,
}

/// A message's blocks as HTML.
pub(crate) fn message_blocks(blocks: &Value, at: &MessageRef<'_>, viewer: &Viewer) -> String {
    let mut out = String::new();
    for block in blocks.as_array().into_iter().flatten() {
        let block_id = s(block, "block_id");
        match s(block, "type") {
            "section" => {
                out.push_str("<div class=section><div class=section-body>");
                if let Some(text) = block.get("text") {
                    out.push_str(&format!(
                        "<div class=text>{}</div>",
                        text_object(text, viewer)
                    ));
                }
                let fields = list(block, "fields");
                if !fields.is_empty() {
                    out.push_str("<div class=fields>");
                    for f in &fields {
                        out.push_str(&format!("<div>{}</div>", text_object(f, viewer)));
                    }
                    out.push_str("</div>");
                }
                out.push_str("</div>");
                if let Some(accessory) = block.get("accessory") {
                    out.push_str("<div class=accessory>");
                    out.push_str(&element(accessory, block_id, at, viewer));
                    out.push_str("</div>");
                }
                out.push_str("</div>");
            }
            "header" => out.push_str(&format!(
                "<div class=header>{}</div>",
                text_object(block.get("text").unwrap_or(&Value::Null), viewer)
            )),
            "context" => out.push_str(&context(block, viewer)),
            "divider" => out.push_str("<hr>"),
            "image" => out.push_str(&format!(
                "<div class=image>[image: {}]</div>",
                esc(s(block, "alt_text"))
            )),
            "rich_text" => out.push_str(&format!(
                "<div class=text>{}</div>",
                esc(&rich_text_plain(block))
            )),
            "actions" => {
                out.push_str("<div class=actions>");
                for e in list(block, "elements") {
                    out.push_str(&element(&e, block_id, at, viewer));
                }
                out.push_str("</div>");
            }
            other => out.push_str(&format!("<div class=ctx>[{} block]</div>", esc(other))),
        }
    }
    out
}

fn context(block: &Value, viewer: &Viewer) -> String {
    let parts: Vec<String> = list(block, "elements")
        .iter()
        .map(|e| match s(e, "type") {
            "image" => format!(
                "<span class=ctx-img title=\"{}\">▪</span>",
                esc(s(e, "alt_text"))
            ),
            _ => text_object(e, viewer),
        })
        .collect();
    format!("<div class=ctx>{}</div>", parts.join(" "))
}

fn rich_text_plain(block: &Value) -> String {
    fn walk(v: &Value, out: &mut String) {
        if let Some(t) = v.get("text").and_then(Value::as_str) {
            out.push_str(t);
        }
        for e in v
            .get("elements")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(e, out);
        }
    }
    let mut out = String::new();
    walk(block, &mut out);
    out
}

/// The hidden fields every click form carries.
fn click_fields(at: &MessageRef<'_>, block_id: &str, action_id: &str) -> String {
    format!(
        "<input type=hidden name=user value=\"{}\"><input type=hidden name=channel value=\"{}\">\
         <input type=hidden name=ts value=\"{}\"><input type=hidden name=block_id value=\"{}\">\
         <input type=hidden name=action_id value=\"{}\">",
        esc(at.user),
        esc(at.channel),
        esc(at.ts),
        esc(block_id),
        esc(action_id)
    )
}

/// An interactive element of a message: a form posting one click.
fn element(e: &Value, block_id: &str, at: &MessageRef<'_>, viewer: &Viewer) -> String {
    let action_id = s(e, "action_id");
    let open = format!(
        "<form class=click method=post action=/sandbox/click data-js>{}",
        click_fields(at, block_id, action_id)
    );
    match s(e, "type") {
        "button" => {
            let style = match s(e, "style") {
                "primary" => " class=primary",
                "danger" => " class=danger",
                _ => "",
            };
            let label = text_object(e.get("text").unwrap_or(&Value::Null), viewer);
            let button = match e.get("url").and_then(Value::as_str) {
                Some(url) => format!(
                    "<a class=button href=\"{}\" target=_blank rel=noopener>{label}</a>",
                    esc(url)
                ),
                None => format!(
                    "<button{style} name=value value=\"{}\">{label}</button>",
                    esc(s(e, "value"))
                ),
            };
            format!("{open}{button}</form>")
        }
        "static_select" | "overflow" | "radio_buttons" | "checkboxes" | "multi_static_select" => {
            let placeholder = e
                .get("placeholder")
                .map(|p| text_object(p, viewer))
                .unwrap_or_else(|| {
                    if s(e, "type") == "overflow" {
                        "⋯".into()
                    } else {
                        "Select an option".into()
                    }
                });
            let mut select = format!(
                "{open}<select name=value data-autosubmit><option value=\"\" disabled selected>{placeholder}</option>"
            );
            for o in options(e) {
                select.push_str(&format!(
                    "<option value=\"{}\">{}</option>",
                    esc(s(&o, "value")),
                    text_object(o.get("text").unwrap_or(&Value::Null), viewer)
                ));
            }
            select.push_str("</select><noscript><button>Send</button></noscript></form>");
            select
        }
        other => format!("<span class=ctx>[{}]</span>", esc(other)),
    }
}

/// An element's options, option groups flattened.
fn options(e: &Value) -> Vec<Value> {
    let mut all = list(e, "options");
    for group in list(e, "option_groups") {
        all.extend(list(&group, "options"));
    }
    all
}

/// What a member has entered in an open modal (by input block id) and the errors the bot
/// returned for it (by block id).
#[derive(Debug, Default, Clone)]
pub(crate) struct ModalState {
    pub values: HashMap<String, Vec<String>>,
    pub errors: HashMap<String, String>,
}

/// An open modal as Slack draws it: title bar, blocks, inputs, Cancel and Submit. `state`
/// (a submission the bot refused) overrides the initial values and shows the errors.
pub(crate) fn modal(
    view_id: &str,
    user: &str,
    view: &Value,
    state: Option<&ModalState>,
    viewer: &Viewer,
) -> String {
    let title = view
        .get("title")
        .map(|t| text_object(t, viewer))
        .unwrap_or_default();
    let submit = view
        .get("submit")
        .map(|t| text_object(t, viewer))
        .unwrap_or_else(|| "Submit".into());
    let close = view
        .get("close")
        .map(|t| text_object(t, viewer))
        .unwrap_or_else(|| "Cancel".into());
    let mut out = format!(
        "<form class=modal method=post action=/sandbox/submit data-js>\
         <input type=hidden name=__view value=\"{}\"><input type=hidden name=__user value=\"{}\">\
         <div class=modal-title>{title}</div><div class=modal-body>",
        esc(view_id),
        esc(user)
    );
    // An error not tied to a field (the app did not answer): at the top, as Slack shows it.
    if let Some(general) = state.and_then(|st| st.errors.get("")) {
        out.push_str(&format!(
            "<div class=field-error role=alert>{}</div>",
            plain(general, true)
        ));
    }
    let no_click = MessageRef {
        user,
        channel: "",
        ts: "",
    };
    for block in view
        .get("blocks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if s(block, "type") != "input" {
            let one = Value::Array(vec![block.clone()]);
            out.push_str(&message_blocks(&one, &no_click, viewer));
            continue;
        }
        let id = s(block, "block_id");
        let error = state.and_then(|st| st.errors.get(id));
        let given = state.and_then(|st| st.values.get(id));
        let optional = block
            .get("optional")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        out.push_str(&format!(
            "<div class=\"input{}\" data-block=\"{}\"><label class=label>{}{}</label>",
            if error.is_some() { " has-error" } else { "" },
            esc(id),
            text_object(block.get("label").unwrap_or(&Value::Null), viewer),
            if optional {
                " <span class=optional>(optional)</span>"
            } else {
                ""
            }
        ));
        out.push_str(&input_element(
            id,
            block.get("element").unwrap_or(&Value::Null),
            given,
            viewer,
        ));
        if let Some(error) = error {
            out.push_str(&format!(
                "<div class=field-error role=alert>{}</div>",
                plain(error, true)
            ));
        }
        if let Some(hint) = block.get("hint") {
            out.push_str(&format!(
                "<div class=hint>{}</div>",
                text_object(hint, viewer)
            ));
        }
        out.push_str("</div>");
    }
    out.push_str(&format!(
        "</div><div class=modal-footer><button type=submit formaction=/sandbox/close formnovalidate class=cancel>{close}</button>\
         <button type=submit class=primary>{submit}</button></div></form>"
    ));
    out
}

/// The value(s) an element starts with: its initial ones, or what was entered before.
fn chosen(e: &Value, given: Option<&Vec<String>>) -> Vec<String> {
    if let Some(given) = given {
        return given.clone();
    }
    if let Some(v) = e.get("initial_value").and_then(Value::as_str) {
        return vec![v.to_string()];
    }
    if let Some(o) = e.get("initial_option") {
        return vec![s(o, "value").to_string()];
    }
    for key in ["initial_date", "initial_time"] {
        if let Some(v) = e.get(key).and_then(Value::as_str) {
            return vec![v.to_string()];
        }
    }
    list(e, "initial_options")
        .iter()
        .map(|o| s(o, "value").to_string())
        .collect()
}

fn input_element(name: &str, e: &Value, given: Option<&Vec<String>>, viewer: &Viewer) -> String {
    let values = chosen(e, given);
    let first = values.first().map(String::as_str).unwrap_or("");
    let name = esc(name);
    let placeholder = e
        .get("placeholder")
        .map(|p| esc(s(p, "text")))
        .unwrap_or_default();
    let description = |o: &Value| {
        o.get("description")
            .map(|d| format!("<div class=description>{}</div>", text_object(d, viewer)))
            .unwrap_or_default()
    };
    match s(e, "type") {
        "plain_text_input" if e.get("multiline").and_then(Value::as_bool) == Some(true) => format!(
            "<textarea name=\"{name}\" rows=4 placeholder=\"{placeholder}\">{}</textarea>",
            esc(first)
        ),
        "plain_text_input" => format!(
            "<input type=text name=\"{name}\" placeholder=\"{placeholder}\" value=\"{}\">",
            esc(first)
        ),
        "number_input" | "email_text_input" | "url_text_input" | "datepicker" | "timepicker" => {
            let kind = match s(e, "type") {
                "number_input" => "number",
                "email_text_input" => "email",
                "url_text_input" => "url",
                "datepicker" => "date",
                _ => "time",
            };
            format!(
                "<input type={kind} name=\"{name}\" placeholder=\"{placeholder}\" value=\"{}\">",
                esc(first)
            )
        }
        "radio_buttons" | "checkboxes" => {
            let kind = if s(e, "type") == "radio_buttons" {
                "radio"
            } else {
                "checkbox"
            };
            let mut out = format!("<div class={kind}s>");
            for o in options(e) {
                let v = s(&o, "value");
                let checked = if values.iter().any(|x| x == v) {
                    " checked"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "<label class=option><input type={kind} name=\"{name}\" value=\"{}\"{checked}><span>{}{}</span></label>",
                    esc(v),
                    text_object(o.get("text").unwrap_or(&Value::Null), viewer),
                    description(&o)
                ));
            }
            out.push_str("</div>");
            out
        }
        "static_select" | "multi_static_select" => {
            let multiple = if s(e, "type") == "multi_static_select" {
                " multiple"
            } else {
                ""
            };
            let none_selected = if values.is_empty() || first.is_empty() {
                " selected"
            } else {
                ""
            };
            let shown = if placeholder.is_empty() {
                "Select an option".to_string()
            } else {
                placeholder
            };
            let mut out = format!(
                "<select name=\"{name}\"{multiple}><option value=\"\"{none_selected}>{shown}</option>"
            );
            for o in options(e) {
                let v = s(&o, "value");
                let sel = if values.iter().any(|x| x == v) {
                    " selected"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "<option value=\"{}\"{sel}>{}</option>",
                    esc(v),
                    plain(s(o.get("text").unwrap_or(&Value::Null), "text"), true)
                ));
            }
            out.push_str("</select>");
            out
        }
        other => format!("<div class=ctx>[{} input]</div>", esc(other)),
    }
}

/// The `view.state.values` Slack would send for the fields a member entered in a modal.
pub(crate) fn state_values(view: &Value, entered: &HashMap<String, Vec<String>>) -> Value {
    let mut values = serde_json::Map::new();
    for block in view
        .get("blocks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if s(block, "type") != "input" {
            continue;
        }
        let id = s(block, "block_id");
        let e = block.get("element").unwrap_or(&Value::Null);
        let kind = s(e, "type");
        let given: Vec<&String> = entered
            .get(id)
            .into_iter()
            .flatten()
            .filter(|v| !v.is_empty())
            .collect();
        let option = |v: &str| {
            options(e)
                .into_iter()
                .find(|o| s(o, "value") == v)
                .unwrap_or_else(|| serde_json::json!({ "value": v }))
        };
        let first = given.first().map(|v| v.as_str());
        let state = match kind {
            "static_select" | "radio_buttons" => {
                serde_json::json!({ "type": kind, "selected_option": first.map(option) })
            }
            "checkboxes" | "multi_static_select" => serde_json::json!({
                "type": kind,
                "selected_options": given.iter().map(|v| option(v)).collect::<Vec<_>>(),
            }),
            "datepicker" => serde_json::json!({ "type": kind, "selected_date": first }),
            "timepicker" => serde_json::json!({ "type": kind, "selected_time": first }),
            _ => serde_json::json!({ "type": kind, "value": first }),
        };
        let action_id = match s(e, "action_id") {
            "" => "value",
            a => a,
        };
        let mut by_action = serde_json::Map::new();
        by_action.insert(action_id.to_string(), state);
        values.insert(id.to_string(), Value::Object(by_action));
    }
    Value::Object(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn viewer() -> Viewer {
        Viewer::at(
            chrono_tz::Europe::Berlin,
            Utc.with_ymd_and_hms(2027, 1, 4, 9, 0, 0).unwrap(),
        )
    }

    fn view() -> Value {
        let options = |vals: &[&str]| -> Vec<Value> {
            vals.iter()
                .map(|v| json!({ "text": { "type": "plain_text", "text": v }, "value": v }))
                .collect()
        };
        json!({
            "type": "modal",
            "title": { "type": "plain_text", "text": "Weekly pulse" },
            "submit": { "type": "plain_text", "text": "Send" },
            "blocks": [
                { "type": "context", "elements": [{ "type": "mrkdwn", "text": ":lock: *Anonymous*" }] },
                { "type": "input", "block_id": "q:a", "label": { "type": "plain_text", "text": "Scale" },
                  "hint": { "type": "plain_text", "text": "1 = low, 5 = high" },
                  "element": { "type": "radio_buttons", "action_id": "value", "options": options(&["1", "2", "3"]) } },
                { "type": "input", "block_id": "q:b", "label": { "type": "plain_text", "text": "Pick" },
                  "element": { "type": "static_select", "action_id": "value", "options": options(&["x", "y"]),
                               "initial_option": options(&["y"])[0] } },
                { "type": "input", "block_id": "q:c", "optional": true, "label": { "type": "plain_text", "text": "Tags" },
                  "element": { "type": "checkboxes", "action_id": "tags", "options": options(&["p", "q"]) } },
                { "type": "input", "block_id": "q:d", "optional": true, "label": { "type": "plain_text", "text": "Comment" },
                  "element": { "type": "plain_text_input", "action_id": "value", "multiline": true } },
            ],
        })
    }

    #[test]
    fn a_modal_draws_every_element_as_slack_does() {
        let html = modal("V1", "U1", &view(), None, &viewer());
        assert_eq!(html.matches("type=radio").count(), 3, "radios stay radios");
        assert!(html.contains("<select name=\"q:b\">"));
        assert!(
            html.contains("<option value=\"y\" selected>"),
            "the initial option"
        );
        assert_eq!(html.matches("type=checkbox").count(), 2);
        assert!(
            html.contains("<textarea name=\"q:d\""),
            "multiline is a textarea"
        );
        assert_eq!(html.matches("(optional)").count(), 2);
        assert!(html.contains("<div class=hint>1 = low, 5 = high</div>"));
        assert!(html.contains(">Cancel</button>") && html.contains(">Send</button>"));
        assert!(
            html.contains("🔒") && html.contains("<b>Anonymous</b>"),
            "context lines"
        );
        assert!(!html.contains("field-error"));
    }

    #[test]
    fn errors_show_next_to_their_field_and_what_was_chosen_stays() {
        let mut state = ModalState::default();
        state.values.insert("q:a".into(), vec!["2".into()]);
        state
            .values
            .insert("q:c".into(), vec!["p".into(), "q".into()]);
        state.values.insert("q:d".into(), vec!["<b>hi</b>".into()]);
        state
            .errors
            .insert("q:b".into(), "Please choose an answer.".into());
        let html = modal("V1", "U1", &view(), Some(&state), &viewer());
        let field_b = html.split("data-block=\"q:b\"").nth(1).unwrap();
        let field_b = field_b.split("data-block=").next().unwrap();
        assert!(field_b.contains("Please choose an answer."), "{field_b}");
        assert!(html.contains("<div class=\"input has-error\" data-block=\"q:b\">"));
        assert!(
            html.contains("value=\"2\" checked"),
            "the chosen radio is kept"
        );
        assert!(html.contains("value=\"p\" checked") && html.contains("value=\"q\" checked"));
        assert!(
            html.contains("&lt;b&gt;hi&lt;/b&gt;</textarea>"),
            "typed text kept, escaped"
        );
        assert_eq!(html.matches("role=alert").count(), 1);
        state
            .errors
            .insert(String::new(), "We had some trouble connecting.".into());
        let html = modal("V1", "U1", &view(), Some(&state), &viewer());
        assert!(html
            .contains("<div class=field-error role=alert>We had some trouble connecting.</div>"));
    }

    #[test]
    fn state_values_have_slacks_shape_per_element() {
        let mut entered = HashMap::new();
        entered.insert("q:a".to_string(), vec!["3".to_string()]);
        entered.insert("q:c".to_string(), vec!["p".to_string(), "q".to_string()]);
        entered.insert("q:d".to_string(), vec!["fine".to_string()]);
        let values = state_values(&view(), &entered);
        assert_eq!(values["q:a"]["value"]["type"], "radio_buttons");
        assert_eq!(values["q:a"]["value"]["selected_option"]["value"], "3");
        assert_eq!(
            values["q:a"]["value"]["selected_option"]["text"]["text"],
            "3"
        );
        assert_eq!(
            values["q:b"]["value"]["selected_option"],
            Value::Null,
            "nothing chosen"
        );
        assert_eq!(
            values["q:c"]["tags"]["selected_options"][1]["value"], "q",
            "keyed by action_id"
        );
        assert_eq!(values["q:d"]["value"]["value"], "fine");
    }
}
