import CSQLite

/// A value bound to a statement parameter.
public enum SQLiteValue: Hashable, Sendable {
  case integer(Int64)
  case text(String)
  case null

  /// `text`, or NULL when `nil`.
  public static func optionalText(_ value: String?) -> SQLiteValue {
    value.map(SQLiteValue.text) ?? .null
  }

  /// `integer`, or NULL when `nil`.
  public static func optionalInteger(_ value: Int64?) -> SQLiteValue {
    value.map(SQLiteValue.integer) ?? .null
  }
}

/// A prepared statement, owned and cached by its ``SQLiteConnection``.
public final class SQLiteStatement {
  private let handle: OpaquePointer
  private unowned let connection: SQLiteConnection
  /// The SQL text, for error messages.
  public let sql: String

  init(_ handle: OpaquePointer, connection: SQLiteConnection, sql: String) {
    self.handle = handle
    self.connection = connection
    self.sql = sql
  }

  deinit {
    sqlite3_finalize(handle)
  }

  /// Binds `values` to parameters 1, 2, … in order.
  public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
    for (offset, value) in values.enumerated() {
      let index = Int32(offset + 1)
      let rc: Int32
      switch value {
      case .integer(let v): rc = sqlite3_bind_int64(handle, index, v)
      case .null: rc = sqlite3_bind_null(handle, index)
      case .text(let s):
        rc = s.withCString { sqlite3_bind_text(handle, index, $0, Int32(s.utf8.count), flashsale_sqlite_transient()) }
      }
      guard rc == SQLITE_OK else { throw SQLiteError(code: rc, message: connection.lastErrorMessage, sql: sql) }
    }
  }

  /// Advances to the next row: `true` when there is one, `false` when done.
  public func step() throws(SQLiteError) -> Bool {
    let rc = sqlite3_step(handle)
    switch rc {
    case SQLITE_ROW: return true
    case SQLITE_DONE: return false
    default:
      let error = SQLiteError(code: rc, message: connection.lastErrorMessage, sql: sql)
      sqlite3_reset(handle)
      throw error
    }
  }

  /// Makes the statement ready to run again, keeping no bindings.
  public func reset() {
    sqlite3_reset(handle)
    sqlite3_clear_bindings(handle)
  }

  fileprivate func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
  fileprivate func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
  fileprivate func withTextBytes<T>(_ column: Int32, _ body: (UnsafeRawBufferPointer) -> T) -> T {
    guard let bytes = sqlite3_column_text(handle, column) else { return body(UnsafeRawBufferPointer(start: nil, count: 0)) }
    // The length after sqlite3_column_text, as SQLite asks.
    return body(UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, column))))
  }
  fileprivate func text(_ column: Int32) -> String {
    guard let bytes = sqlite3_column_text(handle, column) else { return "" }
    let count = Int(sqlite3_column_bytes(handle, column))
    return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
  }
}

/// The current row of a statement being stepped; valid only inside the row closure.
public struct SQLiteRow {
  fileprivate let statement: SQLiteStatement

  init(statement: SQLiteStatement) {
    self.statement = statement
  }

  public func int64(_ column: Int32) -> Int64 { statement.int64(column) }
  public func int32(_ column: Int32) -> Int32 { Int32(truncatingIfNeeded: statement.int64(column)) }
  public func text(_ column: Int32) -> String { statement.text(column) }
  public func optionalText(_ column: Int32) -> String? { statement.isNull(column) ? nil : statement.text(column) }
  public func optionalInt64(_ column: Int32) -> Int64? { statement.isNull(column) ? nil : statement.int64(column) }
  /// The UTF-8 bytes of a text column, without making a `String`; valid only inside `body`.
  public func withTextBytes<T>(_ column: Int32, _ body: (UnsafeRawBufferPointer) -> T) -> T {
    statement.withTextBytes(column, body)
  }
}
