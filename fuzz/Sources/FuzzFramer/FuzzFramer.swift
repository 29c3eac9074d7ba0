import FuzzSupport
import RPCCore

/// Arbitrary bytes through the gRPC message deframer, cut into chunks whose
/// sizes come from the first byte. Property: when the stream deframes
/// without error, framing the messages again gives the stream back.
func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  guard size > 0, let data else { return 0 }
  let chunkSize = Int(data[0]) + 1
  let stream = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
  var deframer = MessageDeframer(maxMessageLength: 1 << 16)
  var messages: [[UInt8]] = []
  let failed = stream.withUnsafeBytes { all -> Bool in
    var offset = 0
    while offset < all.count {
      let end = min(offset + chunkSize, all.count)
      do {
        try deframer.process(UnsafeRawBufferPointer(rebasing: all[offset..<end])) { messages.append(Array($0)) }
      } catch {
        return true
      }
      offset = end
    }
    return false
  }
  if failed { return 0 }
  do {
    try deframer.finish()
  } catch {
    return 0
  }
  var reframed: [UInt8] = []
  for message in messages {
    let length = UInt32(message.count)
    reframed += [0, UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)]
    reframed += message
  }
  if reframed != stream { violated("deframed messages do not frame back to the stream") }
  return 0
}

@_cdecl("FuzzFramer_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
  runFuzzer(argc, argv) { data, size in testOneInput(data, size) }
}
