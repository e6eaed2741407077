-- corobridge's shared limits, schema version 3: one queue across every JVM, slots handed over by whoever frees
-- them, and a count of held slots kept on the limit's row.
--
-- Before, a request that found its tags full waited in its own JVM, and every release woke every JVM, which all
-- tried again under the same row lock, counting the tag's leases each time: work that grew with the number of JVMs
-- and with the dead rows the churn of leases leaves, and no order between JVMs. Now a request that cannot be granted
-- is queued in the database, and the call that frees a slot grants it to the oldest request queued that fits, in
-- the same statement, and tells only that request's store: NOTIFY 'grant <store> <request> <lease>,...'. Requests
-- are served in arrival order across every JVM. Every function below is one statement: the rows' locks are held only
-- while the server runs it.

-- held: leases of the tag, kept by a trigger on corobridge_lease, so no grant counts rows. It includes leases that
-- expired and are not yet deleted: a grant that finds the tag full deletes them first (at most once a second per
-- tag, checked_at), and every store deletes them each third of its lease time (corobridge_sweep).
ALTER TABLE corobridge_limit
    ADD COLUMN held integer NOT NULL DEFAULT 0,
    ADD COLUMN checked_at timestamptz NOT NULL DEFAULT '-infinity';

CREATE OR REPLACE FUNCTION corobridge_count_lease() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE corobridge_limit SET held = held + 1 WHERE tag = NEW.tag;
    ELSE
        UPDATE corobridge_limit SET held = held - 1 WHERE tag = OLD.tag;
    END IF;
    RETURN NULL;
END
$$;

-- Created before counting, so no lease can be added between the count and the trigger.
CREATE TRIGGER corobridge_lease_count AFTER INSERT OR DELETE ON corobridge_lease
    FOR EACH ROW EXECUTE FUNCTION corobridge_count_lease();
UPDATE corobridge_limit AS l SET held = (SELECT count(*) FROM corobridge_lease AS e WHERE e.tag = l.tag);

-- Leases are found by id (release, renewal) or by the request they were granted to (waiter: '<store> <request>',
-- for a store that missed its NOTIFY or gave up meanwhile). Without the index on expiry a renewal is an update in
-- place (HOT), and no grant scans leases any more.
ALTER TABLE corobridge_lease ADD COLUMN waiter text;
DROP INDEX corobridge_lease_tag_expires;
CREATE INDEX corobridge_lease_waiter ON corobridge_lease (waiter) WHERE waiter IS NOT NULL;

-- The queue: per store and set of tags, the requests waiting in arrival order (parallel arrays). The row is
-- updated in place as requests come and go, and leased like a slot: the store renews it, so the requests of a JVM
-- that died stop blocking the queue when its lease ends.
CREATE TABLE corobridge_waiter (
    store         text NOT NULL,
    tags          text[] NOT NULL,
    host          text NOT NULL,
    pid           bigint NOT NULL,
    lease_seconds double precision NOT NULL,
    requests      bigint[] NOT NULL,
    holders       text[] NOT NULL,
    since         timestamptz[] NOT NULL,
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (store, tags)
);

-- The heart. Locks the rows of every tag involved (p_tags, the tags of the leases p_release, the tags of the new
-- requests, and every tag of a queued request that shares one), in name order and all in one statement, so no two
-- calls deadlock. Then: gives back the leases p_release; takes the requests p_withdraw of store p_store out of the
-- queue and gives back what was granted to them meanwhile (their tags must be in p_tags); deletes expired leases
-- (of every tag if p_sweep, else of a full tag at most once a second); grants queued requests, oldest first, while
-- they fit; then takes the new requests of store p_store in order. Every change to the queue's requests is made
-- under these locks (a withdrawal made without them raced a grant, and leaked its slots: SharedQueueStressTest). New request p_request[i] asks for one slot of each of its tags: one entry
-- per tag (p_tag[i], p_holder[i]), a request's entries together. Rows returned, for the new requests only:
--   'granted'  one per tag, with the new lease's id (o_id);
--   'queued'   one row: it waits; o_tag, o_held, o_slots tell the first tag that stopped it;
--   'unknown'  the first tag not defined;  'off'  the first tag with 0 slots.
-- A queued request that cannot be granted blocks its tags for those behind it (first come, first served per tag).
CREATE OR REPLACE FUNCTION corobridge_take(
    p_tags text[], p_release bigint[], p_sweep boolean, p_store text, p_request bigint[], p_tag text[],
    p_holder text[], p_host text, p_pid bigint, p_lease_seconds double precision, p_withdraw bigint[])
