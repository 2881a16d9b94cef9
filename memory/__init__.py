"""graphflow.memory — conversation and vector memory (arrives with its issue)."""
