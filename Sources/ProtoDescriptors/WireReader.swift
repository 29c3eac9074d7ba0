/// Why bytes are not a valid protobuf encoding.
public struct WireFormatError: Error, Hashable, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// The wire types of the protobuf encoding.
public enum WireType: UInt8, Sendable {
  case varint = 0
  case fixed64 = 1
  case lengthDelimited = 2
  case startGroup = 3
  case endGroup = 4
  case fixed32 = 5
}

/// Reads the protobuf wire format field by field, bounds-checked: a
/// truncated or malformed encoding throws ``WireFormatError``, never traps.
public struct WireReader {
  private let bytes: [UInt8]
  private var index: Int
  private let end: Int

  /// A reader of `bytes[range]` (all of it by default).
  public init(_ bytes: [UInt8], range: Range<Int>? = nil) {
    self.bytes = bytes
    self.index = range?.lowerBound ?? 0
    self.end = range?.upperBound ?? bytes.count
  }

  /// Whether every byte was read.
  public var isAtEnd: Bool { index >= end }

  /// The next field's number and wire type, or nil at the end.
  public mutating func nextField() throws(WireFormatError) -> (number: Int, type: WireType)? {
    guard !isAtEnd else { return nil }
    let key = try varint()
    guard let type = WireType(rawValue: UInt8(key & 7)) else {
      throw WireFormatError("invalid wire type \(key & 7)")
    }
    let number = key >> 3
    guard number >= 1, number <= 536_870_911 else { throw WireFormatError("invalid field number \(number)") }
    return (Int(number), type)
  }

  public mutating func varint() throws(WireFormatError) -> UInt64 {
    var result: UInt64 = 0
    var shift: UInt64 = 0
    while true {
      guard index < end else { throw WireFormatError("truncated varint") }
      let byte = bytes[index]
      index += 1
      if shift == 63 && byte > 1 { throw WireFormatError("varint longer than 64 bits") }
      result |= UInt64(byte & 0x7f) << shift
      if byte & 0x80 == 0 { return result }
      shift += 7
      if shift > 63 { throw WireFormatError("varint longer than 10 bytes") }
    }
  }

  public mutating func fixed32() throws(WireFormatError) -> UInt32 {
    guard end - index >= 4 else { throw WireFormatError("truncated fixed32") }
    var value: UInt32 = 0
    for i in 0..<4 { value |= UInt32(bytes[index + i]) << (8 * UInt32(i)) }
    index += 4
    return value
  }

  public mutating func fixed64() throws(WireFormatError) -> UInt64 {
    guard end - index >= 8 else { throw WireFormatError("truncated fixed64") }
    var value: UInt64 = 0
    for i in 0..<8 { value |= UInt64(bytes[index + i]) << (8 * UInt64(i)) }
    index += 8
    return value
  }

  /// The range of a length-delimited field's payload, skipped over.
  public mutating func lengthDelimitedRange() throws(WireFormatError) -> Range<Int> {
    let length = try varint()
    guard length <= UInt64(end - index) else { throw WireFormatError("length \(length) past the end of the message") }
    let range = index..<(index + Int(length))
    index += Int(length)
    return range
  }

  public mutating func bytesField() throws(WireFormatError) -> [UInt8] {
    Array(bytes[try lengthDelimitedRange()])
  }

  /// A string field; invalid UTF-8 is an error.
  public mutating func string() throws(WireFormatError) -> String {
    let range = try lengthDelimitedRange()
    guard let string = String(validating: bytes[range], as: UTF8.self) else {
      throw WireFormatError("invalid UTF-8 in a string field")
    }
    return string
  }

  /// A reader of an embedded message's bytes.
  public mutating func message() throws(WireFormatError) -> WireReader {
    WireReader(bytes, range: try lengthDelimitedRange())
  }

  /// Skips a field of `type` (groups are skipped to their end).
  public mutating func skip(_ type: WireType, number: Int = 0, depth: Int = 0) throws(WireFormatError) {
    switch type {
    case .varint: _ = try varint()
    case .fixed64: _ = try fixed64()
    case .fixed32: _ = try fixed32()
    case .lengthDelimited: _ = try lengthDelimitedRange()
    case .startGroup:
      guard depth < 64 else { throw WireFormatError("groups nested too deeply") }
      while true {
        guard let field = try nextField() else { throw WireFormatError("unterminated group") }
        if field.type == .endGroup {
          guard field.number == number else { throw WireFormatError("mismatched end of group") }
          return
        }
        try skip(field.type, number: field.number, depth: depth + 1)
      }
    case .endGroup: throw WireFormatError("unexpected end of group")
    }
  }
}

/// Writes the protobuf wire format.
public struct WireWriter {
  public private(set) var bytes: [UInt8] = []

  public init() {}

  public mutating func key(_ number: Int, _ type: WireType) {
    varint(UInt64(number) << 3 | UInt64(type.rawValue))
  }

  public mutating func varint(_ value: UInt64) {
    var value = value
    while value >= 0x80 {
      bytes.append(UInt8(value & 0x7f) | 0x80)
      value >>= 7
    }
    bytes.append(UInt8(value))
  }

  public mutating func fixed32(_ value: UInt32) {
    for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))) }
  }

  public mutating func fixed64(_ value: UInt64) {
    for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
  }

  public mutating func lengthDelimited(_ payload: [UInt8]) {
    varint(UInt64(payload.count))
    bytes += payload
  }
}
