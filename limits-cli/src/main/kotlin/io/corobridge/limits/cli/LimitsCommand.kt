package io.corobridge.limits.cli

import io.corobridge.limits.postgres.PostgresLimitStore
import java.io.PrintWriter
import java.util.concurrent.Callable
import kotlin.system.exitProcess
import picocli.CommandLine
import picocli.CommandLine.Command
import picocli.CommandLine.Model.CommandSpec
import picocli.CommandLine.Option
import picocli.CommandLine.ParameterException
import picocli.CommandLine.Parameters
import picocli.CommandLine.ParentCommand
import picocli.CommandLine.Spec

/**
 * `corobridge-limits`: the limits kept in PostgreSQL by corobridge-limits-postgres, managed from a shell, as
 * `prefect concurrency-limit` manages Prefect's. Run `java -jar limits-cli/target/corobridge-limits.jar --help`.
 */
@Command(
    name = "corobridge-limits",
    mixinStandardHelpOptions = true,
    version = ["corobridge-limits 0.1.0-SNAPSHOT"],
    description = [
        "Concurrency limits shared by every JVM that uses one PostgreSQL database (corobridge-limits-postgres).",
        "The database is given with --url or the variable COROBRIDGE_LIMITS_URL; its tables are created if absent.",
        "Rate limits (at most N a second, across every JVM) have create-rate and delete-rate; ls shows both kinds.",
    ],
    subcommands = [
        Create::class, Ls::class, Inspect::class, Update::class, Reset::class, Delete::class, CreateRate::class,
        DeleteRate::class, CommandLine.HelpCommand::class,
    ],
)
public class LimitsCommand : Runnable {
    @Option(
        names = ["-u", "--url"],
        description = ["JDBC URL of the database, e.g. jdbc:postgresql://db:5432/app?user=app&password=secret"],
        defaultValue = "\${env:COROBRIDGE_LIMITS_URL}",
        scope = CommandLine.ScopeType.INHERIT,
    )
    internal var url: String? = null

    @Spec
    internal lateinit var spec: CommandSpec

    override fun run() {
        throw ParameterException(
            spec.commandLine(), "say what to do: create, ls, inspect, update, reset, delete, create-rate or delete-rate",
        )
    }

    /** Opens the store named by --url for [work], and closes it. */
    internal fun <T> withStore(command: CommandSpec, work: (PostgresLimitStore) -> T): T {
        val jdbcUrl = url?.takeIf { it.isNotBlank() }
            ?: throw ParameterException(command.commandLine(), "--url is required (or set COROBRIDGE_LIMITS_URL)")
        if (!jdbcUrl.startsWith("jdbc:postgresql:")) {
            throw ParameterException(command.commandLine(), "--url must be a jdbc:postgresql: URL, was \"${redact(jdbcUrl)}\"")
        }
        return PostgresLimitStore.open(jdbcUrl).use(work)
    }

    public companion object {
        /** Runs the command line with [args]; returns the exit code: 0 done, 1 failed, 2 bad usage. */
        @JvmStatic
        public fun run(args: Array<String>, out: PrintWriter, err: PrintWriter): Int {
            val line = CommandLine(LimitsCommand()).setOut(out).setErr(err)
            line.setExecutionExceptionHandler { failure, command, _ ->
                command.err.println("corobridge-limits: ${redact(explain(failure))}")
                command.err.flush()
                1
            }
            return line.execute(*args).also {
                out.flush()
                err.flush()
            }
        }

        /** The failure's message and its causes' (a driver's "connection attempt failed" says why only in its cause). */
        private fun explain(failure: Throwable): String {
            val parts = ArrayList<String>()
            var current: Throwable? = failure
            while (current != null && parts.size < 4) {
                val message = current.message ?: current.toString()
                if (parts.none { it.contains(message) }) parts += message
                current = current.cause
            }
            return parts.joinToString(": ")
        }

        /** [text] with the passwords of URLs in it hidden: `password=...` and `user:password@`. */
        internal fun redact(text: String): String =
            text.replace(Regex("(?i)(password=)[^&;\\s\"]*"), "$1***").replace(Regex("([^/:@\\s\"]+:)[^@/\\s\"]+@"), "$1***@")

        @JvmStatic
        public fun main(args: Array<String>) {
            exitProcess(run(args, PrintWriter(System.out, true), PrintWriter(System.err, true)))
        }
    }
}

/** What every subcommand has: the parent's store, and where to print. */
public abstract class Subcommand : Callable<Int> {
    @ParentCommand
    internal lateinit var parent: LimitsCommand

    @Spec
    internal lateinit var spec: CommandSpec

