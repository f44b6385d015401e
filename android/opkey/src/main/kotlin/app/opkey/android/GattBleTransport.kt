/**
 * [GattBleTransport]: the core's [BleTransport] over Android's Bluetooth LE central API,
 * a thin adapter. Scanning filters on the OpKey service UUID and hands each result's
 * manufacturer data to [ScanCollector]; a connection is a `BluetoothGatt` over LE
 * (`TRANSPORT_LE`). The steps, their order, retries and clean-up are [GattSession]'s
 * (pure, tested on the desktop); [AndroidGattLink] only turns them into `BluetoothGatt`
 * calls and its callbacks into [GattOperations] answers and [NotificationQueue] entries.
 *
 * Every entry point checks the runtime permissions ([BlePermissions]) and the adapter
 * first: PermissionMissing and BluetoothOff reach the core as typed errors, never as a
 * SecurityException. Never logs addresses or fragments.
 */
package app.opkey.android

import android.annotation.SuppressLint
import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCallback
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothProfile
import android.bluetooth.BluetoothStatusCodes
import android.bluetooth.le.ScanCallback
import android.bluetooth.le.ScanFilter
import android.bluetooth.le.ScanResult
import android.bluetooth.le.ScanSettings
import android.content.Context
import android.content.pm.PackageManager
import android.os.Build
import android.os.ParcelUuid
import app.opkey.ble.BlePermissions
import app.opkey.ble.GattAnswer
import app.opkey.ble.GattLink
import app.opkey.ble.GattOp
import app.opkey.ble.GattOperations
import app.opkey.ble.GattRetry
import app.opkey.ble.GattSession
import app.opkey.ble.NotificationQueue
import app.opkey.ble.ScanCollector
import java.util.UUID
import uniffi.opkey_ffi.Advertisement
import uniffi.opkey_ffi.BleConnection
import uniffi.opkey_ffi.BleTransport
import uniffi.opkey_ffi.TransportException

class GattBleTransport(context: Context, retry: GattRetry = GattRetry()) : BleTransport, AutoCloseable {
    companion object {
        /** PROTOCOL.md §2.4. */
        val SERVICE: UUID = UUID.fromString("6f706b79-0001-4d61-6368-696e654b6579")
        val RX: UUID = UUID.fromString("6f706b79-0002-4d61-6368-696e654b6579")
        val TX: UUID = UUID.fromString("6f706b79-0003-4d61-6368-696e654b6579")

        /** The Client Characteristic Configuration descriptor that turns notifications on. */
        val CCCD: UUID = UUID.fromString("00002902-0000-1000-8000-00805f9b34fb")
    }

    private val app = context.applicationContext
    private val session = GattSession<AndroidGattLink>(retry)

    override suspend fun scan(serviceUuid: String, tags: List<ByteArray>, timeoutMs: ULong): List<Advertisement> {
        val adapter = requireReady()
        val scanner = adapter.bluetoothLeScanner ?: throw TransportException.BluetoothOff()
        val collector = ScanCollector(tags)
        val callback = object : ScanCallback() {
            override fun onScanResult(callbackType: Int, result: ScanResult) = report(result)

            override fun onBatchScanResults(results: MutableList<ScanResult>) = results.forEach(::report)

            override fun onScanFailed(errorCode: Int) =
                collector.fail(TransportException.Other("Android could not start the scan (code $errorCode)"))

            private fun report(result: ScanResult) {
                collector.offer(
                    result.device.address,
                    result.scanRecord?.getManufacturerSpecificData(ScanCollector.COMPANY_ID),
                    result.rssi,
                )
            }
        }
        val filter = ScanFilter.Builder().setServiceUuid(ParcelUuid(parseUuid(serviceUuid))).build()
        val settings = ScanSettings.Builder().setScanMode(ScanSettings.SCAN_MODE_LOW_LATENCY).build()
        platform { scanner.startScan(listOf(filter), settings, callback) }
        try {
            return collector.await(timeoutMs.toLong())
        } finally {
            runCatching { scanner.stopScan(callback) }
        }
    }

    override suspend fun connect(peripheralId: String, timeoutMs: ULong): BleConnection {
        val adapter = requireReady()
        if (!BluetoothAdapter.checkBluetoothAddress(peripheralId)) throw TransportException.NotFound()
        val device = platform { adapter.getRemoteDevice(peripheralId) }
        return session.connect(timeoutMs.toLong()) { AndroidGattLink(app, device) }
    }

    override suspend fun subscribe(connection: ULong) {
        requireReady()
        session.subscribe(connection)
    }

    override suspend fun write(connection: ULong, fragment: ByteArray) {
        requireReady()
        session.write(connection, fragment)
    }

    override suspend fun nextNotification(connection: ULong, timeoutMs: ULong): ByteArray =
        session.nextNotification(connection, timeoutMs.toLong())

    override suspend fun disconnect(connection: ULong) = session.disconnect(connection)

    /** Closes every open connection (the app is going away). */
    override fun close() = session.closeAll()

    private fun requireReady(): BluetoothAdapter {
        val missing = BlePermissions.missing(Build.VERSION.SDK_INT) {
            app.checkSelfPermission(it) == PackageManager.PERMISSION_GRANTED
        }
        if (missing.isNotEmpty()) throw TransportException.PermissionMissing()
        val adapter = app.getSystemService(BluetoothManager::class.java)?.adapter
            ?: throw TransportException.Other("this phone has no Bluetooth")
        if (!adapter.isEnabled) throw TransportException.BluetoothOff()
        return adapter
    }

