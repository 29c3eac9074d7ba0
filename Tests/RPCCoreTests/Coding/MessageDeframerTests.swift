import Testing

@testable import RPCCore

@Suite("MessageDeframer")
struct MessageDeframerTests {
  /// Feeds `input` in pieces of `pieceSize` bytes and collects the payloads.
  static func deframe(_ input: [UInt8], pieceSize: Int, limit: Int = 1 << 20) throws(MessageDeframer.Error) -> [[UInt8]] {
    var deframer = MessageDeframer(maxMessageLength: limit)
    var messages: [[UInt8]] = []
    var offset = 0
    while offset < input.count {
      let end = min(offset + pieceSize, input.count)
      let piece = Array(input[offset..<end])
      let result = piece.withUnsafeBytes { bytes in
        Result { () throws(MessageDeframer.Error) in
          try deframer.process(bytes) { messages.append(Array($0)) }
        }
      }
      try result.get()
      offset = end
    }
    try deframer.finish()
    return messages
  }

  static let payloads: [[UInt8]] = [[], [1], Array(0..<200).map { UInt8($0) }, [9, 9, 9]]
  static var stream: [UInt8] { payloads.flatMap { FramedMessage(payload: $0).bytes } }

  @Test("messages survive any split of the byte stream", arguments: [1, 2, 3, 5, 7, 64, 1000])
  func anySplit(pieceSize: Int) throws {
    #expect(try Self.deframe(Self.stream, pieceSize: pieceSize) == Self.payloads)
  }

  @Test("a message over the limit is RESOURCE_EXHAUSTED before its payload arrives")
  func tooLarge() {
    let framed = FramedMessage(payload: [UInt8](repeating: 7, count: 100)).bytes
    #expect(throws: MessageDeframer.Error.messageTooLarge(length: 100, limit: 99)) {
      _ = try Self.deframe(Array(framed.prefix(5)), pieceSize: 5, limit: 99)
    }
    #expect(MessageDeframer.Error.messageTooLarge(length: 100, limit: 99).statusCode == .resourceExhausted)
    #expect(MessageDeframer.Error.messageTooLarge(length: 100, limit: 99).description
      == "received message larger than max (100 vs. 99)")
  }

  @Test("a corrupt flag byte is rejected", arguments: [UInt8(2), 0x80, 0xFF])
  func corruptFlag(flag: UInt8) {
    #expect(throws: MessageDeframer.Error.invalidFlag(flag)) {
      _ = try Self.deframe([flag, 0, 0, 0, 1, 42], pieceSize: 6)
    }
  }

  @Test("the compressed flag without an encoding is INTERNAL")
  func compressedWithoutEncoding() {
    #expect(throws: MessageDeframer.Error.compressedMessageWithoutEncoding) {
      _ = try Self.deframe([1, 0, 0, 0, 1, 42], pieceSize: 6)
    }
    #expect(MessageDeframer.Error.compressedMessageWithoutEncoding.statusCode == .internal)
  }

  @Test("a stream ending inside a prefix or a payload is truncated")
  func truncated() {
    #expect(throws: MessageDeframer.Error.truncatedMessage(received: 3, expected: 5)) {
      _ = try Self.deframe([0, 0, 0], pieceSize: 1)
    }
    #expect(throws: MessageDeframer.Error.truncatedMessage(received: 2, expected: 4)) {
      _ = try Self.deframe([0, 0, 0, 0, 4, 1, 2], pieceSize: 3)
    }
  }

  @Test("the prefix is a zero flag and a big-endian length")
  func framing() {
    let framed = FramedMessage(payload: [UInt8](repeating: 1, count: 0x0102_03))
    #expect(Array(framed.bytes.prefix(5)) == [0, 0, 0x01, 0x02, 0x03])
    #expect(framed.payloadLength == 0x0102_03)
  }
}
