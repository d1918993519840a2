//! Following a source: the task that swaps a pool's credentials when its
//! source announces new ones.

use super::*;

/// Follows the source: on each change, move to the current version if it
/// is newer than the active one (or the active one is no longer stored),
/// and wake callers waiting after a failed refresh.
pub(super) async fn watch_source(weak: Weak<Inner>, source: Arc<dyn CredentialSource>) {
    loop {
        source.changed().await;
        let Some(inner) = weak.upgrade() else { return };
        follow(&inner).await;
        inner.changes.send_modify(|n| *n += 1);
    }
}

pub(super) async fn follow(inner: &Inner) {
    let staged = match inner.source.staged().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(credential = inner.source.name(), error = %e, "could not read the stored versions after a change");
            return;
        }
    };
    let Some(cur) = &staged.current else { return };
    let active = inner.active.lock().map(|a| a.0).unwrap_or(0);
    let still_stored = staged.in_try_order().any(|c| c.version() == active);
    if cur.version() > active || !still_stored {
        let _ = swap_inner(inner, cur, false);
        return;
    }
    // Still on current while a pending version of the same role is being
    // set (a single-user rotation): check that current still logs in (the
    // rotation may just have replaced its password) and if not, move to
    // whichever stored version works, before callers fail on it. A pending
    // version of another role (alternating users) cannot break current. An
    // active version newer than current is a pending one a refresh found
    // working: kept until it is promoted.
    let same_role = staged
        .pending
        .as_ref()
        .is_some_and(|p| p.identity() == cur.identity());
    if cur.version() != active || !same_role {
        return;
    }
    let Ok(opts) = options_for(&inner.base, cur) else {
        return;
    };
    let refused = match opts.connect().await {
        Ok(conn) => {
            let _ = conn.close().await;
            false
        }
        Err(e) => classify(&e, inner.options.external_auth) == ErrorClass::Credential,
    };
    if refused
        && let Ok(Search { found: Some(c), .. }) =
            find_working(&inner.base, &*inner.source, &inner.options).await
    {
        let _ = swap_inner(inner, &c, false);
    }
}
