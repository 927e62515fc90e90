//! `GET /api/v1/programs/{id}/export` (issue 10, item 2): anonymous and confidential surveys
//! export aggregates per period and metric only, attributed surveys export rows. The rounds
//! run through the real loop: send-now, DMs through the emulator, button clicks, the close
//! (and seal) of the rounds.

use crate::helpers::*;
use chrono::Duration;
use serde_json::Value;
use slack_emulator::EmulatedUser;

/// (Slack id, real name, handle): distinctive, so a leak cannot hide in other words.
const MEMBERS: [(&str, &str, &str); 5] = [
    ("U0EXP001", "Zelda Quokka", "zquokka"),
    ("U0EXP002", "Yannick Marmot", "ymarmot"),
    ("U0EXP003", "Xiomara Pangolin", "xpangolin"),
    ("U0EXP004", "Wendell Axolotl", "waxolotl"),
    ("U0EXP005", "Violeta Tapir", "vtapir"),
];

fn survey(id: &str, anonymity: &str) -> String {
    // Cadence on the first of January only: nothing fires on its own; rounds start by
    // send-now.
    format!(
        "[[surveys]]\nid = \"{id}\"\ncadence = \"0 10 1 1 *\"\nwindow_hours = 48\nanonymity = \"{anonymity}\"\n\
         [[surveys.questions]]\nkey = \"value\"\nkind = \"scale\"\nprompt = \"How valuable was coaching?\"\n"
    )
}

fn program() -> String {
    let mut t = String::from(
        "id = \"pilot\"\nname = \"Pilot Program\"\ntimezone = \"Europe/Berlin\"\nstart_date = \"2027-01-04\"\nanonymity_threshold = 3\n",
    );
    for (i, (id, _, _)) in MEMBERS.iter().enumerate() {
        let role = if i < 2 { "leader" } else { "participant" };
        t.push_str(&format!(
            "[[members]]\nslack_id = \"{id}\"\nrole = \"{role}\"\ntimezone = \"Europe/Berlin\"\n"
        ));
    }
    for (id, mode) in [
        ("anon", "anonymous"),
        ("small", "anonymous"),
        ("conf", "confidential"),
        ("named", "attributed"),
    ] {
        t.push_str(&survey(id, mode));
    }
    t
}

async fn spawn() -> TestApp {
    let emulator = start_emulator().await;
    for (id, name, handle) in MEMBERS {
        emulator.add_user(
            EmulatedUser::new(id, "Europe/Berlin")
                .named(name)
                .handle(handle),
        );
    }
    TestAppBuilder::default()
        .emulator(emulator)
        .now(monday_ten_berlin())
        .program("pilot.toml", &program())
        .spawn()
        .await
}

async fn send_now(app: &TestApp, survey: &str) {
    let r = app
        .admin_post(&format!("/api/v1/programs/pilot/surveys/{survey}/send-now"))
        .await;
    assert_eq!(r.status(), 202, "{survey}");
    // One post per second per DM channel: each survey's DMs go out a few seconds apart.
    for _ in 0..3 {
        app.drain_outbox().await;
        app.advance(Duration::seconds(2));
    }
}

/// `user` clicks `v` on the pulse of `survey`.
async fn answer(app: &TestApp, user: &str, survey: &str, v: u8) {
    let r = rows(
        &app.db.url,
        &format!(
            "SELECT d.id FROM deliveries d JOIN members m ON m.id = d.member_id \
             JOIN rounds r ON r.id = d.round_id \
             WHERE m.slack_user_id = '{user}' AND r.survey_id = '{survey}'"
        ),
    )
    .await;
    let delivery = r[0]["id"].as_i64().expect("a delivery");
    let block = format!("pulse:{delivery}:value");
    let dm = app
        .emulator
        .dm_messages(user)
        .into_iter()
        .find(|m| m.blocks.to_string().contains(&block))
        .expect("the pulse DM");
    let click = app.peer.block_actions(
        user,
        &dm.channel,
        &dm.ts,
        &format!("answer:{v}"),
        &block,
        &v.to_string(),
    );
    assert_eq!(app.send_interaction(&click).await.status(), 200);
}

