//! The weekly digest (issue 8): its numbers on a hand-computed fixture, the anonymity rules
//! applied to each, the Block Kit message, sending once per channel and period, and who may
//! preview it. History is written straight into the database the way the pulse loop and the
//! seal leave it (open rounds linked to deliveries, sealed rounds with counts only), so each
//! test states exactly the answers it is about.

use crate::helpers::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::Value;

const OWNER: &str = "U0OWNER01";
const SPONSOR: &str = "C0SPONSOR1";
const LEADERS: [&str; 3] = ["U0LEAD001", "U0LEAD002", "U0LEAD003"];
const PARTICIPANTS: [&str; 4] = ["U0PART001", "U0PART002", "U0PART003", "U0PART004"];

/// 10:00 Berlin on the Mondays of January 2027 (09:00 UTC): the rounds of the fixture.
fn monday(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, day, 9, 0, 0).unwrap()
}

/// Wednesday 27 January 2027, 12:00 UTC: the current digest period is Friday 22 January
/// 16:00 Berlin to Friday 29 January 16:00 (15:00 UTC), holding the round of Monday the 25th.
fn wednesday() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 27, 12, 0, 0).unwrap()
}

fn question(key: &str, kind: &str) -> String {
    let optional = if kind == "text" {
        "required = false\n"
    } else {
        ""
    };
    format!("[[surveys.questions]]\nkey = \"{key}\"\nkind = \"{kind}\"\nprompt = \"{key}?\"\n{optional}")
}

/// Program `pilot`: k = 3, comments from 4 respondents, baseline = the first 2 rounds,
/// 3 leaders and 4 participants; `surveys` follow.
fn program(surveys: &str) -> String {
    program_with(&[], surveys)
}

/// [`program`] with more participants.
fn program_with(extra: &[&str], surveys: &str) -> String {
    let mut t = format!(
        "id = \"pilot\"\nname = \"Pilot Program\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-04\"\n\
         sponsor_channels = [\"{SPONSOR}\"]\nowners = [\"{OWNER}\"]\nanonymity_threshold = 3\ncomment_threshold = 4\nbaseline_rounds = 2\n"
    );
    for id in LEADERS {
        t.push_str(&format!(
            "[[members]]\nslack_id = \"{id}\"\nrole = \"leader\"\ntimezone = \"Europe/Berlin\"\n"
        ));
    }
    for id in PARTICIPANTS {
        t.push_str(&format!("[[members]]\nslack_id = \"{id}\"\nrole = \"participant\"\ntimezone = \"Europe/Berlin\"\n"));
    }
    for id in extra {
        t.push_str(&format!("[[members]]\nslack_id = \"{id}\"\nrole = \"participant\"\ntimezone = \"Europe/Berlin\"\n"));
    }
    t.push_str("[digest]\ncadence = \"0 16 * * FRI\"\n");
    t.push_str(surveys);
    t
}

fn weekly_survey(questions: &str) -> String {
    // The first of January only: the planner never opens a round of its own in these tests.
    format!("[[surveys]]\nid = \"weekly\"\ncadence = \"0 10 1 1 *\"\nwindow_hours = 48\nanonymity = \"anonymous\"\n{questions}")
}

fn standard_questions() -> String {
    question("value", "scale") + &question("enps", "enps") + &question("comment", "text")
}

async fn spawn(toml: &str, now: DateTime<Utc>) -> TestApp {
    let mut b = TestAppBuilder::default()
        .now(now)
        .program("pilot.toml", toml);
    for id in LEADERS
        .iter()
        .chain(PARTICIPANTS.iter())
        .chain([OWNER].iter())
    {
        b = b.user(id, "Europe/Berlin");
    }
    let app = b.spawn().await;
    app.emulator.add_channel(SPONSOR, "sponsors", true);
    app
}

/// One member's answers in a round: (member, role, answers by metric key).
struct Ans<'a> {
    member: &'a str,
    role: &'a str,
    numbers: Vec<(&'a str, f64)>,
    text: Option<(&'a str, &'a str)>,
}

fn ans<'a>(member: &'a str, role: &'a str, numbers: &[(&'a str, f64)]) -> Ans<'a> {
    Ans {
        member,
        role,
        numbers: numbers.to_vec(),
        text: None,
    }
}

fn role_of(member: &str) -> &'static str {
    if LEADERS.contains(&member) {
        "leader"
    } else {
        "participant"
    }
}

