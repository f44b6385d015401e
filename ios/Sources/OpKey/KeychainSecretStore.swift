// KeychainSecretStore: the core's SecretStore in the iOS Keychain (generic passwords of
// service "app.opkey"). Items are AfterFirstUnlockThisDeviceOnly and not synchronizable:
// never in a backup, never moved to another phone, readable by a background unlock once
// the phone was unlocked after boot. Never logs or reports a value.
import Foundation
import Security

public final class KeychainSecretStore: SecretStore, @unchecked Sendable {
    private let service: String

    public init(service: String = "app.opkey") {
        self.service = service
    }

    public func load(name: String) throws -> Data? {
        var query = baseQuery(name)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            guard let data = item as? Data else {
                throw PlatformError.Unexpected(reason: "the Keychain item \(name) holds no data")
            }
            return data
        case errSecItemNotFound:
            return nil
        default:
            throw Self.error(status, doing: "read \(name)")
        }
    }

    public func save(name: String, value: Data) throws {
        let attributes: [String: Any] = [
            kSecValueData as String: value,
            kSecAttrAccessible as String: kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly,
        ]
        let updated = SecItemUpdate(baseQuery(name) as CFDictionary, attributes as CFDictionary)
        switch updated {
        case errSecSuccess:
            return
        case errSecItemNotFound:
            var item = baseQuery(name)
            item.merge(attributes) { _, new in new }
            let added = SecItemAdd(item as CFDictionary, nil)
            guard added == errSecSuccess else { throw Self.error(added, doing: "save \(name)") }
        default:
            throw Self.error(updated, doing: "save \(name)")
        }
    }

    public func delete(name: String) throws {
        let status = SecItemDelete(baseQuery(name) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw Self.error(status, doing: "delete \(name)")
        }
    }

    private func baseQuery(_ name: String) -> [String: Any] {
        [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: name,
            kSecAttrSynchronizable as String: false,
        ]
    }

    /// A Keychain status as the core's PlatformError; the text names the operation and the
    /// status, never a value.
    private static func error(_ status: OSStatus, doing what: String) -> PlatformError {
        let text = (SecCopyErrorMessageString(status, nil) as String?) ?? "OSStatus \(status)"
        if status == errSecInteractionNotAllowed {
            return .Unavailable(reason: "the Keychain is locked until the phone is unlocked (\(what))")
        }
        return .Unavailable(reason: "the Keychain could not \(what): \(text)")
    }
}
