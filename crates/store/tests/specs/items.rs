use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::ItemId;
use concord_store::ProjectId;
use concord_store::{ImportOutcome, Item, ItemFilter, ItemState, OnConflict, StoreError};
use serde_json::json;

fn outcome(read: i64, inserted: i64, updated: i64, skipped: i64) -> ImportOutcome {
    ImportOutcome {
        read,
        inserted,
        updated,
        skipped,
    }
}

fn external_ids(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.external_id.as_str()).collect()
}

async fn every_item(store: &TestStore, project_id: ProjectId) -> Vec<Item> {
    store
        .items_page(
            project_id,
            &ItemFilter {
                limit: 500,
                ..ItemFilter::default()
            },
        )
        .await
        .unwrap()
        .items
}

async fn items_from_a_csv_file_are_published_with_their_fields(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    let csv = "\
id,item_type,title,creators,description,priority,preview_url,mood
trk-1,track,Night Drive,Ana Lopez (artist); Bo (producer),Synthwave,3,https://cdn.example/1.mp3,calm
ep-1,Episode,Morning Show,,,,,
";
    let done = fixtures::import_items(&store, project.id, "catalog.csv", csv, OnConflict::Error)
        .await
        .unwrap();
    assert_eq!(done, outcome(2, 2, 0, 0));

    let track = store
        .item_by_external_id(project.id, "trk-1")
        .await
        .unwrap();
    assert_eq!(track.item_type, "track");
    assert_eq!(track.title, "Night Drive");
    assert_eq!(
        track.creators,
        json!([{"name": "Ana Lopez", "role": "artist"}, {"name": "Bo", "role": "producer"}])
    );
    assert_eq!(track.text, json!({"description": "Synthwave"}));
    assert_eq!(track.priority, 3);
    assert_eq!(
        track.media_url.as_deref(),
        Some("https://cdn.example/1.mp3")
    );
    assert_eq!(track.metadata["extra"], json!({"mood": "calm"}));
    assert_eq!(track.state, concord_store::ItemState::Queued);
    assert!(!track.is_gold);
    assert_eq!(track.gold_answer, None);
    assert_eq!(
        store.item(project.id, track.id).await.unwrap().title,
        "Night Drive"
    );

    let episode = store.item_by_external_id(project.id, "ep-1").await.unwrap();
    assert_eq!(episode.item_type, "episode");
    assert_eq!(episode.priority, 0);
    assert_eq!(episode.media_url, None);
    assert!(episode.id > track.id, "items are stored in file order");
    assert!(
        store
            .audit_log(Some(project.id), 5)
            .await
            .unwrap()
            .iter()
            .any(|e| e.action.as_str() == "import" && e.entity == "items")
    );
}

async fn items_from_a_jsonl_file_keep_their_gold_answers(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    let jsonl = r#"{"id": "gold-1", "item_type": "track", "title": "Hateful", "gold": {"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S3"}}
{"id": "plain-1", "item_type": "chapter", "title": "Chapter One", "text": {"description": "Opening"}}
"#;
    let done = fixtures::import_items(&store, project.id, "gold.jsonl", jsonl, OnConflict::Error)
        .await
        .unwrap();
    assert_eq!(done, outcome(2, 2, 0, 0));
    let gold = store
        .item_by_external_id(project.id, "gold-1")
        .await
        .unwrap();
    assert!(gold.is_gold);
    assert_eq!(
        gold.gold_answer,
        Some(json!({"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S3"}))
    );
    let plain = store
        .item_by_external_id(project.id, "plain-1")
        .await
        .unwrap();
    assert!(!plain.is_gold);
    assert_eq!(plain.text, json!({"description": "Opening"}));
}

async fn a_gold_answer_that_breaks_the_schema_rejects_the_file_naming_line_and_field(
    store: TestStore,
) {
    let project = fixtures::project(&store, "music").await;
    let jsonl = r#"{"id": "gold-1", "item_type": "track", "title": "Fine", "gold": {"decision": "VIOLATING", "severity": "S3"}}
{"id": "gold-2", "item_type": "track", "title": "Broken", "gold": {"decision": "MAYBE", "severity": "S3"}}
"#;
    let err = fixtures::import_items(&store, project.id, "gold.jsonl", jsonl, OnConflict::Error)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.starts_with("gold.jsonl:2: field gold:") && m.contains("MAYBE")),
        "{err}"
    );
    assert!(every_item(&store, project.id).await.is_empty());
}

