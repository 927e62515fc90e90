//! Mirroring a program into the database (`StoreTx::sync_program`): what each change writes,
//! counts and audits.

use pulseloop::storage::programs::{
    DesiredMember, DesiredProgram, DesiredQuestion, DesiredSurvey, SyncReport,
};
use serde_json::json;

use crate::helpers::spawn_app;

fn member(id: &str, role: &str) -> DesiredMember {
    DesiredMember {
        slack_user_id: id.into(),
        role: role.to_string(),
        source: "file".to_string(),
        timezone_override: None,
        working_days: None,
    }
}

fn survey(id: &str, prompt: &str) -> DesiredSurvey {
    DesiredSurvey {
        id: id.to_string(),
        definition: json!({ "id": id, "prompt": prompt }),
        questions: vec![DesiredQuestion {
            metric_key: "value".to_string(),
            kind: "scale".to_string(),
            prompt: prompt.to_string(),
            definition: json!({ "kind": "scale" }),
        }],
    }
}

fn program(members: Vec<DesiredMember>, surveys: Vec<DesiredSurvey>) -> DesiredProgram {
    DesiredProgram {
        id: "sync-test".into(),
        name: "Sync test".to_string(),
        timezone: "Europe/Berlin".to_string(),
        start_date: "2027-01-04".to_string(),
        settings: json!({ "working_days": ["MON", "TUE", "WED", "THU", "FRI"] }),
        members,
        surveys,
    }
}

#[tokio::test]
async fn every_config_change_is_written_counted_and_audited_once() {
    let app = spawn_app().await;
    let sync = |p: DesiredProgram| {
        let (store, now) = (app.state.store.clone(), app.now());
        async move {
            let mut tx = store.begin().await.unwrap();
            let report = tx.sync_program(&p, now).await.unwrap();
            tx.commit().await.unwrap();
            report
        }
    };
    let actions = || async {
        let mut entries = app
            .state
            .store
            .audit_entries(Some(&"sync-test".into()), 100)
            .await
            .unwrap();
        entries.reverse();
        entries
            .into_iter()
            .map(|e| format!("{} {}", e.action, e.subject.unwrap_or_default()))
            .collect::<Vec<_>>()
    };

    let first = program(
        vec![member("U0A", "participant"), member("U0B", "leader")],
        vec![survey("weekly", "How was the week?")],
    );
    let report = sync(first.clone()).await;
    assert_eq!(
        report,
        SyncReport {
            program_changed: true,
            members_added: 2,
            surveys_changed: 1,
            ..SyncReport::default()
        }
    );
    assert_eq!(
        actions().await,
        [
            "program.created sync-test",
            "member.added U0A",
            "member.added U0B",
            "survey.created weekly",
        ]
    );
    assert_eq!(
        sync(first.clone()).await,
        SyncReport::default(),
        "no change"
    );

    // U0A changes role, U0B leaves, the survey is replaced by another, the name changes.
    let mut second = program(
        vec![member("U0A", "leader")],
        vec![survey("monthly", "How was the month?")],
    );
    second.name = "Renamed".to_string();
    let report = sync(second).await;
    assert_eq!(
        report,
        SyncReport {
            program_changed: true,
            members_updated: 1,
            members_deactivated: 1,
            surveys_changed: 2,
            ..SyncReport::default()
        }
    );
    // U0B returns with a new role: one write, two audit entries.
    let mut third = first.clone();
    third.members[1].role = "participant".to_string();
    let report = sync(third).await;
    assert_eq!(report.members_reactivated, 1);
    assert_eq!(report.members_updated, 2, "U0A back to participant, U0B");
    assert_eq!(
        actions().await[4..],
        [
            "program.updated sync-test",
            "member.updated U0A",
            "member.deactivated U0B",
            "survey.created monthly",
            "survey.retired weekly",
            "program.updated sync-test",
            "member.updated U0A",
            "member.reactivated U0B",
            "member.updated U0B",
            "survey.updated weekly",
            "survey.retired monthly",
        ]
    );
    app.assert_count(
        "SELECT COUNT(*) FROM members WHERE program_id = 'sync-test' AND state = 'active'",
        2,
    )
    .await;
}
