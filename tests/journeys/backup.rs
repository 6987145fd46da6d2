//! Backups: `eportfolio backup DIR` and `restore DIR`, run as an operator would, restored into a
//! fresh database and data dir and compared table by table and file by file with the original.

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::common::{TestApp, api_evidence, empty_database_url, files_under, pdf, run_cli, vacs, wav};

/// Every table's rows, as one digest per table (in a stable order), to compare two databases.
async fn contents(pool: &PgPool) -> Vec<(String, i64, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations' ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut found = Vec::new();
    for table in tables {
        let (rows, digest): (i64, Option<String>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        found.push((table, rows, digest.unwrap_or_default()));
    }
    found
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        files_under(dir).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_backup_restored_into_a_fresh_database_and_data_dir_is_the_same_portfolio() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let path = format!("/api/v1/enrolments/{}/evidence", cast.enrolment);
    let metadata = json!({"title": "Call and dashboard", "method": "product", "occurred_on": "2026-03-02",
                          "criteria": ["1.1", "1.2"], "declaration": true, "third_party_confirmed": true});
    let created =
        learner.post_multipart(&path, api_evidence(metadata, vec![("call.wav", wav()), ("dash.pdf", pdf())])).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let item: Value = created.json().await.unwrap();
    let assessor = app.api_for(&cast.assessor).await;
    let decided = assessor
        .post_json(
            &format!("/api/v1/evidence/{}/decisions", item["id"].as_str().unwrap()),
            &json!({"criterion": "1.1", "outcome": "met", "feedback": "Clear needs questions.", "confirmed": vacs()}),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::CREATED);

    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup-2026-12-01");
    let (ok, output) = run_cli(&app.database_url, &app.data_dir, &["backup", backup.to_str().unwrap()]).await;
    assert!(ok, "{output}");
    assert!(output.contains("2 stored files"), "{output}");
    let manifest: Value = serde_json::from_slice(&std::fs::read(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "eportfolio-backup");
    assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
    // A second backup into the same folder is refused: it would mix two moments.
    let (ok, output) = run_cli(&app.database_url, &app.data_dir, &["backup", backup.to_str().unwrap()]).await;
    assert!(!ok && output.contains("is not empty"), "{output}");

    // Restored into a new database and a new data dir.
    let restored_url = empty_database_url().await;
    let restored_dir = work.path().join("restored");
    let (ok, output) = run_cli(&restored_url, &restored_dir, &["restore", backup.to_str().unwrap()]).await;
    assert!(ok, "{output}");
    assert!(output.contains("audit trail intact"), "{output}");
    let restored = sqlx::PgPool::connect(&restored_url).await.unwrap();
    assert_eq!(contents(&restored).await, contents(&app.pool).await, "every table holds the same rows");
    assert_eq!(
        file_names(&restored_dir.join("files/blobs")),
        file_names(&app.data_dir.join("files/blobs")),
        "the same stored files"
    );
    // The restored portfolio exports and verifies: its records and files agree.
    let export = work.path().join("export.zip");
    let (ok, output) = run_cli(
        &restored_url,
        &restored_dir,
        &[
            "export",
            "enrolment",
            "--id",
            &cast.enrolment.to_string(),
            "--as",
            &cast.assessor.email,
            "--out",
            export.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{output}");
    let (ok, output) = run_cli(&restored_url, &restored_dir, &["export", "verify", export.to_str().unwrap()]).await;
    assert!(ok && output.contains("export intact: 2 files"), "{output}");

    // Restoring over a database in use is refused and changes nothing.
    let before = contents(&app.pool).await;
    let (ok, output) = run_cli(&app.database_url, &app.data_dir, &["restore", backup.to_str().unwrap()]).await;
    assert!(!ok && output.contains("restore needs an empty database"), "{output}");
    assert_eq!(contents(&app.pool).await, before);
}

#[tokio::test]
async fn a_damaged_backup_is_refused_before_anything_is_restored() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Dashboard", "method": "product", "occurred_on": "2026-03-02",
                          "criteria": ["1.1"], "declaration": true, "third_party_confirmed": true});
    let created = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("dash.pdf", pdf())]),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup");
    let (ok, output) = run_cli(&app.database_url, &app.data_dir, &["backup", backup.to_str().unwrap()]).await;
    assert!(ok, "{output}");

    // One byte of the stored file changed.
    let object = files_under(&backup.join("objects")).pop().unwrap();
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();
    let restored_url = empty_database_url().await;
    let restored_dir = work.path().join("restored");
    let (ok, output) = run_cli(&restored_url, &restored_dir, &["restore", backup.to_str().unwrap()]).await;
    assert!(!ok, "{output}");
    let name = object.file_name().unwrap().to_string_lossy().into_owned();
    assert!(output.contains("the backup is damaged") && output.contains(&name), "{output}");
    let restored = sqlx::PgPool::connect(&restored_url).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        .fetch_one(&restored)
        .await
        .unwrap();
    assert_eq!(tables, 0, "nothing was restored");
    assert!(files_under(&restored_dir.join("files/blobs")).is_empty(), "no file was restored");

    // A truncated dump is refused the same way.
    let dump = backup.join("database.dump");
    let length = std::fs::metadata(&dump).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&dump).unwrap().set_len(length / 2).unwrap();
    let (ok, output) = run_cli(&restored_url, &restored_dir, &["restore", backup.to_str().unwrap()]).await;
    assert!(!ok && output.contains("database.dump does not match"), "{output}");
}
