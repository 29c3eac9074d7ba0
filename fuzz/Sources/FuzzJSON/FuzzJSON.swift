import FuzzSupport
import ProtoJSON

/// Arbitrary bytes as JSON: the parser, and the transcoder into a message of
/// every field kind. Properties: parsed JSON prints JSON that parses to the
/// same value; JSON that transcodes gives a message whose JSON transcodes to
/// the same message.
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  guard let value = try? JSONParser.parse(bytes) else { return 0 }
  guard let reparsed = try? JSONParser.parse(value.serialized()), reparsed == value else {
    violated("JSON changed when printed and parsed again: \(value.serialized())")
  }
  guard let message = try? contractTranscoder.encode(value, as: contractType) else { return 0 }
  do {
    let json = try contractTranscoder.decode(message, as: contractType)
    let again = try contractTranscoder.encode(json, as: contractType, options: JSONParseOptions(limits: roundTripLimits))
    guard try contractTranscoder.decode(again, as: contractType) == json else {
      violated("message changed across a JSON round trip: \(json.serialized())")
    }
  } catch {
    violated("an encoded message does not round-trip: \(error)")
  }
  return 0
}

@_cdecl("FuzzJSON_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
  runFuzzer(argc, argv) { data, size in testOneInput(data, size) }
}
