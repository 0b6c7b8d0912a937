"""Seeing how a pipeline is doing: the status page and the Prometheus metrics file.

Both are built from the state store (:mod:`angles.status.summary`): the page by
:mod:`angles.status.page`, the metrics by :mod:`angles.status.metrics`. After every run
that is not ``--test``, :func:`write_outputs` writes the files the pipeline names.
"""

from angles.status.outputs import write_outputs

__all__ = ["write_outputs"]
