import ArgumentParser

/// `flashsale-interop`: the gRPC interop test server and client.
@main
struct InteropCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flashsale-interop",
    abstract: "The gRPC interop TestService (server) and the interop test cases (client).",
    subcommands: [ServeCommand.self, ClientCommand.self])
}
