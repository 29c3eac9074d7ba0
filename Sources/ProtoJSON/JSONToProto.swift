public import ProtoDescriptors

/// How JSON input is read.
public struct JSONParseOptions: Sendable {
  /// Skip members that name no field (and enum names that name no value)
  /// instead of refusing them.
  public var ignoreUnknownFields: Bool
  public var limits: JSONLimits

  public init(ignoreUnknownFields: Bool = false, limits: JSONLimits = JSONLimits()) {
    self.ignoreUnknownFields = ignoreUnknownFields
    self.limits = limits
  }
}

/// Transcodes between the proto3 JSON mapping and the protobuf binary
/// encoding, driven by descriptors (any message of `pool`), with no
/// generated code per message.
public struct ProtoJSONTranscoder: Sendable {
  public let pool: DescriptorPool

  public init(pool: DescriptorPool) {
    self.pool = pool
  }

  func message(_ name: String, path: String) throws(TranscodeError) -> MessageDescriptor {
    guard let descriptor = pool.messages[name] else {
      throw TranscodeError(path: path, "unknown message type \(name)")
    }
    return descriptor
  }

  // MARK: JSON → binary

  /// The binary encoding of the JSON text `json` as a `messageType`.
  public func encode(json: [UInt8], as messageType: String, options: JSONParseOptions = JSONParseOptions())
    throws(TranscodeError) -> [UInt8]
  {
    let value = try JSONParser.parse(json, limits: options.limits)
    return try encode(value, as: messageType, options: options)
  }

  /// The binary encoding of `value` as a `messageType`.
  public func encode(_ value: JSONValue, as messageType: String, options: JSONParseOptions = JSONParseOptions())
    throws(TranscodeError) -> [UInt8]
  {
    var writer = WireWriter()
    try encodeMessage(value, try message(messageType, path: ""), path: "", options: options, into: &writer)
    return writer.bytes
  }

  func encodeMessage(
    _ value: JSONValue, _ descriptor: MessageDescriptor, path: String, options: JSONParseOptions,
    into writer: inout WireWriter
  ) throws(TranscodeError) {
    if let special = WellKnownJSON.kind(of: descriptor.fullName) {
      try WellKnownJSON.encode(value, special, descriptor, transcoder: self, path: path, options: options, into: &writer)
      return
    }
    guard case .object(let members) = value else {
      throw TranscodeError(path: path, "expected an object, got \(value.kind)")
    }
    var byField: [Int: (FieldDescriptor, JSONValue, String)] = [:]
    var oneofSeen: [Int: String] = [:]
    for (key, member) in members {
      guard let field = descriptor.fields.first(where: { $0.jsonName == key || $0.name == key }) else {
        if options.ignoreUnknownFields { continue }
        throw TranscodeError(path: join(path, key), "unknown field (\(descriptor.fullName) has no field \(key))")
      }
      let fieldPath = join(path, field.jsonName)
      if byField[field.number] != nil {
        throw TranscodeError(path: fieldPath, "given twice")
      }
      if let oneof = field.oneofIndex, member != .null || isValueField(field) {
        if let other = oneofSeen[oneof] {
          throw TranscodeError(
            path: fieldPath, "\(other) is set already: at most one field of oneof \(descriptor.oneofs[oneof]) may be")
        }
        oneofSeen[oneof] = field.jsonName
      }
      byField[field.number] = (field, member, fieldPath)
    }
    for number in byField.keys.sorted() {
      let (field, member, fieldPath) = byField[number]!
      try encodeField(field, member, path: fieldPath, options: options, into: &writer)
    }
  }

  private func isValueField(_ field: FieldDescriptor) -> Bool {
    field.kind == .message && field.typeName == "google.protobuf.Value"
  }

  private func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

