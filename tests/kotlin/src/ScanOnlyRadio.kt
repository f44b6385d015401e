package opkey.ffi.tests

import uniffi.opkey_ffi.Advertisement
import uniffi.opkey_ffi.BleConnection
import uniffi.opkey_ffi.BleTransport
import uniffi.opkey_ffi.TransportException

/**
 * A radio whose scan does [onScan] (finds nothing, throws what a shell would, or hangs);
 * nothing past the scan is ever reached. For the unlock tests that never get to a machine.
 */
class ScanOnlyRadio(private val onScan: suspend () -> List<Advertisement>) : BleTransport {
    /** How many scans the core started. */
    @Volatile var scans = 0

    override suspend fun scan(serviceUuid: String, tags: List<ByteArray>, timeoutMs: ULong): List<Advertisement> {
        scans++
        return onScan()
    }

    override suspend fun connect(peripheralId: String, timeoutMs: ULong): BleConnection = throw TransportException.NotFound()
    override suspend fun subscribe(connection: ULong) = throw TransportException.Disconnected()
    override suspend fun write(connection: ULong, fragment: ByteArray) = throw TransportException.Disconnected()
    override suspend fun nextNotification(connection: ULong, timeoutMs: ULong): ByteArray = throw TransportException.Disconnected()
    override suspend fun disconnect(connection: ULong) {}
}
