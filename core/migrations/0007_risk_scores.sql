-- Risk scores (scores/): a driver score per vehicle and a property score per home or site, one
-- row per device, local day and model version, recomputed daily from the stored readings and
-- warnings (scores/daily.py; `forewarn scores compute`, or the worker after local midnight).
-- factors: the explanation, one object per factor (value, weight, good, bad, level, points);
-- basis: the measured figures behind it. A recompute of the same day and version replaces the
-- row only when something differs, so computed_at says when the figures last changed.

CREATE TABLE IF NOT EXISTS risk_scores (
    tenant       text NOT NULL CHECK (tenant ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    device       text NOT NULL CHECK (device ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    kind         text NOT NULL CHECK (kind IN ('driver', 'property')),
    day          date NOT NULL,
    score        double precision NOT NULL CHECK (score >= 0 AND score <= 100),
    grade        text NOT NULL CHECK (grade IN ('A', 'B', 'C', 'D', 'E', '-')),
    factors      jsonb NOT NULL CHECK (jsonb_typeof(factors) = 'array'),
    basis        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(basis) = 'object'),
    version      text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    computed_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, device, day, version)
);
CREATE INDEX IF NOT EXISTS risk_scores_tenant_day ON risk_scores (tenant, day DESC);
