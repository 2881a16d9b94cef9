"""graphflow.draw."""
