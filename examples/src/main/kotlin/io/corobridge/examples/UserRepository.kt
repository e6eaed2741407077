package io.corobridge.examples

import java.util.concurrent.ConcurrentHashMap
import kotlinx.coroutines.delay

/** A user as the repository stores it. */
data class User(val id: Int, val name: String)

/**
 * A Kotlin repository written the coroutine way: every operation suspends (here on a short delay, where a real
 * one would await a database driver). Java code uses it through the [FacadeTour.Users] facade.
 */
class UserRepository {
    private val users = ConcurrentHashMap<Int, User>()

    suspend fun save(user: User) {
        delay(5)
        users[user.id] = user
    }

    /** The user with [id]; throws [java.util.NoSuchElementException] if there is none. */
    suspend fun find(id: Int): User {
        delay(5)
        return users[id] ?: throw NoSuchElementException("no user $id")
    }

    suspend fun count(): Int {
        delay(1)
        return users.size
    }
}
