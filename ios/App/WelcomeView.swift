// WelcomeView: the first screen (and the one after the phone's access was withdrawn):
// the core's message, and a field for an invite code typed by hand. Links from the SMS
// open the invite screen directly.
import OpKey
import SwiftUI

@MainActor
struct WelcomeView: View {
    @EnvironmentObject private var model: AppModel
    let home: HomeGuide
    @State private var code = ""

    var body: some View {
        VStack(spacing: 20) {
            Image(systemName: "key").font(.system(size: 56))
            Text(home.message).multilineTextAlignment(.center)
            ClockWarningBanner(warning: home.clockWarning)
            TextField("Invite code, e.g. ABCD-EFGH-JKM", text: $code)
                .textInputAutocapitalization(.characters)
                .disableAutocorrection(true)
                .textFieldStyle(.roundedBorder)
            Button("Join") { model.openInvite(code) }
                .buttonStyle(.borderedProminent)
                .disabled(code.isEmpty)
        }
        .padding()
    }
}

/// A redeem was interrupted: finish it (the core knows the invite).
@MainActor
struct ResumeInviteView: View {
    @EnvironmentObject private var model: AppModel
    let client: OpKeyClient
    let home: HomeGuide
    @State private var working = false
    @State private var failure: String?

    var body: some View {
        VStack(spacing: 20) {
            Text(home.message).multilineTextAlignment(.center)
            if let failure = failure {
                Text(failure).foregroundColor(.red).multilineTextAlignment(.center)
            }
            if working {
                ProgressView()
            } else {
                Button("Finish joining") { resume() }.buttonStyle(.borderedProminent)
            }
        }
        .padding()
    }

    private func resume() {
        working = true
        failure = nil
        Task {
            do {
                _ = try await client.resumeRedeem()
                model.sync()
            } catch {
                failure = OpKeyClient.message(for: error)
            }
            working = false
        }
    }
}