  func encodeField(
    _ field: FieldDescriptor, _ value: JSONValue, path: String, options: JSONParseOptions,
    into writer: inout WireWriter
  ) throws(TranscodeError) {
    if value == .null, !isValueField(field) { return }  // null: the field is left unset
    if field.isRepeated, field.kind == .message, let entry = pool.messages[field.typeName ?? ""], entry.isMapEntry {
      guard case .object(let members) = value else {
        throw TranscodeError(path: path, "expected an object (a map), got \(value.kind)")
      }
      let keyField = entry.fields.first { $0.number == 1 }!
      let valueField = entry.fields.first { $0.number == 2 }!
      for (key, element) in members {
        let elementPath = path + "[\(key)]"
        var entryWriter = WireWriter()
        try encodeSingle(keyField, try mapKey(key, keyField, path: elementPath), path: elementPath, options: options, into: &entryWriter)
        if element == .null, !isValueField(valueField) {
          throw TranscodeError(path: elementPath, "a map value may not be null")
        }
        try encodeSingle(valueField, element, path: elementPath, options: options, into: &entryWriter)
        writer.key(field.number, .lengthDelimited)
        writer.lengthDelimited(entryWriter.bytes)
      }
      return
    }
    if field.isRepeated {
      guard case .array(let elements) = value else {
        throw TranscodeError(path: path, "expected an array, got \(value.kind)")
      }
      for (index, element) in elements.enumerated() {
        let elementPath = path + "[\(index)]"
        if element == .null, !isValueField(field) {
          throw TranscodeError(path: elementPath, "an array element may not be null")
        }
        try encodeSingle(field, element, path: elementPath, options: options, into: &writer)
      }
      return
    }
    try encodeSingle(field, value, path: path, options: options, into: &writer)
  }

  /// A map key (always a JSON string) as the JSON value its key type reads.
  private func mapKey(_ key: String, _ field: FieldDescriptor, path: String) throws(TranscodeError) -> JSONValue {
    switch field.kind {
    case .string: return .string(key)
    case .bool:
      guard key == "true" || key == "false" else { throw TranscodeError(path: path, "a bool map key must be true or false") }
      return .bool(key == "true")
    default: return .string(key)  // integers are accepted as strings
    }
  }

  func encodeSingle(
    _ field: FieldDescriptor, _ value: JSONValue, path: String, options: JSONParseOptions,
    into writer: inout WireWriter
  ) throws(TranscodeError) {
    switch field.kind {
    case .message, .group:
      let descriptor = try message(field.typeName ?? "", path: path)
      var nested = WireWriter()
      try encodeMessage(value, descriptor, path: path, options: options, into: &nested)
      writer.key(field.number, .lengthDelimited)
      writer.lengthDelimited(nested.bytes)
    case .enumeration:
      guard let number = try enumNumber(value, field, path: path, options: options) else { return }
      writer.key(field.number, .varint)
      writer.varint(UInt64(bitPattern: Int64(number)))
    case .string:
      guard case .string(let s) = value else { throw TranscodeError(path: path, "expected string, got \(value.kind)") }
      writer.key(field.number, .lengthDelimited)
      writer.lengthDelimited(Array(s.utf8))
    case .bytes:
      guard case .string(let s) = value else { throw TranscodeError(path: path, "expected base64 string, got \(value.kind)") }
      guard let bytes = Base64Text.decode(s) else { throw TranscodeError(path: path, "invalid base64") }
      writer.key(field.number, .lengthDelimited)
      writer.lengthDelimited(bytes)
    case .bool:
      guard case .bool(let b) = value else { throw TranscodeError(path: path, "expected boolean, got \(value.kind)") }
      writer.key(field.number, .varint)
      writer.varint(b ? 1 : 0)
    case .int32, .sint32, .sfixed32:
      let n = try JSONNumbers.integer(value, path: path, range: Int64(Int32.min)...Int64(Int32.max), type: "int32")
      Self.writeSigned(field, n, into: &writer)
    case .int64, .sint64, .sfixed64:
      let n = try JSONNumbers.integer(value, path: path, range: Int64.min...Int64.max, type: "int64")
      Self.writeSigned(field, n, into: &writer)
    case .uint32, .fixed32:
      let n = try JSONNumbers.unsigned(value, path: path, maximum: UInt64(UInt32.max), type: "uint32")
      if field.kind == .fixed32 {
        writer.key(field.number, .fixed32)
        writer.fixed32(UInt32(n))
      } else {
        writer.key(field.number, .varint)
        writer.varint(n)
      }
    case .uint64, .fixed64:
      let n = try JSONNumbers.unsigned(value, path: path, maximum: UInt64.max, type: "uint64")
      if field.kind == .fixed64 {
        writer.key(field.number, .fixed64)
        writer.fixed64(n)
      } else {
        writer.key(field.number, .varint)
        writer.varint(n)
      }
    case .double:
      writer.key(field.number, .fixed64)
      writer.fixed64(try JSONNumbers.double(value, path: path).bitPattern)
    case .float:
      let d = try JSONNumbers.double(value, path: path)
      // In range when it rounds to a finite float: the largest float prints
      // as 3.4028235e+38, a hair above its exact value.
      guard d.isNaN || d.isInfinite || Float(d).isFinite else {
        throw TranscodeError(path: path, "\(d) is out of range for float")
      }
      writer.key(field.number, .fixed32)
      writer.fixed32(Float(d).bitPattern)
    }
  }

