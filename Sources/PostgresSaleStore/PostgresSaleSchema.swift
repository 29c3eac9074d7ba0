/// The tables and functions of the sale core in PostgreSQL, for several
/// service instances sharing one database.
///
/// Claims must not serialize on one hot row, so a sale's units are split in
/// up to 64 shards (blocks of units), each a row with its own "next fresh
/// unit" and its own counters. A batch of claims locks the first shard no
/// other transaction holds (`FOR UPDATE SKIP LOCKED`) and takes units from it;
/// units given back wait in `returned_units`, claimed the same way once their
/// restock delay has passed (migration 5). Counts and
/// the stock version are sums over the shards. The per-user limit is a counter
/// row per (sale, user), so two instances cannot both let a user past it.
///
/// Each operation is one PL/pgSQL function call, one round trip: a batch of
/// claims costs one statement and one commit.
enum PostgresSaleSchema {
  /// Each migration, as statements run in order in one transaction.
  static let migrations: [[String]] = [
    [
      """
      CREATE TABLE sales (
        id text PRIMARY KEY,
        item_id text NOT NULL,
        item_name text NOT NULL,
        description text NOT NULL,
        currency text NOT NULL,
        price_minor bigint NOT NULL,
        quantity bigint NOT NULL CHECK (quantity > 0),
        starts_at bigint NOT NULL,
        ends_at bigint NOT NULL,
        per_user_limit int NOT NULL CHECK (per_user_limit > 0),
        hold_duration_ns bigint NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        paused_at bigint,
        closed_at bigint,
        idempotency_key text UNIQUE,
        shard_size bigint NOT NULL
      )
      """,
      "CREATE INDEX sales_newest_first ON sales (created_at DESC, id DESC)",
      """
      CREATE TABLE sale_shards (
        sale_id text NOT NULL REFERENCES sales (id),
        shard int NOT NULL,
        next_fresh bigint NOT NULL,
        end_unit bigint NOT NULL,
        held bigint NOT NULL DEFAULT 0,
        booked bigint NOT NULL DEFAULT 0,
        version bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (sale_id, shard)
      )
      """,
      """
      CREATE TABLE returned_units (
        sale_id text NOT NULL REFERENCES sales (id),
        unit bigint NOT NULL,
        PRIMARY KEY (sale_id, unit)
      )
      """,
      """
      CREATE TABLE user_holdings (
        sale_id text NOT NULL REFERENCES sales (id),
        user_id text NOT NULL,
        active int NOT NULL CHECK (active >= 0),
        PRIMARY KEY (sale_id, user_id)
      )
      """,
      "CREATE SEQUENCE fencing_tokens",
      """
      CREATE TABLE bookings (
        id text PRIMARY KEY,
        sale_id text NOT NULL REFERENCES sales (id),
        user_id text NOT NULL,
        unit bigint NOT NULL,
        status text NOT NULL CHECK (status IN ('hold', 'booked', 'released', 'expired')),
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        hold_expires_at bigint NOT NULL,
        idempotency_key text NOT NULL UNIQUE,
        fencing_token bigint NOT NULL,
        release_reason text
      )
      """,
      """
      CREATE UNIQUE INDEX bookings_one_taker_per_unit ON bookings (sale_id, unit)
        WHERE status IN ('hold', 'booked')
      """,
      "CREATE INDEX bookings_taken_by_user ON bookings (sale_id, user_id) WHERE status IN ('hold', 'booked')",
      "CREATE INDEX bookings_hold_deadlines ON bookings (hold_expires_at) WHERE status = 'hold'",
    ],
    // 2: no foreign keys from the rows a claim inserts to the sale. Each one
    // ran a trigger per row that share-locked the sale's row, and with claim
    // batches in several transactions at once those share locks became
    // multixacts on one hot row (removing them: 8.7-9.0k -> 10.4-10.8k holds/s
    // in make claim-bench). No call deletes a sale, and the claim function
    // reads the sale in the same transaction as it inserts the rows.
    [
      // Dropping a foreign key locks both tables: wait a bounded time for
      // instances still running (the start-up then fails and is retried).
      "SET LOCAL lock_timeout = '5s'",
      "ALTER TABLE bookings DROP CONSTRAINT IF EXISTS bookings_sale_id_fkey",
      "ALTER TABLE user_holdings DROP CONSTRAINT IF EXISTS user_holdings_sale_id_fkey",
    ],
    // 3: the identifiers a claim's indexes compare are compared byte by byte
    // (collation "C"). Under the database's collation (a libc locale, even
    // C.UTF-8) every comparison of a B-tree descent went through strcoll:
    // a claim batch of 500 took 41.9 ms, 33.7 ms after this. Identifiers
    // have no linguistic order; the lock order of the functions below names
    // the collation too, so that every transaction sorts users the same way.
    [
      "SET LOCAL lock_timeout = '5s'",
      """
      ALTER TABLE bookings ALTER COLUMN id TYPE text COLLATE "C", ALTER COLUMN sale_id TYPE text COLLATE "C",
        ALTER COLUMN user_id TYPE text COLLATE "C", ALTER COLUMN idempotency_key TYPE text COLLATE "C"
      """,
      """
      ALTER TABLE user_holdings ALTER COLUMN sale_id TYPE text COLLATE "C",
        ALTER COLUMN user_id TYPE text COLLATE "C"
      """,
      "ALTER TABLE sale_shards ALTER COLUMN sale_id TYPE text COLLATE \"C\"",
      "ALTER TABLE returned_units ALTER COLUMN sale_id TYPE text COLLATE \"C\"",
    ],
    // 4: the sales' own key in collation "C" too. Compared with the columns of
    // migration 3, `sales.id` took their collation, which its index (in the
    // database's) could not serve: every lookup of a sale from a booking or
    // a user's row scanned the sales table. And no index on bookings by
    // (sale, user): no statement reads it (the per-user limit is
    // user_holdings'), and every hold paid an insert into it.
    [
      "SET LOCAL lock_timeout = '5s'",
      "ALTER TABLE sales ALTER COLUMN id TYPE text COLLATE \"C\"",
      "DROP INDEX IF EXISTS bookings_taken_by_user",
    ],
    // 5: the restock delay (see `restockDelayNanoseconds`). A returned unit's
    // `restock_at` is NULL until a claim first sees it, which stamps it with
    // the database's clock plus the delay; no claim takes it before. Rows
    // returned before this migration are claimable at once (0). The claim
    // function of builds before migration 4 took returned units without the
    // delay: it goes, so that no instance of such a build can (its claims
    // fail until it is replaced). And an index of the bookings that ended,
    // by sale: with the one of the holding and booked ones, the keys of a
    // sale's bookings are read without a scan of every sale's. (Built inside
    // the migration's transaction, not CONCURRENTLY: on a large table,
    // instances still running wait for it to be built.)
    [
      "SET LOCAL lock_timeout = '5s'",
      "ALTER TABLE returned_units ADD COLUMN restock_at bigint DEFAULT 0",
      "ALTER TABLE returned_units ALTER COLUMN restock_at DROP DEFAULT",
      "DROP FUNCTION IF EXISTS flashsale_claim_batch(text[], text[], text[], text[], bigint)",
      "CREATE INDEX bookings_ended_by_sale ON bookings (sale_id) WHERE status IN ('released', 'expired')",
    ],
    // 6: cheaper index entries for the rows every hold writes (measured with
    // pgbench calling the claim function with 256 fresh claims, each build
    // on a fresh cluster, 3 interleaved pairs per step). The unique index of
    // taken units and the users' counters' key lead with the column that
    // tells keys apart (unit, user) instead of the sale's id, which every
    // descent compared first and found equal: 54.9-62.0k -> 57.8-67.2k
    // claims/s (unit first), then 59.5-63.0k -> 63.8-64.6k (user first). The
    // idempotency keys' unique B-tree becomes a hash index: their uniqueness
    // is the claim function's (it takes an advisory lock on each key's hash,
    // then looks the key up, before it inserts; nothing else inserts
    // bookings), and the audit names a key that made two bookings:
    // 61.4-66.8k -> 65.4-71.1k claims/s.
    [
      "SET LOCAL lock_timeout = '5s'",
      "DROP INDEX IF EXISTS bookings_one_taker_per_unit",
      "CREATE UNIQUE INDEX bookings_one_taker_per_unit ON bookings (unit, sale_id) WHERE status IN ('hold', 'booked')",
      "ALTER TABLE user_holdings DROP CONSTRAINT user_holdings_pkey",
      "ALTER TABLE user_holdings ADD PRIMARY KEY (user_id, sale_id)",
      "ALTER TABLE bookings DROP CONSTRAINT bookings_idempotency_key_key",
      "CREATE INDEX bookings_by_key ON bookings USING hash (idempotency_key)",
    ],
  ]

