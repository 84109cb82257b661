-- Without TimescaleDB: BRIN on time keeps range scans cheap on an append-mostly table.
-- (Skipped when readings is a hypertable, which indexes time itself.)
CREATE INDEX IF NOT EXISTS readings_ts_brin ON readings USING brin (ts);
