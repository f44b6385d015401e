// The sentence the core wrote for the person, read out of each generated error. The
// generated errors' `localizedDescription` is a debug dump; the core's `reason` is the
// text to show, so the screens use `reason` (or `OpKeyClient.message(for:)`).
import Foundation

extension OpKeyError {
    /// The core's sentence for the person.
    public var reason: String {
        switch self {
        case let .InvalidInvite(_, reason), let .InviteNotFound(reason), let .InviteExpired(reason),
             let .InviteAlreadyUsed(reason), let .InviteRevoked(reason), let .TooManyAttempts(reason),
             let .ServerUnknown(reason), let .NotEnrolled(reason), let .PhoneRevoked(reason),
             let .KeyNotFound(_, reason), let .Network(reason), let .Timeout(reason),
             let .Server(_, reason), let .BadResponse(reason), let .Storage(reason),
             let .DataKeyMismatch(reason), let .SecretStore(reason), let .Signer(reason),
             let .PhoneKeyLost(reason), let .Cancelled(reason), let .InvalidConfig(reason),
             let .Internal(reason):
            return reason
        }
    }
}

extension PinError {
    /// The core's sentence for the person.
    public var reason: String {
        switch self {
        case let .KeyNotFound(_, reason), let .NotAPinKey(_, _, reason), let .NotSynced(_, reason),
             let .NotUsable(_, _, reason), let .Storage(reason):
            return reason
        }
    }
}

extension OpKeyClient {
    /// What to tell the person about an error a call threw: the core's sentence for the
    /// core's errors, the platform's description for anything else.
    public static func message(for error: Error) -> String {
        switch error {
        case let error as OpKeyError:
            return error.reason
        case let error as PinError:
            return error.reason
        default:
            return error.localizedDescription
        }
    }
}
