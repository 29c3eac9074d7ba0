/// Who makes a call: the end user on whose behalf it runs, and their roles.
///
/// The edge gateway authenticates users and forwards their identity as request
/// metadata (see ``CallerIdentity/userIDHeader``); an internal service trusts it
/// only from callers that present the internal service credential.
public struct CallerIdentity: Hashable, Sendable, CustomStringConvertible {
  /// The user id; empty for a service acting on its own behalf.
  public var userID: String
  /// The roles, e.g. `admin`.
  public var roles: Set<String>

  /// An identity.
  public init(userID: String, roles: Set<String> = []) {
    self.userID = userID
    self.roles = roles
  }

  /// The role that admin calls (creating a sale, …) require.
  public static let adminRole = "admin"

  /// Request metadata: the internal service credential, a shared token.
  public static let serviceTokenHeader = "x-flashsale-service-token"
  /// Request metadata: the id of the user the call runs for.
  public static let userIDHeader = "x-flashsale-user-id"
  /// Request metadata: the user's roles, comma separated (`admin,buyer`).
  public static let rolesHeader = "x-flashsale-roles"

  public var description: String {
    roles.isEmpty ? "user \(userID)" : "user \(userID) (\(roles.sorted().joined(separator: ",")))"
  }

  /// Writes the identity into request metadata, with the service token.
  public func apply(to metadata: inout Metadata, serviceToken: String) {
    metadata[Self.serviceTokenHeader] = serviceToken
    metadata[Self.userIDHeader] = userID
    if !roles.isEmpty { metadata[Self.rolesHeader] = roles.sorted().joined(separator: ",") }
  }
}

/// Decides who a call comes from, before its handler runs.
public protocol CallAuthenticator: Sendable {
  /// The caller of a call with `metadata`, or `nil` for an anonymous call.
  ///
  /// - Throws: ``RPCError`` (``StatusCode/unauthenticated``) to refuse the call.
  func authenticate(_ descriptor: MethodDescriptor, metadata: Metadata) throws(RPCError) -> CallerIdentity?
}

/// Trusts the identity headers of calls that present the shared internal
/// service token, and refuses identity headers that come without it.
///
/// Calls that carry neither are anonymous (health checks, reads); handlers that
/// need a user or a role say so with ``ServerContext/requireUser()`` and
/// ``ServerContext/requireRole(_:)``.
public struct SharedTokenAuthenticator: CallAuthenticator {
  private let token: [UInt8]

  /// An authenticator accepting `token`.
  public init(token: String) {
    self.token = Array(token.utf8)
  }

  public func authenticate(_ descriptor: MethodDescriptor, metadata: Metadata) throws(RPCError)
    -> CallerIdentity?
  {
    // One pass over the metadata, which is usually short; nothing allocated
    // unless roles are sent.
    var presented: String?
    var userID: String?
    var roleList: String?
    // Names compared only when their length matches (the three differ in
    // length): most calls carry other headers, and a string comparison that
    // fails costs ~80 instructions, a length read a few.
    for entry in metadata {
      switch entry.key.utf8.count {
      case Self.serviceTokenHeaderLength where entry.key == CallerIdentity.serviceTokenHeader:
        presented = presented ?? entry.value.stringValue
      case Self.userIDHeaderLength where entry.key == CallerIdentity.userIDHeader:
        userID = userID ?? entry.value.stringValue
      case Self.rolesHeaderLength where entry.key == CallerIdentity.rolesHeader:
        roleList = roleList ?? entry.value.stringValue
      default: break
      }
    }
    guard let presented else {
      if userID != nil || roleList != nil {
        throw RPCError(
          code: .unauthenticated,
          message: "identity headers need the internal service credential (\(CallerIdentity.serviceTokenHeader))")
      }
      return nil
    }
    guard Self.constantTimeEqual(presented, token) else {
      throw RPCError(code: .unauthenticated, message: "invalid internal service credential")
    }
    guard let roleList else { return CallerIdentity(userID: userID ?? "") }
    let roles = roleList.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
    return CallerIdentity(userID: userID ?? "", roles: Set(roles))
  }

  // Computed, not stored: a stored static is initialized lazily, which costs
  // every call a `swift_once` check; these fold to constants.
  private static var serviceTokenHeaderLength: Int { CallerIdentity.serviceTokenHeader.utf8.count }
  private static var userIDHeaderLength: Int { CallerIdentity.userIDHeader.utf8.count }
  private static var rolesHeaderLength: Int { CallerIdentity.rolesHeader.utf8.count }

  /// Whether `presented` is the token, in time that depends on its length only.
  private static func constantTimeEqual(_ presented: String, _ token: [UInt8]) -> Bool {
    var presented = presented
    return presented.withUTF8 { bytes in
      guard bytes.count == token.count else { return false }
      var diff: UInt8 = 0
      for i in 0..<bytes.count { diff |= bytes[i] ^ token[i] }
      return diff == 0
    }
  }
}

extension Substring {
  fileprivate func trimmingSpaces() -> String {
    String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
  }
}
