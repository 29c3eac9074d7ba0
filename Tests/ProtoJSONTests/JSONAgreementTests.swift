import ProtoDescriptors
@testable import ProtoJSON
import Testing

/// Our transcoder against Python's `json_format` on the codegen test
/// contract: the same JSON for the same binary, and the same reading of the
/// same JSON (PythonJSONVectors.swift, written by codegen/vectors.py).
@Suite("JSON agreement with Python json_format")
struct JSONAgreementTests {
  static let transcoder: ProtoJSONTranscoder = {
    let bytes = Base64Text.decode(PythonJSONVectors.descriptorSet)!
    return ProtoJSONTranscoder(pool: try! DescriptorPool(fileDescriptorSet: bytes))
  }()
  static let type = "codegen.v1.Everything"

  /// Inputs Python accepts but we refuse on purpose: Python's base64 decoder
  /// skips characters outside the alphabet ("!!" reads as empty bytes), and
  /// it reads a top-level array as an empty message.
  static let strictOnPurpose: Set<String> = [#"{"scalars": {"blob": "!!"}}"#, "[]"]

  /// Objects with sorted members and numbers compared by value, so that two
  /// printers' key order and number spelling (1 vs 1.0) do not matter.
  static func normalized(_ value: JSONValue) -> JSONValue {
    switch value {
    case .object(let members):
      return .object(members.map { ($0.key, normalized($0.value)) }.sorted { $0.0 < $1.0 }.map { (key: $0.0, value: $0.1) })
    case .array(let elements): return .array(elements.map(normalized))
    case .number(let n): return .number(Double(n).map { String($0) } ?? n)
    default: return value
    }
  }

  static func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var index = text.startIndex
    while index < text.endIndex {
      let next = text.index(index, offsetBy: 2)
      bytes.append(UInt8(text[index..<next], radix: 16)!)
      index = next
    }
    return bytes
  }

  @Test("binary to JSON: the same JSON as Python", arguments: PythonJSONVectors.outputs.map(\.name))
  func output(name: String) throws {
    let vector = PythonJSONVectors.outputs.first { $0.name == name }!
    let ours = try Self.transcoder.decode(Self.hex(vector.binary), as: Self.type)
    #expect(Self.normalized(ours) == Self.normalized(try JSONParser.parse(vector.json)), "\(ours.serialized())")
  }

  @Test("JSON to binary: the same message as Python reads, or refused like Python", arguments: PythonJSONVectors.inputs.map(\.json))
  func input(json: String) throws {
    let python = PythonJSONVectors.inputs.first { $0.json == json }!.python
    if Self.strictOnPurpose.contains(json) {
      #expect(throws: TranscodeError.self) { try Self.transcoder.encode(json: Array(json.utf8), as: Self.type) }
      return
    }
    guard let python else {
      #expect(throws: TranscodeError.self) { try Self.transcoder.encode(json: Array(json.utf8), as: Self.type) }
      return
    }
    let bytes = try Self.transcoder.encode(json: Array(json.utf8), as: Self.type)
    let ours = try Self.transcoder.decode(bytes, as: Self.type)
    #expect(Self.normalized(ours) == Self.normalized(try JSONParser.parse(python)), "\(ours.serialized())")
  }
}
