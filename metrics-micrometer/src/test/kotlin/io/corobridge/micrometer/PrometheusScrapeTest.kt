package io.corobridge.micrometer

import io.corobridge.core.RunSyncLoop
import io.corobridge.core.limits
import io.micrometer.core.instrument.Tags
import io.micrometer.prometheusmetrics.PrometheusConfig
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry
import java.nio.file.Files
import java.nio.file.Path
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** What a Prometheus scrape shows, against the table of docs/metrics.md: the two must name the same series. */
class PrometheusScrapeTest {
    @Test
    fun `a scrape shows exactly the series the docs list`() {
        RunSyncLoop.create("scraped").use { loop ->
            loop.limits.create("db", 5)
            val registry = PrometheusMeterRegistry(PrometheusConfig.DEFAULT)
            LoopMetrics(loop, Tags.of("service", "billing")).bindTo(registry)
            loop.runSync { 1 }
            val scrape = registry.scrape()
            val series = scrape.lines().filter { it.isNotBlank() && !it.startsWith("#") }
                .map { it.substringBefore('{').substringBefore(' ') }.toSortedSet()
            assertTrue(scrape.contains("corobridge_limit_slots{limit=\"db\",loop=\"scraped\",service=\"billing\"} 5.0"), scrape)
            assertTrue(scrape.contains("corobridge_loop_calls_total{loop=\"scraped\",service=\"billing\"} 1.0"), scrape)
            val docs = Files.readString(Path.of("..", "docs", "metrics.md"))
            val documented = Regex("\\| `(corobridge_[a-z_]+)").findAll(docs).map { it.groupValues[1] }.toSortedSet()
            assertEquals(documented, series, "docs/metrics.md lists every series a scrape shows, and no other")
            registry.close()
        }
    }
}
