-- corobridge's shared limits, schema version 2: rate limits.
-- One row per rate limit, holding the generic cell rate algorithm's one timestamp: the theoretical arrival time of
-- the next pass. A pass locks the row, reserves the next moment by the database's clock and moves tat on.
CREATE TABLE corobridge_rate (
    tag        text PRIMARY KEY CHECK (length(btrim(tag)) > 0),
    per_second double precision NOT NULL CHECK (per_second > 0),
    burst      integer NOT NULL CHECK (burst >= 1),
    tat        timestamptz NOT NULL DEFAULT clock_timestamp()
);
