// OpKeyApple: opens the core the iOS way. The encrypted store lives in Application
// Support/OpKey, excluded from backups (its data key is in the Keychain, this device
// only, so a restored copy could not be read anyway); the data key is in
// KeychainSecretStore and the phone key in SecureEnclaveSigner.
import Foundation
import UIKit

public enum OpKeyApple {
    /// The core's settings for this app. `serverURL`: the fixed backend, or nil to learn it
    /// from the invite link; `inviteHosts`: the hosts whose https invite links are accepted.
    @MainActor
    public static func config(serverURL: String?, inviteHosts: [String]) throws -> OpKeyConfig {
        let support = try FileManager.default.url(
            for: .applicationSupportDirectory, in: .userDomainMask, appropriateFor: nil, create: true
        )
        var folder = support.appendingPathComponent("OpKey", isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var values = URLResourceValues()
        values.isExcludedFromBackup = true
        try folder.setResourceValues(values)
        return OpKeyConfig(
            dataDir: folder.path,
            serverUrl: serverURL,
            inviteHosts: inviteHosts,
            deviceName: UIDevice.current.model
        )
    }

    /// Opens (creating on first start) the phone's OpKey. Throws OpKeyError; on
    /// `DataKeyMismatch` offer `eraseLocalData` and a new invite.
    @MainActor
    public static func open(serverURL: String?, inviteHosts: [String]) throws -> OpKeyClient {
        let core = try OpKey(
            config: config(serverURL: serverURL, inviteHosts: inviteHosts),
            secretStore: KeychainSecretStore(),
            signer: SecureEnclaveSigner()
        )
        return OpKeyClient(core: core)
    }

    /// Removes the store and its data key (after `DataKeyMismatch`). No OpKey may be open.
    @MainActor
    public static func eraseLocalData(serverURL: String?, inviteHosts: [String]) throws {
        try OpKeyBindings.eraseLocalData(
            config: config(serverURL: serverURL, inviteHosts: inviteHosts),
            secretStore: KeychainSecretStore()
        )
    }
}
