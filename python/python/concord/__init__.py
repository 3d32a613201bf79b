"""concord from Python: the engine (consensus models, agreement coefficients) and a client
for the platform's API.

    >>> from concord.aggregation import DawidSkene
    >>> from concord import agreement
    >>> from concord import Client
"""

from . import aggregation, agreement
from .client import Client, ClientError, Release

__all__ = ["aggregation", "agreement", "Client", "ClientError", "Release"]
__version__ = "0.1.0"
