// ChangeHub: the one core subscription of an OpKeyClient, fanned out to any number of
// AsyncStreams, and the SyncState it implies. Holds no decision: it forwards the core's
// events in order and remembers the last sync state.
import Foundation

final class ChangeHub: ChangeListener, SyncProgressListener, @unchecked Sendable {
    private let lock = NSLock()
    private var changeContinuations: [UUID: AsyncStream<ChangeEvent>.Continuation] = [:]
    private var stateContinuations: [UUID: AsyncStream<SyncState>.Continuation] = [:]
    private var state: SyncState = .idle
    private var closed = false

    var syncState: SyncState {
        lock.lock()
        defer { lock.unlock() }
        return state
    }

    /// Every change from now on, until the stream's consumer stops or the hub closes.
    func changes() -> AsyncStream<ChangeEvent> {
        AsyncStream(bufferingPolicy: .bufferingNewest(64)) { continuation in
            let id = UUID()
            guard register(id: id, change: continuation) else {
                continuation.finish()
                return
            }
            continuation.onTermination = { [weak self] _ in self?.unregister(id: id) }
        }
    }

    /// The sync state now, then at each change of it.
    func syncStates() -> AsyncStream<SyncState> {
        AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let id = UUID()
            lock.lock()
            let current = state
            let isOpen = !closed
            if isOpen { stateContinuations[id] = continuation }
            lock.unlock()
            continuation.yield(current)
            guard isOpen else {
                continuation.finish()
                return
            }
            continuation.onTermination = { [weak self] _ in self?.unregister(id: id) }
        }
    }

    // ChangeListener: called on a Rust thread; never blocks.
    func onChange(event: ChangeEvent) throws {
        switch event {
        case .syncStarted:
            setState(.running(progress: nil))
        case let .syncFinished(report):
            setState(.done(report: report))
        case let .syncFailed(reason, cancelled):
            setState(.failed(reason: reason, cancelled: cancelled))
        case .keysChanged, .enrollmentChanged:
            break
        }
        lock.lock()
        let targets = Array(changeContinuations.values)
        lock.unlock()
        for continuation in targets {
            continuation.yield(event)
        }
    }

    // SyncProgressListener: the running sync's pages, for a progress bar.
    func onProgress(progress: SyncProgress) throws {
        setState(.running(progress: progress))
    }

    /// Ends every stream; later ones end at once.
    func close() {
        lock.lock()
        closed = true
        let changes = Array(changeContinuations.values)
        let states = Array(stateContinuations.values)
        changeContinuations.removeAll()
        stateContinuations.removeAll()
        lock.unlock()
        changes.forEach { $0.finish() }
        states.forEach { $0.finish() }
    }

    private func register(id: UUID, change continuation: AsyncStream<ChangeEvent>.Continuation) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { return false }
        changeContinuations[id] = continuation
        return true
    }

    private func unregister(id: UUID) {
        lock.lock()
        changeContinuations[id] = nil
        stateContinuations[id] = nil
        lock.unlock()
    }

    private func setState(_ new: SyncState) {
        lock.lock()
        state = new
        let targets = Array(stateContinuations.values)
        lock.unlock()
        for continuation in targets {
            continuation.yield(new)
        }
    }
}
