#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive advisory lock (`flock`) on a file, held until the value is
/// released: how one process claims an embedded store for itself.
public final class ExclusiveFileLock: Sendable {
  private let descriptor: Int32

  /// Takes the lock on `path` (creating the file), or throws at once when
  /// another process holds it; `holder` names that process in the error.
  public init(path: String, holder: String) throws(SQLiteError) {
    let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw SQLiteError(code: 14, message: "cannot open the lock file \(path): errno \(errno)")
    }
    guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
      let error = errno
      close(descriptor)
      if error == EWOULDBLOCK {
        throw SQLiteError(
          code: 5,
          message: "\(path) is locked: \(holder) is running. One process serves an SQLite store; use PostgreSQL for several")
      }
      throw SQLiteError(code: 14, message: "cannot lock \(path): errno \(error)")
    }
    self.descriptor = descriptor
  }

  deinit {
    close(descriptor)  // releases the lock
  }
}
