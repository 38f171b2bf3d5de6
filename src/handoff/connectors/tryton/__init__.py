"""Tryton over JSON-RPC: connector, mapping, error translation, and a real Tryton server for
the sandbox and the tests (`sandbox.TrytonProcess`)."""
