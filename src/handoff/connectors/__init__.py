"""System APIs: one package per system (client, mapping, errors, sandbox twin)."""
