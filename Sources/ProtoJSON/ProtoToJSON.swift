public import ProtoDescriptors

/// How JSON output is written.
public struct JSONPrintOptions: Sendable {
  /// Also print fields at their default value (0, "", false, [], {}).
  public var emitDefaults: Bool
  /// Print proto field names (`user_id`) instead of lowerCamelCase (`userId`).
  public var useProtoNames: Bool

  public init(emitDefaults: Bool = false, useProtoNames: Bool = false) {
    self.emitDefaults = emitDefaults
    self.useProtoNames = useProtoNames
  }
}

/// One field's occurrences on the wire.
enum WireValue {
  case varint(UInt64)
  case fixed32(UInt32)
  case fixed64(UInt64)
  case bytes([UInt8])
}

extension ProtoJSONTranscoder {
  /// The JSON text of the binary `bytes` of a `messageType`.
  public func json(
    of bytes: [UInt8], as messageType: String, options: JSONPrintOptions = JSONPrintOptions(), pretty: Bool = false
  ) throws(TranscodeError) -> String {
    try decode(bytes, as: messageType, options: options).serialized(pretty: pretty)
  }

  /// The JSON value of the binary `bytes` of a `messageType`.
  public func decode(
    _ bytes: [UInt8], as messageType: String, options: JSONPrintOptions = JSONPrintOptions()
  ) throws(TranscodeError) -> JSONValue {
    try decodeMessage(bytes, try message(messageType, path: ""), path: "", options: options, depth: 0)
  }

  /// Reads every field occurrence, by field number, in order.
  func fields(of bytes: [UInt8], path: String) throws(TranscodeError) -> [Int: [WireValue]] {
    try fieldsInOrder(of: bytes, path: path).values
  }

  /// Every field occurrence by field number, and where each field last occurred.
  func fieldsInOrder(
    of bytes: [UInt8], path: String
  ) throws(TranscodeError) -> (values: [Int: [WireValue]], lastSeen: [Int: Int]) {
    var reader = WireReader(bytes)
    var found: [Int: [WireValue]] = [:]
    var lastSeen: [Int: Int] = [:]
    var position = 0
    do {
      while let field = try reader.nextField() {
        let value: WireValue
        switch field.type {
        case .varint: value = .varint(try reader.varint())
        case .fixed32: value = .fixed32(try reader.fixed32())
        case .fixed64: value = .fixed64(try reader.fixed64())
        case .lengthDelimited: value = .bytes(try reader.bytesField())
        case .startGroup, .endGroup:
          try reader.skip(field.type, number: field.number)
          continue
        }
        found[field.number, default: []].append(value)
        lastSeen[field.number] = position
        position += 1
      }
    } catch {
      throw TranscodeError(path: path, "malformed protobuf: \(error.message)")
    }
    return (found, lastSeen)
  }

  func decodeMessage(
    _ bytes: [UInt8], _ descriptor: MessageDescriptor, path: String, options: JSONPrintOptions, depth: Int
  ) throws(TranscodeError) -> JSONValue {
    guard depth < 100 else { throw TranscodeError(path: path, "messages nested deeper than 100 levels") }
    if let special = WellKnownJSON.kind(of: descriptor.fullName) {
      return try WellKnownJSON.decode(bytes, special, descriptor, transcoder: self, path: path, options: options, depth: depth)
    }
    var (wire, lastSeen) = try fieldsInOrder(of: bytes, path: path)
    // A oneof holds the member seen last on the wire; earlier members are dropped.
    for oneof in descriptor.oneofs.indices {
      let members = descriptor.fields.filter { $0.oneofIndex == oneof && wire[$0.number] != nil }
      guard members.count > 1, let winner = members.max(by: { lastSeen[$0.number]! < lastSeen[$1.number]! }) else {
        continue
      }
      for member in members where member.number != winner.number { wire[member.number] = nil }
    }
    var members: [(key: String, value: JSONValue)] = []
    for field in descriptor.fields.sorted(by: { $0.number < $1.number }) {
      let key = options.useProtoNames ? field.name : field.jsonName
      let fieldPath = path.isEmpty ? field.jsonName : path + "." + field.jsonName
      let occurrences = wire[field.number] ?? []
      if let value = try decodeField(field, occurrences, path: fieldPath, options: options, depth: depth) {
        members.append((key, value))
      }
    }
    return .object(members)
  }

