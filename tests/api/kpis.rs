//! Business KPIs beside the pulse: `PUT`/`GET /api/v1/programs/{id}/kpis` and
//! `pulseloop kpi import FILE.csv` (all lines or none, a bad line named).

use crate::helpers::*;
use serde_json::{json, Value};
use std::process::Command;

pub const PROGRAM: &str = r#"
id = "pilot"
name = "Pilot Program"
timezone = "Europe/Berlin"
start_date = "2027-01-01"
anonymity_threshold = 3
comment_threshold = 3
baseline_rounds = 2

[[members]]
slack_id = "U0KPI0001"
role = "leader"

[[surveys]]
id = "weekly"
name = "Weekly pulse"
cadence = "0 10 * * MON"
window_hours = 48
anonymity = "anonymous"

[[surveys.questions]]
key = "value"
kind = "scale"
prompt = "How valuable was coaching this week?"

[[surveys.questions]]
key = "recommend"
kind = "enps"
prompt = "Would you recommend the program?"
"#;

pub async fn pilot_app() -> TestApp {
    TestAppBuilder::default()
        .user("U0KPI0001", "Europe/Berlin")
        .program("pilot.toml", PROGRAM)
        .spawn()
        .await
}

async fn put(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    app.http
        .put(format!("{}{path}", app.base_url))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("PUT")
}

/// Runs the binary against the app's database and configuration.
pub fn pulseloop(app: &TestApp, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pulseloop"))
        .env_remove("SLACK_BOT_TOKEN")
        .env_remove("PULSELOOP_CONFIG")
        .env("DATABASE_URL", &app.db.url)
        .arg("--config")
        .arg(app.config_dir.path())
        .args(args)
        .output()
        .expect("pulseloop runs")
}

#[tokio::test]
async fn kpis_put_are_read_back_with_the_latest_value_against_the_baseline() {
    let app = pilot_app().await;
    let body = json!({
        "kpis": [
            {"key": "complaints", "label": "Customer complaints", "unit": "", "direction": "lower"},
            {"key": "sales_per_rep", "label": "Sales per rep", "unit": "EUR", "direction": "higher"}
        ],
        "values": [
            {"kpi": "complaints", "period_start": "2027-01-04", "value": 10},
            {"kpi": "complaints", "period_start": "2027-01-11", "value": 14},
            {"kpi": "complaints", "period_start": "2027-01-18", "value": 9},
            {"kpi": "sales_per_rep", "period_start": "2027-01-04", "value": 1000}
        ]
    });
    let response = put(&app, "/api/v1/programs/pilot/kpis", &body.to_string()).await;
    assert_eq!(response.status(), 200);

    // A second PUT replaces a period's value and adds another; definitions are kept.
    let more = json!({"values": [
        {"kpi": "complaints", "period_start": "2027-01-18", "value": 8},
        {"kpi": "sales_per_rep", "period_start": "2027-01-11", "value": 1200}
    ]});
    assert_eq!(
        put(&app, "/api/v1/programs/pilot/kpis", &more.to_string())
            .await
            .status(),
        200
    );
    app.assert_count("SELECT COUNT(*) FROM kpi_values", 5).await;
    // The summary counts periods up to today (the clock starts on 2027-01-04).
    app.advance(chrono::Duration::days(21));

    let got: Value = app
        .admin_get("/api/v1/programs/pilot/kpis")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["program"], "pilot");
    let complaints = &got["kpis"][0];
    assert_eq!(complaints["key"], "complaints");
    assert_eq!(complaints["direction"], "lower");
    assert_eq!(complaints["values"].as_array().unwrap().len(), 3);
    // Baseline: the mean of the first 2 periods (10, 14) = 12; latest 8: down 4, better.
    let s = &complaints["summary"];
    assert_eq!(s["baseline"], 12.0);
    assert_eq!(s["latest"]["value"], 8.0);
    assert_eq!(s["latest"]["period_start"], "2027-01-18");
    assert_eq!(s["change"], -4.0);
    assert_eq!(s["improved"], true);
    // Two periods are all baseline: nothing to compare yet.
    let sales = &got["kpis"][1]["summary"];
    assert_eq!(sales["baseline"], 1100.0);
    assert_eq!(sales["latest"], Value::Null);
    assert_eq!(sales["improved"], Value::Null);

    // The digest shows each KPI beside the pulse trends, in the JSON and in the message.
    let digest: Value = app
        .admin_get("/api/v1/programs/pilot/digest/preview")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(digest["kpis"][0]["key"], "complaints", "{}", digest["kpis"]);
    assert_eq!(digest["kpis"][0]["change"], -4.0);
    let blocks = digest["blocks"].to_string();
    assert!(
        blocks.contains(
            "*Customer complaints* 8 (18 Jan), −4 on the baseline 12: better (lower is better)"
        ),
        "{blocks}"
    );
    assert!(
        blocks.contains("*Sales per rep* baseline 1100 EUR; no value since the baseline yet"),
        "{blocks}"
    );
}

