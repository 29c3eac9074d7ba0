import ProtoDescriptors

/// The well-known types, which the JSON mapping writes in forms of their own:
/// Timestamp as RFC 3339, Duration as `"1.5s"`, wrappers as their value,
/// Struct/Value/ListValue as plain JSON, FieldMask as `"a.b,c"`, Any with `@type`.
enum WellKnownJSON {
  enum Kind {
    case timestamp, duration, wrapper, empty, structure, value, listValue, fieldMask, any
  }

  static func kind(of name: String) -> Kind? {
    switch name {
    case "google.protobuf.Timestamp": .timestamp
    case "google.protobuf.Duration": .duration
    case "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
      "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
      "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue":
      .wrapper
    case "google.protobuf.Empty": .empty
    case "google.protobuf.Struct": .structure
    case "google.protobuf.Value": .value
    case "google.protobuf.ListValue": .listValue
    case "google.protobuf.FieldMask": .fieldMask
    case "google.protobuf.Any": .any
    default: nil
    }
  }

  /// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
  static let minimumSeconds: Int64 = -62_135_596_800
  static let maximumSeconds: Int64 = 253_402_300_799
  static let maximumDurationSeconds: Int64 = 315_576_000_000

  // MARK: JSON → binary

  static func encode(
    _ value: JSONValue, _ kind: Kind, _ descriptor: MessageDescriptor, transcoder: ProtoJSONTranscoder, path: String,
    options: JSONParseOptions, into writer: inout WireWriter
  ) throws(TranscodeError) {
    func field(_ number: Int) -> FieldDescriptor { descriptor.fields.first { $0.number == number }! }
    switch kind {
    case .timestamp:
      guard case .string(let text) = value else {
        throw TranscodeError(path: path, "expected an RFC 3339 timestamp string, got \(value.kind)")
      }
      guard let (seconds, nanos) = parseTimestamp(text) else {
        throw TranscodeError(path: path, "\"\(text)\" is not an RFC 3339 timestamp (e.g. 2026-11-29T10:00:00Z)")
      }
      writeSecondsNanos(seconds, nanos, into: &writer)
    case .duration:
      guard case .string(let text) = value else {
        throw TranscodeError(path: path, "expected a duration string such as \"1.5s\", got \(value.kind)")
      }
      guard let (seconds, nanos) = parseDuration(text) else {
        throw TranscodeError(path: path, "\"\(text)\" is not a duration such as \"1.5s\" (±315576000000 s at most)")
      }
      writeSecondsNanos(seconds, nanos, into: &writer)
    case .wrapper:
      try transcoder.encodeSingle(field(1), value, path: path, options: options, into: &writer)
    case .empty:
      guard case .object(let members) = value else { throw TranscodeError(path: path, "expected {}, got \(value.kind)") }
      if let first = members.first, !options.ignoreUnknownFields {
        throw TranscodeError(path: path + "." + first.key, "unknown field (google.protobuf.Empty has none)")
      }
    case .structure:
      guard case .object = value else { throw TranscodeError(path: path, "expected an object, got \(value.kind)") }
      try transcoder.encodeField(field(1), value, path: path, options: options, into: &writer)
    case .listValue:
      guard case .array = value else { throw TranscodeError(path: path, "expected an array, got \(value.kind)") }
      try transcoder.encodeField(field(1), value, path: path, options: options, into: &writer)
    case .value:
      switch value {
      case .null:
        writer.key(1, .varint)
        writer.varint(0)
      case .number:
        writer.key(2, .fixed64)
        writer.fixed64(try JSONNumbers.double(value, path: path).bitPattern)
      case .string(let s):
        writer.key(3, .lengthDelimited)
        writer.lengthDelimited(Array(s.utf8))
      case .bool(let b):
        writer.key(4, .varint)
        writer.varint(b ? 1 : 0)
      case .object, .array:
        let (number, type) =
          if case .object = value { (5, "google.protobuf.Struct") } else { (6, "google.protobuf.ListValue") }
        var nested = WireWriter()
        try transcoder.encodeMessage(value, try transcoder.message(type, path: path), path: path, options: options, into: &nested)
        writer.key(number, .lengthDelimited)
        writer.lengthDelimited(nested.bytes)
      }
    case .fieldMask:
      guard case .string(let text) = value else { throw TranscodeError(path: path, "expected a string, got \(value.kind)") }
      for path in text.split(separator: ",", omittingEmptySubsequences: true) {
        writer.key(1, .lengthDelimited)
        writer.lengthDelimited(Array(snakeCase(String(path)).utf8))
      }
    case .any:
      guard case .object(let members) = value else { throw TranscodeError(path: path, "expected an object, got \(value.kind)") }
      guard let typeURL = members.first(where: { $0.key == "@type" })?.value, case .string(let url) = typeURL else {
        if members.isEmpty { return }
        throw TranscodeError(path: path, "an Any needs an \"@type\" string")
      }
      let typeName = String(url.split(separator: "/").last ?? "")
      let inner = try transcoder.message(typeName, path: path + ".@type")
      let rest = members.filter { $0.key != "@type" }
      let payload: [UInt8]
      if WellKnownJSON.kind(of: typeName) != nil {
        guard let wrapped = rest.first(where: { $0.key == "value" })?.value else {
          throw TranscodeError(path: path, "an Any of \(typeName) holds its JSON in \"value\"")
        }
        var nested = WireWriter()
        try transcoder.encodeMessage(wrapped, inner, path: path + ".value", options: options, into: &nested)
        payload = nested.bytes
      } else {
        var nested = WireWriter()
        try transcoder.encodeMessage(.object(rest), inner, path: path, options: options, into: &nested)
        payload = nested.bytes
      }
      writer.key(1, .lengthDelimited)
      writer.lengthDelimited(Array(url.utf8))
      writer.key(2, .lengthDelimited)
      writer.lengthDelimited(payload)
    }
  }

