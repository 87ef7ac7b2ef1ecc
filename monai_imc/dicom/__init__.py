"""DICOM pieces of the app: read a folder, series -> key 2D views, codes, and the IMC SR writer.

Library functions only (no Holoscan): the MONAI Deploy operators in ``monai_imc.operators`` call them,
and so do the tests.
"""

from __future__ import annotations
