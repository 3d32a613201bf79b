use crate::harness::{TestStore, fixtures};
use crate::on_every_backend;
use concord_store::{ExampleScope, GuidelineExample, QuestionKind, StoreError, VersionStatus};

fn example(category: &str, scope: ExampleScope, text: &str) -> GuidelineExample {
    GuidelineExample {
        category: category.into(),
        scope,
        text: text.into(),
    }
}

async fn a_project_starts_without_guidelines(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    assert_eq!(project.current_guideline_version_id, None);
    assert!(
        store
            .guideline_versions(project.id)
            .await
            .unwrap()
            .is_empty()
    );
    let err = store.guideline_version(project.id, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

async fn saving_a_guideline_draft_twice_replaces_the_one_draft(store: TestStore) {
    let pm = fixtures::user(&store, "pm").await;
    let project = fixtures::project(&store, "podcasts").await;
    let first = store
        .save_guideline_draft(project.id, "# Rules\nFirst take", &[], "", Some(pm.id))
        .await
        .unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(first.status, VersionStatus::Draft);
    assert_eq!(first.published_at, None);
    assert_eq!(first.created_by.as_deref(), Some("pm"));

    let second = store
        .save_guideline_draft(project.id, "# Rules\nSecond take", &[], "", None)
        .await
        .unwrap();
    assert_eq!(second.id, first.id);
    assert_eq!(second.version, 1);
    assert_eq!(second.body, "# Rules\nSecond take");
    let versions = store.guideline_versions(project.id).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].body, "# Rules\nSecond take");
    assert_eq!(
        store
            .project("podcasts")
            .await
            .unwrap()
            .current_guideline_version_id,
        None
    );
}

async fn publishing_a_guideline_makes_it_the_projects_current_version(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let draft = store
        .save_guideline_draft(project.id, "Be kind", &[], "", None)
        .await
        .unwrap();
    let published = store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    assert_eq!(published.id, draft.id);
    assert_eq!(published.status, VersionStatus::Published);
    assert!(published.published_at.is_some());
    assert_eq!(published.change_note, "First version");
    assert_eq!(
        store
            .project("podcasts")
            .await
            .unwrap()
            .current_guideline_version_id,
        Some(draft.id)
    );
    assert!(
        store
            .audit_log(Some(project.id), 5)
            .await
            .unwrap()
            .iter()
            .any(|e| e.action.as_str() == "publish" && e.entity == "guideline_version")
    );
}

