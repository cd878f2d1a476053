//! foyer's own metrics (`foyer_*`: disk I/O, hit and miss counts, queue rotations)
//! registered in filegate's Prometheus registry, and the entries foyer drops counted
//! as `filegate_cache_dropped_total{reason}` as well: a write queue or flush buffer
//! that overflowed (`queue_full`, `buffer_full`) and disk reads that failed
//! (`read_error`). foyer drops such entries silently otherwise.

use std::borrow::Cow;

use mixtrics::metrics::{
    BoxedCounter, BoxedCounterVec, BoxedGaugeVec, BoxedHistogramVec, CounterOps, CounterVecOps,
    RegistryOps,
};
use mixtrics::registry::prometheus_0_13::PrometheusMetricsRegistry;
use prometheus::{IntCounter, IntCounterVec};

/// The drop reason (one of `metrics::CACHE_DROP_REASONS`) a foyer counter stands for:
/// its family and `op` label.
fn drop_reason(family: &str, op: &str) -> Option<&'static str> {
    match (family, op) {
        ("foyer_storage_inner_op_total", "channel_overflow") => Some("queue_full"),
        ("foyer_storage_inner_op_total", "buffer_overflow") => Some("buffer_full"),
        ("foyer_storage_op_total", "error") => Some("read_error"),
        _ => None,
    }
}

/// foyer's registry: filegate's, with its drop counters teed into
/// `filegate_cache_dropped_total`.
#[derive(Debug)]
pub struct FoyerRegistry {
    inner: PrometheusMetricsRegistry,
    dropped: IntCounterVec,
}

impl FoyerRegistry {
    /// foyer's metrics in `inner` (made once per registry: mixtrics refuses a second
    /// registration of one name), its drops also counted in `dropped`.
    pub fn new(inner: PrometheusMetricsRegistry, dropped: IntCounterVec) -> FoyerRegistry {
        FoyerRegistry { inner, dropped }
    }
}

impl RegistryOps for FoyerRegistry {
    fn register_counter_vec(
        &self,
        name: Cow<'static, str>,
        desc: Cow<'static, str>,
        label_names: &'static [&'static str],
    ) -> BoxedCounterVec {
        let family = name.clone();
        let inner = self.inner.register_counter_vec(name, desc, label_names);
        if family.starts_with("foyer_storage_") {
            Box::new(Tee {
                inner,
                family,
                dropped: self.dropped.clone(),
            })
        } else {
            inner
        }
    }

    fn register_gauge_vec(
        &self,
        name: Cow<'static, str>,
        desc: Cow<'static, str>,
        label_names: &'static [&'static str],
    ) -> BoxedGaugeVec {
        self.inner.register_gauge_vec(name, desc, label_names)
    }

    fn register_histogram_vec(
        &self,
        name: Cow<'static, str>,
        desc: Cow<'static, str>,
        label_names: &'static [&'static str],
    ) -> BoxedHistogramVec {
        self.inner.register_histogram_vec(name, desc, label_names)
    }

    fn register_histogram_vec_with_buckets(
        &self,
        name: Cow<'static, str>,
        desc: Cow<'static, str>,
        label_names: &'static [&'static str],
        buckets: Vec<f64>,
    ) -> BoxedHistogramVec {
        self.inner
            .register_histogram_vec_with_buckets(name, desc, label_names, buckets)
    }
}

/// A foyer counter family whose drop counters also count a drop.
#[derive(Debug)]
struct Tee {
    inner: BoxedCounterVec,
    family: Cow<'static, str>,
    dropped: IntCounterVec,
}

impl CounterVecOps for Tee {
    fn counter(&self, labels: &[Cow<'static, str>]) -> BoxedCounter {
        let counter = self.inner.counter(labels);
        // foyer's storage families are labelled `name, op`.
        match labels.get(1).and_then(|op| drop_reason(&self.family, op)) {
            Some(reason) => Box::new(Both {
                foyer: counter,
                dropped: self.dropped.with_label_values(&[reason]),
            }),
            None => counter,
        }
    }
}

/// Counts in foyer's counter and in `filegate_cache_dropped_total`.
#[derive(Debug)]
struct Both {
    foyer: BoxedCounter,
    dropped: IntCounter,
}

impl CounterOps for Both {
    fn increase(&self, val: u64) {
        self.foyer.increase(val);
        self.dropped.inc_by(val);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_counted_in_both_families() {
        let registry = prometheus::Registry::new();
        let dropped =
            IntCounterVec::new(prometheus::Opts::new("dropped", "d"), &["reason"]).unwrap();
        let foyer = FoyerRegistry::new(
            PrometheusMetricsRegistry::new(registry.clone()),
            dropped.clone(),
        );
        let inner = foyer.register_counter_vec(
            "foyer_storage_inner_op_total".into(),
            "ops".into(),
            &["name", "op"],
        );
        inner
            .counter(&["filegate".into(), "channel_overflow".into()])
            .increase(2);
        inner
            .counter(&["filegate".into(), "queue_rotate".into()])
            .increase(5);
        assert_eq!(dropped.with_label_values(&["queue_full"]).get(), 2);
        assert_eq!(dropped.with_label_values(&["buffer_full"]).get(), 0);
        let text = {
            let mut out = Vec::new();
            prometheus::Encoder::encode(
                &prometheus::TextEncoder::new(),
                &registry.gather(),
                &mut out,
            )
            .unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(
            text.contains(r#"foyer_storage_inner_op_total{name="filegate",op="queue_rotate"} 5"#),
            "{text}"
        );
    }
}
