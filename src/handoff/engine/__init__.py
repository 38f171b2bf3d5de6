"""The control loop: inbox, canonical state, reconcile queue, retry decisions, workers."""
