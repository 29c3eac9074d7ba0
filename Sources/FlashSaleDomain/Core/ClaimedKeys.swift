import Synchronization

/// The idempotency keys that claims have used, as 64-bit fingerprints, kept in
/// memory so that a `Book` refused from memory (sold out, not started, …)
/// needs no store read to know that it is not the retry of a granted claim.
///
/// Only for a store that this process alone writes (``SaleStore/isSoleWriter``):
/// every key then either was in the store when the index loaded it, or went
/// through ``record(_:)`` before its claim was submitted. A key that is not
/// in the index was never used, so the refusal is final; a key that is (or
/// shares a fingerprint with one that is) goes the claim's way, where the
/// store answers with the booking it made, or refuses. Claims run in order,
/// so a retry sent while the first attempt is still in its batch gets that
/// attempt's booking.
///
/// Eight bytes per key (about 50 MB for a sale of five million units).
public final class ClaimedKeys: Sendable {
  private enum State {
    /// The store's keys are being read; keys recorded meanwhile wait here.
    case loading(recorded: Set<UInt64>)
    case ready(Set<UInt64>)
    /// Loading failed: the index is not used (refusals read the store).
    case unavailable
  }

  private let state = Mutex(State.loading(recorded: []))

  public init() {}

  /// Loads the fingerprints of the keys already in `store`.
  public func load(from store: any SaleStore) async {
    do {
      let stored = try await store.idempotencyKeyFingerprints()
      state.withLock { state in
        guard case .loading(let recorded) = state else { return }
        state = .ready(stored.union(recorded))
      }
    } catch {
      state.withLock { $0 = .unavailable }
    }
  }

  /// Notes that a claim is about to use `key`.
  public func record(_ key: String) {
    let fingerprint = Self.fingerprint(key)
    state.withLock { state in
      switch state {
      case .loading(var recorded):
        state = .unavailable  // no copy while mutating
        recorded.insert(fingerprint)
        state = .loading(recorded: recorded)
      case .ready(var keys):
        state = .unavailable
        keys.insert(fingerprint)
        state = .ready(keys)
      case .unavailable:
        break
      }
    }
  }

  /// Whether `key` was surely never used: `nil` while the index is not ready.
  public func neverUsed(_ key: String) -> Bool? {
    let fingerprint = Self.fingerprint(key)
    return state.withLock { state in
      guard case .ready(let keys) = state else { return nil }
      return !keys.contains(fingerprint)
    }
  }

  /// The 64-bit FNV-1a hash of the key's UTF-8 bytes (stable across runs).
  public static func fingerprint(_ key: String) -> UInt64 {
    var key = key
    return key.withUTF8 { fingerprint(UnsafeRawBufferPointer($0)) }
  }

  /// The fingerprint of a key given as its UTF-8 bytes.
  public static func fingerprint(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
      hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
    }
    return hash
  }
}
