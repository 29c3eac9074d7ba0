import RPCCore
import Synchronization

/// A channel whose transport is given later: services are built before the
/// server listens, but a client of this process's own port can only be made
/// once it does. Calls before ``connect(_:)`` fail with UNAVAILABLE.
final class DeferredChannel: RPCChannel {
  private let channel = Mutex<(any RPCChannel)?>(nil)

  /// Sends every call from now on through `channel`.
  func connect(_ channel: any RPCChannel) {
    self.channel.withLock { $0 = channel }
  }

  private func current() throws(RPCError) -> any RPCChannel {
    guard let channel = channel.withLock({ $0 }) else {
      throw RPCError(code: .unavailable, message: "not connected yet")
    }
    return channel
  }

  func openStream(
    _ descriptor: MethodDescriptor, metadata: Metadata, deadline: ContinuousClock.Instant?
  ) async throws(RPCError) -> any ClientStream {
    try await current().openStream(descriptor, metadata: metadata, deadline: deadline)
  }

  func openStream(
    _ descriptor: MethodDescriptor, metadata: Metadata, deadline: ContinuousClock.Instant?,
    sending request: FramedMessage
  ) async throws(RPCError) -> any ClientStream {
    try await current().openStream(descriptor, metadata: metadata, deadline: deadline, sending: request)
  }

  var defaultRetryPolicy: RetryPolicy { .none }
}
