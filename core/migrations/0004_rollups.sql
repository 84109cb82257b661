-- The hourly roll-up's refresh state, kept by core.db.refresh_rollups where readings_hourly is a
-- table (TimescaleDB under the Apache licence): refreshed_at is when the last refresh took its
-- snapshot. (readings_hourly itself is made by db.migrate: a roll-up table, a continuous
-- aggregate or a date_bin view, depending on the server.)

CREATE TABLE IF NOT EXISTS rollup_watermarks (
    rollup       text PRIMARY KEY,
    refreshed_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
