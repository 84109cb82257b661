-- Dead letters: Kafka records the worker could not store or handle for a reason of their own
-- (a value the database refuses, a constraint they break), set aside after bounded retries so
-- that everything after them flows. Kept whole (the record's bytes, its key, where it was on
-- Kafka) with the error, for an operator to read, fix and replay. An outage is never a reason:
-- the worker waits those out. Replaying a partition sets the same record aside once.

CREATE TABLE IF NOT EXISTS dead_letters (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    key         bytea,
    "partition" integer,
    "offset"    bigint,
    record      bytea NOT NULL,
    reason      text NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS dead_letters_position ON dead_letters (topic, "partition", "offset");
CREATE INDEX IF NOT EXISTS dead_letters_at ON dead_letters (at);
