-- First notice of loss: a warning of a loss under way (critical, happening now: a wet leak
-- sensor, a burst pipe, smoke, a vehicle's crash) opens one claim notice for the insurer's
-- claims desk (notifiers.claims). Its reference is derived from the warning id, so a replay
-- finds the same notice: one per warning. readings: the device's readings of the 10 minutes
-- before, {"from_ms": …, "to_ms": …, "series": {"speed_kmh": [[ts_ms, value], …], …}}.

CREATE TABLE IF NOT EXISTS claim_notices (
    id          bigserial PRIMARY KEY,
    ref         text NOT NULL UNIQUE CHECK (ref ~ '^FNOL-[0-9]{8}-[0-9A-F]{6,}$'),
    tenant      text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    device      text NOT NULL,
    kind        text,
    customer_id text,                   -- the tenant's customer (tenant, customer_id), if any
    warning_id  uuid NOT NULL UNIQUE REFERENCES warnings (id),
    risk        text NOT NULL,
    severity    text NOT NULL,
    opened_at   timestamptz NOT NULL,   -- when the warning opened: the loss was detected
    lat         double precision CHECK (lat BETWEEN -90 AND 90),
    lon         double precision CHECK (lon BETWEEN -180 AND 180),
    evidence    jsonb NOT NULL DEFAULT '{}',
    readings    jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS claim_notices_tenant ON claim_notices (tenant, opened_at DESC);
