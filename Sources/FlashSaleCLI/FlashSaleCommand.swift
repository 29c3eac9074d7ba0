import ArgumentParser

/// `flashsale`: the flash-sale platform's command line.
@main
struct FlashSaleCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flashsale",
    abstract: "The flash-sale platform: gRPC services for inventory, booking, checkout and a payment simulator.",
    subcommands: [ServeCommand.self, AuditCommand.self, ReconcileCommand.self])
}
