import FlashSaleDomain
import RPCCore

/// The page tokens of list calls: where the next page starts, as
/// `<created-at-ns>.<id>` in base64, so that callers treat them as opaque.
enum PageToken {
  static func encode(createdAt: Timestamp, id: String) -> String {
    Base64.encode(Array("\(createdAt.nanosecondsSinceEpoch).\(id)".utf8), padded: false)
  }

  /// The position a token names; nil for the empty token (the first page).
  static func decode(_ token: String) throws(DomainError) -> (createdAt: Timestamp, id: String)? {
    if token.isEmpty { return nil }
    guard token.utf8.count <= 256, let bytes = Base64.decode(token),
      case let text = String(decoding: bytes, as: UTF8.self), let dot = text.firstIndex(of: "."),
      let nanos = Int64(text[..<dot])
    else {
      throw DomainError(.invalidArgument, "page_token: not a token this service issued", field: "page_token")
    }
    return (Timestamp(nanosecondsSinceEpoch: nanos), String(text[text.index(after: dot)...]))
  }
}
