import ProtoDescriptors
@testable import ProtoJSON
import Testing

/// Every class of bad input, with the exact message a caller sees: the field
/// path in JSON names, and what is wrong.
@Suite("Transcoding errors")
struct TranscodeErrorTests {
  static let cases: [(json: String, error: String)] = [
    (#"{"nope": 1}"#, "nope: unknown field (codegen.v1.Everything has no field nope)"),
    (#"{"leaf": {"nope": 1}}"#, "leaf.nope: unknown field (codegen.v1.Leaf has no field nope)"),
    (#"{"scalars": {"text": 5}}"#, "scalars.text: expected string, got number"),
    (#"{"scalars": {"flag": "true"}}"#, "scalars.flag: expected boolean, got string"),
    (#"{"scalars": {"i32": 2147483648}}"#, "scalars.i32: 2147483648 is out of range for int32"),
    (#"{"scalars": {"u32": -1}}"#, "scalars.u32: -1 is out of range for uint32"),
    (#"{"scalars": {"u64": "18446744073709551616"}}"#, "scalars.u64: 18446744073709551616 is out of range for uint64"),
    (#"{"scalars": {"i64": 9223372036854775808}}"#, "scalars.i64: 9223372036854775808 is out of range for int64"),
    (#"{"scalars": {"i32": 1.5}}"#, "scalars.i32: 1.5 is not an integer"),
    (#"{"scalars": {"fl": 1e39}}"#, "scalars.fl: 1e+39 is out of range for float"),
    (#"{"scalars": {"db": 1e999}}"#, "scalars.db: 1e999 is out of range for double"),
    (#"{"scalars": {"color": "COLOR_NOPE"}}"#, #"scalars.color: unknown value "COLOR_NOPE" of enum codegen.v1.Color"#),
    (#"{"scalars": {"blob": "!!"}}"#, "scalars.blob: invalid base64"),
    (#"{"rLeaf": [{"weight": "x"}]}"#, "rLeaf[0].weight: x is not an integer"),
    (#"{"rI32": 5}"#, "rI32: expected an array, got number"),
    (#"{"rI32": [null]}"#, "rI32[0]: an array element may not be null"),
    (#"{"mLeaf": {"x": {}}}"#, "mLeaf[x]: x is not an integer"),
    (#"{"mStr": {"a": null}}"#, "mStr[a]: a map value may not be null"),
    (#"{"cText": "a", "cNumber": "1"}"#, "cNumber: cText is set already: at most one field of oneof choice may be"),
    (#"{"farAway": 1, "far_away": 2}"#, "farAway: given twice"),
    (#"{"at": "yesterday"}"#, #"at: "yesterday" is not an RFC 3339 timestamp (e.g. 2026-11-29T10:00:00Z)"#),
    (#"{"at": "10000-01-01T00:00:00Z"}"#, #"at: "10000-01-01T00:00:00Z" is not an RFC 3339 timestamp (e.g. 2026-11-29T10:00:00Z)"#),
    (#"{"took": "5"}"#, #"took: "5" is not a duration such as "1.5s" (±315576000000 s at most)"#),
    (#"{"wI32": "big"}"#, "wI32: big is not an integer"),
    ("[]", "expected an object, got array"),
    (#"{"scalars": {"text": "\ud800"}}"#, "invalid JSON at byte 28: a lone surrogate in \\u escape"),
    ("{\"scalars\": {\"text\": \"a\u{01}\"}}", "invalid JSON at byte 24: a control character in a string"),
    (#"{"a": 1,}"#, "invalid JSON at byte 8: expected a member name"),
    (#"{"a": 01}"#, "invalid JSON at byte 8: a number with a leading zero"),
    (#"{} x"#, "invalid JSON at byte 3: unexpected text after the JSON value"),
  ]

  @Test("each bad input names the field and the fault", arguments: cases.map(\.json))
  func refused(json: String) {
    let expected = Self.cases.first { $0.json == json }!.error
    do {
      _ = try JSONAgreementTests.transcoder.encode(json: Array(json.utf8), as: JSONAgreementTests.type)
      Issue.record("accepted \(json)")
    } catch {
      #expect(error.description == expected)
    }
  }

  @Test("unknown fields and enum names can be ignored by option")
  func ignoreUnknown() throws {
    let options = JSONParseOptions(ignoreUnknownFields: true)
    let bytes = try JSONAgreementTests.transcoder.encode(
      json: Array(#"{"nope": [1, {"x": 2}], "scalars": {"color": "COLOR_NOPE", "i32": 3}}"#.utf8),
      as: JSONAgreementTests.type, options: options)
    #expect(try JSONAgreementTests.transcoder.json(of: bytes, as: JSONAgreementTests.type) == #"{"scalars":{"i32":3}}"#)
  }

  @Test("nesting deeper than the limit, and oversized documents, are refused")
  func limits() {
    let deep = String(repeating: #"{"inner": "#, count: 70) + "{}" + String(repeating: "}", count: 70)
    #expect(throws: TranscodeError(path: "", "invalid JSON at byte 640: nested deeper than 64 levels")) {
      try JSONAgreementTests.transcoder.encode(json: Array(deep.utf8), as: JSONAgreementTests.type)
    }
    let options = JSONParseOptions(limits: JSONLimits(maximumBytes: 10))
    #expect(throws: TranscodeError(path: "", "the document is 16 bytes, over the limit of 10")) {
      try JSONAgreementTests.transcoder.encode(
        json: Array(#"{"farAway": 123}"#.utf8), as: JSONAgreementTests.type, options: options)
    }
  }

  @Test("malformed binary input is an error, not a crash")
  func malformedBinary() {
    for bytes: [UInt8] in [[0x0a, 0x05, 0x01], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [0x07]] {
      #expect(throws: TranscodeError.self) { try JSONAgreementTests.transcoder.decode(bytes, as: JSONAgreementTests.type) }
    }
  }

  @Test("output options: defaults printed on request, proto names on request")
  func printOptions() throws {
    let bytes = try JSONAgreementTests.transcoder.encode(json: Array("{}".utf8), as: "codegen.v1.Leaf")
    let withDefaults = try JSONAgreementTests.transcoder.decode(
      bytes, as: "codegen.v1.Leaf", options: JSONPrintOptions(emitDefaults: true))
    #expect(withDefaults.serialized() == #"{"name":"","weight":0}"#)
    let snake = try JSONAgreementTests.transcoder.json(
      of: try JSONAgreementTests.transcoder.encode(json: Array(#"{"farAway": 3}"#.utf8), as: JSONAgreementTests.type),
      as: JSONAgreementTests.type, options: JSONPrintOptions(useProtoNames: true))
    #expect(snake == #"{"far_away":3}"#)
  }
}

/// Inputs the fuzzer found (fuzz/), kept as tests: what it broke, now right.
@Suite("Fuzzer findings")
struct FuzzFindingTests {
  static func hex(_ text: String) -> [UInt8] { JSONAgreementTests.hex(text) }

  @Test("two members of a oneof on the wire: the last one wins")
  func oneofLastWins() throws {
    let transcoder = JSONAgreementTests.transcoder
    #expect(try transcoder.json(of: Self.hex("ca010161d00101"), as: JSONAgreementTests.type) == #"{"cNumber":"1"}"#)
    #expect(try transcoder.json(of: Self.hex("d00101ca010161"), as: JSONAgreementTests.type) == #"{"cText":"a"}"#)
  }

  @Test("the largest float prints as 3.4028235e+38 and reads back")
  func largestFloat() throws {
    let transcoder = JSONAgreementTests.transcoder
    for text in [#"{"rFl":[-3.4028235e+38,3.4028235e+38]}"#] {
      let bytes = try transcoder.encode(json: Array(text.utf8), as: JSONAgreementTests.type)
      #expect(try transcoder.json(of: bytes, as: JSONAgreementTests.type) == text)
    }
    #expect(throws: TranscodeError(path: "rFl[0]", "3.5e+38 is out of range for float")) {
      try transcoder.encode(json: Array(#"{"rFl":[3.5e38]}"#.utf8), as: JSONAgreementTests.type)
    }
  }

  @Test("a map entry without its message value is the empty message")
  func mapEntryWithoutValue() throws {
    let json = try JSONAgreementTests.transcoder.json(of: Self.hex("aa01020803"), as: JSONAgreementTests.type)
    #expect(json == #"{"mLeaf":{"3":{}}}"#)
  }
}