async fn gold_answers_are_checked_against_the_projects_current_schema(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    let mut schema = concord_store::LabelSchema::catalog_safety();
    schema.questions.retain(|q| q.key != "severity");
    store
        .save_schema_draft(project.id, &schema, "", None)
        .await
        .unwrap();
    store
        .publish_schema(project.id, Some("No more severity"), None)
        .await
        .unwrap();
    let jsonl = r#"{"id": "gold-1", "item_type": "track", "title": "Old shape", "gold": {"decision": "VIOLATING", "severity": "S3"}}
"#;
    let err = fixtures::import_items(&store, project.id, "gold.jsonl", jsonl, OnConflict::Error)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.starts_with("gold.jsonl:1: field gold:") && m.contains("severity")),
        "{err}"
    );
}

/// What PostgreSQL's `COPY` text format treats specially — tab, newline, carriage return,
/// backslash, the `\N` that spells NULL, the `\.` that ends the data — and quotes and
/// non-ASCII text, in every text and JSON field, come back exactly as imported.
async fn every_text_and_json_field_round_trips_exactly_through_an_import(store: TestStore) {
    use concord_formats::items::{CatalogItem, ItemType};
    let project = fixtures::project(&store, "music").await;
    let awkward = "tab\there, new\nline, cr\r\nlf, lone\rcr, back\\slash, \\N, \\., \\\\N, \\t, \
                   \"double\" 'single' `tick`, ünïcödé, 日本語, 😀, \u{200f}rtl, \u{7f}del, ends\\";
    let mut schema = concord_store::LabelSchema::catalog_safety();
    let decision = schema
        .questions
        .iter_mut()
        .find(|q| q.key == "decision")
        .expect("the catalog schema asks for a decision");
    decision.options.push(concord_store::SchemaOption {
        value: awkward.into(),
        label: "Awkward".into(),
        family: None,
        description: String::new(),
    });
    store
        .save_schema_draft(project.id, &schema, "", None)
        .await
        .unwrap();
    store
        .publish_schema(project.id, Some("An awkward code"), None)
        .await
        .unwrap();
    let item = |id: String, title: &str, media_url: Option<String>, gold| CatalogItem {
        external_id: id,
        item_type: ItemType::Track,
        title: title.into(),
        creators: json!([{"name": title, "role": "artist"}]),
        metadata: json!({"note": title, "nul": "a\u{0}b", "nested": {"list": [title, 1, null, true]}}),
        text: json!({"description": title, "lyrics_excerpt": "\\N"}),
        media_url,
        priority: 2,
        gold_answer: gold,
    };
    let items = vec![
        item(
            format!("id {awkward}"),
            awkward,
            Some(format!("https://example.com/{awkward}")),
            Some(json!({"decision": awkward, "category": ["DG.HATE"], "severity": "S3"})),
        ),
        // Values that are nothing but COPY's markers, and empty ones.
        item("\\N".into(), "\\N", Some("\\N".into()), None),
        item("\\.".into(), "\\.", Some(String::new()), None),
        item("\t".into(), "", None, None),
    ];
    let mut import = store
        .begin_item_import(project.id, "awkward.jsonl")
        .await
        .unwrap();
    let lines = (1..).zip(items.iter().cloned()).collect();
    import.stage(lines).await.unwrap();
    let done = import.publish(OnConflict::Error, None).await.unwrap();
    assert_eq!(done, outcome(4, 4, 0, 0));
    for expected in &items {
        let stored = store
            .item_by_external_id(project.id, &expected.external_id)
            .await
            .unwrap();
        assert_eq!(stored.external_id, expected.external_id);
        assert_eq!(stored.item_type, "track");
        assert_eq!(stored.title, expected.title);
        assert_eq!(stored.creators, expected.creators);
        assert_eq!(stored.metadata, expected.metadata);
        assert_eq!(stored.text, expected.text);
        assert_eq!(stored.media_url, expected.media_url);
        assert_eq!(stored.priority, 2);
        assert_eq!(stored.is_gold, expected.gold_answer.is_some());
        assert_eq!(stored.gold_answer, expected.gold_answer);
    }
    let ids = external_ids(&every_item(&store, project.id).await)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let in_file_order: Vec<String> = items.iter().map(|i| i.external_id.clone()).collect();
    assert_eq!(ids, in_file_order, "items are stored in file order");
}