/// Runs every survey once: `anon` 4 answers (2, 3, 4, 5), `small` 2 answers, `conf` 3
/// answers, `named` 3 answers; then closes (and seals) the rounds.
async fn run_rounds(app: &TestApp) {
    for s in ["anon", "small", "conf", "named"] {
        send_now(app, s).await;
    }
    for (i, v) in [2, 3, 4, 5].into_iter().enumerate() {
        answer(app, MEMBERS[i].0, "anon", v).await;
    }
    for (i, v) in [1, 5].into_iter().enumerate() {
        answer(app, MEMBERS[i].0, "small", v).await;
    }
    for (i, v) in [4, 4, 1].into_iter().enumerate() {
        answer(app, MEMBERS[i + 1].0, "conf", v).await;
    }
    for (i, v) in [5, 3, 1].into_iter().enumerate() {
        answer(app, MEMBERS[i].0, "named", v).await;
    }
}

async fn close_rounds(app: &TestApp) {
    app.advance(Duration::hours(49));
    let report = app.tick().await;
    assert_eq!(report.rounds_closed, 4, "{report:?}");
    assert_eq!(report.sealed, 2, "anon and small are sealed: {report:?}");
    app.drain_outbox().await;
}

async fn export(app: &TestApp, query: &str) -> reqwest::Response {
    app.admin_get(&format!("/api/v1/programs/pilot/export{query}"))
        .await
}

async fn export_text(app: &TestApp, query: &str) -> String {
    let r = export(app, query).await;
    assert_eq!(r.status(), 200, "{query}");
    r.text().await.unwrap()
}

/// No member's id, name or handle appears anywhere in `body`, in any case.
fn assert_names_nobody(body: &str, what: &str) {
    let lower = body.to_lowercase();
    for (id, name, handle) in MEMBERS {
        for needle in [id, name, handle] {
            assert!(
                !lower.contains(&needle.to_lowercase()),
                "{what} contains '{needle}':\n{body}"
            );
        }
    }
}

#[tokio::test]
async fn an_export_of_an_anonymous_survey_never_contains_a_member_id_or_name() {
    let app = spawn().await;
    run_rounds(&app).await;

    // While the round is open its numbers still move: nothing of it is exported yet.
    for q in ["?survey=anon", "?survey=anon&format=csv"] {
        let body = export_text(&app, q).await;
        assert_names_nobody(&body, q);
    }
    let open: Value = export(&app, "?survey=anon").await.json().await.unwrap();
    assert_eq!(open["aggregates"], serde_json::json!([]));

    close_rounds(&app).await;
    for q in [
        "?survey=anon",
        "?survey=anon&format=csv",
        "?survey=small",
        "?survey=small&format=csv",
        "?survey=conf",
        "?survey=conf&format=csv",
    ] {
        let body = export_text(&app, q).await;
        assert_names_nobody(&body, q);
    }

    let e: Value = export(&app, "?survey=anon").await.json().await.unwrap();
    assert_eq!(e["program"], "pilot");
    assert_eq!(e["anonymity_threshold"], 3);
    assert_eq!(e["answers"], serde_json::json!([]));
    let cells = e["aggregates"].as_array().unwrap();
    assert_eq!(cells.len(), 1, "{e}");
    let c = &cells[0];
    assert_eq!(c["survey"], "anon");
    assert_eq!(c["round"], 1);
    assert!(
        c["period"].as_str().unwrap().contains("2027-01-04T"),
        "the period of the send-now round: {c}"
    );
    assert_eq!(c["anonymity"], "anonymous");
    assert_eq!(c["metric"], "value");
    assert_eq!(c["n"], 4);
    assert_eq!(c["mean"], 3.5);
    assert_eq!(c["suppressed"], false);

    // Two answers, k = 3: the cell says so and gives neither a count nor a mean.
    let e: Value = export(&app, "?survey=small").await.json().await.unwrap();
    let c = &e["aggregates"][0];
    assert_eq!(c["suppressed"], true, "{e}");
    assert_eq!(c["n"], Value::Null);
    assert_eq!(c["mean"], Value::Null);
    assert_eq!(c["note"], "fewer than 3 answers");

    // Confidential: linked in the database, yet aggregates only here.
    let e: Value = export(&app, "?survey=conf").await.json().await.unwrap();
    assert_eq!(e["answers"], serde_json::json!([]));
    assert_eq!(e["aggregates"][0]["anonymity"], "confidential");
    assert_eq!(e["aggregates"][0]["n"], 3);
    assert_eq!(e["aggregates"][0]["mean"], 3.0);
}