    protected val out: PrintWriter
        get() = spec.commandLine().out

    protected fun <T> withStore(work: (PostgresLimitStore) -> T): T = parent.withStore(spec, work)

    protected fun checkTag(tag: String) {
        val problem = when {
            tag.isBlank() -> "must not be blank"
            tag.length > 200 -> "must be at most 200 characters, was ${tag.length}"
            tag.any { it.isISOControl() || it == ',' || it == '=' } -> "must not hold control characters, commas or '='"
            else -> return
        }
        throw ParameterException(spec.commandLine(), "TAG $problem")
    }

    protected fun checkSlots(slots: Int) {
        if (slots < 0) throw ParameterException(spec.commandLine(), "SLOTS must be 0 (switches the tag off) or more, was $slots")
    }

    protected fun unknown(tag: String, store: PostgresLimitStore): Nothing {
        val known = store.limits().keys
        throw IllegalArgumentException(
            "no limit \"${tag.take(80)}\"; known: " +
                (known.takeIf { it.isNotEmpty() }?.let { all -> all.take(20).joinToString(", ") { it.take(40) } + if (all.size > 20) ", ..." else "" }
                    ?: "none (create one)")
        )
    }
}

@Command(name = "create", mixinStandardHelpOptions = true, description = ["Defines a new limit TAG of SLOTS slots (0 switches it off)."])
public class Create : Subcommand() {
    @Parameters(index = "0", paramLabel = "TAG")
    private lateinit var tag: String

    @Parameters(index = "1", paramLabel = "SLOTS")
    private var slots: Int = 0

    override fun call(): Int {
        checkTag(tag)
        checkSlots(slots)
        return withStore { store ->
            when (val existing = store.limits()[tag]) {
                null -> {
                    store.create(tag, slots)
                    out.println("created \"$tag\" with $slots slots")
                }
                slots -> out.println("\"$tag\" exists already with $slots slots; nothing changed")
                else -> throw IllegalArgumentException("limit \"$tag\" exists already, with $existing slots; use update to change it")
            }
            0
        }
    }
}

@Command(name = "ls", mixinStandardHelpOptions = true, description = ["Lists every limit: its slots and how many are held now, in every JVM."])
public class Ls : Subcommand() {
    override fun call(): Int = withStore { store ->
        val limits = store.limits()
        val rates = store.rates()
        if (limits.isEmpty() && rates.isEmpty()) {
            out.println("no limits (create one: corobridge-limits create TAG SLOTS, or create-rate TAG PER_SECOND)")
        }
        // The tag column as wide as the longest tag (at least 24), so long tags keep the columns in line.
        val width = (limits.keys + rates.map { it.tag }).maxOfOrNull { it.length }?.coerceAtLeast(24) ?: 24
        if (limits.isNotEmpty()) {
            val waiting = store.waiters().flatMap { it.tags }.groupingBy { it }.eachCount()
            out.println(String.format("%-${width}s %6s %6s %8s", "TAG", "SLOTS", "HELD", "WAITING"))
            for ((tag, slots) in limits) {
                val held = store.occupied(tag)
                out.println(
                    String.format("%-${width}s %6d %6d %8d", tag, slots, held, waiting[tag] ?: 0) +
                        if (held > slots) "  (over: resized while held)" else ""
                )
            }
        }
        if (rates.isNotEmpty()) {
            if (limits.isNotEmpty()) out.println()
            out.println(String.format("%-${width}s %12s %6s", "RATE", "PER SECOND", "BURST"))
            for (rate in rates) out.println(String.format("%-${width}s %12s %6d", rate.tag, perSecond(rate.perSecond), rate.burst))
        }
        0
    }
}

@Command(name = "inspect", mixinStandardHelpOptions = true, description = ["Shows a limit and who holds its slots: thread or coroutine, host, process, since, lease end."])
public class Inspect : Subcommand() {
    @Parameters(index = "0", paramLabel = "TAG")
    private lateinit var tag: String

    override fun call(): Int = withStore { store ->
        val rate = store.rates().firstOrNull { it.tag == tag }
        val slots = store.limits()[tag] ?: if (rate != null) null else unknown(tag, store)
        if (slots != null) {
            val holders = store.holders(tag)
            val waiters = store.waiters(tag)
            out.println("\"$tag\": $slots slots, ${holders.size} held, ${waiters.size} waiting")
            for (holder in holders) {
                out.println("  lease ${holder.leaseId}: ${holder.holder} on ${holder.host}, pid ${holder.pid}, since ${holder.since}, lease ends ${holder.expiresAt}")
            }
            for ((place, waiter) in waiters.withIndex()) {
                val also = (waiter.tags - tag).takeIf { it.isNotEmpty() }?.let { others -> " (with ${others.joinToString(", ") { "\"$it\"" }})" } ?: ""
                out.println("  waiting ${place + 1}: ${waiter.holder} on ${waiter.host}, pid ${waiter.pid}, since ${waiter.since}$also")
            }
        }
        if (rate != null) out.println("rate \"$tag\": ${perSecond(rate.perSecond)} a second, bursts of ${rate.burst}")
        0
    }
}

