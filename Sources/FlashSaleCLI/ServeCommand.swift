import ArgumentParser
import CommandLineSupport
import FlashSaleAPI
import FlashSaleCheckout
import FlashSaleDomain
import FlashSaleServer
import Logging
import Metrics
import NIOCore
import NIOPosix
import PaymentSimulator
import Prometheus
import RPCCore
import RPCHTTP2
import ServerReflection
import ServiceLifecycle

/// `flashsale serve`: runs the platform's services in one process, or a subset
/// of them (`--role`), until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve the platform's gRPC services.",
    discussion: """
      Every role runs in one process by default. With --role (repeatable), only those roles run; \
      the addresses of the others are given by --inventory-address, --booking-address, \
      --checkout-address and --payments-address. Health (grpc.health.v1.Health) reports SERVING \
      for each service served.

      Identity: the edge forwards the calling user as request metadata (x-flashsale-user-id, \
      x-flashsale-roles), trusted only with the internal service credential \
      (x-flashsale-service-token), set here by --service-token or FLASHSALE_SERVICE_TOKEN.
      """)

  enum Role: String, ExpressibleByArgument, CaseIterable {
    case inventory, booking, checkout
    case paymentsSim = "payments-sim"
  }

  enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
  }

  @Option(help: "The address to bind gRPC on.")
  var host: String = "127.0.0.1"

  @Option(name: .customLong("grpc-port"), help: "The gRPC port (0: any free port, printed at start-up).")
  var grpcPort: Int = 50051

  @Option(name: .customLong("role"), help: "A role to run (repeatable): inventory, booking, checkout, payments-sim. Default: all.")
  var roles: [Role] = []

  @Option(help: "Where the inventory role runs, when not in this process (host:port).")
  var inventoryAddress: String?

  @Option(help: "Where the booking role runs, when not in this process (host:port).")
  var bookingAddress: String?

  @Option(help: "Where the checkout role runs, when not in this process (host:port).")
  var checkoutAddress: String?

  @Option(help: "Where the payment provider (or its simulator) runs, when not in this process (host:port).")
  var paymentsAddress: String?

  @Option(help: "Where sales and bookings are stored: sqlite:PATH (embedded, one process) or postgres://USER@HOST:PORT/DB.")
  var store: StoreLocation = .sqlite(path: "flashsale.db")

  @Option(help: "The payment simulator's own records (payments-sim role): an SQLite file. Default: payments-sim.db beside an SQLite --store, else in the working directory.")
  var paymentsStore: String?

  @Option(help: "Payment simulator: each call waits about this long (uniformly from half to one and a half times).")
  var simLatencyMs: Int = 0

  @Option(help: "Payment simulator: the share of Authorize calls declined (0…1), for cards other than the test cards.")
  var simDeclineRate: Double = 0

  @Option(help: "Payment simulator: the share of calls failing UNAVAILABLE before acting (0…1), other cards.")
  var simErrorRate: Double = 0

  @Option(help: "Payment simulator: seconds the tok_timeout card makes Authorize wait after acting.")
  var simTimeoutDelay: Double = 30

  @Option(help: "Checkout: the deadline of each attempt of a payment call, in seconds.")
  var paymentsTimeout: Double = 2

  @Option(help: "Checkout: attempts per payment call (same idempotency key) before the saga asks the provider.")
  var paymentsAttempts: Int = 3

  @Option(help: "Checkout: seconds StartCheckout waits for the saga to end before answering with it still running.")
  var checkoutWait: Double = 15

  @Flag(inversion: .prefixedNo, help: "Serve gRPC server reflection (grpc.reflection.v1 and v1alpha).")
  var reflection = true

  @Flag(help: "Create a demo sale at start-up (10,000 units of a phone, open for an hour) unless one exists.")
  var demoSale: Bool = false

  @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port). Default: no endpoint.")
  var metricsPort: Int?

  @Option(help: "The internal service credential. Default: $FLASHSALE_SERVICE_TOKEN, else a random one (logged).")
  var serviceToken: String?

  @Option(help: "The largest request message accepted, in bytes.")
  var maxReceiveMessageSize: Int = 4 * 1024 * 1024

  @Option(help: "Concurrent calls allowed per connection (SETTINGS_MAX_CONCURRENT_STREAMS).")
  var maxConcurrentStreams: UInt32 = 256

  @Option(help: "Event loop threads serving connections (default: one per core).")
  var eventLoopThreads: Int = System.coreCount

  @Option(help: "Seconds in-flight calls get to finish after SIGTERM or SIGINT.")
  var shutdownGrace: Double = 10

  @Option(help: "Log format: text or json (one JSON object per line).")
  var logFormat: LogFormat = .text

  @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
  var logLevel: String = "info"

  func validate() throws {
    for (flag, value) in [
      ("--inventory-address", inventoryAddress), ("--booking-address", bookingAddress),
      ("--checkout-address", checkoutAddress), ("--payments-address", paymentsAddress),
    ] {
      if let value, RPCClientConfiguration.Target(value) == nil {
        throw ValidationError("\(flag) must be host:port, not \"\(value)\"")
      }
    }
    guard Logger.Level(rawValue: logLevel) != nil else {
      throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
    }
    guard (0...65535).contains(grpcPort) else { throw ValidationError("--grpc-port must be 0…65535") }
    guard eventLoopThreads >= 1 else { throw ValidationError("--event-loop-threads must be at least 1") }
    guard shutdownGrace >= 0 else { throw ValidationError("--shutdown-grace must not be negative") }
    guard simLatencyMs >= 0 else { throw ValidationError("--sim-latency-ms must not be negative") }
    for (flag, rate) in [("--sim-decline-rate", simDeclineRate), ("--sim-error-rate", simErrorRate)] {
      guard (0...1).contains(rate) else { throw ValidationError("\(flag) must be between 0 and 1") }
    }
    guard simTimeoutDelay >= 0, paymentsTimeout > 0, checkoutWait >= 0 else {
      throw ValidationError("--sim-timeout-delay, --payments-timeout and --checkout-wait must be positive")
    }
    guard paymentsAttempts >= 1 else { throw ValidationError("--payments-attempts must be at least 1") }
    if roles.contains(.checkout), !roles.contains(.paymentsSim), paymentsAddress == nil {
      throw ValidationError("the checkout role needs --payments-address when payments-sim does not run here")
    }
  }

  func run() async throws {
    let level = Logger.Level(rawValue: logLevel) ?? .info
    let format = logFormat
    LoggingSystem.bootstrap { label in
      var handler: any LogHandler =
        format == .json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
      handler.logLevel = level
      return handler
    }
    let logger = Logger(label: "flashsale")

    // Metrics first: the server creates its metric objects when it is built.
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if let metricsPort {
      let registry = PrometheusCollectorRegistry()
      MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
      let endpoint = MetricsEndpoint(host: host, port: metricsPort, registry: registry, logger: logger)
      try await endpoint.start()
      printNow("metrics on \(host):\(endpoint.listeningPort ?? metricsPort)")
      services.append(.init(service: endpoint))
    }

    let token = serviceToken ?? Self.environment("FLASHSALE_SERVICE_TOKEN") ?? Self.randomToken()
    if serviceToken == nil, Self.environment("FLASHSALE_SERVICE_TOKEN") == nil {
      logger.warning("no service token configured; generated one for this run", metadata: ["token": "\(token)"])
    }

    let roles = Set(self.roles.isEmpty ? Role.allCases : self.roles)
    let health = HealthRegistry()
    var served: [any RPCService] = [HealthService(registry: health)]
    var names: [String] = []
    // Payments are an external service: the checkout calls them over gRPC,
    // also when the simulator runs in this process (then through this
    // process's own port, known once the server listens).
    let paymentsChannel = DeferredChannel()
    if roles.contains(.inventory) || roles.contains(.booking) || roles.contains(.checkout) {
      let core = try await openSaleCore(logger: logger, services: &services)
      if roles.contains(.inventory) {
        served.append(InventoryService(core: core))
        names.append("flashsale.v1.Inventory")
      }
      if roles.contains(.booking) {
        served.append(BookingService(core: core))
        names.append("flashsale.v1.Booking")
      }
      if roles.contains(.checkout) {
        let saga = CheckoutSaga(
          store: try await store.openCheckoutStore(), bookings: core,
          payments: PaymentsClientGateway(
            channel: paymentsChannel, attemptTimeout: .milliseconds(Int64(paymentsTimeout * 1000)),
            attempts: paymentsAttempts),
          clock: core.clock)
        served.append(CheckoutService(saga: saga, wait: .milliseconds(Int64(checkoutWait * 1000))))
        names.append("flashsale.v1.Checkout")
        services.append(.init(service: CheckoutResumeJob(saga: saga)))
      }
    }
    if roles.contains(.paymentsSim) {
      let simulator = try PaymentSimulator(
        path: paymentsStore ?? store.sibling("payments-sim.db"),
        behaviour: SimulatorBehaviour(
          latency: .milliseconds(simLatencyMs / 2) ... .milliseconds(simLatencyMs * 3 / 2),
          declineRate: simDeclineRate, errorRate: simErrorRate,
          timeoutDelay: .milliseconds(Int64(simTimeoutDelay * 1000))))
      served.append(PaymentsSimulatorService(simulator: simulator))
      names.append("flashsale.v1.Payments")
    }
    health.set("", .serving)
    for name in names { health.set(name, .serving) }
    // Reflection lists what is served here and describes it from the embedded descriptors.
    if reflection {
      let service = ReflectionService(pool: FlashSaleDescriptors.pool, services: names + ["grpc.health.v1.Health"])
      served.append(service)
      served.append(ReflectionServiceV1Alpha(service))
    }

    let server = RPCServer(
      configuration: RPCServerConfiguration(
        host: host, port: grpcPort, maxReceiveMessageLength: maxReceiveMessageSize,
        maxConcurrentStreams: maxConcurrentStreams, shutdownGracePeriod: .milliseconds(Int64(shutdownGrace * 1000)),
        authenticator: SharedTokenAuthenticator(token: token)),
      services: served, group: MultiThreadedEventLoopGroup(numberOfThreads: eventLoopThreads), logger: logger)
    try await server.start()
    let port = server.listeningPort ?? grpcPort
    printNow("listening on \(host):\(port)")
    if roles.contains(.checkout) {
      let target =
        paymentsAddress.flatMap(RPCClientConfiguration.Target.init) ?? RPCClientConfiguration.Target(host: host, port: port)
      var metadata = Metadata()
      metadata[CallerIdentity.serviceTokenHeader] = token
      paymentsChannel.connect(
        RPCClient(
          configuration: RPCClientConfiguration(
            targets: [target], connectTimeout: .milliseconds(Int64(paymentsTimeout * 1000)),
            defaultMetadata: metadata)))
    }
    logger.info("serving", metadata: ["roles": "\(roles.map(\.rawValue).sorted())", "services": "\(names)"])

    services.insert(.init(service: server), at: 0)
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [],
        logger: logger))
    try await withGracefulShutdownHandler {
      try await group.run()
    } onGracefulShutdown: {
      health.setAll(.notServing)
    }
    logger.info("stopped")
  }

  /// Opens the store and builds the sale core, adding its background jobs
  /// (availability refresh, hold expiry) to `services`.
  private func openSaleCore(
    logger: Logger, services: inout [ServiceGroupConfiguration.ServiceConfiguration]
  ) async throws -> SaleCore {
    let store = try await self.store.open(serving: true)
    let clock = SystemClock()
    let availability = AvailabilityTracker(store: store, clock: clock)
    let core = SaleCore(store: store, clock: clock, availability: availability)
    let expiry = HoldExpiryJob(store: store, clock: clock) { expired in
      for saleID in Set(expired.map(\.saleID)) { availability.noteReturned(saleID) }
    }
    // Holds that expired while no process ran go back before the first call.
    let released = try await expiry.expireDue()
    logger.info("store open", metadata: ["store": "\(self.store)", "expired-at-start": "\(released)"])
    services.append(.init(service: availability))
    services.append(.init(service: expiry))
    if demoSale {
      let now = clock.now()
      let sale = try await core.createSale(
        SaleDefinition(
          itemID: "demo-phone", itemName: "Demo phone", description: "A demo sale created by --demo-sale",
          price: Money(currency: "EUR", amountMinor: 49_900), quantity: 10_000, startsAt: now,
          endsAt: now + .seconds(3600)),
        idempotencyKey: "demo-sale")
      printNow("demo sale \(sale.id.rawValue)")
    }
    return core
  }

  private static func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let string = String(cString: value)
    return string.isEmpty ? nil : string
  }

  private static func randomToken() -> String {
    (0..<32).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined()
  }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
