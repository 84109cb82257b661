-- Warnings people act on: every lifecycle transition, acknowledgement tokens used, follow-up
-- timers per warning, the insurer's contacts and follow-up policies per tenant, customers'
-- time zones, quiet hours and budgets, and deliveries as an outbox that retries and falls back.

CREATE TABLE IF NOT EXISTS warning_transitions (
    id          bigserial PRIMARY KEY,
    warning_id  uuid NOT NULL REFERENCES warnings (id),
    event       text NOT NULL,
    from_status text,
    to_status   text NOT NULL,
    actor       text NOT NULL,          -- worker, customer (link), staff:<name>, followup
    note        text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS warning_transitions_warning ON warning_transitions (warning_id, at);

ALTER TABLE warnings ADD COLUMN IF NOT EXISTS kind text;
ALTER TABLE warnings ADD COLUMN IF NOT EXISTS acknowledged_by text;

ALTER TABLE customers ADD COLUMN IF NOT EXISTS timezone text;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS quiet_hours text[] NOT NULL DEFAULT '{}';
ALTER TABLE customers ADD COLUMN IF NOT EXISTS daily_budget integer CHECK (daily_budget IS NULL OR daily_budget >= 0);

CREATE TABLE IF NOT EXISTS ack_tokens_used (
    nonce      text PRIMARY KEY,
    warning_id uuid NOT NULL REFERENCES warnings (id),
    used_at    timestamptz NOT NULL DEFAULT now()
);

-- who at the insurer hears of what: risk-service staff on call, the last step, claims
CREATE TABLE IF NOT EXISTS tenant_contacts (
    tenant     text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    role       text NOT NULL CHECK (role IN ('staff', 'final', 'claims')),
    position   integer NOT NULL,
    url        text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, role, position)
);

CREATE TABLE IF NOT EXISTS followup_policies (
    tenant     text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    severity   text NOT NULL CHECK (severity IN ('advisory', 'warning', 'critical')),
    steps      jsonb NOT NULL,          -- [{"after_s": 600, "kind": "remind", "next_channel": true}, …]
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, severity)
);

-- one row per follow-up step of a warning: claimed once (fired_at), so a restart never repeats it
CREATE TABLE IF NOT EXISTS followups (
    warning_id   uuid NOT NULL REFERENCES warnings (id),
    action       text NOT NULL,         -- remind@600, staff@1200, final@2700
    kind         text NOT NULL CHECK (kind IN ('remind', 'staff', 'final')),
    next_channel boolean NOT NULL DEFAULT false,
    due_at       timestamptz NOT NULL,
    fired_at     timestamptz,
    outcome      text,                  -- sent, skipped: acknowledged, skipped: resolved …
    PRIMARY KEY (warning_id, action)
);
CREATE INDEX IF NOT EXISTS followups_due ON followups (due_at) WHERE fired_at IS NULL;

-- deliveries become an outbox: pending → sending → sent, or retried with backoff and then
-- failed (the next channel takes over); held while quiet hours or the budget hold them back
ALTER TABLE deliveries DROP CONSTRAINT IF EXISTS deliveries_status_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK (status IN ('pending', 'held', 'sending', 'sent', 'failed', 'superseded'));
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS audience text NOT NULL DEFAULT 'customer'
    CHECK (audience IN ('customer', 'staff', 'final', 'claims'));
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS channel_index integer NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS due_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS lease_until timestamptz;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS held_reason text;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS reminder integer NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS sent_at timestamptz;
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due_at) WHERE status IN ('pending', 'held', 'sending');

CREATE TABLE IF NOT EXISTS delivery_attempts (
    id           bigserial PRIMARY KEY,
    delivery_id  bigint NOT NULL REFERENCES deliveries (id),
    ok           boolean NOT NULL,
    error        text,
    seconds      double precision,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS delivery_attempts_delivery ON delivery_attempts (delivery_id);

ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS recorded_by text;
CREATE UNIQUE INDEX IF NOT EXISTS outcomes_warning ON outcomes (warning_id);