@Command(name = "update", mixinStandardHelpOptions = true, description = ["Changes the number of slots of a limit (holders keep theirs)."])
public class Update : Subcommand() {
    @Parameters(index = "0", paramLabel = "TAG")
    private lateinit var tag: String

    @Parameters(index = "1", paramLabel = "SLOTS")
    private var slots: Int = 0

    override fun call(): Int {
        checkSlots(slots)
        return withStore { store ->
            val before = store.limits()[tag] ?: unknown(tag, store)
            store.update(tag, slots)
            val held = store.occupied(tag)
            out.println("updated \"$tag\" from $before to $slots slots" + if (held > slots) "; $held are held: holders keep theirs" else "")
            0
        }
    }
}

@Command(name = "reset", mixinStandardHelpOptions = true, description = ["Takes every slot of a limit back from its holders (for holders that died)."])
public class Reset : Subcommand() {
    @Parameters(index = "0", paramLabel = "TAG")
    private lateinit var tag: String

    override fun call(): Int = withStore { store ->
        if (tag !in store.limits()) unknown(tag, store)
        out.println("ended ${store.reset(tag)} lease(s) of \"$tag\"")
        0
    }
}

@Command(name = "delete", mixinStandardHelpOptions = true, description = ["Deletes a limit and its leases."])
public class Delete : Subcommand() {
    @Parameters(index = "0", paramLabel = "TAG")
    private lateinit var tag: String

    override fun call(): Int = withStore { store ->
        if (!store.delete(tag)) unknown(tag, store)
        out.println("deleted \"$tag\"")
        0
    }
}

@Command(
    name = "create-rate",
    mixinStandardHelpOptions = true,
    description = ["Defines (or redefines) a rate limit TAG: at most PER_SECOND passes a second across every JVM."],
)
public class CreateRate : Subcommand() {
    @Parameters(index = "0", paramLabel = "TAG")
    private lateinit var tag: String

    @Parameters(index = "1", paramLabel = "PER_SECOND", description = ["passes a second, more than 0 (0.5: one every 2 s)"])
    private var perSecond: Double = 0.0

    @Option(names = ["-b", "--burst"], paramLabel = "N", description = ["passes allowed at once after a quiet spell (default 1)"])
    private var burst: Int = 1

    override fun call(): Int {
        checkTag(tag)
        if (!(perSecond >= 1.0 / (365 * 86_400) && perSecond.isFinite())) {
            throw ParameterException(spec.commandLine(), "PER_SECOND must be at least one a year (3.2e-8) and finite, was $perSecond")
        }
        if (burst < 1) throw ParameterException(spec.commandLine(), "--burst must be 1 or more, was $burst")
        return withStore { store ->
            val before = store.rates().firstOrNull { it.tag == tag }
            store.createRate(tag, perSecond, burst)
            val now = "${perSecond(perSecond)} a second, bursts of $burst"
            out.println(if (before == null) "created rate \"$tag\": $now" else "redefined rate \"$tag\": $now (was ${perSecond(before.perSecond)}, ${before.burst})")
            0
        }
    }
}

@Command(name = "delete-rate", mixinStandardHelpOptions = true, description = ["Deletes a rate limit."])
public class DeleteRate : Subcommand() {
    @Parameters(index = "0", paramLabel = "TAG")
    private lateinit var tag: String

    override fun call(): Int = withStore { store ->
        if (!store.deleteRate(tag)) {
            val known = store.rates().map { it.tag }
            throw IllegalArgumentException(
                "no rate limit \"${tag.take(80)}\"; known: " +
                    (known.takeIf { it.isNotEmpty() }?.take(20)?.joinToString(", ") { it.take(40) } ?: "none (create-rate makes one)")
            )
        }
        out.println("deleted rate \"$tag\"")
        0
    }
}

/** A rate as an operator wrote it: 20, 0.5, 2.25 (no trailing zeros, no exponent). */
internal fun perSecond(value: Double): String = java.math.BigDecimal.valueOf(value).stripTrailingZeros().toPlainString()
