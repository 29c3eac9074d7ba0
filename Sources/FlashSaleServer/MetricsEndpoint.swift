public import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
public import Prometheus
public import ServiceLifecycle

/// Serves the Prometheus text exposition of a registry at `GET /metrics`, on
/// its own port, over HTTP/1.1.
public final class MetricsEndpoint: Service, Sendable {
  private let host: String
  private let port: Int
  private let registry: PrometheusCollectorRegistry
  private let logger: Logger
  private let channel = NIOLockedValueBox<(any Channel)?>(nil)

  /// An endpoint for `registry` on `host`:`port`.
  public init(host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger) {
    self.host = host
    self.port = port
    self.registry = registry
    self.logger = logger
  }

  /// The bound port, once started.
  public var listeningPort: Int? { channel.withLockedValue { $0?.localAddress?.port } }

  /// Binds the port.
  public func start() async throws {
    let registry = self.registry
    let bound = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry))
        }
      }
      .bind(host: host, port: port).get()
    channel.withLockedValue { $0 = bound }
    logger.info("metrics endpoint listening", metadata: ["address": "\(host):\(bound.localAddress?.port ?? port)"])
  }

  public func run() async throws {
    if listeningPort == nil { try await start() }
    guard let bound = channel.withLockedValue({ $0 }) else { return }
    try await withGracefulShutdownHandler {
      try await bound.closeFuture.get()
    } onGracefulShutdown: {
      bound.close(promise: nil)
    }
  }
}

/// Answers `GET /metrics`; 404 for any other path, 405 for other methods.
private final class MetricsHTTPHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let registry: PrometheusCollectorRegistry
  private var head: HTTPRequestHead?

  init(registry: PrometheusCollectorRegistry) {
    self.registry = registry
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      self.head = head
    case .body:
      break
    case .end:
      guard let head else { return }
      self.head = nil
      let (status, contentType, body): (HTTPResponseStatus, String, [UInt8])
      if head.method != .GET {
        (status, contentType, body) = (.methodNotAllowed, "text/plain", Array("only GET\n".utf8))
      } else if head.uri.split(separator: "?").first == "/metrics" {
        (status, contentType, body) = (.ok, "text/plain; version=0.0.4", registry.emitToBuffer())
      } else {
        (status, contentType, body) = (.notFound, "text/plain", Array("see /metrics\n".utf8))
      }
      var headers = HTTPHeaders()
      headers.add(name: "content-type", value: contentType)
      headers.add(name: "content-length", value: String(body.count))
      context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
      context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
  }
}
