use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::{ImportOutcome, OnConflict, StoreError};
use std::collections::HashSet;
use std::time::Duration;

async fn sixty_four_concurrent_annotations_are_all_acknowledged_and_stored(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    fixtures::import_items(
        &store,
        project.id,
        "items.csv",
        &fixtures::tracks_csv(8),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let mut items = Vec::new();
    for n in 1..=8 {
        items.push(
            store
                .item_by_external_id(project.id, &format!("item-{n:05}"))
                .await
                .unwrap()
                .id,
        );
    }
    let mut annotators = Vec::new();
    for n in 0..8 {
        annotators.push(fixtures::user(&store, &format!("annotator-{n}")).await.id);
    }

    let mut tasks = Vec::new();
    for &annotator in &annotators {
        for &item in &items {
            let store = store.store.clone();
            tasks.push(tokio::spawn(async move {
                let answer = fixtures::answer("VIOLATING", "S3");
                store
                    .add_annotation(project.id, annotator, fixtures::annotation(item, answer))
                    .await
            }));
        }
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.push(task.await.unwrap().unwrap());
    }
    let ids: HashSet<_> = acknowledged.iter().map(|a| a.id).collect();
    assert_eq!(ids.len(), 64);
    assert_eq!(store.count_annotations(project.id).await.unwrap(), 64);
    for &item in &items {
        let on_item = store.item_annotations(item).await.unwrap();
        let by: HashSet<_> = on_item.iter().map(|a| a.annotator_id).collect();
        assert_eq!(by.len(), 8, "one annotation per annotator on item {item}");
        assert!(on_item.iter().all(|a| ids.contains(&a.id)));
    }
}

async fn a_failed_write_does_not_undo_the_writes_committed_with_it(store: TestStore) {
    // The first write holds the writer while the others queue up behind it, so that on
    // SQLite they are committed together in one group.
    let blocker = {
        let store = store.store.clone();
        tokio::spawn(async move {
            store
                .write(|c| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO users (username, display_name) VALUES ('blocker', 'blocker')")
                            .execute(&mut *c)
                            .await?;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Ok(())
                    })
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut tasks = Vec::new();
    for n in 0..24 {
        let store = store.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .write(move |c| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO users (username, display_name) VALUES ($1, $1)")
                            .bind(format!("writer-{n}"))
                            .execute(&mut *c)
                            .await?;
                        if n == 7 {
                            return Err(StoreError::Invalid("changed its mind".into()));
                        }
                        if n == 13 {
                            sqlx::query("INSERT INTO users (username, display_name) VALUES ('blocker', 'again')")
                                .execute(&mut *c)
                                .await?;
                        }
                        Ok(n)
                    })
                })
                .await
        }));
    }
    blocker.await.unwrap().unwrap();
    for (n, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        match n {
            7 => assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}"),
            13 => assert!(matches!(result, Err(StoreError::Database(_))), "{result:?}"),
            _ => assert_eq!(result.unwrap(), n),
        }
    }
    for n in 0..24 {
        let found = store.user_by_name(&format!("writer-{n}")).await;
        match n {
            7 | 13 => assert!(
                matches!(found, Err(StoreError::NotFound(_))),
                "the failed write {n} left a row behind"
            ),
            _ => assert!(found.is_ok(), "the acknowledged write {n} was lost"),
        }
    }
    assert_eq!(
        store.user_by_name("blocker").await.unwrap().display_name,
        "blocker"
    );
    assert_eq!(store.count_users().await.unwrap(), 23);
}

async fn imports_staged_at_the_same_time_publish_only_their_own_rows(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let read = |file: &'static str, text: String| {
        concord_formats::items::ItemReader::new(
            file,
            std::io::Cursor::new(text.into_bytes()),
            concord_formats::items::RecordFormat::Csv,
        )
        .unwrap()
        .map(Result::unwrap)
        .collect::<Vec<_>>()
    };
    let left = read("left.csv", fixtures::tracks_csv(40));
    let right_text: String = fixtures::tracks_csv(40).replace("item-", "right-");
    let right = read("right.csv", right_text);

    let mut first = store
        .begin_item_import(project.id, "left.csv")
        .await
        .unwrap();
    let mut second = store
        .begin_item_import(project.id, "right.csv")
        .await
        .unwrap();
    for n in 0..4 {
        first
            .stage(left[n * 10..(n + 1) * 10].to_vec())
            .await
            .unwrap();
        second
            .stage(right[n * 10..(n + 1) * 10].to_vec())
            .await
            .unwrap();
    }
    let outcome = first.publish(OnConflict::Error, None).await.unwrap();
    assert_eq!(
        outcome,
        ImportOutcome {
            read: 40,
            inserted: 40,
            updated: 0,
            skipped: 0
        }
    );
    assert_eq!(store.item_state_counts(project.id).await.unwrap()[0].1, 40);
    assert!(
        store
            .item_by_external_id(project.id, "right-00001")
            .await
            .is_err()
    );
    second.abort().await;
    assert_eq!(store.item_state_counts(project.id).await.unwrap()[0].1, 40);
}

on_every_backend!(
    sixty_four_concurrent_annotations_are_all_acknowledged_and_stored,
    a_failed_write_does_not_undo_the_writes_committed_with_it,
    imports_staged_at_the_same_time_publish_only_their_own_rows,
);
