"""Pure decisions: release gates now; ownership and eligibility as the lifecycle grows."""
