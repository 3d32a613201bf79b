-- Exposure budgets: each annotator's high-severity labels and time per category and UTC day
-- (the queue stops serving items flagged in a category whose limit is reached).
-- PostgreSQL dialect. Never edit once applied.

CREATE TABLE exposure_days (
    project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    day        BIGINT NOT NULL,            -- days since 1970-01-01, UTC
    category   TEXT NOT NULL,
    items      BIGINT NOT NULL DEFAULT 0,
    time_ms    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, user_id, day, category)
);
