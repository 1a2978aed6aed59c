"""The review log over HTTP (API key required): list, read, export, and put a reviewer's decision.

Same store and same records as the dashboard's Review log (``dermascan.reviews``). Routes are plain
``def`` so FastAPI runs the SQLite calls on its worker threads, never on the event loop. Filters are
limited to non-identifying fields (triage, source, decided, session), so no patient data lands in an
access log's query string.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from ..reviews import Decision
from ..reviews.records import CaseRecord
from .errors import ApiError
from .schemas import CaseList, DecisionIn, DecisionOut
from .security import require_key

router = APIRouter(dependencies=[Depends(require_key)], tags=["review log"])
MAX_PAGE = 500
CaseId = Annotated[int, Path(ge=1, le=2**62)]


def _store(request: Request):
    return request.app.state.server.store()


def _row(case: CaseRecord) -> dict:
    # The export's p_<label> columns become one mapping: labels differ between models.
    row = {k: v for k, v in case.to_row().items() if not k.startswith("p_")}
    row["probabilities"] = dict(case.probabilities)
    return row


@router.get("/api/cases", response_model=CaseList, summary="Cases with their decisions, newest first")
def list_cases(request: Request, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
               offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
               triage: Literal["low", "medium", "high"] | None = None,
               source: Annotated[str | None, Query(max_length=40)] = None,
               decided: bool | None = None,
               session_id: Annotated[str | None, Query(max_length=64)] = None):
    """A page of the review log; ``total`` counts every case matching the filters."""
    cases = _store(request).list_cases(session_id=session_id, with_thumbnails=False)
    if triage is not None:
        cases = [c for c in cases if c.triage == triage]
    if source is not None:
        cases = [c for c in cases if c.source == source]
    if decided is not None:
        cases = [c for c in cases if (c.decision is not None) == decided]
    page = cases[offset : offset + limit]
    return {"total": len(cases), "offset": offset, "limit": limit, "cases": [_row(c) for c in page]}


@router.get("/api/cases.csv", summary="The Review log's CSV export (formula-safe, UTF-8 with BOM)",
            response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def export_cases(request: Request):
    """Every case, as the Review log page exports them."""
    data = _store(request).export_csv()
    return Response(data, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="review-log.csv"'})


@router.get("/api/cases/{case_id}", summary="One case with its current decision")
def get_case(request: Request, case_id: CaseId):
    """The case as a row of the export, or 404."""
    case = _store(request).get_case(case_id)
    if case is None:
        raise ApiError(404, f"There is no case {case_id}.")
    return _row(case)


@router.put("/api/cases/{case_id}/decision", response_model=DecisionOut, summary="Record a reviewer's decision")
def put_decision(request: Request, case_id: CaseId, body: DecisionIn):
    """Make this the case's current decision; the previous one stays in its history."""
    store = _store(request)
    if store.get_case(case_id) is None:
        raise ApiError(404, f"There is no case {case_id}.")
    try:
        decision = Decision(**body.model_dump())
    except ValueError as exc:  # names the field, never its value
        raise ApiError(422, f"Invalid decision: {exc}.") from None
    saved = store.save_decision(case_id, decision)
    return {"case_id": case_id, "reviewer_agrees": saved.reviewer_agrees,
            "reviewer_diagnosis": saved.reviewer_diagnosis, "management": saved.management, "note": saved.note,
            "reviewer": saved.reviewer, "decided_at": saved.decided_at}
