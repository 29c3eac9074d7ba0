import SQLiteSupport

/// The checkout's tables in the sale core's SQLite file: checkouts with their
/// step log, orders, and the transactional outbox. They sit beside the sale
/// core's tables so that reconciliation is a SQL join; their migrations are
/// counted apart from the sale core's, in `schema_migrations`.
///
/// The outbox's `position` is assigned inside the writing transaction as the
/// last position plus one. SQLite has one writer at a time, so positions are
/// consecutive and in commit order.
enum SQLiteCheckoutSchema {
  static let component = "checkout"

  /// Each migration, in order.
  static let migrations: [String] = [
    """
    CREATE TABLE checkouts (
      id TEXT PRIMARY KEY,
      booking_id TEXT NOT NULL UNIQUE,
      fencing_token INTEGER NOT NULL,
      sale_id TEXT NOT NULL,
      user_id TEXT NOT NULL,
      currency TEXT NOT NULL,
      amount_minor INTEGER NOT NULL,
      payment_method_token TEXT NOT NULL,
      idempotency_key TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('running', 'completed', 'compensating', 'compensated')),
      payment TEXT NOT NULL,
      payment_id TEXT,
      order_status TEXT,
      order_id TEXT,
      unit TEXT NOT NULL,
      failure_reason TEXT,
      revision INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      UNIQUE (user_id, idempotency_key)
    );
    CREATE INDEX checkouts_unfinished ON checkouts (created_at) WHERE state IN ('running', 'compensating');
    CREATE INDEX checkouts_by_sale ON checkouts (sale_id);
    CREATE TABLE checkout_steps (
      checkout_id TEXT NOT NULL REFERENCES checkouts (id),
      sequence INTEGER NOT NULL,
      name TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('started', 'succeeded', 'failed', 'compensated')),
      attempt INTEGER NOT NULL,
      detail TEXT NOT NULL,
      started_at INTEGER NOT NULL,
      finished_at INTEGER,
      PRIMARY KEY (checkout_id, sequence)
    ) WITHOUT ROWID;
    CREATE TABLE orders (
      id TEXT PRIMARY KEY,
      checkout_id TEXT NOT NULL UNIQUE REFERENCES checkouts (id),
      booking_id TEXT NOT NULL,
      sale_id TEXT NOT NULL,
      user_id TEXT NOT NULL,
      status TEXT NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled')),
      currency TEXT NOT NULL,
      amount_minor INTEGER NOT NULL,
      payment_id TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    );
    CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, id DESC);
    CREATE INDEX orders_by_sale ON orders (sale_id, created_at DESC, id DESC);
    CREATE TABLE transaction_events (
      position INTEGER PRIMARY KEY,
      id TEXT NOT NULL UNIQUE,
      kind TEXT NOT NULL,
      checkout_id TEXT NOT NULL,
      booking_id TEXT NOT NULL,
      sale_id TEXT NOT NULL,
      user_id TEXT NOT NULL,
      order_id TEXT,
      payment_id TEXT,
      currency TEXT NOT NULL,
      amount_minor INTEGER NOT NULL,
      occurred_at INTEGER NOT NULL
    );
    CREATE INDEX transaction_events_by_checkout ON transaction_events (checkout_id);
    """
  ]

  /// Runs the migrations the database has not seen yet, in one transaction.
  static func migrate(_ connection: SQLiteConnection) throws {
    try connection.transaction {
      try connection.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
      let version =
        try connection.queryFirst(
          "SELECT version FROM schema_migrations WHERE component = ?", .text(component)
        ) { Int($0.int64(0)) } ?? 0
      guard version <= migrations.count else {
        throw SQLiteError(
          code: 1,
          message:
            "the checkout tables are at schema version \(version), newer than this build knows (\(migrations.count))")
      }
      for migration in migrations.dropFirst(version) {
        try connection.execute(migration)
      }
      try connection.run(
        "INSERT INTO schema_migrations (component, version) VALUES (?, ?) ON CONFLICT (component) DO UPDATE SET version = excluded.version",
        .text(component), .integer(Int64(migrations.count)))
    }
  }
}
