"""One preprocessing option: a pixel scaling, a resize policy and the test-time augmentation views.

The one type for "how to feed the model" that the Analyze and Compare pages, their caches and
``evaluation.compare`` share. It is frozen and hashable, so equal options are equal cache keys.
A field left as None means "what the model card declares"; ``resolve`` fills it in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PreprocessingOption:
    """Scaling and resize policy by registry name, TTA views (``()``: no TTA); None: the card's."""

    preprocessing: str | None = None
    resize: str | None = None
    tta: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        # A list of transforms would make the option unhashable and unequal to the same tuple.
        if self.tta is not None:
            object.__setattr__(self, "tta", tuple(self.tta))

    @classmethod
    def for_card(cls, card) -> PreprocessingOption:
        """The option the model card declares (its TTA views included; most cards declare none)."""
        return cls(card.preprocessing, card.resize, tuple(card.tta))

    def resolve(self, card) -> PreprocessingOption:
        """This option with every None field replaced by the card's value."""
        return PreprocessingOption(self.preprocessing or card.preprocessing, self.resize or card.resize,
                                   tuple(card.tta) if self.tta is None else self.tta)

    @property
    def label(self) -> str:
        """Short name for column headers and tables, e.g. ``unit · squash · TTA×4``."""
        text = f"{self.preprocessing or 'card'} · {self.resize or 'card'}"
        return f"{text} · TTA×{len(self.tta)}" if self.tta else text
