import SQLiteSupport

/// The tables of the sale core in SQLite, and their migrations.
///
/// A sale's units are not rows until taken: units `next_fresh_unit ..< quantity`
/// were never claimed, units given back wait in `returned_units`, and the
/// unit a booking takes is on its row. So creating a sale of millions of units
/// writes one row, and a claim writes one booking. SQLite has one writer at a
/// time anyway; what keeps claims fast is that they come in batches of many per
/// transaction (see ``Batcher`` and ``SaleCore``).
///
/// The sale row keeps counters (`held`, `booked`) updated in the same
/// transaction as the bookings, so that counts are one row read; the audit
/// checks them against the rows. A partial unique index makes it impossible
/// to take one unit twice, whatever the code above does. Idempotency keys and
/// users are not indexed in the file: the writer keeps them in memory
/// (``SQLiteClaimIndex``), and the audit checks keys used twice and users
/// above their limit.
enum SQLiteSaleSchema {
  /// Each migration, in order; `PRAGMA user_version` is how many have run.
  static let migrations: [String] = [
    """
    CREATE TABLE sales (
      id TEXT PRIMARY KEY,
      item_id TEXT NOT NULL,
      item_name TEXT NOT NULL,
      description TEXT NOT NULL,
      currency TEXT NOT NULL,
      price_minor INTEGER NOT NULL,
      quantity INTEGER NOT NULL CHECK (quantity > 0),
      starts_at INTEGER NOT NULL,
      ends_at INTEGER NOT NULL,
      per_user_limit INTEGER NOT NULL CHECK (per_user_limit > 0),
      hold_duration_ns INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      paused_at INTEGER,
      closed_at INTEGER,
      idempotency_key TEXT UNIQUE,
      next_fresh_unit INTEGER NOT NULL DEFAULT 0,
      next_token INTEGER NOT NULL DEFAULT 0,
      held INTEGER NOT NULL DEFAULT 0,
      booked INTEGER NOT NULL DEFAULT 0,
      stock_version INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sales_newest_first ON sales (created_at DESC, id DESC);
    CREATE TABLE returned_units (
      sale_id TEXT NOT NULL REFERENCES sales (id),
      unit INTEGER NOT NULL,
      PRIMARY KEY (sale_id, unit)
    ) WITHOUT ROWID;
    CREATE TABLE bookings (
      id TEXT PRIMARY KEY,
      sale_id TEXT NOT NULL REFERENCES sales (id),
      user_id TEXT NOT NULL,
      unit INTEGER NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('hold', 'booked', 'released', 'expired')),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      hold_expires_at INTEGER NOT NULL,
      idempotency_key TEXT NOT NULL UNIQUE,
      fencing_token INTEGER NOT NULL,
      release_reason TEXT
    );
    CREATE UNIQUE INDEX bookings_one_taker_per_unit ON bookings (sale_id, unit) WHERE status IN ('hold', 'booked');
    CREATE INDEX bookings_taken_by_user ON bookings (sale_id, user_id) WHERE status IN ('hold', 'booked');
    CREATE INDEX bookings_hold_deadlines ON bookings (hold_expires_at) WHERE status = 'hold';
    """,
    // 2: the status CHECK as comparisons. SQLite evaluates `IN (4 values)` by
    // building a temporary table at every INSERT, which cost ~3% of a claim.
    """
    CREATE TABLE bookings_v2 (
      id TEXT PRIMARY KEY,
      sale_id TEXT NOT NULL REFERENCES sales (id),
      user_id TEXT NOT NULL,
      unit INTEGER NOT NULL,
      status TEXT NOT NULL
        CHECK (status = 'hold' OR status = 'booked' OR status = 'released' OR status = 'expired'),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      hold_expires_at INTEGER NOT NULL,
      idempotency_key TEXT NOT NULL UNIQUE,
      fencing_token INTEGER NOT NULL,
      release_reason TEXT
    );
    INSERT INTO bookings_v2 SELECT id, sale_id, user_id, unit, status, created_at, updated_at, hold_expires_at,
      idempotency_key, fencing_token, release_reason FROM bookings;
    DROP TABLE bookings;
    ALTER TABLE bookings_v2 RENAME TO bookings;
    CREATE UNIQUE INDEX bookings_one_taker_per_unit ON bookings (sale_id, unit) WHERE status IN ('hold', 'booked');
    CREATE INDEX bookings_taken_by_user ON bookings (sale_id, user_id) WHERE status IN ('hold', 'booked');
    CREATE INDEX bookings_hold_deadlines ON bookings (hold_expires_at) WHERE status = 'hold';
    """,
    // 3: each of a user's holds and bookings in a sale takes one of the
    // user's slots (0 ..< the per-user limit), and a unique index on (sale,
    // user, slot) over the rows that take a unit enforces the limit. A claim
    // is then one INSERT, which this index refuses for a user at the limit
    // as the key's refuses a reused key, instead of a lookup of both before
    // every INSERT (~4.5 us of the ~55 us a hold cost the server). Rows
    // written before get their slots in the order they were written.
    """
    ALTER TABLE bookings ADD COLUMN user_slot INTEGER;
    UPDATE bookings SET user_slot = (
      SELECT count(*) FROM bookings AS earlier
      WHERE earlier.sale_id = bookings.sale_id AND earlier.user_id = bookings.user_id
        AND earlier.status IN ('hold', 'booked') AND earlier.rowid < bookings.rowid)
    WHERE status IN ('hold', 'booked');
    DROP INDEX bookings_taken_by_user;
    CREATE UNIQUE INDEX bookings_user_slots ON bookings (sale_id, user_id, user_slot)
      WHERE status IN ('hold', 'booked');
    """,
    // 4: no index on idempotency keys or users: their values come in no
    // order, and a B-tree over them cost a random page per claim in every
    // commit (~19 KB of log per hold). The writer keeps them in memory
    // instead (SQLiteClaimIndex); what stays indexed grows with time.
    """
    CREATE TABLE bookings_v4 (
      id TEXT PRIMARY KEY,
      sale_id TEXT NOT NULL REFERENCES sales (id),
      user_id TEXT NOT NULL,
      unit INTEGER NOT NULL,
      status TEXT NOT NULL
        CHECK (status = 'hold' OR status = 'booked' OR status = 'released' OR status = 'expired'),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      hold_expires_at INTEGER NOT NULL,
      idempotency_key TEXT NOT NULL,
      fencing_token INTEGER NOT NULL,
      release_reason TEXT
    );
    INSERT INTO bookings_v4 SELECT id, sale_id, user_id, unit, status, created_at, updated_at, hold_expires_at,
      idempotency_key, fencing_token, release_reason FROM bookings ORDER BY rowid;
    DROP TABLE bookings;
    ALTER TABLE bookings_v4 RENAME TO bookings;
    CREATE UNIQUE INDEX bookings_one_taker_per_unit ON bookings (sale_id, unit) WHERE status IN ('hold', 'booked');
    CREATE INDEX bookings_hold_deadlines ON bookings (hold_expires_at) WHERE status = 'hold';
    """,
  ]

  /// Runs the migrations the database has not seen yet, each in a transaction.
  static func migrate(_ connection: SQLiteConnection) throws {
    try connection.transaction {
      let version = Int(try connection.pragmaInteger("user_version"))
      guard version <= migrations.count else {
        throw SQLiteError(
          code: 1,
          message: "the database is at schema version \(version), newer than this build knows (\(migrations.count))")
      }
      for (index, migration) in migrations.enumerated().dropFirst(version) {
        try connection.execute(migration)
        try connection.execute("PRAGMA user_version = \(index + 1)")
      }
    }
  }
}
