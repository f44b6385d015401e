// KeyDetailView: one key, as the core's KeyGuide says: its message, what blocks it
// (Bluetooth off, permission missing, not valid, not synced ...), and its action: Unlock
// over CoreBluetooth, the Rolling PIN with its countdown, the Static PIN or the card id.
import OpKey
import SwiftUI
import UIKit

@MainActor
final class KeyDetailModel: ObservableObject {
    enum Exchange: Equatable {
        case idle
        case working(machineId: String)
        case finished(machineId: String, result: UnlockResult)
    }

    @Published private(set) var detail: KeyDetail?
    @Published private(set) var failure: String?
    @Published private(set) var pin: PinTick?
    @Published private(set) var exchange: Exchange = .idle
    private var tasks: [Task<Void, Never>] = []
    private var countdown: Task<Void, Never>?

    func start(client: OpKeyClient, keyId: String, transport: CoreBluetoothTransport) {
        guard tasks.isEmpty else { return }
        tasks.append(Task { [weak self] in
            do {
                for try await detail in client.keyDetail(keyId: keyId, bluetooth: transport.states()) {
                    self?.show(detail, client: client)
                }
            } catch {
                self?.failure = OpKeyClient.message(for: error)
            }
        })
    }

    func stop() {
        tasks.forEach { $0.cancel() }
        tasks.removeAll()
        countdown?.cancel()
        countdown = nil
    }

    func run(_ command: MachineCommand, machineId: String, client: OpKeyClient, transport: CoreBluetoothTransport) {
        exchange = .working(machineId: machineId)
        tasks.append(Task { [weak self] in
            let result: UnlockResult
            switch command {
            case .unlock:
                result = await client.unlock(machineId: machineId, transport: transport)
            case .lock:
                result = await client.lock(machineId: machineId, transport: transport)
            }
            self?.exchange = .finished(machineId: machineId, result: result)
        })
    }

    /// Shows a new guide; the PIN countdown runs while the core's action is a Rolling PIN
    /// with nothing blocking it.
    private func show(_ detail: KeyDetail, client: OpKeyClient) {
        self.detail = detail
        let wantsPin = detail.guide.action == .rollingPin && detail.guide.blocker == nil
        if wantsPin && countdown == nil {
            countdown = Task { [weak self] in
                for await tick in client.pinCountdown(keyId: detail.key.id) {
                    self?.pin = tick
                }
            }
        } else if !wantsPin {
            countdown?.cancel()
            countdown = nil
            pin = nil
        }
    }
}

@MainActor
struct KeyDetailView: View {
    @EnvironmentObject private var app: AppModel
    @StateObject private var model = KeyDetailModel()
    let client: OpKeyClient
    let keyId: String

    var body: some View {
        ScrollView {
            VStack(alignment: .leading, spacing: 16) {
                if let failure = model.failure {
                    Text(failure).foregroundColor(.red)
                }
                if let detail = model.detail {
                    header(detail)
                    ClockWarningBanner(warning: detail.guide.clockWarning)
                    Text(detail.guide.message)
                    if let blocker = detail.guide.blocker {
                        BlockerView(blocker: blocker)
                    } else {
                        action(detail)
                    }
                } else {
                    ProgressView()
                }
            }
            .padding()
        }
        .navigationTitle("Key")
        .onAppear { model.start(client: client, keyId: keyId, transport: app.transport) }
        .onDisappear { model.stop() }
    }

    private func header(_ detail: KeyDetail) -> some View {
        VStack(alignment: .leading, spacing: 4) {
            Text(detail.key.description.isEmpty ? detail.key.organizationName : detail.key.description)
                .font(.title2)
            Text(detail.key.organizationName).foregroundColor(.secondary)
            Text("Valid \(detail.key.validFrom, style: .date) – \(detail.key.validTo, style: .date)")
                .font(.caption)
        }
    }

