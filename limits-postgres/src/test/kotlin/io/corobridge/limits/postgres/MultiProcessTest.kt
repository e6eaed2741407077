package io.corobridge.limits.postgres

import java.io.File
import java.time.Duration
import java.util.concurrent.TimeUnit
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test

/** The store shared by JVMs that really are separate processes ([ChildJvm]), on one PostgreSQL server. */
class MultiProcessTest {
    private val children = ArrayList<Process>()

    @BeforeEach
    fun clean() {
        TestDatabase.clean()
        TestDatabase.dataSource.connection.use { db ->
            db.createStatement().use {
                it.execute("DROP TABLE IF EXISTS probe")
                it.execute("CREATE TABLE probe (id int PRIMARY KEY, inside int NOT NULL, most int NOT NULL)")
                it.execute("INSERT INTO probe VALUES (1, 0, 0)")
            }
        }
    }

    @AfterEach
    fun killLeftovers() {
        children.filter { it.isAlive }.forEach { it.destroyForcibly().waitFor() }
    }

    private fun child(vararg args: String, properties: List<String> = emptyList()): Process {
        val java = File(System.getProperty("java.home"), "bin/java").path
        val command = listOf(java) + properties + listOf("-cp", System.getProperty("java.class.path"), ChildJvm::class.java.name) + args
        return ProcessBuilder(command).redirectErrorStream(true).start().also { children += it }
    }

    private fun finish(process: Process): Int {
        val output = process.inputStream.bufferedReader().readText()
        assertTrue(process.waitFor(120, TimeUnit.SECONDS), "the child ended")
        if (process.exitValue() != 0) System.err.println(output)
        return process.exitValue()
    }

    private fun most(): Int = TestDatabase.dataSource.connection.use { db ->
        db.createStatement().executeQuery("SELECT most, inside FROM probe WHERE id = 1").use { rows ->
            rows.next()
            assertEquals(0, rows.getInt(2), "every holder left")
            rows.getInt(1)
        }
    }

    @Test
    fun `a limit of 3 is never exceeded by 12 threads in 3 JVMs, as measured apart from the store`() {
        PostgresLimitStore.open(TestDatabase.dataSource).use { it.create("db", 3) }
        val jvms = List(3) { child("hammer", TestDatabase.jdbcUrl, "db", "60") }
        jvms.forEach { assertEquals(0, finish(it), "the child completed its acquisitions") }
        val most = most()
        assertTrue(most in 1..3, "at most 3 holders at once across the JVMs, measured $most")
        println("MultiProcessTest: at most $most of 3 slots held at once across 3 JVMs")
    }

    @Test
    fun `opposite tag orders in different JVMs never deadlock`() {
        PostgresLimitStore.open(TestDatabase.dataSource).use {
            it.create("a", 1)
            it.create("b", 1)
        }
        val jvms = listOf(child("hammer", TestDatabase.jdbcUrl, "a,b", "20"), child("hammer", TestDatabase.jdbcUrl, "b,a", "20"))
        jvms.forEach { assertEquals(0, finish(it)) }
        assertEquals(1, most(), "one holder of both at a time")
    }

    @Test
    fun `a JVM killed while holding a slot has it back after its lease`() {
        PostgresLimitStore.open(TestDatabase.dataSource).use { store ->
            store.create("db", 1)
            val holder = child("hold", TestDatabase.jdbcUrl, "db")
            val line = holder.inputStream.bufferedReader().readLine()
            assertEquals("HELD", line)
            assertEquals(holder.pid(), store.holders("db").single().pid, "the child holds it")
            holder.destroyForcibly().waitFor() // kill -9: no release, no renewal
            val started = System.nanoTime()
            store.acquireBlocking(listOf("db"), Duration.ofSeconds(20)).use {
                val waited = Duration.ofNanos(System.nanoTime() - started)
                assertTrue(waited < Duration.ofSeconds(10), "back after the child's 2 s lease, in $waited")
            }
        }
    }

    @Test
    fun `the default loop keeps its limits in the store its settings name`() {
        val jvm = child(
            "default",
            properties = listOf("-Dcorobridge.limitsStore=${TestDatabase.jdbcUrl}", "-Dcorobridge.limits=db=2"),
        )
        val output = jvm.inputStream.bufferedReader().readText()
        assertTrue(jvm.waitFor(60, TimeUnit.SECONDS))
        assertEquals(0, jvm.exitValue(), output)
        assertTrue(output.contains("db 2 slots, 1 held"), output)
        PostgresLimitStore.open(TestDatabase.dataSource).use { store ->
            assertEquals(mapOf("db" to 2), store.limits(), "the setting's limit is in the shared store")
            assertEquals(0, store.occupied("db"), "given back, and the store closed with the loop at exit")
        }
    }

    @Test
    fun `a store the default loop cannot open is named, its password hidden`() {
        val jvm = child(
            "default",
            properties = listOf("-Dcorobridge.limitsStore=jdbc:postgresql://127.0.0.1:notaport/postgres?user=postgres&password=hunter2"),
        )
        val output = jvm.inputStream.bufferedReader().readText()
        assertTrue(jvm.waitFor(60, TimeUnit.SECONDS))
        assertTrue(jvm.exitValue() != 0, output)
        assertTrue(output.contains("system property corobridge.limitsStore: the shared limit store at"), output)
        assertTrue(output.contains("password=***") && !output.contains("hunter2"), output)
    }
}