/// PostgreSQL stores no NUL character in text: a title holding one rejects the file naming
/// its line and field (SQLite stores it).
async fn a_nul_character_is_refused_on_postgresql_naming_line_and_field(store: TestStore) {
    if store.backend() != concord_store::Backend::Postgres {
        return;
    }
    let project = fixtures::project(&store, "music").await;
    let jsonl = "{\"id\": \"a\", \"item_type\": \"track\", \"title\": \"fine\"}\n\
                 {\"id\": \"b\", \"item_type\": \"track\", \"title\": \"nul \\u0000 here\"}\n";
    let err = fixtures::import_items(&store, project.id, "nul.jsonl", jsonl, OnConflict::Error)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.starts_with("nul.jsonl:2: field title:")),
        "{err}"
    );
    assert!(every_item(&store, project.id).await.is_empty());
}

async fn an_id_repeated_in_the_file_rejects_the_whole_file_naming_the_line(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    let csv = "id,item_type,title\na,track,A\nb,track,B\nc,track,C\na,track,A again\n";
    let err = fixtures::import_items(&store, project.id, "dup.csv", csv, OnConflict::Error)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m)
            if m.starts_with("dup.csv:5: field id:") && m.contains("first on line 2")),
        "{err}"
    );
    assert!(every_item(&store, project.id).await.is_empty());
    assert!(
        store
            .item_state_counts(project.id)
            .await
            .unwrap()
            .iter()
            .all(|(_, n)| *n == 0)
    );
}

async fn an_id_repeated_in_a_later_batch_is_named_by_its_line_too(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    let csv = "id,item_type,title\na,track,A\nb,track,B\nc,track,C\nb,track,B again\n";
    let err =
        fixtures::import_items_in_batches(&store, project.id, "dup.csv", csv, 2, OnConflict::Error)
            .await
            .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m)
            if m.starts_with("dup.csv:5: field id:") && m.contains("first on line 3")),
        "{err}"
    );
    assert!(every_item(&store, project.id).await.is_empty());
}

async fn an_id_repeated_hundreds_of_lines_later_in_one_batch_is_named_by_its_line(
    store: TestStore,
) {
    let project = fixtures::project(&store, "music").await;
    let csv = fixtures::tracks_csv(449) + "item-00010,track,Ten again\n";
    let err = fixtures::import_items(&store, project.id, "big.csv", &csv, OnConflict::Error)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m)
            if m.starts_with("big.csv:451: field id:") && m.contains("first on line 11")),
        "{err}"
    );
    assert!(every_item(&store, project.id).await.is_empty());
}

async fn an_aborted_import_publishes_nothing(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    let csv = fixtures::tracks_csv(30);
    let reader = concord_formats::items::ItemReader::new(
        "catalog.csv",
        csv.as_bytes(),
        concord_formats::items::RecordFormat::Csv,
    )
    .unwrap();
    let records: Vec<_> = reader.map(Result::unwrap).collect();
    let mut import = store
        .begin_item_import(project.id, "catalog.csv")
        .await
        .unwrap();
    import.stage(records[..20].to_vec()).await.unwrap();
    import.stage(records[20..].to_vec()).await.unwrap();
    assert_eq!(import.records_read(), 30);
    import.abort().await;
    assert!(every_item(&store, project.id).await.is_empty());

    let again = fixtures::import_items(
        &store,
        project.id,
        "catalog.csv",
        &fixtures::tracks_csv(30),
        OnConflict::Error,
    )
    .await
    .unwrap();
    assert_eq!(again, outcome(30, 30, 0, 0));
}

