"""Pipeline agents for the stream tests, written as LangStream Python agents are (records with
value()/key() methods, duck-typed classes), importable by `graphflow pipeline run`."""

from __future__ import annotations

import json
import os
import time

from graphflow.streams import SimpleRecord, SingleRecordProcessor


class Numbers:
    """A source of the numbers 0..count-1 (configuration: count), then exhausted."""

    def init(self, config):
        self.left = list(range(int(config.get("count", 10))))
        self.committed = []

    def read(self):
        if not self.left:
            return None
        batch, self.left = self.left[:7], self.left[7:]
        return [SimpleRecord(n, key=str(n)) for n in batch]

    def commit(self, records):
        self.committed.extend(r.value() for r in records)


class Upper(SingleRecordProcessor):
    """Upper-cases text values; slow when SLOW_UPPER is set (the crash test kills it midway)."""

    def process_record(self, record):
        if os.environ.get("SLOW_UPPER"):
            time.sleep(float(os.environ["SLOW_UPPER"]))
        return [SimpleRecord(str(record.value()).upper(), key=record.key(),
                             headers=record.headers())]


class Double(SingleRecordProcessor):
    def process_record(self, record):
        return [(record.value() * 2, record.key())]


class JsonLines:
    """A sink appending each value as a JSON line to configuration['path']."""

    def init(self, config):
        self.path = config["path"]

    def write(self, records):
        with open(self.path, "a", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r.value()) + "\n")
