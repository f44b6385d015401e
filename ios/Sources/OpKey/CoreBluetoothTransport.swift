// CoreBluetoothTransport: the core's BleTransport over CoreBluetooth (PROTOCOL.md 2.4).
// It moves fragments and never knows what they mean: scan for the OpKey service (so iOS
// also scans while the app is in the background) and read the 6-byte machine tag from the
// manufacturer data of company 0xFFFF; connect and find RX/TX; turn TX notifications on;
// write RX with response; queue TX notifications in order. One connection at a time, and
// every connection ends with cancelPeripheralConnection. All CoreBluetooth state lives on
// one serial queue. Logs nothing (no address, tag or fragment).
import CoreBluetooth
import Foundation

public final class CoreBluetoothTransport: NSObject, BleTransport, @unchecked Sendable {
    /// The OpKey GATT layout (PROTOCOL.md 2.4).
    static let defaultService = CBUUID(string: "6f706b79-0001-4d61-6368-696e654b6579")
    static let rxCharacteristic = CBUUID(string: "6f706b79-0002-4d61-6368-696e654b6579")
    static let txCharacteristic = CBUUID(string: "6f706b79-0003-4d61-6368-696e654b6579")
    /// Manufacturer data starts with the company id, little-endian: 0xFFFF.
    static let companyId: [UInt8] = [0xFF, 0xFF]
    static let tagLength = 6
    /// Upper bound for one GATT step the core gives no timeout for (subscribe, write).
    static let gattTimeoutMs: UInt64 = 10_000
    /// How long to wait for CoreBluetooth to know its state (the permission prompt may be up).
    static let stateTimeoutMs: UInt64 = 60_000
    static let minAttMtu = 23
    static let maxAttMtu = 517

    private let queue = DispatchQueue(label: "app.opkey.ble")
    // Everything below is read and written on `queue` only.
    private var central: CBCentralManager?
    private var service = CoreBluetoothTransport.defaultService
    private var stateWaiters: [Pending<CBManagerState>] = []
    private var stateListeners: [UUID: AsyncStream<BluetoothState>.Continuation] = [:]
    private var scanning: ScanRun?
    private var seen: [UUID: CBPeripheral] = [:]
    private var link: Link?
    private var nextHandle: UInt64 = 1

    /// Makes no CBCentralManager yet: iOS asks for Bluetooth permission when the first
    /// unlock needs the radio, not when the app starts.
    override public init() {
        super.init()
    }

    /// What the core's guide needs to know about Bluetooth: now, then at each change.
    /// Before iOS asked for permission this is `.ready`: the first unlock makes iOS ask.
    public func states() -> AsyncStream<BluetoothState> {
        AsyncStream(bufferingPolicy: .bufferingNewest(1)) { continuation in
            let id = UUID()
            queue.async {
                self.stateListeners[id] = continuation
                switch CBCentralManager.authorization {
                case .denied, .restricted:
                    continuation.yield(.permissionMissing)
                case .allowedAlways:
                    if let state = Self.bluetoothState(self.ensureCentral().state) {
                        continuation.yield(state)
                    }
                case .notDetermined:
                    continuation.yield(.ready)
                @unknown default:
                    continuation.yield(.ready)
                }
            }
            continuation.onTermination = { [weak self] _ in
                self?.queue.async { self?.stateListeners[id] = nil }
            }
        }
    }

    // MARK: - BleTransport

    public func scan(serviceUuid: String, tags: [Data], timeoutMs: UInt64) async throws -> [Advertisement] {
        guard let uuid = UUID(uuidString: serviceUuid) else {
            throw TransportError.Other(reason: "\(serviceUuid) is not a service UUID")
        }
        let central = try await poweredOn()
        return try await wait(timeoutMs: timeoutMs) { (pending: Pending<[Advertisement]>) in
            // A scan still running belongs to a call the core gave up on: end it.
            self.scanning?.pending.resolve(.success([]))
            let run = ScanRun(tags: Set(tags), pending: pending)
            self.service = CBUUID(nsuuid: uuid)
            self.scanning = run
            pending.onTimeout = { .success(run.found) }
            pending.cleanup = { _ in
                guard self.scanning === run else { return }
                self.scanning = nil
                if central.state == .poweredOn { central.stopScan() }
            }
            central.scanForPeripherals(
                withServices: [self.service],
                options: [CBCentralManagerScanOptionAllowDuplicatesKey: false]
            )
        }
    }