async fn an_existing_id_with_on_conflict_error_rejects_the_file_naming_file_and_line(
    store: TestStore,
) {
    let project = fixtures::project(&store, "music").await;
    fixtures::import_items(
        &store,
        project.id,
        "first.csv",
        &fixtures::tracks_csv(3),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let second = "id,item_type,title\nitem-00004,track,Four\nitem-00002,track,Two again\nitem-00005,track,Five\n";
    let err = fixtures::import_items(&store, project.id, "second.csv", second, OnConflict::Error)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.starts_with("second.csv:3:") && m.contains("item-00002")),
        "{err}"
    );
    assert_eq!(
        external_ids(&every_item(&store, project.id).await),
        ["item-00001", "item-00002", "item-00003"]
    );
    assert_eq!(
        store
            .item_by_external_id(project.id, "item-00002")
            .await
            .unwrap()
            .title,
        "Title 2"
    );
}

async fn on_conflict_skip_keeps_stored_items_and_counts_the_skipped_lines(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    fixtures::import_items(
        &store,
        project.id,
        "first.csv",
        &fixtures::tracks_csv(3),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let second = "id,item_type,title\nitem-00004,track,Four\nitem-00002,track,Two again\nitem-00003,episode,Three again\nitem-00005,track,Five\n";
    let done = fixtures::import_items(&store, project.id, "second.csv", second, OnConflict::Skip)
        .await
        .unwrap();
    assert_eq!(done, outcome(4, 2, 0, 2));
    let two = store
        .item_by_external_id(project.id, "item-00002")
        .await
        .unwrap();
    assert_eq!(two.title, "Title 2");
    let three = store
        .item_by_external_id(project.id, "item-00003")
        .await
        .unwrap();
    assert_eq!(three.item_type, "track");
    assert_eq!(every_item(&store, project.id).await.len(), 5);
}

async fn on_conflict_update_replaces_catalog_fields_but_keeps_state_and_annotations(
    store: TestStore,
) {
    let project = fixtures::project(&store, "music").await;
    let ana = fixtures::user(&store, "ana").await;
    fixtures::import_items(
        &store,
        project.id,
        "first.csv",
        &fixtures::tracks_csv(3),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let before = store
        .item_by_external_id(project.id, "item-00002")
        .await
        .unwrap();
    fixtures::execute(
        &store,
        format!(
            "UPDATE items SET state = 'escalated' WHERE id = {}",
            before.id
        ),
    )
    .await;
    store
        .add_annotation(
            project.id,
            ana.id,
            fixtures::annotation(before.id, fixtures::answer("VIOLATING", "S3")),
        )
        .await
        .unwrap();

    let second = "id,item_type,title,priority\nitem-00004,track,Four,0\nitem-00002,episode,Two renamed,7\nitem-00005,track,Five,0\n";
    let done = fixtures::import_items(&store, project.id, "second.csv", second, OnConflict::Update)
        .await
        .unwrap();
    assert_eq!(done, outcome(3, 2, 1, 0));

    let after = store
        .item_by_external_id(project.id, "item-00002")
        .await
        .unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!(after.title, "Two renamed");
    assert_eq!(after.item_type, "episode");
    assert_eq!(after.priority, 7);
    assert_eq!(after.state, concord_store::ItemState::Escalated);
    assert!(after.updated_at >= before.updated_at);
    assert_eq!(store.item_annotations(before.id).await.unwrap().len(), 1);
    assert_eq!(
        store
            .item_by_external_id(project.id, "item-00001")
            .await
            .unwrap()
            .title,
        "Title 1"
    );
    assert_eq!(every_item(&store, project.id).await.len(), 5);
}

async fn keyset_pages_walk_every_item_once_in_id_order(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    let done = fixtures::import_items(
        &store,
        project.id,
        "big.csv",
        &fixtures::tracks_csv(1_050),
        OnConflict::Error,
    )
    .await
    .unwrap();
    assert_eq!(done, outcome(1_050, 1_050, 0, 0));

    let mut seen: Vec<Item> = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .items_page(
                project.id,
                &ItemFilter {
                    after,
                    limit: 100,
                    ..ItemFilter::default()
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 100);
        seen.extend(page.items.iter().cloned());
        match page.next_after {
            Some(next) => {
                assert_eq!(page.items.len(), 100, "page {pages}");
                assert_eq!(Some(next), page.items.last().map(|i| i.id));
                after = Some(next.get());
            }
            None => break,
        }
        assert!(pages <= 11, "paging does not end");
    }
    assert_eq!(pages, 11);
    assert_eq!(seen.len(), 1_050);
    assert!(
        seen.windows(2).all(|w| w[0].id < w[1].id),
        "strictly increasing ids"
    );
    let expected: Vec<String> = (1..=1_050).map(|n| format!("item-{n:05}")).collect();
    assert_eq!(external_ids(&seen), expected);
}

async fn a_page_holds_at_most_five_hundred_items(store: TestStore) {
    let project = fixtures::project(&store, "music").await;
    fixtures::import_items(
        &store,
        project.id,
        "big.csv",
        &fixtures::tracks_csv(600),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let page = store
        .items_page(
            project.id,
            &ItemFilter {
                limit: 10_000,
                ..ItemFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 500);
    assert_eq!(page.next_after, Some(page.items[499].id));
    let exact = store
        .items_page(
            project.id,
            &ItemFilter {
                after: page.next_after.map(i64::from),
                limit: 100,
                ..ItemFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(exact.items.len(), 100);
    assert_eq!(exact.next_after, None, "no next page after the last item");
}

const MIXED: &str = r#"{"id": "trk-1", "item_type": "track", "title": "Hello World"}
{"id": "trk-2", "item_type": "track", "title": "100% Pure Noise", "priority": 5}
{"id": "trk-3", "item_type": "track", "title": "100 Pure Noise"}
{"id": "ep-0001", "item_type": "episode", "title": "Snake_case talk", "gold": {"decision": "NOT_VIOLATING", "severity": "S0"}}
{"id": "ep-0002", "item_type": "episode", "title": "Snakexcase talk"}
{"id": "book-1", "item_type": "audiobook", "title": "HELLO again", "priority": 9, "gold": {"decision": "VIOLATING", "severity": "S4"}}
{"id": "trk-4", "item_type": "track", "title": "AC\\DC live"}
{"id": "trk-5", "item_type": "track", "title": "ACDC tribute"}
"#;

async fn mixed_project(store: &TestStore) -> i64 {
    let project = fixtures::project(store, "mixed").await;
    fixtures::import_items(store, project.id, "mixed.jsonl", MIXED, OnConflict::Error)
        .await
        .unwrap();
    for id in ["trk-3", "ep-0002"] {
        let item = store.item_by_external_id(project.id, id).await.unwrap();
        fixtures::execute(
            store,
            format!("UPDATE items SET state = 'labelled' WHERE id = {}", item.id),
        )
        .await;
    }
    project.id.get()
}

async fn filtered(store: &TestStore, project_id: ProjectId, filter: ItemFilter) -> Vec<String> {
    let page = store
        .items_page(
            project_id,
            &ItemFilter {
                limit: 100,
                ..filter
            },
        )
        .await
        .unwrap();
    page.items.into_iter().map(|i| i.external_id).collect()
}

async fn items_filter_by_type_state_gold_and_priority(store: TestStore) {
    let project = mixed_project(&store).await;
    let by_type = ItemFilter {
        item_type: Some("episode".into()),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), by_type).await,
        ["ep-0001", "ep-0002"]
    );
    let by_state = ItemFilter {
        state: Some(ItemState::Labelled),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), by_state).await,
        ["trk-3", "ep-0002"]
    );
    let gold = ItemFilter {
        gold: Some(true),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), gold).await,
        ["ep-0001", "book-1"]
    );
    let not_gold = ItemFilter {
        gold: Some(false),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), not_gold).await,
        ["trk-1", "trk-2", "trk-3", "ep-0002", "trk-4", "trk-5"]
    );
    let urgent = ItemFilter {
        min_priority: Some(5),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), urgent).await,
        ["trk-2", "book-1"]
    );
    let labelled_tracks = ItemFilter {
        item_type: Some("track".into()),
        state: Some(ItemState::Labelled),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), labelled_tracks).await,
        ["trk-3"]
    );
}