fn q(s: &str) -> String {
    s.replace('\'', "''")
}

/// Writes a round of survey `survey` opened at `opened`, asked of `asked`, with `answers`:
/// linked to deliveries while open; sealed (no delivery, counts on the round, roles kept or
/// folded) when `sealed` is `Some(fold)`.
async fn seed_round(
    app: &TestApp,
    survey: &str,
    opened: DateTime<Utc>,
    asked: &[&str],
    answers: &[Ans<'_>],
    sealed: Option<bool>,
) {
    let period = opened
        .with_timezone(&chrono_tz::Europe::Berlin)
        .format("%Y-%m-%dT%H:%M")
        .to_string();
    let at = opened.timestamp_millis();
    let closes = (opened + Duration::hours(48)).timestamp_millis();
    let round = format!("(SELECT id FROM rounds WHERE program_id = 'pilot' AND survey_id = '{survey}' AND period_key = '{period}')");
    let mut sql = Vec::new();
    match sealed {
        None => sql.push(format!(
            "INSERT INTO rounds (program_id, survey_id, period_key, origin, state, opened_at, closes_at, anonymity, anonymity_k)
             VALUES ('pilot', '{survey}', '{period}', 'schedule', 'open', {at}, {closes}, 'anonymous', 3)"
        )),
        Some(_) => sql.push(format!(
            "INSERT INTO rounds (program_id, survey_id, period_key, origin, state, opened_at, closes_at, closed_at, sealed_at,
                anonymity, anonymity_k, asked_count, answered_count)
             VALUES ('pilot', '{survey}', '{period}', 'schedule', 'closed', {at}, {closes}, {closes}, {closes}, 'anonymous', 3, {}, {})",
            asked.len(),
            answers.len()
        )),
    }
    for m in asked {
        let answered = answers.iter().any(|a| a.member == *m);
        let state = match (sealed, answered) {
            (Some(_), _) => "closed",
            (None, true) => "answered",
            (None, false) => "sent",
        };
        sql.push(format!(
            "INSERT INTO deliveries (round_id, member_id, state, scheduled_at, local_time, timezone, closes_at, sent_at)
             VALUES ({round}, (SELECT id FROM members WHERE slack_user_id = '{m}'), '{state}', {at}, '{period}:00+01:00',
                     'Europe/Berlin', {closes}, {at})"
        ));
    }
    for a in answers {
        let (delivery, role) = match sealed {
            None => (
                format!("(SELECT d.id FROM deliveries d JOIN members m ON m.id = d.member_id WHERE d.round_id = {round} AND m.slack_user_id = '{}')", a.member),
                a.role.to_string(),
            ),
            Some(fold) => ("NULL".to_string(), if fold { "folded".into() } else { a.role.to_string() }),
        };
        for (key, v) in &a.numbers {
            sql.push(format!(
                "INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, created_at, updated_at)
                 VALUES ({round}, {delivery}, '{key}', '{role}', {v}, {at}, {at})"
            ));
        }
        if let Some((key, text)) = a.text {
            sql.push(format!(
                "INSERT INTO responses (round_id, delivery_id, metric_key, role, value_text, created_at, updated_at)
                 VALUES ({round}, {delivery}, '{key}', '{role}', '{}', {at}, {at})",
                q(text)
            ));
        }
    }
    let refs: Vec<&str> = sql.iter().map(String::as_str).collect();
    exec_all(&app.db.url, &refs).await;
}

async fn preview(app: &TestApp) -> Value {
    let r = app.admin_get("/api/v1/programs/pilot/digest/preview").await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn metric<'a>(d: &'a Value, key: &str) -> &'a Value {
    d["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == key)
        .unwrap_or_else(|| panic!("no metric {key} in {d:#}"))
}

fn close(v: &Value, expected: f64, tol: f64) {
    let x = v.as_f64().unwrap_or_else(|| panic!("{v} is not a number"));
    assert!((x - expected).abs() <= tol, "{x} is not {expected} ± {tol}");
}

fn all_members() -> Vec<&'static str> {
    LEADERS.iter().chain(PARTICIPANTS.iter()).copied().collect()
}

