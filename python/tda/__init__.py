"""Python client of tda-server (training-data attribution with influence functions).

    import tda
    client = tda.Client("127.0.0.1:50051", token=None)
    answer = client.attribute(ids=["fashion-mnist/test/12"], top_k=5)
    answer.results[0].proponents[0].sample_id

The gRPC stubs (tda.v1.*_pb2) are generated from the repository's proto/ at build time: by
`pip install ./python`, or by CMake into build/python (put both python/ and build/python on
PYTHONPATH to run from the source tree).
"""

import pkgutil

# The generated tda.v1 package may live in another directory of sys.path (build/python).
__path__ = pkgutil.extend_path(__path__, __name__)

try:
    from tda.v1 import attribution_pb2 as _stubs  # noqa: F401
except ImportError as missing:
    raise ImportError(
        "tda's gRPC stubs (tda.v1) are missing: run `cmake --build build --target "
        "tda_python_stubs` and put build/python on PYTHONPATH next to python/, or "
        "`pip install ./python`") from missing

from tda.client import Client  # noqa: E402
from tda.errors import TdaError  # noqa: E402
from tda.types import (  # noqa: E402
    AttributeResult, Hit, IndexDescription, IndexVersion, Job, JobUpdate, QueryResult, Sample,
    Schedule, ScheduleRun, SelfInfluenceEntry, SelfInfluenceResult, SharedSpan, SourceTotal)

__all__ = [
    "AttributeResult", "Client", "Hit", "IndexDescription", "IndexVersion", "Job", "JobUpdate",
    "QueryResult", "Sample", "Schedule", "ScheduleRun", "SelfInfluenceEntry",
    "SelfInfluenceResult", "SharedSpan", "SourceTotal", "TdaError"
]
