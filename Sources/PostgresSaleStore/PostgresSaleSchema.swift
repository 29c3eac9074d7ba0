/// The tables and functions of the sale core in PostgreSQL, for several
/// service instances sharing one database.
///
/// Claims must not serialize on one hot row, so a sale's units are split in
/// up to 64 shards (blocks of units), each a row with its own "next fresh
/// unit" and its own counters. A batch of claims locks the first shard no
/// other transaction holds (`FOR UPDATE SKIP LOCKED`) and takes units from it;
/// units given back wait in `returned_units`, claimed the same way. Counts and
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
  ]

  /// The functions, replaced at every start-up (after the migrations, under
  /// the same lock): they are code, so a new build brings its own. A change
  /// to a function's result columns needs a migration that drops it first
  /// (`CREATE OR REPLACE` cannot change them), and in a rolling deploy the
  /// instances still running get the new functions too: keep them compatible
  /// with the previous build's calls.
  static let functions: [String] = [
      """
      CREATE OR REPLACE FUNCTION flashsale_booking_text(b bookings) RETURNS text[] LANGUAGE plpgsql IMMUTABLE AS $$
      -- PL/pgSQL, not SQL: the claim function calls it once per hold, and a
      -- SQL-language function called from PL/pgSQL is parsed and planned
      -- again at every call (that was a third of the database's CPU per claim).
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
        INSERT INTO returned_units (sale_id, unit) VALUES (b.sale_id, b.unit);
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
      CREATE OR REPLACE FUNCTION flashsale_claim_batch(p_sales text[], p_users text[], p_keys text[], p_ids text[], p_now bigint)
      RETURNS TABLE (idx int, outcome text, refusal text, detail text, booking text[], units_left bigint)
      LANGUAGE plpgsql
      -- Every statement here finds rows by key. In the first minutes of a sale
      -- the bookings table grows faster than its statistics: the planner,
      -- still believing it small, scanned all of it for the batch's keys.
      SET enable_seqscan = off
      AS $$
      #variable_conflict use_column
      -- Statements per batch where they can be, per claim only where a claim's
      -- outcome needs its own (the user's counter row); every statement costs
      -- the executor a start-up, which dominated the claim's CPU.
      -- Lock order, so that no two transactions wait on each other in a cycle:
      --   1. the batch's idempotency keys (advisory locks), in hash order;
      --   2. in (sale, user) order: the users' counter rows (the per-user limit);
      --   3. only with SKIP LOCKED: a shard, or a returned unit with its shard.
      -- Cancels and the expiry job lock user rows before shard rows too.
      DECLARE
        i int;
        s sales;
        existing bookings;
        v_unit bigint;
        v_active int;
        v_held bigint;
        v_free bigint;
        v_pending int[] := '{}';
        -- Claims that passed the key and sale checks, in (sale, user) order;
        -- those of a user already among them; the users whose counter rose.
        v_candidates int[] := '{}';
        v_again int[] := '{}';
        v_counted jsonb;
        v_ok boolean;
        -- Keys already in the store, and claims repeating a key earlier in
        -- this batch (they run again after it commits, and replay; the store
        -- sends each key once, so this only keeps a repeat from failing the
        -- batch with a unique violation should a caller send one).
        v_existing text[];
        v_repeats int[];
        -- Whether the current sale may have returned units to take.
        v_returned boolean;
        -- Units left per sale: read before the batch takes any, then counted
        -- down by its holds.
        v_left jsonb := '{}';
        v_sale_left bigint;
        -- The shard this batch draws fresh units from: locked (SKIP LOCKED) for
        -- the whole transaction, its row written once when the batch moves on
        -- (updating one row per claim would grow a version chain per claim).
        v_block_sale text;
        v_block_shard int;
        v_block_next bigint;
        v_block_end bigint;
        v_block_used bigint := 0;
        -- The holds, inserted together at the end.
        h_idx int[] := '{}';
        h_ids text[] := '{}';
        h_sales text[] := '{}';
        h_users text[] := '{}';
        h_units bigint[] := '{}';
        h_expires bigint[] := '{}';
        h_keys text[] := '{}';
        h_left bigint[] := '{}';
      BEGIN
        -- A retry of a claim still in flight in another transaction waits
        -- here for it to commit, then finds its booking and replays it.
        PERFORM pg_advisory_xact_lock(x.h)
          FROM (SELECT DISTINCT hashtextextended(k, 0) AS h FROM unnest(p_keys) AS k ORDER BY 1) AS x;
        SELECT coalesce(array_agg(b.idempotency_key), '{}') INTO v_existing
          FROM bookings b WHERE b.idempotency_key = ANY(p_keys);
        SELECT coalesce(array_agg(t.ord::int), '{}') INTO v_repeats FROM (
            SELECT ord, row_number() OVER (PARTITION BY k ORDER BY ord) AS nth
            FROM unnest(p_keys) WITH ORDINALITY AS u(k, ord)) AS t
          WHERE t.nth > 1;

        -- Pass 1, in (sale, user) order: keys, the sale's checks.
        FOR i IN SELECT t.ord FROM unnest(p_sales, p_users) WITH ORDINALITY AS t(sale_id, user_id, ord)
                 ORDER BY t.sale_id COLLATE "C", t.user_id COLLATE "C", t.ord LOOP
          idx := i - 1; outcome := 'refused'; refusal := NULL; detail := NULL; booking := NULL; units_left := 0;
          IF p_keys[i] = ANY(v_existing) THEN
            SELECT * INTO existing FROM bookings WHERE bookings.idempotency_key = p_keys[i];
            IF existing.sale_id <> p_sales[i] OR existing.user_id <> p_users[i] THEN
              refusal := 'IDEMPOTENCY_KEY_REUSED';
              detail := format('idempotency key "%s" was used for another sale or user', p_keys[i]);
            ELSE
              outcome := 'replayed';
              booking := flashsale_booking_text(existing);
              units_left := flashsale_units_left(p_sales[i]);
            END IF;
            RETURN NEXT;
            CONTINUE;
          END IF;
          IF i = ANY(v_repeats) THEN
            outcome := 'busy';
            refusal := 'SOLD_OUT_FOR_NOW'; detail := 'the same idempotency key is being claimed in this batch';
            RETURN NEXT; CONTINUE;
          END IF;
          IF s.id IS DISTINCT FROM p_sales[i] THEN  -- sorted by sale: one read per sale
            SELECT * INTO s FROM sales WHERE sales.id = p_sales[i];
            IF NOT FOUND THEN
              s := NULL;
              refusal := 'SALE_NOT_FOUND'; detail := format('no sale %s', p_sales[i]);
              RETURN NEXT; CONTINUE;
            END IF;
          END IF;
          IF s.closed_at IS NOT NULL OR p_now >= s.ends_at THEN
            refusal := 'SALE_ENDED'; detail := format('sale %s has ended', s.id);
            RETURN NEXT; CONTINUE;
          END IF;
          IF p_now < s.starts_at THEN
            refusal := 'SALE_NOT_STARTED'; detail := format('sale %s has not started', s.id);
            RETURN NEXT; CONTINUE;
          END IF;
          IF s.paused_at IS NOT NULL THEN
            refusal := 'SALE_PAUSED'; detail := format('sale %s is paused', s.id);
            RETURN NEXT; CONTINUE;
          END IF;
          -- Sorted by (sale, user): a user's second claim in the batch follows the first.
          IF v_candidates <> '{}' AND p_sales[v_candidates[cardinality(v_candidates)]] = s.id
              AND p_users[v_candidates[cardinality(v_candidates)]] = p_users[i] THEN
            v_again := v_again || i;
          END IF;
          v_candidates := v_candidates || i;
        END LOOP;

        -- The per-user limit: one statement counts each user's first claim in
        -- the batch (rows locked in (sale, user) order); a user's further
        -- claims in the same batch, rare, count one by one after it.
        WITH first_claims AS (
          SELECT DISTINCT p_sales[x] AS sale_id, p_users[x] AS user_id
          FROM unnest(v_candidates) AS x WHERE NOT x = ANY(v_again)),
        counted AS (
          INSERT INTO user_holdings AS h (sale_id, user_id, active)
            SELECT f.sale_id, f.user_id, 1 FROM first_claims f ORDER BY f.sale_id COLLATE "C", f.user_id COLLATE "C"
            ON CONFLICT (sale_id, user_id) DO UPDATE SET active = h.active + 1
              WHERE h.active < (SELECT per_user_limit FROM sales WHERE sales.id = h.sale_id)
            RETURNING h.sale_id, h.user_id)
        SELECT coalesce(jsonb_object_agg(c.sale_id || chr(31) || c.user_id, true), '{}') INTO v_counted FROM counted c;
        s := NULL;
        FOREACH i IN ARRAY v_candidates LOOP
          idx := i - 1; outcome := 'refused'; refusal := NULL; detail := NULL; booking := NULL; units_left := 0;
          IF s.id IS DISTINCT FROM p_sales[i] THEN
            SELECT * INTO s FROM sales WHERE sales.id = p_sales[i];
          END IF;
          IF i = ANY(v_again) THEN
            v_active := NULL;
            UPDATE user_holdings AS h SET active = h.active + 1
              WHERE h.sale_id = s.id AND h.user_id = p_users[i] AND h.active < s.per_user_limit
              RETURNING h.active INTO v_active;
            v_ok := v_active IS NOT NULL;
          ELSE
            v_ok := v_counted ? (s.id || chr(31) || p_users[i]);
          END IF;
          IF NOT v_ok THEN
            refusal := 'LIMIT_REACHED';
            detail := format('user %s already holds or bought %s of the %s allowed', p_users[i], s.per_user_limit,
              s.per_user_limit);
            RETURN NEXT; CONTINUE;
          END IF;
          v_pending := v_pending || i;
        END LOOP;

        -- Pass 2, in arrival order: a unit for each claim that passed.
        s := NULL;
        FOREACH i IN ARRAY (SELECT coalesce(array_agg(x ORDER BY x), '{}') FROM unnest(v_pending) AS x) LOOP
          idx := i - 1; outcome := 'refused'; refusal := NULL; detail := NULL; booking := NULL; units_left := 0;
          IF s.id IS DISTINCT FROM p_sales[i] THEN
            IF s.id IS NOT NULL THEN v_left := jsonb_set(v_left, ARRAY[s.id], to_jsonb(v_sale_left)); END IF;
            SELECT * INTO s FROM sales WHERE sales.id = p_sales[i];
            v_returned := EXISTS (SELECT 1 FROM returned_units WHERE sale_id = s.id);
            v_sale_left := coalesce((v_left ->> s.id)::bigint, flashsale_units_left(s.id));
          END IF;
          v_unit := NULL;
          IF v_returned THEN
            -- A returned unit whose shard row no other transaction holds.
            SELECT r.unit INTO v_unit FROM returned_units r
              JOIN sale_shards sh ON sh.sale_id = r.sale_id AND sh.shard = r.unit / s.shard_size
              WHERE r.sale_id = s.id LIMIT 1 FOR UPDATE OF r, sh SKIP LOCKED;
            IF v_unit IS NOT NULL THEN
              DELETE FROM returned_units WHERE sale_id = s.id AND unit = v_unit;
              UPDATE sale_shards SET held = held + 1, version = version + 1
                WHERE sale_id = s.id AND shard = v_unit / s.shard_size;
            ELSE
              v_returned := false;  -- none free for this batch: fresh units from here on
            END IF;
          END IF;
          IF v_unit IS NULL THEN
            IF v_block_sale IS DISTINCT FROM s.id OR v_block_next >= v_block_end THEN
              -- Write back the shard used so far, then lock the next one no
              -- other transaction holds.
              IF v_block_sale IS NOT NULL THEN
                UPDATE sale_shards SET next_fresh = v_block_next, held = held + v_block_used,
                    version = version + v_block_used
                  WHERE sale_id = v_block_sale AND shard = v_block_shard;
              END IF;
              v_block_sale := NULL; v_block_used := 0;
              SELECT x.shard, x.next_fresh, x.end_unit INTO v_block_shard, v_block_next, v_block_end
                FROM sale_shards x WHERE x.sale_id = s.id AND x.next_fresh < x.end_unit
                ORDER BY x.shard LIMIT 1 FOR UPDATE SKIP LOCKED;
              IF FOUND THEN v_block_sale := s.id; END IF;
            END IF;
            IF v_block_sale IS NOT NULL THEN
              v_unit := v_block_next;
              v_block_next := v_block_next + 1;
              v_block_used := v_block_used + 1;
            END IF;
          END IF;
          IF v_unit IS NULL THEN
            UPDATE user_holdings SET active = active - 1 WHERE sale_id = s.id AND user_id = p_users[i];
            SELECT coalesce(sum(held), 0), coalesce(sum(end_unit - next_fresh), 0) INTO v_held, v_free
              FROM sale_shards WHERE sale_id = s.id;
            IF v_free > 0 OR EXISTS (SELECT 1 FROM returned_units WHERE sale_id = s.id) THEN
              -- Units are free, but in rows other transactions hold: the
              -- store runs this claim again after this batch commits.
              outcome := 'busy';
              refusal := 'SOLD_OUT_FOR_NOW'; detail := 'every free unit is being claimed by another transaction';
            ELSIF v_held > 0 THEN
              refusal := 'SOLD_OUT_FOR_NOW'; detail := 'every unit is held or booked; held units may come back';
            ELSE
              refusal := 'SOLD_OUT'; detail := 'every unit is booked';
            END IF;
            RETURN NEXT; CONTINUE;
          END IF;
          v_sale_left := greatest(v_sale_left - 1, 0);
          h_idx := h_idx || (i - 1); h_ids := h_ids || p_ids[i]; h_sales := h_sales || s.id;
          h_users := h_users || p_users[i]; h_units := h_units || v_unit;
          h_expires := h_expires || (p_now + s.hold_duration_ns); h_keys := h_keys || p_keys[i];
          h_left := h_left || v_sale_left;
        END LOOP;
        IF v_block_sale IS NOT NULL THEN
          UPDATE sale_shards SET next_fresh = v_block_next, held = held + v_block_used, version = version + v_block_used
            WHERE sale_id = v_block_sale AND shard = v_block_shard;
        END IF;

        -- The holds, in one statement, each with its fencing token.
        RETURN QUERY
          WITH inserted AS (
            INSERT INTO bookings (id, sale_id, user_id, unit, status, created_at, updated_at, hold_expires_at,
                idempotency_key, fencing_token)
              SELECT t.id, t.sale_id, t.user_id, t.unit, 'hold', p_now, p_now, t.expires, t.key, nextval('fencing_tokens')
              FROM unnest(h_ids, h_sales, h_users, h_units, h_expires, h_keys)
                WITH ORDINALITY AS t(id, sale_id, user_id, unit, expires, key, ord)
              ORDER BY t.ord
            RETURNING *)
          SELECT x.i, 'held'::text, NULL::text, NULL::text, flashsale_booking_text(inserted::bookings), x.l
          FROM inserted JOIN unnest(h_ids, h_idx, h_left) AS x(id, i, l) ON x.id = inserted.id;
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
  ]
}
