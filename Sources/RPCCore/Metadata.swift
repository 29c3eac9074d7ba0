/// Custom metadata of a call: ordered key-value pairs sent as HTTP/2 headers or
/// trailers.
///
/// Keys are lower-case ASCII (letters, digits, `-`, `_`, `.`); keys ending in
/// `-bin` carry binary values, base64-encoded on the wire (un-padded when
/// sent, padded or not when received). A key may appear several times.
///
/// ```swift
/// var metadata: Metadata = ["x-request-id": "42"]
/// metadata.add("trace-bin", .binary([0x01, 0x02]))
/// metadata["x-request-id"]  // "42"
/// ```
public struct Metadata: Hashable, Sendable, ExpressibleByDictionaryLiteral {
  /// A metadata value: text for ordinary keys, bytes for `-bin` keys.
  public enum Value: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    case string(String)
    case binary([UInt8])

    public init(stringLiteral value: String) {
      self = .string(value)
    }

    /// The text value, or `nil` for a binary one.
    public var stringValue: String? {
      if case .string(let s) = self { return s }
      return nil
    }

    /// The binary value, or `nil` for a text one.
    public var binaryValue: [UInt8]? {
      if case .binary(let b) = self { return b }
      return nil
    }

    public var description: String {
      switch self {
      case .string(let s): s
      case .binary(let b): Base64.encode(b, padded: true)
      }
    }
  }

  /// One key and its value.
  public struct Entry: Hashable, Sendable {
    public var key: String
    public var value: Value
  }

  private var entries: [Entry]

  /// Empty metadata.
  public init() {
    self.entries = []
  }

  public init(dictionaryLiteral elements: (String, Value)...) {
    self.entries = elements.map { Entry(key: Metadata.normalize($0.0), value: $0.1) }
  }

  /// The entries in order.
  public var all: [Entry] { entries }

  /// The number of entries.
  public var count: Int { entries.count }

  /// Whether there are no entries.
  public var isEmpty: Bool { entries.isEmpty }

  /// Appends a text value under `key`.
  public mutating func add(_ key: String, _ value: String) {
    entries.append(Entry(key: Metadata.normalize(key), value: .string(value)))
  }

  /// Appends a value under `key`.
  public mutating func add(_ key: String, _ value: Value) {
    entries.append(Entry(key: Metadata.normalize(key), value: value))
  }

  /// Appends every entry of `other`.
  public mutating func add(contentsOf other: Metadata) {
    entries.append(contentsOf: other.entries)
  }

  /// Removes every value of `key`, then adds `value` (or nothing, for `nil`).
  public mutating func replace(_ key: String, with value: Value?) {
    let key = Metadata.normalize(key)
    entries.removeAll { $0.key == key }
    if let value { entries.append(Entry(key: key, value: value)) }
  }

  /// Removes every value of `key`.
  public mutating func removeAll(_ key: String) {
    let key = Metadata.normalize(key)
    entries.removeAll { $0.key == key }
  }

  /// Every value of `key`, in order.
  public func values(_ key: String) -> [Value] {
    let key = Metadata.normalize(key)
    return entries.filter { $0.key == key }.map(\.value)
  }

  /// The first text value of `key`; setting replaces every value of `key`.
  public subscript(key: String) -> String? {
    get {
      let key = Metadata.normalize(key)
      return entries.first { $0.key == key }?.value.stringValue
    }
    set {
      replace(key, with: newValue.map { .string($0) })
    }
  }

  /// The first binary value of `key` (a `-bin` key).
  public func binary(_ key: String) -> [UInt8]? {
    let key = Metadata.normalize(key)
    return entries.first { $0.key == key }?.value.binaryValue
  }

  private static func normalize(_ key: String) -> String {
    let noUpperCase = allUTF8(key) { $0 < UInt8(ascii: "A") || $0 > UInt8(ascii: "Z") }
    return noUpperCase ? key : key.lowercased()
  }

  /// Whether every UTF-8 byte of `text` satisfies `test`: over the string's
  /// contiguous bytes when it has them (native strings do), which is several
  /// times faster than the generic UTF-8 view iterator. Keys and values of
  /// every call sent pass through here.
  @inline(__always)
  static func allUTF8(_ text: String, _ test: (UInt8) -> Bool) -> Bool {
    if let result = text.utf8.withContiguousStorageIfAvailable({ bytes in
      for byte in bytes where !test(byte) { return false }
      return true
    }) {
      return result
    }
    return text.utf8.allSatisfy(test)
  }
}

extension Metadata: Sequence {
  public func makeIterator() -> IndexingIterator<[Entry]> {
    entries.makeIterator()
  }
}

extension Metadata: CustomStringConvertible {
  public var description: String {
    "[" + entries.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "]"
  }
}

// MARK: - Wire form

extension Metadata {
  /// Whether `key` may be sent as custom metadata: lower-case letters, digits,
  /// `-`, `_` and `.`, not a pseudo-header, and not one the protocol reserves.
  public static func isValidCustomKey(_ key: String) -> Bool {
    // Checked for every key of every call sent: the characters first, then
    // the reserved names of the same length only (a comparison of two long
    // strings costs the runtime ~80 instructions).
    let utf8 = key.utf8
    guard !utf8.isEmpty,
      allUTF8(key, { c in
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
          || c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
      }),
      !utf8.starts(with: "grpc-".utf8)
    else { return false }
    switch utf8.count {
    case 2: return key != "te"
    case 4: return key != "host"
    case 7: return key != "upgrade"
    case 10: return key != "user-agent" && key != "connection" && key != "keep-alive"
    case 12: return key != "content-type"
    case 16: return key != "proxy-connection"
    case 17: return key != "transfer-encoding"
    default: return true
    }
  }

  /// The header value to send for `value` under `key`, or `nil` when the value
  /// cannot be sent (a text value with bytes outside printable ASCII).
  public static func wireValue(key: String, value: Value) -> String? {
    if key.utf8.suffix(4).elementsEqual("-bin".utf8) {
      switch value {
      case .binary(let bytes): return Base64.encode(bytes, padded: false)
      case .string(let s): return Base64.encode(Array(s.utf8), padded: false)
      }
    }
    guard case .string(let s) = value, allUTF8(s, { $0 >= 0x20 && $0 <= 0x7E }) else { return nil }
    return s
  }

  /// Adds a text header received from the wire, whose key is already lower
  /// case (HTTP/2 requires it) and does not end in `-bin`.
  public mutating func add(wireKey key: String, text value: String) {
    if entries.capacity == 0 { entries.reserveCapacity(4) }  // one allocation for the usual few
    entries.append(Entry(key: key, value: .string(value)))
  }

  /// Adds a header received from the wire: `-bin` values are base64-decoded
  /// (padded or not). Returns `false`, adding nothing, for an undecodable value.
  @discardableResult
  public mutating func addWire(key: String, value: String) -> Bool {
    if entries.capacity == 0 { entries.reserveCapacity(4) }
    if key.hasSuffix("-bin") {
      guard let bytes = Base64.decode(value) else { return false }
      entries.append(Entry(key: key, value: .binary(bytes)))
    } else {
      entries.append(Entry(key: key, value: .string(value)))
    }
    return true
  }
}
