/**
 * What the OpKeyClient tests share: a flow recorder that waits for the value a test expects,
 * phones enrolled against the shared backend (also reopened against another server), and the
 * few admin calls [Backend] does not make (Static PIN keys, revoking and deleting keys).
 */
package opkey.ffi.tests.client

import java.net.ServerSocket
import java.net.URI
import java.net.http.HttpClient
import java.net.http.HttpRequest
import java.net.http.HttpResponse
import java.time.Duration
import java.time.Instant
import java.time.temporal.ChronoUnit
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.Job
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import opkey.ffi.tests.Backend
import opkey.ffi.tests.JcaSigner
import opkey.ffi.tests.MemorySecretStore
import opkey.ffi.tests.openPhone
import opkey.ffi.tests.phoneConfig
import uniffi.opkey_ffi.OpKey

/**
 * Collects a flow on [Dispatchers.Default] into a channel: tests wait for the value they
 * expect ([awaitMatching]) and for the flow's end ([awaitEnd]).
 */
class Recorder<T>(scope: CoroutineScope, flow: Flow<T>) {
    private val values = Channel<T>(Channel.UNLIMITED)
    private val end = CompletableDeferred<Throwable?>()

    /** Every value received so far by [awaitMatching], in order. */
    val seen = mutableListOf<T>()

    val job: Job = scope.launch(Dispatchers.Default) {
        try {
            flow.collect { values.send(it) }
            end.complete(null)
        } catch (e: Throwable) {
            end.complete(e)
            if (e is kotlinx.coroutines.CancellationException) throw e
        }
    }

    /** The next value that matches [predicate], skipping others; fails after [timeoutS] seconds. */
    suspend fun awaitMatching(timeoutS: Int = 10, predicate: (T) -> Boolean): T {
        val found = withTimeoutOrNull(timeoutS.seconds) {
            var next: T
            do {
                next = values.receive()
                seen += next
            } while (!predicate(next))
            Found(next)
        }
        return found?.value ?: throw AssertionError("no matching value within $timeoutS s; seen: $seen")
    }

    private class Found<T>(val value: T)

    /** How the flow ended: null when it completed, else its exception; fails after 10 s. */
    suspend fun awaitEnd(): Throwable? = withTimeout(10.seconds) { end.await() }

    fun stop() = job.cancel()
}

/** A flow recorded from now on in this scope. */
fun <T> Flow<T>.recordIn(scope: CoroutineScope) = Recorder(scope, this)

/** A phone enrolled through an SMS invite against [backend] and synced once. */
class EnrolledPhone(val backend: Backend = Backend.shared, name: String = "Client Operator") {
    val machineId: String = backend.createMachine("Loader ${System.nanoTime()}")
    val operatorId: String
    val link: String
    private val config = phoneConfig()
    private val secrets = MemorySecretStore()
    private val signer = JcaSigner()

    init {
        val (operator, invite) = backend.inviteOperator(name)
        operatorId = operator
        link = invite
    }

    /** The phone's core, opened on its data folder; [serverUrl] overrides the enrolled server. */
    fun open(serverUrl: String? = null): OpKey =
        openPhone(config.copy(serverUrl = serverUrl, requestTimeoutMs = 60_000u), signer, secrets)
}

/** A loopback URL where nothing listens: every request is refused at once. */
fun refusingUrl(): String = "http://127.0.0.1:${ServerSocket(0).use { it.localPort }}/"

/** The admin calls the client tests need beyond [Backend]'s. */
class Admin(private val backend: Backend = Backend.shared) {
    private val http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()

    /** A personal Static PIN key with [pin], valid from an hour ago for 30 days; returns its id. */
    fun createStaticPinKey(operatorId: String, machineId: String, pin: String): String {
        val from = Instant.now().minus(1, ChronoUnit.HOURS).truncatedTo(ChronoUnit.SECONDS)
        val to = from.plus(30, ChronoUnit.DAYS)
        val json = send(
            "POST", "/admin/v1/keys",
            """{"operator_id": "$operatorId", "machine_ids": ["$machineId"], "access_type": "static-pin",
               "static_pin": "$pin", "valid_from": "$from", "valid_to": "$to", "description": "Gate keypad"}""",
        )
        return Regex(""""id"\s*:\s*"([^"]+)"""").find(json)?.groupValues?.get(1) ?: error("no id in $json")
    }

    fun revokeKey(keyId: String) {
        send("POST", "/admin/v1/keys/$keyId/revoke", "{}")
    }

    fun deleteKey(keyId: String) {
        send("DELETE", "/admin/v1/keys/$keyId", null)
    }

    private fun send(method: String, path: String, json: String?): String {
        val body = json?.let { HttpRequest.BodyPublishers.ofString(it) } ?: HttpRequest.BodyPublishers.noBody()
        val request = HttpRequest.newBuilder(URI.create(backend.url + path))
            .header("authorization", "Bearer ${Backend.ADMIN_TOKEN}")
            .header("content-type", "application/json")
            .timeout(Duration.ofSeconds(10))
            .method(method, body)
            .build()
        val response = http.send(request, HttpResponse.BodyHandlers.ofString())
        check(response.statusCode() in 200..299) { "$method $path: ${response.statusCode()} ${response.body()}" }
        return response.body()
    }
}
