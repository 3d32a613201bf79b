//! Exposure budgets as managers see them: each annotator's high-severity labels and time per
//! category today, against the project's limits (`settings.queue.exposure`).

use crate::Store;
use crate::conn::{Columns, stmt};
use crate::error::Result;
use crate::model::Project;
use serde::Serialize;

/// One annotator's exposure to one category's high-severity content on one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExposureStanding {
    pub annotator: String,
    pub category: String,
    pub items: i64,
    pub minutes: f64,
    pub limit_items: Option<i64>,
    pub limit_minutes: Option<f64>,
    /// Share of the limit used (the larger of items and time); `None` without a limit.
    pub used: Option<f64>,
    pub status: ExposureStatus,
}

/// Where an annotator stands against a limit: `near` from 80 % of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExposureStatus {
    NoLimit,
    Within,
    Near,
    Reached,
}

/// From this share of a limit an annotator is shown as near it.
pub const EXPOSURE_NEAR: f64 = 0.8;

impl Store {
    /// Every annotator's exposure on `day` (days since the epoch, UTC; today by the
    /// database clock when `None`), most used first.
    pub async fn exposure_standings(
        &self,
        project: &Project,
        day: Option<i64>,
    ) -> Result<Vec<ExposureStanding>> {
        let day = match day {
            Some(day) => day,
            None => self.database_now().await? / super::DAY_MS,
        };
        let rows = self
            .read_rows(
                stmt(
                    "SELECT u.username, e.category, e.items, e.time_ms FROM exposure_days e \
             JOIN users u ON u.id = e.user_id \
             WHERE e.project_id = $1 AND e.day = $2 ORDER BY u.username, e.category",
                )
                .bind(project.id)
                .bind(day),
            )
            .await?;
        let budget = &project.settings.queue.exposure;
        let mut standings = Vec::with_capacity(rows.len());
        for row in &rows {
            let category: String = row.col("category")?;
            let (items, time_ms): (i64, i64) = (row.col("items")?, row.col("time_ms")?);
            let limit = budget.limit_for(&category);
            let used = limit.used(items, time_ms);
            let status = match used {
                None => ExposureStatus::NoLimit,
                Some(share) if share >= 1.0 => ExposureStatus::Reached,
                Some(share) if share >= EXPOSURE_NEAR => ExposureStatus::Near,
                Some(_) => ExposureStatus::Within,
            };
            standings.push(ExposureStanding {
                annotator: row.col("username")?,
                category,
                items,
                minutes: time_ms as f64 / 60_000.0,
                limit_items: limit.items,
                limit_minutes: limit.minutes,
                used,
                status,
            });
        }
        standings.sort_by(|a, b| {
            b.used
                .unwrap_or(-1.0)
                .total_cmp(&a.used.unwrap_or(-1.0))
                .then_with(|| a.annotator.cmp(&b.annotator))
        });
        Ok(standings)
    }
}
