public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import NIOPosix
public import RPCCore
public import ServiceLifecycle

/// A gRPC server over HTTP/2 cleartext (prior knowledge), framed by nghttp2 on
/// SwiftNIO event loops.
///
/// ```swift
/// let server = RPCServer(configuration: .init(port: 8443), services: [BookingService()])
/// try await server.run()  // until SIGTERM, with a ServiceGroup, or beginGracefulShutdown()
/// ```
///
/// On graceful shutdown the server stops accepting connections, sends every
/// connection a GOAWAY (a notice first, then one with the last stream id), lets
/// in-flight calls finish for ``RPCServerConfiguration/shutdownGracePeriod``,
/// then closes what is left.
public final class RPCServer: Service, Sendable {
  private let configuration: RPCServerConfiguration
  private let routes: RouteTable
  private let group: any EventLoopGroup
  private let logger: Logger
  private let metrics = ServerMetrics()

  private struct State {
    var phase = Phase.idle
    var serverChannel: (any Channel)?
    var connections: [ObjectIdentifier: any Channel] = [:]
    var closed: EventLoopPromise<Void>?
  }
  private enum Phase { case idle, listening, draining, closed }
  private let state = NIOLockedValueBox(State())

  /// A server of `services`.
  ///
  /// - Parameters:
  ///   - configuration: Address, limits and timeouts.
  ///   - services: The services; a method registered twice is served by the last.
  ///   - group: The event loops connections run on.
  ///   - logger: Where connection-level events are logged.
  public init(
    configuration: RPCServerConfiguration,
    services: [any RPCService],
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    logger: Logger = Logger(label: "flashsale.rpc.server")
  ) {
    self.configuration = configuration
    self.routes = RouteTable(services.flatMap(\.routes))
    self.group = group
    self.logger = logger
  }

  /// A handler serving one connection, as the server installs on each
  /// accepted channel: for tests and benchmarks that drive it through an
  /// `EmbeddedChannel`.
  package func makeConnectionHandler() -> any ChannelHandler {
    ServerConnectionHandler(
      routes: routes, configuration: configuration, metrics: metrics, logger: logger, onClose: { _ in })
  }

  /// Every method the server serves.
  public var methods: [MethodDescriptor] { routes.descriptors }

  /// The port the server listens on, once ``start()`` returned.
  public var listeningPort: Int? {
    state.withLockedValue { $0.serverChannel?.localAddress?.port }
  }

  /// Binds the listening socket. Returns once the server accepts connections.
  public func start() async throws {
    let alreadyStarted = state.withLockedValue { state -> Bool in
      if state.phase != .idle { return true }
      state.phase = .listening
      state.closed = group.next().makePromise()
      return false
    }
    if alreadyStarted { return }
    let routes = self.routes
    let configuration = self.configuration
    let metrics = self.metrics
    let logger = self.logger
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 1024)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 16)
      // Strong references: a server lives until its last connection closed,
      // so that its shutdown always completes.
      .childChannelInitializer { channel in
        let id = ObjectIdentifier(channel)
        let accepted = self.state.withLockedValue { state -> Bool in
          guard state.phase == .listening else { return false }
          state.connections[id] = channel
          return true
        }
        guard accepted else { return channel.close() }
        let handler = ServerConnectionHandler(
          routes: routes, configuration: configuration, metrics: metrics, logger: logger,
          onClose: { _ in self.connectionClosed(id) })
        do {
          try channel.pipeline.syncOperations.addHandler(handler)
        } catch {
          return channel.eventLoop.makeFailedFuture(error)
        }
        channel.closeFuture.whenComplete { _ in self.connectionClosed(id) }
        return channel.eventLoop.makeSucceededVoidFuture()
      }
    do {
      let channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
      state.withLockedValue { $0.serverChannel = channel }
      logger.info(
        "listening",
        metadata: ["address": "\(configuration.host):\(channel.localAddress?.port ?? configuration.port)"])
    } catch {
      let closed = state.withLockedValue { state -> EventLoopPromise<Void>? in
        state.phase = .closed
        return state.closed
      }
      closed?.succeed()
      throw error
    }
  }

  /// Serves until a graceful shutdown completes: the ServiceLifecycle entry
  /// point (SIGTERM and SIGINT reach it through a `ServiceGroup`).
  public func run() async throws {
    try await start()
    let closed = state.withLockedValue { $0.closed }!
    try await withGracefulShutdownHandler {
      try await closed.futureResult.get()
    } onGracefulShutdown: {
      self.beginGracefulShutdown()
    }
  }

  /// Stops accepting connections and drains the open ones; see the type's
  /// documentation. Returns at once; ``run()`` returns when the drain is over.
  public func beginGracefulShutdown() {
    let (server, connections) = state.withLockedValue { state -> ((any Channel)?, [any Channel]) in
      guard state.phase == .listening else { return (nil, []) }
      state.phase = .draining
      return (state.serverChannel, Array(state.connections.values))
    }
    guard let server else {
      finishIfDrained()
      return
    }
    logger.info("graceful shutdown", metadata: ["connections": "\(connections.count)"])
    server.close(promise: nil)
    for connection in connections {
      connection.eventLoop.execute {
        connection.pipeline.fireUserInboundEventTriggered(GracefulShutdownEvent())
      }
    }
    let grace = TimeAmount.nanoseconds(configuration.shutdownGracePeriod.nanosecondsValue)
    group.next().scheduleTask(in: grace) {
      let remaining = self.state.withLockedValue { Array($0.connections.values) }
      if !remaining.isEmpty {
        self.logger.info("grace period over; closing connections", metadata: ["connections": "\(remaining.count)"])
      }
      for connection in remaining { connection.close(promise: nil) }
    }
    server.closeFuture.whenComplete { _ in self.finishIfDrained() }
  }

  private func connectionClosed(_ id: ObjectIdentifier) {
    state.withLockedValue { _ = $0.connections.removeValue(forKey: id) }
    finishIfDrained()
  }

  private func finishIfDrained() {
    let closed = state.withLockedValue { state -> EventLoopPromise<Void>? in
      guard state.phase == .draining, state.connections.isEmpty,
        state.serverChannel.map({ !$0.isActive }) ?? true
      else { return nil }
      state.phase = .closed
      return state.closed
    }
    closed?.succeed()
  }
}
