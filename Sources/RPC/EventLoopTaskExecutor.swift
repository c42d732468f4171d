import NIOCore

/// Runs tasks on one event loop: handler tasks prefer their connection's loop, so that what
/// they do there (writing a response, a pipelined database read) needs no thread hop. Their
/// code must then never block: blocking work goes to `ServerContext.runBlocking` or the
/// store's transaction pool.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
