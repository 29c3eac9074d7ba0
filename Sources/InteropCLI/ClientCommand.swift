import ArgumentParser
import InteropService
import RPCCore
import RPCHTTP2

/// `flashsale-interop client`: runs the interop test cases against a server.
struct ClientCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "client", abstract: "Run the gRPC interop test cases against a TestService server.")

  @Option(help: "The server's host.")
  var host: String = "127.0.0.1"

  @Option(help: "The server's port.")
  var port: Int

  @Option(name: .customLong("test-case"), help: "A case name, a comma-separated list, or all.")
  var testCase: String = "all"

  func run() async throws {
    let names = testCase == "all" ? InteropTestCases.all.map(\.name) : testCase.split(separator: ",").map(String.init)
    let cases = InteropTestCases.all.filter { names.contains($0.name) }
    guard cases.count == names.count else {
      throw ValidationError("unknown test case in \(testCase); known: \(InteropTestCases.all.map(\.name))")
    }
    let client = RPCClient(configuration: RPCClientConfiguration(targets: [.init(host: host, port: port)]))
    defer { client.close() }
    var failures = 0
    for testCase in cases {
      do {
        try await testCase.run(client)
        print("PASS \(testCase.name)")
      } catch {
        failures += 1
        print("FAIL \(testCase.name): \(error)")
      }
    }
    if failures > 0 { throw ExitCode(1) }
  }
}
