import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Makes the commits of a WAL-mode database durable in groups, on a thread of
/// its own, so that the writer goes on with its next transaction while the
/// disk flushes the last one.
///
/// With `synchronous = FULL` SQLite fsyncs the write-ahead log inside every
/// COMMIT, holding the single write lock meanwhile: the writer sits idle for
/// the whole flush, and nothing overlaps. The connection instead runs with
/// `synchronous = NORMAL` (a commit writes its WAL frames, no fsync; SQLite
/// still syncs the WAL before a checkpoint and the database after one), and
/// this syncer flushes the WAL file with `fdatasync` before any caller is
/// answered:
///
///     writer:  [txn 1][txn 2][txn 3] ...      (each ends with ``noteCommit()``)
///     syncer:      [fsync ≥1]  [fsync ≥3] ... (one flush covers every commit before it)
///     caller of txn 2 is answered after the second fsync, never before.
///
/// This is group commit with pipelining, as database servers do it. An
/// acknowledged change has reached the disk as with FULL: the flush covers the
/// whole file (header and frames) as of its start, and a commit counted before
/// the flush started is in it. (With SQLite's default powersafe-overwrite,
/// FULL adds nothing else; without it FULL also pads commits to sectors.)
///
/// A failed `fdatasync` is final: the kernel may have dropped the dirty pages,
/// so every waiting and later caller gets the error, as PostgreSQL treats a
/// failed fsync (a restart recovers from what is on disk).
public final class WALSyncer: Sendable {
  private struct State {
    /// Commits noted so far, and how many of them are known durable.
    var committed: UInt64 = 0
    var durable: UInt64 = 0
    var syncing = false
    var failure: SQLiteError?
    var waiters: [(ticket: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
    /// Flushes done (for tests and metrics).
    var flushes = 0
  }

  private let state = Mutex(State())
  private let walPath: String
  private let queue: DispatchQueue
  /// The descriptor of the WAL file, reopened when SQLite replaced the file.
  private let file = Mutex<(descriptor: Int32, inode: UInt64)?>(nil)

  /// A syncer of the WAL file at `walPath` (the database's path + `-wal`).
  public init(walPath: String, label: String) {
    self.walPath = walPath
    self.queue = DispatchQueue(label: label)
  }

  deinit {
    if let open = file.withLock({ $0 }) { close(open.descriptor) }
  }

  /// Records that a transaction has committed (call on the writer, right
  /// after the commit); returns its ticket for ``waitUntilDurable(_:)``.
  public func noteCommit() -> UInt64 {
    state.withLock { state in
      state.committed += 1
      return state.committed
    }
  }

  /// The ticket of the last commit noted: a reader that has seen the
  /// database waits for it before answering, so that it never tells about a
  /// change that a power loss could still take back.
  public var lastCommit: UInt64 { state.withLock { $0.committed } }

  /// The error of the flush that failed, if one did: no more writes then.
  public var failure: SQLiteError? { state.withLock { $0.failure } }

  /// How many times the WAL was flushed.
  public var flushes: Int { state.withLock { $0.flushes } }

  /// Returns once the commit with `ticket` (and every one before it) is on disk.
  public func waitUntilDurable(_ ticket: UInt64) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
      let (answer, startFlush) = state.withLock { state -> (Result<Void, any Error>?, Bool) in
        if let failure = state.failure { return (.failure(failure), false) }
        if ticket <= state.durable { return (.success(()), false) }
        state.waiters.append((ticket, continuation))
        guard !state.syncing else { return (nil, false) }
        state.syncing = true
        return (nil, true)
      }
      if let answer { continuation.resume(with: answer) }
      if startFlush { queue.async { self.flushWhileWanted() } }
    }
  }

  /// Flushes until no caller waits for a commit that is not yet durable.
  private func flushWhileWanted() {
    while true {
      let target = state.withLock { $0.committed }
      let error = flush()
      let (ready, again) = state.withLock { state -> ([CheckedContinuation<Void, any Error>], Bool) in
        state.flushes += 1
        if let error {
          state.failure = error
          state.syncing = false
          defer { state.waiters = [] }
          return (state.waiters.map(\.continuation), false)
        }
        state.durable = max(state.durable, target)
        let durable = state.durable
        let ready = state.waiters.filter { $0.ticket <= durable }.map(\.continuation)
        state.waiters.removeAll { $0.ticket <= durable }
        if state.waiters.isEmpty { state.syncing = false }
        return (ready, !state.waiters.isEmpty)
      }
      if let error {
        for continuation in ready { continuation.resume(throwing: error) }
        return
      }
      for continuation in ready { continuation.resume() }
      if !again { return }
    }
  }

  /// One `fdatasync` of the WAL file as it is now; `nil` on success.
  private func flush() -> SQLiteError? {
    file.withLock { file -> SQLiteError? in
      var current = stat()
      guard stat(walPath, &current) == 0 else {
        // SQLite keeps the log while a connection is open: a missing log
        // means the path is not the one SQLite writes, and nothing would be
        // flushed. That is a failure, never a success.
        return SQLiteError(code: 10, message: "cannot find the write-ahead log \(walPath): errno \(errno)")
      }
      if let open = file, open.inode != UInt64(current.st_ino) {
        close(open.descriptor)
        file = nil
      }
      if file == nil {
        let descriptor = open(walPath, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
          return SQLiteError(code: 10, message: "cannot open \(walPath) to flush it: errno \(errno)")
        }
        file = (descriptor, UInt64(current.st_ino))
      }
      guard fdatasync(file!.descriptor) == 0 else {
        return SQLiteError(code: 10, message: "fdatasync of \(walPath) failed: errno \(errno)")
      }
      return nil
    }
  }
}
