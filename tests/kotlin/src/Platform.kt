package opkey.ffi.tests

import java.math.BigInteger
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.nio.file.Files
import java.security.KeyPair
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.interfaces.ECPublicKey
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import uniffi.opkey_ffi.ChangeEvent
import uniffi.opkey_ffi.ChangeListener
import uniffi.opkey_ffi.LogRecord
import uniffi.opkey_ffi.Logger
import uniffi.opkey_ffi.OpKey
import uniffi.opkey_ffi.OpKeyConfig
import uniffi.opkey_ffi.SecretStore
import uniffi.opkey_ffi.Signer

/** What the Android shell does with Keystore-backed storage, held in memory here. */
class MemorySecretStore : SecretStore {
    val values = ConcurrentHashMap<String, ByteArray>()
    override fun load(name: String): ByteArray? = values[name]?.copyOf()
    override fun save(name: String, value: ByteArray) { values[name] = value.copyOf() }
    override fun delete(name: String) { values.remove(name) }
}

/**
 * A P-256 key held by the JCA, as a Keystore key would be: the core only ever sees the
 * public key and signatures.
 */
class JcaSigner : Signer {
    private val pair: KeyPair = KeyPairGenerator.getInstance("EC")
        .apply { initialize(ECGenParameterSpec("secp256r1")) }
        .generateKeyPair()
    val signatures = AtomicInteger(0)

    /** SEC1 uncompressed: 0x04 ‖ X ‖ Y, each coordinate 32 bytes big-endian. */
    override fun publicKey(): ByteArray {
        val w = (pair.public as ECPublicKey).w
        return byteArrayOf(4) + fixed32(w.affineX) + fixed32(w.affineY)
    }

    /** DER-encoded ECDSA over SHA-256, as Keystore's SHA256withECDSA returns. */
    override fun sign(message: ByteArray): ByteArray {
        signatures.incrementAndGet()
        return Signature.getInstance("SHA256withECDSA").run {
            initSign(pair.private)
            update(message)
            sign()
        }
    }

    private fun fixed32(n: BigInteger): ByteArray {
        val bytes = n.toByteArray().dropWhile { it == 0.toByte() }.toByteArray()
        return ByteArray(32 - bytes.size) + bytes
    }
}

/** Remembers every event and the thread it arrived on. */
class RecordingListener : ChangeListener {
    val events = CopyOnWriteArrayList<ChangeEvent>()
    val threads = CopyOnWriteArrayList<String>()
    private val finished = CountDownLatch(1)

    override fun onChange(event: ChangeEvent) {
        events += event
        threads += Thread.currentThread().name
        if (event is ChangeEvent.SyncFinished || event is ChangeEvent.SyncFailed) finished.countDown()
    }

    fun awaitSyncEnd(): Boolean = finished.await(10, TimeUnit.SECONDS)
}

class RecordingLogger : Logger {
    val records = CopyOnWriteArrayList<LogRecord>()
    override fun log(record: LogRecord) { records += record }
}

/** A server that accepts connections and never answers. */
class SilentServer : AutoCloseable {
    private val socket = ServerSocket(0, 50, InetAddress.getLoopbackAddress())
    private val accepted = CopyOnWriteArrayList<Socket>()
    private val firstConnection = CountDownLatch(1)
    val url = "http://127.0.0.1:${socket.localPort}/"

    init {
        Thread {
            while (!socket.isClosed) {
                val s = runCatching { socket.accept() }.getOrNull() ?: break
                accepted += s
                firstConnection.countDown()
            }
        }.apply { isDaemon = true }.start()
    }

    fun awaitConnection(): Boolean = firstConnection.await(10, TimeUnit.SECONDS)

    fun awaitConnectionBriefly(): Boolean = firstConnection.await(300, TimeUnit.MILLISECONDS)

    /** True once the client closed the first connection (reads reach end of stream). */
    fun clientHungUp(): Boolean {
        val s = accepted.firstOrNull() ?: return false
        s.soTimeout = 10_000
        val input = s.getInputStream()
        val buffer = ByteArray(4096)
        return runCatching { while (input.read(buffer) >= 0) { }; true }.getOrDefault(false)
    }

    override fun close() {
        accepted.forEach { runCatching { it.close() } }
        socket.close()
    }
}

/** A config for a fresh phone in its own data folder. */
fun phoneConfig(
    serverUrl: String? = null,
    requestTimeoutMs: ULong = 15_000u,
    attempts: UInt = 1u,
    dataDir: String = Files.createTempDirectory("opkey-kotlin-phone").toString(),
) = OpKeyConfig(
    dataDir = dataDir,
    serverUrl = serverUrl,
    inviteHosts = listOf("keys.example.com"),
    allowLoopbackInvites = true,
    deviceName = "Kotlin test phone",
    requestTimeoutMs = requestTimeoutMs,
    networkAttempts = attempts,
)

fun openPhone(config: OpKeyConfig = phoneConfig(), signer: Signer? = JcaSigner(), secrets: SecretStore = MemorySecretStore()) =
    OpKey(config, secrets, signer)
