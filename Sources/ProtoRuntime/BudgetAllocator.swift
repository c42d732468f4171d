internal import CProtobufC
import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// Heap held by all unpacks in flight, across the process. Together with the per-call
/// budget it keeps many concurrent large requests from exhausting memory.
private let inFlightBytes = Atomic<Int>(0)

/// The ceiling for `inFlightBytes`.
public enum ProtoMemory {
    private static let limit = Atomic<Int>(1 << 30)

    /// Sets the process-wide ceiling for memory held by message decoding (default 1 GiB).
    public static func setProcessLimit(_ bytes: Int) { limit.store(bytes, ordering: .relaxed) }
    static var processLimit: Int { limit.load(ordering: .relaxed) }
    /// Bytes currently held by decoding, for tests and metrics.
    public static var inFlight: Int { inFlightBytes.load(ordering: .relaxed) }
}

/// Per-unpack accounting, reached by protobuf-c's allocator callbacks through their user data.
struct AllocationBudget {
    let limit: Int
    var used = 0
    var exceeded = false
}

private let headerSize = 16  // keeps malloc's 16-byte alignment

private func budgetAlloc(_ data: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    let budget = data!.assumingMemoryBound(to: AllocationBudget.self)
    let total = size + headerSize
    guard budget.pointee.used + total <= budget.pointee.limit else {
        budget.pointee.exceeded = true
        return nil
    }
    let before = inFlightBytes.add(total, ordering: .relaxed).newValue
    guard before <= ProtoMemory.processLimit else {
        inFlightBytes.subtract(total, ordering: .relaxed)
        budget.pointee.exceeded = true
        return nil
    }
    guard let block = malloc(total) else {
        inFlightBytes.subtract(total, ordering: .relaxed)
        budget.pointee.exceeded = true
        return nil
    }
    block.storeBytes(of: total, as: Int.self)
    budget.pointee.used += total
    return block + headerSize
}

private func budgetFree(_ data: UnsafeMutableRawPointer?, _ pointer: UnsafeMutableRawPointer?) {
    guard let pointer else { return }
    let block = pointer - headerSize
    let total = block.load(as: Int.self)
    let budget = data!.assumingMemoryBound(to: AllocationBudget.self)
    budget.pointee.used -= total
    inFlightBytes.subtract(total, ordering: .relaxed)
    free(block)
}

extension ProtoC {
    /// Runs `body` with a protobuf-c allocator that fails past `limit` bytes; reports whether
    /// a failure came from the budget.
    static func withBudgetAllocator<R>(
        limit: Int, _ body: (UnsafeMutablePointer<ProtobufCAllocator>) -> R
    ) -> (result: R, exceeded: Bool) {
        var budget = AllocationBudget(limit: limit)
        return withUnsafeMutablePointer(to: &budget) { b in
            var allocator = ProtobufCAllocator(alloc: budgetAlloc, free: budgetFree, allocator_data: UnsafeMutableRawPointer(b))
            let r = withUnsafeMutablePointer(to: &allocator) { body($0) }
            return (r, b.pointee.exceeded)
        }
    }
}
