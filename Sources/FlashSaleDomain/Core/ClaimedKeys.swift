import Synchronization

/// The idempotency keys that bookings were made with, as 64-bit fingerprints,
/// kept in memory so that a `Book` refused from memory (sold out, not
/// started, …) needs no store read to know that it is not the retry of a
/// granted claim.
///
/// Only for a store that this process alone writes (``SaleStore/isSoleWriter``):
/// every key of a booking then either was in the store when the index loaded
/// it, or went through ``record(_:)`` before its claim was submitted. A key
/// that is neither used nor in a claim still running surely made no booking,
/// so the refusal is final; any other key (or one sharing a fingerprint with
/// it) goes the claim's way, where the store answers with the booking it
/// made, or refuses.
///
/// A claim the store refused (sold out, over the limit) made no booking: its
/// key is forgotten once no claim with it runs, so that the retries a
/// "sold out for now" invites are refused from memory again.
///
/// About 16–32 bytes per key of every sale in the store (a ``FingerprintTable``);
/// loading needs about three times that for a moment.
public final class ClaimedKeys: Sendable {
  private struct State {
    /// Fingerprints of keys that made a booking (or whose claim's fate is
    /// unknown: a storage error). Never shrinks. (The values are unused.)
    var used = FingerprintTable()
    /// Fingerprints of keys in claims still running, with how many.
    var running = FingerprintTable()
    var phase = Phase.loading
  }

  private enum Phase {
    /// The store's keys are being read; keys recorded meanwhile are kept.
    case loading
    case ready
    /// Loading failed: the index is not used (refusals read the store).
    case unavailable
  }

  private let state = Mutex(State())

  public init() {}

  /// Loads the fingerprints of the keys already in `store`.
  public func load(from store: any SaleStore) async {
    do {
      let stored = try await store.idempotencyKeyFingerprints()
      state.withLock { state in
        guard state.phase == .loading else { return }
        for fingerprint in stored { state.used.updateValue(0, forKey: fingerprint) }
        state.phase = .ready
      }
    } catch {
      state.withLock { state in
        state = State()
        state.phase = .unavailable
      }
    }
  }

  /// Notes that a claim is about to use `key`; pass the fingerprint returned
  /// to ``settle(_:madeBooking:)`` when the claim is answered.
  public func record(_ key: String) -> UInt64 {
    let fingerprint = Self.fingerprint(key)
    state.withLock { state in
      guard state.phase != .unavailable else { return }
      state.running.updateValue((state.running[fingerprint] ?? 0) + 1, forKey: fingerprint)
    }
    return fingerprint
  }

  /// A claim with this key was answered: `madeBooking` when it holds or
  /// replays a booking, or its fate is unknown (a storage error).
  public func settle(_ fingerprint: UInt64, madeBooking: Bool) {
    state.withLock { state in
      guard state.phase != .unavailable else { return }
      if madeBooking { state.used.updateValue(0, forKey: fingerprint) }
      if let running = state.running[fingerprint], running > 1 {
        state.running.updateValue(running - 1, forKey: fingerprint)
      } else {
        state.running.removeValue(forKey: fingerprint)
      }
    }
  }

  /// Whether `key` surely made no booking and is in no running claim: `nil`
  /// while the index is not ready.
  public func neverUsed(_ key: String) -> Bool? {
    let fingerprint = Self.fingerprint(key)
    return state.withLock { state in
      guard state.phase == .ready else { return nil }
      // The sets are read in place (an enum's payload would be copied out).
      return !state.used.contains(fingerprint) && (state.running.isEmpty || !state.running.contains(fingerprint))
    }
  }

  /// A 64-bit hash of the key's UTF-8 bytes (stable across runs).
  public static func fingerprint(_ key: String) -> UInt64 {
    fingerprint(key, seed: defaultSeed)
  }

  /// The fingerprint of `key` folded into `seed`.
  public static func fingerprint(_ key: String, seed: UInt64) -> UInt64 {
    // A native string's bytes in place; a copy only for a bridged one.
    if let hash = key.utf8.withContiguousStorageIfAvailable({ fingerprint(UnsafeRawBufferPointer($0), seed: seed) }) {
      return hash
    }
    var key = key
    return key.withUTF8 { fingerprint(UnsafeRawBufferPointer($0), seed: seed) }
  }

  /// The seed of a fingerprint of one string.
  public static var defaultSeed: UInt64 { 0xcbf2_9ce4_8422_2325 }

  /// The fingerprint of a key given as its UTF-8 bytes, folded into `seed`
  /// (to fingerprint two strings as one: the first one's as the seed).
  ///
  /// Eight bytes per multiply, then MurmurHash3's finalizer: a 40-byte key
  /// costs six steps, where FNV-1a's byte chain cost forty (~17 ns of a
  /// sold-out answer). A fingerprint only ever sends a key the careful way
  /// when two collide; it never decides an answer alone.
  public static func fingerprint(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = defaultSeed) -> UInt64 {
    let multiplier: UInt64 = 0xff51_afd7_ed55_8ccd
    var hash = seed ^ (UInt64(bytes.count) &* 0x9e37_79b9_7f4a_7c15)
    var offset = 0
    while offset + 8 <= bytes.count {
      hash = (hash ^ bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* multiplier
      hash ^= hash >> 32
      offset += 8
    }
    if offset < bytes.count {
      // The last one to seven bytes, as one word.
      var tail: UInt64 = 0
      var shift: UInt64 = 0
      for index in offset..<bytes.count {
        tail |= UInt64(bytes[index]) &<< shift
        shift &+= 8
      }
      hash = (hash ^ tail) &* multiplier
      hash ^= hash >> 32
    }
    hash ^= hash >> 33
    hash &*= multiplier
    hash ^= hash >> 33
    hash &*= 0xc4ce_b9fe_1a85_ec53
    hash ^= hash >> 33
    return hash
  }
}
