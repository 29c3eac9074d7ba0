import FlashSaleCheckout
import FlashSaleDomain
import Synchronization

/// An in-memory payment provider whose calls follow a script: each call of
/// an operation takes the next behaviour queued for it (then `ok` once the
/// queue is empty). It keeps idempotency like a real provider: a repeated key
/// acts no second time.
final class ScriptedPaymentGateway: PaymentGateway {
  enum Behaviour {
    case ok
    /// Fails before acting.
    case unavailable
    /// Acts, then loses the answer.
    case lostAnswer
    /// Authorize only: declines.
    case decline
  }

  private struct State {
    var script: [String: [Behaviour]] = [:]
    var payments: [String: ProviderPayment] = [:]
    var byAuthorizeKey: [String: String] = [:]
    var seenKeys: Set<String> = []
    var calls: [String] = []
    var captures: [String: Int] = [:]
  }

  private let state = Mutex(State())
  /// Runs before an operation acts (a test moves its clock here).
  let beforeCall: @Sendable (String) -> Void

  init(beforeCall: @escaping @Sendable (String) -> Void = { _ in }) {
    self.beforeCall = beforeCall
  }

  /// Queues behaviours for `operation` (authorize, capture, void, refund).
  func script(_ operation: String, _ behaviours: [Behaviour]) {
    state.withLock { $0.script[operation, default: []] += behaviours }
  }

  var calls: [String] { state.withLock { $0.calls } }
  var payments: [ProviderPayment] { state.withLock { Array($0.payments.values) } }
  func captures(_ id: String) -> Int { state.withLock { $0.captures[id] ?? 0 } }

  private func next(_ operation: String) -> Behaviour {
    state.withLock { state in
      state.calls.append(operation)
      guard var queue = state.script[operation], !queue.isEmpty else { return .ok }
      let behaviour = queue.removeFirst()
      state.script[operation] = queue
      return behaviour
    }
  }

  func authorize(
    idempotencyKey: String, paymentMethodToken: String, amount: Money, reference: String
  ) async throws(PaymentGatewayError) -> ProviderPayment {
    beforeCall("authorize")
    let behaviour = next("authorize")
    if case .unavailable = behaviour { throw .unavailable("scripted outage") }
    let payment = state.withLock { state in
      if let id = state.byAuthorizeKey[idempotencyKey] { return state.payments[id]! }
      let id = IdentifierFactory.make(prefix: "pay")
      let payment = ProviderPayment(
        id: id, status: behaviour == .decline ? .declined : .authorized, amount: amount, reference: reference,
        declineReason: behaviour == .decline ? "card_declined" : nil)
      state.payments[id] = payment
      state.byAuthorizeKey[idempotencyKey] = id
      return payment
    }
    if case .lostAnswer = behaviour { throw .unavailable("scripted lost answer") }
    return payment
  }

  func capture(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment {
    try await change("capture", paymentID, idempotencyKey, from: .authorized, to: .captured)
  }

  func void(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment {
    try await change("void", paymentID, idempotencyKey, from: .authorized, to: .voided)
  }

  func refund(paymentID: String, idempotencyKey: String) async throws(PaymentGatewayError) -> ProviderPayment {
    try await change("refund", paymentID, idempotencyKey, from: .captured, to: .refunded)
  }

  private func change(
    _ operation: String, _ id: String, _ key: String, from: ProviderPayment.Status, to: ProviderPayment.Status
  ) async throws(PaymentGatewayError) -> ProviderPayment {
    beforeCall(operation)
    let behaviour = next(operation)
    if case .unavailable = behaviour { throw .unavailable("scripted outage") }
    let result: Result<ProviderPayment, PaymentGatewayError> = state.withLock { state in
      guard var payment = state.payments[id] else { return .failure(.notFound(id)) }
      if state.seenKeys.contains(key) { return .success(payment) }
      guard payment.status == from else { return .failure(.rejected("payment is \(payment.status)")) }
      payment.status = to
      if to == .captured {
        payment.capturedMinor = payment.amount.amountMinor
        state.captures[id, default: 0] += 1
      }
      state.payments[id] = payment
      state.seenKeys.insert(key)
      return .success(payment)
    }
    let payment = try result.get()
    if case .lostAnswer = behaviour { throw .unavailable("scripted lost answer") }
    return payment
  }

  func lookup(paymentID: String) async throws(PaymentGatewayError) -> ProviderPayment {
    guard let payment = state.withLock({ $0.payments[paymentID] }) else { throw .notFound(paymentID) }
    return payment
  }

  func lookup(authorizeKey: String) async throws(PaymentGatewayError) -> ProviderPayment? {
    state.withLock { state in state.byAuthorizeKey[authorizeKey].flatMap { state.payments[$0] } }
  }
}
