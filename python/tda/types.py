"""Typed answers of the tda client: dataclasses built from the API's messages.

Each keeps the message it came from in `proto`, so fields the dataclass does not mirror (or
that a newer server adds) stay reachable. Scores are numpy float32 arrays.
"""

import dataclasses
import json
from typing import Any, Dict, List, Optional

import numpy as np

from tda.v1 import attribution_pb2, jobs_pb2

_METHOD_NAMES = {
    attribution_pb2.METHOD_EKFAC: "ekfac",
    attribution_pb2.METHOD_KFAC: "kfac",
    attribution_pb2.METHOD_GRADIENT_DOT: "gradient-dot",
    attribution_pb2.METHOD_LISSA: "lissa",
    attribution_pb2.METHOD_EXACT: "exact",
}
METHODS = {name: value for value, name in _METHOD_NAMES.items()}


def method_name(value: int) -> str:
    """"ekfac", "kfac", ... for a tda.v1.Method value ("unspecified" for 0)."""
    return _METHOD_NAMES.get(value, "unspecified")


@dataclasses.dataclass(frozen=True)
class SharedSpan:
    """The longest span a text query's completion shares verbatim with a document (bytes)."""
    completion_offset: int
    document_offset: int
    length: int


@dataclasses.dataclass(frozen=True)
class Hit:
    """One training row and its influence (positive: proponent)."""
    row: int
    sample_id: str
    source: str
    label: int
    score: float
    preview: str
    shared_span: Optional[SharedSpan]
    text: str
    token_scores: np.ndarray
    # score / N: the predicted change of the query's loss were this sample removed.
    loss_change: float
    # Share of the index's rows scoring at most this one, in percent.
    percentile: float
    proto: attribution_pb2.Hit = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, hit: attribution_pb2.Hit) -> "Hit":
        span = None
        if hit.HasField("shared_span"):
            s = hit.shared_span
            span = SharedSpan(s.completion_offset, s.document_offset, s.length)
        return cls(hit.row, hit.sample_id, hit.source, hit.label, hit.score, hit.preview, span,
                   hit.text, np.array(hit.token_scores, dtype=np.float32), hit.loss_change,
                   hit.percentile, hit)


@dataclasses.dataclass(frozen=True)
class SourceTotal:
    """A query's scores summed over one data source's (non-deleted) rows."""
    source: str
    sum: float
    count: int
    mean: float


@dataclasses.dataclass(frozen=True)
class QueryResult:
    """The answer to one query. `scores` holds every row's score (NaN for deleted rows) when
    the request set return_scores, else an empty array."""
    query_id: str
    label: int
    true_label: Optional[int]
    predicted_label: int
    label_probability: float
    loss: float
    proponents: List[Hit]
    opponents: List[Hit]
    scores: np.ndarray
    source_totals: List[SourceTotal]
    proto: attribution_pb2.QueryResult = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, r: attribution_pb2.QueryResult) -> "QueryResult":
        return cls(
            r.query_id, r.label, r.true_label if r.HasField("true_label") else None,
            r.predicted_label, r.label_probability, r.loss,
            [Hit.from_proto(h) for h in r.proponents], [Hit.from_proto(h) for h in r.opponents],
            np.array(r.scores, dtype=np.float32),
            [SourceTotal(t.source, t.sum, t.count, t.mean) for t in r.source_totals], r)


@dataclasses.dataclass(frozen=True)
class AttributeResult:
    """One result per query, in request order; `method` is the method that scored them."""
    results: List[QueryResult]
    method: str
    index_rows: int
    proto: attribution_pb2.AttributeResponse = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, response: attribution_pb2.AttributeResponse) -> "AttributeResult":
        return cls([QueryResult.from_proto(r) for r in response.results],
                   method_name(response.method), response.index_rows, response)


@dataclasses.dataclass(frozen=True)
class IndexDescription:
    """What the served index holds (the main fields of DescribeIndexResponse; all in proto)."""
    rows: int
    dim: int
    dtype: str
    dataset: str
    model_kind: str
    class_names: List[str]
    methods: List[str]
    deleted_rows: int
    index: str  # the name the server serves it under
    version: int
    # "" (none), "exact" or "rank1": how the rows were Adam-corrected (tda build-index
    # --adam-correction); attribute(adam_correction=True) needs one of the last two.
    adam_correction: str
    # Models of an ensemble index whose scores are the members' mean (1: a single model).
    ensemble_size: int
    proto: attribution_pb2.DescribeIndexResponse = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, d: attribution_pb2.DescribeIndexResponse) -> "IndexDescription":
        return cls(d.rows, d.dim, d.dtype, d.dataset, d.model.kind, list(d.class_names),
                   [method_name(m) for m in d.methods], d.deleted_rows, d.index, d.version,
                   d.adam_correction, d.ensemble_size, d)