  /// The JSON of a field, or nil when it is not printed.
  func decodeField(
    _ field: FieldDescriptor, _ occurrences: [WireValue], path: String, options: JSONPrintOptions, depth: Int
  ) throws(TranscodeError) -> JSONValue? {
    if field.isRepeated, field.kind == .message, let entry = pool.messages[field.typeName ?? ""], entry.isMapEntry {
      guard !occurrences.isEmpty || options.emitDefaults else { return nil }
      let keyField = entry.fields.first { $0.number == 1 }!
      let valueField = entry.fields.first { $0.number == 2 }!
      var members: [(key: String, value: JSONValue)] = []
      for occurrence in occurrences {
        guard case .bytes(let bytes) = occurrence else { throw TranscodeError(path: path, "a map entry is not length-delimited") }
        let entryWire = try fields(of: bytes, path: path)
        let keyJSON = try scalar(keyField, entryWire[1]?.last, path: path) ?? defaultValue(keyField)
        let keyText: String
        switch keyJSON {
        case .string(let s): keyText = s
        case .number(let n): keyText = n
        case .bool(let b): keyText = b ? "true" : "false"
        default: keyText = keyJSON.serialized()
        }
        let valuePath = path + "[\(keyText)]"
        // An absent value is the type's default: for a message, the empty message.
        var valueJSON = try single(valueField, entryWire[2] ?? [], path: valuePath, options: options, depth: depth)
        if valueJSON == nil, valueField.kind == .message {
          let type = try message(valueField.typeName ?? "", path: valuePath)
          valueJSON = try decodeMessage([], type, path: valuePath, options: options, depth: depth + 1)
        }
        members.removeAll { $0.key == keyText }  // the last entry of a key wins
        members.append((keyText, valueJSON ?? defaultValue(valueField)))
      }
      return .object(members)
    }
    if field.isRepeated {
      var elements: [JSONValue] = []
      if field.kind == .message || field.kind == .group {
        for occurrence in occurrences {
          guard case .bytes(let bytes) = occurrence else { throw TranscodeError(path: path, "a message is not length-delimited") }
          elements.append(
            try decodeMessage(bytes, try message(field.typeName ?? "", path: path), path: path, options: options, depth: depth + 1))
        }
      } else {
        for occurrence in try unpacked(field, occurrences, path: path) {
          if let value = try scalar(field, occurrence, path: path) { elements.append(value) }
        }
      }
      guard !elements.isEmpty || options.emitDefaults else { return nil }
      return .array(elements)
    }
    if occurrences.isEmpty {
      guard options.emitDefaults, field.oneofIndex == nil, !field.hasPresence else { return nil }
      return defaultValue(field)
    }
    guard let value = try single(field, occurrences, path: path, options: options, depth: depth) else { return nil }
    if !field.hasPresence, field.oneofIndex == nil, !options.emitDefaults, value == defaultValue(field) { return nil }
    return value
  }

  /// A singular field: the last scalar occurrence, or the merge of every message occurrence.
  private func single(
    _ field: FieldDescriptor, _ occurrences: [WireValue], path: String, options: JSONPrintOptions, depth: Int
  ) throws(TranscodeError) -> JSONValue? {
    if field.kind == .message || field.kind == .group {
      var merged: [UInt8] = []
      for occurrence in occurrences {
        guard case .bytes(let bytes) = occurrence else { throw TranscodeError(path: path, "a message is not length-delimited") }
        merged += bytes  // concatenated encodings merge, as the protobuf spec defines
      }
      guard !occurrences.isEmpty else { return nil }
      return try decodeMessage(merged, try message(field.typeName ?? "", path: path), path: path, options: options, depth: depth + 1)
    }
    // A packed encoding of a singular field is read too (its last element).
    return try unpacked(field, occurrences, path: path).last.flatMap { (value) throws(TranscodeError) in try scalar(field, value, path: path) }
  }

