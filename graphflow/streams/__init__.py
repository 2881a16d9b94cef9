"""Streaming pipelines: sources, processors and sinks exchanging records through topics
(LangStream's agent shapes), where a processor can be a whole compiled graph.

See ``docs/streams.md``.
"""

from .api import CommitCallback, Processor, SingleRecordProcessor, Sink, Source
from .config import load_pipeline
from .graph import GraphProcessor, graph_processor
from .pipeline import ErrorPolicy, Pipeline, PipelineError, Step
from .record import Record, SimpleRecord, to_record
from .topics import MemoryTopics, RedisTopics, TopicSink, TopicSource

__all__ = [
    "CommitCallback",
    "ErrorPolicy",
    "GraphProcessor",
    "MemoryTopics",
    "Pipeline",
    "PipelineError",
    "Processor",
    "Record",
    "RedisTopics",
    "SimpleRecord",
    "SingleRecordProcessor",
    "Sink",
    "Source",
    "Step",
    "TopicSink",
    "TopicSource",
    "graph_processor",
    "load_pipeline",
    "to_record",
]
