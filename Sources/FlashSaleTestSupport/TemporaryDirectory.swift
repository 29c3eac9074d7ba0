import Foundation

/// A directory for a test run's files, removed when the process exits
/// normally (and left in the system temporary directory otherwise).
public final class TemporaryDirectory: Sendable {
  /// The directory of this test process.
  public static let shared = TemporaryDirectory()

  /// Its path.
  public let path: String

  private init() {
    let base = FileManager.default.temporaryDirectory.path
    path = base + "/flashsale-tests-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: TemporaryDirectory.shared.path) }
  }

  /// The path of a file named `name` in the directory.
  public func file(_ name: String) -> String {
    path + "/" + name
  }
}
