//! Draining on shutdown. pingora's graceful stop (SIGTERM, or SIGQUIT after handing
//! the listeners to a new process) closes the listeners, sleeps the whole
//! `grace_period`, then drops every task still running. filegate makes the grace
//! period an upper bound instead: once it starts, this watcher exits the process as
//! soon as no request is in flight, so a stop takes as long as the slowest download
//! and no longer.

use std::time::Duration;

use pingora_core::server::ExecutionPhase;
use prometheus::IntGauge;
use tokio::sync::broadcast;

/// Watches the server's phases on its own thread; runs `before_exit` (flushing the
/// cache) once no request is in flight, then exits.
pub fn exit_when_drained(
    mut phases: broadcast::Receiver<ExecutionPhase>,
    in_flight: IntGauge,
    before_exit: impl FnOnce() + Send + 'static,
) {
    let mut before_exit = Some(before_exit);
    let spawned = std::thread::Builder::new()
        .name("filegate-drain".into())
        .spawn(move || loop {
            match phases.blocking_recv() {
                Ok(ExecutionPhase::ShutdownGracePeriod) => {
                    while in_flight.get() > 0 {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    log::info!("shutdown: no request in flight, exiting");
                    if let Some(f) = before_exit.take() {
                        f();
                    }
                    std::process::exit(0);
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        });
    if let Err(e) = spawned {
        log::warn!("shutdown: cannot start the drain watcher ({e}); the full grace period applies");
    }
}