async fn the_text_filter_is_a_case_insensitive_substring_of_title_or_id(store: TestStore) {
    let project = mixed_project(&store).await;
    let text = |t: &str| ItemFilter {
        text: Some(t.into()),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), text("hello")).await,
        ["trk-1", "book-1"]
    );
    assert_eq!(
        filtered(&store, ProjectId(project), text("  wORLD ")).await,
        ["trk-1"]
    );
    assert_eq!(
        filtered(&store, ProjectId(project), text("EP-0002")).await,
        ["ep-0002"]
    );
    assert_eq!(
        filtered(&store, ProjectId(project), text("nothing like it")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        filtered(&store, ProjectId(project), text("   "))
            .await
            .len(),
        8
    );
    let pure_tracks = ItemFilter {
        item_type: Some("track".into()),
        text: Some("pure".into()),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), pure_tracks).await,
        ["trk-2", "trk-3"]
    );
}

async fn wildcards_in_the_search_text_are_literal(store: TestStore) {
    let project = mixed_project(&store).await;
    let text = |t: &str| ItemFilter {
        text: Some(t.into()),
        ..ItemFilter::default()
    };
    assert_eq!(
        filtered(&store, ProjectId(project), text("100%")).await,
        ["trk-2"]
    );
    assert_eq!(
        filtered(&store, ProjectId(project), text("%")).await,
        ["trk-2"]
    );
    assert_eq!(
        filtered(&store, ProjectId(project), text("snake_case")).await,
        ["ep-0001"]
    );
    assert_eq!(
        filtered(&store, ProjectId(project), text("c\\d")).await,
        ["trk-4"]
    );
}