  private static func writeSigned(_ field: FieldDescriptor, _ n: Int64, into writer: inout WireWriter) {
    switch field.kind {
    case .sint32, .sint64:
      writer.key(field.number, .varint)
      writer.varint(UInt64(bitPattern: (n << 1) ^ (n >> 63)))
    case .sfixed32:
      writer.key(field.number, .fixed32)
      writer.fixed32(UInt32(bitPattern: Int32(truncatingIfNeeded: n)))
    case .sfixed64:
      writer.key(field.number, .fixed64)
      writer.fixed64(UInt64(bitPattern: n))
    default:
      writer.key(field.number, .varint)
      writer.varint(UInt64(bitPattern: n))
    }
  }

  private func enumNumber(
    _ value: JSONValue, _ field: FieldDescriptor, path: String, options: JSONParseOptions
  ) throws(TranscodeError) -> Int32? {
    guard let descriptor = pool.enums[field.typeName ?? ""] else {
      throw TranscodeError(path: path, "unknown enum type \(field.typeName ?? "?")")
    }
    switch value {
    case .string(let name):
      if let number = descriptor.number(of: name) { return number }
      if options.ignoreUnknownFields { return nil }
      throw TranscodeError(path: path, "unknown value \"\(name)\" of enum \(descriptor.fullName)")
    case .number:
      return Int32(try JSONNumbers.integer(value, path: path, range: Int64(Int32.min)...Int64(Int32.max), type: "enum"))
    default:
      throw TranscodeError(path: path, "expected an enum name or number, got \(value.kind)")
    }
  }
}

/// Numbers of the JSON mapping: integers as numbers or strings, never
/// rounded through a `Double` when they are written as integers.
enum JSONNumbers {
  static func integer(
    _ value: JSONValue, path: String, range: ClosedRange<Int64>, type: String
  ) throws(TranscodeError) -> Int64 {
    let text: String
    switch value {
    case .number(let n): text = n
    case .string(let s): text = s
    default: throw TranscodeError(path: path, "expected an integer, got \(value.kind)")
    }
    if let exact = Int64(text) {
      guard range.contains(exact) else { throw TranscodeError(path: path, "\(text) is out of range for \(type)") }
      return exact
    }
    // Exponent or fraction forms are accepted when they denote an integer.
    guard let double = Double(text), double.isFinite else {
      throw TranscodeError(path: path, "\(text) is not an integer")
    }
    guard double == double.rounded() else { throw TranscodeError(path: path, "\(text) is not an integer") }
    guard double >= Double(range.lowerBound), double < Double(range.upperBound) + 1, let exact = Int64(exactly: double)
    else { throw TranscodeError(path: path, "\(text) is out of range for \(type)") }
    return exact
  }