    public func connect(peripheralId: String, timeoutMs: UInt64) async throws -> BleConnection {
        guard let id = UUID(uuidString: peripheralId) else { throw TransportError.NotFound }
        let central = try await poweredOn()
        return try await wait(timeoutMs: timeoutMs) { (pending: Pending<BleConnection>) in
            guard let peripheral = self.seen[id] ?? central.retrievePeripherals(withIdentifiers: [id]).first
            else {
                pending.resolve(.failure(.NotFound))
                return
            }
            if let old = self.link { self.close(old) }
            let link = Link(handle: self.nextHandle, peripheral: peripheral)
            self.nextHandle += 1
            self.link = link
            link.connecting = pending
            pending.cleanup = { result in
                if case .failure = result { self.close(link) }
            }
            peripheral.delegate = self
            central.connect(peripheral, options: nil)
        }
    }

    public func subscribe(connection: UInt64) async throws {
        try await wait(timeoutMs: Self.gattTimeoutMs) { (pending: Pending<Void>) in
            guard let link = self.openLink(connection), let tx = link.tx else {
                pending.resolve(.failure(.Disconnected))
                return
            }
            link.subscribing = pending
            link.peripheral.setNotifyValue(true, for: tx)
        }
    }

    public func write(connection: UInt64, fragment: Data) async throws {
        try await wait(timeoutMs: Self.gattTimeoutMs) { (pending: Pending<Void>) in
            guard let link = self.openLink(connection), let rx = link.rx else {
                pending.resolve(.failure(.Disconnected))
                return
            }
            link.writing = pending
            link.peripheral.writeValue(fragment, for: rx, type: .withResponse)
        }
    }

    public func nextNotification(connection: UInt64, timeoutMs: UInt64) async throws -> Data {
        try await wait(timeoutMs: timeoutMs) { (pending: Pending<Data>) in
            // Notifications that arrived before the link dropped are still delivered.
            guard let link = self.link, link.handle == connection else {
                pending.resolve(.failure(.Disconnected))
                return
            }
            if !link.notifications.isEmpty {
                pending.resolve(.success(link.notifications.removeFirst()))
            } else if link.dropped {
                pending.resolve(.failure(.Disconnected))
            } else {
                link.waiting = pending
                pending.cleanup = { _ in
                    if link.waiting === pending { link.waiting = nil }
                }
            }
        }
    }

    public func disconnect(connection: UInt64) async throws {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                if let link = self.link, link.handle == connection {
                    self.close(link)
                }
                continuation.resume()
            }
        }
    }

    // MARK: - Queue-only helpers

    private func ensureCentral() -> CBCentralManager {
        if let central = central { return central }
        let made = CBCentralManager(
            delegate: self, queue: queue, options: [CBCentralManagerOptionShowPowerAlertKey: false]
        )
        central = made
        return made
    }

    /// The connected link with this handle; nil once it dropped or was closed.
    private func openLink(_ handle: UInt64) -> Link? {
        guard let link = link, link.handle == handle, !link.dropped else { return nil }
        return link
    }

    /// Ends a link: its waiting calls fail and the radio connection is cancelled.
    private func close(_ link: Link) {
        if self.link === link { self.link = nil }
        link.dropped = true
        link.fail(.Disconnected)
        if let central = central, central.state == .poweredOn {
            central.cancelPeripheralConnection(link.peripheral)
        }
    }

    /// Waits until CoreBluetooth knows its state, and throws unless it is powered on.
    private func poweredOn() async throws -> CBCentralManager {
        let (central, state) = try await wait(timeoutMs: Self.stateTimeoutMs) {
            (pending: Pending<(CBCentralManager, CBManagerState)>) in
            let central = self.ensureCentral()
            if central.state == .unknown || central.state == .resetting {
                let waiter = Pending<CBManagerState>(resolved: { result in
                    pending.resolve(result.map { (central, $0) })
                })
                self.stateWaiters.append(waiter)
            } else {
                pending.resolve(.success((central, central.state)))
            }
        }
        switch state {
        case .poweredOn:
            return central
        case .unauthorized:
            throw TransportError.PermissionMissing
        case .unsupported:
            throw TransportError.Other(reason: "this phone has no Bluetooth LE")
        default:
            throw TransportError.BluetoothOff
        }
    }

    /// Runs `start` on the queue with a call that ends once: by its answer, its timeout
    /// (`onTimeout`, an error unless the call says otherwise) or the task's cancellation.
    private func wait<T>(timeoutMs: UInt64, _ start: @escaping (Pending<T>) -> Void) async throws -> T {
        let cancelled = CancelFlag()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
                queue.async {
                    let pending = Pending<T>(continuation: continuation)
                    cancelled.pending = { pending.resolve(.failure(.Other(reason: "cancelled"))) }
                    if cancelled.isSet {
                        pending.resolve(.failure(.Other(reason: "cancelled")))
                        return
                    }
                    start(pending)
                    let delay = DispatchTimeInterval.milliseconds(Int(clamping: timeoutMs))
                    self.queue.asyncAfter(deadline: .now() + delay) {
                        pending.resolve(pending.onTimeout())
                    }
                }
            }
        } onCancel: {
            queue.async { cancelled.set() }
        }
    }

    static func bluetoothState(_ state: CBManagerState) -> BluetoothState? {
        switch state {
        case .poweredOn:
            return .ready
        case .poweredOff, .resetting:
            return .off
        case .unauthorized:
            return .permissionMissing
        case .unsupported:
            return .unsupported
        case .unknown:
            return nil
        @unknown default:
            return nil
        }
    }

    /// The machine tag in an advertisement's manufacturer data (company id first).
    static func machineTag(_ manufacturerData: Data?) -> Data? {
        guard let data = manufacturerData, data.count >= companyId.count + tagLength else { return nil }
        let bytes = [UInt8](data)
        guard Array(bytes[0 ..< companyId.count]) == companyId else { return nil }
        return Data(bytes[companyId.count ..< companyId.count + tagLength])
    }

    static func transportError(_ error: Error?) -> TransportError {
        guard let error = error else { return .Disconnected }
        let nsError = error as NSError
        if nsError.domain == CBATTErrorDomain {
            return .Gatt(status: Int32(truncatingIfNeeded: nsError.code))
        }
        if nsError.domain == CBErrorDomain, let code = CBError.Code(rawValue: nsError.code) {
            switch code {
            case .connectionTimeout:
                return .Timeout
            case .peripheralDisconnected, .notConnected, .connectionFailed:
                return .Disconnected
            case .unknownDevice:
                return .NotFound
            default:
                break
            }
        }
        return .Other(reason: nsError.localizedDescription)
    }
}

