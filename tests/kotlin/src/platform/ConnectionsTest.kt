package opkey.ffi.tests.platform

import app.opkey.ble.Connections
import kotlin.test.assertEquals
import kotlin.test.assertFailsWith
import kotlin.test.assertNotEquals
import kotlin.test.assertNull
import org.junit.jupiter.api.Test
import uniffi.opkey_ffi.TransportException

/** The core holds numbers; the table turns them into connections or into Disconnected. */
class ConnectionsTest {
    @Test
    fun `a handle leads to its connection until it is removed, then it is Disconnected`() {
        val table = Connections<String>()
        val a = table.add("link A")
        val b = table.add("link B")
        assertNotEquals(a, b)
        assertEquals("link A", table[a])
        assertEquals("link B", table[b])
        assertEquals("link A", table.remove(a))
        assertNull(table.remove(a), "removing twice is harmless")
        assertFailsWith<TransportException.Disconnected> { table[a] }
        assertEquals(1, table.size)
    }

    @Test
    fun `an unknown handle is Disconnected and handles are never reused`() {
        val table = Connections<String>()
        assertFailsWith<TransportException.Disconnected> { table[42u] }
        val first = table.add("x")
        table.remove(first)
        val second = table.add("y")
        assertNotEquals(first, second)
        assertFailsWith<TransportException.Disconnected> { table[first] }
    }

    @Test
    fun `removeAll hands back every open connection once`() {
        val table = Connections<String>()
        table.add("a")
        table.add("b")
        assertEquals(setOf("a", "b"), table.removeAll().toSet())
        assertEquals(emptyList(), table.removeAll())
        assertEquals(0, table.size)
    }
}
