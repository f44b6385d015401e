// InviteView: the landing screen of an invite link or code. The core reads the invite
// (no network), then redeems it with progress; every failure shows the core's sentence.
// Cancelling stops the redeem in the core (the task's cancellation is forwarded).
import OpKey
import SwiftUI

@MainActor
final class InviteModel: ObservableObject {
    enum Phase: Equatable {
        case invalid(message: String)
        case ready(ParsedInvite)
        case redeeming
        case joined(Enrollment)
        case failed(message: String)
    }

    @Published private(set) var phase: Phase
    private let client: OpKeyClient
    private let input: String
    private var redeeming: Task<Void, Never>?

    init(client: OpKeyClient, input: String) {
        self.client = client
        self.input = input
        do {
            phase = .ready(try client.parseInvite(input))
        } catch {
            phase = .invalid(message: OpKeyClient.message(for: error))
        }
    }

    func redeem() {
        phase = .redeeming
        redeeming = Task {
            do {
                phase = .joined(try await client.redeem(input))
            } catch {
                phase = .failed(message: OpKeyClient.message(for: error))
            }
        }
    }

    func cancel() {
        redeeming?.cancel()
    }
}

@MainActor
struct InviteView: View {
    @StateObject private var model: InviteModel
    private let done: () -> Void

    init(client: OpKeyClient, input: String, done: @escaping () -> Void) {
        _model = StateObject(wrappedValue: InviteModel(client: client, input: input))
        self.done = done
    }

    var body: some View {
        VStack(spacing: 20) {
            switch model.phase {
            case let .invalid(message):
                MessageView(title: "This is not an OpKey invite", message: message)
                Button("Close", action: done)
            case let .ready(parsed):
                Text("Join OpKey").font(.title2)
                if let server = parsed.serverUrl {
                    Text(server).font(.footnote).foregroundColor(.secondary)
                }
                Button("Join") { model.redeem() }.buttonStyle(.borderedProminent)
                Button("Not now", action: done)
            case .redeeming:
                ProgressView("Joining…")
                Button("Cancel", role: .cancel) { model.cancel() }
            case let .joined(enrollment):
                MessageView(
                    title: "Welcome, \(enrollment.`operator`.name)",
                    message: enrollment.organizations.map(\.name).joined(separator: ", ")
                )
                Button("Show my keys", action: done).buttonStyle(.borderedProminent)
            case let .failed(message):
                MessageView(title: "Could not join", message: message)
                Button("Try again") { model.redeem() }
                Button("Close", action: done)
            }
        }
        .padding()
    }
}
