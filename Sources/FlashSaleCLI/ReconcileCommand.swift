import ArgumentParser
import CommandLineSupport
import FlashSaleCheckout
import FlashSaleDomain
import PaymentSimulator

/// `flashsale reconcile --sale ID`: joins a sale's bookings, checkouts,
/// orders, transaction events and the payment provider's records, and exits
/// non-zero, naming the rows, on any mismatch.
struct ReconcileCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "reconcile",
    abstract: "Check a sale's checkouts, orders, events and payments against each other.",
    discussion: """
      For every finished checkout of the sale: a completed one has its booking booked with its \
      fencing token, one completed order paid by its payment, exactly one capture of the right \
      amount at the provider, and each of its events once; a compensated one has its unit back, \
      its order cancelled (if any) and no payment left authorized or captured. Orders belong to a \
      checkout; a completed order has a payment; the event stream has no gap. The provider's \
      records are the simulator's file (--payments-store). Exit status: 0 when everything \
      matches, 1 on any mismatch (each is printed), 2 when the sale does not exist, 3 when a store \
      cannot be read. Checkouts still running are listed, not counted as mismatches.
      """)

  @Option(help: "The store: sqlite:PATH or postgres://USER@HOST:PORT/DB.")
  var store: StoreLocation = .sqlite(path: "flashsale.db")

  @Option(help: "The payment simulator's records. Default: payments-sim.db beside an SQLite --store.")
  var paymentsStore: String?

  @Option(help: "The sale to reconcile.")
  var sale: String

  func run() async throws {
    let report: ReconciliationReport
    do {
      let sales = try await store.open()
      guard try await sales.sale(SaleID(sale)) != nil else {
        printNow("reconcile: no sale \(sale)")
        throw ExitCode(2)
      }
      let records = SimulatorRecords(
        simulator: try PaymentSimulator(path: paymentsStore ?? store.sibling("payments-sim.db")))
      report = try await Reconciler(store: try await store.openCheckoutStore(), bookings: sales, provider: records)
        .reconcile(SaleID(sale))
    } catch let exit as ExitCode {
      throw exit
    } catch {
      printNow("reconcile: cannot read the stores: \(error)")
      throw ExitCode(3)
    }
    printNow(
      "sale \(sale): \(report.checkouts) checkouts, \(report.orders) orders, \(report.events) events, \(report.providerPayments) provider payments")
    for id in report.unfinished { printNow("unfinished: checkout \(id)") }
    if report.mismatches.isEmpty {
      printNow("reconcile passed")
      return
    }
    for mismatch in report.mismatches { printNow("MISMATCH: \(mismatch)") }
    printNow("reconcile failed: \(report.mismatches.count) mismatch(es)")
    throw ExitCode(1)
  }
}

/// The simulator's records as the provider's report.
private struct SimulatorRecords: ProviderRecords {
  let simulator: PaymentSimulator

  func payments(references: [String]) async throws -> [ProviderRecord] {
    try await simulator.report(references: references).map { payment, captures in
      let status: ProviderPayment.Status =
        switch payment.status {
        case .authorized: .authorized
        case .captured: .captured
        case .voided: .voided
        case .refunded: .refunded
        case .declined: .declined
        }
      return ProviderRecord(
        payment: ProviderPayment(
          id: payment.id, status: status,
          amount: payment.amount, capturedMinor: payment.capturedMinor, refundedMinor: payment.refundedMinor,
          reference: payment.reference, declineReason: payment.declineReason),
        captures: captures)
    }
  }
}
