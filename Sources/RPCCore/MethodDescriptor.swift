/// The four kinds of RPC: how many messages each side sends.
public enum RPCKind: String, Hashable, Sendable {
  /// One request, one response.
  case unary
  /// One request, a stream of responses.
  case serverStreaming
  /// A stream of requests, one response.
  case clientStreaming
  /// A stream each way.
  case bidirectionalStreaming

  /// Whether the client sends one message only.
  public var isSingleRequest: Bool { self == .unary || self == .serverStreaming }
  /// Whether the server sends one message only.
  public var isSingleResponse: Bool { self == .unary || self == .clientStreaming }
}

/// Names one method of one service, and what kind of RPC it is.
public struct MethodDescriptor: Hashable, Sendable, CustomStringConvertible {
  /// The fully qualified service name, e.g. `flashsale.v1.Booking`.
  public let service: String
  /// The method name, e.g. `Book`.
  public let method: String
  /// The kind of RPC.
  public let kind: RPCKind
  /// The HTTP/2 `:path` of the method: `/flashsale.v1.Booking/Book`.
  public let path: String

  /// A descriptor of `service`/`method`.
  public init(service: String, method: String, kind: RPCKind) {
    self.service = service
    self.method = method
    self.kind = kind
    self.path = "/\(service)/\(method)"
  }

  public var description: String { path }
}
