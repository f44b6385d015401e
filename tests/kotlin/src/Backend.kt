package opkey.ffi.tests

import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.nio.file.Files
import java.nio.file.Path
import java.time.Duration
import java.time.Instant
import java.time.temporal.ChronoUnit
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/**
 * The real `opkey-server` on loopback, with its own SQLite file, and the admin calls the
 * tests need, over its HTTP API (docs/API.md). JSON is read with small regexes: these
 * tests have no JSON library, and they only need ids and SMS bodies.
 */
class Backend private constructor(private val process: Process, val url: String, val dir: Path) : AutoCloseable {

    companion object {
        const val ADMIN_TOKEN = "kotlin-admin-token"
        private val phones = AtomicInteger(0)

        /** One backend shared by the tests that do not stop it. */
        val shared: Backend by lazy { start() }

        fun start(): Backend {
            val server = System.getProperty("opkey.server") ?: error("-Dopkey.server=PATH is not set")
            val dir = Files.createTempDirectory("opkey-kotlin-backend")
            val process = ProcessBuilder(
                server, "serve",
                "--db", dir.resolve("backend.db").toString(),
                "--listen", "127.0.0.1:0",
                "--admin-token", ADMIN_TOKEN,
            )
                .redirectError(dir.resolve("server.log").toFile())
                .start()
            val stdout = process.inputStream.bufferedReader()
            val first = stdout.readLine() ?: error("opkey-server exited: see ${dir.resolve("server.log")}")
            check(first.startsWith("listening on ")) { "unexpected first line: $first" }
            // Keep draining stdout so the server never blocks on a full pipe.
            Thread { stdout.lineSequence().forEach { } }.apply { isDaemon = true }.start()
            val backend = Backend(process, first.removePrefix("listening on ").trim().trimEnd('/'), dir)
            Runtime.getRuntime().addShutdownHook(Thread { backend.close() })
            return backend
        }

        /** A phone number no other test uses. */
        fun newPhone(): String = "+47 4%07d".format(phones.incrementAndGet())
    }

    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()

    fun createMachine(name: String): String =
        id(post("/admin/v1/machines", """{"name": "$name", "serial": "SN-$name", "keypad": "dual-id"}"""))

    /** Creates an operator with an SMS invitation; returns their id and the invite link. */
    fun inviteOperator(name: String): Pair<String, String> {
        val phone = newPhone()
        val operatorId = id(post("/admin/v1/operators", """{"name": "$name", "phone": "$phone", "send_invite": true}"""))
        val link = Regex("""http://[^\s"]+/i/[A-Za-z0-9_-]+""").findAll(get("/admin/v1/sms"))
            .map { it.value }
            .lastOrNull() ?: error("no invite link in the SMS outbox")
        return operatorId to link
    }

    /** A personal Digital Key for [operatorId] on [machineId], valid from an hour ago for 30 days. */
    fun createKey(operatorId: String, machineId: String, description: String): String {
        val from = Instant.now().minus(1, ChronoUnit.HOURS).truncatedTo(ChronoUnit.SECONDS)
        val to = from.plus(30, ChronoUnit.DAYS)
        return id(
            post(
                "/admin/v1/keys",
                """{"operator_id": "$operatorId", "machine_ids": ["$machineId"], "access_type": "digital-key",
                   "valid_from": "$from", "valid_to": "$to", "description": "$description"}""",
            ),
        )
    }

    /**
     * A personal Rolling PIN key for [operatorId] on [machineId], valid from an hour ago for
     * 30 days; returns its id and the key's JSON (with `rolling_pin: {slot, …}`).
     */
    fun createRollingPinKey(operatorId: String, machineId: String, digits: Int = 6, periodS: Int = 60): Pair<String, String> {
        val from = Instant.now().minus(1, ChronoUnit.HOURS).truncatedTo(ChronoUnit.SECONDS)
        val to = from.plus(30, ChronoUnit.DAYS)
        val json = post(
            "/admin/v1/keys",
            """{"operator_id": "$operatorId", "machine_ids": ["$machineId"], "access_type": "rolling-pin",
               "pin_digits": $digits, "pin_period_s": $periodS, "pin_algorithm": "sha256",
               "valid_from": "$from", "valid_to": "$to", "description": "Keypad"}""",
        )
        return id(json) to json
    }

    /** Registers (or replaces) the machine's BLE public key, as `opkey-machine keygen` printed it. */
    fun registerBleKey(machineId: String, publicKey: String) {
        patch("/admin/v1/machines/$machineId", """{"ble_public_key": "$publicKey"}""")
    }

    /** The bundle `opkey-machine run --provision` reads; 409 until the BLE key is registered. */
    fun provisioning(machineId: String): String = get("/admin/v1/machines/$machineId/provisioning")

    private fun patch(path: String, json: String): String = send(
        HttpRequest.newBuilder(URI.create(url + path))
            .header("content-type", "application/json")
            .method("PATCH", HttpRequest.BodyPublishers.ofString(json)),
    )

    private fun post(path: String, json: String): String = send(
        HttpRequest.newBuilder(URI.create(url + path))
            .header("content-type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json)),
    )

    private fun get(path: String): String = send(HttpRequest.newBuilder(URI.create(url + path)).GET())

    private fun send(request: HttpRequest.Builder): String {
        val response = http.send(
            request.header("authorization", "Bearer $ADMIN_TOKEN").timeout(Duration.ofSeconds(10)).build(),
            HttpResponse.BodyHandlers.ofString(),
        )
        check(response.statusCode() in 200..299) { "${response.request().uri()}: ${response.statusCode()} ${response.body()}" }
        return response.body()
    }

    private fun id(json: String): String =
        Regex(""""id"\s*:\s*"([^"]+)"""").find(json)?.groupValues?.get(1) ?: error("no id in $json")

    override fun close() {
        if (process.isAlive) {
            process.destroy()
            if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
        }
    }
}
