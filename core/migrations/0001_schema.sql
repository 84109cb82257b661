-- forewarn schema, plain PostgreSQL (>= 15). TimescaleDB extras are applied by db.migrate()
-- when the extension is available.

CREATE TABLE IF NOT EXISTS customers (
    id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name        text NOT NULL,
    locale      text NOT NULL DEFAULT 'zh-CN' CHECK (locale IN ('zh-CN', 'en')),
    notify_urls text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS devices (
    tenant      text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    id          text NOT NULL CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    customer_id text NOT NULL REFERENCES customers (id),
    kind        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS devices_customer ON devices (customer_id);

-- Narrow: one row per device, metric and time; unique on those for idempotent writes.
CREATE TABLE IF NOT EXISTS readings (
    tenant      text NOT NULL,
    device      text NOT NULL,
    metric      text NOT NULL,
    ts          timestamptz NOT NULL,
    value       double precision NOT NULL,
    seq         bigint,
    ingested_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, device, metric, ts)
);

CREATE TABLE IF NOT EXISTS warnings (
    id                uuid PRIMARY KEY,
    tenant            text NOT NULL,
    device            text NOT NULL,
    customer_id       text,
    risk              text NOT NULL,
    severity          text NOT NULL,
    status            text NOT NULL DEFAULT 'open'
                      CHECK (status IN ('open', 'notified', 'acknowledged', 'resolved', 'expired', 'escalated')),
    score             double precision NOT NULL,
    opened_at         timestamptz NOT NULL,
    predicted_loss_at timestamptz,
    evidence          jsonb NOT NULL DEFAULT '{}',
    notified_at       timestamptz,
    acknowledged_at   timestamptz,
    resolved_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS warnings_device ON warnings (tenant, device, opened_at DESC);
CREATE INDEX IF NOT EXISTS warnings_status ON warnings (status) WHERE status IN ('open', 'notified', 'escalated');

-- Every attempt per warning and channel; the unique key makes a replay send nothing twice.
CREATE TABLE IF NOT EXISTS deliveries (
    id           bigserial PRIMARY KEY,
    warning_id   uuid NOT NULL REFERENCES warnings (id),
    action       text NOT NULL DEFAULT 'open',
    channel      text NOT NULL,          -- the apprise URL, masked
    channel_key  text NOT NULL,          -- sha256 of the real URL
    status       text NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    error        text,
    attempts     integer NOT NULL DEFAULT 0,
    attempted_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (warning_id, action, channel_key)
);

-- What really happened: the feedback that calibrates everything.
CREATE TABLE IF NOT EXISTS outcomes (
    id          bigserial PRIMARY KEY,
    warning_id  uuid REFERENCES warnings (id),
    tenant      text NOT NULL,
    device      text NOT NULL,
    outcome     text NOT NULL CHECK (outcome IN ('loss_avoided', 'loss_occurred', 'false_alarm')),
    loss_at     timestamptz,
    cost_cny    numeric,
    note        text,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
