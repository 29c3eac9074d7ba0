import FuzzSupport
import ProtoDescriptors
import ProtoJSON

/// Arbitrary bytes as a protobuf message of every field kind, and as
/// descriptors. Property: whatever decodes prints JSON that encodes back to
/// a message printing the same JSON.
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  _ = try? FileDescriptor(serialized: bytes)
  _ = try? DescriptorPool(fileDescriptorSet: bytes)
  guard let json = try? contractTranscoder.decode(bytes, as: contractType) else { return 0 }
  let again: [UInt8]
  do {
    again = try contractTranscoder.encode(
      json, as: contractType, options: JSONParseOptions(limits: roundTripLimits))
  } catch {
    violated("printed JSON does not parse back: \(error)\n\(json.serialized())")
  }
  guard let second = try? contractTranscoder.decode(again, as: contractType), second == json else {
    violated("JSON changed across a round trip:\n\(json.serialized())")
  }
  return 0
}

@_cdecl("FuzzProtobuf_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
  runFuzzer(argc, argv) { data, size in testOneInput(data, size) }
}