  private static func writeSecondsNanos(_ seconds: Int64, _ nanos: Int32, into writer: inout WireWriter) {
    if seconds != 0 {
      writer.key(1, .varint)
      writer.varint(UInt64(bitPattern: seconds))
    }
    if nanos != 0 {
      writer.key(2, .varint)
      writer.varint(UInt64(bitPattern: Int64(nanos)))
    }
  }

  // MARK: binary → JSON

  static func decode(
    _ bytes: [UInt8], _ kind: Kind, _ descriptor: MessageDescriptor, transcoder: ProtoJSONTranscoder, path: String,
    options: JSONPrintOptions, depth: Int
  ) throws(TranscodeError) -> JSONValue {
    let wire = try transcoder.fields(of: bytes, path: path)
    func field(_ number: Int) -> FieldDescriptor { descriptor.fields.first { $0.number == number }! }
    func int64(_ number: Int) -> Int64 {
      if case .varint(let v) = wire[number]?.last { return Int64(bitPattern: v) }
      return 0
    }
    switch kind {
    case .timestamp:
      let seconds = int64(1), nanos = int64(2)
      guard (minimumSeconds...maximumSeconds).contains(seconds), (0..<1_000_000_000).contains(nanos) else {
        throw TranscodeError(path: path, "timestamp \(seconds)s \(nanos)ns is out of the RFC 3339 range")
      }
      return .string(formatTimestamp(seconds, Int32(nanos)))
    case .duration:
      let seconds = int64(1), nanos = int64(2)
      guard abs(seconds) <= maximumDurationSeconds, abs(nanos) < 1_000_000_000,
        seconds == 0 || nanos == 0 || (seconds < 0) == (nanos < 0)
      else { throw TranscodeError(path: path, "duration \(seconds)s \(nanos)ns is out of range") }
      return .string(formatDuration(seconds, Int32(nanos)))
    case .wrapper:
      let value = field(1)
      if let last = wire[1]?.last, let json = try transcoder.scalar(value, last, path: path) { return json }
      return transcoder.defaultValue(value)
    case .empty:
      return .object([])
    case .structure, .listValue:
      // The one field (a map, or a repeated Value) is the JSON itself, empty included.
      return try transcoder.decodeField(
        field(1), wire[1] ?? [], path: path, options: JSONPrintOptions(emitDefaults: true), depth: depth)
        ?? (kind == .structure ? .object([]) : .array([]))
    case .value:
      guard let number = wire.keys.sorted().last(where: { (1...6).contains($0) }), let last = wire[number]?.last else {
        throw TranscodeError(path: path, "a google.protobuf.Value with no kind set")
      }
      switch (number, last) {
      case (1, _): return .null
      case (2, .fixed64(let v)): return ProtoJSONTranscoder.number(Double(bitPattern: v), float: false)
      case (3, .bytes(let b)):
        guard let s = String(validating: b, as: UTF8.self) else { throw TranscodeError(path: path, "invalid UTF-8") }
        return .string(s)
      case (4, .varint(let v)): return .bool(v != 0)
      case (5, .bytes(let b)):
        return try transcoder.decodeMessage(
          b, try transcoder.message("google.protobuf.Struct", path: path), path: path, options: options, depth: depth + 1)
      case (6, .bytes(let b)):
        return try transcoder.decodeMessage(
          b, try transcoder.message("google.protobuf.ListValue", path: path), path: path, options: options, depth: depth + 1)
      default:
        throw TranscodeError(path: path, "a malformed google.protobuf.Value")
      }
    case .fieldMask:
      var paths: [String] = []
      for occurrence in wire[1] ?? [] {
        if case .bytes(let b) = occurrence { paths.append(FieldDescriptor.lowerCamelCase(String(decoding: b, as: UTF8.self))) }
      }
      return .string(paths.joined(separator: ","))
    case .any:
      guard case .bytes(let urlBytes) = wire[1]?.last else { return .object([]) }
      let url = String(decoding: urlBytes, as: UTF8.self)
      var payload: [UInt8] = []
      if case .bytes(let b) = wire[2]?.last { payload = b }
      let typeName = String(url.split(separator: "/").last ?? "")
      let inner = try transcoder.message(typeName, path: path + ".@type")
      let json = try transcoder.decodeMessage(payload, inner, path: path, options: options, depth: depth + 1)
      if WellKnownJSON.kind(of: typeName) != nil {
        return .object([("@type", .string(url)), ("value", json)])
      }
      guard case .object(let members) = json else { return .object([("@type", .string(url))]) }
      return .object([("@type", .string(url))] + members)
    }
  }

