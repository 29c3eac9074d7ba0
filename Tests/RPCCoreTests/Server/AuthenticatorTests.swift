import Testing

@testable import RPCCore

@Suite("SharedTokenAuthenticator")
struct AuthenticatorTests {
  let authenticator = SharedTokenAuthenticator(token: "s3cret")
  let method = MethodDescriptor(service: "flashsale.v1.Booking", method: "Book", kind: .unary)

  @Test("a call with neither token nor identity is anonymous")
  func anonymous() throws {
    #expect(try authenticator.authenticate(method, metadata: [:]) == nil)
  }

  @Test("identity with the right token is trusted")
  func trusted() throws {
    let caller = try authenticator.authenticate(
      method,
      metadata: [
        CallerIdentity.serviceTokenHeader: "s3cret", CallerIdentity.userIDHeader: "u-42",
        CallerIdentity.rolesHeader: "admin, buyer",
      ])
    #expect(caller == CallerIdentity(userID: "u-42", roles: ["admin", "buyer"]))
  }

  @Test("identity without a token, or with a wrong one, is UNAUTHENTICATED")
  func refused() {
    #expect(throws: RPCError.self) {
      try authenticator.authenticate(method, metadata: [CallerIdentity.userIDHeader: "u-42"])
    }
    do {
      _ = try authenticator.authenticate(
        method, metadata: [CallerIdentity.serviceTokenHeader: "guess", CallerIdentity.userIDHeader: "u-42"])
      Issue.record("a wrong token was accepted")
    } catch {
      #expect(error.code == .unauthenticated)
    }
  }

  @Test("roles are required where asked")
  func roles() throws {
    let context = ServerContext(
      descriptor: method, requestMetadata: [:], deadline: nil, peer: "test",
      caller: CallerIdentity(userID: "u", roles: ["buyer"]))
    #expect(throws: RPCError.self) { try context.requireRole(CallerIdentity.adminRole) }
    #expect(try context.requireUser() == "u")
    let anonymous = ServerContext(descriptor: method, requestMetadata: [:], deadline: nil, peer: "test", caller: nil)
    do {
      try anonymous.requireRole(CallerIdentity.adminRole)
    } catch {
      #expect(error.code == .unauthenticated)
    }
  }

  @Test("a deadline given as an instant reads back as that instant, to the nanosecond")
  func deadlineRoundTrip() throws {
    for offset in [Duration.milliseconds(-5), .zero, .seconds(5), .seconds(86_400)] {
      let deadline = ContinuousClock.now.advanced(by: offset)
      let context = ServerContext(descriptor: method, requestMetadata: [:], deadline: deadline, peer: "test", caller: nil)
      let back = try #require(context.deadline)
      #expect(abs((back - deadline) / .nanoseconds(1)) < 1)
    }
    #expect(ServerContext(descriptor: method, requestMetadata: [:], deadline: nil, peer: "test", caller: nil).deadline == nil)
  }

  @Test("cancellation handlers run once, at once when already cancelled")
  func cancellation() {
    let context = ServerContext(descriptor: method, requestMetadata: [:], deadline: nil, peer: "test", caller: nil)
    final class Counter: @unchecked Sendable { var value = 0 }
    let counter = Counter()
    context.onCancel { counter.value += 1 }
    context.cancel()
    context.cancel()
    context.onCancel { counter.value += 10 }
    #expect(counter.value == 11)
    #expect(context.isCancelled)
  }
}
