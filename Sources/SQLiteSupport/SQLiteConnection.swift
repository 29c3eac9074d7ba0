import CSQLite

/// A failed SQLite call: its result code and SQLite's own message.
public struct SQLiteError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The extended result code (`SQLITE_FULL`, `SQLITE_IOERR_FSYNC`, …).
  public var code: Int32
  public var message: String
  /// The statement that failed, when there was one.
  public var sql: String?

  public init(code: Int32, message: String, sql: String? = nil) {
    self.code = code
    self.message = message
    self.sql = sql
  }

  /// Whether the database or its volume is full.
  public var isFull: Bool { code & 0xff == SQLITE_FULL }

  /// Whether a constraint refused the statement (a unique index, a CHECK);
  /// SQLite undid that statement, and the transaction goes on.
  public var isConstraintViolation: Bool { code & 0xff == SQLITE_CONSTRAINT }

  public var description: String {
    let name = String(cString: sqlite3_errstr(code))
    if let sql { return "sqlite: \(message) (\(name), code \(code)) in: \(sql)" }
    return "sqlite: \(message) (\(name), code \(code))"
  }
}

/// One connection to an SQLite database file.
///
/// Not thread-safe: its owner confines it to one thread or serial queue at a
/// time (SQLite's own mutexes are off, `SQLITE_OPEN_NOMUTEX`). Prepared
/// statements are cached by their SQL text and reused.
public final class SQLiteConnection {
  private let handle: OpaquePointer
  private var statements: [String: SQLiteStatement] = [:]

  /// How a connection is opened.
  public enum Mode: Sendable {
    /// Read and write; the file is created when missing.
    case readWriteCreate
    /// Read only; the file must exist.
    case readOnly
  }

  /// Process-wide settings, made once before the first connection opens.
  private static let configured: Void = {
    // Memory statistics off: a claim batch allocates per row, and each
    // allocation took a global mutex (~5% of the writer thread's samples).
    _ = flashsale_sqlite_disable_memory_statistics()
  }()

  /// The bytes SQLite has allocated in this process, as its statistics count
  /// them: 0 while they are off, as they are from the first connection on.
  public static var memoryUsedAsCounted: Int64 { sqlite3_memory_used() }

  /// Opens the database at `path`.
  public init(path: String, mode: Mode = .readWriteCreate) throws(SQLiteError) {
    Self.configured
    var db: OpaquePointer?
    var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
    switch mode {
    case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
    case .readOnly: flags |= SQLITE_OPEN_READONLY
    }
    let rc = sqlite3_open_v2(path, &db, flags, nil)
    guard rc == SQLITE_OK, let db else {
      let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
      sqlite3_close_v2(db)
      throw SQLiteError(code: rc, message: "cannot open \(path): \(message)")
    }
    handle = db
    sqlite3_extended_result_codes(db, 1)
  }

  /// The file SQLite actually opened for the main database (symbolic links
  /// resolved), and its write-ahead log beside it.
  public var databaseFile: String { String(cString: sqlite3_db_filename(handle, "main")) }
  public var walFile: String { String(cString: sqlite3_filename_wal(sqlite3_db_filename(handle, "main"))) }

  /// Rows changed by INSERT, UPDATE and DELETE since the connection opened:
  /// tells whether a piece of work wrote anything.
  public var totalChanges: Int64 { sqlite3_total_changes64(handle) }

  /// The rowid of the row the last successful INSERT added.
  public var lastInsertedRowID: Int64 { sqlite3_last_insert_rowid(handle) }

  deinit {
    statements.removeAll()  // statements finalize before the connection closes
    sqlite3_close_v2(handle)
  }

  /// Runs one or more statements that return no rows (schema, pragmas).
  public func execute(_ sql: String) throws(SQLiteError) {
    var message: UnsafeMutablePointer<CChar>?
    let rc = sqlite3_exec(handle, sql, nil, nil, &message)
    if rc != SQLITE_OK {
      let text = message.map { String(cString: $0) } ?? lastErrorMessage
      sqlite3_free(message)
      throw SQLiteError(code: rc, message: text, sql: sql)
    }
  }

  /// The prepared statement for `sql`, reset and ready for new bindings.
  public func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
    if let cached = statements[sql] {
      cached.reset()
      return cached
    }
    var raw: OpaquePointer?
    let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
    guard rc == SQLITE_OK, let raw else {
      throw SQLiteError(code: rc, message: lastErrorMessage, sql: sql)
    }
    let statement = SQLiteStatement(raw, connection: self, sql: sql)
    statements[sql] = statement
    return statement
  }

  /// Runs `sql` with `arguments` and returns each row mapped by `row`.
  public func query<T>(
    _ sql: String, _ arguments: SQLiteValue..., row: (SQLiteRow) throws -> T
  ) throws -> [T] {
    try query(sql, arguments: arguments, row: row)
  }

  /// ``query(_:_:row:)`` with the arguments in an array.
  public func query<T>(
    _ sql: String, arguments: [SQLiteValue], row: (SQLiteRow) throws -> T
  ) throws -> [T] {
    let statement = try statement(sql)
    try statement.bind(arguments)
    defer { statement.reset() }  // also when `row` throws: no read snapshot stays pinned
    var rows: [T] = []
    while try statement.step() {
      rows.append(try row(SQLiteRow(statement: statement)))
    }
    return rows
  }

  /// Runs `sql` with `arguments`; returns the first row mapped by `row`, if any.
  public func queryFirst<T>(
    _ sql: String, _ arguments: SQLiteValue..., row: (SQLiteRow) throws -> T
  ) throws -> T? {
    try queryFirst(sql, arguments: arguments, row: row)
  }

  /// ``queryFirst(_:_:row:)`` with the arguments in an array.
  public func queryFirst<T>(
    _ sql: String, arguments: [SQLiteValue], row: (SQLiteRow) throws -> T
  ) throws -> T? {
    let statement = try statement(sql)
    try statement.bind(arguments)
    defer { statement.reset() }
    return try statement.step() ? row(SQLiteRow(statement: statement)) : nil
  }

  /// Runs a statement that returns no rows; returns how many rows it changed.
  @discardableResult
  public func run(_ sql: String, _ arguments: SQLiteValue...) throws(SQLiteError) -> Int {
    let statement = try statement(sql)
    try statement.bind(arguments)
    while try statement.step() {}
    return Int(sqlite3_changes(handle))
  }

  /// Runs `body` in a write transaction (`BEGIN IMMEDIATE`), committing when
  /// it returns and rolling back when it throws. The commit is durable as far
  /// as the connection's `synchronous` setting makes it.
  public func transaction<T>(_ body: () throws -> T) throws -> T {
    try execute("BEGIN IMMEDIATE")
    let result: T
    do {
      result = try body()
    } catch {
      try? execute("ROLLBACK")
      throw error
    }
    do {
      try execute("COMMIT")
    } catch {
      // A failed COMMIT (disk full, I/O error) may leave the transaction open.
      if sqlite3_get_autocommit(handle) == 0 { try? execute("ROLLBACK") }
      throw error
    }
    return result
  }

  /// The value of a pragma that returns one integer.
  public func pragmaInteger(_ name: String) throws -> Int64 {
    try queryFirst("PRAGMA \(name)") { $0.int64(0) } ?? 0
  }

  var lastErrorMessage: String { String(cString: sqlite3_errmsg(handle)) }
}
