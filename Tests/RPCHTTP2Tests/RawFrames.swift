import NIOCore
import NIOEmbedded

@testable import RPCHTTP2

/// Hand-encoded HTTP/2 frames, for requests a well-behaved client library
/// would not send (more streams than the server allows), and a minimal frame
/// reader for what the server answers.
enum RawFrames {
  struct Frame {
    var type: UInt8
    var flags: UInt8
    var stream: UInt32
    var payload: [UInt8]
    /// The error code of RST_STREAM and GOAWAY frames.
    var errorCode: UInt32? {
      switch type {
      case 0x3 where payload.count >= 4: return UInt32(bigEndianBytes: payload[0..<4])
      case 0x7 where payload.count >= 8: return UInt32(bigEndianBytes: payload[4..<8])
      default: return nil
      }
    }
  }

  struct Writer {
    var bytes: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + RawFrames.frame(type: 0x4, flags: 0, stream: 0, [])

    mutating func headers(stream: UInt32, path: String, endStream: Bool) {
      var block: [UInt8] = []
      for (name, value) in [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "t"),
        ("content-type", "application/grpc"), ("te", "trailers")]
      {
        block += [0x00, UInt8(name.utf8.count)] + Array(name.utf8) + [UInt8(value.utf8.count)] + Array(value.utf8)
      }
      bytes += RawFrames.frame(type: 0x1, flags: 0x4 | (endStream ? 0x1 : 0), stream: stream, block)
    }
  }

  static func frame(type: UInt8, flags: UInt8, stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
    let n = payload.count
    return [UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags,
      UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF)] + payload
  }

  /// Sends what `write` produces to a server connection; returns the frames it answered.
  static func exchange(server: RPCServer, _ write: (inout Writer) -> Void) throws -> [Frame] {
    let channel = EmbeddedChannel()
    try channel.pipeline.syncOperations.addHandler(server.makeConnectionHandler())
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    var writer = Writer()
    write(&writer)
    try channel.writeInbound(channel.allocator.buffer(bytes: writer.bytes))
    var output: [UInt8] = []
    while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
      output += buffer.readableBytesView
    }
    _ = try? channel.finish()
    var frames: [Frame] = []
    var i = 0
    while i + 9 <= output.count {
      let length = Int(output[i]) << 16 | Int(output[i + 1]) << 8 | Int(output[i + 2])
      guard i + 9 + length <= output.count else { break }
      frames.append(
        Frame(
          type: output[i + 3], flags: output[i + 4], stream: UInt32(bigEndianBytes: output[i + 5..<i + 9]) & 0x7FFF_FFFF,
          payload: Array(output[i + 9..<i + 9 + length])))
      i += 9 + length
    }
    return frames
  }
}

extension UInt32 {
  init(bigEndianBytes bytes: ArraySlice<UInt8>) {
    self = bytes.reduce(0) { $0 << 8 | UInt32($1) }
  }
}
