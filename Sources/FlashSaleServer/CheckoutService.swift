public import FlashSaleAPI
public import FlashSaleCheckout
import FlashSaleDomain
public import RPCCore

/// `flashsale.v1.Checkout` over the checkout saga. `StartCheckout` and
/// `GetCheckout` run for the calling user; `ListOrders` lists the caller's
/// orders, or any user's or sale's for an admin; `WatchTransactions` (the
/// stream downstream services consume) needs the admin or checkout role.
public struct CheckoutService: FlashSaleAPI.Checkout.ServiceProtocol {
  private let saga: CheckoutSaga
  private let wait: Duration

  /// The longest page `ListOrders` returns.
  public static let maximumPageSize = 500
  /// Events read from the store per round of `WatchTransactions`.
  static let eventBatch = 500

  /// A service over `saga`; `StartCheckout` waits up to `wait` for the saga
  /// to end, then answers with it still running (it goes on regardless).
  public init(saga: CheckoutSaga, wait: Duration = .seconds(15)) {
    self.saga = saga
    self.wait = wait
  }

  public func startCheckout(_ request: StartCheckoutRequest, context: ServerContext) -> Reply<CheckoutRecord> {
    let user: String
    do {
      user = try context.requireUser()
    } catch {
      return .failure(error)
    }
    return .core { [saga, wait] in
      CheckoutMapping.record(
        try await saga.start(
          bookingID: BookingID(request.bookingID), fencingToken: request.fencingToken,
          paymentMethodToken: request.paymentMethodToken, idempotencyKey: request.idempotencyKey,
          user: UserID(user), wait: wait))
    }
  }

  public func getCheckout(_ request: GetCheckoutRequest, context: ServerContext) -> Reply<CheckoutRecord> {
    let user: String
    do {
      user = try context.requireUser()
    } catch {
      return .failure(error)
    }
    let isAdmin = context.caller?.roles.contains(CallerIdentity.adminRole) ?? false
    return .core { [saga] in
      CheckoutMapping.record(try await saga.checkout(CheckoutID(request.checkoutID), user: isAdmin ? nil : UserID(user)))
    }
  }

  public func listOrders(_ request: ListOrdersRequest, context: ServerContext) -> Reply<ListOrdersResponse> {
    let user: String
    do {
      user = try context.requireUser()
      if !request.saleID.isEmpty || (!request.userID.isEmpty && request.userID != user) {
        try context.requireRole(CallerIdentity.adminRole)
      }
    } catch {
      return .failure(error)
    }
    return .core { [saga] in
      guard (0...Int32(Self.maximumPageSize)).contains(request.pageSize) else {
        throw DomainError(
          .invalidArgument, "page_size: must be 0 (default 50) to \(Self.maximumPageSize)", field: "page_size")
      }
      if !request.saleID.isEmpty, !request.userID.isEmpty {
        throw DomainError(.invalidArgument, "user_id: give user_id or sale_id, not both", field: "user_id")
      }
      let filter: OrderFilter =
        request.saleID.isEmpty
        ? .user(UserID(request.userID.isEmpty ? user : request.userID)) : .sale(SaleID(request.saleID))
      let page = try await saga.orders(
        filter, pageSize: request.pageSize == 0 ? 50 : Int(request.pageSize),
        after: try CheckoutMapping.cursor(pageToken: request.pageToken))
      return ListOrdersResponse(
        orders: page.orders.map(CheckoutMapping.order), nextPageToken: page.next.map(CheckoutMapping.pageToken) ?? "")
    }
  }

  /// Sends every event from `from_offset` on (0: from the start) in offset
  /// order, then each new one as it commits. A reader that reconnects with
  /// the offset after the last one it saw misses nothing and sees nothing twice.
  public func watchTransactions(
    _ request: WatchTransactionsRequest, responses: ResponseWriter<FlashSaleAPI.TransactionEvent>,
    context: ServerContext
  ) async throws {
    try context.requireRole(anyOf: [CallerIdentity.adminRole, BookingService.checkoutRole])
    var wakeUps = saga.eventsCommitted.updates().makeAsyncIterator()
    var next = max(1, request.fromOffset)
    while true {
      let events: [FlashSaleCheckout.TransactionEvent]
      do {
        events = try await saga.events(from: next, limit: Self.eventBatch)
      } catch {
        throw DomainErrorMapping.rpcError(error)
      }
      for event in events {
        try await responses.write(CheckoutMapping.event(event))
        next = event.offset + 1
      }
      if events.count == Self.eventBatch { continue }
      guard await wakeUps.next() != nil else { return }
      try Task.checkCancellation()
    }
  }
}
