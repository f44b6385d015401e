/**
 * [ScanCollector]: what one scan is looking for and what it saw. The platform's scan
 * callback feeds it each advertisement's manufacturer data (company `0xFFFF`, PROTOCOL.md
 * §2.4: the 6-byte machine tag first); [await] returns as soon as an advertiser with a
 * wanted tag was seen, or at the timeout with whatever was seen (empty: not in range).
 * A scan failure from the platform ends the wait with that error. Pure JVM.
 */
package app.opkey.ble

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.withTimeoutOrNull
import uniffi.opkey_ffi.Advertisement
import uniffi.opkey_ffi.TransportException

class ScanCollector(tags: List<ByteArray>) {
    companion object {
        /** The test company id OpKey machines advertise under (little-endian on air). */
        const val COMPANY_ID = 0xFFFF
        const val TAG_BYTES = 6

        /**
         * The machine tag in manufacturer data as Android gives it for [COMPANY_ID] (the
         * bytes after the company id), or null when it is too short.
         */
        fun tagOf(manufacturerData: ByteArray?): ByteArray? =
            manufacturerData?.takeIf { it.size >= TAG_BYTES }?.copyOf(TAG_BYTES)
    }

    private val wanted = tags.filter { it.size == TAG_BYTES }.map { it.copyOf() }
    private val anyTag = tags.isEmpty()
    private val seen = LinkedHashMap<String, Advertisement>()
    private val found = CompletableDeferred<Unit>()

    /**
     * From the scan callback: records [peripheralId] if its manufacturer data carries a
     * wanted tag (any tag when none was asked for). True if it was a match.
     */
    fun offer(peripheralId: String, manufacturerData: ByteArray?, rssi: Int?): Boolean {
        val tag = tagOf(manufacturerData) ?: return false
        if (!anyTag && wanted.none { it.contentEquals(tag) }) return false
        val dbm = rssi?.coerceIn(Short.MIN_VALUE.toInt(), Short.MAX_VALUE.toInt())?.toShort()
        val advertisement = Advertisement(peripheralId, tag, dbm)
        synchronized(seen) { seen[peripheralId] = advertisement }
        found.complete(Unit)
        return true
    }

    /** From the scan callback: the platform could not scan. */
    fun fail(error: TransportException) {
        found.completeExceptionally(error)
    }

    /** Waits up to [timeoutMs] for a first match; returns every match seen so far. */
    suspend fun await(timeoutMs: Long): List<Advertisement> {
        withTimeoutOrNull(timeoutMs.coerceAtLeast(0)) { found.await() }
        return synchronized(seen) { seen.values.toList() }
    }
}
