"""tda.Client: a typed wrapper of tda-server's gRPC API (AttributionService, JobService,
AdminService).

Connection: plaintext by default (tda-server's loopback default), TLS with `tls_ca` (the CA
that signed the server's certificate; `tls_cert`/`tls_key` add a client certificate for
servers with --tls-client-ca). A `token` goes in every call as "authorization: Bearer TOKEN";
the channel keeps its own connection, because tda-server pins one token per connection.
Every failed call raises tda.TdaError with the gRPC code and the server's message.
Thread-safe like a grpc.Channel; close() (or `with`) releases the connection.
"""

import json
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
import numpy as np

from tda.errors import TdaError
from tda.types import (METHODS, AttributeResult, IndexDescription, IndexVersion, Job, JobUpdate,
                       Sample, Schedule, SelfInfluenceResult)
from tda.v1 import (admin_pb2, admin_pb2_grpc, attribution_pb2, attribution_pb2_grpc, jobs_pb2,
                    jobs_pb2_grpc)

_MAX_MESSAGE_BYTES = 1 << 30


def _read(path: Optional[str]) -> Optional[bytes]:
    if path is None:
        return None
    with open(path, "rb") as f:
        return f.read()


_CURVATURES = {"gauss-newton": attribution_pb2.CURVATURE_GAUSS_NEWTON,
               "hessian": attribution_pb2.CURVATURE_HESSIAN}


def _set_method_and_damping(request: Any, method: Optional[str], damping: Optional[float],
                            absolute_damping: Optional[float]) -> None:
    """Sets `method` and `damping` of an AttributeRequest or SelfInfluenceRequest."""
    if method is not None:
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
        request.method = METHODS[method]
    if damping is not None and absolute_damping is not None:
        raise ValueError("give damping (relative) or absolute_damping, not both")
    if damping is not None:
        request.damping.relative = damping
    if absolute_damping is not None:
        request.damping.absolute = absolute_damping


