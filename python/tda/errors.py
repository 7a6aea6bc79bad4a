"""The one exception type of the tda client: a failed call, with its gRPC code and message."""

import grpc


class TdaError(Exception):
    """A call tda-server refused or could not complete.

    `code` is the grpc.StatusCode (e.g. grpc.StatusCode.INVALID_ARGUMENT), `code_name` its name
    ("INVALID_ARGUMENT") and `message` the server's explanation, unchanged.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message

    @property
    def code_name(self) -> str:
        return self.code.name

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError) -> "TdaError":
        """The TdaError of a failed call (grpc.RpcError raised by a stub)."""
        return cls(error.code(), error.details() or "")