@dataclasses.dataclass(frozen=True)
class IndexVersion:
    """One version of a served index name (ListIndexes): state "SERVING", "LOADING", "FAILED"
    (message: why) or "UNLOADED"; description when it serves."""
    name: str
    version: int
    state: str
    message: str
    description: Optional[IndexDescription]
    proto: attribution_pb2.IndexVersionStatus = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, v: attribution_pb2.IndexVersionStatus) -> "IndexVersion":
        return cls(v.name, v.version, attribution_pb2.IndexVersionStatus.State.Name(v.state),
                   v.message,
                   IndexDescription.from_proto(v.description) if v.HasField("description")
                   else None, v)


@dataclasses.dataclass(frozen=True)
class Sample:
    """A training or test sample; `row` is None for a sample that is not a training row."""
    sample_id: str
    source: str
    label: int
    class_name: str
    preview: str
    row: Optional[int]
    features: np.ndarray
    proto: attribution_pb2.GetSampleResponse = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, s: attribution_pb2.GetSampleResponse) -> "Sample":
        return cls(s.sample_id, s.source, s.label, s.class_name, s.preview,
                   s.row if s.HasField("row") else None, np.array(s.features, dtype=np.float32),
                   s)


@dataclasses.dataclass(frozen=True)
class Job:
    """A background job. `state` is the JobState name without its prefix ("SUCCEEDED")."""
    id: int
    kind: str
    spec: Dict[str, Any]
    state: str
    progress: float
    stage: str
    eta_seconds: float
    error: str
    result_path: str
    submitter: str
    proto: jobs_pb2.Job = dataclasses.field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.state in ("SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED")

    @classmethod
    def from_proto(cls, job: jobs_pb2.Job) -> "Job":
        state = jobs_pb2.JobState.Name(job.state).removeprefix("JOB_STATE_")
        spec = json.loads(job.spec_json) if job.spec_json else {}
        return cls(job.id, job.kind, spec, state, job.progress, job.stage, job.eta_seconds,
                   job.error, job.result_path, job.submitter, job)


@dataclasses.dataclass(frozen=True)
class JobUpdate:
    """One progress update of WatchJob: the job as it is now and the log lines since the
    previous update."""
    job: Job
    log_lines: List[str]

    @classmethod
    def from_proto(cls, update: jobs_pb2.JobUpdate) -> "JobUpdate":
        return cls(Job.from_proto(update.job), [line.line for line in update.new_log_lines])


@dataclasses.dataclass(frozen=True)
class SelfInfluenceEntry:
    """A training row (or, by_document, a document) and its self-influence g^T (H + lambda I)^-1 g.
    `row` is the row (a document's first live row); `chunks` its rows (1 for a row)."""
    row: int
    sample_id: str
    source: str
    score: float
    preview: str
    label: int
    chunks: int


@dataclasses.dataclass(frozen=True)
class SelfInfluenceResult:
    """The highest self-influence samples, highest first; `count` rows (or documents) ranked,
    `median` the median of all their values (a scale for the scores)."""
    entries: List[SelfInfluenceEntry]
    method: str
    count: int
    median: float
    proto: attribution_pb2.SelfInfluenceResponse = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, r: attribution_pb2.SelfInfluenceResponse) -> "SelfInfluenceResult":
        return cls([SelfInfluenceEntry(e.row, e.sample_id, e.source, e.score, e.preview, e.label,
                                       e.chunks) for e in r.entries],
                   method_name(r.method), r.count, r.median, r)


@dataclasses.dataclass(frozen=True)
class ScheduleRun:
    """One firing of a schedule: the job it submitted (0 when skipped, with the reason)."""
    fire_time: float
    job_id: int
    skipped_reason: str


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A cron schedule that submits a job of `kind` with `spec` (UTC times in seconds)."""
    id: int
    name: str
    cron: str
    kind: str
    spec: Dict[str, Any]
    created_at: float
    next_fire_time: float
    recent_runs: List[ScheduleRun]
    proto: jobs_pb2.Schedule = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_proto(cls, s: jobs_pb2.Schedule) -> "Schedule":
        return cls(s.id, s.name, s.cron, s.kind, json.loads(s.spec_json) if s.spec_json else {},
                   s.created_at, s.next_fire_time,
                   [ScheduleRun(r.fire_time, r.job_id, r.skipped_reason) for r in s.recent_runs],
                   s)
