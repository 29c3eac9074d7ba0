import NIOCore
import Testing

@testable import RPCHTTP2

/// The staging area between nghttp2's frames and the connection's buffer.
@Suite("FrameOutput")
struct FrameOutputTests {
  /// `pieces` appended in one collect, and what reached the buffer.
  func collected(_ pieces: [[UInt8]], into buffer: inout ByteBuffer, output: FrameOutput = FrameOutput()) -> [UInt8] {
    output.collect(into: &buffer) {
      for piece in pieces { piece.withUnsafeBytes { output.append($0) } }
    }
    return buffer.readBytes(length: buffer.readableBytes) ?? []
  }

  func piece(_ count: Int, from seed: UInt8) -> [UInt8] {
    (0..<count).map { seed &+ UInt8(truncatingIfNeeded: $0) }
  }

  @Test("small pieces arrive in order")
  func smallPieces() {
    var buffer = ByteBufferAllocator().buffer(capacity: 0)
    let pieces = [piece(9, from: 0), [], piece(100, from: 50), piece(1, from: 7)]
    #expect(collected(pieces, into: &buffer) == pieces.flatMap { $0 })
  }

  @Test("pieces that overflow the staging area, or exceed it, keep their order")
  func largePieces() {
    let capacity = FrameOutput.stagingCapacity
    let pieces = [
      piece(capacity - 5, from: 1), piece(10, from: 2),  // the second spills the first
      piece(3 * capacity + 17, from: 3),  // written directly, after what is staged
      piece(4, from: 4), piece(capacity, from: 5), piece(capacity, from: 6),
    ]
    var buffer = ByteBufferAllocator().buffer(capacity: 0)
    #expect(collected(pieces, into: &buffer) == pieces.flatMap { $0 })
  }

  @Test("one output serves many sends, each into its own buffer")
  func reuse() {
    let output = FrameOutput()
    var first = ByteBufferAllocator().buffer(capacity: 0)
    var second = ByteBufferAllocator().buffer(capacity: 0)
    #expect(collected([piece(20, from: 9)], into: &first, output: output) == piece(20, from: 9))
    #expect(collected([piece(30, from: 11)], into: &second, output: output) == piece(30, from: 11))
  }
}
