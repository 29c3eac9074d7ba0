import CodegenTestAPI
import ProtoRuntime
import StandardProtos
import Testing

/// Our encodings against Python's `protobuf`, byte for byte, both ways: for each
/// message of the table, encoding the Swift value gives Python's bytes, and
/// decoding Python's bytes gives the Swift value. The bytes come from
/// codegen/vectors.py, which builds the same messages in Python.
@Suite("Codegen vectors (Python protobuf)")
struct CodegenVectorTests {
  typealias Everything = Codegen_V1_Everything
  typealias Scalars = Codegen_V1_Scalars
  typealias Leaf = Codegen_V1_Leaf
  typealias Inner = Codegen_V1_Everything.Inner

  static let messages: [(String, Everything)] = [
    ("empty", Everything()),
    (
      "scalarsMax",
      Everything(
        scalars: Scalars(
          i32: .max, i64: .max, u32: .max, u64: .max, s32: .min, s64: .min, f32: .max, f64: .max,
          sf32: .min, sf64: .min, fl: 1.5, db: -2.25, flag: true, text: "h\u{e9}llo \u{2713}",
          blob: [0, 1, 255], color: .red))
    ),
    (
      "scalarsNegative",
      Everything(scalars: Scalars(i32: -1, i64: -1, s32: -1, s64: -1, sf32: -1, sf64: -1, color: .infrared))
    ),
    ("scalarsUnknownEnum", Everything(scalars: Scalars(color: .unrecognized(99)))),
    (
      "repeated",
      Everything(
        rI32: [0, -1, .max], rI64: [.min, 7], rU32: [.max, 0], rU64: [.max], rS32: [-2, 2],
        rS64: [.min, .max], rF32: [1, .max], rF64: [.max], rSf32: [.min], rSf64: [-3], rFl: [0.5, -0.25],
        rDb: [3.0, -1e300], rFlag: [true, false, true], rText: ["a", "", "\u{fc}"], rBlob: [[], [1, 2]],
        rColor: [.red, .infrared, .unrecognized(7)], rLeaf: [Leaf(name: "x", weight: 1), Leaf()])
    ),
    (
      "maps",
      Everything(
        mStr: ["b": "2", "a": "1"], mLeaf: [3: Leaf(name: "three"), -1: Leaf()], mU64: [.max: [9]],
        mBool: [true: .green], mS64: [-5: 0.5])
    ),
    ("mapsZeroEntries", Everything(mStr: ["": ""], mBool: [false: .red], mS64: [0: 0])),
    ("oneofText", Everything(choice: .cText("pick me"))),
    ("oneofNumberZero", Everything(choice: .cNumber(0))),
    ("oneofLeaf", Everything(choice: .cLeaf(Leaf(weight: 7)))),
    ("oneofColor", Everything(choice: .cColor(.green))),
    ("oneofEmptyBlob", Everything(choice: .cBlob([]))),
    (
      "wellKnown",
      Everything(
        at: Google_Protobuf_Timestamp(seconds: 1_767_225_600, nanos: 5),
        took: Google_Protobuf_Duration(seconds: -3, nanos: -500),
        wI32: Google_Protobuf_Int32Value(value: 0), wI64: Google_Protobuf_Int64Value(value: -9),
        wU32: Google_Protobuf_UInt32Value(value: .max), wU64: Google_Protobuf_UInt64Value(value: .max),
        wFl: Google_Protobuf_FloatValue(value: 0.125), wDb: Google_Protobuf_DoubleValue(value: 2.5),
        wFlag: Google_Protobuf_BoolValue(value: true), wText: Google_Protobuf_StringValue(value: "x"),
        wBlob: Google_Protobuf_BytesValue(value: [1]))
    ),
    (
      "nested",
      Everything(
        leaf: Leaf(name: "leaf", weight: -20),
        inner: Inner(mood: .calm, children: [Inner(), Inner(mood: .calm)]), farAway: 300)
    ),
  ]

  /// Vectors whose encoding legitimately differs: Python writes a map entry's
  /// zero key or value, protobuf-c omits it (proto3 rules inside the entry).
  /// Both decode to the same map; see `mapZeroEntriesRoundTrip`.
  static let decodeOnly: Set<String> = ["mapsZeroEntries"]

  @Test("the table covers every vector Python wrote")
  func tableMatchesVectors() {
    #expect(Set(Self.messages.map(\.0)) == Set(PythonVectors.encodings.keys))
  }

  @Test("encoding equals Python's bytes", arguments: messages.map(\.0).filter { !decodeOnly.contains($0) })
  func encodingMatchesPython(name: String) throws {
    let message = try #require(Self.messages.first { $0.0 == name }?.1)
    let expected = try #require(PythonVectors.encodings[name].flatMap(Self.bytes(hex:)))
    #expect(Self.hex(message.serializedBytes()) == Self.hex(expected))
    #expect(message.serializedSize == expected.count)
  }

  @Test("decoding Python's bytes gives the message", arguments: messages.map(\.0))
  func decodingMatchesPython(name: String) throws {
    let message = try #require(Self.messages.first { $0.0 == name }?.1)
    let bytes = try #require(PythonVectors.encodings[name].flatMap(Self.bytes(hex:)))
    let decoded = try Everything(serializedBytes: bytes)
    #expect(decoded == message)
  }

  @Test("map entries with zero keys and values survive our encoding")
  func mapZeroEntriesRoundTrip() throws {
    let message = try #require(Self.messages.first { $0.0 == "mapsZeroEntries" }?.1)
    let ours = message.serializedBytes()
    let python = try #require(PythonVectors.encodings["mapsZeroEntries"].flatMap(Self.bytes(hex:)))
    #expect(ours != python)
    #expect(try Everything(serializedBytes: ours) == message)
  }

  static func bytes(hex: String) -> [UInt8]? {
    let chars = Array(hex.utf8)
    guard chars.count % 2 == 0 else { return nil }
    var out = [UInt8]()
    for i in stride(from: 0, to: chars.count, by: 2) {
      guard let byte = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
      out.append(byte)
    }
    return out
  }

  static func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
  }
}
