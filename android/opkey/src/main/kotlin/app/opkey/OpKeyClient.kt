/**
 * [OpKeyClient]: the app's one handle on the core, in Kotlin's terms (suspend functions and
 * flows), pure JVM. It owns the plumbing only: one core change subscription turned into
 * flows that read the core again after each relevant change, the sync state those changes
 * and a running sync's progress tell, coroutine cancellation forwarded to the core's
 * [CancelHandle], and an unlock's ending as one [UnlockResult]. Every decision (which screen,
 * what blocks a key, what a PIN is, what an error means) is the core's: this layer passes
 * the core's values and sentences on as they are.
 */
package app.opkey

import kotlin.time.Duration
import kotlin.time.Duration.Companion.seconds
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.async
import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.currentCoroutineContext
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.SharedFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asSharedFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.combine
import kotlinx.coroutines.flow.conflate
import kotlinx.coroutines.flow.distinctUntilChanged
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.flow.flowOn
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.merge
import kotlinx.coroutines.flow.onCompletion
import kotlinx.coroutines.flow.transformWhile
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.withContext
import uniffi.opkey_ffi.BleTransport
import uniffi.opkey_ffi.BluetoothState
import uniffi.opkey_ffi.CancelHandle
import uniffi.opkey_ffi.ChangeEvent
import uniffi.opkey_ffi.ChangeListener
import uniffi.opkey_ffi.ClockStatus
import uniffi.opkey_ffi.Enrollment
import uniffi.opkey_ffi.HomeGuide
import uniffi.opkey_ffi.Key
import uniffi.opkey_ffi.KeyAction
import uniffi.opkey_ffi.OpKey
import uniffi.opkey_ffi.OpKeyException
import uniffi.opkey_ffi.ParsedInvite
import uniffi.opkey_ffi.PinException
import uniffi.opkey_ffi.Status
import uniffi.opkey_ffi.SyncProgress
import uniffi.opkey_ffi.SyncProgressListener
import uniffi.opkey_ffi.SyncReport
import uniffi.opkey_ffi.UnlockException
import uniffi.opkey_ffi.UnlockOutcome
import uniffi.opkey_ffi.UnlockReport
import uniffi.opkey_ffi.UsageEvent
import uniffi.opkey_ffi.denyReasonMessage
import uniffi.opkey_ffi.unlockErrorGuide

/**
 * The app's one handle on [core], made once per process. Flows read the core on [io];
 * the suspend calls run in the core's own runtime and may be called from any dispatcher.
 * [close] stops the core subscription and ends every flow this client handed out; it does
 * not close [core].
 */
