internal import CLibPQ
import Foundation
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One thread that waits (epoll) on the sockets of the event loops' database connections and
/// hands each ready one to its loop. Sockets are watched one-shot: after a report, the loop
/// arms the socket again when it wants the next one, so a socket is never reported twice for
/// the same data.
final class SocketWatcher: Sendable {
    static let shared = SocketWatcher()

    private struct Entry: Sendable {
        let loop: any EventLoop
        let connection: NIOLoopBound<LoopConnection>
    }

    private let epfd: Int32
    private let entries = Mutex<[Int32: Entry]>([:])

    private init() {
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epfd >= 0, "epoll_create1 failed: errno \(errno)")
        let thread = Thread { [self] in run() }
        thread.name = "esaylov.database.watcher"
        thread.start()
    }

    /// Watches `connection`'s socket for reading; call on `loop`.
    func add(_ connection: LoopConnection, loop: any EventLoop) {
        entries.withLock { $0[connection.fd] = Entry(loop: loop, connection: NIOLoopBound(connection, eventLoop: loop)) }
        control(EPOLL_CTL_ADD, connection.fd, write: false)
    }

    /// Reports the socket's next readiness (reading, and writing when `write`).
    func arm(_ fd: Int32, write: Bool) { control(EPOLL_CTL_MOD, fd, write: write) }

    /// Stops watching `fd`; call before the socket closes.
    func remove(_ fd: Int32) {
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil)
        _ = entries.withLock { $0.removeValue(forKey: fd) }
    }

    private func control(_ op: Int32, _ fd: Int32, write: Bool) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue | (write ? EPOLLOUT.rawValue : 0)
        event.data.fd = fd
        // Fails only for a socket already closed, whose connection is being dropped.
        _ = epoll_ctl(epfd, op, fd, &event)
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 128)
        while true {
            let n = events.withUnsafeMutableBufferPointer { epoll_wait(epfd, $0.baseAddress, Int32($0.count), -1) }
            if n < 0 { continue }  // EINTR
            // One task per loop for everything ready on it.
            var byLoop: [ObjectIdentifier: (any EventLoop, [NIOLoopBound<LoopConnection>])] = [:]
            entries.withLock { entries in
                for i in 0..<Int(n) {
                    guard let entry = entries[events[i].data.fd] else { continue }
                    byLoop[ObjectIdentifier(entry.loop), default: (entry.loop, [])].1.append(entry.connection)
                }
            }
            for (loop, connections) in byLoop.values {
                loop.execute { for c in connections { c.value.ready() } }
            }
        }
    }
}