    private fun parseUuid(text: String): UUID = try {
        UUID.fromString(text)
    } catch (e: IllegalArgumentException) {
        throw TransportException.Other("'$text' is not a service UUID")
    }
}

/** A permission revoked between the check and the call still becomes a typed error. */
private inline fun <T> platform(call: () -> T): T = try {
    call()
} catch (e: SecurityException) {
    throw TransportException.PermissionMissing()
} catch (e: IllegalStateException) {
    // The adapter turned off under us.
    throw TransportException.BluetoothOff()
}

/**
 * One `BluetoothGatt` connection as a [GattLink]. Callbacks arrive on a binder thread and
 * only answer [ops] or queue notifications.
 */
// Reached only through GattBleTransport, which checks the permissions first.
@SuppressLint("MissingPermission")
private class AndroidGattLink(private val app: Context, private val device: BluetoothDevice) : GattLink {
    override val ops = GattOperations()
    override val notifications = NotificationQueue()

    @Volatile private var handle: BluetoothGatt? = null
    private var rx: BluetoothGattCharacteristic? = null
    private var tx: BluetoothGattCharacteristic? = null

    private val gatt: BluetoothGatt get() = handle ?: throw TransportException.Disconnected()

    override fun startConnect(): Boolean {
        handle = platform { device.connectGatt(app, false, callback, BluetoothDevice.TRANSPORT_LE) }
        return handle != null
    }

    override fun startDiscovery(): Boolean = platform { gatt.discoverServices() }

    override fun startMtuRequest(mtu: Int): Boolean = platform { gatt.requestMtu(mtu) }

    override fun hasOpKeyService(): Boolean {
        val service = gatt.getService(GattBleTransport.SERVICE) ?: return false
        rx = service.getCharacteristic(GattBleTransport.RX)
        tx = service.getCharacteristic(GattBleTransport.TX)
        return rx != null && tx?.getDescriptor(GattBleTransport.CCCD) != null
    }

    override fun routeNotifications(): Boolean = platform { gatt.setCharacteristicNotification(requireNotNull(tx), true) }

    override fun startNotificationSwitch(): Boolean = platform {
        val cccd = requireNotNull(tx).getDescriptor(GattBleTransport.CCCD)
        val on = BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            gatt.writeDescriptor(cccd, on) == BluetoothStatusCodes.SUCCESS
        } else {
            @Suppress("DEPRECATION")
            cccd.value = on
            @Suppress("DEPRECATION")
            gatt.writeDescriptor(cccd)
        }
    }

    override fun startWrite(fragment: ByteArray): Boolean = platform {
        val characteristic = requireNotNull(rx)
        val withResponse = BluetoothGattCharacteristic.WRITE_TYPE_DEFAULT
        if (Build.VERSION.SDK_INT >= Build.VERSION_CODES.TIRAMISU) {
            gatt.writeCharacteristic(characteristic, fragment, withResponse) == BluetoothStatusCodes.SUCCESS
        } else {
            characteristic.writeType = withResponse
            @Suppress("DEPRECATION")
            characteristic.value = fragment
            @Suppress("DEPRECATION")
            gatt.writeCharacteristic(characteristic)
        }
    }

    override fun release() {
        val gatt = handle ?: return
        handle = null
        runCatching { gatt.disconnect() }
        runCatching { gatt.close() }
    }

    private val callback = object : BluetoothGattCallback() {
        override fun onConnectionStateChange(gatt: BluetoothGatt, status: Int, newState: Int) {
            when {
                newState == BluetoothProfile.STATE_CONNECTED && status == BluetoothGatt.GATT_SUCCESS ->
                    ops.complete(GattOp.CONNECT, GattAnswer(status))
                newState == BluetoothProfile.STATE_DISCONNECTED -> {
                    // A connect that never came up reports its status here (often 133).
                    val failed = if (status == BluetoothGatt.GATT_SUCCESS) GattRetry.GATT_ERROR else status
                    ops.complete(GattOp.CONNECT, GattAnswer(failed))
                    ops.fail(TransportException.Disconnected())
                    notifications.close()
                }
                status != BluetoothGatt.GATT_SUCCESS -> ops.complete(GattOp.CONNECT, GattAnswer(status))
            }
        }

        override fun onServicesDiscovered(gatt: BluetoothGatt, status: Int) {
            ops.complete(GattOp.DISCOVER_SERVICES, GattAnswer(status))
        }

        override fun onMtuChanged(gatt: BluetoothGatt, mtu: Int, status: Int) {
            ops.complete(GattOp.REQUEST_MTU, GattAnswer(status, mtu))
        }

        override fun onDescriptorWrite(gatt: BluetoothGatt, descriptor: BluetoothGattDescriptor, status: Int) {
            ops.complete(GattOp.WRITE_DESCRIPTOR, GattAnswer(status))
        }

        override fun onCharacteristicWrite(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic, status: Int) {
            ops.complete(GattOp.WRITE_CHARACTERISTIC, GattAnswer(status))
        }

        // Android 13 and later: the value comes as its own array.
        override fun onCharacteristicChanged(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic, value: ByteArray) {
            if (characteristic.uuid == GattBleTransport.TX) notifications.offer(value)
        }

        // Before Android 13 only this one is called; from 13 on both are, so it is skipped there.
        @Deprecated("Android 12 and older")
        override fun onCharacteristicChanged(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic) {
            @Suppress("DEPRECATION")
            if (Build.VERSION.SDK_INT < Build.VERSION_CODES.TIRAMISU && characteristic.uuid == GattBleTransport.TX) {
                notifications.offer(characteristic.value)
            }
        }
    }
}
