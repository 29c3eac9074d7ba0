import ArgumentParser
import CommandLineSupport
import InteropService
import Logging
import RPCHTTP2
import ServiceLifecycle

/// `flashsale-interop serve`: serves grpc.testing.TestService until SIGTERM/SIGINT.
struct ServeCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve", abstract: "Serve grpc.testing.TestService on 127.0.0.1.")

  @Option(help: "The TCP port (0: any free port, printed on standard output).")
  var port: Int = 0

  @Option(help: "The host to bind.")
  var host: String = "127.0.0.1"

  func run() async throws {
    let server = RPCServer(configuration: RPCServerConfiguration(host: host, port: port), services: [TestService()])
    try await server.start()
    printNow("listening on \(host):\(server.listeningPort ?? port)")
    let group = ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint],
        logger: Logger(label: "flashsale.interop")))
    try await group.run()
  }
}