  static func unsigned(
    _ value: JSONValue, path: String, maximum: UInt64, type: String
  ) throws(TranscodeError) -> UInt64 {
    let text: String
    switch value {
    case .number(let n): text = n
    case .string(let s): text = s
    default: throw TranscodeError(path: path, "expected an integer, got \(value.kind)")
    }
    if let exact = UInt64(text) {
      guard exact <= maximum else { throw TranscodeError(path: path, "\(text) is out of range for \(type)") }
      return exact
    }
    if text.hasPrefix("-"), Int64(text) != nil { throw TranscodeError(path: path, "\(text) is out of range for \(type)") }
    guard let double = Double(text), double.isFinite, double == double.rounded() else {
      throw TranscodeError(path: path, "\(text) is not an integer")
    }
    guard double >= 0, double <= Double(maximum), let exact = UInt64(exactly: double) else {
      throw TranscodeError(path: path, "\(text) is out of range for \(type)")
    }
    return exact
  }

  static func double(_ value: JSONValue, path: String) throws(TranscodeError) -> Double {
    switch value {
    case .number(let n):
      guard let d = Double(n), d.isFinite else { throw TranscodeError(path: path, "\(n) is out of range for double") }
      return d
    case .string("NaN"): return .nan
    case .string("Infinity"): return .infinity
    case .string("-Infinity"): return -.infinity
    case .string(let s):
      guard let d = Double(s), d.isFinite, !s.contains(where: { $0.isWhitespace }) else {
        throw TranscodeError(path: path, "\"\(s)\" is not a number")
      }
      return d
    default:
      throw TranscodeError(path: path, "expected a number, got \(value.kind)")
    }
  }
}

/// Base64 as the JSON mapping reads and writes it: standard alphabet with
/// padding on output; standard or URL-safe, padded or not, on input.
enum Base64Text {
  private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

  static func encode(_ bytes: [UInt8]) -> String {
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i + 3 <= bytes.count {
      let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
      for shift in [18, 12, 6, 0] { out.append(alphabet[Int(n >> UInt32(shift) & 63)]) }
      i += 3
    }
    let rest = bytes.count - i
    if rest > 0 {
      var n = UInt32(bytes[i]) << 16
      if rest == 2 { n |= UInt32(bytes[i + 1]) << 8 }
      out.append(alphabet[Int(n >> 18 & 63)])
      out.append(alphabet[Int(n >> 12 & 63)])
      out.append(rest == 2 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
      out.append(UInt8(ascii: "="))
    }
    return String(decoding: out, as: UTF8.self)
  }

  static func decode(_ text: String) -> [UInt8]? {
    var values: [UInt8] = []
    var padding = 0
    for byte in text.utf8 {
      if byte == UInt8(ascii: "=") {
        padding += 1
        continue
      }
      guard padding == 0 else { return nil }  // data after padding
      let value: UInt8
      switch byte {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
      case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
      case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
      case UInt8(ascii: "+"), UInt8(ascii: "-"): value = 62
      case UInt8(ascii: "/"), UInt8(ascii: "_"): value = 63
      default: return nil
      }
      values.append(value)
    }
    guard values.count % 4 != 1, padding <= 2, padding == 0 || (values.count + padding) % 4 == 0 else { return nil }
    var out: [UInt8] = []
    var i = 0
    while i < values.count {
      let chunk = values[i..<min(i + 4, values.count)]
      var n: UInt32 = 0
      for (j, v) in chunk.enumerated() { n |= UInt32(v) << UInt32(18 - 6 * j) }
      out.append(UInt8(n >> 16 & 0xff))
      if chunk.count > 2 { out.append(UInt8(n >> 8 & 0xff)) }
      if chunk.count > 3 { out.append(UInt8(n & 0xff)) }
      i += 4
    }
    return out
  }
}
