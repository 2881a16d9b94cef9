"""graphflow.engine."""
