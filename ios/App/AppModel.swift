// AppModel: the app's state for SwiftUI, fed by the core's streams (home guide, sync
// state). It starts calls and holds their results; it decides nothing the core decides.
import OpKey
import SwiftUI

/// A link or code waiting on the invite screen. Its text holds the invite token, so it
/// prints without it.
struct InviteRequest: Identifiable, Equatable, CustomStringConvertible {
    let id = UUID()
    let input: String

    var description: String { "InviteRequest(<redacted>)" }
}

/// Why the core could not be opened, and whether erasing local data is the way out.
struct OpenFailure: Equatable {
    let message: String
    let canErase: Bool
}

@MainActor
final class AppModel: ObservableObject {
    @Published private(set) var client: OpKeyClient?
    @Published private(set) var openFailure: OpenFailure?
    @Published private(set) var home: HomeGuide?
    @Published private(set) var homeError: String?
    @Published private(set) var syncState: SyncState = .idle
    @Published var invite: InviteRequest?

    /// Made on first use, so iOS asks for Bluetooth permission at the first unlock.
    private(set) lazy var transport = CoreBluetoothTransport()
    private let serverURL: String?
    private let inviteHosts: [String]
    private var watchers: [Task<Void, Never>] = []

    init(bundle: Bundle = .main) {
        let server = bundle.object(forInfoDictionaryKey: "OpKeyServerURL") as? String ?? ""
        serverURL = server.isEmpty ? nil : server
        inviteHosts = bundle.object(forInfoDictionaryKey: "OpKeyInviteHosts") as? [String] ?? []
        open()
    }

    /// Opens the core and follows its home guide and sync state.
    func open() {
        watchers.forEach { $0.cancel() }
        watchers.removeAll()
        client?.close()
        client = nil
        do {
            let opened = try OpKeyApple.open(serverURL: serverURL, inviteHosts: inviteHosts)
            client = opened
            openFailure = nil
            follow(opened)
        } catch {
            var canErase = false
            if let coreError = error as? OpKeyError, case .DataKeyMismatch = coreError {
                canErase = true
            }
            openFailure = OpenFailure(message: OpKeyClient.message(for: error), canErase: canErase)
        }
    }

    /// After DataKeyMismatch: removes the unreadable store, then opens a fresh one.
    func eraseAndReopen() {
        do {
            try OpKeyApple.eraseLocalData(serverURL: serverURL, inviteHosts: inviteHosts)
            open()
        } catch {
            openFailure = OpenFailure(message: OpKeyClient.message(for: error), canErase: true)
        }
    }

    func openInvite(_ input: String) {
        invite = InviteRequest(input: input)
    }

    /// Syncs; the outcome shows through `syncState` (the core's SyncFinished/SyncFailed).
    func sync() {
        guard let client = client else { return }
        Task { _ = try? await client.sync() }
    }

    func cameToForeground() {
        if home?.stage == .keys { sync() }
    }

    private func follow(_ client: OpKeyClient) {
        watchers.append(Task { [weak self] in
            do {
                for try await guide in client.home() {
                    self?.home = guide
                    self?.homeError = nil
                }
            } catch {
                self?.homeError = OpKeyClient.message(for: error)
            }
        })
        watchers.append(Task { [weak self] in
            for await state in client.syncStates() {
                self?.syncState = state
            }
        })
    }
}