class OpKeyClient(
    /** The generated core object, for anything this layer does not wrap. */
    val core: OpKey,
    private val io: CoroutineDispatcher = Dispatchers.IO,
) : AutoCloseable {

    /** Bumped on every change ([home]) and on changes to keys or enrollment ([keys], [keyDetail]). */
    private val anyChange = MutableStateFlow(0L)
    private val keyChange = MutableStateFlow(0L)
    private val closed = MutableStateFlow(false)

    // DROP_OLDEST: tryEmit never fails nor blocks the Rust thread; a slow collector loses
    // old events, never the newest.
    private val events = MutableSharedFlow<ChangeEvent>(
        extraBufferCapacity = EVENT_BUFFER,
        onBufferOverflow = BufferOverflow.DROP_OLDEST,
    )
    private val sync = MutableStateFlow<SyncState>(SyncState.Idle)

    /**
     * Every change the core reports from now on (hot: events before collection are not
     * replayed). Fed by one core subscription for the client's life.
     */
    val changes: SharedFlow<ChangeEvent> = events.asSharedFlow()

    /** Where the phone's syncs are: [SyncState.Idle] until the first sync starts. */
    val syncState: StateFlow<SyncState> = sync.asStateFlow()

    // Events arrive synchronously on the Rust thread that made the change: record and return.
    private val subscription = core.subscribe(
        object : ChangeListener {
            override fun onChange(event: ChangeEvent) = heard(event)
        },
    )

    private fun heard(event: ChangeEvent) {
        when (event) {
            ChangeEvent.SyncStarted -> sync.value = SyncState.Running(null)
            is ChangeEvent.SyncFinished -> sync.value = SyncState.Done(event.report)
            is ChangeEvent.SyncFailed -> sync.value = SyncState.Failed(event.reason, event.cancelled)
            ChangeEvent.KeysChanged, ChangeEvent.EnrollmentChanged -> Unit
        }
        if (changesKeys(event)) keyChange.update { it + 1 }
        anyChange.update { it + 1 }
        events.tryEmit(event)
    }

    /**
     * The app's top screen and sync status line: now, then after every change (and after
     * this client's unlocks, which add usage events). Ends with the core's exception when the
     * store cannot be read.
     */
    fun home(): Flow<HomeGuide> = reading(anyChange) { core.homeGuide() }

    /** The keys on the phone, usable first: now, then after every key or enrollment change. */
    fun keys(): Flow<List<Key>> = reading(keyChange) { core.keys() }

    /**
     * One key's screen: the key, the core's [uniffi.opkey_ffi.KeyGuide] for the latest
     * [bluetooth] state and, when the guide's action is a Static PIN that nothing blocks, the
     * PIN. The first value comes with [bluetooth]'s first state; then again after each key
     * change or Bluetooth change. Ends with [OpKeyException.KeyNotFound] when the key leaves
     * the phone.
     */
    fun keyDetail(keyId: String, bluetooth: Flow<BluetoothState>): Flow<KeyDetail> =
        combine(keyChange, bluetooth.distinctUntilChanged()) { _, state -> state }
            .map { state -> detail(keyId, state) }
            .flowOn(io)
            .distinctUntilChanged()
            .conflate()
            .untilClosed()

    /**
     * The Rolling PIN of [keyId] every [every] (one second by default): the [PinTick.Shown]
     * view the core computes at that moment, its `secondsLeft` being the countdown. When the
     * core cannot show one (not a PIN key, not synced, expired …) emits
     * [PinTick.Unavailable] with the core's reason and completes.
     */
    fun pinCountdown(keyId: String, every: Duration = 1.seconds): Flow<PinTick> {
        require(every.isPositive()) { "the tick interval must be positive, not $every" }
        return flow {
            while (true) {
                val tick = try {
                    PinTick.Shown(core.pin(keyId))
                } catch (e: PinException) {
                    PinTick.Unavailable(e.reason)
                }
                emit(tick)
                if (tick is PinTick.Unavailable) break
                delay(every)
            }
        }.flowOn(io).conflate().untilClosed()
    }

    /** Reads an invite link or code without the network; throws [OpKeyException]. */
    fun parseInvite(input: String): ParsedInvite = core.parseInvite(input)

    /**
     * Redeems an invite link or code; throws [OpKeyException]. Cancelling the coroutine
     * cancels the redeem in the core (the invite stays redeemable).
     */
    suspend fun redeem(input: String): Enrollment = cancellable { core.redeemInvite(input, it) }

    /** Finishes a redeem that was interrupted (home stage `RESUME_INVITE`); throws [OpKeyException]. */
    suspend fun resumeRedeem(): Enrollment = core.resumeRedeem()

    /**
     * Brings the keys up to date; throws [OpKeyException]. Its progress shows in [syncState].
     * Cancelling the coroutine cancels the sync in the core (the store stays as it was) and
     * returns once the core has stopped.
     */
    suspend fun sync(): SyncReport {
        val progress = object : SyncProgressListener {
            override fun onProgress(progress: SyncProgress) {
                sync.update { if (it is SyncState.Running) SyncState.Running(progress) else it }
            }
        }
        return cancellable { core.sync(it, progress) }
    }

    /**
     * Unlocks [machineId] over [transport]. Every ending the core names is an [UnlockResult];
     * coroutine cancellation cancels the unlock in the core and is rethrown.
     */
    suspend fun unlock(machineId: String, transport: BleTransport): UnlockResult =
        exchange { core.unlock(machineId, transport, it) }

    /** Locks [machineId] (relay off) over [transport]; as [unlock]. */
    suspend fun lock(machineId: String, transport: BleTransport): UnlockResult =
        exchange { core.lock(machineId, transport, it) }

    /** The phone clock against the server's; throws [OpKeyException]. */
    fun clockStatus(): ClockStatus = core.clockStatus()

    /** Enrollment, last sync, key counts; a local read; throws [OpKeyException]. */
    fun status(): Status = core.status()

    /** One key; a local read; throws [OpKeyException.KeyNotFound] when it is not on the phone. */
    fun key(keyId: String): Key = core.key(keyId)

    /** The usage events on the phone, oldest first; a local read; throws [OpKeyException]. */
    fun usageEvents(): List<UsageEvent> = core.usageEvents()

    /** Stops the core subscription and ends every flow this client handed out. Idempotent. */
    override fun close() {
        subscription.cancel()
        closed.value = true
    }

    private fun detail(keyId: String, bluetooth: BluetoothState): KeyDetail {
        val key = core.key(keyId)
        val guide = core.keyGuide(keyId, bluetooth)
        val staticPin = if (guide.action == KeyAction.STATIC_PIN && guide.blocker == null) {
            try {
                core.staticPin(keyId)
            } catch (_: PinException) {
                null
            }
        } else {
            null
        }
        return KeyDetail(key, guide, staticPin)
    }

    private suspend fun exchange(call: suspend (CancelHandle) -> UnlockReport): UnlockResult {
        val report = try {
            cancellable(call)
        } catch (e: UnlockException) {
            return UnlockResult.Failed(unlockErrorGuide(e))
        } finally {
            // Every attempt leaves a usage event: the home screen's count changed.
            anyChange.update { it + 1 }
        }
        return when (val outcome = report.outcome) {
            is UnlockOutcome.Unlocked -> UnlockResult.Opened(report)
            is UnlockOutcome.Locked -> UnlockResult.Closed(report)
            is UnlockOutcome.Denied ->
                UnlockResult.Refused(report, outcome.reason, denyReasonMessage(outcome.reason))
        }
    }

    /**
     * Runs [call] with a fresh [CancelHandle] outside this coroutine's cancellation: when the
     * coroutine is cancelled the handle is, and the coroutine ends once the core has
     * stopped, so nothing of the call outlives it.
     */
    private suspend fun <T> cancellable(call: suspend (CancelHandle) -> T): T = CancelHandle().use { handle ->
        val context = currentCoroutineContext()
        val work = CoroutineScope(context + NonCancellable).async { runCatching { call(handle) } }
        try {
            work.await().getOrThrow()
        } catch (e: CancellationException) {
            handle.cancel()
            // The core answers Cancelled at its next wait; that answer is not this coroutine's.
            withContext(NonCancellable) { work.await() }
            throw e
        }
    }

    /** [read] on [io] now, then after each bump of [trigger]; equal values are dropped. */
    private fun <T> reading(trigger: StateFlow<Long>, read: () -> T): Flow<T> =
        trigger.map { read() }.flowOn(io).distinctUntilChanged().conflate().untilClosed()

    /** This flow until it ends or [close] is called, whichever comes first. */
    private fun <T> Flow<T>.untilClosed(): Flow<T> =
        merge<Item<T>>(
            map<T, Item<T>> { Next(it) }.onCompletion { cause -> if (cause == null) emit(End) },
            closed.filter { it }.map { End },
        )
            .transformWhile { item ->
                if (item is Next<T>) emit(item.value)
                item is Next<T>
            }

    private sealed interface Item<out T>
    private class Next<T>(val value: T) : Item<T>
    private data object End : Item<Nothing>

    private companion object {
        const val EVENT_BUFFER = 64

        fun changesKeys(event: ChangeEvent): Boolean = when (event) {
            ChangeEvent.KeysChanged, ChangeEvent.EnrollmentChanged, is ChangeEvent.SyncFinished -> true
            ChangeEvent.SyncStarted, is ChangeEvent.SyncFailed -> false
        }
    }
}
