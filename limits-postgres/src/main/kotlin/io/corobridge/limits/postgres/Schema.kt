package io.corobridge.limits.postgres

import java.sql.Connection

/*
 * The store's tables, created and migrated by the store itself. Each version is a script under
 * resources/io/corobridge/limits/postgres/schema-<n>.sql; corobridge_schema records the versions applied. JVMs that
 * start together take a transaction-scoped advisory lock first, so exactly one applies each version.
 */
internal object Schema {
    /** The newest version this code knows. */
    const val LATEST: Int = 3

    /** An arbitrary constant: the advisory lock key under which versions are applied ("cblimits" in ASCII). */
    private const val LOCK_KEY = 0x63626c696d697473L

    /** Brings the database to [LATEST]; returns the version found before. */
    fun migrate(connection: Connection): Int {
        val autoCommit = connection.autoCommit
        connection.autoCommit = false
        try {
            connection.createStatement().use { statement ->
                statement.execute("SELECT pg_advisory_xact_lock($LOCK_KEY)")
                statement.execute("CREATE TABLE IF NOT EXISTS corobridge_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            }
            val found = connection.createStatement().use { statement ->
                statement.executeQuery("SELECT coalesce(max(version), 0) FROM corobridge_schema").use { it.next(); it.getInt(1) }
            }
            check(found <= LATEST) {
                "the database's corobridge limits schema is at version $found, newer than this corobridge knows " +
                    "($LATEST): upgrade corobridge-limits-postgres in this application"
            }
            for (version in found + 1..LATEST) {
                connection.createStatement().use { it.execute(script(version)) }
                connection.prepareStatement("INSERT INTO corobridge_schema (version) VALUES (?)").use {
                    it.setInt(1, version)
                    it.executeUpdate()
                }
            }
            connection.commit()
            return found
        } catch (failure: Throwable) {
            connection.rollback()
            throw failure
        } finally {
            connection.autoCommit = autoCommit
        }
    }

    private fun script(version: Int): String {
        val name = "schema-$version.sql"
        val stream = Schema::class.java.getResourceAsStream(name)
            ?: error("corobridge-limits-postgres is missing its resource $name")
        return stream.use { String(it.readAllBytes(), Charsets.UTF_8) }
    }
}
