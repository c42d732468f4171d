public import Synchronization

/// An object reference stored at most once and then read with one atomic load: for what is made
/// on first use and kept (a method's metrics handles). The standard `AtomicLazyReference` looks
/// up generic metadata on every load when used across modules, which showed in profiles; this
/// one is specialized where it is used. Holds a strong reference, released with it.
public struct SetOnce<Object: AnyObject & Sendable>: ~Copyable, Sendable {
    @usableFromInline let bits: Atomic<UInt>

    @inlinable public init() { bits = Atomic(0) }

    /// The object stored, or nil.
    @inlinable public func load() -> Object? {
        guard let p = UnsafeRawPointer(bitPattern: bits.load(ordering: .acquiring)) else { return nil }
        return Unmanaged<Object>.fromOpaque(p).takeUnretainedValue()
    }

    /// Runs `body` with the object stored, borrowed (no retain: it lives as long as this
    /// value), or returns nil when none is.
    @inlinable public func withLoaded<R>(_ body: (Object) -> R) -> R? {
        guard let p = UnsafeRawPointer(bitPattern: bits.load(ordering: .acquiring)) else { return nil }
        return Unmanaged<Object>.fromOpaque(p)._withUnsafeGuaranteedRef(body)
    }

    /// Stores `object` unless one is stored already; returns the one stored.
    @inlinable @discardableResult public func storeIfNil(_ object: Object) -> Object {
        let retained = Unmanaged.passRetained(object)
        let (stored, original) = bits.compareExchange(
            expected: 0, desired: UInt(bitPattern: retained.toOpaque()), ordering: .acquiringAndReleasing)
        if stored { return object }
        retained.release()
        return Unmanaged<Object>.fromOpaque(UnsafeRawPointer(bitPattern: original)!).takeUnretainedValue()
    }

    deinit {
        if let p = UnsafeRawPointer(bitPattern: bits.load(ordering: .acquiring)) { Unmanaged<Object>.fromOpaque(p).release() }
    }
}
