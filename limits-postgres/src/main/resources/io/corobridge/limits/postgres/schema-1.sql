-- corobridge's shared concurrency limits, schema version 1.
-- Applied by PostgresLimitStore under a transaction-scoped advisory lock, so JVMs starting together apply it once.
-- A released version is never edited: changes go in schema-2.sql, and so on.

-- One row per named limit. Acquiring locks the rows of its tags (SELECT ... ORDER BY tag FOR UPDATE), so two
-- acquisitions of the same tag are serialised by the database, and rows locked in tag order never deadlock.
CREATE TABLE corobridge_limit (
    tag        text PRIMARY KEY CHECK (length(btrim(tag)) > 0),
    slots      integer NOT NULL CHECK (slots >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per slot held. A slot is held while its lease has not expired by the database's clock; the holder renews
-- it in the background, and a holder that dies stops renewing, so its slot comes back at expires_at.
CREATE TABLE corobridge_lease (
    id         bigserial PRIMARY KEY,
    tag        text NOT NULL REFERENCES corobridge_limit (tag) ON DELETE CASCADE,
    holder     text NOT NULL,
    host       text NOT NULL,
    pid        bigint NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

CREATE INDEX corobridge_lease_tag_expires ON corobridge_lease (tag, expires_at);
