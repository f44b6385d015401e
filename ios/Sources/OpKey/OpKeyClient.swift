// OpKeyClient: the app's one handle on the core, in Swift's terms (async/await and
// AsyncStream). It forwards calls, turns the core's change events into streams, and
// forwards Swift task cancellation to the core's CancelHandle (it does not reach Rust by
// itself). Every decision (what to show, what went wrong, what a PIN is) is the core's.
import Foundation

public final class OpKeyClient: @unchecked Sendable {
    /// The generated core object, for anything this layer does not wrap.
    public let core: OpKey
    private let hub: ChangeHub
    private let subscription: ChangeSubscription

    public init(core: OpKey) {
        let hub = ChangeHub()
        self.core = core
        self.hub = hub
        subscription = core.subscribe(listener: hub)
    }

    deinit {
        close()
    }

    /// Stops the core subscription and ends every stream this client handed out.
    public func close() {
        subscription.cancel()
        hub.close()
    }

    // MARK: - Streams

    /// Every change the core reports from now on.
    public var changes: AsyncStream<ChangeEvent> { hub.changes() }

    /// The last sync's state now.
    public var syncState: SyncState { hub.syncState }

    /// The sync state now, then at each change.
    public func syncStates() -> AsyncStream<SyncState> { hub.syncStates() }

    /// The app's top screen now, then after every change. Ends with the core's error when
    /// the store cannot be read.
    public func home() -> AsyncThrowingStream<HomeGuide, Error> {
        refreshed(on: hub.changes()) { [core] in try core.homeGuide() }
    }

    /// The keys now, then after every key or enrollment change.
    public func keys() -> AsyncThrowingStream<[Key], Error> {
        let keyChanges = hub.changes()
        return refreshed(on: Self.only(keyChanges, where: Self.changesKeys)) { [core] in try core.keys() }
    }

