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