    @ViewBuilder private func action(_ detail: KeyDetail) -> some View {
        switch detail.guide.action {
        case .unlock:
            ForEach(detail.key.machines, id: \.id) { machine in
                MachineControls(machine: machine, exchange: model.exchange) { command in
                    model.run(command, machineId: machine.id, client: client, transport: app.transport)
                }
            }
        case .rollingPin:
            if let tick = model.pin {
                PinTickView(tick: tick)
            } else {
                ProgressView()
            }
        case .staticPin:
            if let pin = detail.staticPin {
                Text(pin.pin).font(.system(size: 56, weight: .bold, design: .monospaced))
            }
        case .card:
            if let card = detail.key.cardId {
                Label("Card \(card)", systemImage: "creditcard").font(.title3)
            }
        }
    }
}

/// Unlock and Lock for one machine, and how the last exchange with it ended.
@MainActor
struct MachineControls: View {
    let machine: Machine
    let exchange: KeyDetailModel.Exchange
    let run: (MachineCommand) -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 8) {
            Text(machine.name).font(.headline)
            Text(machine.serial).font(.caption).foregroundColor(.secondary)
            switch exchange {
            case let .working(machineId) where machineId == machine.id:
                ProgressView("Talking to the machine…")
            case let .finished(machineId, result) where machineId == machine.id:
                UnlockResultView(result: result) { run(.unlock) }
                buttons
            default:
                buttons
            }
        }
        .padding()
        .background(Color(.secondarySystemBackground))
        .cornerRadius(12)
    }

    private var buttons: some View {
        HStack {
            Button("Unlock") { run(.unlock) }.buttonStyle(.borderedProminent)
            Button("Lock") { run(.lock) }.buttonStyle(.bordered)
        }
    }
}

/// What the machine or the core said about the last exchange.
@MainActor
struct UnlockResultView: View {
    let result: UnlockResult
    let retry: () -> Void

    var body: some View {
        switch result {
        case let .opened(report):
            if case let .unlocked(relockAfterS, _) = report.outcome {
                Label("Unlocked. It locks again in \(relockAfterS) s unless started.", systemImage: "lock.open")
                    .foregroundColor(.green)
            }
        case .closed:
            Label("Locked.", systemImage: "lock")
        case let .refused(_, _, message):
            Label(message, systemImage: "hand.raised").foregroundColor(.red)
        case let .failed(guide):
            VStack(alignment: .leading, spacing: 8) {
                Label(guide.message, systemImage: "exclamationmark.triangle").foregroundColor(.orange)
                if let blocker = guide.blocker {
                    BlockerView(blocker: blocker)
                }
                if guide.retry {
                    Button("Try again", action: retry)
                }
            }
        }
    }
}

/// One second of the Rolling PIN screen: the PIN, or the core's reason there is none.
@MainActor
struct PinTickView: View {
    let tick: PinTick

    var body: some View {
        switch tick {
        case let .shown(pin):
            RollingPinView(pin: pin)
        case let .unavailable(reason):
            Text(reason)
        }
    }
}

/// The Rolling PIN in big digits and the core's countdown to the next one.
@MainActor
struct RollingPinView: View {
    let pin: PinView

    var body: some View {
        VStack(spacing: 8) {
            Text(pin.pin)
                .font(.system(size: 56, weight: .bold, design: .monospaced))
                .minimumScaleFactor(0.5)
                .lineLimit(1)
            ProgressView(value: Double(pin.secondsLeft), total: Double(max(pin.periodS, 1)))
            Text("Changes in \(pin.secondsLeft) s").font(.caption)
            ClockWarningBanner(warning: pin.clockWarning)
        }
        .frame(maxWidth: .infinity)
    }
}

/// What a blocker needs beyond the core's message (shown above it): the Settings button
/// when the app may not use Bluetooth, a symbol when Bluetooth is off.
@MainActor
struct BlockerView: View {
    let blocker: Blocker

    var body: some View {
        switch blocker {
        case .bluetoothOff:
            Image(systemName: "antenna.radiowaves.left.and.right.slash").font(.largeTitle)
        case .bluetoothPermissionMissing:
            Button {
                if let url = URL(string: UIApplication.openSettingsURLString) {
                    UIApplication.shared.open(url)
                }
            } label: {
                Label("Open Settings", systemImage: "gear")
            }
        default:
            EmptyView()
        }
    }
}
