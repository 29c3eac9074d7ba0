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
///
/// Descriptors are made once per method and copied into every call's
/// context: the names live in one shared, immutable object, so a copy costs
/// one reference count, not one per name.
public struct MethodDescriptor: Hashable, Sendable, CustomStringConvertible {
  private final class Names: Sendable {
    let service: String
    let method: String
    let path: String
    let kind: RPCKind

    init(service: String, method: String, kind: RPCKind) {
      self.service = service
      self.method = method
      self.kind = kind
      self.path = "/\(service)/\(method)"
    }
  }

  private let names: Names

  /// The fully qualified service name, e.g. `flashsale.v1.Booking`.
  public var service: String { names.service }
  /// The method name, e.g. `Book`.
  public var method: String { names.method }
  /// The kind of RPC.
  public var kind: RPCKind { names.kind }
  /// The HTTP/2 `:path` of the method: `/flashsale.v1.Booking/Book`.
  public var path: String { names.path }

  /// A descriptor of `service`/`method`.
  public init(service: String, method: String, kind: RPCKind) {
    self.names = Names(service: service, method: method, kind: kind)
  }

  public var description: String { path }

  public static func == (lhs: MethodDescriptor, rhs: MethodDescriptor) -> Bool {
    lhs.names === rhs.names
      || (lhs.service == rhs.service && lhs.method == rhs.method && lhs.kind == rhs.kind)
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(service)
    hasher.combine(method)
    hasher.combine(kind)
  }
}
