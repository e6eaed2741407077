package io.corobridge.benchmarks;

/** The benchmark programs' command-line arguments, checked, with errors that name the argument. */
public final class Args {
    private Args() {}

    /** Whether argument {@code i} was given and is not "-" (which keeps the default). */
    public static boolean given(String[] args, int i) {
        return args.length > i && !args[i].equals("-");
    }

    /** {@code text} as a whole number of at least {@code least}, or an error naming the argument. */
    public static int atLeast(int least, String text, String name) {
        try {
            int n = Integer.parseInt(text.trim());
            if (n >= least) return n;
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new IllegalArgumentException(name + " must be a whole number of at least " + least + ", was \"" + text + "\"");
    }
}