RETURNS TABLE (o_request bigint, o_outcome text, o_tag text, o_held integer, o_slots integer, o_id bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_now     timestamptz := clock_timestamp();
    v_mentioned text[];
    v_all     text[];
    v_count   integer;
    v_slots   integer[];
    v_held    integer[];
    v_checked timestamptz[];
    v_blocked boolean[];
    v_mine    integer[];
    v_leases  bigint[];
    v_n       integer := coalesce(array_length(p_request, 1), 0);
    v_i       integer;
    v_k       integer;
    v_p       integer;
    v_at      integer;
    v_r       bigint;
    v_lease   bigint;
    v_int     integer;
    v_rows    integer;
    v_verdict text;
    v_tag     text;
    v_served  boolean;
    w         record;
BEGIN
    SELECT array_agg(DISTINCT x.t) INTO v_mentioned FROM (
        SELECT unnest(p_tags) AS t
        UNION SELECT unnest(p_tag)
        UNION SELECT e.tag FROM corobridge_lease AS e WHERE e.id = ANY (p_release)
    ) AS x;
    SELECT array_agg(DISTINCT x.t ORDER BY x.t) INTO v_all FROM (
        SELECT unnest(v_mentioned) AS t
        UNION
        SELECT unnest(q.tags) FROM corobridge_waiter AS q
         WHERE q.tags && v_mentioned AND cardinality(q.requests) > 0 AND q.expires_at > v_now
    ) AS x;
    IF v_all IS NULL THEN
        RETURN;
    END IF;
    v_count := array_length(v_all, 1);
    v_slots := array_fill(NULL::integer, ARRAY[v_count]);
    v_held := array_fill(0, ARRAY[v_count]);
    v_checked := array_fill(NULL::timestamptz, ARRAY[v_count]);
    -- Locked and read in one statement: a row whose lock was waited for is read as its newest version.
    FOR w IN SELECT l.tag, l.slots, l.held, l.checked_at FROM corobridge_limit AS l
              WHERE l.tag = ANY (v_all) ORDER BY l.tag FOR UPDATE LOOP
        v_p := array_position(v_all, w.tag);
        v_slots[v_p] := w.slots;
        v_held[v_p] := w.held;
        v_checked[v_p] := w.checked_at;
    END LOOP;
    v_now := clock_timestamp();

    IF p_withdraw IS NOT NULL AND cardinality(p_withdraw) > 0 THEN
        -- Requests that gave up, out of the store's queue rows, in place (each row's arrays as they are now, under
        -- the locks); what was granted to them before they gave up is given back with the releases below.
        UPDATE corobridge_waiter AS q
           SET (requests, holders, since) = (
               SELECT coalesce(array_agg(u.r ORDER BY u.o), '{}'), coalesce(array_agg(u.h ORDER BY u.o), '{}'),
                      coalesce(array_agg(u.s ORDER BY u.o), '{}')
                 FROM unnest(q.requests, q.holders, q.since) WITH ORDINALITY AS u(r, h, s, o)
                WHERE NOT u.r = ANY (p_withdraw))
         WHERE q.store = p_store AND q.requests && p_withdraw;
    END IF;
    IF cardinality(p_release) > 0 OR cardinality(p_withdraw) > 0 THEN
        -- The trigger lowers held in the table; the copies here follow.
        FOR w IN DELETE FROM corobridge_lease
                  WHERE id = ANY (p_release)
                     OR waiter = ANY (SELECT p_store || ' ' || r FROM unnest(p_withdraw) AS r) RETURNING tag LOOP
            v_p := array_position(v_all, w.tag);
            IF v_p IS NOT NULL THEN
                v_held[v_p] := v_held[v_p] - 1;
            END IF;
        END LOOP;
    END IF;
    FOR v_p IN 1 .. v_count LOOP
        IF v_slots[v_p] IS NOT NULL
           AND (p_sweep OR (v_held[v_p] >= v_slots[v_p] AND v_checked[v_p] < v_now - interval '1 second')) THEN
            DELETE FROM corobridge_lease WHERE tag = v_all[v_p] AND expires_at <= v_now;
            UPDATE corobridge_limit SET checked_at = v_now WHERE tag = v_all[v_p] RETURNING held INTO v_int;
            v_held[v_p] := v_int;
        END IF;
    END LOOP;

    -- The queue, oldest request first, until nothing more fits.
    LOOP
        v_served := false;
        v_blocked := array_fill(false, ARRAY[v_count]);
        FOR w IN SELECT q.store, q.tags, q.host, q.pid, q.lease_seconds, q.requests, q.holders[1] AS holder
                   FROM corobridge_waiter AS q
                  WHERE q.tags && v_all AND cardinality(q.requests) > 0 AND q.expires_at > v_now
                  ORDER BY q.since[1], q.store LOOP
            v_mine := '{}';
            FOREACH v_tag IN ARRAY w.tags LOOP
                v_mine := v_mine || array_position(v_all, v_tag);
            END LOOP;
            IF array_position(v_mine, NULL) IS NOT NULL THEN
                -- A tag this call did not lock (queued after the locks were taken): leave it for the next call.
                FOREACH v_p IN ARRAY array_remove(v_mine, NULL) LOOP
                    v_blocked[v_p] := true;
                END LOOP;
                CONTINUE;
            END IF;
            v_at := NULL;
            FOR v_k IN 1 .. cardinality(v_mine) LOOP
                IF v_slots[v_mine[v_k]] IS NULL OR v_slots[v_mine[v_k]] = 0 THEN
                    v_at := v_k;
                    EXIT;
                END IF;
            END LOOP;
            IF v_at IS NOT NULL THEN
                -- Deleted or switched off while they waited: every request of the row fails alike.
                v_verdict := CASE WHEN v_slots[v_mine[v_at]] IS NULL THEN 'unknown' ELSE 'off' END;
                PERFORM pg_notify('corobridge_limits', 'fail ' || w.store || ' ' || r || ' ' || v_verdict || ' ' || v_at)
                   FROM unnest(w.requests) AS r;
                UPDATE corobridge_waiter SET requests = '{}', holders = '{}', since = '{}'
                 WHERE store = w.store AND tags = w.tags;
                CONTINUE;
            END IF;
            v_verdict := NULL;
            FOREACH v_p IN ARRAY v_mine LOOP
                IF v_blocked[v_p] THEN
                    v_verdict := 'blocked';
                    EXIT;
                END IF;
            END LOOP;
            CONTINUE WHEN v_verdict IS NOT NULL;
            FOREACH v_p IN ARRAY v_mine LOOP
                IF v_held[v_p] >= v_slots[v_p] THEN
                    v_verdict := 'full';
                    EXIT;
                END IF;
            END LOOP;
            IF v_verdict IS NOT NULL THEN
                FOREACH v_p IN ARRAY v_mine LOOP
                    v_blocked[v_p] := true;
                END LOOP;
                CONTINUE;
            END IF;
            v_leases := '{}';
            FOREACH v_p IN ARRAY v_mine LOOP
                INSERT INTO corobridge_lease (tag, holder, host, pid, since, expires_at, waiter)
                VALUES (v_all[v_p], w.holder, w.host, w.pid, v_now, v_now + make_interval(secs => w.lease_seconds),
                        w.store || ' ' || w.requests[1])
                RETURNING id INTO v_lease;
                v_leases := v_leases || v_lease;
                v_held[v_p] := v_held[v_p] + 1;
            END LOOP;
            UPDATE corobridge_waiter SET requests = requests[2:], holders = holders[2:], since = since[2:]
             WHERE store = w.store AND tags = w.tags AND requests[1] = w.requests[1];
            GET DIAGNOSTICS v_rows = ROW_COUNT;
            IF v_rows <> 1 THEN
                -- Cannot happen while every change to the queue holds these locks; if it did, undo it all.
                RAISE EXCEPTION 'corobridge: queue row of store % changed under its lock (request %)', w.store, w.requests[1];
            END IF;
            PERFORM pg_notify('corobridge_limits',
                'grant ' || w.store || ' ' || w.requests[1] || ' ' || array_to_string(v_leases, ','));
            v_served := true;
            EXIT; -- the queue's order changed: read it again
        END LOOP;
        EXIT WHEN NOT v_served;
    END LOOP;

    -- The new requests, in order, behind the queue.
    v_i := 1;
    WHILE v_i <= v_n LOOP
        v_r := p_request[v_i];
        v_mine := '{}';
        v_k := v_i;
        WHILE v_k <= v_n AND p_request[v_k] = v_r LOOP
            v_mine := v_mine || array_position(v_all, p_tag[v_k]);
            v_k := v_k + 1;
        END LOOP;
        v_verdict := NULL;
        FOREACH v_p IN ARRAY v_mine LOOP
            IF v_slots[v_p] IS NULL THEN
                v_verdict := 'unknown'; v_at := v_p; EXIT;
            ELSIF v_slots[v_p] = 0 THEN
                v_verdict := 'off'; v_at := v_p; EXIT;
            END IF;
        END LOOP;
        IF v_verdict IS NULL THEN
            FOREACH v_p IN ARRAY v_mine LOOP
                IF v_blocked[v_p] OR v_held[v_p] >= v_slots[v_p] THEN
                    v_verdict := 'queued'; v_at := v_p; EXIT;
                END IF;
            END LOOP;
        END IF;
        IF v_verdict IS NULL THEN
            FOREACH v_p IN ARRAY v_mine LOOP
                INSERT INTO corobridge_lease (tag, holder, host, pid, since, expires_at)
                VALUES (v_all[v_p], p_holder[v_i], p_host, p_pid, v_now, v_now + make_interval(secs => p_lease_seconds))
                RETURNING id INTO o_id;
                v_held[v_p] := v_held[v_p] + 1;
                o_request := v_r; o_outcome := 'granted'; o_tag := v_all[v_p]; o_held := NULL; o_slots := NULL;
                RETURN NEXT;
            END LOOP;
        ELSIF v_verdict = 'queued' THEN
            INSERT INTO corobridge_waiter AS q (store, tags, host, pid, lease_seconds, requests, holders, since, expires_at)
            VALUES (p_store, p_tag[v_i:v_k - 1], p_host, p_pid, p_lease_seconds, ARRAY[v_r], ARRAY[p_holder[v_i]],
                    ARRAY[v_now], v_now + make_interval(secs => p_lease_seconds))
            ON CONFLICT (store, tags) DO UPDATE
               SET requests = q.requests || excluded.requests, holders = q.holders || excluded.holders,
                   since = q.since || excluded.since, expires_at = excluded.expires_at;
            o_request := v_r; o_outcome := 'queued'; o_tag := v_all[v_at];
            o_held := v_held[v_at]; o_slots := v_slots[v_at]; o_id := NULL;
            RETURN NEXT;
            FOREACH v_p IN ARRAY v_mine LOOP
                v_blocked[v_p] := true;
            END LOOP;
        ELSE
            o_request := v_r; o_outcome := v_verdict; o_tag := v_all[v_at]; o_held := NULL; o_slots := NULL; o_id := NULL;
            RETURN NEXT;
        END IF;
        v_i := v_k;
    END LOOP;
