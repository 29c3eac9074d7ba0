/// Why a message could not be transcoded: the path of the field at fault in
/// JSON names (`booking.userInfo.id`), and what is wrong with it.
public struct TranscodeError: Error, Hashable, Sendable, CustomStringConvertible {
  /// The field path, empty for the document itself.
  public var path: String
  public var message: String

  public init(path: String, _ message: String) {
    self.path = path
    self.message = message
  }

  public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}
