//! What simulated people answer: scores that drift upward over the weeks (so the digest's
//! trend has something to show), a focus area, now and then a comment or a small win. All
//! from the demo's seeded RNG, so one seed tells the same story.

use serde_json::{json, Map, Value};

use super::cast::{question_kind, Habit, Kind, Person};

/// One answered question, for the transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Said {
    pub key: String,
    pub shown: String,
}

/// The answers a person gives in week `week` (0-based) of `weeks`: the `state.values` of a
/// survey modal built from its input blocks, and what was said, in question order.
pub fn fill_modal(
    rng: &mut fastrand::Rng,
    person: &Person,
    blocks: &[Value],
    week: u32,
    weeks: u32,
) -> (Value, Vec<Said>) {
    let progress = if weeks <= 1 {
        1.0
    } else {
        f64::from(week.min(weeks - 1)) / f64::from(weeks - 1)
    };
    let mood = mood(person);
    let mut values = Map::new();
    let mut said = Vec::new();
    let mut shared_win = false;
    for block in blocks {
        let (Some("input"), Some(block_id)) = (
            block["type"].as_str(),
            block["block_id"].as_str().map(str::to_string),
        ) else {
            continue;
        };
        let element = &block["element"];
        let kind_of_element = element["type"].as_str().unwrap_or("");
        let action_id = element["action_id"].as_str().unwrap_or("value").to_string();
        if let Some(key) = block_id.strip_prefix("consent:") {
            // Who may see the win typed above: named or anonymous when one was typed.
            let consent = if shared_win {
                if rng.bool() {
                    "named"
                } else {
                    "anonymous"
                }
            } else {
                "private"
            };
            if let Some(option) = option_with(element, consent) {
                values.insert(
                    block_id.clone(),
                    keyed(
                        &action_id,
                        json!({ "type": kind_of_element, "selected_option": option }),
                    ),
                );
                if shared_win {
                    said.push(Said {
                        key: format!("{key} sharing"),
                        shown: consent.to_string(),
                    });
                }
            }
            continue;
        }
        let Some(key) = block_id.strip_prefix("q:") else {
            continue;
        };
        let entry = match question_kind(key) {
            Some(Kind::Scale) => {
                let base = if key == "confidence" { 2.6 } else { 2.9 };
                let score = drifted(rng, base + 1.5 * progress + mood, 1.0, 5.0);
                pick(element, &score.to_string()).map(|option| {
                    said.push(Said {
                        key: key.to_string(),
                        shown: score.to_string(),
                    });
                    json!({ "type": kind_of_element, "selected_option": option })
                })
            }
            Some(Kind::Enps) => {
                let score = drifted(rng, 6.8 + 2.5 * progress + 2.0 * mood, 0.0, 10.0);
                pick(element, &score.to_string()).map(|option| {
                    said.push(Said {
                        key: key.to_string(),
                        shown: score.to_string(),
                    });
                    json!({ "type": kind_of_element, "selected_option": option })
                })
            }
            Some(Kind::Choice) => {
                let options = element["options"].as_array().cloned().unwrap_or_default();
                (!options.is_empty()).then(|| {
                    let option = options[rng.usize(..options.len())].clone();
                    said.push(Said {
                        key: key.to_string(),
                        shown: format!("“{}”", option["text"]["text"].as_str().unwrap_or("")),
                    });
                    json!({ "type": kind_of_element, "selected_option": option })
                })
            }
            Some(Kind::Text) => {
                let text = (rng.u8(..100) < 30).then(|| COMMENTS[rng.usize(..COMMENTS.len())]);
                if let Some(text) = text {
                    said.push(Said {
                        key: key.to_string(),
                        shown: format!("“{text}”"),
                    });
                }
                Some(json!({ "type": kind_of_element, "value": text }))
            }
            Some(Kind::Win) => {
                let text = (rng.u8(..100) < 35).then(|| WINS[rng.usize(..WINS.len())]);
                if let Some(text) = text {
                    shared_win = true;
                    said.push(Said {
                        key: key.to_string(),
                        shown: format!("“{text}”"),
                    });
                }
                Some(json!({ "type": kind_of_element, "value": text }))
            }
            None => None,
        };
        if let Some(entry) = entry {
            values.insert(block_id.clone(), keyed(&action_id, entry));
        }
    }
    (Value::Object(values), said)
}

/// `{ key: value }`.
fn keyed(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_string(), value);
    Value::Object(map)
}