END
$$;

-- Serves the queue of p_tags: after a resize, a reset, or a deletion of the limit.
CREATE OR REPLACE FUNCTION corobridge_serve(p_tags text[]) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM count(*) FROM corobridge_take(p_tags, NULL, false, NULL, '{}', '{}', '{}', NULL, NULL, NULL, NULL);
END
$$;

-- Housekeeping, each third of a store's lease time: deletes expired leases and queue rows of every JVM, serving the
-- queue of the leases' tags (a holder that died announced nothing), and deletes the queue rows of stores gone.
CREATE OR REPLACE FUNCTION corobridge_sweep() RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_tags text[];
BEGIN
    DELETE FROM corobridge_waiter WHERE expires_at <= clock_timestamp();
    SELECT array_agg(DISTINCT tag) INTO v_tags FROM corobridge_lease WHERE expires_at <= clock_timestamp();
    IF v_tags IS NOT NULL THEN
        PERFORM count(*) FROM corobridge_take(v_tags, NULL, true, NULL, '{}', '{}', '{}', NULL, NULL, NULL, NULL);
    END IF;
END
$$;

-- A store's fallback for a NOTIFY it may have missed: serves the queue of its requests' tags, then says of each
-- request whether it still waits ('waiting'), was granted ('granted', one row per lease, with its tag), or is not
-- known ('gone': its row's lease ran out, or it was refused; its store sends it again).
CREATE OR REPLACE FUNCTION corobridge_poll(p_store text, p_requests bigint[])
RETURNS TABLE (o_request bigint, o_state text, o_tag text, o_lease bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_tags text[];
BEGIN
    SELECT array_agg(DISTINCT t) INTO v_tags
      FROM corobridge_waiter AS q, unnest(q.tags) AS t WHERE q.store = p_store AND q.requests && p_requests;
    IF v_tags IS NOT NULL THEN
        PERFORM count(*) FROM corobridge_take(v_tags, NULL, false, NULL, '{}', '{}', '{}', NULL, NULL, NULL, NULL);
    END IF;
    RETURN QUERY
        SELECT x.r,
               CASE WHEN EXISTS (SELECT 1 FROM corobridge_waiter AS q
                                  WHERE q.store = p_store AND x.r = ANY (q.requests) AND q.expires_at > clock_timestamp())
                    THEN 'waiting'
                    WHEN e.id IS NOT NULL THEN 'granted' ELSE 'gone' END,
               e.tag, e.id
          FROM unnest(p_requests) AS x(r)
          LEFT JOIN corobridge_lease AS e ON e.waiter = p_store || ' ' || x.r;
END
$$;
