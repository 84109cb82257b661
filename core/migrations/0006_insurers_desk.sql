-- The insurer's desk (`forewarn api`): tenants, API keys per tenant (only a hash of the secret),
-- the audit log of staff actions, customers per tenant, and rejected telemetry kept for
-- integrators.
--
-- Customers become tenant-scoped: their key is (tenant, id), so two insurers may both have a
-- customer 'wang'; devices reference (tenant, customer_id); warnings keep (tenant, customer_id).
-- Existing customers are moved like this: one used by devices or warnings of one tenant gets
-- that tenant; one used by several tenants is copied to each of them (the same name, locale,
-- channels and preferences); one used by none goes to the tenant 'default'. Every tenant named
-- anywhere gets a row in `tenants`, named as its id (`forewarn tenant add ID --name` renames).

CREATE TABLE IF NOT EXISTS tenants (
    id         text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS api_keys (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant        text NOT NULL REFERENCES tenants (id),
    role          text NOT NULL CHECK (role IN ('admin', 'staff', 'read_only')),
    name          text NOT NULL,
    prefix        text NOT NULL UNIQUE CHECK (prefix ~ '^[0-9a-f]{8}$'),   -- shown in lists: fw_<prefix>_…
    secret_sha256 text NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),  -- of the whole key; the key is shown once
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant ON api_keys (tenant);

-- one row per write by the insurer's staff (API keys, the desk's CLI): who, what, on what, when
CREATE TABLE IF NOT EXISTS audit_log (
    id     bigserial PRIMARY KEY,
    tenant text NOT NULL,
    actor  text NOT NULL,
    action text NOT NULL,
    target text,
    detail jsonb NOT NULL DEFAULT '{}',
    at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS audit_log_tenant ON audit_log (tenant, at DESC);

-- customers per tenant
ALTER TABLE devices DROP CONSTRAINT IF EXISTS devices_customer_id_fkey;
ALTER TABLE customers DROP CONSTRAINT IF EXISTS customers_pkey;
ALTER TABLE customers ADD COLUMN IF NOT EXISTS tenant text;

INSERT INTO customers (tenant, id, name, locale, notify_urls, created_at, updated_at, timezone, quiet_hours, daily_budget)
SELECT used.tenant, c.id, c.name, c.locale, c.notify_urls, c.created_at, c.updated_at, c.timezone, c.quiet_hours,
       c.daily_budget
FROM customers c
JOIN (SELECT customer_id, tenant FROM devices
      UNION SELECT customer_id, tenant FROM warnings WHERE customer_id IS NOT NULL) AS used ON used.customer_id = c.id
WHERE c.tenant IS NULL;
DELETE FROM customers c
WHERE c.tenant IS NULL AND EXISTS (SELECT 1 FROM customers k WHERE k.id = c.id AND k.tenant IS NOT NULL);
UPDATE customers SET tenant = 'default' WHERE tenant IS NULL;

ALTER TABLE customers ALTER COLUMN tenant SET NOT NULL;
ALTER TABLE customers ADD CONSTRAINT customers_tenant_check CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$');
ALTER TABLE customers ADD PRIMARY KEY (tenant, id);

INSERT INTO tenants (id, name)
SELECT t, t FROM (
    SELECT tenant FROM customers UNION SELECT tenant FROM devices UNION SELECT tenant FROM warnings
    UNION SELECT tenant FROM tenant_contacts UNION SELECT tenant FROM followup_policies
    UNION SELECT tenant FROM detector_config
) AS named (t)
WHERE t ~ '^[a-z0-9][a-z0-9_-]{0,63}$'
ON CONFLICT (id) DO NOTHING;

ALTER TABLE customers ADD CONSTRAINT customers_tenant_fkey FOREIGN KEY (tenant) REFERENCES tenants (id);
ALTER TABLE devices ADD CONSTRAINT devices_customer_fkey
    FOREIGN KEY (tenant, customer_id) REFERENCES customers (tenant, id);
DROP INDEX IF EXISTS devices_customer;
CREATE INDEX IF NOT EXISTS devices_customer ON devices (tenant, customer_id);

-- the API's warning lists: a tenant's newest first, or one customer's
CREATE INDEX IF NOT EXISTS warnings_tenant_opened ON warnings (tenant, opened_at DESC);
CREATE INDEX IF NOT EXISTS warnings_customer ON warnings (tenant, customer_id, opened_at DESC);

-- the loss a warning avoided, as staff estimate it (the portfolio's "loss avoided")
ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS avoided_cny numeric CHECK (avoided_cny IS NULL OR avoided_cny >= 0);

-- Rejected telemetry (forewarn.rejects, consumed by the worker), so an integrator sees why a
-- device's data does not arrive: the last ones per device (core.db.REJECTS_KEPT_PER_DEVICE),
-- and counts per device, reason and hour. Both are kept FOREWARN_RETENTION_DAYS. tenant and
-- device are read from the topic ('' when it names none that could be one).
CREATE TABLE IF NOT EXISTS rejects (
    id          bigserial PRIMARY KEY,
    tenant      text NOT NULL,
    device      text NOT NULL,
    reason      text NOT NULL,
    detail      text NOT NULL,
    topic       text NOT NULL,
    payload     text,                 -- the refused part, cut to 1 KiB
    received_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_device ON rejects (tenant, device, id DESC);
CREATE INDEX IF NOT EXISTS rejects_received ON rejects (received_at);

CREATE TABLE IF NOT EXISTS reject_counts (
    tenant  text NOT NULL,
    device  text NOT NULL,
    reason  text NOT NULL,
    hour    timestamptz NOT NULL,
    n       bigint NOT NULL,
    last_at timestamptz NOT NULL,
    PRIMARY KEY (tenant, device, reason, hour)
);
CREATE INDEX IF NOT EXISTS reject_counts_hour ON reject_counts (tenant, hour);
