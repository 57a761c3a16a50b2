"""HTTP in the daemon's event loop: confirmation pages, one-click unsubscribe, health."""
