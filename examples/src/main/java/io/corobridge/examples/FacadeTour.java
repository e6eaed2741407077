package io.corobridge.examples;

import io.corobridge.Bridge;
import java.util.NoSuchElementException;
import java.util.concurrent.CompletableFuture;

/**
 * A Kotlin repository with suspend methods, used from Java as an ordinary interface: the facade's blocking
 * methods run the suspend functions on the run-sync loop and wait; its {@code ...Async} methods return
 * futures at once.
 *
 * <p>Run it: {@code mvn -q -pl examples -am package -DskipTests exec:java
 * -Dexec.mainClass=io.corobridge.examples.FacadeTour}
 */
public final class FacadeTour {
    /** What Java code sees of {@link UserRepository}. */
    public interface Users {
        void save(User user);

        User find(int id);

        CompletableFuture<User> findAsync(int id);

        int count();

        /** Plain Java on top of the suspend functions. */
        default String describe(int id) {
            User user = find(id);
            return user.getName() + " (#" + user.getId() + ")";
        }
    }

    private FacadeTour() {}

    public static void main(String[] args) {
        Users users = Bridge.facade(Users.class, new UserRepository());   // every method is checked here
        users.save(new User(1, "Ada"));
        users.save(new User(2, "Grace"));
        System.out.println("count() = " + users.count());
        System.out.println("find(1) = " + users.find(1));
        CompletableFuture<User> later = users.findAsync(2);
        System.out.println("findAsync(2) returned at once; joined: " + later.join());
        System.out.println("describe(2) = " + users.describe(2));
        try {
            users.find(3);
        } catch (NoSuchElementException e) {
            System.out.println("find(3) threw " + e.getClass().getName() + ": " + e.getMessage());
        }
    }
}
