"""handoff: a won, approved deal becomes exactly one project, bills by the sold structure,
and shows its status back in the CRM."""

__version__ = "0.1.0"
