//! The overview: the five signals at a glance, each with its last hour as a sparkline.

use super::{Params, last, ratio, recent, render, seconds};
use crate::Console;
use crate::error::OpsError;
use crate::operator::Operator;
use crate::sparkline;
use crate::stats::{self, Combine};
use crate::templates::{duration, percent};
use crate::windows::{Entry, Minute, Recent};
use actix_web::{HttpResponse, get, web};
use serde::Serialize;

/// One tile of the overview.
#[derive(Debug, Serialize)]
struct Card {
    title: &'static str,
    /// The headline number, formatted.
    value: String,
    /// What else to know, formatted.
    detail: String,
    /// `ok`, `warn` or `bad`: the tile's colour.
    level: &'static str,
    /// Inline SVG of the last hour, per minute.
    spark: String,
    /// Where to look closer.
    link: &'static str,
}

fn level(bad: bool, warn: bool) -> &'static str {
    if bad {
        "bad"
    } else if warn {
        "warn"
    } else {
        "ok"
    }
}

fn status_class(e: &Entry, class: char) -> bool {
    e.label("status").starts_with(class)
}

fn fmt_rate(per_second: f64) -> String {
    if per_second < 10.0 {
        format!("{per_second:.2}/s")
    } else {
        format!("{per_second:.0}/s")
    }
}

fn requests(recent: &Recent) -> Vec<Card> {
    let m = &recent.minutes;
    let all = |ms: &[Minute]| stats::total(ms, "keel_http_requests_total", |_| true);
    let of =
        |ms: &[Minute], c| stats::total(ms, "keel_http_requests_total", |e| status_class(e, c));
    let (five, hour) = (last(m, 5), m.as_slice());
    let rate5 = all(five) / seconds(recent, 5);
    let latency = |ms: &[Minute]| {
        stats::histograms(ms, "keel_http_request_duration_seconds", |_| Some(()))
            .remove(&())
            .unwrap_or_default()
    };
    let (l5, l60) = (latency(five), latency(hour));
    let err5 = ratio(of(five, '5'), all(five));
    let err60 = ratio(of(hour, '5'), all(hour));
    let per_minute_p99: Vec<f64> = m
        .iter()
        .map(|minute| {
            latency(std::slice::from_ref(minute))
                .quantile(0.99)
                .unwrap_or(0.0)
        })
        .collect();
    vec![
        Card {
            title: "Requests",
            value: fmt_rate(rate5),
            detail: format!("{} over the hour", fmt_rate(all(hour) / recent.seconds)),
            level: "ok",
            spark: sparkline::svg(&stats::per_minute(m, "keel_http_requests_total", |_| true)),
            link: "/ops/endpoints",
        },
        Card {
            title: "Server errors (5xx)",
            value: percent(err5),
            detail: format!(
                "{} over the hour; client errors (4xx) {} / {}",
                percent(err60),
                percent(ratio(of(five, '4'), all(five))),
                percent(ratio(of(hour, '4'), all(hour)))
            ),
            level: level(err5.unwrap_or(0.0) > 0.01, err5.unwrap_or(0.0) > 0.001),
            spark: sparkline::svg(&stats::per_minute(m, "keel_http_requests_total", |e| {
                status_class(e, '5')
            })),
            link: "/ops/endpoints?sort=errors",
        },
        Card {
            title: "Latency p50 / p95 / p99",
            value: format!(
                "{} / {} / {}",
                duration(l5.quantile(0.5)),
                duration(l5.quantile(0.95)),
                duration(l5.quantile(0.99))
            ),
            detail: format!(
                "over the hour {} / {} / {}",
                duration(l60.quantile(0.5)),
                duration(l60.quantile(0.95)),
                duration(l60.quantile(0.99))
            ),
            level: level(
                l5.quantile(0.99).unwrap_or(0.0) > 1.0,
                l5.quantile(0.99).unwrap_or(0.0) > 0.25,
            ),
            spark: sparkline::svg(&per_minute_p99),
            link: "/ops/endpoints",
        },
    ]
}

async fn queue(console: &Console, recent: &Recent) -> Result<Vec<Card>, OpsError> {
    let queue = &console.inner.queue;
    let (counts, paused) = tokio::try_join!(queue.counts(), queue.paused_kinds())?;
    // A paused kind waits on purpose: its age does not colour the card.
    let paused: Vec<String> = paused.into_iter().map(|p| p.kind).collect();
    let ready: i64 = counts.iter().map(|c| c.ready).sum();
    let running: i64 = counts.iter().map(|c| c.running).sum();
    let scheduled: i64 = counts.iter().map(|c| c.scheduled).sum();
    let dead: i64 = counts.iter().map(|c| c.dead).sum();
    let oldest = counts
        .iter()
        .filter(|c| !paused.contains(&c.kind))
        .map(|c| c.oldest_ready_age_seconds)
        .fold(0.0, f64::max);
    let m = &recent.minutes;
    let dead_hour = stats::total(m, "keel_jobs_dead_total", |_| true);
    Ok(vec![
        Card {
            title: "Queue backlog",
            value: format!("{ready} ready"),
            detail: format!(
                "oldest waiting {oldest:.0} s; {running} running, {scheduled} scheduled{}",
                if paused.is_empty() {
                    String::new()
                } else {
                    format!("; paused: {}", paused.join(", "))
                }
            ),
            level: level(oldest > 300.0, oldest > 30.0),
            spark: sparkline::svg(&stats::per_minute(m, "keel_jobs_succeeded_total", |_| true)),
            link: "/ops/jobs",
        },
        Card {
            title: "Dead jobs",
            value: dead.to_string(),
            detail: format!("{dead_hour:.0} died in the last hour"),
            level: level(dead_hour > 0.0, dead > 0),
            spark: sparkline::svg(&stats::per_minute(m, "keel_jobs_dead_total", |_| true)),
            link: "/ops/jobs#dead",
        },
    ])
}

