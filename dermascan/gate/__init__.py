"""The input gate: should the model judge this image at all? One module per check family.

``quality`` (exposure, blur, lesion area: from the pixels), ``ood`` (out of distribution: the model's own
penultimate features and an earlier layer's activations against statistics fitted on its training images, stored
in a sidecar beside the card), ``degenerate`` (outputs that barely depend on the image), ``features`` (where those
features are, for any model the engine loads), ``fit`` (fitting the OOD statistics from a folder) and
``verdict`` (the combined ``GateResult`` an analysis carries). No Streamlit here.
"""

from .verdict import GATE_INDETERMINATE, GATE_OK, GateResult, judge

__all__ = ["GATE_INDETERMINATE", "GATE_OK", "GateResult", "judge"]
