// KeyListView: the operator's keys (the core's order: usable first), the sync status
// and a refresh. Works offline; the list follows the core's key changes.
import OpKey
import SwiftUI

@MainActor
final class KeyListModel: ObservableObject {
    @Published private(set) var keys: [Key] = []
    @Published private(set) var failure: String?
    private var watching: Task<Void, Never>?

    func watch(_ client: OpKeyClient) {
        guard watching == nil else { return }
        watching = Task { [weak self] in
            do {
                for try await keys in client.keys() {
                    self?.keys = keys
                }
            } catch {
                self?.failure = OpKeyClient.message(for: error)
            }
        }
    }

    deinit {
        watching?.cancel()
    }
}

@MainActor
struct KeyListView: View {
    @EnvironmentObject private var app: AppModel
    @StateObject private var model = KeyListModel()
    let client: OpKeyClient
    let home: HomeGuide

    var body: some View {
        NavigationView {
            List {
                Section {
                    SyncStatusView(home: home, state: app.syncState) { app.sync() }
                    ClockWarningBanner(warning: home.clockWarning)
                    Text(home.message).font(.callout)
                }
                if let failure = model.failure {
                    Text(failure).foregroundColor(.red)
                }
                Section("Keys") {
                    ForEach(model.keys, id: \.id) { key in
                        NavigationLink(destination: KeyDetailView(client: client, keyId: key.id)) {
                            KeyRow(key: key)
                        }
                    }
                }
            }
            .navigationTitle("OpKey")
            .refreshable { _ = try? await client.sync() }
        }
        .navigationViewStyle(.stack)
        .onAppear { model.watch(client) }
    }
}

/// One key in the list: what it is for, its machines and whether it can be used now.
@MainActor
struct KeyRow: View {
    let key: Key

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            Text(key.description.isEmpty ? key.organizationName : key.description).font(.headline)
            Text(key.machines.map(\.name).joined(separator: ", ")).font(.subheadline)
            HStack {
                Text(KeyRow.accessLabel(key.accessType))
                Text(KeyRow.stateLabel(key.state)).foregroundColor(key.usable ? .green : .secondary)
            }
            .font(.caption)
        }
    }

    /// Words for the core's access type (presentation only).
    static func accessLabel(_ type: AccessType) -> String {
        switch type {
        case .digitalKey: return "Digital Key"
        case .rollingPin: return "Rolling PIN"
        case .staticPin: return "Static PIN"
        case .primaryKeyCard: return "Primary key card"
        case .keyCard: return "Key card"
        case .ipafCard: return "IPAF card"
        }
    }

    /// Words for the core's key state (presentation only).
    static func stateLabel(_ state: KeyState) -> String {
        switch state {
        case .upcoming: return "Not valid yet"
        case .active: return "Active"
        case .expired: return "Expired"
        case .revoked: return "Revoked"
        }
    }
}

/// The last sync, what is running now, the usage records waiting for upload, a refresh.
@MainActor
struct SyncStatusView: View {
    let home: HomeGuide
    let state: SyncState
    let refresh: () -> Void

    var body: some View {
        VStack(alignment: .leading, spacing: 6) {
            HStack {
                Text(SyncStatusView.describe(state))
                Spacer()
                if case .running = state {
                    ProgressView()
                } else {
                    Button("Refresh", action: refresh)
                }
            }
            if let last = home.lastSyncAt {
                Text("Last synced \(last, style: .relative) ago").font(.caption)
            } else {
                Text("Not synced yet").font(.caption)
            }
            if home.usageEventsWaiting > 0 {
                Text("\(home.usageEventsWaiting) unlock records waiting to upload").font(.caption)
            }
        }
    }

    /// Words for the sync state (presentation only; a failure is the core's sentence).
    static func describe(_ state: SyncState) -> String {
        switch state {
        case .idle:
            return "Keys work offline"
        case .running(progress: .none):
            return "Syncing…"
        case let .running(progress: .some(.fetching(page, keysSoFar))):
            return "Syncing… page \(page), \(keysSoFar) keys"
        case let .running(progress: .some(.applying(keys))):
            return "Saving \(keys) keys…"
        case let .done(report):
            return "Up to date (\(report.upserted) changed, \(report.deleted) removed)"
        case let .failed(reason, _):
            return reason
        }
    }
}
