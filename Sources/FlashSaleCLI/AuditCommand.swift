import ArgumentParser
import CommandLineSupport
import FlashSaleDomain

/// `flashsale audit --sale ID`: checks a sale's invariants against the store
/// and exits non-zero, naming the offending rows, when one is broken.
struct AuditCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "audit",
    abstract: "Check a sale's invariants against the store.",
    discussion: """
      Checks that available + held + booked = quantity, that no unit is held or booked twice, \
      that no user is above the per-user limit, and that the store's counters match its rows. \
      Exit status: 0 when every check passes, 1 when one fails (each finding is printed), \
      2 when the sale does not exist, 3 when the store cannot be read. Safe while servers run.
      """)

  @Option(help: "The store: sqlite:PATH or postgres://USER@HOST:PORT/DB.")
  var store: StoreLocation = .sqlite(path: "flashsale.db")

  @Option(help: "The sale to audit.")
  var sale: String

  func run() async throws {
    let store: any SaleStore
    let findings: [AuditFinding]
    let counts: UnitCounts
    do {
      store = try await self.store.open()
      findings = try await store.audit(SaleID(sale))
      counts = try await store.counts(SaleID(sale))
    } catch let error as DomainError where error.reason == .saleNotFound {
      printNow("audit: \(error.message)")
      throw ExitCode(2)
    } catch {
      printNow("audit: cannot read the store \(self.store): \(error)")
      throw ExitCode(3)
    }
    printNow(
      "sale \(sale): quantity \(counts.quantity), available \(counts.available), held \(counts.held), booked \(counts.booked)")
    if findings.isEmpty {
      printNow("audit passed")
      return
    }
    for finding in findings { printNow("FAIL: \(finding)") }
    printNow("audit failed: \(findings.count) finding(s)")
    throw ExitCode(1)
  }
}
