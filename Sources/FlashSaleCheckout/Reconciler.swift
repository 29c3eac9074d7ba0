public import FlashSaleDomain

/// A payment in the provider's own records, with how many captures it had.
public struct ProviderRecord: Hashable, Sendable {
  public var payment: ProviderPayment
  public var captures: Int

  public init(payment: ProviderPayment, captures: Int) {
    self.payment = payment
    self.captures = captures
  }
}

/// The provider's records (its settlement report), by our reference.
public protocol ProviderRecords: Sendable {
  /// Every payment whose reference is one of `references`.
  func payments(references: [String]) async throws -> [ProviderRecord]
}

/// What reconciling a sale found.
public struct ReconciliationReport: Hashable, Sendable {
  /// Each mismatch, naming the rows: "order ord_x is completed but has no payment".
  public var mismatches: [String] = []
  /// Checkouts still running or compensating (not mismatches: they are not done).
  public var unfinished: [CheckoutID] = []
  public var checkouts = 0
  public var orders = 0
  public var events = 0
  public var providerPayments = 0

  public init() {}
}

/// Joins a sale's bookings, checkouts, orders, outbox events and the
/// provider's payments, and reports every way they disagree: what
/// `flashsale reconcile` prints.
public struct Reconciler: Sendable {
  private let store: any CheckoutStore
  private let bookings: any SaleStore
  private let provider: any ProviderRecords

  public init(store: any CheckoutStore, bookings: any SaleStore, provider: any ProviderRecords) {
    self.store = store
    self.bookings = bookings
    self.provider = provider
  }

  public func reconcile(_ saleID: SaleID) async throws -> ReconciliationReport {
    var report = ReconciliationReport()
    let checkouts = try await store.checkouts(saleID: saleID)
    report.checkouts = checkouts.count
    let byID = Dictionary(checkouts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })

    var orders: [Order] = []
    var cursor: OrderCursor?
    repeat {
      let page = try await store.orders(.sale(saleID), limit: 1000, before: cursor)
      orders += page
      cursor = page.count == 1000 ? page.last.map { OrderCursor(createdAt: $0.createdAt, id: $0.id) } : nil
    } while cursor != nil
    report.orders = orders.count

    var events: [TransactionEvent] = []
    var offset: UInt64 = 1
    var expected: UInt64 = 1
    while true {
      let page = try await store.events(from: offset, limit: 5000)
      for event in page {
        if event.offset != expected {
          report.mismatches.append("the event stream jumps from offset \(expected - 1) to \(event.offset)")
        }
        expected = event.offset + 1
      }
      events += page.filter { $0.saleID == saleID }
      guard let last = page.last, page.count == 5000 else { break }
      offset = last.offset + 1
    }
    report.events = events.count
    let eventsByCheckout = Dictionary(grouping: events, by: \.checkoutID)

    let records = try await provider.payments(references: checkouts.map(\.id.rawValue))
    report.providerPayments = records.count
    let recordsByReference = Dictionary(grouping: records, by: { CheckoutID($0.payment.reference) })

    // Orders: each belongs to a checkout of the sale, one per checkout; a completed one is paid.
    var ordersByCheckout: [CheckoutID: [Order]] = [:]
    for order in orders {
      ordersByCheckout[order.checkoutID, default: []].append(order)
      guard let checkout = byID[order.checkoutID] else {
        report.mismatches.append("order \(order.id) belongs to no checkout of the sale (checkout \(order.checkoutID))")
        continue
      }
      if order.status == .completed {
        if order.paymentID == nil {
          report.mismatches.append("order \(order.id) is completed but has no payment")
        } else if order.paymentID != checkout.paymentID {
          report.mismatches.append(
            "order \(order.id) is paid by \(order.paymentID ?? "-") but its checkout \(checkout.id) by \(checkout.paymentID ?? "-")")
        }
        if checkout.state != .completed {
          report.mismatches.append("order \(order.id) is completed but checkout \(checkout.id) is \(checkout.state)")
        }
      }
    }
    for (checkoutID, list) in ordersByCheckout where list.count > 1 {
      report.mismatches.append("checkout \(checkoutID) has \(list.count) orders: \(list.map(\.id).sorted())")
    }

    for checkout in checkouts {
      if !checkout.state.isFinal {
        report.unfinished.append(checkout.id)
        continue
      }
      let kinds = (eventsByCheckout[checkout.id] ?? []).map(\.kind)
      for kind in Set(kinds) where kinds.filter({ $0 == kind }).count > 1 {
        report.mismatches.append("checkout \(checkout.id) emitted \(kind) more than once")
      }
      let payments = recordsByReference[checkout.id] ?? []
      if payments.count > 1 {
        report.mismatches.append(
          "checkout \(checkout.id) has \(payments.count) payments at the provider: \(payments.map(\.payment.id).sorted())")
      }
      for record in payments where record.captures > 1 {
        report.mismatches.append("payment \(record.payment.id) was captured \(record.captures) times")
      }
      guard let booking = try await bookings.booking(checkout.bookingID) else {
        report.mismatches.append("checkout \(checkout.id) is for booking \(checkout.bookingID), which does not exist")
        continue
      }
      let order = ordersByCheckout[checkout.id]?.first
      switch checkout.state {
      case .completed:
        if booking.status != .booked || booking.fencingToken != checkout.fencingToken {
          report.mismatches.append(
            "checkout \(checkout.id) is completed but booking \(booking.id) is \(booking.status) (token \(booking.fencingToken))")
        }
        if order?.status != .completed {
          report.mismatches.append("checkout \(checkout.id) is completed but its order is \(order.map { "\($0.status)" } ?? "missing")")
        }
        let captured = payments.filter { $0.payment.status == .captured }
        if captured.count != 1 || captured.first?.payment.id != checkout.paymentID {
          report.mismatches.append(
            "checkout \(checkout.id) is completed but the provider shows \(payments.map { "\($0.payment.id) \($0.payment.status)" })")
        } else if let payment = captured.first?.payment, payment.capturedMinor != checkout.amount.amountMinor {
          report.mismatches.append(
            "payment \(payment.id) captured \(payment.capturedMinor), checkout \(checkout.id) charges \(checkout.amount.amountMinor)")
        }
        for kind in [TransactionEvent.Kind.paymentAuthorized, .orderCreated, .bookingConfirmed, .paymentCaptured]
        where !kinds.contains(kind) {
          report.mismatches.append("checkout \(checkout.id) is completed but emitted no \(kind)")
        }
      case .compensated:
        if booking.status == .booked, booking.fencingToken == checkout.fencingToken {
          report.mismatches.append("checkout \(checkout.id) is compensated but booking \(booking.id) is still booked")
        }
        if let order, order.status != .cancelled {
          report.mismatches.append("checkout \(checkout.id) is compensated but order \(order.id) is \(order.status)")
        }
        for record in payments where record.payment.status == .authorized || record.payment.status == .captured {
          report.mismatches.append(
            "checkout \(checkout.id) is compensated but payment \(record.payment.id) is \(record.payment.status)")
        }
      case .running, .compensating:
        break
      }
    }
    return report
  }
}
