package opkey.ffi.tests.platform

import app.opkey.ble.ScanCollector
import kotlin.test.assertContentEquals
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertFalse
import kotlin.test.assertNull
import kotlin.test.assertTrue
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import opkey.ffi.tests.SocketBleTransport
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.TransportException

/** A scan keeps the advertisers whose manufacturer data carries a wanted machine tag. */
class ScanCollectorTest {
    private val excavator = SocketBleTransport.machineTag("machine-excavator")
    private val dumper = SocketBleTransport.machineTag("machine-dumper")

    @Test
    fun `the tag is the first six bytes after the company id, when there are six`() {
        assertContentEquals(excavator, ScanCollector.tagOf(excavator + byteArrayOf(9, 9)))
        assertNull(ScanCollector.tagOf(excavator.copyOf(5)))
        assertNull(ScanCollector.tagOf(null))
    }

    @Test
    fun `the scan ends as soon as a wanted machine is seen`() = runBlocking {
        val scan = ScanCollector(listOf(excavator))
        val waiting = async(Dispatchers.Default) { scan.await(10_000) }
        delay(30)
        assertFalse(scan.offer("AA:01", dumper, -40), "another machine is not a match")
        assertFalse(scan.offer("AA:02", null, -40), "no manufacturer data")
        Thread { scan.offer("AA:03", excavator, -61) }.start()
        val seen = waiting.await()
        assertEquals(listOf("AA:03"), seen.map { it.peripheralId })
        assertContentEquals(excavator, seen[0].tag)
        assertEquals((-61).toShort(), seen[0].rssi)
    }

    @Test
    fun `nothing in range is an empty list at the timeout`() = runBlocking {
        val scan = ScanCollector(listOf(excavator))
        scan.offer("AA:01", dumper, null)
        assertEquals(emptyList(), scan.await(50))
    }

    @Test
    fun `an advertiser seen again is listed once, with its latest signal`() = runBlocking {
        val scan = ScanCollector(listOf(excavator, dumper))
        scan.offer("AA:01", excavator, -80)
        scan.offer("AA:02", dumper, -70)
        scan.offer("AA:01", excavator, -50)
        val seen = scan.await(10)
        assertEquals(listOf("AA:01", "AA:02"), seen.map { it.peripheralId })
        assertEquals((-50).toShort(), seen[0].rssi)
    }

    @Test
    fun `asking for no tag accepts any OpKey machine, and a malformed tag asked for matches nothing`() = runBlocking {
        assertTrue(ScanCollector(emptyList()).offer("AA:01", dumper, null))
        val odd = ScanCollector(listOf(byteArrayOf(1, 2, 3)))
        assertFalse(odd.offer("AA:01", byteArrayOf(1, 2, 3, 0, 0, 0), null))
    }

    @Test
    fun `a scan the platform could not start fails with its error`() = runBlocking {
        val scan = ScanCollector(listOf(excavator))
        scan.fail(TransportException.BluetoothOff())
        assertFailsWith<TransportException.BluetoothOff> { scan.await(1_000) }
    }
}
