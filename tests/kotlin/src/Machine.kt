package opkey.ffi.tests

import java.nio.file.Files
import java.nio.file.Path
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit

/**
 * A real `opkey-machine run` process on loopback (machine/README.md), provisioned by the
 * backend: its key made with `opkey-machine keygen`, registered with the admin API, and
 * its bundle fetched from `GET /admin/v1/machines/{id}/provisioning`. Every status line
 * it prints is kept in [lines].
 */
class SimulatedMachine private constructor(
    private val process: Process,
    val machineId: String,
    /** `127.0.0.1:PORT`, where the local socket transport (PROTOCOL.md 2.10) listens. */
    val address: String,
    val dir: Path,
) : AutoCloseable {
    val lines = CopyOnWriteArrayList<String>()

    companion object {
        /** [extraArgs] go to `opkey-machine run`, e.g. `--keypad-listen 127.0.0.1:PORT`. */
        fun start(backend: Backend, machineId: String, extraArgs: List<String> = emptyList()): SimulatedMachine {
            val binary = System.getProperty("opkey.machine") ?: error("-Dopkey.machine=PATH is not set")
            val dir = Files.createTempDirectory("opkey-kotlin-machine")
            val key = dir.resolve("machine.key")
            val keygen = ProcessBuilder(binary, "keygen", "--key", key.toString())
                .redirectError(dir.resolve("keygen.log").toFile())
                .start()
            val publicKey = keygen.inputStream.bufferedReader().readText().trim()
            check(keygen.waitFor(10, TimeUnit.SECONDS) && keygen.exitValue() == 0) { "keygen failed: see $dir" }
            backend.registerBleKey(machineId, publicKey)
            val bundle = dir.resolve("bundle.json")
            Files.writeString(bundle, backend.provisioning(machineId))

            val process = ProcessBuilder(
                binary, "run",
                "--provision", bundle.toString(),
                "--key", key.toString(),
                "--state", dir.resolve("state.json").toString(),
                "--listen", "127.0.0.1:0",
                *extraArgs.toTypedArray(),
            )
                .redirectError(dir.resolve("machine.log").toFile())
                .start()
            val stdout = process.inputStream.bufferedReader()
            val first = stdout.readLine() ?: error("opkey-machine exited: see ${dir.resolve("machine.log")}")
            check(first.startsWith("listening on ")) { "unexpected first line: $first" }
            val machine = SimulatedMachine(process, machineId, first.removePrefix("listening on ").trim(), dir)
            Thread {
                // close() destroys the process, which closes this stream under the reader.
                try {
                    stdout.lineSequence().forEach { machine.lines += it }
                } catch (_: java.io.IOException) {
                }
            }.apply { isDaemon = true }.start()
            Runtime.getRuntime().addShutdownHook(Thread { machine.close() })
            return machine
        }
    }

    /** The first status line starting with [prefix] within [timeoutMs], or null. */
    fun awaitLine(prefix: String, timeoutMs: Long = 5_000): String? {
        val deadline = System.nanoTime() + timeoutMs * 1_000_000
        while (System.nanoTime() < deadline) {
            lines.firstOrNull { it.startsWith(prefix) }?.let { return it }
            Thread.sleep(20)
        }
        return null
    }

    override fun close() {
        if (process.isAlive) {
            process.destroy()
            if (!process.waitFor(5, TimeUnit.SECONDS)) process.destroyForcibly()
        }
    }
}
