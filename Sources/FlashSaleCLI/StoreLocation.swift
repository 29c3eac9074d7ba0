import ArgumentParser
import FlashSaleCheckout
import FlashSaleDomain
import PostgresCheckoutStore
import PostgresSaleStore
import SQLiteCheckoutStore
import SQLiteSaleStore

/// Where the sale core's data lives, from `--store`: `sqlite:PATH` (the
/// embedded default) or `postgres://USER@HOST:PORT/DB`.
enum StoreLocation: ExpressibleByArgument, CustomStringConvertible {
  case sqlite(path: String)
  case postgres(url: String)

  init?(argument: String) {
    if argument.hasPrefix("sqlite:") {
      let path = String(argument.dropFirst("sqlite:".count))
      guard !path.isEmpty else { return nil }
      self = .sqlite(path: path)
    } else if argument.hasPrefix("postgres://") || argument.hasPrefix("postgresql://") {
      self = .postgres(url: argument)
    } else {
      return nil
    }
  }

  var description: String {
    switch self {
    case .sqlite(let path): "sqlite:\(path)"
    case .postgres(let url): url
    }
  }

  /// Opens the store, running its migrations. `serving`: for `flashsale
  /// serve`, which holds an SQLite store for itself (one process serves a file).
  func open(serving: Bool = false) async throws -> any SaleStore {
    switch self {
    case .sqlite(let path):
      return try SQLiteSaleStore(path: path, exclusive: serving)
    case .postgres(let url):
      return try await PostgresSaleStore.connect(url: url)
    }
  }

  /// A file named `name` beside an SQLite store's file (else in the working directory).
  func sibling(_ name: String) -> String {
    guard case .sqlite(let path) = self, let slash = path.lastIndex(of: "/") else { return name }
    return String(path[...slash]) + name
  }

  /// Opens the checkout's tables in the same database as the sale core.
  func openCheckoutStore() async throws -> any CheckoutStore {
    switch self {
    case .sqlite(let path):
      return try SQLiteCheckoutStore(path: path)
    case .postgres(let url):
      return try await PostgresCheckoutStore.connect(url: url)
    }
  }
}
