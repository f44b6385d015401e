/**
 * [GattRetry]: when and how often a failed GATT connect is tried again. Android reports
 * many passing link failures as status 133 (`GATT_ERROR`) or 62 (connection not
 * established); a second try after closing the old `BluetoothGatt` usually works. Pure
 * JVM; the Android transport passes its connect attempt as a block.
 */
package app.opkey.ble

import kotlinx.coroutines.delay
import uniffi.opkey_ffi.TransportException

data class GattRetry(
    /** Tries in all, the first one included. */
    val attempts: Int = 3,
    /** The pause before the second try; doubled for each further try. */
    val firstBackoffMs: Long = 250,
    /** No pause is longer than this. */
    val maxBackoffMs: Long = 1_000,
    /** GATT statuses that are worth another try. */
    val retryStatuses: Set<Int> = setOf(GATT_ERROR, GATT_CONN_FAIL_ESTABLISH),
) {
    init {
        require(attempts >= 1) { "attempts must be at least 1" }
        require(firstBackoffMs >= 0 && maxBackoffMs >= firstBackoffMs) { "backoff must be 0 <= first <= max" }
    }

    companion object {
        /** Android's catch-all `GATT_ERROR`. */
        const val GATT_ERROR = 133

        /** HCI "connection failed to be established". */
        const val GATT_CONN_FAIL_ESTABLISH = 62
    }

    /** Whether a failure deserves another try (only listed GATT statuses do). */
    fun retries(error: Throwable): Boolean = error is TransportException.Gatt && error.status in retryStatuses

    /** The pause after failed try number [attempt] (1-based). */
    fun backoffMs(attempt: Int): Long {
        require(attempt >= 1) { "attempts count from 1" }
        var pause = firstBackoffMs
        repeat(attempt - 1) { pause = minOf(maxBackoffMs, pause * 2) }
        return minOf(maxBackoffMs, pause)
    }

    /**
     * Runs [attempt] (given its 1-based number) until it succeeds, fails with a status
     * that does not retry, or [attempts] are used up; then the last failure is thrown.
     * The block must clean up after its own failure (close the `BluetoothGatt`) before
     * throwing. Cancellation is never retried.
     */
    suspend fun <T> run(attempt: suspend (Int) -> T): T {
        var number = 1
        while (true) {
            try {
                return attempt(number)
            } catch (e: TransportException) {
                if (number >= attempts || !retries(e)) throw e
            }
            delay(backoffMs(number))
            number++
        }
    }
}
