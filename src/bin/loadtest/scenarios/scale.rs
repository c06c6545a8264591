//! Scale-out (issue 31, PostgreSQL only): 1, 2 and 3 router instances on one database, each
//! confined to the same share of a core in a cgroup of its own, as if each ran on a small machine
//! of its own; PostgreSQL, the load generator and the receiver are left free. Reported: the
//! delivered rate of each, the ratios to one instance, and the CPU each group, PostgreSQL, the
//! benchmark itself and the whole machine used, so a run shows that the instances were the bound.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{check_row, drive_all, receiver, wait_until};
use crate::cpu::{Controller, CpuGroup, Snapshot};
use crate::router::{BenchDatabase, RouterProcess};
use crate::{Measure, Plan};

/// Each instance's share of one core. PostgreSQL spends about twice the router's CPU per event,
/// so at a tenth of a core each, three instances leave the 2-core machine half idle: PostgreSQL,
/// the load generator and the receiver are never the bound (each run reports their CPU).
pub const SHARE: f64 = 0.1;
/// Ingestion requests (of 100 events) in flight per instance: each instance behind a load
/// balancer sees the same load shape.
const CONCURRENCY_PER_INSTANCE: usize = 4;

pub async fn scale_out(plan: &Plan) -> Vec<Measure> {
    if plan.database.is_none() {
        return vec![Measure::new("scale-out", "skipped", "—".into(), "PostgreSQL only: give --database-url postgres://…", true)];
    }
    let controller = match Controller::find() {
        Ok(c) => c,
        Err(why) => return vec![Measure::new("scale-out", "skipped", "—".into(), &format!("no CPU groups: {why}"), true)],
    };
    let share = plan.cpu_share.unwrap_or(SHARE);
    let mut rows = Vec::new();
    let mut rates = Vec::new();
    for instances in 1..=3usize {
        let receiver = receiver();
        let database = BenchDatabase::fresh(plan);
        let mut routers = Vec::new();
        let mut groups = Vec::new();
        for i in 0..instances {
            let router = Rc::new(RouterProcess::start_on(plan, &[], database.clone(), &format!("bench-{i}")));
            let group = match CpuGroup::create(&controller, &format!("{instances}-{i}"), share).and_then(|g| g.add(router.pid()).map(|_| g)) {
                Ok(g) => g,
                Err(why) => return vec![Measure::new("scale-out", "skipped", "—".into(), &format!("no CPU groups: {why}"), true)],
            };
            routers.push(router);
            groups.push(group);
        }
        routers[0].setup(&[receiver.url(0)]).await;
        // The setup made through the first instance is in force on the others within 2 s.
        actix_web::rt::time::sleep(Duration::from_secs(2)).await;
        let before = Snapshot::take();
        let periods_before: Vec<(u64, u64)> = groups.iter().map(CpuGroup::periods).collect();
        let started = Instant::now();
        let acked = drive_all(&routers, &receiver, 1, 100, plan.duration * 2, CONCURRENCY_PER_INSTANCE * instances).await;
        wait_until("every delivery to arrive", Duration::from_secs(600), || receiver.total() >= acked).await;
        let recorded = wait_until("every attempt to be recorded", Duration::from_secs(120), || routers[0].pending() == 0).await;
        let after = Snapshot::take();
        let rate = acked as f64 / (recorded - started).as_secs_f64();
        rates.push(rate);
        let pids: Vec<u32> = routers.iter().map(|r| r.pid()).collect();
        let per_instance: Vec<String> = pids
            .iter()
            .zip(groups.iter().zip(&periods_before))
            .map(|(pid, (group, (periods0, throttled0)))| {
                let (periods, throttled) = group.periods();
                let cores = after.cores_since(&before, |p, _| p == *pid);
                format!("{cores:.2} cores (throttled in {:.0}% of periods)", 100.0 * (throttled - throttled0) as f64 / (periods - periods0).max(1) as f64)
            })
            .collect();
        let postgres = after.cores_since(&before, |_, comm| comm == "postgres");
        let me = std::process::id();
        let bench = after.cores_since(&before, |p, _| p == me);
        let machine = after.machine_busy_since(&before);
        let note = format!(
            "{acked} events; each instance {}; PostgreSQL {postgres:.2} cores, load generator and receiver {bench:.2}, machine {:.0}% busy",
            per_instance.join(", "),
            machine * 100.0
        );
        eprintln!("  scale-out {instances}: {}", groups[0].describe());
        let metric = format!("{instances} instance{} delivered/s", if instances == 1 { "" } else { "s" });
        rows.push(Measure::new("scale-out", &metric, format!("{rate:.0}"), &note, true).value(rate));
        rows.push(check_row("scale-out", receiver.check(0, acked)));
    }
    for (instances, target) in [(2usize, 1.8), (3, 2.6)] {
        let ratio = rates[instances - 1] / rates[0];
        rows.push(
            Measure::new("scale-out", &format!("{instances} against 1"), format!("{ratio:.2}"), &format!("target at least {target}; {share} of a core each"), ratio >= target)
                .value(ratio),
        );
    }
    rows
}
