"""The client's typed errors against the server's reasons: one reason tree, read off the domain errors.

reasons.py is generated from server/pipelinejobs_server/domain/errors.py (``make client``); each client
class names the reason it stands for, and BY_REASON is computed from both. These tests hold the two
hierarchies together in both directions.
"""

from __future__ import annotations

import grpc
import pytest

from pipelinejobs_client import errors
from pipelinejobs_client.reasons import PARENT
from pipelinejobs_server.domain import errors as domain_errors


def _subclasses(cls: type[errors.PipelineJobsError]) -> list[type[errors.PipelineJobsError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


# The errors the service reports (config.py's ConfigurationError is the client's own).
CLASSES = [cls for cls in _subclasses(errors.PipelineJobsError) if cls.__module__ == errors.__name__]
STANDING = [cls for cls in CLASSES if "REASON" in vars(cls)]
ROOT = next(reason for reason, parent in PARENT.items() if parent is None)


def _nearest_class(reason: str | None) -> type[errors.PipelineJobsError] | None:
    """The client class of ``reason``'s nearest ancestor (itself excluded) that has one."""
    own = {cls.REASON: cls for cls in STANDING}
    while reason is not None:
        reason = PARENT[reason]
        if reason in own:
            return own[reason]
    return None


def _nearest_standing_ancestor(cls: type[errors.PipelineJobsError]) -> type[errors.PipelineJobsError] | None:
    return next((klass for klass in cls.__mro__[1:] if "REASON" in vars(klass)), None)


def _domain_tree(cls: type[domain_errors.PipelineJobsError], parent: str | None) -> dict[str, str | None]:
    tree = {cls.reason: parent}
    for child in cls.__subclasses__():
        if child.__module__ == domain_errors.__name__:
            tree |= _domain_tree(child, cls.reason)
    return tree


def test_reasons_module_is_the_domain_error_hierarchy() -> None:
    assert dict(PARENT) == _domain_tree(domain_errors.PipelineJobsError, None)


@pytest.mark.parametrize("cls", STANDING, ids=lambda cls: cls.__name__)
def test_every_class_stands_for_a_reason_the_server_sends(cls: type[errors.PipelineJobsError]) -> None:
    assert cls.REASON in PARENT
    assert [other for other in STANDING if other.REASON == cls.REASON] == [cls]


@pytest.mark.parametrize("cls", STANDING, ids=lambda cls: cls.__name__)
def test_the_class_hierarchy_agrees_with_the_reason_tree(cls: type[errors.PipelineJobsError]) -> None:
    # Classes known only by their code (Aborted) may sit in between; classes with reasons may not disagree.
    assert _nearest_standing_ancestor(cls) is _nearest_class(cls.REASON)


def test_the_classes_without_a_reason_are_known_by_their_code() -> None:
    # TokenWithheld is raised by the client itself, before sending: no reply is ever mapped to it.
    codes_only = {cls for cls in CLASSES if cls not in STANDING} - {
        errors.PipelineJobsError,
        errors.TokenWithheld,
    }
    assert codes_only == {errors.Aborted, errors.DeadlineExceeded}
    assert codes_only <= set(errors.BY_CODE.values())
    assert errors.TokenWithheld not in {*errors.BY_REASON.values(), *errors.BY_CODE.values()}


@pytest.mark.parametrize("reason", [reason for reason in PARENT if reason != ROOT])
def test_every_reason_the_server_sends_has_a_class(reason: str) -> None:
    cls = errors.BY_REASON[reason]
    assert reason == cls.REASON or cls is _nearest_class(reason)


def test_a_reason_without_its_own_class_takes_its_ancestors() -> None:
    assert PARENT["DATABASE_UNAVAILABLE"] == "UNAVAILABLE"
    assert "DATABASE_UNAVAILABLE" not in {cls.REASON for cls in STANDING}
    assert errors.BY_REASON["DATABASE_UNAVAILABLE"] is errors.ServiceUnavailable


def test_the_root_reason_is_left_to_the_status_code() -> None:
    assert ROOT not in errors.BY_REASON
    assert errors.BY_CODE[grpc.StatusCode.ABORTED] is errors.Aborted
    assert issubclass(errors.IdempotencyConflict, errors.Aborted)
    assert issubclass(errors.ConcurrentModification, errors.Aborted)