class Client:
    """A connection to one tda-server.

    address: "HOST:PORT". token: a bearer token (`tda admin token create`), or None.
    tls_ca: PEM file of the CA that signed the server certificate (enables TLS).
    timeout: default deadline of each call in seconds (None: no deadline).
    """

    def __init__(self, address: str, token: Optional[str] = None, tls_ca: Optional[str] = None,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None,
                 timeout: Optional[float] = 300.0) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        options = [("grpc.use_local_subchannel_pool", 1),
                   ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES)]
        if tls_ca is not None or tls_cert is not None:
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(tls_ca), private_key=_read(tls_key),
                certificate_chain=_read(tls_cert))
            self._channel = grpc.secure_channel(address, credentials, options)
        else:
            self._channel = grpc.insecure_channel(address, options)
        self._metadata: Tuple[Tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ())
        self._timeout = timeout
        self._attribution = attribution_pb2_grpc.AttributionServiceStub(self._channel)
        self._jobs = jobs_pb2_grpc.JobServiceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)

    def __repr__(self) -> str:  # never shows the token
        return f"tda.Client(token={'set' if self._metadata else 'none'})"

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _call(self, method: Any, request: Any, timeout: Optional[float] = None) -> Any:
        try:
            return method(request, timeout=timeout or self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise TdaError.from_rpc_error(error) from None

    # AttributionService

    def attribute(self, ids: Optional[Sequence[str]] = None,
                  texts: Optional[Sequence[Tuple[str, str]]] = None,
                  features: Optional[np.ndarray] = None,
                  labels: Union[None, int, Sequence[int]] = None, top_k: Optional[int] = None,
                  method: Optional[str] = None, damping: Optional[float] = None,
                  absolute_damping: Optional[float] = None, return_scores: bool = False,
                  token_scores: bool = False, timeout: Optional[float] = None,
                  index: str = "", lissa: Optional[Mapping[str, float]] = None,
                  curvature: Optional[str] = None,
                  approximate: Union[bool, Mapping[str, int], None] = None,
                  query_rank: int = 0, low_rank_candidates: int = 0,
                  unit_norm: bool = False, adam_correction: bool = False,
                  ensemble_members: int = 0) -> AttributeResult:
        """Top-k proponents and opponents of each query.

        Exactly one kind of query: `ids` (sample ids, e.g. "fashion-mnist/test/12"), `texts`
        ((prompt, completion) pairs, language-model indexes) or `features` (an array of shape
        (Q, D) or (D,), one row per query; `labels` required). `labels`: one label for every
        query or one per query (for ids: "why not class C?"). `method`: "ekfac" (the server's
        default), "kfac", "gradient-dot", "lissa", "exact". `damping`: relative to the mean
        eigenvalue; `absolute_damping`: the same lambda for every layer. `return_scores`: every
        row's score in QueryResult.scores. `index`: the served index to ask (list_indexes()
        names them; "" = the server's only one). `lissa`: LiSSA's recursion, any of scale (0 =
        estimated), depth, tolerance, repeats, batch_size (the LissaParameters message).
        `curvature`: "gauss-newton" (default) or "hessian", the matrix lissa and exact invert.
        `approximate`: True, or a dict of any of nprobe, ef_search, candidates (the
        ApproximateSearch message): top-k from the index's ANN ('tda index ann'), each hit
        re-scored exactly; no return_scores, no source totals.
        `query_rank`: r > 0 ranks a batch of more than r queries through its best rank-r
        approximation and re-scores each query's `low_rank_candidates` (0: 10 x top_k) best
        rows per sign exactly: every returned score exact, a hit may be missed; no
        return_scores, no source totals.
        `unit_norm`: TrackStar's normalisation, score = q^T P g / (|q| |g|) (gradient-dot: the
        cosine); not with approximate or query_rank. `adam_correction`: divide the query's
        gradient by sqrt(v_hat) + eps of the model's Adam state, as the rows were (an index
        built with `tda build-index --adam-correction`; describe().adam_correction says).
        `ensemble_members`: an ensemble index (describe().ensemble_size > 1) scores with the
        mean of its first k members (0 = all).
        The server validates everything else.
        """
        given = [q for q in (ids, texts, features) if q is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of ids, texts or features")
        queries: List[attribution_pb2.Query] = []
        if ids is not None:
            queries = [attribution_pb2.Query(sample_id=i) for i in ids]
        elif texts is not None:
            queries = [attribution_pb2.Query(text=attribution_pb2.TextQuery(
                prompt=p, completion=c)) for p, c in texts]
        else:
            rows = np.asarray(features, dtype=np.float32)
            rows = rows.reshape(1, -1) if rows.ndim == 1 else rows
            if rows.ndim != 2:
                raise ValueError(f"features must have shape (Q, D) or (D,), got {rows.shape}")
            queries = [attribution_pb2.Query(raw=attribution_pb2.RawInput(features=row))
                       for row in rows]
        if labels is not None:
            per_query = [labels] * len(queries) if isinstance(labels, int) else list(labels)
            if len(per_query) != len(queries):
                raise ValueError(f"{len(per_query)} labels for {len(queries)} queries")
            for query, label in zip(queries, per_query):
                query.label = int(label)
        request = attribution_pb2.AttributeRequest(queries=queries, return_scores=return_scores,
                                                   token_scores=token_scores, index=index)
        if top_k is not None:
            request.top_k = top_k
        _set_method_and_damping(request, method, damping, absolute_damping)
        for field, value in (lissa or {}).items():
            if field not in attribution_pb2.LissaParameters.DESCRIPTOR.fields_by_name:
                raise ValueError(f"unknown lissa parameter {field!r}; one of scale, depth, "
                                 "tolerance, repeats, batch_size")
            setattr(request.lissa, field, value)
        if curvature is not None:
            if curvature not in _CURVATURES:
                raise ValueError(f"unknown curvature {curvature!r}; gauss-newton or hessian")
            request.curvature = _CURVATURES[curvature]
        if approximate:
            request.approximate.enabled = True
            for field, value in ({} if approximate is True else approximate).items():
                if field not in ("nprobe", "ef_search", "candidates"):
                    raise ValueError(f"unknown approximate parameter {field!r}; one of nprobe, "
                                     "ef_search, candidates")
                setattr(request.approximate, field, int(value))
        request.query_rank = int(query_rank)
        request.low_rank_candidates = int(low_rank_candidates)
        request.unit_norm = bool(unit_norm)
        request.adam_correction = bool(adam_correction)
        request.ensemble_members = int(ensemble_members)
        return AttributeResult.from_proto(
            self._call(self._attribution.Attribute, request, timeout))

    def describe(self, index: str = "") -> IndexDescription:
        """What the served index `index` holds ("" = the server's only one)."""
        return IndexDescription.from_proto(
            self._call(self._attribution.DescribeIndex,
                       attribution_pb2.DescribeIndexRequest(index=index)))

    def list_indexes(self) -> List[IndexVersion]:
        """Every index the server knows: each name's serving, loading and failed versions."""
        response = self._call(self._attribution.ListIndexes, attribution_pb2.ListIndexesRequest())
        return [IndexVersion.from_proto(v) for v in response.indexes]

    def sample(self, sample_id: str, index: str = "") -> Sample:
        """One sample by id, with its features; TdaError NOT_FOUND for an unknown id."""
        return Sample.from_proto(
            self._call(self._attribution.GetSample,
                       attribution_pb2.GetSampleRequest(sample_id=sample_id, index=index)))

    def self_influence(self, top_k: Optional[int] = None, method: Optional[str] = None,
                       damping: Optional[float] = None, absolute_damping: Optional[float] = None,
                       by_document: bool = False, index: str = "",
                       timeout: Optional[float] = None) -> SelfInfluenceResult:
        """The training rows of highest self-influence (the samples the model memorised most),
        highest first; `by_document` ranks whole documents of a chunking language model.
        `method` and damping as for attribute(). The server computes every row's value once per
        (method, damping, by_document) and keeps them, so later calls are fast. `index` names
        the served index (list_indexes()); optional when the server serves one."""
        request = attribution_pb2.SelfInfluenceRequest(by_document=by_document, index=index)
        if top_k is not None:
            request.top_k = top_k
        _set_method_and_damping(request, method, damping, absolute_damping)
        return SelfInfluenceResult.from_proto(
            self._call(self._attribution.SelfInfluence, request, timeout))

    # JobService (servers started with --state-dir)

    def submit(self, kind: str, spec: Optional[Mapping[str, Any]] = None) -> Job:
        """Queues a job ("build-index", "batch-attribute", "evaluate-lds", "sleep") with its
        spec (`tda jobs submit KIND --help` lists the fields); returns it, QUEUED."""
        request = jobs_pb2.SubmitJobRequest(kind=kind, spec_json=json.dumps(dict(spec or {})))
        return Job.from_proto(self._call(self._jobs.SubmitJob, request))

    def job(self, job_id: int) -> Job:
        return Job.from_proto(self._call(self._jobs.GetJob, jobs_pb2.GetJobRequest(id=job_id)))

    def jobs(self, state: Optional[str] = None, limit: int = 50) -> List[Job]:
        """Jobs, newest first; `state` e.g. "RUNNING" filters."""
        request = jobs_pb2.ListJobsRequest(limit=limit)
        if state is not None:
            request.state = jobs_pb2.JobState.Value("JOB_STATE_" + state)
        return [Job.from_proto(j) for j in self._call(self._jobs.ListJobs, request).jobs]

    def watch(self, job_id: int, timeout: Optional[float] = None) -> Iterator[JobUpdate]:
        """Yields the job's progress updates until it finishes (the last one is final).
        `timeout` bounds the whole watch (default: none)."""
        stream = self._jobs.WatchJob(jobs_pb2.WatchJobRequest(id=job_id), timeout=timeout,
                                     metadata=self._metadata)
        try:
            for update in stream:
                yield JobUpdate.from_proto(update)
        except grpc.RpcError as error:
            raise TdaError.from_rpc_error(error) from None
        finally:
            stream.cancel()

    def cancel(self, job_id: int) -> Job:
        """Cancels a queued job at once, asks a running one to stop; returns the job."""
        return Job.from_proto(
            self._call(self._jobs.CancelJob, jobs_pb2.CancelJobRequest(id=job_id)))

    def create_schedule(self, name: str, cron: str, kind: str,
                        spec: Optional[Mapping[str, Any]] = None) -> Schedule:
        """Submits a job of `kind` with `spec` whenever `cron` fires (5 fields MIN HOUR DOM MON
        DOW in UTC, or 6 with leading seconds); role operator."""
        request = jobs_pb2.CreateScheduleRequest(name=name, cron=cron, kind=kind,
                                                 spec_json=json.dumps(dict(spec or {})))
        return Schedule.from_proto(self._call(self._jobs.CreateSchedule, request))

    def list_schedules(self) -> List[Schedule]:
        """Every schedule, with its recent runs."""
        return [Schedule.from_proto(s) for s in
                self._call(self._jobs.ListSchedules, jobs_pb2.ListSchedulesRequest()).schedules]

    def delete_schedule(self, schedule_id: int) -> None:
        """Deletes a schedule (its jobs stay); TdaError NOT_FOUND for an unknown id."""
        self._call(self._jobs.DeleteSchedule, jobs_pb2.DeleteScheduleRequest(id=schedule_id))

    # AdminService (role admin)

    def reload_indexes(self) -> List[IndexVersion]:
        """Scans the server's repository now and waits until every new version is served or
        failed (as SIGHUP does); names unloaded before are loaded again. Answers ListIndexes."""
        response = self._call(self._admin.ReloadIndexes, admin_pb2.ReloadIndexesRequest())
        return [IndexVersion.from_proto(v) for v in response.indexes]

    def unload_index(self, index: str) -> List[IndexVersion]:
        """Stops serving `index`: new calls for it are NOT_FOUND, calls in flight finish; it stays
        UNLOADED until reload_indexes(). TdaError NOT_FOUND for a name the server never knew."""
        response = self._call(self._admin.UnloadIndex, admin_pb2.UnloadIndexRequest(index=index))
        return [IndexVersion.from_proto(v) for v in response.indexes]

    def reload_tokens(self) -> int:
        """Re-reads the server's --auth-tokens file; the number of tokens it now accepts."""
        return self._call(self._admin.ReloadTokens, admin_pb2.ReloadTokensRequest()).tokens


__all__ = ["Client"]