// MARK: - CoreBluetooth delegates (called on `queue`)

extension CoreBluetoothTransport: CBCentralManagerDelegate, CBPeripheralDelegate {
    public func centralManagerDidUpdateState(_ central: CBCentralManager) {
        let state = central.state
        if state != .unknown && state != .resetting {
            let waiters = stateWaiters
            stateWaiters.removeAll()
            waiters.forEach { $0.resolve(.success(state)) }
        }
        if state != .poweredOn {
            let error: TransportError = state == .unauthorized ? .PermissionMissing : .BluetoothOff
            scanning?.pending.resolve(.failure(error))
            if let link = link {
                link.dropped = true
                link.fail(error)
            }
        }
        if let shown = Self.bluetoothState(state) {
            stateListeners.values.forEach { $0.yield(shown) }
        }
    }

    public func centralManager(
        _ central: CBCentralManager, didDiscover peripheral: CBPeripheral,
        advertisementData: [String: Any], rssi RSSI: NSNumber
    ) {
        guard let run = scanning,
              let tag = Self.machineTag(advertisementData[CBAdvertisementDataManufacturerDataKey] as? Data),
              run.tags.isEmpty || run.tags.contains(tag)
        else { return }
        let id = peripheral.identifier
        seen[id] = peripheral
        guard !run.found.contains(where: { $0.peripheralId == id.uuidString }) else { return }
        // 127 is CoreBluetooth's "not available".
        let rssi: Int16? = RSSI.intValue == 127 ? nil : Int16(clamping: RSSI.intValue)
        run.found.append(Advertisement(peripheralId: id.uuidString, tag: tag, rssi: rssi))
        let seenAll = !run.tags.isEmpty && run.tags.allSatisfy { tag in run.found.contains { $0.tag == tag } }
        if seenAll {
            run.pending.resolve(.success(run.found))
        }
    }

    public func centralManager(_ central: CBCentralManager, didConnect peripheral: CBPeripheral) {
        guard let link = link, link.peripheral === peripheral else { return }
        peripheral.discoverServices([service])
    }

    public func centralManager(
        _ central: CBCentralManager, didFailToConnect peripheral: CBPeripheral, error: Error?
    ) {
        guard let link = link, link.peripheral === peripheral else { return }
        link.connecting?.resolve(.failure(Self.transportError(error)))
    }

    public func centralManager(
        _ central: CBCentralManager, didDisconnectPeripheral peripheral: CBPeripheral, error: Error?
    ) {
        guard let link = link, link.peripheral === peripheral else { return }
        link.dropped = true
        link.fail(.Disconnected)
    }

    public func peripheral(_ peripheral: CBPeripheral, didDiscoverServices error: Error?) {
        guard let link = link, link.peripheral === peripheral else { return }
        if let error = error {
            link.connecting?.resolve(.failure(Self.transportError(error)))
            return
        }
        guard let found = peripheral.services?.first(where: { $0.uuid == service }) else {
            link.connecting?.resolve(.failure(.Other(reason: "the machine offers no OpKey service")))
            return
        }
        peripheral.discoverCharacteristics([Self.rxCharacteristic, Self.txCharacteristic], for: found)
    }