async fn state_counts_name_all_five_states_zeros_included(store: TestStore) {
    let project = mixed_project(&store).await;
    let other = fixtures::project(&store, "other").await;
    fixtures::import_items(
        &store,
        other.id,
        "other.csv",
        &fixtures::tracks_csv(4),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let counts = store.item_state_counts(ProjectId(project)).await.unwrap();
    let expected = vec![
        (ItemState::Queued, 6),
        (ItemState::InProgress, 0),
        (ItemState::Labelled, 2),
        (ItemState::Escalated, 0),
        (ItemState::Adjudicated, 0),
    ];
    assert_eq!(counts, expected);
    let empty = fixtures::project(&store, "empty").await;
    let counts = store.item_state_counts(empty.id).await.unwrap();
    assert_eq!(counts.len(), 5);
    assert!(counts.iter().all(|(_, n)| *n == 0));
}

async fn items_belong_to_one_project(store: TestStore) {
    let music = fixtures::project(&store, "music").await;
    let books = fixtures::project(&store, "books").await;
    fixtures::import_items(
        &store,
        music.id,
        "music.csv",
        &fixtures::tracks_csv(2),
        OnConflict::Error,
    )
    .await
    .unwrap();
    fixtures::import_items(
        &store,
        books.id,
        "books.csv",
        &fixtures::tracks_csv(3),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let in_music = store
        .item_by_external_id(music.id, "item-00001")
        .await
        .unwrap();
    let in_books = store
        .item_by_external_id(books.id, "item-00001")
        .await
        .unwrap();
    assert_ne!(in_music.id, in_books.id);
    let err = store.item(books.id, in_music.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(every_item(&store, music.id).await.len(), 2);
    assert_eq!(every_item(&store, books.id).await.len(), 3);
}

/// The item browser's bulk actions: each changes every selected item in one transaction with
/// one audit entry per item, and a selection it cannot take whole changes nothing.
async fn bulk_actions_change_every_selected_item_with_one_audit_entry_each(store: TestStore) {
    use concord_store::{BulkAction, NewAdjudication};
    let project = fixtures::project(&store, "bulk").await;
    fixtures::import_items(
        &store,
        project.id,
        "items.csv",
        &fixtures::tracks_csv(3),
        OnConflict::Error,
    )
    .await
    .unwrap();
    let ids: Vec<ItemId> = every_item(&store, project.id)
        .await
        .iter()
        .map(|i| i.id)
        .collect();
    let manager = fixtures::user(&store, "bulk-manager").await;
    let ana = fixtures::user(&store, "bulk-ana").await;
    let audited = |entity: &'static str| {
        let store = store.clone();
        async move {
            store
                .audit_log(Some(project.id), 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| {
                    e.entity == entity && e.after.as_ref().is_some_and(|a| a["bulk"] == true)
                })
                .count()
        }
    };

    let done = store
        .bulk_items(
            project.id,
            vec![ids[1], ids[0], ids[0]],
            BulkAction::SetPriority(7),
            manager.id,
        )
        .await
        .unwrap();
    assert_eq!(
        done.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        [ids[0], ids[1]]
    );
    let priorities: Vec<i64> = every_item(&store, project.id)
        .await
        .iter()
        .map(|i| i.priority)
        .collect();
    assert_eq!(priorities[..2], [7, 7]);
    assert_ne!(priorities[2], 7);
    assert_eq!(audited("item").await, 2, "one audit entry per item");

    store
        .bulk_items(
            project.id,
            vec![ItemId((ids[0]).get()), ItemId((ids[2]).get())],
            BulkAction::Rereview {
                annotator_id: ana.id,
            },
            manager.id,
        )
        .await
        .unwrap();
    assert_eq!(audited("assignment").await, 2);

    // Gold needs a settled answer: item 1 has one (adjudicated), item 2 has none.
    let expert = fixtures::user(&store, "bulk-expert").await;
    store
        .adjudicate(
            project.id,
            ItemId((ids[1]).get()),
            expert.id,
            NewAdjudication {
                answer: fixtures::answer("VIOLATING", "S3"),
                rationale: "Slur in the chorus".into(),
                ..NewAdjudication::default()
            },
        )
        .await
        .unwrap();
    let err = store
        .bulk_items(
            project.id,
            vec![ItemId((ids[1]).get()), ItemId((ids[2]).get())],
            BulkAction::MarkGold,
            manager.id,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)) && err.to_string().contains("item-00003"),
        "names the item without an answer: {err}"
    );
    assert!(
        !store
            .item(project.id, ItemId((ids[1]).get()))
            .await
            .unwrap()
            .is_gold,
        "nothing changed"
    );
    store
        .bulk_items(
            project.id,
            vec![ItemId((ids[1]).get())],
            BulkAction::MarkGold,
            manager.id,
        )
        .await
        .unwrap();
    let gold = store
        .item(project.id, ItemId((ids[1]).get()))
        .await
        .unwrap();
    assert!(gold.is_gold);
    assert_eq!(gold.gold_answer, Some(fixtures::answer("VIOLATING", "S3")));

    let err = store
        .bulk_items(
            project.id,
            vec![ids[2], ItemId(987_654)],
            BulkAction::SetPriority(1),
            manager.id,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(_)) && err.to_string().contains("987654"),
        "{err}"
    );
    assert_ne!(
        store
            .item(project.id, ItemId((ids[2]).get()))
            .await
            .unwrap()
            .priority,
        1,
        "nothing changed"
    );
    let err = store
        .bulk_items(project.id, vec![], BulkAction::MarkGold, manager.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

on_every_backend!(
    bulk_actions_change_every_selected_item_with_one_audit_entry_each,
    items_from_a_csv_file_are_published_with_their_fields,
    items_from_a_jsonl_file_keep_their_gold_answers,
    a_gold_answer_that_breaks_the_schema_rejects_the_file_naming_line_and_field,
    gold_answers_are_checked_against_the_projects_current_schema,
    every_text_and_json_field_round_trips_exactly_through_an_import,
    a_nul_character_is_refused_on_postgresql_naming_line_and_field,
    an_id_repeated_in_the_file_rejects_the_whole_file_naming_the_line,
    an_id_repeated_in_a_later_batch_is_named_by_its_line_too,
    an_id_repeated_hundreds_of_lines_later_in_one_batch_is_named_by_its_line,
    an_aborted_import_publishes_nothing,
    an_existing_id_with_on_conflict_error_rejects_the_file_naming_file_and_line,
    on_conflict_skip_keeps_stored_items_and_counts_the_skipped_lines,
    on_conflict_update_replaces_catalog_fields_but_keeps_state_and_annotations,
    keyset_pages_walk_every_item_once_in_id_order,
    a_page_holds_at_most_five_hundred_items,
    items_filter_by_type_state_gold_and_priority,
    the_text_filter_is_a_case_insensitive_substring_of_title_or_id,
    wildcards_in_the_search_text_are_literal,
    state_counts_name_all_five_states_zeros_included,
    items_belong_to_one_project,
);
