-- Detector configuration: parameters laid over a device kind's profile (detectors/profiles.py),
-- for a tenant's devices of one kind (device NULL) or for one device. Per parameter the most
-- specific wins: the device's, then the tenant's for the kind, then the profile's, then the
-- detector's default. Written by `forewarn detectors set|clear` (which validates by building
-- the detectors); read by the worker, which reloads when detector_config_version moves.

CREATE TABLE IF NOT EXISTS detector_config (
    tenant     text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    kind       text NOT NULL,
    device     text CHECK (device ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    risk       text NOT NULL,
    params     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (tenant, kind, device, risk)
);

-- One row: bumped by every change to detector_config, however it is made.
CREATE TABLE IF NOT EXISTS detector_config_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint NOT NULL DEFAULT 0
);
INSERT INTO detector_config_version DEFAULT VALUES ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION detector_config_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE detector_config_version SET version = version + 1;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER detector_config_changed
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON detector_config
    FOR EACH STATEMENT EXECUTE FUNCTION detector_config_changed();