  /// How long a unit given back to stock waits before a claim may take it,
  /// counted from when a claim first sees its return committed (so from a
  /// moment after that commit, on the database's one clock). While a sale
  /// has no unit free, no instance can grant one for at least this long:
  /// that is what lets an instance refuse a sold-out `Book` from memory
  /// (`SoldOutKeys`). A claim that finds only such units waits for them.
  static let restockDelayNanoseconds: Int64 = 200_000_000

  /// The functions, replaced at every start-up (after the migrations, under
  /// the same lock): they are code, so a new build brings its own. A change
  /// to a function's result columns needs a migration that drops it first
  /// (`CREATE OR REPLACE` cannot change them), and in a rolling deploy the
  /// instances still running get the new functions too: keep them compatible
  /// with the previous build's calls.
  static let functions: [String] = [
      """
      CREATE OR REPLACE FUNCTION flashsale_booking_text(b bookings) RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $$
      -- PL/pgSQL, not SQL: it runs per row (replays, steps, the expiry job),
      -- and a SQL-language function called from PL/pgSQL is parsed and planned
      -- again at every call (that was a third of the database's CPU per claim
      -- when the claim function called it for every hold).
      BEGIN
        RETURN ARRAY[b.id, b.sale_id, b.user_id, b.unit::text, b.status, b.created_at::text, b.updated_at::text,
          b.hold_expires_at::text, b.idempotency_key, b.fencing_token::text, coalesce(b.release_reason, '')];
      END
      $$
      """,
      """
      CREATE OR REPLACE FUNCTION flashsale_end_hold(b bookings, p_status text, p_reason text, p_now bigint)
      RETURNS bookings LANGUAGE plpgsql AS $$
      DECLARE
        v_shard_size bigint;
        result bookings;
      BEGIN
        SELECT shard_size INTO v_shard_size FROM sales WHERE id = b.sale_id;
        UPDATE bookings SET status = p_status, updated_at = p_now, release_reason = p_reason
          WHERE id = b.id RETURNING * INTO result;
        -- restock_at NULL: stamped by the first claim that sees it (migration 5).
        INSERT INTO returned_units (sale_id, unit, restock_at) VALUES (b.sale_id, b.unit, NULL);
        -- Lock order everywhere: the user's row, then the shard's.
        UPDATE user_holdings SET active = active - 1 WHERE sale_id = b.sale_id AND user_id = b.user_id;
        IF b.status = 'booked' THEN
          UPDATE sale_shards SET booked = booked - 1, version = version + 1
            WHERE sale_id = b.sale_id AND shard = b.unit / v_shard_size;
        ELSE
          UPDATE sale_shards SET held = held - 1, version = version + 1
            WHERE sale_id = b.sale_id AND shard = b.unit / v_shard_size;
        END IF;
        RETURN result;
      END
      $$
      """,
      """
      CREATE OR REPLACE FUNCTION flashsale_units_left(p_sale text) RETURNS bigint LANGUAGE plpgsql STABLE AS $$
      BEGIN  -- PL/pgSQL for its cached plan, as flashsale_booking_text
        RETURN (SELECT s.quantity - coalesce((SELECT sum(held + booked) FROM sale_shards WHERE sale_id = p_sale), 0)
          FROM sales s WHERE s.id = p_sale);
      END
      $$
      """,
      """
      CREATE OR REPLACE FUNCTION flashsale_claim_holds(p_sales text[], p_users text[], p_keys text[], p_ids text[], p_now bigint)
      RETURNS TABLE (idx int, outcome text, refusal text, detail text, booking text[], units_left bigint,
        held_unit bigint, held_token bigint, held_until bigint)
      LANGUAGE plpgsql
      -- A new hold comes back as its unit, fencing token and deadline (the
      -- caller has the rest); a replayed booking as flashsale_booking_text's
      -- array. (It replaced flashsale_claim_batch, which answered every hold
      -- with the array; migration 5 dropped that one.)
      -- Every statement here finds rows by key. In the first minutes of a sale
      -- the bookings table grows faster than its statistics: the planner,
      -- still believing it small, scanned all of it for the batch's keys.
      SET enable_seqscan = off
      AS $$
      #variable_conflict use_column
      -- Set-based: one statement per step of the batch, none per claim (but
      -- for a user's second claim in one batch, rare). Every statement and
      -- every PL/pgSQL expression costs the executor a start-up: run per
      -- claim, they were most of the database's CPU per hold.
      -- A claim is named by its 1-based position in the argument arrays.
      -- Lock order, so that no two transactions wait on each other in a cycle:
      --   1. the batch's idempotency keys (advisory locks), in hash order;
      --   2. in (sale, user) order: the users' counter rows (the per-user limit);
      --   3. only with SKIP LOCKED: shards, and returned units with their shards.
      -- Cancels and the expiry job lock user rows before shard rows too.
      DECLARE
        s sales;
        i int;
        -- Keys already in the store: their claims replay (or are refused).
        v_existing text[];
        -- Claims refused before the limit, with their reasons.
        v_refused int[];
        v_reasons text[];
        -- Claims on an open sale with a key new to the store and to the batch,
        -- in (sale, user) order; those of them that follow a claim of the
        -- same user in the batch.
        v_candidates int[];
        v_again int[];
        -- Claims refused by the per-user limit; the others, in arrival order.
        v_limited int[];
        v_pending int[];
        -- One sale's pending claims, in arrival order, and the units found.
        v_claims int[];
        v_units bigint[];
        v_n int;
        v_got int;
        v_left bigint;
        v_held bigint;
        v_free bigint;
        v_busy boolean;
        v_clock bigint;
        v_shard int;
        v_next bigint;
        v_end bigint;
        v_take bigint;
        -- The holds, inserted together at the end: claim, unit, deadline, units left.
        h_idx int[] := '{}';
        h_units bigint[] := '{}';
        h_expires bigint[] := '{}';
        h_left bigint[] := '{}';
      BEGIN
        -- A retry of a claim still in flight in another transaction waits
        -- here for it to commit, then finds its booking and replays it. These
        -- locks are what keeps a key to one booking: its index is a hash
        -- index, not a unique one (migration 6).
        PERFORM pg_advisory_xact_lock(x.h)
          FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(p_keys) AS k ORDER BY 1) AS x;
        SELECT coalesce(array_agg(b.idempotency_key), '{}') INTO v_existing
          FROM bookings b WHERE b.idempotency_key = ANY(p_keys);
        IF v_existing <> '{}' THEN
          RETURN QUERY
            SELECT (u.ord - 1)::int, CASE WHEN x.same THEN 'replayed' ELSE 'refused' END,
              CASE WHEN x.same THEN NULL ELSE 'IDEMPOTENCY_KEY_REUSED' END,
              CASE WHEN x.same THEN NULL ELSE format('idempotency key "%s" was used for another sale or user', u.k) END,
              CASE WHEN x.same THEN flashsale_booking_text(b) END,
              CASE WHEN x.same THEN flashsale_units_left(u.sale_id) ELSE 0 END, NULL::bigint, NULL::bigint, NULL::bigint
            FROM unnest(p_keys, p_sales, p_users) WITH ORDINALITY AS u(k, sale_id, user_id, ord)
            JOIN bookings b ON b.idempotency_key = u.k
            CROSS JOIN LATERAL (SELECT b.sale_id = u.sale_id AND b.user_id = u.user_id AS same) AS x;
        END IF;

        -- Every other claim: refused for a key repeated in the batch (the
        -- store sends each key once; this only keeps a repeat from failing
        -- the batch with a unique violation), or by its sale's state; or a
        -- candidate.
        SELECT coalesce(array_agg(t.i ORDER BY t.sale_id COLLATE "C", t.user_id COLLATE "C", t.i)
              FILTER (WHERE t.reason IS NULL), '{}'),
            coalesce(array_agg(t.i ORDER BY t.i) FILTER (WHERE t.reason IS NULL AND t.nth_of_user > 1), '{}'),
            coalesce(array_agg(t.i) FILTER (WHERE t.reason IS NOT NULL), '{}'),
            coalesce(array_agg(t.reason) FILTER (WHERE t.reason IS NOT NULL), '{}')
          INTO v_candidates, v_again, v_refused, v_reasons
          FROM (
            SELECT c.*, row_number() OVER (PARTITION BY c.reason IS NULL, c.sale_id, c.user_id ORDER BY c.i) AS nth_of_user
            FROM (
              SELECT u.ord::int AS i, u.sale_id, u.user_id,
                CASE WHEN row_number() OVER (PARTITION BY u.k ORDER BY u.ord) > 1 THEN 'REPEATED_KEY'
                  WHEN sa.id IS NULL THEN 'SALE_NOT_FOUND'
                  WHEN sa.closed_at IS NOT NULL OR p_now >= sa.ends_at THEN 'SALE_ENDED'
                  WHEN p_now < sa.starts_at THEN 'SALE_NOT_STARTED'
                  WHEN sa.paused_at IS NOT NULL THEN 'SALE_PAUSED' END AS reason
              FROM unnest(p_keys, p_sales, p_users) WITH ORDINALITY AS u(k, sale_id, user_id, ord)
              LEFT JOIN (SELECT * FROM sales WHERE sales.id = ANY(p_sales)) AS sa ON sa.id = u.sale_id
              WHERE NOT u.k = ANY(v_existing)) AS c) AS t;
        IF v_refused <> '{}' THEN
          RETURN QUERY
            SELECT (r.i - 1)::int, CASE WHEN r.reason = 'REPEATED_KEY' THEN 'busy' ELSE 'refused' END,
              CASE WHEN r.reason = 'REPEATED_KEY' THEN 'SOLD_OUT_FOR_NOW' ELSE r.reason END,
              CASE r.reason
                WHEN 'REPEATED_KEY' THEN 'the same idempotency key is being claimed in this batch'
                WHEN 'SALE_NOT_FOUND' THEN format('no sale %s', p_sales[r.i])
                WHEN 'SALE_ENDED' THEN format('sale %s has ended', p_sales[r.i])
                WHEN 'SALE_NOT_STARTED' THEN format('sale %s has not started', p_sales[r.i])
                ELSE format('sale %s is paused', p_sales[r.i]) END,
              NULL::text[], 0::bigint, NULL::bigint, NULL::bigint, NULL::bigint
            FROM unnest(v_refused, v_reasons) AS r(i, reason);
        END IF;

        -- The per-user limit: one statement counts each user's first claim in
        -- the batch (rows locked in (sale, user) order); a user's further
        -- claims in the same batch count one by one after it.
        WITH firsts AS (
          SELECT c.i, p_sales[c.i] AS sale_id, p_users[c.i] AS user_id, c.ord
          FROM unnest(v_candidates) WITH ORDINALITY AS c(i, ord)
          WHERE NOT c.i = ANY(v_again)),
        counted AS (
          INSERT INTO user_holdings AS h (sale_id, user_id, active)
            SELECT f.sale_id, f.user_id, 1 FROM firsts f ORDER BY f.ord
            ON CONFLICT (sale_id, user_id) DO UPDATE SET active = h.active + 1
              WHERE h.active < (SELECT per_user_limit FROM sales WHERE sales.id = h.sale_id)
            RETURNING h.sale_id, h.user_id)
        SELECT coalesce(array_agg(f.i) FILTER (WHERE c.sale_id IS NULL), '{}'),
            coalesce(array_agg(f.i ORDER BY f.i) FILTER (WHERE c.sale_id IS NOT NULL), '{}')
          INTO v_limited, v_pending
          FROM firsts f LEFT JOIN counted c ON c.sale_id = f.sale_id AND c.user_id = f.user_id;
        IF v_again <> '{}' THEN
          FOREACH i IN ARRAY v_again LOOP
            UPDATE user_holdings AS h SET active = h.active + 1
              FROM sales sa WHERE sa.id = h.sale_id AND h.sale_id = p_sales[i] AND h.user_id = p_users[i]
                AND h.active < sa.per_user_limit;
            IF FOUND THEN v_pending := v_pending || i; ELSE v_limited := v_limited || i; END IF;
          END LOOP;
          SELECT array_agg(x ORDER BY x) INTO v_pending FROM unnest(v_pending) AS x;
        END IF;
        IF v_limited <> '{}' THEN
          RETURN QUERY
            SELECT (l.i - 1)::int, 'refused'::text, 'LIMIT_REACHED'::text,
              format('user %s already holds or bought %s of the %s allowed', p_users[l.i], sa.per_user_limit,
                sa.per_user_limit),
              NULL::text[], 0::bigint, NULL::bigint, NULL::bigint, NULL::bigint
            FROM unnest(v_limited) AS l(i) JOIN sales sa ON sa.id = p_sales[l.i];
        END IF;

        -- Units, sale by sale, for the claims that passed, in arrival order:
        -- returned units first, then fresh ones from shards no other
        -- transaction holds.
        FOR s IN SELECT * FROM sales
                 WHERE sales.id = ANY(ARRAY(SELECT DISTINCT p_sales[x] FROM unnest(v_pending) AS x)) LOOP
          SELECT array_agg(x ORDER BY x) INTO v_claims FROM unnest(v_pending) AS x WHERE p_sales[x] = s.id;
          v_n := cardinality(v_claims);
          v_left := flashsale_units_left(s.id);
          v_units := '{}';
          IF EXISTS (SELECT 1 FROM returned_units WHERE sale_id = s.id) THEN
            -- Returns seen for the first time restock after the delay. The
            -- stamp is read while the UPDATE runs, after its snapshot: the
            -- returns it sees committed before it. (The database's wall
            -- clock: a step forward of more than the delay's margin on its
            -- host would shorten the delay.) Units stamped here are not
            -- taken below: v_clock is earlier than their stamps.
            v_clock := (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint;
            UPDATE returned_units r
              SET restock_at = (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint
                + \(restockDelayNanoseconds)
              FROM (SELECT unit FROM returned_units WHERE sale_id = s.id AND restock_at IS NULL
                    FOR UPDATE SKIP LOCKED) fresh
              WHERE r.sale_id = s.id AND r.unit = fresh.unit;
            WITH picked AS (
              SELECT r.unit FROM returned_units r
                JOIN sale_shards sh ON sh.sale_id = r.sale_id AND sh.shard = r.unit / s.shard_size
                WHERE r.sale_id = s.id AND r.restock_at <= v_clock LIMIT v_n FOR UPDATE OF r, sh SKIP LOCKED),
            taken AS (
              DELETE FROM returned_units r USING picked p WHERE r.sale_id = s.id AND r.unit = p.unit RETURNING r.unit)
            SELECT coalesce(array_agg(t.unit), '{}') INTO v_units FROM taken t;
            UPDATE sale_shards sh SET held = sh.held + g.n, version = sh.version + g.n
              FROM (SELECT (u / s.shard_size)::int AS shard, count(*) AS n FROM unnest(v_units) AS u GROUP BY 1) g
              WHERE sh.sale_id = s.id AND sh.shard = g.shard;
          END IF;
          -- A shard's row is written once per batch, not once per unit (a
          -- row updated per claim grows a version chain per claim).
          WHILE cardinality(v_units) < v_n LOOP
            SELECT x.shard, x.next_fresh, x.end_unit INTO v_shard, v_next, v_end
              FROM sale_shards x WHERE x.sale_id = s.id AND x.next_fresh < x.end_unit
              ORDER BY x.shard LIMIT 1 FOR UPDATE SKIP LOCKED;
            EXIT WHEN NOT FOUND;
            v_take := least(v_n - cardinality(v_units), v_end - v_next);
            v_units := v_units || ARRAY(SELECT generate_series(v_next, v_next + v_take - 1));
            UPDATE sale_shards SET next_fresh = next_fresh + v_take, held = held + v_take, version = version + v_take
              WHERE sale_id = s.id AND shard = v_shard;
          END LOOP;
          v_got := cardinality(v_units);
          h_idx := h_idx || v_claims[1:v_got];
          h_units := h_units || v_units;
          h_expires := h_expires || array_fill(p_now + s.hold_duration_ns, ARRAY[v_got]);
          h_left := h_left || ARRAY(SELECT greatest(v_left - g, 0) FROM generate_series(1, v_got) AS g);
          IF v_got < v_n THEN
            -- No unit for the rest: their counts go back, and they learn why.
            UPDATE user_holdings h SET active = h.active - g.n
              FROM (SELECT p_users[x] AS user_id, count(*)::int AS n FROM unnest(v_claims[v_got + 1:v_n]) AS x
                    GROUP BY 1) g
              WHERE h.sale_id = s.id AND h.user_id = g.user_id;
            SELECT coalesce(sum(held), 0), coalesce(sum(end_unit - next_fresh), 0) INTO v_held, v_free
              FROM sale_shards WHERE sale_id = s.id;
            -- Units free but in rows other transactions hold, or returned
            -- and not yet restocked: the store runs these claims again after
            -- this batch commits, and again, a while.
            v_busy := v_free > 0 OR EXISTS (SELECT 1 FROM returned_units WHERE sale_id = s.id);
            RETURN QUERY
              SELECT (x - 1)::int, CASE WHEN v_busy THEN 'busy' ELSE 'refused' END,
                CASE WHEN v_busy OR v_held > 0 THEN 'SOLD_OUT_FOR_NOW' ELSE 'SOLD_OUT' END,
                CASE WHEN v_busy THEN 'every free unit is being claimed by another transaction or restocked'
                  WHEN v_held > 0 THEN 'every unit is held or booked; held units may come back'
                  ELSE 'every unit is booked' END,
                NULL::text[], 0::bigint, NULL::bigint, NULL::bigint, NULL::bigint
              FROM unnest(v_claims[v_got + 1:v_n]) AS x;
          END IF;
        END LOOP;

        -- The holds, in one statement, each with its fencing token.
        RETURN QUERY
          WITH inserted AS (
            INSERT INTO bookings (id, sale_id, user_id, unit, status, created_at, updated_at, hold_expires_at,
                idempotency_key, fencing_token)
              SELECT p_ids[t.i], p_sales[t.i], p_users[t.i], t.unit, 'hold', p_now, p_now, t.expires, p_keys[t.i],
                nextval('fencing_tokens')
              FROM unnest(h_idx, h_units, h_expires) WITH ORDINALITY AS t(i, unit, expires, ord)
              ORDER BY t.ord
            RETURNING id, unit, fencing_token, hold_expires_at)
          SELECT (x.i - 1)::int, 'held'::text, NULL::text, NULL::text, NULL::text[], x.l,
            b.unit, b.fencing_token, b.hold_expires_at
          FROM inserted AS b JOIN unnest(h_idx, h_left) AS x(i, l) ON b.id = p_ids[x.i];
      END
      $$
      """,
      """
      CREATE OR REPLACE PROCEDURE flashsale_claim_holds_committed(
        p_sales text[], p_users text[], p_keys text[], p_ids text[], p_now bigint,
        OUT held_idx int[], OUT held_left bigint[], OUT held_unit bigint[], OUT held_token bigint[],
        OUT held_until bigint[], OUT other_idx int[], OUT other_outcome text[], OUT other_refusal text[],
        OUT other_detail text[], OUT other_left bigint[], OUT other_booking text[])
      LANGUAGE plpgsql
      -- flashsale_claim_holds and its commit in one round trip: called in no
      -- transaction block, the procedure commits, and only then answers, so
      -- that the answer is durable (a client that sees the answer of a plain
      -- statement may see it before the commit at the end of the protocol's
      -- message series, which can still fail). A BEGIN and a COMMIT of their
      -- own cost the batch two more round trips, during which the database
      -- waited on the client. The outcomes come back as arrays: the holds;
      -- the others, each with eleven booking fields (a replay's, or empty).
      AS $$
      BEGIN
        WITH r AS MATERIALIZED (SELECT * FROM flashsale_claim_holds(p_sales, p_users, p_keys, p_ids, p_now))
        SELECT coalesce(array_agg(r.idx ORDER BY r.idx) FILTER (WHERE r.outcome = 'held'), '{}'),
            coalesce(array_agg(r.units_left ORDER BY r.idx) FILTER (WHERE r.outcome = 'held'), '{}'),
            coalesce(array_agg(r.held_unit ORDER BY r.idx) FILTER (WHERE r.outcome = 'held'), '{}'),
            coalesce(array_agg(r.held_token ORDER BY r.idx) FILTER (WHERE r.outcome = 'held'), '{}'),
            coalesce(array_agg(r.held_until ORDER BY r.idx) FILTER (WHERE r.outcome = 'held'), '{}'),
            coalesce(array_agg(r.idx ORDER BY r.idx) FILTER (WHERE r.outcome <> 'held'), '{}'),
            coalesce(array_agg(r.outcome ORDER BY r.idx) FILTER (WHERE r.outcome <> 'held'), '{}'),
            coalesce(array_agg(coalesce(r.refusal, '') ORDER BY r.idx) FILTER (WHERE r.outcome <> 'held'), '{}'),
            coalesce(array_agg(coalesce(r.detail, '') ORDER BY r.idx) FILTER (WHERE r.outcome <> 'held'), '{}'),
            coalesce(array_agg(r.units_left ORDER BY r.idx) FILTER (WHERE r.outcome <> 'held'), '{}'),
            coalesce((SELECT array_agg(f.field ORDER BY o.idx, f.n)
              FROM r AS o, unnest(coalesce(o.booking, array_fill(''::text, ARRAY[11])))
                WITH ORDINALITY AS f(field, n)
              WHERE o.outcome <> 'held'), '{}')
          INTO held_idx, held_left, held_unit, held_token, held_until, other_idx, other_outcome, other_refusal,
            other_detail, other_left, other_booking
          FROM r;
        COMMIT;
      END
      $$
      """,
      """
      CREATE OR REPLACE FUNCTION flashsale_booking_step(p_op text, p_id text, p_token bigint, p_reason text, p_now bigint)
      RETURNS TABLE (refusal text, detail text, booking text[]) LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE
        b bookings;
        v_shard_size bigint;
      BEGIN
        refusal := NULL; detail := NULL; booking := NULL;
        SELECT * INTO b FROM bookings WHERE id = p_id FOR UPDATE;
        IF NOT FOUND THEN
          refusal := 'BOOKING_NOT_FOUND'; detail := format('no booking %s', p_id);
          RETURN NEXT; RETURN;
        END IF;
        IF p_token IS NOT NULL AND p_token <> b.fencing_token THEN
          refusal := 'STALE_FENCING_TOKEN';
          detail := format('fencing token %s is not booking %s''s (%s)', p_token, p_id, b.fencing_token);
          RETURN NEXT; RETURN;
        END IF;
        IF p_op = 'confirm' THEN
          IF b.status = 'released' THEN
            refusal := 'BOOKING_RELEASED'; detail := format('booking %s was released', p_id);
          ELSIF b.status = 'expired' THEN
            refusal := 'HOLD_EXPIRED'; detail := format('the hold of booking %s expired', p_id);
          ELSIF b.status = 'hold' THEN
            IF p_now >= b.hold_expires_at THEN
              b := flashsale_end_hold(b, 'expired', NULL, p_now);
              refusal := 'HOLD_EXPIRED'; detail := format('the hold of booking %s expired', p_id);
            ELSE
              SELECT shard_size INTO v_shard_size FROM sales WHERE id = b.sale_id;
              UPDATE bookings SET status = 'booked', updated_at = p_now WHERE id = p_id RETURNING * INTO b;
              UPDATE sale_shards SET held = held - 1, booked = booked + 1, version = version + 1
                WHERE sale_id = b.sale_id AND shard = b.unit / v_shard_size;
            END IF;
          END IF;
        ELSIF p_op = 'cancel' THEN
          IF b.status = 'booked' THEN
            refusal := 'BOOKING_CONFIRMED';
            detail := format('booking %s is confirmed; a booked unit is returned with Release', p_id);
          ELSIF b.status = 'hold' THEN
            b := flashsale_end_hold(b, 'released', 'cancelled', p_now);
          END IF;
        ELSIF p_op = 'release' THEN
          IF b.status IN ('hold', 'booked') THEN
            b := flashsale_end_hold(b, 'released', p_reason, p_now);
          END IF;
        END IF;
        booking := flashsale_booking_text(b);
        RETURN NEXT;
      END
      $$
      """,
      """
      CREATE OR REPLACE FUNCTION flashsale_expire_holds(p_now bigint, p_limit int)
      RETURNS TABLE (booking text[]) LANGUAGE plpgsql AS $$
      #variable_conflict use_column
      DECLARE
        v_ids text[];
        b bookings;
      BEGIN
        -- The due holds no other transaction holds, then their users' rows in
        -- (sale, user) order, then their shards' rows in (sale, shard) order:
        -- the lock order claims and cancels follow too.
        SELECT coalesce(array_agg(d.id), '{}') INTO v_ids FROM (
          SELECT id FROM bookings WHERE status = 'hold' AND hold_expires_at <= p_now
          ORDER BY hold_expires_at LIMIT p_limit FOR UPDATE SKIP LOCKED) d;
        PERFORM 1 FROM user_holdings h
          WHERE (h.sale_id, h.user_id) IN (SELECT x.sale_id, x.user_id FROM bookings x WHERE x.id = ANY(v_ids))
          ORDER BY h.sale_id, h.user_id FOR UPDATE;
        PERFORM 1 FROM sale_shards sh
          WHERE (sh.sale_id, sh.shard) IN (
            SELECT x.sale_id, (x.unit / sa.shard_size)::int FROM bookings x JOIN sales sa ON sa.id = x.sale_id
            WHERE x.id = ANY(v_ids))
          ORDER BY sh.sale_id, sh.shard FOR UPDATE;
        FOR b IN SELECT * FROM bookings WHERE id = ANY(v_ids) ORDER BY hold_expires_at, id LOOP
          b := flashsale_end_hold(b, 'expired', NULL, p_now);
          booking := flashsale_booking_text(b);
          RETURN NEXT;
        END LOOP;
      END
      $$
      """,
      """
      CREATE OR REPLACE PROCEDURE flashsale_expire_holds_committed(p_now bigint, p_limit int, OUT expired text[])
      LANGUAGE plpgsql
      -- flashsale_expire_holds and its commit in one round trip, as
      -- flashsale_claim_holds_committed: every instance runs it five times a
      -- second. The expired bookings come back in one array, eleven fields each.
      AS $$
      BEGIN
        SELECT coalesce(array_agg(f.field ORDER BY e.n, f.n), '{}') INTO expired
          FROM flashsale_expire_holds(p_now, p_limit) WITH ORDINALITY AS e(booking, n),
            unnest(e.booking) WITH ORDINALITY AS f(field, n);
        COMMIT;
      END
      $$
      """,
  ]
}
