use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::{JobKind, JobStatus, StoreError};
use serde_json::json;

async fn a_job_reports_progress_and_then_its_result(store: TestStore) {
    let pm = fixtures::user(&store, "pm").await;
    let project = fixtures::project(&store, "podcasts").await;
    let job = store
        .create_job(
            JobKind::ImportItems,
            Some(project.id),
            Some(pm.id),
            "reading items.csv",
        )
        .await
        .unwrap();
    assert_eq!(job.kind, JobKind::ImportItems);
    assert_eq!(job.project_id, Some(project.id));
    assert_eq!(job.status, JobStatus::Running);
    assert_eq!(job.progress_done, 0);
    assert_eq!(job.progress_total, None);
    assert_eq!(job.message, "reading items.csv");
    assert_eq!(job.finished_at, None);

    store
        .job_progress(job.id, 500, Some(2_000), "staged 500")
        .await
        .unwrap();
    let running = store.job(job.id).await.unwrap();
    assert_eq!(
        (running.progress_done, running.progress_total),
        (500, Some(2_000))
    );
    assert_eq!(running.message, "staged 500");
    assert_eq!(running.status, JobStatus::Running);
    assert!(running.updated_at >= job.updated_at);

    store
        .job_progress(job.id, 1_500, None, "staged 1500")
        .await
        .unwrap();
    let running = store.job(job.id).await.unwrap();
    assert_eq!(
        (running.progress_done, running.progress_total),
        (1_500, Some(2_000)),
        "a progress report without a total keeps the known total"
    );

    store
        .finish_job(job.id, Ok(json!({"inserted": 2000})))
        .await
        .unwrap();
    let done = store.job(job.id).await.unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.result, Some(json!({"inserted": 2000})));
    assert!(done.finished_at.is_some());
    assert!(done.finished_at.unwrap() >= done.created_at);
}

async fn a_failed_job_keeps_its_error_message(store: TestStore) {
    let job = store
        .create_job(JobKind::Consensus, None, None, "")
        .await
        .unwrap();
    assert_eq!(job.project_id, None);
    store
        .finish_job(job.id, Err("items.csv:7: field id: is missing".into()))
        .await
        .unwrap();
    let failed = store.job(job.id).await.unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    assert_eq!(failed.message, "items.csv:7: field id: is missing");
    assert_eq!(failed.result, None);
    assert!(failed.finished_at.is_some());
}

async fn a_projects_jobs_are_listed_newest_first(store: TestStore) {
    let podcasts = fixtures::project(&store, "podcasts").await;
    let music = fixtures::project(&store, "music").await;
    let mut mine = Vec::new();
    // Kinds alternate so that the listing's order shows in them too.
    let podcasts_kinds = [
        JobKind::ImportItems,
        JobKind::Consensus,
        JobKind::ImportAnnotations,
        JobKind::Consensus,
    ];
    for kind in podcasts_kinds {
        mine.push(
            store
                .create_job(kind, Some(podcasts.id), None, "")
                .await
                .unwrap()
                .id,
        );
        store
            .create_job(JobKind::ImportItems, Some(music.id), None, "")
            .await
            .unwrap();
    }
    store
        .create_job(JobKind::Consensus, None, None, "")
        .await
        .unwrap();
    let listed: Vec<_> = store
        .project_jobs(podcasts.id, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.id, j.kind))
        .collect();
    assert_eq!(
        listed,
        [
            (mine[3], JobKind::Consensus),
            (mine[2], JobKind::ImportAnnotations),
            (mine[1], JobKind::Consensus),
            (mine[0], JobKind::ImportItems)
        ]
    );
    let limited: Vec<_> = store
        .project_jobs(podcasts.id, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(limited, [mine[3], mine[2]]);
}

async fn an_unknown_job_is_not_found(store: TestStore) {
    let err = store.job(4242).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

async fn jobs_that_stopped_reporting_are_failed_at_start(store: TestStore) {
    let fresh = store
        .create_job(JobKind::Consensus, None, None, "")
        .await
        .unwrap();
    let stale = store
        .create_job(JobKind::Consensus, None, None, "")
        .await
        .unwrap();
    let finished = store
        .create_job(JobKind::Consensus, None, None, "")
        .await
        .unwrap();
    store
        .finish_job(finished.id, Ok(json!(null)))
        .await
        .unwrap();
    let hour = 60 * 60 * 1000;
    fixtures::execute(
        &store,
        format!(
            "UPDATE jobs SET updated_at = updated_at - {hour} WHERE id IN ({}, {})",
            stale.id, finished.id
        ),
    )
    .await;
    assert_eq!(store.fail_stale_jobs().await.unwrap(), 1);
    assert_eq!(store.job(stale.id).await.unwrap().status, JobStatus::Failed);
    assert!(store.job(stale.id).await.unwrap().finished_at.is_some());
    assert_eq!(
        store.job(fresh.id).await.unwrap().status,
        JobStatus::Running
    );
    assert_eq!(
        store.job(finished.id).await.unwrap().status,
        JobStatus::Succeeded
    );
}

on_every_backend!(
    a_job_reports_progress_and_then_its_result,
    a_failed_job_keeps_its_error_message,
    a_projects_jobs_are_listed_newest_first,
    an_unknown_job_is_not_found,
    jobs_that_stopped_reporting_are_failed_at_start,
);
