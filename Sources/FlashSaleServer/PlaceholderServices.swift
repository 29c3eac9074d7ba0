public import FlashSaleAPI
public import RPCCore
import StandardProtos

/// The answer of every method whose behaviour is not built yet: UNIMPLEMENTED,
/// with an `ErrorInfo` whose reason is `NOT_IMPLEMENTED`.
func notImplemented(_ context: ServerContext) -> RPCError {
  RPCError(
    code: .unimplemented,
    message: "\(context.descriptor.path) is not implemented yet",
    details: [
      .errorInfo(
        Google_Rpc_ErrorInfo(reason: "NOT_IMPLEMENTED", domain: "flashsale.v1", metadata: ["method": context.descriptor.path]))
    ])
}

/// `flashsale.v1.Inventory` until the sale core is built: every method answers
/// UNIMPLEMENTED; `CreateSale` checks the admin role first.
public struct InventoryPlaceholder: Inventory.ServiceProtocol {
  public init() {}

  public func createSale(_ request: CreateSaleRequest, context: ServerContext) -> Reply<Sale> {
    do {
      try context.requireRole(CallerIdentity.adminRole)
    } catch {
      return .failure(error)
    }
    return .failure(notImplemented(context))
  }

  public func getSale(_ request: GetSaleRequest, context: ServerContext) -> Reply<Sale> {
    .failure(notImplemented(context))
  }

  public func listSales(_ request: ListSalesRequest, context: ServerContext) -> Reply<ListSalesResponse> {
    .failure(notImplemented(context))
  }

  public func getAvailability(_ request: GetAvailabilityRequest, context: ServerContext) -> Reply<Availability> {
    .failure(notImplemented(context))
  }

  public func watchAvailability(
    _ request: WatchAvailabilityRequest, responses: ResponseWriter<Availability>, context: ServerContext
  ) async throws {
    throw notImplemented(context)
  }
}

/// `flashsale.v1.Booking` until the sale core is built: UNIMPLEMENTED after
/// checking that the call carries a user.
public struct BookingPlaceholder: Booking.ServiceProtocol {
  public init() {}

  private func answer<M>(_ context: ServerContext) -> Reply<M> {
    do {
      _ = try context.requireUser()
    } catch {
      return .failure(error)
    }
    return .failure(notImplemented(context))
  }

  public func book(_ request: BookRequest, context: ServerContext) -> Reply<BookResponse> { answer(context) }
  public func confirm(_ request: ConfirmRequest, context: ServerContext) -> Reply<ConfirmResponse> { answer(context) }
  public func cancel(_ request: CancelRequest, context: ServerContext) -> Reply<CancelResponse> { answer(context) }
  public func getBooking(_ request: GetBookingRequest, context: ServerContext) -> Reply<BookingRecord> {
    answer(context)
  }
}

/// `flashsale.v1.Checkout` until the checkout saga is built.
public struct CheckoutPlaceholder: Checkout.ServiceProtocol {
  public init() {}

  public func startCheckout(_ request: StartCheckoutRequest, context: ServerContext) -> Reply<CheckoutRecord> {
    .failure(notImplemented(context))
  }

  public func getCheckout(_ request: GetCheckoutRequest, context: ServerContext) -> Reply<CheckoutRecord> {
    .failure(notImplemented(context))
  }

  public func watchTransactions(
    _ request: WatchTransactionsRequest, responses: ResponseWriter<TransactionEvent>, context: ServerContext
  ) async throws {
    throw notImplemented(context)
  }
}

/// `flashsale.v1.Payments` until the payment simulator is built.
public struct PaymentsPlaceholder: Payments.ServiceProtocol {
  public init() {}

  public func authorize(_ request: AuthorizeRequest, context: ServerContext) -> Reply<Payment> {
    .failure(notImplemented(context))
  }
  public func capture(_ request: CaptureRequest, context: ServerContext) -> Reply<Payment> {
    .failure(notImplemented(context))
  }
  public func void(_ request: VoidRequest, context: ServerContext) -> Reply<Payment> {
    .failure(notImplemented(context))
  }
  public func refund(_ request: RefundRequest, context: ServerContext) -> Reply<Payment> {
    .failure(notImplemented(context))
  }
  public func getPayment(_ request: GetPaymentRequest, context: ServerContext) -> Reply<Payment> {
    .failure(notImplemented(context))
  }
}