fn database(recent: &Recent) -> Card {
    let now = |name| {
        stats::gauge_now(&recent.gauges, name, Combine::Sum, |_| Some(()))
            .remove(&())
            .unwrap_or(0.0)
    };
    let (in_use, size, max, waiting) = (
        now("keel_db_pool_in_use"),
        now("keel_db_pool_size"),
        now("keel_db_pool_max_size"),
        now("keel_db_pool_waiting"),
    );
    Card {
        title: "Database pool",
        value: format!("{in_use:.0} in use / {max:.0}"),
        detail: format!("{size:.0} open, {waiting:.0} waiting (all replicas)"),
        level: level(waiting > 0.0 && in_use >= max, waiting > 0.0),
        spark: sparkline::svg(&stats::gauge_per_minute(
            &recent.gauges,
            "keel_db_pool_in_use",
            Combine::Sum,
        )),
        link: "/ops/database",
    }
}

fn cache(recent: &Recent) -> Card {
    let by_tier = |ms: &[Minute]| {
        stats::totals(ms, "keel_cache_requests_total", |e| {
            Some((e.label("tier").to_owned(), e.label("result") == "hit"))
        })
    };
    let totals = by_tier(&recent.minutes);
    let mut tiers: Vec<String> = totals.keys().map(|(t, _)| t.clone()).collect();
    tiers.dedup();
    let hit_ratio = |tier: &str| {
        let hits = totals.get(&(tier.to_owned(), true)).copied().unwrap_or(0.0);
        let misses = totals
            .get(&(tier.to_owned(), false))
            .copied()
            .unwrap_or(0.0);
        ratio(hits, hits + misses)
    };
    let detail = tiers
        .iter()
        .map(|t| format!("{t} {}", percent(hit_ratio(t))))
        .collect::<Vec<_>>()
        .join(", ");
    let redis_up = stats::gauge_now(&recent.gauges, "keel_cache_redis_up", Combine::Min, |_| {
        Some(())
    })
    .remove(&());
    let per_minute: Vec<f64> = recent
        .minutes
        .iter()
        .map(|m| {
            let t = by_tier(std::slice::from_ref(m));
            let hits = t
                .iter()
                .filter(|((_, hit), _)| *hit)
                .fold(0.0, |sum, (_, v)| sum + v);
            let all = t.values().fold(0.0, |sum, v| sum + v);
            ratio(hits, all).unwrap_or(0.0)
        })
        .collect();
    let first_tier = tiers.first().map(String::as_str).unwrap_or("l1");
    Card {
        title: "Cache hit ratio",
        value: percent(hit_ratio(first_tier)),
        detail: format!(
            "{}; Redis {}",
            if detail.is_empty() {
                "no lookups".to_owned()
            } else {
                detail
            },
            match redis_up {
                Some(v) if v < 1.0 => "down on some replica",
                Some(_) => "up",
                None => "not reported",
            }
        ),
        level: level(redis_up.is_some_and(|v| v < 1.0), false),
        spark: sparkline::svg(&per_minute),
        link: "/ops/database",
    }
}

fn third_parties(recent: &Recent) -> Card {
    let m = &recent.minutes;
    let attempts = |ms: &[Minute]| {
        stats::total(ms, "keel_webhook_attempts_total", |_| true)
            + stats::total(ms, "keel_ai_attempts_total", |_| true)
    };
    let failures = |ms: &[Minute]| {
        stats::total(ms, "keel_webhook_failures_total", |_| true)
            + stats::total(ms, "keel_ai_failures_total", |_| true)
    };
    let five = last(m, 5);
    let open = |name| {
        stats::gauge_now(&recent.gauges, name, Combine::Max, |e| {
            Some(e.labels.clone())
        })
        .into_values()
        .filter(|v| *v >= 1.0)
        .count()
    };
    let breakers = open("keel_webhook_breaker_open") + open("keel_ai_breaker_open");
    let rate5 = ratio(failures(five), attempts(five));
    Card {
        title: "Third-party failures",
        value: percent(rate5),
        detail: format!(
            "{} over the hour; {breakers} breaker(s) open",
            percent(ratio(failures(m), attempts(m)))
        ),
        level: level(breakers > 0, rate5.unwrap_or(0.0) > 0.05),
        spark: sparkline::svg(
            &m.iter()
                .map(|minute| failures(std::slice::from_ref(minute)))
                .collect::<Vec<_>>(),
        ),
        link: "/ops/third-parties",
    }
}

#[derive(Debug, Serialize)]
struct Overview {
    cards: Vec<Card>,
    replicas: Vec<crate::windows::Replica>,
    warning: Option<String>,
}

#[get("/ops")]
pub async fn page(
    console: web::Data<Console>,
    operator: Operator,
    params: web::Query<Params>,
) -> Result<HttpResponse, OpsError> {
    let (recent, warning) = recent(&console, 60).await;
    let mut cards = requests(&recent);
    cards.extend(queue(&console, &recent).await?);
    cards.push(database(&recent));
    cards.push(cache(&recent));
    cards.push(third_parties(&recent));
    let data = Overview {
        cards,
        replicas: recent.replicas,
        warning,
    };
    render(
        &console,
        &operator,
        "overview",
        "overview.html",
        data,
        &params,
    )
}