/// A person's lasting leaning, from their place in the cast: some rate coaching a little
/// higher than others, whatever the week.
fn mood(person: &Person) -> f64 {
    let h = person
        .id
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    f64::from(h % 9) / 10.0 - 0.4
}

/// `center` plus noise, rounded and kept within `lo..=hi`.
fn drifted(rng: &mut fastrand::Rng, center: f64, lo: f64, hi: f64) -> i64 {
    let noise = (rng.f64() - 0.5) * 1.6;
    (center + noise).round().clamp(lo, hi) as i64
}

/// The option whose value is `value`.
fn option_with(element: &Value, value: &str) -> Option<Value> {
    element["options"]
        .as_array()?
        .iter()
        .find(|o| o["value"] == value)
        .cloned()
}

fn pick(element: &Value, value: &str) -> Option<Value> {
    option_with(element, value)
}

/// Whether a person answers a pulse DM on their own (before any reminder), and after how
/// many minutes.
pub fn answers_the_dm(rng: &mut fastrand::Rng, person: &Person) -> Option<i64> {
    match person.habit {
        Habit::Prompt if rng.u8(..100) < 85 => Some(rng.i64(5..=150)),
        _ => None,
    }
}

/// Whether a reminded person answers, and after how many minutes.
pub fn answers_the_reminder(rng: &mut fastrand::Rng, person: &Person) -> Option<i64> {
    let chance = match person.habit {
        Habit::Late => 85,
        Habit::Prompt => 60,
        Habit::Never => 0,
    };
    (rng.u8(..100) < chance).then(|| rng.i64(15..=240))
}

const COMMENTS: [&str; 8] = [
    "The role plays on hard conversations helped a lot.",
    "Sessions clash with our Monday planning; Tuesdays would be easier.",
    "More examples from other teams, please.",
    "I finally delegated the weekly report and it went fine.",
    "Peer group this week was the most useful part.",
    "Could we get the session notes afterwards?",
    "Time zones make the group calls late for me.",
    "Feeling more confident in 1:1s.",
];

const WINS: [&str; 6] = [
    "My team ran the retro without me for the first time.",
    "Gave difficult feedback early instead of waiting for the review.",
    "Blocked two focus mornings a week and kept them.",
    "A new joiner said our onboarding was the clearest they have had.",
    "Handed over the client escalation to Priya and she nailed it.",
    "Said no to a meeting that did not need me.",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::cast::PEOPLE;

    fn modal() -> Vec<Value> {
        let options = |n: std::ops::RangeInclusive<i64>| {
            n.map(|v| json!({ "text": { "type": "plain_text", "text": v.to_string() }, "value": v.to_string() }))
                .collect::<Vec<_>>()
        };
        vec![
            json!({ "type": "input", "block_id": "q:coaching_value", "element": { "type": "radio_buttons", "action_id": "value", "options": options(1..=5) } }),
            json!({ "type": "input", "block_id": "q:comment", "element": { "type": "plain_text_input", "action_id": "value" } }),
            json!({ "type": "context", "elements": [] }),
        ]
    }

    #[test]
    fn scores_drift_upward_over_the_weeks() {
        let mean = |week: u32| {
            let mut rng = fastrand::Rng::with_seed(7);
            let mut sum = 0.0;
            for _ in 0..50 {
                for p in &PEOPLE {
                    let (values, _) = fill_modal(&mut rng, p, &modal(), week, 4);
                    let v = values["q:coaching_value"]["value"]["selected_option"]["value"]
                        .as_str()
                        .unwrap()
                        .parse::<f64>()
                        .unwrap();
                    assert!((1.0..=5.0).contains(&v));
                    sum += v;
                }
            }
            sum / (50.0 * PEOPLE.len() as f64)
        };
        assert!(mean(3) > mean(0) + 1.0, "{} vs {}", mean(3), mean(0));
    }

    #[test]
    fn every_input_gets_a_value_of_its_element_type() {
        let mut rng = fastrand::Rng::with_seed(1);
        let (values, said) = fill_modal(&mut rng, &PEOPLE[0], &modal(), 0, 4);
        assert_eq!(values["q:coaching_value"]["value"]["type"], "radio_buttons");
        assert_eq!(values["q:comment"]["value"]["type"], "plain_text_input");
        assert!(said.iter().any(|s| s.key == "coaching_value"));
    }
}