    public func peripheral(
        _ peripheral: CBPeripheral, didDiscoverCharacteristicsFor service: CBService, error: Error?
    ) {
        guard let link = link, link.peripheral === peripheral else { return }
        if let error = error {
            link.connecting?.resolve(.failure(Self.transportError(error)))
            return
        }
        let characteristics = service.characteristics ?? []
        link.rx = characteristics.first { $0.uuid == Self.rxCharacteristic }
        link.tx = characteristics.first { $0.uuid == Self.txCharacteristic }
        guard link.rx != nil, link.tx != nil else {
            link.connecting?.resolve(.failure(.Other(reason: "the machine's OpKey service lacks RX or TX")))
            return
        }
        // iOS negotiates the MTU itself; a write without response carries ATT_MTU - 3 bytes.
        let mtu = peripheral.maximumWriteValueLength(for: .withoutResponse) + 3
        let attMtu = UInt16(min(max(mtu, Self.minAttMtu), Self.maxAttMtu))
        link.connecting?.resolve(.success(BleConnection(handle: link.handle, attMtu: attMtu)))
    }

    public func peripheral(
        _ peripheral: CBPeripheral, didUpdateNotificationStateFor characteristic: CBCharacteristic,
        error: Error?
    ) {
        guard let link = link, link.peripheral === peripheral else { return }
        if let error = error {
            link.subscribing?.resolve(.failure(Self.transportError(error)))
        } else {
            link.subscribing?.resolve(.success(Void()))
        }
    }

    public func peripheral(
        _ peripheral: CBPeripheral, didUpdateValueFor characteristic: CBCharacteristic, error: Error?
    ) {
        guard let link = link, link.peripheral === peripheral,
              characteristic.uuid == Self.txCharacteristic, error == nil,
              let value = characteristic.value
        else { return }
        if let waiting = link.waiting {
            link.waiting = nil
            waiting.resolve(.success(value))
        } else {
            link.notifications.append(value)
        }
    }

    public func peripheral(
        _ peripheral: CBPeripheral, didWriteValueFor characteristic: CBCharacteristic, error: Error?
    ) {
        guard let link = link, link.peripheral === peripheral else { return }
        if let error = error {
            link.writing?.resolve(.failure(Self.transportError(error)))
        } else {
            link.writing?.resolve(.success(Void()))
        }
    }
}

// MARK: - Queue-owned state

/// One call waiting for CoreBluetooth. Resolved once; later answers are ignored.
private final class Pending<T> {
    private var continuation: CheckedContinuation<T, Error>?
    private var resolved: ((Result<T, TransportError>) -> Void)?
    /// What a timeout means for this call: an error unless the call says otherwise.
    var onTimeout: () -> Result<T, TransportError> = { .failure(.Timeout) }
    /// Runs once, when the call ends however it ends.
    var cleanup: (Result<T, TransportError>) -> Void = { _ in }

    init(continuation: CheckedContinuation<T, Error>) {
        self.continuation = continuation
    }

    /// A waiter that hands its result to another call instead of a continuation.
    init(resolved: @escaping (Result<T, TransportError>) -> Void) {
        self.resolved = resolved
    }

    func resolve(_ result: Result<T, TransportError>) {
        let finish = cleanup
        cleanup = { _ in }
        if let continuation = continuation {
            self.continuation = nil
            finish(result)
            continuation.resume(with: result)
        } else if let resolved = resolved {
            self.resolved = nil
            finish(result)
            resolved(result)
        }
    }
}

private final class ScanRun {
    let tags: Set<Data>
    let pending: Pending<[Advertisement]>
    var found: [Advertisement] = []

    init(tags: Set<Data>, pending: Pending<[Advertisement]>) {
        self.tags = tags
        self.pending = pending
    }
}

private final class Link {
    let handle: UInt64
    let peripheral: CBPeripheral
    var rx: CBCharacteristic?
    var tx: CBCharacteristic?
    /// The link went down (or was closed); queued notifications may still be read.
    var dropped = false
    var notifications: [Data] = []
    var connecting: Pending<BleConnection>?
    var subscribing: Pending<Void>?
    var writing: Pending<Void>?
    var waiting: Pending<Data>?

    init(handle: UInt64, peripheral: CBPeripheral) {
        self.handle = handle
        self.peripheral = peripheral
    }

    /// Fails every call waiting on this link.
    func fail(_ error: TransportError) {
        connecting?.resolve(.failure(error))
        subscribing?.resolve(.failure(error))
        writing?.resolve(.failure(error))
        waiting?.resolve(.failure(error))
        waiting = nil
    }
}

/// Task cancellation, seen on the queue: set once, resolves the call if it started.
private final class CancelFlag: @unchecked Sendable {
    private(set) var isSet = false
    var pending: (() -> Void)?

    func set() {
        isSet = true
        pending?()
    }
}