/// The fixture of the first test: baseline (two sealed rounds), previous (sealed), current
/// (open, linked).
async fn seed_fixture(app: &TestApp) {
    let everyone = all_members();
    let (l, p) = ("leader", "participant");
    // Baseline, round 1 (4 Jan): value 2, 3, 3, 2, 3.
    seed_round(
        app,
        "weekly",
        monday(4),
        &everyone,
        &[
            ans("U0LEAD001", l, &[("value", 2.0)]),
            ans("U0LEAD002", l, &[("value", 3.0)]),
            ans("U0LEAD003", l, &[("value", 3.0)]),
            ans("U0PART001", p, &[("value", 2.0)]),
            ans("U0PART002", p, &[("value", 3.0)]),
        ],
        Some(false),
    )
    .await;
    // Baseline, round 2 (11 Jan): value 3, 2, 3, 3.
    seed_round(
        app,
        "weekly",
        monday(11),
        &everyone,
        &[
            ans("U0LEAD001", l, &[("value", 3.0)]),
            ans("U0LEAD002", l, &[("value", 2.0)]),
            ans("U0PART001", p, &[("value", 3.0)]),
            ans("U0PART002", p, &[("value", 3.0)]),
        ],
        Some(false),
    )
    .await;
    // Previous period (18 Jan): value 3, 4, 3, 4, 3; 5 of 7 answered.
    seed_round(
        app,
        "weekly",
        monday(18),
        &everyone,
        &[
            ans("U0LEAD001", l, &[("value", 3.0)]),
            ans("U0LEAD002", l, &[("value", 4.0)]),
            ans("U0PART001", p, &[("value", 3.0)]),
            ans("U0PART002", p, &[("value", 4.0)]),
            ans("U0PART003", p, &[("value", 3.0)]),
        ],
        Some(false),
    )
    .await;
    // Current period (25 Jan, still open): 6 of 7 answered; U0PART004 did not.
    let mut current = vec![
        ans("U0LEAD001", l, &[("value", 5.0), ("enps", 10.0)]),
        ans("U0LEAD002", l, &[("value", 4.0), ("enps", 9.0)]),
        ans("U0LEAD003", l, &[("value", 4.0), ("enps", 7.0)]),
        ans("U0PART001", p, &[("value", 3.0), ("enps", 6.0)]),
        ans("U0PART002", p, &[("value", 4.0), ("enps", 10.0)]),
        ans("U0PART003", p, &[("value", 4.0), ("enps", 3.0)]),
    ];
    current[3].text = Some(("comment", "More feedback practice please"));
    current[1].text = Some(("comment", "The offsite was great"));
    current[5].text = Some(("comment", "Less travel"));
    seed_round(app, "weekly", monday(25), &everyone, &current, None).await;
}

