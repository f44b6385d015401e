// SecureEnclaveSigner: the phone's P-256 key for the core's Signer. On a device the
// private key is made in the Secure Enclave and never leaves it; on the simulator (no
// enclave) it is a software key in the Keychain. Both are AfterFirstUnlockThisDeviceOnly:
// never backed up or moved. The public key is SEC1 uncompressed (65 bytes) and signatures
// are ASN.1 DER ECDSA-SHA256, as the core expects.
import Foundation
import Security

public final class SecureEnclaveSigner: Signer, @unchecked Sendable {
    private let tag: Data
    private let lock = NSLock()

    /// `tag`: the Keychain application tag of the key (one key per tag).
    public init(tag: String = "app.opkey.phone-key") {
        self.tag = Data(tag.utf8)
    }

    /// The public key; makes the key on first use (enrollment asks for it first).
    public func publicKey() throws -> Data {
        let key = try loadKey() ?? createKey()
        guard let publicKey = SecKeyCopyPublicKey(key) else {
            throw PlatformError.Unavailable(reason: "the phone key has no public key")
        }
        var error: Unmanaged<CFError>?
        guard let data = SecKeyCopyExternalRepresentation(publicKey, &error) as Data? else {
            throw Self.platformError(error, doing: "export the public key")
        }
        guard data.count == 65, data.first == 0x04 else {
            throw PlatformError.Unexpected(reason: "the public key is \(data.count) bytes, not SEC1 uncompressed P-256")
        }
        return data
    }

    /// Signs with the existing key. A missing key is `KeyInvalidated`: the enrolled key is
    /// gone and the phone must be enrolled again; a new key would not be the enrolled one.
    public func sign(message: Data) throws -> Data {
        guard let key = try loadKey() else {
            throw PlatformError.KeyInvalidated(reason: "the phone key is gone from this phone")
        }
        var error: Unmanaged<CFError>?
        guard let signature = SecKeyCreateSignature(
            key, .ecdsaSignatureMessageX962SHA256, message as CFData, &error
        ) as Data? else {
            throw Self.platformError(error, doing: "sign")
        }
        return signature
    }

    private func loadKey() throws -> SecKey? {
        let query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrKeyClass as String: kSecAttrKeyClassPrivate,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrApplicationTag as String: tag,
            kSecReturnRef as String: true,
        ]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            // A successful SecItemCopyMatching with kSecReturnRef returns a SecKey.
            return (item as! SecKey)
        case errSecItemNotFound:
            return nil
        case errSecInteractionNotAllowed:
            throw PlatformError.Unavailable(reason: "the phone key is locked until the phone is unlocked")
        default:
            throw PlatformError.Unavailable(reason: "the Keychain could not read the phone key (OSStatus \(status))")
        }
    }

    private func createKey() throws -> SecKey {
        lock.lock()
        defer { lock.unlock() }
        // Another thread may have made it while this one waited.
        if let key = try loadKey() {
            return key
        }
        var error: Unmanaged<CFError>?
        var privateAttributes: [String: Any] = [
            kSecAttrIsPermanent as String: true,
            kSecAttrApplicationTag as String: tag,
        ]
        var attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
        ]
        #if targetEnvironment(simulator)
        privateAttributes[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        #else
        guard let access = SecAccessControlCreateWithFlags(
            kCFAllocatorDefault, kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly, .privateKeyUsage, &error
        ) else {
            throw Self.platformError(error, doing: "set up the Secure Enclave key's access")
        }
        privateAttributes[kSecAttrAccessControl as String] = access
        attributes[kSecAttrTokenID as String] = kSecAttrTokenIDSecureEnclave
        #endif
        attributes[kSecPrivateKeyAttrs as String] = privateAttributes
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            throw Self.platformError(error, doing: "make the phone key")
        }
        return key
    }

    /// A Security framework error as the core's PlatformError, by what the person can do.
    private static func platformError(_ error: Unmanaged<CFError>?, doing what: String) -> PlatformError {
        guard let cfError = error?.takeRetainedValue() else {
            return .Unexpected(reason: "could not \(what)")
        }
        let nsError = cfError as Error as NSError
        let reason = "could not \(what): \(nsError.localizedDescription)"
        switch OSStatus(truncatingIfNeeded: nsError.code) {
        case errSecUserCanceled, errSecAuthFailed:
            return .Refused(reason: reason)
        case errSecItemNotFound:
            return .KeyInvalidated(reason: reason)
        case errSecInteractionNotAllowed, errSecNotAvailable:
            return .Unavailable(reason: reason)
        default:
            return .Unexpected(reason: reason)
        }
    }
}