  /// Scalar occurrences with packed runs expanded.
  private func unpacked(_ field: FieldDescriptor, _ occurrences: [WireValue], path: String) throws(TranscodeError) -> [WireValue] {
    var values: [WireValue] = []
    let packable = ![.string, .bytes, .message, .group].contains(field.kind)
    for occurrence in occurrences {
      guard packable, case .bytes(let bytes) = occurrence else {
        values.append(occurrence)
        continue
      }
      var reader = WireReader(bytes)
      do {
        while !reader.isAtEnd {
          switch field.kind {
          case .fixed32, .sfixed32, .float: values.append(.fixed32(try reader.fixed32()))
          case .fixed64, .sfixed64, .double: values.append(.fixed64(try reader.fixed64()))
          default: values.append(.varint(try reader.varint()))
          }
        }
      } catch {
        throw TranscodeError(path: path, "malformed packed field: \(error.message)")
      }
    }
    return values
  }

  /// The JSON of one scalar occurrence (nil: an unknown enum value printed as nothing is never the case here).
  func scalar(_ field: FieldDescriptor, _ value: WireValue?, path: String) throws(TranscodeError) -> JSONValue? {
    guard let value else { return nil }
    func mismatch() -> TranscodeError { TranscodeError(path: path, "wire type does not match the field's type \(field.kind)") }
    switch (field.kind, value) {
    case (.string, .bytes(let b)):
      guard let s = String(validating: b, as: UTF8.self) else { throw TranscodeError(path: path, "invalid UTF-8 in a string") }
      return .string(s)
    case (.bytes, .bytes(let b)): return .string(Base64Text.encode(b))
    case (.bool, .varint(let v)): return .bool(v != 0)
    case (.int32, .varint(let v)): return .number(String(Int32(truncatingIfNeeded: v)))
    case (.sint32, .varint(let v)): return .number(String(Int32(truncatingIfNeeded: Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1))))))
    case (.uint32, .varint(let v)): return .number(String(UInt32(truncatingIfNeeded: v)))
    case (.int64, .varint(let v)): return .string(String(Int64(bitPattern: v)))
    case (.sint64, .varint(let v)): return .string(String(Int64(bitPattern: (v >> 1) ^ (0 &- (v & 1)))))
    case (.uint64, .varint(let v)): return .string(String(v))
    case (.fixed32, .fixed32(let v)): return .number(String(v))
    case (.sfixed32, .fixed32(let v)): return .number(String(Int32(bitPattern: v)))
    case (.fixed64, .fixed64(let v)): return .string(String(v))
    case (.sfixed64, .fixed64(let v)): return .string(String(Int64(bitPattern: v)))
    case (.float, .fixed32(let v)): return Self.number(Double(Float(bitPattern: v)), float: true)
    case (.double, .fixed64(let v)): return Self.number(Double(bitPattern: v), float: false)
    case (.enumeration, .varint(let v)):
      let number = Int32(truncatingIfNeeded: v)
      if field.typeName == "google.protobuf.NullValue" { return .null }
      if let name = pool.enums[field.typeName ?? ""]?.name(of: number) { return .string(name) }
      return .number(String(number))
    default:
      throw mismatch()
    }
  }

  static func number(_ d: Double, float: Bool) -> JSONValue {
    if d.isNaN { return .string("NaN") }
    if d.isInfinite { return .string(d > 0 ? "Infinity" : "-Infinity") }
    if d == d.rounded(), abs(d) < 1e17 { return .number(String(Int64(d))) }
    return .number(float ? String(Float(d)) : String(d))
  }

  /// The JSON of a field's default value.
  func defaultValue(_ field: FieldDescriptor) -> JSONValue {
    if field.isRepeated { return .array([]) }
    switch field.kind {
    case .string, .bytes: return .string("")
    case .bool: return .bool(false)
    case .int64, .uint64, .sint64, .fixed64, .sfixed64: return .string("0")
    case .enumeration:
      if field.typeName == "google.protobuf.NullValue" { return .null }
      return pool.enums[field.typeName ?? ""]?.name(of: 0).map(JSONValue.string) ?? .number("0")
    case .message, .group: return .null
    default: return .number("0")
    }
  }
}
