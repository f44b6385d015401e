// The OpKey operator app: opens the core once, and routes invite links to the invite
// screen: Universal Links (https://invite.opkey.example/i/...) and the opkey:// scheme
// both arrive through onOpenURL; the core decides whether a link is a valid invite.
import OpKey
import SwiftUI

@main
struct OpKeyApp: App {
    @StateObject private var model = AppModel()
    @Environment(\.scenePhase) private var scenePhase

    var body: some Scene {
        WindowGroup {
            RootView()
                .environmentObject(model)
                .onOpenURL { url in model.openInvite(url.absoluteString) }
                .onChange(of: scenePhase) { phase in
                    if phase == .active { model.cameToForeground() }
                }
        }
    }
}
