"""Words, colours and icons the pages share, so the same thing always looks the same."""

from __future__ import annotations

from dataclasses import dataclass

from dermascan.intake.images import SCREEN_MAX_PX
from dermascan.render.numbers import percent  # noqa: F401 - the pages' percent formatter, defined in the engine
from dermascan.render.text import markdown_literal
from dermascan.reviews import MANAGEMENT_LABELS


@dataclass(frozen=True)
class TriageStyle:
    """How a triage band is shown: colour plus words, never colour alone."""

    title: str
    color: str  # an st.badge colour
    icon: str
    advice: str


TRIAGE = {
    "low": TriageStyle("Low", "green", ":material/check_circle:", "Low malignancy score."),
    "medium": TriageStyle("Medium", "orange", ":material/warning:", "Intermediate score: review with care."),
    "high": TriageStyle("High", "red", ":material/priority_high:", "High malignancy score: prioritise this case."),
    "indeterminate": TriageStyle("Indeterminate: retake or refer", "gray", ":material/help:",
                                 "The model should not judge this image: retake it or refer."),
}

# Streamlit shows an image at most 1460 px wide (it resizes wider ones itself, after encoding them at full
# size): images are brought to this width before they reach st.image, so nothing visible changes and a
# large upload no longer costs half a second per slider move.
DISPLAY_WIDTH = SCREEN_MAX_PX  # one definition, in the core: batch decoding is sized by it too

FITZPATRICK = {1: "I", 2: "II", 3: "III", 4: "IV", 5: "V", 6: "VI"}  # the store keeps the number
SEX_OPTIONS = ("female", "male", "other")

DISCLAIMER = (
    "AI second opinion for a trained clinician. It is not a diagnosis and must not replace clinical judgement "
    "or histopathology."
)


def triage_style(band: str | None) -> TriageStyle:
    """The style of ``band`` (a neutral one for unknown or missing bands, e.g. from an imported CSV)."""
    return TRIAGE.get(band or "", TriageStyle((band or "").capitalize() or "Unknown", "gray", ":material/help:", ""))


def management_name(option: str | None) -> str:
    """Plain words for a management option code ("" when none was chosen)."""
    if not option:
        return ""
    return MANAGEMENT_LABELS.get(option, option.replace("_", " ").capitalize())


def plain(text: object) -> str:
    """``text`` for any Streamlit element that renders Markdown (alerts, captions, headings, labels, help,
    image captions, metric values): one line, no invisible characters, every Markdown construct escaped, so
    a file name, note or card field is shown as the characters it is (``dermascan.render.text.markdown_literal``)."""
    return markdown_literal(text)
