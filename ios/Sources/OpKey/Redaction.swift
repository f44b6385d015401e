// What holds a PIN prints without it: PinView and StaticPin (generated records), and the
// layer's KeyDetail and PinTick. `print`, string interpolation, `dump` of a description
// and crash reports then never carry a PIN; the screens read `.pin` directly.
import Foundation

extension PinView: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        "PinView(keyId: \(keyId), pin: <redacted>, step: \(step), secondsLeft: \(secondsLeft))"
    }

    public var debugDescription: String { description }
}

extension StaticPin: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "StaticPin(keyId: \(keyId), pin: <redacted>)" }

    public var debugDescription: String { description }
}

extension KeyDetail: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        "KeyDetail(keyId: \(key.id), action: \(guide.action), blocker: \(String(describing: guide.blocker)), "
            + "staticPin: \(staticPin == nil ? "none" : "<redacted>"))"
    }

    public var debugDescription: String { description }
}

extension PinTick: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        switch self {
        case let .shown(pin):
            return "PinTick.shown(\(pin))"
        case let .unavailable(reason):
            return "PinTick.unavailable(\(reason))"
        }
    }

    public var debugDescription: String { description }
}