#[tokio::test]
async fn a_bad_kpi_document_is_a_400_naming_the_problem_and_stores_nothing() {
    let app = pilot_app().await;
    let cases = [
        ("{not json", "not a KPI document"),
        (
            r#"{"kpis": [{"key": "x", "label": "X", "direction": "sideways"}]}"#,
            "not a KPI document",
        ),
        (
            r#"{"kpis": [{"key": "x", "label": "X", "direction": "higher"}],
                "values": [{"kpi": "x", "period_start": "2027-01-04", "value": 1},
                           {"kpi": "y", "period_start": "2027-01-04", "value": 2}]}"#,
            "values[1]: no KPI 'y'",
        ),
        (
            r#"{"kpis": [{"key": "Bad Key", "label": "X", "direction": "higher"}]}"#,
            "kpis[0]: KPI key 'Bad Key'",
        ),
        (
            r#"{"kpis": [{"key": "x", "label": "X", "direction": "higher"}],
                "values": [{"kpi": "x", "period_start": "2027-02-30", "value": 1}]}"#,
            "not a KPI document",
        ),
        ("{}", "nothing to store"),
    ];
    for (body, expected) in cases {
        let response = put(&app, "/api/v1/programs/pilot/kpis", body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "bad_request");
        let detail = error["detail"].as_str().unwrap();
        assert!(detail.contains(expected), "{expected:?} in {detail:?}");
    }
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM kpis", 0),
        ("SELECT COUNT(*) FROM kpi_values", 0),
    ])
    .await;
    let unknown = put(&app, "/api/v1/programs/nope/kpis", r#"{"kpis": []}"#).await;
    assert_eq!(unknown.status(), 404);
    let unauthorized = app
        .http
        .get(format!("{}/api/v1/programs/pilot/kpis", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
}

#[tokio::test]
async fn kpi_import_stores_the_whole_file() {
    let app = pilot_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kpis.csv");
    std::fs::write(
        &file,
        "kpi,label,unit,direction,period_start,value\n\
         sales_per_rep,\"Sales per rep, monthly\",EUR,higher,2027-01-04,1000\n\
         sales_per_rep,\"Sales per rep, monthly\",EUR,higher,2027-01-11,1100\n\
         complaints,Customer complaints,,lower,2027-01-04,12\n",
    )
    .unwrap();
    let out = pulseloop(
        &app,
        &[
            "kpi",
            "import",
            "--program",
            "pilot",
            file.to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("imported 3 values of 2 KPIs"), "{stdout}");
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM kpis", 2),
        ("SELECT COUNT(*) FROM kpi_values", 3),
        (
            "SELECT COUNT(*) FROM kpis WHERE label = 'Sales per rep, monthly' AND unit = 'EUR'",
            1,
        ),
    ])
    .await;
}

#[tokio::test]
async fn kpi_import_with_a_bad_line_names_it_and_stores_nothing_of_the_file() {
    let app = pilot_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kpis.csv");
    // Lines 2 and 3 are good; line 4 is not.
    std::fs::write(
        &file,
        "kpi,label,unit,direction,period_start,value\n\
         complaints,Customer complaints,,lower,2027-01-04,12\n\
         complaints,Customer complaints,,lower,2027-01-11,10\n\
         complaints,Customer complaints,,lower,2027-01-18,eleven\n",
    )
    .unwrap();
    let out = pulseloop(
        &app,
        &[
            "kpi",
            "import",
            "--program",
            "pilot",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 4: value must be a number, not 'eleven'"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    app.assert_counts(&[
        ("SELECT COUNT(*) FROM kpis", 0),
        ("SELECT COUNT(*) FROM kpi_values", 0),
    ])
    .await;

    // An unknown program is refused in a sentence too.
    std::fs::write(
        &file,
        "kpi,label,unit,direction,period_start,value\nx,X,,higher,2027-01-04,1\n",
    )
    .unwrap();
    let out = pulseloop(
        &app,
        &["kpi", "import", "--program", "nope", file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no program 'nope'"));
}