#[tokio::test]
async fn an_attributed_export_has_a_row_per_answer_and_its_csv_parses() {
    let app = spawn().await;
    run_rounds(&app).await;
    // Attributed rows do not wait for the close: the program team sees names anyway.
    let e: Value = export(&app, "?survey=named").await.json().await.unwrap();
    let rows = e["answers"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{e}");
    assert_eq!(e["aggregates"], serde_json::json!([]));
    let mut got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            assert_eq!(r["survey"], "named");
            assert_eq!(r["question"], "value");
            assert_eq!(r["kind"], "scale");
            assert_eq!(r["round"], 1);
            assert!(r["answered_at"].as_str().unwrap().ends_with('Z'));
            (
                r["member"].as_str().unwrap().to_string(),
                r["answer"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("U0EXP001".to_string(), "5".to_string()),
            ("U0EXP002".to_string(), "3".to_string()),
            ("U0EXP003".to_string(), "1".to_string()),
        ]
    );

    close_rounds(&app).await;
    // The whole program: the attributed rows and the other surveys' cells, in one CSV.
    let r = export(&app, "?format=csv").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("pilot-export.csv"));
    let text = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header[0], "record");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let answers: Vec<_> = records.iter().filter(|r| &r[0] == "answer").collect();
    let cells: Vec<_> = records.iter().filter(|r| &r[0] == "aggregate").collect();
    assert_eq!(answers.len(), 3);
    assert_eq!(cells.len(), 3, "anon, small and conf: {text}");
    for a in &answers {
        assert_eq!(&a[col("survey")], "named");
        assert_eq!(&a[col("anonymity")], "attributed");
        assert!(a[col("member")].starts_with("U0EXP"));
    }
    // The anonymous and confidential rounds' lines name nobody.
    for c in &cells {
        assert_eq!(&c[col("member")], "");
        assert_names_nobody(&c.iter().collect::<Vec<_>>().join(","), "an aggregate line");
    }
    let small = cells.iter().find(|c| &c[col("survey")] == "small").unwrap();
    assert_eq!(&small[col("suppressed")], "true");
    assert_eq!(&small[col("n")], "");
    assert_eq!(&small[col("note")], "fewer than 3 answers");

    // JSON is the default and carries the same records.
    let e: Value = export(&app, "").await.json().await.unwrap();
    assert_eq!(e["answers"].as_array().unwrap().len(), 3);
    assert_eq!(e["aggregates"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn export_errors_are_json_with_fitting_statuses() {
    let app = spawn().await;
    for (query, status, needle) in [
        (
            "?format=xlsx",
            400,
            "format must be 'json' or 'csv', not 'xlsx'",
        ),
        ("?format=", 400, "format must be"),
        ("?survey=nope", 404, "no survey 'nope' in program 'pilot'"),
    ] {
        let r = export(&app, query).await;
        assert_eq!(r.status(), status, "{query}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
    let r = app.admin_get("/api/v1/programs/nope/export").await;
    assert_eq!(r.status(), 404);
    let r = app.get("/api/v1/programs/pilot/export").await;
    assert_eq!(r.status(), 401, "no token, no export");
}
