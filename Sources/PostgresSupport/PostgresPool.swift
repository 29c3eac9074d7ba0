public import FlashSaleDomain
import Foundation
public import Logging
public import PostgresNIO

/// A pool of connections to one PostgreSQL database, from a
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` URL, with what every
/// store on it needs: migrations run once under an advisory lock, and
/// transactions re-run when PostgreSQL aborted them for a conflict.
public final class PostgresPool: Sendable {
  /// The pool.
  public let client: PostgresClient
  public let logger: Logger
  private let runner: Task<Void, Never>

  /// A pool of at most `maximumConnections` to the database at `url`; it
  /// connects on first use.
  public init(url: String, maximumConnections: Int, logger: Logger) throws {
    guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
      let host = components.host, let user = components.user
    else {
      throw DomainError(
        .invalidArgument, "store: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, got \(url)",
        field: "store")
    }
    let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
    var configuration = PostgresClient.Configuration(
      host: host, port: components.port ?? 5432, username: user, password: components.password,
      database: database.isEmpty ? nil : database, tls: .disable)
    configuration.options.maximumConnections = maximumConnections
    configuration.options.minimumConnections = 1
    // The pool's own messages (reconnects, a lease before run() started)
    // are noise below errors.
    var background = logger
    background.logLevel = .error
    let client = PostgresClient(configuration: configuration, backgroundLogger: background)
    self.client = client
    self.logger = logger
    self.runner = Task { await client.run() }
  }

  /// Closes the connections.
  public func shutdown() {
    runner.cancel()
  }

  deinit {
    runner.cancel()
  }

  /// Runs the migrations (each a list of statements) that `versionTable`
  /// says this database has not seen, then `always` (functions replaced at
  /// every start), in one transaction under the advisory lock `lock`, so
  /// that instances starting together migrate once.
  public func migrate(
    lock: Int64, versionTable: String, migrations: [[String]], always: [String] = []
  ) async throws {
    let logger = self.logger
    try await transaction { connection in
      try await connection.query("SELECT pg_advisory_xact_lock(\(lock))", logger: logger)
      try await connection.query(
        PostgresQuery(unsafeSQL: "CREATE TABLE IF NOT EXISTS \(versionTable) (version int NOT NULL)"), logger: logger)
      var version = 0
      for try await value in try await connection.query(
        PostgresQuery(unsafeSQL: "SELECT version FROM \(versionTable)"), logger: logger
      ).decode(Int.self) {
        version = value
      }
      guard version <= migrations.count else {
        throw StoreFault(
          "\(versionTable) is at schema version \(version), newer than this build knows (\(migrations.count))")
      }
      for statements in migrations.dropFirst(version) {
        for statement in statements {
          try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        }
      }
      try await connection.query(PostgresQuery(unsafeSQL: "DELETE FROM \(versionTable)"), logger: logger)
      try await connection.query(
        PostgresQuery(unsafeSQL: "INSERT INTO \(versionTable) (version) VALUES (\(migrations.count))"), logger: logger)
      for statement in always {
        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
      }
    }
  }

  /// Runs `body` in a transaction (BEGIN … COMMIT, ROLLBACK when it throws).
  /// What it throws comes out as itself, not wrapped in postgres-nio's
  /// `PostgresTransactionError`, so that callers can match refusals and
  /// conflict codes.
  public func transaction<T: Sendable>(
    _ body: (PostgresConnection) async throws -> sending T
  ) async throws -> sending T {
    do {
      return try await client.withTransaction(logger: logger, body)
    } catch let error as PostgresTransactionError {
      throw error.closureError ?? error.commitError ?? error.beginError ?? error
    }
  }

  /// Runs `body` again when PostgreSQL aborted its transaction to break a
  /// deadlock or a serialization conflict between instances, or for a unique
  /// key another instance committed first: the aborted transaction applied
  /// nothing, and the next run sees what the other one did.
  public func retryingConflicts<T>(_ body: () async throws -> T) async throws -> T {
    var attempt = 0
    while true {
      do {
        return try await body()
      } catch let error as PSQLError
        where ["40P01", "40001", "23505"].contains(error.serverInfo?[.sqlState] ?? "") && attempt < 5
      {
        attempt += 1
        logger.debug("transaction conflict; retrying", metadata: ["attempt": "\(attempt)"])
        try await Task.sleep(for: .milliseconds(Int64.random(in: 1...(5 << attempt))))
      }
    }
  }

  /// Runs raw SQL, bypassing every rule: for tests that corrupt a store on
  /// purpose and expect an audit to notice.
  public func executeUncheckedForTesting(_ sql: String) async throws {
    try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
  }
}
