package io.corobridge.limits.cli

import io.corobridge.limits.postgres.PostgresLimitStore
import io.zonky.test.db.postgres.embedded.EmbeddedPostgres
import java.io.PrintWriter
import java.io.StringWriter
import java.time.Duration
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test

/** The command line against a real PostgreSQL started by the test: what an operator types, and what comes back. */
class LimitsCommandTest {
    private class Run(val code: Int, val out: String, val err: String)

    private fun cli(vararg args: String, url: String? = jdbcUrl): Run {
        val out = StringWriter()
        val err = StringWriter()
        val all = if (url == null) arrayOf(*args) else arrayOf("--url", url, *args)
        val code = LimitsCommand.run(all, PrintWriter(out), PrintWriter(err))
        return Run(code, out.toString(), err.toString())
    }

    @BeforeEach
    fun clean() {
        server.postgresDatabase.connection.use { db ->
            db.createStatement().use { it.execute("DROP TABLE IF EXISTS corobridge_lease, corobridge_limit, corobridge_rate, corobridge_waiter, corobridge_schema") }
        }
    }

    @Test
    fun `create, ls, update, inspect with holders, reset and delete`() {
        assertEquals("created \"db\" with 5 slots\n", cli("create", "db", "5").out)
        assertEquals(0, cli("create", "api", "10").code)
        val ls = cli("ls").out
        assertTrue(ls.contains(Regex("api\\s+10\\s+0")) && ls.contains(Regex("db\\s+5\\s+0")), ls)
        assertEquals("updated \"db\" from 5 to 2 slots\n", cli("update", "db", "2").out)

        PostgresLimitStore.open(jdbcUrl).use { store ->
            store.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
            val inspect = cli("inspect", "db").out
            assertTrue(inspect.startsWith("\"db\": 2 slots, 1 held"), inspect)
            assertTrue(inspect.contains("thread ${Thread.currentThread().name} on ") && inspect.contains("pid ${ProcessHandle.current().pid()}"), inspect)
            assertTrue(cli("ls").out.contains(Regex("db\\s+2\\s+1")))
            assertEquals("ended 1 lease(s) of \"db\"\n", cli("reset", "db").out)
            assertTrue(cli("inspect", "db").out.startsWith("\"db\": 2 slots, 0 held"))
        }
        assertEquals("deleted \"api\"\n", cli("delete", "api").out)
        val long = "a-tag-of-forty-characters-for-the-table"
        cli("create", long, "3")
        val lines = cli("ls").out.lines().filter { it.isNotBlank() }
        val slotsColumn = lines.map { line -> Regex("\\S+\\s+(\\S+)").find(line)!!.groups[1]!!.range.last }
        assertEquals(1, slotsColumn.toSet().size, "columns in line with a long tag: $lines")
        assertTrue(cli("ls").out.contains("db") && !cli("ls").out.contains("api"))
    }

    @Test
    fun `inspect shows the queue in the order it will be served`() {
        cli("create", "db", "1")
        PostgresLimitStore.open(jdbcUrl).use { store ->
            val held = store.acquireBlocking(listOf("db"), Duration.ofSeconds(5))
            val failure = java.util.concurrent.atomic.AtomicReference<Throwable>()
            val waiter = kotlin.concurrent.thread(name = "queued-one") {
                try {
                    store.acquireBlocking(listOf("db"), Duration.ofSeconds(20)).close()
                } catch (error: Throwable) {
                    failure.set(error)
                }
            }
            val deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(10)
            while (store.waiters("db").isEmpty()) {
                check(System.nanoTime() < deadline) { "the request never queued" }
                Thread.onSpinWait()
            }
            val inspect = cli("inspect", "db").out
            assertTrue(inspect.startsWith("\"db\": 1 slots, 1 held, 1 waiting"), inspect)
            assertTrue(inspect.contains("waiting 1: thread queued-one on "), inspect)
            assertTrue(cli("ls").out.contains(Regex("db\\s+1\\s+1\\s+1")), "ls counts the waiting request")
            held.close()
            waiter.join(20_000)
            assertEquals(null, failure.get())
        }
    }

