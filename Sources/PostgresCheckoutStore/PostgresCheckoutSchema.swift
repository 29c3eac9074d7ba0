/// The checkout's tables in the sale core's PostgreSQL database: checkouts
/// with their step log, orders, and the transactional outbox.
///
/// ## The outbox under concurrent writers
///
/// Sequence values are handed out at `nextval`, not at commit: with a
/// sequence, a reader could see position 8 committed while 7 is still in
/// flight, skip it, and never see it. So positions are not drawn from a
/// sequence: one row, `transaction_event_head`, holds the last position
/// given out, and a transaction that emits events bumps it as its last
/// statement before COMMIT. The row lock it takes is held until that
/// transaction ends, so the next writer reads the bumped value only after
/// the previous one committed (or rolled back, which gives the numbers back).
/// Hence positions are consecutive and committed in order: a reader always
/// sees a prefix of the stream, never a gap that fills later.
///
/// The price is that transactions emitting events commit one at a time.
/// They are the checkout's steps, which wait on the payment provider between
/// commits; the hot path of a flash sale (claims) does not touch this row.
enum PostgresCheckoutSchema {
  /// Each migration, in order; a migration is a list of statements.
  static let migrations: [[String]] = [
    [
      """
      CREATE TABLE checkouts (
        id text PRIMARY KEY,
        booking_id text NOT NULL UNIQUE,
        fencing_token bigint NOT NULL,
        sale_id text NOT NULL,
        user_id text NOT NULL,
        currency text NOT NULL,
        amount_minor bigint NOT NULL,
        payment_method_token text NOT NULL,
        idempotency_key text NOT NULL,
        state text NOT NULL CHECK (state IN ('running', 'completed', 'compensating', 'compensated')),
        payment text NOT NULL,
        payment_id text,
        order_status text,
        order_id text,
        unit text NOT NULL,
        failure_reason text,
        revision bigint NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL,
        UNIQUE (user_id, idempotency_key)
      )
      """,
      "CREATE INDEX checkouts_unfinished ON checkouts (updated_at) WHERE state IN ('running', 'compensating')",
      "CREATE INDEX checkouts_by_sale ON checkouts (sale_id)",
      """
      CREATE TABLE checkout_steps (
        checkout_id text NOT NULL REFERENCES checkouts (id),
        sequence int NOT NULL,
        name text NOT NULL,
        status text NOT NULL CHECK (status IN ('started', 'succeeded', 'failed', 'compensated')),
        attempt int NOT NULL,
        detail text NOT NULL,
        started_at bigint NOT NULL,
        finished_at bigint,
        PRIMARY KEY (checkout_id, sequence)
      )
      """,
      """
      CREATE TABLE orders (
        id text PRIMARY KEY,
        checkout_id text NOT NULL UNIQUE REFERENCES checkouts (id),
        booking_id text NOT NULL,
        sale_id text NOT NULL,
        user_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'completed', 'cancelled')),
        currency text NOT NULL,
        amount_minor bigint NOT NULL,
        payment_id text,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      )
      """,
      "CREATE INDEX orders_by_user ON orders (user_id, created_at DESC, id DESC)",
      "CREATE INDEX orders_by_sale ON orders (sale_id, created_at DESC, id DESC)",
      """
      CREATE TABLE transaction_events (
        position bigint PRIMARY KEY,
        id text NOT NULL UNIQUE,
        kind text NOT NULL,
        checkout_id text NOT NULL,
        booking_id text NOT NULL,
        sale_id text NOT NULL,
        user_id text NOT NULL,
        order_id text,
        payment_id text,
        currency text NOT NULL,
        amount_minor bigint NOT NULL,
        occurred_at bigint NOT NULL
      )
      """,
      "CREATE INDEX transaction_events_by_checkout ON transaction_events (checkout_id)",
      """
      CREATE TABLE transaction_event_head (
        id int PRIMARY KEY CHECK (id = 1),
        last_position bigint NOT NULL
      )
      """,
      "INSERT INTO transaction_event_head (id, last_position) VALUES (1, 0)",
    ]
  ]
}