  // MARK: Text forms

  static func formatTimestamp(_ seconds: Int64, _ nanos: Int32) -> String {
    let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
    let secondOfDay = seconds - days * 86_400
    let (year, month, day) = civil(fromDays: days)
    func pad(_ n: Int64, _ width: Int) -> String {
      let s = String(n)
      return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):"
      + "\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
    text += fraction(nanos)
    return text + "Z"
  }

  static func formatDuration(_ seconds: Int64, _ nanos: Int32) -> String {
    let negative = seconds < 0 || nanos < 0
    return (negative ? "-" : "") + String(abs(seconds)) + fraction(abs(nanos)) + "s"
  }

  /// ".123", ".123456" or ".123456789": 0, 3, 6 or 9 digits, as the mapping prints them.
  private static func fraction(_ nanos: Int32) -> String {
    guard nanos != 0 else { return "" }
    var digits = String(nanos)
    digits = String(repeating: "0", count: 9 - digits.count) + digits
    if nanos % 1_000_000 == 0 { return "." + digits.prefix(3) }
    if nanos % 1_000 == 0 { return "." + digits.prefix(6) }
    return "." + digits
  }

  static func parseTimestamp(_ text: String) -> (Int64, Int32)? {
    let b = Array(text.utf8)
    func number(_ range: Range<Int>) -> Int64? {
      guard range.upperBound <= b.count, range.allSatisfy({ (48...57).contains(b[$0]) }) else { return nil }
      return Int64(String(decoding: b[range], as: UTF8.self))
    }
    guard b.count >= 20, let year = number(0..<4), b[4] == 45, let month = number(5..<7), b[7] == 45,
      let day = number(8..<10), b[10] == 84 || b[10] == 116, let hour = number(11..<13), b[13] == 58,
      let minute = number(14..<16), b[16] == 58, let second = number(17..<19)
    else { return nil }
    var index = 19
    var nanos: Int64 = 0
    if index < b.count, b[index] == 46 {
      index += 1
      let start = index
      while index < b.count, (48...57).contains(b[index]) { index += 1 }
      let count = index - start
      guard (1...9).contains(count), let n = number(start..<index) else { return nil }
      nanos = n * Int64(pow10(9 - count))
    }
    guard index < b.count else { return nil }
    var offset: Int64 = 0
    if b[index] == 90 || b[index] == 122 {
      index += 1
    } else if b[index] == 43 || b[index] == 45 {
      guard let h = number(index + 1..<index + 3), index + 3 < b.count, b[index + 3] == 58,
        let m = number(index + 4..<index + 6)
      else { return nil }
      offset = (h * 3600 + m * 60) * (b[index] == 45 ? -1 : 1)
      index += 6
    } else {
      return nil
    }
    guard index == b.count, (1...12).contains(month), (1...daysIn(month, year)).contains(day), hour < 24,
      minute < 60, second < 60
    else { return nil }
    let seconds = days(fromCivil: year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset
    guard (minimumSeconds...maximumSeconds).contains(seconds) else { return nil }
    return (seconds, Int32(nanos))
  }

  static func parseDuration(_ text: String) -> (Int64, Int32)? {
    guard text.hasSuffix("s") else { return nil }
    var body = Substring(text.dropLast())
    let negative = body.hasPrefix("-")
    if negative { body = body.dropFirst() }
    let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    guard let whole = parts.first, !whole.isEmpty, whole.allSatisfy(\.isASCII), whole.allSatisfy(\.isNumber),
      let seconds = Int64(whole), seconds <= maximumDurationSeconds
    else { return nil }
    var nanos: Int64 = 0
    if parts.count == 2 {
      let digits = parts[1]
      guard (1...9).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int64(digits) else {
        return nil
      }
      nanos = n * Int64(pow10(9 - digits.count))
    }
    return negative ? (-seconds, Int32(-nanos)) : (seconds, Int32(nanos))
  }

  private static func pow10(_ n: Int) -> Int { (0..<n).reduce(1) { r, _ in r * 10 } }

  private static func snakeCase(_ camel: String) -> String {
    var out = ""
    for c in camel {
      if c.isUppercase {
        out += "_" + c.lowercased()
      } else {
        out.append(c)
      }
    }
    return out
  }

  private static func isLeap(_ year: Int64) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

  private static func daysIn(_ month: Int64, _ year: Int64) -> Int64 {
    [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][Int(month - 1)]
  }

  /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
  private static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }

  private static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let day = doy - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
  }
}