#[tokio::test]
async fn digest_numbers_match_a_hand_computed_fixture() {
    let app = spawn(&program(&weekly_survey(&standard_questions())), wednesday()).await;
    seed_fixture(&app).await;
    let d = preview(&app).await;

    assert_eq!(d["program"], "pilot");
    assert_eq!(d["period"]["start"], "2027-01-22T16:00:00+01:00");
    assert_eq!(d["period"]["end"], "2027-01-29T16:00:00+01:00");

    // Participation: 6 of 7 (0.857143); previous 5 of 7 (0.714286): change +0.142857.
    // By role: leaders 3 of 3, participants 3 of 4; both at k = 3, so shown.
    let p = &d["participation"];
    assert_eq!(p["asked"], 7);
    assert_eq!(p["answered"], 6);
    close(&p["rate"], 6.0 / 7.0, 1e-9);
    close(&p["change"], 6.0 / 7.0 - 5.0 / 7.0, 1e-9);
    assert_eq!(p["roles"].as_array().unwrap().len(), 2, "{p:#}");
    assert_eq!(p["roles"][0]["role"], "leader");
    assert_eq!(p["roles"][0]["answered"], 3);
    assert_eq!(p["roles"][1]["asked"], 4);
    assert_eq!(p["roles"][1]["answered"], 3);

    let v = metric(&d, "value");
    // Current: 5, 4, 4, 3, 4, 4 → n 6, sum 24, mean 4.0, Σx² 98, var (98 − 96)/5 = 0.4.
    assert_eq!(v["n"], 6);
    assert_eq!(v["suppressed"], false);
    close(&v["mean"], 4.0, 1e-9);
    // Previous: 3, 4, 3, 4, 3 → n 5, mean 3.4, var (59 − 57.8)/4 = 0.3.
    // Welch: se² = 0.4/6 + 0.3/5 = 0.126667, se 0.355903;
    // df = 0.126667² / ((0.4/6)²/5 + (0.3/5)²/4) = 0.0160444 / 0.00178889 = 8.969;
    // t(0.975, 8.969) = 2.2634 (between t(9) 2.2622 and t(8) 2.3060) → half 0.8056:
    // delta 0.6, CI [−0.21, 1.41], contains 0 → within noise.
    close(&v["delta_previous"], 0.6, 1e-9);
    close(&v["ci95_previous"][0], -0.21, 0.006);
    close(&v["ci95_previous"][1], 1.41, 0.006);
    assert_eq!(v["within_noise_previous"], true);
    // Baseline = rounds of 4 and 11 Jan: 2, 3, 3, 2, 3, 3, 2, 3, 3 → n 9, mean 2.6667,
    // Σx² 66, var (66 − 64)/8 = 0.25. se² = 0.4/6 + 0.25/9 = 0.094444, se 0.307318;
    // df = 0.094444² / ((0.4/6)²/5 + (0.25/9)²/8) = 0.0089198 / 0.00098534 = 9.053;
    // t(0.975, 9.053) = 2.2602 → half 0.6946: delta 1.3333, CI [0.64, 2.03] → more than noise.
    assert_eq!(v["baseline_n"], 9);
    close(&v["delta_baseline"], 1.33, 1e-9);
    close(&v["ci95_baseline"][0], 0.64, 0.006);
    close(&v["ci95_baseline"][1], 2.03, 0.006);
    assert_eq!(v["within_noise"], false);
    // Roles (both at k = 3): leaders 5, 4, 4 → 4.33; participants 3, 4, 4 → 3.67.
    assert_eq!(v["roles_folded"], Value::Null);
    assert_eq!(v["roles"][0]["role"], "leader");
    close(&v["roles"][0]["mean"], 4.33, 1e-9);
    close(&v["roles"][1]["mean"], 3.67, 1e-9);
    // Distribution of the current period: 3 ×1, 4 ×4, 5 ×1.
    let dist: Vec<(f64, i64)> = v["distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["value"].as_f64().unwrap(), x["n"].as_i64().unwrap()))
        .collect();
    assert_eq!(dist, vec![(3.0, 1), (4.0, 4), (5.0, 1)]);
    // Trend of the last 8 periods: empty until 1 Jan; then 2.6, 2.75, 3.4, 4.0.
    let trend: Vec<Value> = v["trend"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["mean"].clone())
        .collect();
    assert_eq!(trend.len(), 8);
    assert!(trend[..4].iter().all(Value::is_null), "{trend:?}");
    close(&trend[4], 2.6, 1e-9);
    close(&trend[5], 2.75, 1e-9);
    close(&trend[6], 3.4, 1e-9);
    close(&trend[7], 4.0, 1e-9);

    // eNPS: 10, 9, 7, 6, 10, 3 → promoters 3, passives 1, detractors 2 → (3 − 2)/6 = +16.7 → 17.
    assert_eq!(d["enps"]["n"], 6);
    close(&d["enps"]["score"], 17.0, 1e-9);

    // Comments: 6 respondents ≥ comment_threshold 4: all three, no names.
    let mut comments: Vec<String> = d["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    comments.sort();
    assert_eq!(
        comments,
        [
            "Less travel",
            "More feedback practice please",
            "The offsite was great"
        ]
    );

    // The message: header with program and period, the headline sentence first.
    let blocks = d["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("Pilot Program"));
    assert_eq!(
        d["headline"],
        "Value 4.0 (n = 6), up 1.3 on the baseline, more than noise."
    );
    assert_eq!(blocks[1]["text"]["text"], d["headline"]);
    assert!(slack_emulator::blocks::validate_message_blocks(&d["blocks"]).is_empty());
    if let Ok(path) = std::env::var("DIGEST_RENDER_TO") {
        let text = pulseloop::digest::message::to_text(d["blocks"].as_array().unwrap());
        std::fs::write(path, text).unwrap();
    }
    let text = serde_json::to_string(&d).unwrap();
    for member in all_members() {
        assert!(
            !text.contains(member),
            "a member's id is in the digest: {member}"
        );
    }
}

#[tokio::test]
async fn a_number_needs_k_answers_and_a_role_breakdown_needs_its_complement_at_k() {
    let app = spawn(&program(&weekly_survey(&standard_questions())), wednesday()).await;
    let everyone = all_members();
    // k − 1 = 2 answers: nothing is shown, and the digest says why.
    seed_round(
        &app,
        "weekly",
        monday(25),
        &everyone,
        &[
            ans("U0LEAD001", "leader", &[("value", 5.0), ("enps", 10.0)]),
            ans("U0PART001", "participant", &[("value", 1.0), ("enps", 0.0)]),
        ],
        None,
    )
    .await;
    let d = preview(&app).await;
    let v = metric(&d, "value");
    assert_eq!(v["suppressed"], true);
    assert_eq!(v["mean"], Value::Null);
    assert_eq!(v["distribution"], serde_json::json!([]));
    assert_eq!(v["roles"], serde_json::json!([]));
    assert_eq!(v["trend"][7]["mean"], Value::Null);
    assert_eq!(d["enps"]["score"], Value::Null);
    assert!(
        d["folded"].to_string().contains("fewer than 3 answers"),
        "{}",
        d["folded"]
    );
    let blocks = d["blocks"].to_string();
    assert!(
        !blocks.contains("3.0") && !blocks.contains("(n = 2), up"),
        "{blocks}"
    );

    // The k-th answer (a participant): the mean shows, 5, 1, 3 → 3.0. Roles: 1 leader and
    // 2 participants, both under k: folded, in words.
    let (round, at) = (
        "(SELECT id FROM rounds WHERE period_key = '2027-01-25T10:00')",
        monday(25).timestamp_millis(),
    );
    exec_all(&app.db.url, &[&format!(
        "INSERT INTO responses (round_id, delivery_id, metric_key, role, value_number, created_at, updated_at)
         VALUES ({round}, (SELECT d.id FROM deliveries d JOIN members m ON m.id = d.member_id
                           WHERE d.round_id = {round} AND m.slack_user_id = 'U0PART002'),
                 'value', 'participant', 3, {at}, {at})"
    ), &format!(
        "UPDATE deliveries SET state = 'answered' WHERE round_id = {round}
           AND member_id = (SELECT id FROM members WHERE slack_user_id = 'U0PART002')"
    )]).await;
    let d = preview(&app).await;
    let v = metric(&d, "value");
    assert_eq!(v["suppressed"], false);
    assert_eq!(v["n"], 3);
    close(&v["mean"], 3.0, 1e-9);
    assert_eq!(v["roles"], serde_json::json!([]));
    assert!(v["roles_folded"]
        .as_str()
        .unwrap()
        .contains("fewer than 3 answers"));
    assert_eq!(d["participation"]["roles"], serde_json::json!([]));
    assert!(d["participation"]["roles_folded"].is_string());
}

#[tokio::test]
async fn a_role_whose_complement_is_under_k_is_folded_and_a_sealed_fold_stays_folded() {
    let app = spawn(&program(&weekly_survey(&standard_questions())), wednesday()).await;
    let everyone = all_members();
    // 3 participants (at k) and 2 leaders (under k): showing participants would give the
    // leaders' mean by subtraction from the total, so neither is shown.
    seed_round(
        &app,
        "weekly",
        monday(25),
        &everyone,
        &[
            ans("U0LEAD001", "leader", &[("value", 5.0)]),
            ans("U0LEAD002", "leader", &[("value", 5.0)]),
            ans("U0PART001", "participant", &[("value", 2.0)]),
            ans("U0PART002", "participant", &[("value", 2.0)]),
            ans("U0PART003", "participant", &[("value", 2.0)]),
        ],
        None,
    )
    .await;
    let d = preview(&app).await;
    let v = metric(&d, "value");
    close(&v["mean"], 3.2, 1e-9);
    assert_eq!(v["roles"], serde_json::json!([]));
    assert!(
        v["roles_folded"].as_str().unwrap().contains("leaders"),
        "{v:#}"
    );
    assert!(!d["blocks"].to_string().contains("participants 2.0"));

    // A sealed round whose roles were folded by the seal: no breakdown either.
    let app = spawn(&program(&weekly_survey(&standard_questions())), wednesday()).await;
    let answers: Vec<Ans> = everyone
        .iter()
        .map(|m| ans(m, role_of(m), &[("value", 4.0)]))
        .collect();
    seed_round(&app, "weekly", monday(25), &everyone, &answers, Some(true)).await;
    let d = preview(&app).await;
    let v = metric(&d, "value");
    assert_eq!(v["n"], 7);
    assert_eq!(v["roles"], serde_json::json!([]));
    assert!(v["roles_folded"].as_str().unwrap().contains("sealed"));
    assert_eq!(d["participation"]["answered"], 7);
    assert_eq!(d["participation"]["roles"], serde_json::json!([]));
}

#[tokio::test]
async fn comments_need_the_threshold_and_come_shuffled_without_names() {
    let app = spawn(&program(&weekly_survey(&standard_questions())), wednesday()).await;
    let everyone = all_members();
    // 3 respondents: at k, under comment_threshold 4 → no comment, said in words.
    let mut few: Vec<Ans> = everyone[..3]
        .iter()
        .map(|m| ans(m, role_of(m), &[("value", 4.0)]))
        .collect();
    for (i, a) in few.iter_mut().enumerate() {
        a.text = Some(("comment", ["first", "second", "third"][i]));
    }
    seed_round(&app, "weekly", monday(25), &everyone, &few, None).await;
    let d = preview(&app).await;
    assert_eq!(d["comments"], serde_json::json!([]));
    assert!(
        d["folded"].to_string().contains("3 comments not shown"),
        "{}",
        d["folded"]
    );
    assert!(!d["blocks"].to_string().contains("second"));

    // 12 respondents with a comment each, written in order c01…c12: all shown, none with a
    // name, and not in answer order (the chance of a shuffle giving it back is 1/12!).
    let many: Vec<String> = (1..=12).map(|i| format!("U0MANY{i:03}")).collect();
    let extra: Vec<&str> = many.iter().map(String::as_str).collect();
    let toml = program_with(&extra, &weekly_survey(&standard_questions()));
    let app = spawn(&toml, wednesday()).await;
    let texts: Vec<String> = (1..=12).map(|i| format!("c{i:02}")).collect();
    let answers: Vec<Ans> = many
        .iter()
        .zip(&texts)
        .map(|(m, t)| Ans {
            member: m,
            role: "participant",
            numbers: vec![("value", 3.0)],
            text: Some(("comment", t.as_str())),
        })
        .collect();
    let asked: Vec<&str> = many.iter().map(String::as_str).collect();
    seed_round(&app, "weekly", monday(25), &asked, &answers, None).await;
    let d = preview(&app).await;
    let shown: Vec<String> = d["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let mut sorted = shown.clone();
    sorted.sort();
    assert_eq!(sorted, texts);
    assert_ne!(shown, texts, "comments came in answer order");
    let all = d.to_string();
    for id in &many {
        assert!(
            !all.contains(id.as_str()),
            "a name next to the comments: {id}"
        );
    }
    // The message shows at most 3, then says how many more.
    let blocks = d["blocks"].to_string();
    assert!(blocks.contains("and 9 more"), "{blocks}");

    // A comment whose author allowed replies carries a "Reply" button with its relay handle
    // (a random token: no person); the others carry none.
    exec(
        &app.db.url,
        "UPDATE responses SET reply_handle = 'abcdef0123456789abcdef01234567' || SUBSTR(value_text, 2, 2)
         WHERE value_text IN ('c01', 'c02', 'c03', 'c04', 'c05', 'c06')",
    )
    .await;
    let d = preview(&app).await;
    let sections: Vec<&Value> = d["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| {
            b["text"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("> c"))
        })
        .collect();
    assert_eq!(sections.len(), 3, "one section per comment shown");
    for b in sections {
        let text = b["text"]["text"].as_str().unwrap();
        let n: u32 = text[text.find("> c").unwrap() + 3..][..2].parse().unwrap();
        if n <= 6 {
            assert_eq!(b["accessory"]["action_id"], "reply_to_comment", "{b}");
            assert_eq!(
                b["accessory"]["value"],
                format!("abcdef0123456789abcdef01234567{n:02}").as_str()
            );
        } else {
            assert!(b.get("accessory").is_none(), "{b}");
        }
    }

    // A confidential round promises "never your comments": the same comments in a
    // confidential round are never shown, however many there are.
    exec(&app.db.url, "UPDATE rounds SET anonymity = 'confidential'").await;
    let d = preview(&app).await;
    assert_eq!(d["comments"], serde_json::json!([]));
    let all = d.to_string();
    for t in &texts {
        assert!(
            !all.contains(&format!("\"{t}\"")),
            "a confidential comment shown: {t}"
        );
    }
}

/// Program with `metrics` scale questions over as many surveys as needed (20 per survey).
fn program_with_metrics(metrics: usize) -> String {
    let mut surveys = String::new();
    for s in 0..metrics.div_ceil(20) {
        let mut questions = String::new();
        for i in (s * 20)..metrics.min((s + 1) * 20) {
            questions.push_str(&question(
                &format!("metric_with_a_long_descriptive_name_{i:02}"),
                "scale",
            ));
        }
        surveys.push_str(&format!(
            "[[surveys]]\nid = \"survey{s}\"\ncadence = \"0 10 1 1 *\"\nwindow_hours = 48\nanonymity = \"anonymous\"\n{questions}"
        ));
    }
    program(&surveys)
}

async fn seed_wins(app: &TestApp, n: usize) {
    let at = monday(25).timestamp_millis();
    let sql: Vec<String> = (0..n).map(|i| format!(
        "INSERT INTO wins (program_id, author_member_id, text, consent, source_key, created_at)
         VALUES ('pilot', (SELECT id FROM members WHERE slack_user_id = 'U0LEAD001'), '{}', 'named', 'w{i}', {})",
        "A small win that took some words to describe properly. ".repeat(4), at + i as i64
    )).collect();
    let refs: Vec<&str> = sql.iter().map(String::as_str).collect();
    exec_all(&app.db.url, &refs).await;
}

#[tokio::test]
async fn the_message_is_valid_block_kit_for_1_and_40_metrics_and_0_and_30_wins() {
    for (metrics, wins) in [(1usize, 0usize), (1, 30), (40, 0), (40, 30)] {
        let app = spawn(&program_with_metrics(metrics), wednesday()).await;
        let everyone = all_members();
        for s in 0..metrics.div_ceil(20) {
            let numbers: Vec<(String, f64)> = ((s * 20)..metrics.min((s + 1) * 20))
                .map(|i| {
                    (
                        format!("metric_with_a_long_descriptive_name_{i:02}"),
                        3.0 + (i % 3) as f64,
                    )
                })
                .collect();
            let refs: Vec<(&str, f64)> = numbers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let answers: Vec<Ans> = everyone.iter().map(|m| ans(m, role_of(m), &refs)).collect();
            seed_round(
                &app,
                &format!("survey{s}"),
                monday(25),
                &everyone,
                &answers,
                None,
            )
            .await;
        }
        seed_wins(&app, wins).await;
        let d = preview(&app).await;
        assert_eq!(d["metrics"].as_array().unwrap().len(), metrics);
        assert_eq!(d["wins"].as_array().unwrap().len(), wins);
        let errors = slack_emulator::blocks::validate_message_blocks(&d["blocks"]);
        assert!(
            errors.is_empty(),
            "{metrics} metrics, {wins} wins: {errors:?}"
        );
        assert!(!d["text"].as_str().unwrap().is_empty(), "a text fallback");
        let blocks = d["blocks"].to_string();
        if wins == 30 {
            assert!(blocks.contains("and 20 more"), "wins are cut: {blocks}");
            assert!(
                blocks.contains("<@U0LEAD001>"),
                "a named win names its author"
            );
        }
        if metrics == 40 {
            // One line per metric (no metric silently dropped): every key's label appears.
            for i in 0..40 {
                assert!(
                    blocks.contains(&format!("Metric with a long descriptive name {i:02}")),
                    "metric {i}"
                );
            }
        }
        // And Slack accepts it: the post goes through the outbox to the emulator.
        let r = app.admin_post("/api/v1/programs/pilot/digest/send").await;
        assert_eq!(r.status(), 202);
        app.drain_outbox().await;
        let posted: Vec<_> = app
            .emulator
            .messages()
            .into_iter()
            .filter(|m| m.channel == SPONSOR && m.files.is_empty())
            .collect();
        assert_eq!(posted.len(), 1, "{metrics} metrics, {wins} wins");
        // Slack (and the emulator) add a generated block_id to each block that has none.
        let mut stored = posted[0].blocks.clone();
        for block in stored.as_array_mut().into_iter().flatten() {
            block.as_object_mut().map(|b| b.remove("block_id"));
        }
        assert_eq!(stored, d["blocks"]);
    }
}

#[tokio::test]
async fn the_digest_is_posted_once_per_channel_and_period_with_two_schedulers() {
    // Friday 29 January 16:00 Berlin (15:00 UTC): the digest of 22–29 January is due.
    let friday = Utc.with_ymd_and_hms(2027, 1, 29, 15, 0, 30).unwrap();
    let a = spawn(&program(&weekly_survey(&standard_questions())), friday).await;
    let b = TestAppBuilder::sharing(&a.db, &a.emulator, &a.clock)
        .program(
            "pilot.toml",
            &program(&weekly_survey(&standard_questions())),
        )
        .spawn()
        .await;
    seed_fixture(&a).await;
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    assert_eq!(ra.digests + rb.digests, 1, "{ra:?} {rb:?}");
    // A restart and more ticks in the same period: nothing new.
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    assert_eq!(ra.digests + rb.digests, 0);
    a.drain_outbox().await;
    b.drain_outbox().await;
    let posted = |app: &TestApp| {
        app.emulator
            .messages()
            .into_iter()
            .filter(|m| m.channel == SPONSOR && m.files.is_empty())
            .count()
    };
    assert_eq!(posted(&a), 1);
    assert_eq!(a.count("SELECT COUNT(*) FROM digests").await, 1);
    // The trend chart went with it, once, to the same channel.
    let shares = a.emulator.calls_to("files.completeUploadExternal");
    assert_eq!(shares.len(), 1, "one chart per channel and period");
    assert_eq!(shares[0].params["channel_id"], SPONSOR);
    assert_eq!(shares[0].response["ok"], true, "{:?}", shares[0].response);
    // What was posted is the period that ended at the firing.
    let stored = rows(&a.db.url, "SELECT period_start, period_end FROM digests").await;
    assert_eq!(
        stored[0]["period_end"],
        serde_json::json!(Utc
            .with_ymd_and_hms(2027, 1, 29, 15, 0, 0)
            .unwrap()
            .timestamp_millis())
    );
    // A manual send in the next period is allowed once; the one after it is refused (409).
    a.advance(Duration::days(2));
    let r = a.admin_post("/api/v1/programs/pilot/digest/send").await;
    assert_eq!(r.status(), 202);
    let r = b.admin_post("/api/v1/programs/pilot/digest/send").await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("already posted"),
        "{body}"
    );
    // Next Friday the scheduler finds that period already posted.
    a.advance(Duration::days(5));
    let (ra, rb) = tokio::join!(a.tick(), b.tick());
    assert_eq!(ra.digests + rb.digests, 0);
    a.drain_outbox().await;
    assert_eq!(posted(&a), 2);
    b.stop().await;
}

#[tokio::test]
async fn pulse_digest_is_an_ephemeral_preview_for_owners_only() {
    let app = spawn(&program(&weekly_survey(&standard_questions())), wednesday()).await;
    seed_fixture(&app).await;
    let r = app.send_command("U0LEAD001", "digest").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["response_type"], "ephemeral");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("Only program owners"),
        "{body}"
    );
    assert!(body
        .get("blocks")
        .is_none_or(|b| !b.to_string().contains("Value 4.0")));

    let r = app.send_command(OWNER, "digest").await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["response_type"], "ephemeral");
    assert!(
        body["blocks"].to_string().contains("Value 4.0 (n = 6)"),
        "{body}"
    );
    // Nothing was posted or recorded by a preview.
    assert_eq!(app.count("SELECT COUNT(*) FROM digests").await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn the_admin_api_names_an_unknown_program_and_the_cli_previews() {
    let app = spawn(&program(&weekly_survey(&standard_questions())), wednesday()).await;
    let r = app.admin_get("/api/v1/programs/nope/digest/preview").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("nope"));
    let r = app.admin_post("/api/v1/programs/nope/digest/send").await;
    assert_eq!(r.status(), 404);

    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_pulseloop"))
            .env_remove("SLACK_BOT_TOKEN")
            .env("DATABASE_URL", &app.db.url)
            .env("PULSELOOP_CONFIG", app.config_dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["digest", "preview", "--program", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no program 'nope'") && err.contains("pilot"),
        "{err}"
    );

    let out = cli(&["digest", "preview", "--program", "pilot", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in [
        "program",
        "period",
        "participation",
        "metrics",
        "enps",
        "comments",
        "wins",
        "actions",
        "blocks",
    ] {
        assert!(d.get(field).is_some(), "missing {field}");
    }
    let out = cli(&["digest", "preview", "--program", "pilot"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Pilot Program"));
}
