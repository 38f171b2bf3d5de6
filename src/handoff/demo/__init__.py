"""`handoff demo`: everything local — store, sandbox twins, service, worker — and a scripted
lifecycle with faults, then a summary and where to look."""