async fn publishing_without_a_draft_is_a_conflict(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let err = store
        .publish_guideline(project.id, Some("note"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    store
        .save_guideline_draft(project.id, "v1", &[], "", None)
        .await
        .unwrap();
    store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    let err = store
        .publish_guideline(project.id, Some("again"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

async fn a_published_guideline_is_never_changed_by_a_later_save(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let examples = [example(
        "DG.HATE",
        ExampleScope::InScope,
        "a slur in a chorus",
    )];
    store
        .save_guideline_draft(project.id, "Version one", &examples, "", None)
        .await
        .unwrap();
    let v1 = store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    let draft = store
        .save_guideline_draft(project.id, "Version two", &[], "tightened hate", None)
        .await
        .unwrap();
    assert_ne!(draft.id, v1.id);
    assert_eq!(draft.version, 2);
    assert_eq!(draft.status, VersionStatus::Draft);

    let again = store.guideline_version(project.id, 1).await.unwrap();
    assert_eq!(again.id, v1.id);
    assert_eq!(again.body, "Version one");
    assert_eq!(again.examples, examples);
    assert_eq!(again.status, VersionStatus::Published);
    assert_eq!(again.published_at, v1.published_at);
    assert_eq!(again.change_note, v1.change_note);
    assert_eq!(
        store
            .project("podcasts")
            .await
            .unwrap()
            .current_guideline_version_id,
        Some(v1.id)
    );
    let versions: Vec<_> = store
        .guideline_versions(project.id)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version, v.status))
        .collect();
    assert_eq!(
        versions,
        [(2, VersionStatus::Draft), (1, VersionStatus::Published)]
    );
}

async fn a_second_guideline_version_needs_a_change_note(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    store
        .save_guideline_draft(project.id, "v1", &[], "", None)
        .await
        .unwrap();
    let v1 = store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    let draft = store
        .save_guideline_draft(project.id, "v2", &[], "  ", None)
        .await
        .unwrap();

    let err = store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("version 2")),
        "{err}"
    );
    let err = store
        .publish_guideline(project.id, Some("   "), None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(
        store.guideline_by_id(draft.id).await.unwrap().status,
        VersionStatus::Draft
    );
    assert_eq!(
        store
            .project("podcasts")
            .await
            .unwrap()
            .current_guideline_version_id,
        Some(v1.id)
    );

    let v2 = store
        .publish_guideline(project.id, Some(" Clarified satire "), None)
        .await
        .unwrap();
    assert_eq!(v2.id, draft.id);
    assert_eq!(v2.version, 2);
    assert_eq!(v2.change_note, "Clarified satire");
    assert_eq!(
        store
            .project("podcasts")
            .await
            .unwrap()
            .current_guideline_version_id,
        Some(v2.id)
    );
}

async fn a_change_note_saved_with_the_draft_is_used_when_publishing(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    store
        .save_guideline_draft(project.id, "v1", &[], "", None)
        .await
        .unwrap();
    store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    store
        .save_guideline_draft(project.id, "v2", &[], "Added spam examples", None)
        .await
        .unwrap();
    let v2 = store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    assert_eq!(v2.change_note, "Added spam examples");
    assert_eq!(v2.status, VersionStatus::Published);
}

async fn guideline_examples_round_trip(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let examples = vec![
        example("DG.HATE", ExampleScope::InScope, "Slurs aimed at a group"),
        example(
            "DG.HATE",
            ExampleScope::OutOfScope,
            "A documentary quoting a slur",
        ),
        example(
            "DC.SCAM",
            ExampleScope::InScope,
            "\"Send 1 BTC\", ünïcödé ✓",
        ),
    ];
    let draft = store
        .save_guideline_draft(project.id, "body", &examples, "", None)
        .await
        .unwrap();
    assert_eq!(draft.examples, examples);
    let published = store
        .publish_guideline(project.id, None, None)
        .await
        .unwrap();
    assert_eq!(published.examples, examples);
    assert_eq!(
        store.guideline_by_id(draft.id).await.unwrap().examples,
        examples
    );
}

async fn an_example_needs_a_category_and_a_text(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let examples = [
        example("DG.HATE", ExampleScope::InScope, "fine"),
        example("DC.SCAM", ExampleScope::InScope, "  "),
    ];
    let err = store
        .save_guideline_draft(project.id, "body", &examples, "", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("example 2")),
        "{err}"
    );
    assert!(
        store
            .guideline_versions(project.id)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_schema_draft_is_version_two_and_leaves_the_current_schema_alone(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let v1 = store.current_schema(project.id).await.unwrap();
    assert_eq!(v1.status, VersionStatus::Published);
    assert_eq!(Some(v1.id), project.current_schema_version_id);

    let draft = store
        .save_schema_draft(project.id, &fixtures::schema_with_s5(), "", None)
        .await
        .unwrap();
    assert_eq!(draft.version, 2);
    assert_eq!(draft.status, VersionStatus::Draft);
    assert_eq!(draft.definition, fixtures::schema_with_s5());
    let mut renamed = fixtures::schema_with_s5();
    renamed.questions[0].prompt = "Is it against the policy?".into();
    let again = store
        .save_schema_draft(project.id, &renamed, "", None)
        .await
        .unwrap();
    assert_eq!(again.id, draft.id);
    assert_eq!(again.version, 2);
    assert_eq!(again.definition, renamed);

    let current = store.current_schema(project.id).await.unwrap();
    assert_eq!(current.id, v1.id);
    assert_eq!(
        current.definition,
        concord_store::LabelSchema::catalog_safety()
    );
    assert_eq!(store.schema_versions(project.id).await.unwrap().len(), 2);
}

async fn a_second_schema_version_needs_a_change_note_and_then_becomes_current(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let v1 = store.current_schema(project.id).await.unwrap();
    store
        .save_schema_draft(project.id, &fixtures::schema_with_s5(), "", None)
        .await
        .unwrap();
    let err = store
        .publish_schema(project.id, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(store.current_schema(project.id).await.unwrap().id, v1.id);

    let v2 = store
        .publish_schema(project.id, Some("Added S5"), None)
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.status, VersionStatus::Published);
    let current = store.current_schema(project.id).await.unwrap();
    assert_eq!(current.id, v2.id);
    assert_eq!(current.definition, fixtures::schema_with_s5());
    assert_eq!(
        store
            .project("podcasts")
            .await
            .unwrap()
            .current_schema_version_id,
        Some(v2.id)
    );

    store
        .save_schema_draft(
            project.id,
            &concord_store::LabelSchema::catalog_safety(),
            "Back",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        store.schema_by_id(v1.id).await.unwrap().definition,
        concord_store::LabelSchema::catalog_safety()
    );
    assert_eq!(
        store.schema_by_id(v2.id).await.unwrap().definition,
        fixtures::schema_with_s5()
    );
    assert_eq!(
        store.schema_by_id(v2.id).await.unwrap().status,
        VersionStatus::Published
    );
}

async fn an_invalid_schema_draft_is_rejected_naming_the_question(store: TestStore) {
    let project = fixtures::project(&store, "podcasts").await;
    let mut repeated = concord_store::LabelSchema::catalog_safety();
    repeated.questions[2].key = "decision".into();
    let err = store
        .save_schema_draft(project.id, &repeated, "", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("question 3 (\"decision\")")),
        "{err}"
    );

    let mut lonely = concord_store::LabelSchema::catalog_safety();
    lonely.questions[0].kind = QuestionKind::Single;
    lonely.questions[0].options.truncate(1);
    let err = store
        .save_schema_draft(project.id, &lonely, "", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("question 1 (\"decision\")")),
        "{err}"
    );

    let mut badly_keyed = concord_store::LabelSchema::catalog_safety();
    badly_keyed.questions[1].key = "Policy Category".into();
    let err = store
        .save_schema_draft(project.id, &badly_keyed, "", None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("\"Policy Category\"")),
        "{err}"
    );
    assert_eq!(store.schema_versions(project.id).await.unwrap().len(), 1);
}

on_every_backend!(
    a_project_starts_without_guidelines,
    saving_a_guideline_draft_twice_replaces_the_one_draft,
    publishing_a_guideline_makes_it_the_projects_current_version,
    publishing_without_a_draft_is_a_conflict,
    a_published_guideline_is_never_changed_by_a_later_save,
    a_second_guideline_version_needs_a_change_note,
    a_change_note_saved_with_the_draft_is_used_when_publishing,
    guideline_examples_round_trip,
    an_example_needs_a_category_and_a_text,
    a_schema_draft_is_version_two_and_leaves_the_current_schema_alone,
    a_second_schema_version_needs_a_change_note_and_then_becomes_current,
    an_invalid_schema_draft_is_rejected_naming_the_question,
);
