// RootView: the top screen the core's HomeGuide.stage names, plus the invite sheet and
// the screen shown when the core cannot be opened.
import OpKey
import SwiftUI

@MainActor
struct RootView: View {
    @EnvironmentObject private var model: AppModel

    var body: some View {
        content
            .sheet(item: $model.invite) { request in
                if let client = model.client {
                    InviteView(client: client, input: request.input) {
                        model.invite = nil
                        model.sync()
                    }
                } else {
                    MessageView(title: "OpKey is not ready", message: model.openFailure?.message ?? "")
                }
            }
    }

    @ViewBuilder private var content: some View {
        if let failure = model.openFailure {
            OpenFailureView(failure: failure)
        } else if let error = model.homeError {
            MessageView(title: "OpKey cannot read its data", message: error)
        } else if let home = model.home, let client = model.client {
            switch home.stage {
            case .welcome, .phoneRevoked:
                WelcomeView(home: home)
            case .resumeInvite:
                ResumeInviteView(client: client, home: home)
            case .keys:
                KeyListView(client: client, home: home)
            }
        } else {
            ProgressView()
        }
    }
}

/// The core could not be opened: its sentence, and erasing when that is the way out.
@MainActor
struct OpenFailureView: View {
    @EnvironmentObject private var model: AppModel
    let failure: OpenFailure

    var body: some View {
        VStack(spacing: 16) {
            MessageView(title: "OpKey cannot start", message: failure.message)
            if failure.canErase {
                Button("Erase this phone's OpKey data", role: .destructive) { model.eraseAndReopen() }
            }
            Button("Try again") { model.open() }
        }
        .padding()
    }
}

/// A title and the core's sentence.
@MainActor
struct MessageView: View {
    let title: String
    let message: String

    var body: some View {
        VStack(spacing: 8) {
            Text(title).font(.headline)
            Text(message).multilineTextAlignment(.center)
        }
        .padding()
    }
}

/// The core's clock warning, when it has one.
@MainActor
struct ClockWarningBanner: View {
    let warning: String?

    var body: some View {
        if let warning = warning {
            Label(warning, systemImage: "clock.badge.exclamationmark")
                .font(.callout)
                .padding(8)
                .frame(maxWidth: .infinity, alignment: .leading)
                .background(Color.orange.opacity(0.2))
                .cornerRadius(8)
        }
    }
}