    /// One key's screen now, then after every key change or Bluetooth state change. The
    /// first value comes with the first Bluetooth state.
    public func keyDetail(
        keyId: String, bluetooth: AsyncStream<BluetoothState>
    ) -> AsyncThrowingStream<KeyDetail, Error> {
        let keyChanges = hub.changes()
        let core = self.core
        return AsyncThrowingStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let task = Task {
                let (triggers, feed) = AsyncStream<DetailTrigger>.makeStream()
                let watchers = [
                    Task {
                        for await state in bluetooth {
                            feed.yield(.bluetooth(state))
                        }
                    },
                    Task {
                        for await event in keyChanges where Self.changesKeys(event) {
                            feed.yield(.keys)
                        }
                    },
                ]
                defer { watchers.forEach { $0.cancel() } }
                var bluetoothNow: BluetoothState?
                for await trigger in triggers {
                    if case let .bluetooth(state) = trigger {
                        bluetoothNow = state
                    }
                    guard let current = bluetoothNow else { continue }
                    do {
                        continuation.yield(try Self.detail(core: core, keyId: keyId, bluetooth: current))
                    } catch {
                        continuation.finish(throwing: error)
                        return
                    }
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The Rolling PIN of `keyId`, one tick a second: the PinView the core computes for
    /// that second (its `secondsLeft` is the countdown), or why there is none, which ends
    /// the stream.
    public func pinCountdown(keyId: String) -> AsyncStream<PinTick> {
        let core = self.core
        return AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let task = Task {
                while !Task.isCancelled {
                    do {
                        continuation.yield(.shown(pin: try core.pin(keyId: keyId)))
                    } catch let error as PinError {
                        continuation.yield(.unavailable(reason: error.reason))
                        break
                    } catch {
                        continuation.yield(.unavailable(reason: String(describing: error)))
                        break
                    }
                    try? await Task.sleep(nanoseconds: 1_000_000_000)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: - Calls

    /// Reads an invite link or code without the network; throws OpKeyError.
    public func parseInvite(_ input: String) throws -> ParsedInvite {
        try core.parseInvite(input: input)
    }

    /// Redeems an invite; cancelling the task cancels the redeem in the core.
    public func redeem(_ input: String) async throws -> Enrollment {
        let cancel = CancelHandle()
        return try await withTaskCancellationHandler {
            try await core.redeemInvite(input: input, cancel: cancel)
        } onCancel: {
            cancel.cancel()
        }
    }

    /// Finishes a redeem that was interrupted (HomeGuide stage resumeInvite).
    public func resumeRedeem() async throws -> Enrollment {
        try await core.resumeRedeem()
    }

    /// Brings the keys up to date; progress goes to `syncStates()`. Cancelling the task
    /// cancels the sync (the store stays as it was).
    public func sync() async throws -> SyncReport {
        let cancel = CancelHandle()
        return try await withTaskCancellationHandler {
            try await core.sync(cancel: cancel, progress: hub)
        } onCancel: {
            cancel.cancel()
        }
    }

    /// Unlocks `machineId` over `transport`; never throws: every ending is an UnlockResult.
    public func unlock(machineId: String, transport: BleTransport) async -> UnlockResult {
        await exchange { cancel in
            try await self.core.unlock(machineId: machineId, transport: transport, cancel: cancel)
        }
    }

    /// Locks `machineId` (relay off) over `transport`.
    public func lock(machineId: String, transport: BleTransport) async -> UnlockResult {
        await exchange { cancel in
            try await self.core.lock(machineId: machineId, transport: transport, cancel: cancel)
        }
    }

    /// The phone clock against the server's.
    public func clockStatus() throws -> ClockStatus {
        try core.clockStatus()
    }

    // MARK: - Private

    private func exchange(_ call: @escaping (CancelHandle) async throws -> UnlockReport) async -> UnlockResult {
        let cancel = CancelHandle()
        do {
            let report = try await withTaskCancellationHandler {
                try await call(cancel)
            } onCancel: {
                cancel.cancel()
            }
            switch report.outcome {
            case .unlocked:
                return .opened(report: report)
            case .locked:
                return .closed(report: report)
            case let .denied(reason):
                return .refused(report: report, reason: reason, message: denyReasonMessage(reason: reason))
            }
        } catch let error as UnlockError {
            return .failed(guide: unlockErrorGuide(error: error))
        } catch {
            // The core declares UnlockError only; anything else is a bug to report.
            return .failed(guide: unlockErrorGuide(error: .Internal(reason: String(describing: error))))
        }
    }

    private static func detail(core: OpKey, keyId: String, bluetooth: BluetoothState) throws -> KeyDetail {
        let key = try core.key(id: keyId)
        let guide = try core.keyGuide(keyId: keyId, bluetooth: bluetooth)
        var staticPin: StaticPin?
        if guide.action == .staticPin && guide.blocker == nil {
            staticPin = try core.staticPin(keyId: keyId)
        }
        return KeyDetail(key: key, guide: guide, staticPin: staticPin)
    }

    private static func changesKeys(_ event: ChangeEvent) -> Bool {
        switch event {
        case .keysChanged, .enrollmentChanged, .syncFinished:
            return true
        case .syncStarted, .syncFailed:
            return false
        }
    }

    private static func only(
        _ events: AsyncStream<ChangeEvent>, where keep: @escaping (ChangeEvent) -> Bool
    ) -> AsyncStream<ChangeEvent> {
        AsyncStream { continuation in
            let task = Task {
                for await event in events where keep(event) {
                    continuation.yield(event)
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// `read()` now, then again after each event; ends with read()'s first error.
    private func refreshed<T>(
        on events: AsyncStream<ChangeEvent>, read: @escaping () throws -> T
    ) -> AsyncThrowingStream<T, Error> {
        AsyncThrowingStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let task = Task {
                do {
                    continuation.yield(try read())
                    for await _ in events {
                        continuation.yield(try read())
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// What makes a key's screen be read again.
private enum DetailTrigger: Sendable {
    case bluetooth(BluetoothState)
    case keys
}
