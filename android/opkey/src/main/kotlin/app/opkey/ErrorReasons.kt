/**
 * The sentence the core wrote for the operator, read out of each generated exception. The
 * generated exceptions' `message` is a field dump ("keyId=…, reason=…"); the core's
 * `reason` field is the text to show, so screens use [reason] or [messageFor].
 */
package app.opkey

import uniffi.opkey_ffi.OpKeyException
import uniffi.opkey_ffi.PinException
import uniffi.opkey_ffi.UnlockException
import uniffi.opkey_ffi.unlockErrorGuide

/** The core's sentence for the operator. */
val OpKeyException.reason: String
    get() = when (this) {
        is OpKeyException.InvalidInvite -> reason
        is OpKeyException.InviteNotFound -> reason
        is OpKeyException.InviteExpired -> reason
        is OpKeyException.InviteAlreadyUsed -> reason
        is OpKeyException.InviteRevoked -> reason
        is OpKeyException.TooManyAttempts -> reason
        is OpKeyException.ServerUnknown -> reason
        is OpKeyException.NotEnrolled -> reason
        is OpKeyException.PhoneRevoked -> reason
        is OpKeyException.KeyNotFound -> reason
        is OpKeyException.Network -> reason
        is OpKeyException.Timeout -> reason
        is OpKeyException.Server -> reason
        is OpKeyException.BadResponse -> reason
        is OpKeyException.Storage -> reason
        is OpKeyException.DataKeyMismatch -> reason
        is OpKeyException.SecretStore -> reason
        is OpKeyException.Signer -> reason
        is OpKeyException.PhoneKeyLost -> reason
        is OpKeyException.Cancelled -> reason
        is OpKeyException.InvalidConfig -> reason
        is OpKeyException.Internal -> reason
    }

/** The core's sentence for the operator. */
val PinException.reason: String
    get() = when (this) {
        is PinException.KeyNotFound -> reason
        is PinException.NotAPinKey -> reason
        is PinException.NotSynced -> reason
        is PinException.NotUsable -> reason
        is PinException.Storage -> reason
    }

/**
 * What to tell the operator about an exception a call threw: the core's sentence for the
 * core's exceptions, the exception's own message (or its type) for anything else.
 */
fun messageFor(error: Throwable): String = when (error) {
    is OpKeyException -> error.reason
    is PinException -> error.reason
    is UnlockException -> unlockErrorGuide(error).message
    else -> error.message ?: error::class.java.simpleName
}