    @Test
    fun `rate limits - create-rate, ls, inspect, redefine, delete-rate`() {
        assertEquals("created rate \"api\": 20 a second, bursts of 1\n", cli("create-rate", "api", "20").out)
        assertEquals(
            "redefined rate \"api\": 0.5 a second, bursts of 3 (was 20, 1)\n",
            cli("create-rate", "api", "0.5", "--burst", "3").out,
        )
        val ls = cli("ls").out
        assertTrue(ls.contains("RATE") && ls.contains(Regex("api\\s+0.5\\s+3")), ls)
        assertEquals("rate \"api\": 0.5 a second, bursts of 3\n", cli("inspect", "api").out)
        PostgresLimitStore.open(jdbcUrl).use { store ->
            assertEquals(listOf(PostgresLimitStore.Rate("api", 0.5, 3)), store.rates())
        }
        val zero = cli("create-rate", "api", "0")
        assertEquals(2, zero.code)
        assertTrue(zero.err.contains("PER_SECOND must be at least one a year (3.2e-8) and finite, was 0.0"), zero.err)
        assertEquals(2, cli("create-rate", "api", "4.9E-324").code, "a rate whose interval would overflow")
        assertEquals(2, cli("create-rate", "api", "5", "--burst", "0").code)
        assertEquals("deleted rate \"api\"\n", cli("delete-rate", "api").out)
        val gone = cli("delete-rate", "api")
        assertEquals(1, gone.code)
        assertTrue(gone.err.contains("no rate limit \"api\"; known: none (create-rate makes one)"), gone.err)
    }

    @Test
    fun `mistakes get a message naming what is wrong, and exit codes 1 or 2`() {
        val noUrl = cli("ls", url = null)
        assertEquals(2, noUrl.code)
        assertTrue(noUrl.err.contains("--url is required (or set COROBRIDGE_LIMITS_URL)"), noUrl.err)
        val badUrl = cli("ls", url = "http://db")
        assertEquals(2, badUrl.code)
        assertTrue(badUrl.err.contains("--url must be a jdbc:postgresql: URL"), badUrl.err)
        val negative = cli("create", "db", "-3")
        assertEquals(2, negative.code)
        assertTrue(negative.err.contains("SLOTS must be 0 (switches the tag off) or more, was -3"), negative.err)
        val notANumber = cli("create", "db", "many")
        assertEquals(2, notANumber.code)
        assertTrue(notANumber.err.contains("SLOTS"), notANumber.err)
        val unknown = cli("inspect", "nope")
        assertEquals(1, unknown.code)
        assertTrue(unknown.err.contains("no limit \"nope\"; known: none (create one)"), unknown.err)
        cli("create", "db", "1")
        val twice = cli("create", "db", "4")
        assertEquals(1, twice.code)
        assertTrue(twice.err.contains("exists already, with 1 slots; use update"), twice.err)
        assertEquals(2, cli().code, "no subcommand")
        val unreachable = cli("ls", url = "jdbc:postgresql://127.0.0.1:1/none?connectTimeout=2")
        assertEquals(1, unreachable.code)
        assertTrue(unreachable.err.startsWith("corobridge-limits: "), unreachable.err)
        assertTrue(cli("--help", url = null).out.contains("inspect"))
        assertTrue(cli("create", "--help", url = null).out.contains("Usage: corobridge-limits create"), "help of a subcommand")
        assertTrue(cli("help", "inspect", url = null).out.contains("Usage: corobridge-limits inspect"))
        val blank = cli("create", " ", "1")
        assertEquals(2, blank.code)
        assertTrue(blank.err.contains("TAG must not be blank"), blank.err)
        assertEquals(2, cli("create", "a,b=c", "1").code, "a tag that settings could not name")
        assertEquals("\"db\" exists already with 1 slots; nothing changed\n", cli("create", "db", "1").out)
        val secret = cli("ls", url = "jdbc:postgresql://127.0.0.1:notaport/postgres?user=postgres&password=hunter2")
        assertEquals(1, secret.code)
        assertTrue(!secret.err.contains("hunter2") && secret.err.contains("password=***"), secret.err)
        val other = cli("ls", url = "jdbc:mysql://h/db?user=u&password=hunter2")
        assertTrue(!other.err.contains("hunter2"), other.err)
        val userInfo = cli("ls", url = "jdbc:postgresql://postgres:hunter2@127.0.0.1:1/db?connectTimeout=2")
        assertTrue(!userInfo.err.contains("hunter2"), userInfo.err)
    }

    companion object {
        private lateinit var server: EmbeddedPostgres
        private lateinit var jdbcUrl: String

        @JvmStatic
        @BeforeAll
        fun start() {
            server = EmbeddedPostgres.builder().start()
            jdbcUrl = server.getJdbcUrl("postgres", "postgres")
        }

        @JvmStatic
        @AfterAll
        fun stop() {
            server.close()
        }
    }
}
