import NIOCore

/// Where the frames of one ``HTTP2Session/send(into:)`` are collected before
/// they go into the connection's `ByteBuffer` in one copy.
///
/// nghttp2 hands out a unary call's response in four pieces (HEADERS, the DATA
/// frame header, the message, the trailers); appending each to a `ByteBuffer`
/// costs a capacity and uniqueness check and an exclusivity check in NIO. Small
/// pieces are copied into a fixed staging area instead; a piece larger than the
/// area goes to the buffer directly, after what is staged, so large messages
/// are copied once.
final class FrameOutput {
  /// The staging area's size: a read batch of small responses fits.
  static let stagingCapacity = 16 * 1024

  private let staging = UnsafeMutableRawPointer.allocate(byteCount: FrameOutput.stagingCapacity, alignment: 16)
  private var staged = 0
  /// The buffer of the send in progress.
  private var target: UnsafeMutablePointer<ByteBuffer>?

  deinit {
    staging.deallocate()
  }

  /// Runs `body`, whose appends end up in `buffer`, in order.
  func collect<R>(into buffer: inout ByteBuffer, _ body: () -> R) -> R {
    withUnsafeMutablePointer(to: &buffer) { pointer in
      target = pointer
      defer {
        spill()
        target = nil
      }
      return body()
    }
  }

  /// Appends `bytes`. Only valid inside ``collect(into:_:)``.
  func append(_ bytes: UnsafeRawBufferPointer) {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
    if staged + bytes.count > Self.stagingCapacity {
      spill()
      if bytes.count > Self.stagingCapacity {
        target!.pointee.writeBytes(bytes)
        return
      }
    }
    (staging + staged).copyMemory(from: base, byteCount: bytes.count)
    staged += bytes.count
  }

  /// Moves what is staged into the target buffer.
  private func spill() {
    guard staged > 0 else { return }
    target!.pointee.writeBytes(UnsafeRawBufferPointer(start: staging, count: staged))
    staged = 0
  }
}
